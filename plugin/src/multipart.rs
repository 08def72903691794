//! Reading a `multipart/form-data` body as it streams: the `session` field, and every
//! other place a token could hide.
//!
//! Upload clients send their form fields before the file. The *head* (the parts before the
//! first file part, or the whole body when there is none) decides the request: the filter
//! holds the request headers only until then, so a large upload is never buffered. The
//! rest of the body is still read as it streams past, and a `session` or a token-format
//! value in a later field refuses the request then ([`Outcome::Late`]): the piece that
//! carries it is never forwarded.
//!
//! The scanner is incremental: each byte is looked at a bounded number of times whatever
//! the chunking (a body trickled in 250-byte writes costs what it costs sent at once). It
//! keeps only what it still needs: part headers until they are complete (at most
//! [`MAX_PART_HEADER_BYTES`]), a `session` value until its part ends (at most
//! [`MAX_SESSION_BYTES`]), and a delimiter's length of overlap.
//!
//! Refused as ambiguous (another parser could read them differently): a part with two
//! `Content-Disposition` headers, an encoded `name*`, a `session` part with a filename, a
//! `session` field that differs from another (the query's included) or hides a token, a part
//! named `session` in another case (`Session`, `SESSION`) beside a token in the head or the
//! query, a token-format value in any other field, malformed delimiters or part headers.
//!
//! The same scan finds the body's `envName` ([`crate::env_name`]): a field named `envName`
//! is a value (its first [`MAX_ENV_NAME_BYTES`] bytes kept, invalid UTF-8 replaced), a part
//! named `envName` in another case, or a file part under that name, makes the finding
//! ambiguous. Nothing about `envName` refuses the body here: only a token limited to
//! environments is judged on it, by the caller. A part after the head that changes the
//! request's finding is reported once ([`Outcome::LateEnv`]).

use std::borrow::Cow;
use std::ops::Range;

use memchr::memmem;

use crate::env_name::{ENV_NAME_PARAM, EnvFinding, EnvName, MAX_ENV_NAME_BYTES, is_env_other_case};
use crate::session::{SESSION_PARAM, SessionFinding, is_other_case};
use crate::stray::{Spotter, hides_token};

/// Longest header block of one part.
pub const MAX_PART_HEADER_BYTES: usize = 16 * 1024;
/// Longest `session` field value.
pub const MAX_SESSION_BYTES: usize = 4096;
/// Most headers in one part.
const MAX_PART_HEADERS: usize = 16;
/// Most transport padding (spaces, tabs) after a delimiter.
const MAX_PADDING: usize = 64;

/// What a [`Scanner::feed`] call established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The head is not complete yet.
    Pending,
    /// The head is complete (returned once): what it carries, and the byte ranges of its
    /// `session` parts (delimiter included; removing them leaves a valid body).
    Decided {
        /// The session found in the head, or why the request is refused.
        finding: SessionFinding,
        /// The body's `envName` (the head's, and that of any later part already read).
        env: EnvFinding,
        /// Where the head's `session` parts are, in body offsets.
        session_parts: Vec<Range<usize>>,
    },
    /// Decided earlier; nothing wrong in what streamed past since.
    Streaming,
    /// Decided earlier, and a later part refuses the request (returned once; the scan ends).
    Late(SessionFinding),
    /// Decided earlier, and a later part changes the request's `envName` finding (the
    /// query's and the body's merged) from what it was when decided: the new finding
    /// (returned once; the scan goes on, nothing is refused for it here).
    LateEnv(EnvFinding),
}

#[derive(Debug, Clone)]
enum State {
    /// Before the first delimiter.
    Preamble,
    /// Just after a delimiter (at `at`): `--` closes the body, else padding and CRLF.
    AfterDelimiter { part_start: usize },
    /// The part's header block, from `at`.
    Headers { part_start: usize },
    /// The part's content, from `content_start`.
    Content {
        part_start: usize,
        content_start: usize,
        kind: Part,
    },
    /// After the closing delimiter: nothing is looked at.
    Epilogue,
    /// Refused: nothing more is looked at.
    Refused,
}

#[derive(Debug, Clone)]
enum Part {
    /// The `session` field: its value is kept until the part ends.
    Session,
    /// Another field: searched for tokens as it streams. `other_case`: its name is
    /// `session` in another case (judged when it ends, so that a token in it is reported as
    /// stray, as in a query). `env`: what it is to the `envName` finding.
    Field {
        spotter: Spotter,
        other_case: bool,
        env: EnvPart,
    },
    /// A file: skipped.
    File,
}

/// What a field is to the `envName` finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EnvPart {
    /// Nothing.
    Unrelated,
    /// The `envName` field: its value is kept (up to a cap) as it streams.
    Value,
    /// A field named `envName` in another case.
    OtherCase,
}

/// The first bytes of an `envName` field's value, and its length.
#[derive(Debug)]
struct EnvValue {
    bytes: [u8; MAX_ENV_NAME_BYTES],
    len: usize,
}

impl EnvValue {
    fn feed(&mut self, piece: &[u8]) {
        let free = self.bytes.get_mut(self.len..).unwrap_or_default();
        for (slot, &b) in free.iter_mut().zip(piece) {
            *slot = b;
        }
        self.len = self.len.saturating_add(piece.len());
    }

    /// The value (invalid UTF-8 replaced), and a fresh start for the next one.
    fn take(&mut self) -> EnvName {
        let len = std::mem::take(&mut self.len);
        match self.bytes.get(..len) {
            Some(bytes) => EnvName::new(&String::from_utf8_lossy(bytes)),
            None => EnvName::Long,
        }
    }
}

/// An incremental scan of one multipart body.
#[derive(Debug)]
pub struct Scanner {
    delimiter: Vec<u8>,
    line_delimiter: Vec<u8>,
    /// Bytes not consumed yet; `buf[0]` is body offset `buf_at`.
    buf: Vec<u8>,
    buf_at: usize,
    /// Body offset the state machine is at.
    at: usize,
    /// Body offset from which the pending search resumes.
    search_from: usize,
    state: State,
    finding: SessionFinding,
    /// The query's `session` value, which parts after the head must agree with too.
    query: Option<String>,
    /// The body's `envName` finding, over every part read.
    env: EnvFinding,
    /// The query's, for parts after the head.
    query_env: EnvFinding,
    /// The value of the `envName` field being read.
    env_value: EnvValue,
    /// The request's `envName` finding (query and body) as reported with the head, once it
    /// is; `None` after a later change was reported.
    decided_env: Option<EnvFinding>,
    /// Whether a part changed [`Self::env`] since the head was reported.
    env_touched: bool,
    session_parts: Vec<Range<usize>>,
    decided: bool,
    reported: bool,
    /// Whether the body's first bytes were checked for an opening delimiter.
    opening_checked: bool,
}

