//! One direction of a stream as pure transitions: what to deliver next, and what the
//! filter's answer to a callback does to the half. No guest calls here: the pump
//! (`stream::pump`) calls the guest between [`Half::next`] and the `*_returned` method.
//!
//! Envoy's rules, as the transitions apply them:
//! - headers `Continue` releases the headers; `StopIteration` holds them and, with
//!   `allow_on_headers_stop_iteration`, keeps delivering body callbacks; without it
//!   Envoy turns it into `StopAllIterationAndWatermark`: nothing more is delivered until
//!   `continue_stream`, and then everything that arrived meanwhile comes in one callback;
//! - body `Continue` releases the headers and the data; `StopIterationAndBuffer` and
//!   `StopIterationAndWatermark` keep the data buffered (the next callback sees it and
//!   the new chunk); `StopIterationNoBuffer` holds and drops the chunk;
//! - a buffered body larger than the limit overflows (the stream then gets Envoy's
//!   413/500, or a reset once a response is on its way);
//! - trailers `Continue` releases; anything else holds;
//! - `continue_stream` releases what is held, at the next step.

use crate::exchange::Action;
use crate::http::{Headers, HttpMessage};
use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Headers not delivered yet.
    Headers,
    /// Headers returned StopIteration, turned into StopAllIterationAndWatermark:
    /// nothing is delivered until `continue_stream`.
    StoppedAll,
    /// Delivering body chunks and trailers; nothing held.
    Flowing,
    /// Delivering body chunks and trailers while the filter holds headers or data;
    /// `buffered`: the last body callback asked to keep the data.
    Held { buffered: bool },
    /// Everything passed on.
    Complete,
}

/// A body callback is running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BodyCallback {
    end_of_stream: bool,
}

/// What the pump does next with a half.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Call `on_*_headers`.
    Headers { count: usize, end_of_stream: bool },
    /// Call `on_*_body` (`size`: the body data the filter can see).
    Body { size: usize, end_of_stream: bool },
    /// Call `on_*_trailers`.
    Trailers { count: usize },
    /// No callback: the half waits, overflowed or is complete.
    Stop(Step),
}

/// Where a half stands after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Something happened: step again.
    Progress,
    /// The filter holds it and no input is left to deliver.
    Paused,
    /// The buffered data exceeds the limit.
    Overflow,
    /// Passed on whole.
    Complete,
}

/// One direction of a stream.
pub(crate) struct Half {
    pub(crate) headers: Headers,
    pub(crate) trailers: Option<Headers>,
    /// Body chunks not delivered yet.
    pending: VecDeque<Vec<u8>>,
    /// The trailers are not delivered yet.
    trailers_pending: bool,
    state: State,
    /// The body data the filter can see (the buffered body while buffering).
    pub(crate) buffer: Vec<u8>,
    body_callback: Option<BodyCallback>,
    /// Envoy keeps a pointer to the header map until it is released.
    pub(crate) headers_open: bool,
    pub(crate) trailers_open: bool,
    /// `continue_stream` was called.
    pub(crate) resume: bool,
    /// What was passed on: the headers as released, and the data.
    out_headers: Option<Headers>,
    out_body: Vec<u8>,
}

impl Half {
    pub(crate) fn new(headers: Headers, chunks: Vec<Vec<u8>>, trailers: Option<Headers>) -> Self {
        Half {
            trailers_pending: trailers.is_some(),
            headers,
            trailers,
            pending: chunks.into(),
            state: State::Headers,
            buffer: Vec::new(),
            body_callback: None,
            headers_open: false,
            trailers_open: false,
            resume: false,
            out_headers: None,
            out_body: Vec::new(),
        }
    }

    pub(crate) fn empty() -> Self {
        Self::new(Headers::new(), Vec::new(), None)
    }

    /// The filter's data is visible: during its body callback, or while buffered.
    pub(crate) fn body_visible(&self) -> bool {
        self.body_callback.is_some() || self.state == State::Held { buffered: true }
    }

    /// The last body callback is running (trailers may be added then).
    pub(crate) fn in_last_body(&self) -> bool {
        self.body_callback
            == Some(BodyCallback {
                end_of_stream: true,
            })
    }

