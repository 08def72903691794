//! Bodies that can carry a `session`: a form body buffered whole (up to `max_body_bytes`),
//! a multipart body read up to its first file part with the headers held, then the rest of
//! it as it streams past.

use super::host::Level;
use super::verdict::{Applied, BodyStrip, Strip, deny};
use super::{Action, Request, RequestHost, Stage};
use crate::config::Config;
use crate::decide::Denial;
use crate::multipart::{Outcome, Scanner};
use crate::session::{SessionFinding, find_params};

const UNREADABLE: &str = "the body could not be read";

impl Request {
    /// A form body, buffered to its end with the headers held.
    pub(super) fn form_body(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        query: SessionFinding,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        if size > config.max_body_bytes {
            return self.conclude_now(host, config, SessionFinding::TooLarge, Strip::default());
        }
        if !end_of_stream {
            self.stage = Stage::Form { query };
            return Action::Pause;
        }
        let Some(body) = host.body(0, size) else {
            let unreadable = SessionFinding::Unparseable(UNREADABLE);
            return self.conclude_now(host, config, unreadable, Strip::default());
        };
        let found = find_params(&body);
        self.env = std::mem::take(&mut self.env).merge(found.env);
        let in_body = found.session;
        let strip = Strip {
            query: matches!(query, SessionFinding::Found(_)),
            body: if matches!(in_body, SessionFinding::Found(_)) {
                BodyStrip::Form(size)
            } else {
                BodyStrip::Nothing
            },
        };
        self.conclude_now(host, config, query.merge(in_body), strip)
    }

    /// A multipart body up to its first file part, with the headers held.
    pub(super) fn multipart_head(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        query: SessionFinding,
        mut scanner: Box<Scanner>,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        let cap = config.max_body_bytes;
        let unreadable = SessionFinding::Unparseable(UNREADABLE);
        // Read only what arrived since the last callback, and no more of the head than `cap`.
        let seen = scanner.seen();
        let head_end = size.min(cap);
        let Some(new) = host.body(seen, head_end.saturating_sub(seen)) else {
            return self.conclude_now(host, config, unreadable, Strip::default());
        };
        let complete = end_of_stream && size <= cap;
        match scanner.feed(&new, complete) {
            Outcome::Pending if size >= cap => {
                self.conclude_now(host, config, SessionFinding::TooLarge, Strip::default())
            }
            Outcome::Pending => {
                self.stage = Stage::MultipartHead { query, scanner };
                Action::Pause
            }
            Outcome::Decided {
                finding,
                env,
                session_parts,
            } => {
                self.env = std::mem::take(&mut self.env).merge(env);
                // Whatever was buffered beyond the head is the start of the tail.
                let mut finding = query.clone().merge(finding);
                if size > head_end && !finding.is_refusal() {
                    let rest = host.body(head_end, size - head_end);
                    match rest.map(|rest| scanner.feed(&rest, end_of_stream)) {
                        Some(Outcome::Late(late)) => finding = late,
                        Some(Outcome::LateEnv(env)) => self.env = env,
                        Some(_) => {}
                        None => finding = unreadable,
                    }
                }
                let strip = Strip {
                    query: matches!(query, SessionFinding::Found(_)),
                    body: BodyStrip::Multipart(session_parts),
                };
                let applied = self.conclude(host, config, finding, strip);
                if applied == Applied::Denied {
                    return Action::Pause;
                }
                if !end_of_stream {
                    self.stage = Stage::MultipartTail { scanner };
                }
                Action::Continue
            }
            Outcome::Streaming | Outcome::Late(_) | Outcome::LateEnv(_) => Action::Continue,
        }
    }

    /// The rest of a multipart body, after the headers were released: each callback holds
    /// only the newly arrived bytes.
    pub(super) fn multipart_tail(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        mut scanner: Box<Scanner>,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some(chunk) = host.body(0, size) else {
            deny(host, config, &Denial::UnparseableBody(UNREADABLE));
            return Action::Pause;
        };
        match scanner.feed(&chunk, end_of_stream) {
            Outcome::Late(finding) => {
                let denial = match finding {
                    SessionFinding::Conflicting => Denial::ConflictingSessions,
                    SessionFinding::Unparseable(why) => Denial::UnparseableBody(why),
                    _ => Denial::StrayToken,
                };
                host.log(
                    Level::Info,
                    &format!(
                        "pat-edge: request ended after its head was forwarded ({}): a later multipart part {}",
                        denial.reason().name(),
                        denial.message()
                    ),
                );
                deny(host, config, &denial);
                Action::Pause
            }
            Outcome::LateEnv(env) => {
                // Only a token limited to environments is judged on it: the head named one
                // environment, a later part names another (or another spelling).
                self.env = env;
                if let Some(masked) = self.env_limited.take() {
                    let denial = Denial::AmbiguousEnvironment { masked };
                    host.log(
                        Level::Info,
                        "pat-edge: request ended after its head was forwarded (ambiguous_environment): a later multipart part names its environment again",
                    );
                    deny(host, config, &denial);
                    return Action::Pause;
                }
                if !end_of_stream {
                    self.stage = Stage::MultipartTail { scanner };
                }
                Action::Continue
            }
            _ => {
                if !end_of_stream {
                    self.stage = Stage::MultipartTail { scanner };
                }
                Action::Continue
            }
        }
    }
}