/// Why scanning stopped inside `run`.
enum Stop {
    /// Needs more bytes.
    More,
    /// The body is refused.
    Refused(SessionFinding),
    /// Nothing more to look at.
    Finished,
}

fn unparseable(why: &'static str) -> Stop {
    Stop::Refused(SessionFinding::Unparseable(why))
}

impl Scanner {
    /// A scanner for a body with this boundary (as [`crate::content_type::classify`] found it).
    pub fn new(boundary: &str) -> Self {
        Self {
            delimiter: [b"--", boundary.as_bytes()].concat(),
            line_delimiter: [b"\r\n--", boundary.as_bytes()].concat(),
            buf: Vec::new(),
            buf_at: 0,
            at: 0,
            search_from: 0,
            state: State::Preamble,
            finding: SessionFinding::Absent,
            query: None,
            env: EnvFinding::Absent,
            query_env: EnvFinding::Absent,
            env_value: EnvValue {
                bytes: [0; MAX_ENV_NAME_BYTES],
                len: 0,
            },
            decided_env: None,
            env_touched: false,
            session_parts: Vec::new(),
            decided: false,
            reported: false,
            opening_checked: false,
        }
    }

    /// A scanner for the body of a request whose query carries `query`. The head's finding
    /// is still the body's alone (the caller merges it with the query's); a part after the
    /// head, which can no longer be merged, is judged against the query's `session` as well
    /// as the head's.
    pub fn beside_query(mut self, query: &SessionFinding) -> Self {
        if let SessionFinding::Found(value) = query {
            self.query = Some(value.clone());
        }
        self
    }

    /// The query's `envName` finding: a part after the head is reported when it changes
    /// the request's ([`Outcome::LateEnv`]); the head's finding is still the body's alone.
    pub fn beside_query_env(mut self, query: &EnvFinding) -> Self {
        self.query_env = query.clone();
        self
    }

    /// Body bytes fed so far.
    pub fn seen(&self) -> usize {
        self.buf_at + self.buf.len()
    }

    /// Whether the head has been decided.
    pub fn is_decided(&self) -> bool {
        self.decided
    }

    /// Feeds the next bytes of the body (`end`: nothing follows).
    pub fn feed(&mut self, chunk: &[u8], end: bool) -> Outcome {
        let was_decided = self.reported;
        if matches!(self.state, State::Refused) {
            return if was_decided {
                Outcome::Streaming
            } else {
                Outcome::Pending
            };
        }
        self.buf.extend_from_slice(chunk);
        let stop = self.run();
        self.compact();
        let refusal = match stop {
            Stop::Refused(finding) => {
                self.state = State::Refused;
                Some(finding)
            }
            Stop::More if end => self.truncated(),
            Stop::More | Stop::Finished => None,
        };
        if end {
            self.decided = true;
        }
        if !was_decided {
            if let Some(finding) = refusal {
                self.decided = true;
                self.reported = true;
                return Outcome::Decided {
                    finding,
                    env: self.env.clone(),
                    session_parts: Vec::new(),
                };
            }
            if self.decided {
                self.reported = true;
                self.decided_env = Some(self.query_env.clone().merge(self.env.clone()));
                self.env_touched = false;
                return Outcome::Decided {
                    finding: self.finding.clone(),
                    env: self.env.clone(),
                    session_parts: std::mem::take(&mut self.session_parts),
                };
            }
            return Outcome::Pending;
        }
        match refusal {
            Some(finding) => Outcome::Late(finding),
            None => self.late_env().map_or(Outcome::Streaming, Outcome::LateEnv),
        }
    }

    /// The request's `envName` finding, the first time a part after the head changed it.
    fn late_env(&mut self) -> Option<EnvFinding> {
        if !std::mem::take(&mut self.env_touched) {
            return None;
        }
        let decided = self.decided_env.as_ref()?;
        let now = self.query_env.clone().merge(self.env.clone());
        if now == *decided {
            return None;
        }
        self.decided_env = None;
        Some(now)
    }

    /// Folds what a part says about `envName` into the body's finding.
    fn env_found(&mut self, found: EnvFinding) {
        self.env = std::mem::take(&mut self.env).merge(found);
        self.env_touched = true;
    }

    /// The body ended while more was expected.
    fn truncated(&mut self) -> Option<SessionFinding> {
        if self.decided {
            // The head was complete; a cut-off tail is the platform's problem.
            return None;
        }
        let why = match self.state {
            State::Preamble => "the multipart body has no opening boundary",
            State::AfterDelimiter { .. } => "the multipart body ends inside a boundary",
            State::Headers { .. } => "the multipart body ends inside part headers",
            State::Content { .. } => "the multipart body ends inside a field",
            State::Epilogue | State::Refused => return None,
        };
        Some(SessionFinding::Unparseable(why))
    }

    /// The unconsumed bytes from body offset `from`.
    fn tail(&self, from: usize) -> &[u8] {
        self.buf
            .get(from.saturating_sub(self.buf_at)..)
            .unwrap_or_default()
    }

    /// The bytes between two body offsets.
    fn slice(&self, range: Range<usize>) -> &[u8] {
        slice_of(&self.buf, self.buf_at, range)
    }

    /// Drops what no state needs any more (amortized: only when it is at least half).
    fn compact(&mut self) {
        let needed_from = match &self.state {
            State::Content {
                content_start,
                kind: Part::Session,
                ..
            } => *content_start,
            State::Preamble if !self.opening_checked => 0,
            State::Preamble => self.search_from,
            State::Content { .. } => self.search_from.min(self.at),
            State::Epilogue | State::Refused => self.seen(),
            _ => self.at,
        };
        let drop = needed_from.saturating_sub(self.buf_at).min(self.buf.len());
        if drop > 0 && drop * 2 >= self.buf.len() {
            self.buf.drain(..drop);
            self.buf_at += drop;
        }
    }