    /// The next thing to deliver, with the half prepared for it (`continue_stream`
    /// applied first; the map opened; the chunk moved into the buffer).
    pub(crate) fn next(&mut self, limit: usize) -> Next {
        if self.resume {
            self.resume = false;
            self.apply_resume();
        }
        match self.state {
            State::Headers => {
                self.headers_open = true;
                Next::Headers {
                    count: self.headers.len(),
                    end_of_stream: self.pending.is_empty() && !self.trailers_pending,
                }
            }
            State::StoppedAll => Next::Stop(Step::Paused),
            State::Flowing | State::Held { .. } => {
                if let Some(chunk) = self.pending.pop_front() {
                    let end_of_stream = self.pending.is_empty() && !self.trailers_pending;
                    if self.state == (State::Held { buffered: true }) {
                        self.buffer.extend_from_slice(&chunk);
                        if self.buffer.len() > limit {
                            return Next::Stop(Step::Overflow);
                        }
                    } else {
                        self.buffer = chunk;
                    }
                    self.body_callback = Some(BodyCallback { end_of_stream });
                    Next::Body {
                        size: self.buffer.len(),
                        end_of_stream,
                    }
                } else if self.trailers_pending {
                    self.trailers_pending = false;
                    self.trailers_open = true;
                    Next::Trailers {
                        count: self.trailers.as_ref().map_or(0, Headers::len),
                    }
                } else if matches!(self.state, State::Held { .. }) {
                    Next::Stop(Step::Paused)
                } else {
                    self.release();
                    self.state = State::Complete;
                    Next::Stop(Step::Complete)
                }
            }
            State::Complete => Next::Stop(Step::Complete),
        }
    }

    /// The headers callback returned `action`.
    pub(crate) fn headers_returned(&mut self, action: Action, allow_stop: bool) {
        self.state = match action {
            Action::Continue => {
                self.release();
                self.headers_open = false;
                State::Flowing
            }
            Action::StopIteration if allow_stop => State::Held { buffered: false },
            _ => State::StoppedAll,
        };
    }

    /// The body callback returned `action`.
    pub(crate) fn body_returned(&mut self, action: Action, limit: usize) -> Step {
        self.body_callback = None;
        match action {
            Action::Continue => {
                self.release();
                self.state = State::Flowing;
            }
            Action::StopIterationAndBuffer | Action::StopIterationAndWatermark => {
                self.state = State::Held { buffered: true };
                if self.buffer.len() > limit {
                    return Step::Overflow;
                }
            }
            _ => {
                // StopIterationNoBuffer: the chunk is not kept.
                self.buffer.clear();
                self.state = State::Held { buffered: false };
            }
        }
        Step::Progress
    }

    /// The trailers callback returned `action`.
    pub(crate) fn trailers_returned(&mut self, action: Action) {
        if action == Action::Continue {
            self.release();
            self.trailers_open = false;
            self.state = State::Flowing;
        } else {
            self.state = match self.state {
                State::Held { buffered } => State::Held { buffered },
                _ => State::Held { buffered: false },
            };
        }
    }

    /// Passes the headers (once) and the current data on.
    fn release(&mut self) {
        if self.out_headers.is_none() {
            self.out_headers = Some(self.headers.clone());
        }
        self.out_body.extend_from_slice(&self.buffer);
        self.buffer.clear();
        if let State::Held { .. } = self.state {
            self.state = State::Held { buffered: false };
        }
    }

    fn apply_resume(&mut self) {
        match self.state {
            State::Headers | State::Complete => {}
            State::StoppedAll => {
                self.release();
                // Everything that arrived while stopped is delivered in one callback.
                if self.pending.len() > 1 {
                    let joined = self.pending.drain(..).collect::<Vec<_>>().concat();
                    self.pending.push_back(joined);
                }
                self.state = State::Flowing;
            }
            State::Flowing | State::Held { .. } => {
                self.release();
                self.state = State::Flowing;
            }
        }
        self.headers_open = false;
        self.trailers_open = false;
    }