    /// Runs the state machine over the buffered bytes.
    fn run(&mut self) -> Stop {
        loop {
            let step = match self.state.clone() {
                State::Preamble => self.preamble(),
                State::AfterDelimiter { part_start } => self.after_delimiter(part_start),
                State::Headers { part_start } => self.headers(part_start),
                State::Content {
                    part_start,
                    content_start,
                    kind,
                } => self.content(part_start, content_start, kind),
                State::Epilogue => {
                    self.decided = true;
                    Err(Stop::Finished)
                }
                State::Refused => Err(Stop::Finished),
            };
            if let Err(stop) = step {
                return stop;
            }
        }
    }

    /// Finds the next `CRLF--boundary` at or after `from`, resuming where the last search
    /// that came up empty ended; remembers where to resume when absent.
    fn find_delimiter(&mut self, from: usize) -> Option<usize> {
        let start = self.search_from.max(from);
        match memmem::find(self.tail(start), &self.line_delimiter) {
            Some(i) => Some(start + i),
            None => {
                let overlap = self.line_delimiter.len() - 1;
                self.search_from = self.seen().saturating_sub(overlap).max(start);
                None
            }
        }
    }

    fn preamble(&mut self) -> Result<(), Stop> {
        // The first delimiter opens the body, or follows a preamble line.
        if !self.opening_checked {
            let head = self.tail(0);
            let n = head.len().min(self.delimiter.len());
            if head.get(..n) != self.delimiter.get(..n) {
                self.opening_checked = true;
            } else if n < self.delimiter.len() {
                return Err(Stop::More);
            } else {
                self.opening_checked = true;
                self.at = self.delimiter.len();
                self.state = State::AfterDelimiter { part_start: 0 };
                return Ok(());
            }
        }
        let found = self.find_delimiter(0).ok_or(Stop::More)?;
        self.at = found + self.line_delimiter.len();
        self.state = State::AfterDelimiter {
            part_start: found + 2,
        };
        Ok(())
    }

    fn after_delimiter(&mut self, part_start: usize) -> Result<(), Stop> {
        let rest = self.tail(self.at);
        if rest.len() < 2 {
            return Err(Stop::More);
        }
        if rest.starts_with(b"--") {
            self.state = State::Epilogue;
            return Ok(());
        }
        let padding = rest
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if padding > MAX_PADDING {
            return Err(unparseable("malformed multipart boundary line"));
        }
        match rest.get(padding..padding + 2) {
            Some(b"\r\n") => {
                self.at += padding + 2;
                self.search_from = self.at;
                self.state = State::Headers { part_start };
                Ok(())
            }
            Some(_) => Err(unparseable("malformed multipart boundary line")),
            None => Err(Stop::More),
        }
    }

    fn headers(&mut self, part_start: usize) -> Result<(), Stop> {
        let rest = self.tail(self.at);
        if rest.starts_with(b"\r\n") {
            return Err(unparseable("a multipart part without content-disposition"));
        }
        if rest.len() < 2 {
            return Err(Stop::More);
        }
        // The block ends at the first blank line; search from where the last search ended.
        let from = self.search_from.max(self.at).saturating_sub(3).max(self.at);
        let end = match memmem::find(self.tail(from), b"\r\n\r\n") {
            Some(i) => from + i + 4,
            None => {
                if self.seen() - self.at > MAX_PART_HEADER_BYTES {
                    return Err(unparseable("multipart part headers are too large"));
                }
                self.search_from = self.seen();
                return Err(Stop::More);
            }
        };
        if end - self.at > MAX_PART_HEADER_BYTES {
            return Err(unparseable("multipart part headers are too large"));
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
        let block = self.slice(self.at..end);
        let parsed = match httparse::parse_headers(block, &mut headers) {
            Ok(httparse::Status::Complete((_, parsed))) => parsed,
            Ok(httparse::Status::Partial) | Err(_) => {
                return Err(unparseable("malformed multipart part headers"));
            }
        };
        let mut dispositions = parsed
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case("content-disposition"));
        let disposition = match (dispositions.next(), dispositions.next()) {
            (Some(d), None) => parse_disposition(d.value).map_err(unparseable)?,
            (Some(_), Some(_)) => {
                return Err(unparseable(
                    "a multipart part with two content-disposition headers",
                ));
            }
            (None, _) => {
                return Err(unparseable("a multipart part without content-disposition"));
            }
        };
        let is_session = disposition.name.as_deref() == Some(SESSION_PARAM);
        let other_case =
            (disposition.name.as_deref()).is_some_and(|name| is_other_case(name.as_bytes()));
        let env = match disposition.name.as_deref() {
            Some(ENV_NAME_PARAM) => EnvPart::Value,
            Some(name) if is_env_other_case(name.as_bytes()) => EnvPart::OtherCase,
            _ => EnvPart::Unrelated,
        };
        // Whether this part comes after the head (a file part is the head's end, not in it).
        let late = self.decided;
        let kind = match (is_session, disposition.is_file) {
            (true, true) => return Err(unparseable("a session part with a filename")),
            (true, false) => Part::Session,
            (false, true) => {
                // The head ends here: fields after the first file are read as they stream.
                self.decided = true;
                Part::File
            }
            (false, false) => Part::Field {
                spotter: Spotter::default(),
                other_case,
                env,
            },
        };
        // A token in a part's name or filename is as stray as one in a field.
        let stray = |text: &Option<String>| {
            text.as_deref()
                .is_some_and(|t| crate::stray::contains_token(t.as_bytes()))
        };
        if stray(&disposition.name) || stray(&disposition.filename) {
            return Err(Stop::Refused(SessionFinding::StrayToken));
        }
        if other_case && matches!(kind, Part::File) {
            self.other_case(late)?;
        }
        if env != EnvPart::Unrelated && matches!(kind, Part::File) {
            // The platform might take a file part for the parameter: the filter does not.
            self.env_found(EnvFinding::Ambiguous);
        }
        self.at = end;
        self.search_from = end;
        self.state = State::Content {
            part_start,
            content_start: end,
            kind,
        };
        Ok(())
    }

    fn content(&mut self, part_start: usize, content_start: usize, kind: Part) -> Result<(), Stop> {
        let len = self.line_delimiter.len();
        let found = self.find_delimiter(content_start);
        let content_end = found.unwrap_or(self.search_from.max(self.at));
        let mut kind = kind;
        match &mut kind {
            Part::Session => {
                if content_end - content_start > MAX_SESSION_BYTES {
                    return Err(unparseable("the session field is too long"));
                }
            }
            Part::Field { spotter, env, .. } => {
                let piece = slice_of(&self.buf, self.buf_at, self.at..content_end);
                if spotter.feed(piece) {
                    return Err(Stop::Refused(SessionFinding::StrayToken));
                }
                if *env == EnvPart::Value {
                    self.env_value.feed(piece);
                }
            }
            Part::File => {}
        }
        self.at = content_end;
        let Some(delimiter_at) = found else {
            self.state = State::Content {
                part_start,
                content_start,
                kind,
            };
            return Err(Stop::More);
        };
        let next_part = delimiter_at + 2;
        match kind {
            Part::Session => {
                self.session_value(part_start..next_part, content_start..delimiter_at)?;
            }
            Part::Field {
                other_case: true, ..
            } => self.other_case(self.decided)?,
            Part::Field {
                env: EnvPart::Value,
                ..
            } => {
                let value = self.env_value.take();
                self.env_found(EnvFinding::Found(value));
            }
            Part::Field {
                env: EnvPart::OtherCase,
                ..
            } => self.env_found(EnvFinding::Ambiguous),
            Part::Field { .. } | Part::File => {}
        }
        self.at = delimiter_at + len;
        self.search_from = self.at;
        self.state = State::AfterDelimiter {
            part_start: next_part,
        };
        Ok(())
    }

    /// A complete `session` field.
    fn session_value(&mut self, part: Range<usize>, value: Range<usize>) -> Result<(), Stop> {
        let raw = self.slice(value);
        let Ok(text) = std::str::from_utf8(raw) else {
            return Err(unparseable("the session field is not UTF-8"));
        };
        if hides_token(raw) {
            return Err(Stop::Refused(SessionFinding::StrayToken));
        }
        if self.decided {
            // After the head the value can no longer be stripped: any token there would
            // reach the platform, and any other value must agree with the head's or the
            // query's.
            if crate::stray::contains_token(raw) {
                return Err(Stop::Refused(SessionFinding::StrayToken));
            }
            return match self.decisive() {
                Some(decisive) if decisive != text => {
                    Err(Stop::Refused(SessionFinding::Conflicting))
                }
                _ => Ok(()),
            };
        }
        let text = text.to_string();
        let finding = std::mem::replace(&mut self.finding, SessionFinding::Absent);
        self.finding = finding.add(Cow::Owned(text));
        if self.finding == SessionFinding::Conflicting {
            return Err(Stop::Refused(SessionFinding::Conflicting));
        }
        self.session_parts.push(part);
        Ok(())
    }

    /// A part named `session` in another case: beside a token, a conflict.
    fn other_case(&mut self, late: bool) -> Result<(), Stop> {
        let conflict = if late {
            self.decisive().is_some_and(pat_core::token::is_token_like)
        } else {
            let finding = std::mem::replace(&mut self.finding, SessionFinding::Absent);
            self.finding = finding.with_other_case();
            self.finding == SessionFinding::Conflicting
        };
        if conflict {
            return Err(Stop::Refused(SessionFinding::Conflicting));
        }
        Ok(())
    }

    /// The `session` value the request is decided on, as far as this scan knows: the
    /// head's, else the query's.
    fn decisive(&self) -> Option<&str> {
        match &self.finding {
            SessionFinding::Found(value) => Some(value),
            _ => self.query.as_deref(),
        }
    }
}

/// The bytes between two body offsets of `buf`, which starts at body offset `buf_at`.
fn slice_of(buf: &[u8], buf_at: usize, range: Range<usize>) -> &[u8] {
    let start = range.start.saturating_sub(buf_at);
    let end = range.end.saturating_sub(buf_at);
    buf.get(start..end).unwrap_or_default()
}

/// `body` without the given ranges (sorted, non-overlapping, as [`scan`] reports them);
/// out-of-bounds parts of a range are ignored.
pub fn remove_ranges(body: &[u8], ranges: &[Range<usize>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at = 0;
    for range in ranges {
        let start = range.start.clamp(at, body.len());
        out.extend_from_slice(body.get(at..start).unwrap_or_default());
        at = range.end.clamp(start, body.len());
    }
    out.extend_from_slice(body.get(at..).unwrap_or_default());
    out
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Disposition {
    name: Option<String>,
    filename: Option<String>,
    is_file: bool,
}

/// Parses `form-data; name="x"; filename="y"` (quoted strings with `\` escapes).
fn parse_disposition(value: &[u8]) -> Result<Disposition, &'static str> {
    let text = std::str::from_utf8(value).map_err(|_| "a content-disposition that is not UTF-8")?;
    let mut params = ParamIter { rest: text };
    let kind = params.token().ok_or("an empty content-disposition")?;
    if !kind.eq_ignore_ascii_case("form-data") {
        return Err("a multipart part that is not form-data");
    }
    let mut out = Disposition::default();
    while let Some(param) = params.next_param() {
        let (name, value) = param?;
        match name.to_ascii_lowercase().as_str() {
            "name" if out.name.is_some() => return Err("a multipart part with two names"),
            "name" => out.name = Some(value),
            // An RFC 5987 name could decode to `session` on the platform: refuse to guess.
            "name*" => return Err("a multipart part with an encoded name*"),
            "filename" | "filename*" => {
                out.is_file = true;
                out.filename = Some(value);
            }
            _ => {}
        }
    }
    Ok(out)
}

struct ParamIter<'a> {
    rest: &'a str,
}