    /// What was passed on (the headers as they are, if none were released).
    pub(crate) fn message(&self) -> HttpMessage {
        HttpMessage {
            headers: self
                .out_headers
                .clone()
                .unwrap_or_else(|| self.headers.clone()),
            body: self.out_body.clone(),
            trailers: self.trailers.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMIT: usize = 100;

    fn half(chunks: &[&str], trailers: bool) -> Half {
        let mut headers = Headers::new();
        headers.add(":path", "/x");
        let trailers = trailers.then(|| {
            let mut t = Headers::new();
            t.add("grpc-status", "0");
            t
        });
        Half::new(
            headers,
            chunks.iter().map(|c| c.as_bytes().to_vec()).collect(),
            trailers,
        )
    }

    fn body(size: usize, end_of_stream: bool) -> Next {
        Next::Body {
            size,
            end_of_stream,
        }
    }

    #[test]
    fn continue_everywhere_passes_each_chunk_on() {
        let mut h = half(&["ab", "cde"], false);
        assert_eq!(
            h.next(LIMIT),
            Next::Headers {
                count: 1,
                end_of_stream: false
            }
        );
        assert!(h.headers_open);
        h.headers_returned(Action::Continue, false);
        assert!(!h.headers_open, "released headers are out of reach");
        assert_eq!(h.next(LIMIT), body(2, false));
        assert!(h.body_visible() && !h.in_last_body());
        assert_eq!(h.body_returned(Action::Continue, LIMIT), Step::Progress);
        assert!(!h.body_visible());
        assert_eq!(h.next(LIMIT), body(3, true), "each callback sees its chunk");
        assert!(h.in_last_body());
        h.body_returned(Action::Continue, LIMIT);
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Complete));
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Complete));
        assert_eq!(h.message().body, b"abcde");
    }

    #[test]
    fn no_body_means_end_of_stream_on_the_headers() {
        let mut h = half(&[], false);
        assert_eq!(
            h.next(LIMIT),
            Next::Headers {
                count: 1,
                end_of_stream: true
            }
        );
        h.headers_returned(Action::Continue, false);
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Complete));
    }

    #[test]
    fn stop_iteration_without_allow_stops_everything_until_continue_stream() {
        let mut h = half(&["ab", "cd", "e"], false);
        h.next(LIMIT);
        h.headers_returned(Action::StopIteration, false);
        assert!(h.headers_open, "held headers stay reachable");
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Paused));
        h.resume = true;
        // What arrived meanwhile comes in one callback.
        assert_eq!(h.next(LIMIT), body(5, true));
        assert!(!h.headers_open);
        h.body_returned(Action::Continue, LIMIT);
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Complete));
        assert_eq!(h.message().body, b"abcde");
    }

    #[test]
    fn held_headers_with_allow_keep_body_callbacks_coming_and_buffering_accumulates() {
        let mut h = half(&["ab", "cd"], false);
        h.next(LIMIT);
        h.headers_returned(Action::StopIteration, true);
        assert_eq!(h.next(LIMIT), body(2, false));
        assert_eq!(
            h.body_returned(Action::StopIterationAndBuffer, LIMIT),
            Step::Progress
        );
        assert!(h.body_visible(), "buffered data stays visible");
        assert_eq!(h.next(LIMIT), body(4, true), "the buffer and the new chunk");
        h.body_returned(Action::StopIterationAndWatermark, LIMIT);
        assert_eq!(
            h.next(LIMIT),
            Next::Stop(Step::Paused),
            "held, nothing left"
        );
        assert!(h.message().body.is_empty(), "nothing released yet");
        h.resume = true;
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Complete));
        assert_eq!(h.message().body, b"abcd");
    }

    #[test]
    fn stop_iteration_no_buffer_drops_the_chunk() {
        let mut h = half(&["ab", "cd"], false);
        h.next(LIMIT);
        h.headers_returned(Action::Continue, false);
        h.next(LIMIT);
        h.body_returned(Action::StopIterationNoBuffer, LIMIT);
        assert!(!h.body_visible());
        assert_eq!(h.next(LIMIT), body(2, true), "the next chunk alone");
        h.body_returned(Action::Continue, LIMIT);
        h.next(LIMIT);
        assert_eq!(h.message().body, b"cd");
    }

    #[test]
    fn a_buffer_past_the_limit_overflows() {
        let big = "x".repeat(60);
        let mut h = half(&[&big, &big], false);
        h.next(LIMIT);
        h.headers_returned(Action::Continue, false);
        h.next(LIMIT);
        h.body_returned(Action::StopIterationAndBuffer, LIMIT);
        // Appending the second chunk would exceed it: no callback.
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Overflow));

        // A filter that grows the buffer in its callback overflows when it asks to keep it.
        let mut h = half(&["ab"], false);
        h.next(LIMIT);
        h.headers_returned(Action::Continue, false);
        h.next(LIMIT);
        h.buffer = vec![0; LIMIT + 1];
        assert_eq!(
            h.body_returned(Action::StopIterationAndBuffer, LIMIT),
            Step::Overflow
        );
    }

    #[test]
    fn trailers_come_after_the_body_and_can_hold() {
        let mut h = half(&["ab"], true);
        assert_eq!(
            h.next(LIMIT),
            Next::Headers {
                count: 1,
                end_of_stream: false
            }
        );
        h.headers_returned(Action::Continue, false);
        assert_eq!(h.next(LIMIT), body(2, false), "trailers follow");
        assert!(!h.in_last_body());
        h.body_returned(Action::StopIterationAndBuffer, LIMIT);
        assert_eq!(h.next(LIMIT), Next::Trailers { count: 1 });
        assert!(h.trailers_open);
        h.trailers_returned(Action::StopIteration);
        assert!(h.body_visible(), "the buffered body is still held");
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Paused));
        h.resume = true;
        assert_eq!(h.next(LIMIT), Next::Stop(Step::Complete));
        assert!(!h.trailers_open);
        let m = h.message();
        assert_eq!((m.body.as_slice(), m.trailers.len()), (&b"ab"[..], 1));
    }

    #[test]
    fn the_record_keeps_the_headers_as_released() {
        let mut h = half(&["ab"], false);
        h.next(LIMIT);
        h.headers.add("x-before", "1");
        h.headers_returned(Action::StopIteration, true);
        h.next(LIMIT);
        h.headers.add("x-while-held", "1");
        h.body_returned(Action::Continue, LIMIT);
        h.headers.add("x-after", "1");
        let m = h.message();
        assert!(m.headers.contains("x-before") && m.headers.contains("x-while-held"));
        assert!(!m.headers.contains("x-after"));
    }
}