impl<'a> ParamIter<'a> {
    fn token(&mut self) -> Option<&'a str> {
        let text = self.rest.trim_start();
        let end = text.find([';', '=']).unwrap_or(text.len());
        let (token, rest) = text.split_at(end);
        self.rest = rest;
        let token = token.trim();
        (!token.is_empty()).then_some(token)
    }

    fn next_param(&mut self) -> Option<Result<(String, String), &'static str>> {
        let rest = self.rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        let Some(rest) = rest.strip_prefix(';') else {
            return Some(Err("malformed content-disposition parameters"));
        };
        self.rest = rest;
        if self.rest.trim().is_empty() {
            return None;
        }
        let Some(name) = self.token() else {
            return Some(Err("malformed content-disposition parameters"));
        };
        let Some(rest) = self.rest.trim_start().strip_prefix('=') else {
            return Some(Err("a content-disposition parameter without a value"));
        };
        let rest = rest.trim_start();
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, escaped)) => value.push(escaped),
                        None => return Some(Err("an unterminated quoted string")),
                    },
                    '"' => {
                        self.rest = quoted.get(i + 1..).unwrap_or_default();
                        return Some(Ok((name.to_string(), value)));
                    }
                    other => value.push(other),
                }
            }
            Some(Err("an unterminated quoted string"))
        } else {
            let end = rest.find(';').unwrap_or(rest.len());
            let (value, tail) = rest.split_at(end);
            self.rest = tail;
            Some(Ok((name.to_string(), value.trim().to_string())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pat_core::token::Token;
    use proptest::prelude::*;

    const B: &str = "XyZ";

    fn field(name: &str, value: &str) -> String {
        format!("--{B}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
    }

    fn file(name: &str) -> String {
        format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"a.war\"\r\nContent-Type: application/octet-stream\r\n\r\nBINARY\r\n"
        )
    }

    fn end() -> String {
        format!("--{B}--\r\n")
    }

    fn token() -> String {
        Token::generate().expect("rng").expose().to_string()
    }

    /// Feeds `body` in pieces cut at `cuts`; returns the head's outcome and the first late
    /// refusal, if any.
    fn scan_in_pieces(body: &[u8], cuts: &[usize]) -> (Outcome, Option<SessionFinding>) {
        let mut scanner = Scanner::new(B);
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
        cuts.sort_unstable();
        cuts.push(body.len());
        let mut at = 0;
        let mut decided = None;
        let mut late = None;
        for (i, &cut) in cuts.iter().enumerate() {
            let end = i == cuts.len() - 1;
            match scanner.feed(&body[at..cut], end) {
                Outcome::Pending | Outcome::Streaming | Outcome::LateEnv(_) => {}
                outcome @ Outcome::Decided { .. } => decided = Some(outcome),
                Outcome::Late(finding) => {
                    late = Some(finding);
                    break;
                }
            }
            at = cut;
        }
        (decided.expect("a complete body always decides"), late)
    }

    /// What the request comes to: a late refusal, else the head's finding.
    fn verdict(body: &str) -> SessionFinding {
        verdict_bytes(body.as_bytes(), &[])
    }

    fn verdict_bytes(body: &[u8], cuts: &[usize]) -> SessionFinding {
        match scan_in_pieces(body, cuts) {
            (_, Some(late)) => late,
            (Outcome::Decided { finding, .. }, None) => finding,
            (other, None) => panic!("{other:?}"),
        }
    }

    #[test]
    fn finds_the_session_field_before_the_file() {
        let body = [
            field("envName", "e"),
            field("session", "pate_x"),
            file("file"),
            end(),
        ]
        .concat();
        assert_eq!(verdict(&body), SessionFinding::Found("pate_x".into()));
        // A preamble is allowed.
        let body = ["preamble\r\n".to_string(), field("session", "s"), end()].concat();
        assert_eq!(verdict(&body), SessionFinding::Found("s".into()));
    }

    #[test]
    fn decides_at_the_first_file_without_the_rest_of_the_body() {
        let head = [field("session", "pate_x"), file("file")].concat();
        // The file part's content is not even needed: its headers are enough.
        let cut = head.find("BINARY").expect("file content");
        let mut scanner = Scanner::new(B);
        assert!(matches!(
            scanner.feed(&head.as_bytes()[..cut], false),
            Outcome::Decided { .. }
        ));
        // What follows streams past and is still read.
        assert_eq!(scanner.feed(b"more file bytes", false), Outcome::Streaming);
        let tail = ["\r\n".to_string(), field("note", "fine"), end()].concat();
        assert_eq!(scanner.feed(tail.as_bytes(), true), Outcome::Streaming);
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        let body = [field("a", "1"), field("session", "pate_x"), end()].concat();
        for cut in [0, 3, 10, 30, body.find("pate_x").expect("value") + 3] {
            let mut scanner = Scanner::new(B);
            assert_eq!(
                scanner.feed(&body.as_bytes()[..cut], false),
                Outcome::Pending,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn conflicts_and_garbage() {
        let body = [field("session", "a"), field("session", "b"), end()].concat();
        assert_eq!(verdict(&body), SessionFinding::Conflicting);
        let body = [field("session", "a"), field("session", "a"), end()].concat();
        assert_eq!(verdict(&body), SessionFinding::Found("a".into()));
        for (body, why) in [
            ("no boundary here".to_string(), "no opening boundary"),
            (
                format!("--{B}\r\nNo-Colon\r\n\r\nx\r\n{}", end()),
                "malformed multipart part headers",
            ),
            (
                format!("--{B}\r\nX: y\r\n\r\nx\r\n{}", end()),
                "without content-disposition",
            ),
            (
                format!(
                    "--{B}\r\nContent-Disposition: attachment; name=\"session\"\r\n\r\nx\r\n{}",
                    end()
                ),
                "not form-data",
            ),
            (
                format!(
                    "--{B}\r\nContent-Disposition: form-data; name*=utf-8''session\r\n\r\nx\r\n{}",
                    end()
                ),
                "name*",
            ),
            (
                format!(
                    "--{B}\r\nContent-Disposition: form-data; name=\"session\r\n\r\nx\r\n{}",
                    end()
                ),
                "unterminated",
            ),
            (format!("--{B}junk\r\n"), "boundary line"),
            (
                format!(
                    "--{B}\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\nnever ends"
                ),
                "ends inside a field",
            ),
            (
                format!(
                    "--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\n{}",
                    "X: y\r\n".repeat(3000)
                ),
                "too large",
            ),
        ] {
            match verdict(&body) {
                SessionFinding::Unparseable(reason) => {
                    assert!(reason.contains(why), "{body:?}: {reason}")
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn tokens_hidden_anywhere_else_are_refused() {
        let t = token();
        let session_file = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"session\"; filename=\"t.txt\"\r\n\r\n{t}\r\n"
        );
        let two_dispositions = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"a\"\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{t}\r\n"
        );
        for (body, expected) in [
            (
                [field("Session", &t), end()].concat(),
                SessionFinding::StrayToken,
            ),
            (
                [field("note", &format!("see {t}")), end()].concat(),
                SessionFinding::StrayToken,
            ),
            (
                [field("session", &format!(" {t}")), end()].concat(),
                SessionFinding::StrayToken,
            ),
            (
                [session_file, end()].concat(),
                SessionFinding::Unparseable("a session part with a filename"),
            ),
            (
                [two_dispositions, end()].concat(),
                SessionFinding::Unparseable(
                    "a multipart part with two content-disposition headers",
                ),
            ),
            // After the file part: a token in a later field or a later session.
            (
                [field("session", &t), file("f"), field("session", &t), end()].concat(),
                SessionFinding::StrayToken,
            ),
            (
                [file("f"), field("session", &t), end()].concat(),
                SessionFinding::StrayToken,
            ),
            (
                [
                    field("session", "legacy"),
                    file("f"),
                    field("session", "other"),
                    end(),
                ]
                .concat(),
                SessionFinding::Conflicting,
            ),
            (
                [file("f"), field("comment", &t), end()].concat(),
                SessionFinding::StrayToken,
            ),
        ] {
            assert_eq!(verdict(&body), expected, "{body}");
        }
        // An ordinary session after the file agrees with none before it: nothing to refuse.
        let body = [file("f"), field("session", "legacy"), end()].concat();
        assert_eq!(verdict(&body), SessionFinding::Absent);
        // File contents are not fields: a token inside an uploaded file is the user's data.
        let upload = format!(
            "--{B}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"env\"\r\n\r\nTOKEN={t}\r\n"
        );
        assert_eq!(verdict(&[upload, end()].concat()), SessionFinding::Absent);
    }

    #[test]
    fn session_in_another_case_beside_a_token_conflicts() {
        let t = token();
        for parts in [
            // In the head, after or before the token.
            vec![field("session", &t), field("Session", "x"), file("f")],
            vec![field("SESSION", ""), field("session", &t), file("f")],
            vec![field("session", &t), field("sessIon", "legacy")],
            // After the file part, where it streams past.
            vec![field("session", &t), file("f"), field("Session", "x")],
            vec![field("session", &t), file("f"), field("SESSION", "")],
            // A file part under that name.
            vec![field("session", &t), file("Session")],
            // What Java's case-insensitive comparisons also take for `session`.
            vec![field("session", &t), field("ſession", "x")],
        ] {
            let body = [parts.concat(), end()].concat();
            assert_eq!(verdict(&body), SessionFinding::Conflicting, "{body}");
        }
        // Without a token: nothing is refused.
        for parts in [
            vec![field("session", "legacy"), field("Session", "x"), file("f")],
            vec![field("Session", "x"), file("f"), field("SESSION", "y")],
            vec![field("session", "legacy"), file("f"), field("Session", "x")],
        ] {
            let body = [parts.concat(), end()].concat();
            assert!(!verdict(&body).is_refusal(), "{body}");
        }
    }

    #[test]
    fn parts_after_the_head_are_judged_beside_the_querys_session() {
        let t = token();
        let head = [field("envName", "e"), file("f")].concat();
        for (query, late, expected) in [
            (
                &t[..],
                field("Session", "x"),
                Outcome::Late(SessionFinding::Conflicting),
            ),
            (
                &t,
                field("session", "legacy"),
                Outcome::Late(SessionFinding::Conflicting),
            ),
            (
                &t,
                field("session", &t),
                Outcome::Late(SessionFinding::StrayToken),
            ),
            (&t, field("note", "fine"), Outcome::Streaming),
            // Beside an ordinary session only a different session conflicts.
            ("legacy", field("Session", "x"), Outcome::Streaming),
            ("legacy", field("session", "legacy"), Outcome::Streaming),
            (
                "legacy",
                field("session", "other"),
                Outcome::Late(SessionFinding::Conflicting),
            ),
        ] {
            let query = SessionFinding::Found(query.to_string());
            let mut scanner = Scanner::new(B).beside_query(&query);
            // The head's finding is the body's own: the caller merges it with the query's.
            assert_eq!(
                scanner.feed(head.as_bytes(), false),
                Outcome::Decided {
                    finding: SessionFinding::Absent,
                    env: env("e"),
                    session_parts: Vec::new()
                }
            );
            let tail = [late.clone(), end()].concat();
            assert_eq!(scanner.feed(tail.as_bytes(), true), expected, "{late}");
        }
        // In the head, the name is noted for the caller's merge.
        let body = [field("SESSION", "x"), file("f"), end()].concat();
        let query = SessionFinding::Found(t.clone());
        let Outcome::Decided { finding, .. } = Scanner::new(B)
            .beside_query(&query)
            .feed(body.as_bytes(), true)
        else {
            panic!("decides");
        };
        assert_eq!(finding, SessionFinding::OtherCase);
        assert_eq!(query.merge(finding), SessionFinding::Conflicting);
    }

    #[test]
    fn a_late_refusal_comes_after_the_decision() {
        let t = token();
        let head = [field("session", &t), file("f")].concat();
        let mut scanner = Scanner::new(B);
        let session_part = 0..field("session", &t).len();
        assert_eq!(
            scanner.feed(head.as_bytes(), false),
            Outcome::Decided {
                finding: SessionFinding::Found(t.clone()),
                env: EnvFinding::Absent,
                session_parts: vec![session_part],
            }
        );
        assert_eq!(scanner.feed(b"...", false), Outcome::Streaming);
        let tail = ["\r\n".to_string(), field("Session", &t), end()].concat();
        assert_eq!(
            scanner.feed(tail.as_bytes(), true),
            Outcome::Late(SessionFinding::StrayToken)
        );
    }

    #[test]
    fn session_parts_can_be_cut_out() {
        let body = [
            field("a", "1"),
            field("session", "pate_x"),
            file("file"),
            end(),
        ]
        .concat();
        let Outcome::Decided { session_parts, .. } = Scanner::new(B).feed(body.as_bytes(), true)
        else {
            panic!("decides");
        };
        assert_eq!(session_parts.len(), 1);
        let cut = remove_ranges(body.as_bytes(), &session_parts);
        assert_eq!(
            cut,
            [field("a", "1"), file("file"), end()].concat().into_bytes()
        );
        assert_eq!(remove_ranges(b"abcdef", &[1..2, 4..9]), b"acd");
        assert_eq!(remove_ranges(b"abc", &[]), b"abc");
    }

    #[test]
    fn quoted_names_with_escapes() {
        let d = parse_disposition(br#"form-data; name="ses\"sion"; filename="x;y.txt""#)
            .expect("valid");
        assert_eq!(
            d,
            Disposition {
                name: Some("ses\"sion".into()),
                filename: Some("x;y.txt".into()),
                is_file: true
            }
        );
        let d = parse_disposition(b"FORM-DATA;NAME=session").expect("valid");
        assert_eq!(d.name.as_deref(), Some("session"));
    }

    #[test]
    fn memory_stays_bounded_while_a_file_streams() {
        let mut scanner = Scanner::new(B);
        let head = [field("session", "pate_x"), file("f")].concat();
        scanner.feed(head.as_bytes(), false);
        let megabyte = vec![b'z'; 1 << 20];
        for _ in 0..8 {
            assert_eq!(scanner.feed(&megabyte, false), Outcome::Streaming);
            assert!(scanner.buf.len() < 64 * 1024, "{}", scanner.buf.len());
        }
    }

    fn env(value: &str) -> EnvFinding {
        EnvFinding::Found(EnvName::new(value))
    }

    /// What the scan says about `envName`: a late change, else the head's.
    fn env_verdict(body: &[u8], cuts: &[usize], query: &EnvFinding) -> EnvFinding {
        let mut scanner = Scanner::new(B).beside_query_env(query);
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(body.len())).collect();
        cuts.sort_unstable();
        cuts.push(body.len());
        let (mut at, mut decided, mut late) = (0, None, None);
        for (i, &cut) in cuts.iter().enumerate() {
            match scanner.feed(&body[at..cut], i == cuts.len() - 1) {
                Outcome::Decided { env, .. } => decided = Some(query.clone().merge(env)),
                Outcome::LateEnv(env) => {
                    assert!(late.is_none(), "reported once");
                    late = Some(env);
                }
                Outcome::Late(finding) => panic!("{finding:?}"),
                Outcome::Pending | Outcome::Streaming => {}
            }
            at = cut;
        }
        late.or(decided).expect("decides")
    }

    fn env_of(parts: &[String]) -> EnvFinding {
        let body = [parts.concat(), end()].concat();
        env_verdict(body.as_bytes(), &[], &EnvFinding::Absent)
    }

    #[test]
    fn finds_the_env_name_field() {
        assert_eq!(
            verdict_and_env(&[field("envName", "e"), field("session", "s"), file("f")]),
            (SessionFinding::Found("s".into()), env("e"))
        );
        for (parts, expected) in [
            (vec![field("envName", "my-project")], env("my-project")),
            (vec![field("envName", "")], env("")),
            // Multipart values are not urlencoded.
            (vec![field("envName", "a+b%41")], env("a+b%41")),
            (vec![field("envName", "e"), field("envName", "e")], env("e")),
            (
                vec![field("envName", "e"), file("f"), field("envName", "e")],
                env("e"),
            ),
            (vec![field("a", "1"), file("f")], EnvFinding::Absent),
            // Names are compared as they are: other parameters.
            (
                vec![field("envNames", "x"), field("env_name", "y")],
                EnvFinding::Absent,
            ),
        ] {
            assert_eq!(env_of(&parts), expected, "{parts:?}");
        }
        // Invalid UTF-8 replaced, not refused.
        let body = [
            format!("--{B}\r\nContent-Disposition: form-data; name=\"envName\"\r\n\r\n")
                .into_bytes(),
            b"a\xffb\r\n".to_vec(),
            end().into_bytes(),
        ]
        .concat();
        assert_eq!(
            env_verdict(&body, &[], &EnvFinding::Absent),
            env("a\u{FFFD}b")
        );
    }

    fn verdict_and_env(parts: &[String]) -> (SessionFinding, EnvFinding) {
        let body = [parts.concat(), end()].concat();
        (verdict(&body), env_of(parts))
    }

    #[test]
    fn different_or_ambiguous_env_names() {
        for (parts, expected) in [
            (
                vec![field("envName", "a"), field("envName", "b")],
                EnvFinding::Conflicting,
            ),
            (
                vec![field("envName", "a"), field("envName", "")],
                EnvFinding::Conflicting,
            ),
            (
                vec![field("envName", "a"), file("f"), field("envName", "b")],
                EnvFinding::Conflicting,
            ),
            (vec![field("envname", "a")], EnvFinding::Ambiguous),
            (
                vec![field("envName", "a"), field("ENVNAME", "a")],
                EnvFinding::Ambiguous,
            ),
            (
                vec![field("envName", "a"), file("f"), field("EnvName", "")],
                EnvFinding::Ambiguous,
            ),
            // A file part under the name, in any case: the platform might read it.
            (
                vec![field("envName", "a"), file("envName")],
                EnvFinding::Ambiguous,
            ),
            (vec![file("ENVNAME")], EnvFinding::Ambiguous),
            (vec![file("f"), file("envName")], EnvFinding::Ambiguous),
            // Ambiguity wins over a conflict.
            (
                vec![
                    field("envName", "a"),
                    field("envName", "b"),
                    field("envname", "c"),
                ],
                EnvFinding::Ambiguous,
            ),
        ] {
            assert_eq!(env_of(&parts), expected, "{parts:?}");
            // Nothing about envName refuses the body.
            let body = [parts.concat(), end()].concat();
            assert!(!verdict(&body).is_refusal(), "{body}");
        }
    }

    #[test]
    fn long_env_names_are_found_but_not_buffered() {
        let at_cap = "a".repeat(MAX_ENV_NAME_BYTES);
        let long = "a".repeat(MAX_ENV_NAME_BYTES + 1);
        assert_eq!(env_of(&[field("envName", &at_cap)]), env(&at_cap));
        assert_eq!(
            env_of(&[field("envName", &long)]),
            EnvFinding::Found(EnvName::Long)
        );
        assert_eq!(
            env_of(&[field("envName", &long), field("envName", &at_cap)]),
            EnvFinding::Conflicting
        );
        // A huge value streams through without being kept, before or after the file.
        for late in [false, true] {
            let mut scanner = Scanner::new(B);
            let open = format!("--{B}\r\nContent-Disposition: form-data; name=\"envName\"\r\n\r\n");
            let opening = if late {
                [field("session", "s"), file("f"), open].concat()
            } else {
                open
            };
            scanner.feed(opening.as_bytes(), false);
            let megabyte = vec![b'z'; 1 << 20];
            for _ in 0..4 {
                scanner.feed(&megabyte, false);
                assert!(scanner.buf.len() < 64 * 1024, "{}", scanner.buf.len());
            }
            let outcome = scanner.feed(format!("\r\n{}", end()).as_bytes(), true);
            if late {
                assert_eq!(outcome, Outcome::LateEnv(EnvFinding::Found(EnvName::Long)));
            } else {
                assert!(
                    matches!(&outcome, Outcome::Decided { finding: SessionFinding::Absent, env, .. } if *env == EnvFinding::Found(EnvName::Long)),
                    "{outcome:?}"
                );
            }
        }
    }

    #[test]
    fn parts_after_the_head_that_change_the_env_name_are_reported_once() {
        let head = [field("envName", "a"), field("session", "s"), file("f")].concat();
        for (query, late, expected) in [
            (
                EnvFinding::Absent,
                vec![field("envName", "a")],
                Outcome::Streaming,
            ),
            (
                EnvFinding::Absent,
                vec![field("note", "x")],
                Outcome::Streaming,
            ),
            (
                EnvFinding::Absent,
                vec![field("envName", "b")],
                Outcome::LateEnv(EnvFinding::Conflicting),
            ),
            (
                EnvFinding::Absent,
                vec![field("envName", "b"), field("envname", "c")],
                Outcome::LateEnv(EnvFinding::Ambiguous),
            ),
            (
                EnvFinding::Absent,
                vec![field("ENVNAME", "a")],
                Outcome::LateEnv(EnvFinding::Ambiguous),
            ),
            (
                EnvFinding::Absent,
                vec![file("envName")],
                Outcome::LateEnv(EnvFinding::Ambiguous),
            ),
            (env("a"), vec![field("envName", "a")], Outcome::Streaming),
            (
                env("b"),
                vec![field("note", "x")],
                // The head already conflicted with the query: nothing changes.
                Outcome::Streaming,
            ),
        ] {
            let mut scanner = Scanner::new(B).beside_query_env(&query);
            let Outcome::Decided { env: head_env, .. } = scanner.feed(head.as_bytes(), false)
            else {
                panic!("decides");
            };
            assert_eq!(head_env, env("a"), "the head's finding is the body's own");
            let tail = [late.concat(), end()].concat();
            assert_eq!(
                scanner.feed(tail.as_bytes(), true),
                expected,
                "{query:?} {late:?}"
            );
        }
        // Reported once, in the first callback that sees the part end; later changes are
        // not.
        let mut scanner = Scanner::new(B);
        scanner.feed(head.as_bytes(), false);
        let pieces = [field("envName", "b"), field("envname", "c"), end()].concat();
        let (first, second) = pieces.split_at(field("envName", "b").len() + 5);
        assert_eq!(
            scanner.feed(first.as_bytes(), false),
            Outcome::LateEnv(EnvFinding::Conflicting)
        );
        assert_eq!(scanner.feed(second.as_bytes(), true), Outcome::Streaming);
        // A later part's change read in the same callback as the head is in the head's.
        let body = [head.clone(), field("envName", "b"), end()].concat();
        let Outcome::Decided { env: whole, .. } = Scanner::new(B).feed(body.as_bytes(), true)
        else {
            panic!("decides");
        };
        assert_eq!(whole, EnvFinding::Conflicting);
        // A session refusal after the head wins over an env change in the same callback.
        let t = token();
        let mut scanner = Scanner::new(B);
        scanner.feed(head.as_bytes(), false);
        let tail = [field("envName", "b"), field("note", &t), end()].concat();
        assert_eq!(
            scanner.feed(tail.as_bytes(), true),
            Outcome::Late(SessionFinding::StrayToken)
        );
    }

    /// A body of many small fields, a session, a file and trailing fields: the parts any
    /// chunking must agree on.
    fn sample_body(t: &str, stray_late: bool) -> Vec<u8> {
        let mut parts: Vec<String> = (0..20).map(|i| field(&format!("f{i}"), "v")).collect();
        parts.push(field("session", t));
        parts.push(file("upload"));
        parts.push(field("after", if stray_late { t } else { "fine" }));
        parts.push(end());
        parts.concat().into_bytes()
    }

    proptest! {
        #[test]
        fn never_panics(
            body in prop::collection::vec(any::<u8>(), 0..300),
            cuts in prop::collection::vec(0usize..300, 0..4),
        ) {
            let mut scanner = Scanner::new(B);
            let mut at = 0;
            for cut in cuts.into_iter().chain([body.len()]) {
                let cut = cut.clamp(at, body.len());
                let _ = scanner.feed(&body[at..cut], cut == body.len());
                at = cut;
            }
        }

        #[test]
        fn any_chunking_reaches_the_same_verdict(
            cuts in prop::collection::vec(0usize..2000, 0..40),
            stray_late in any::<bool>(),
        ) {
            let t = token();
            let body = sample_body(&t, stray_late);
            let whole = verdict_bytes(&body, &[]);
            prop_assert_eq!(verdict_bytes(&body, &cuts), whole.clone());
            let expected = if stray_late {
                SessionFinding::StrayToken
            } else {
                SessionFinding::Found(t)
            };
            prop_assert_eq!(whole, expected);
        }

        #[test]
        fn any_chunking_reaches_the_same_env_name(
            cuts in prop::collection::vec(0usize..2200, 0..40),
            late in prop::sample::select(vec!["a", "b", ""]),
            other_case in any::<bool>(),
        ) {
            let mut parts: Vec<String> = (0..10).map(|i| field(&format!("f{i}"), "v")).collect();
            parts.push(field("envName", "a"));
            parts.push(field("envName", "a"));
            parts.push(file("upload"));
            if !late.is_empty() {
                parts.push(field(if other_case { "ENVNAME" } else { "envName" }, late));
            }
            parts.push(end());
            let body = parts.concat().into_bytes();
            let whole = env_verdict(&body, &[], &EnvFinding::Absent);
            prop_assert_eq!(env_verdict(&body, &cuts, &EnvFinding::Absent), whole.clone());
            let expected = match late {
                "" => env("a"),
                _ if other_case => EnvFinding::Ambiguous,
                "a" => env("a"),
                _ => EnvFinding::Conflicting,
            };
            prop_assert_eq!(whole, expected);
        }

        #[test]
        fn byte_by_byte_agrees_on_the_head(cut_every in 1usize..7) {
            let t = token();
            let body = sample_body(&t, false);
            let cuts: Vec<usize> = (0..body.len()).step_by(cut_every).collect();
            let (whole, _) = scan_in_pieces(&body, &[]);
            let (pieces, late) = scan_in_pieces(&body, &cuts);
            prop_assert_eq!(pieces, whole);
            prop_assert_eq!(late, None);
        }
    }
}
