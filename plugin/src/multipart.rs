//! Finding a `session` field at the head of a `multipart/form-data` body.
//!
//! Upload clients send their form fields before the file. The scan reads fields in order
//! and stops at the first file part (or the closing delimiter), so a large upload is never
//! buffered: the filter needs only the head of the body. It is re-run on the growing
//! buffered prefix until it reaches a decision.

use std::borrow::Cow;
use std::ops::Range;

use memchr::memmem;

use crate::session::{SESSION_PARAM, SessionFinding};

/// Result of scanning a (possibly incomplete) multipart body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scan {
    /// Not enough of the body yet to decide.
    NeedMore,
    /// Decided.
    Done {
        /// What was found among the fields before the first file part.
        finding: SessionFinding,
        /// Byte ranges of the `session` parts (delimiter included), to cut them out when
        /// the token is stripped: removing them leaves a valid multipart body.
        session_parts: Vec<Range<usize>>,
    },
}

const MAX_PART_HEADERS: usize = 16;

/// Scans `body` (the bytes buffered so far; `complete` when it is the whole body).
pub fn scan(body: &[u8], boundary: &str, complete: bool) -> Scan {
    let need_more = |why: &'static str| {
        if complete {
            done(SessionFinding::Unparseable(why), Vec::new())
        } else {
            Scan::NeedMore
        }
    };
    let delimiter = [b"--", boundary.as_bytes()].concat();
    let line_delimiter = [b"\r\n--", boundary.as_bytes()].concat();

    // The first delimiter opens the body or follows a preamble line.
    let mut part_start = if body.starts_with(&delimiter) {
        0
    } else {
        match memmem::find(body, &line_delimiter) {
            Some(at) => at + 2,
            None => return need_more("the multipart body has no opening boundary"),
        }
    };
    let mut finding = SessionFinding::Absent;
    let mut session_parts = Vec::new();
    loop {
        let mut pos = part_start + delimiter.len();
        let Some(after) = body.get(pos..) else {
            return need_more("the multipart body ends inside a boundary");
        };
        if after.starts_with(b"--") {
            return done(finding, session_parts);
        }
        // Transport padding, then the line break that ends the delimiter line.
        let padding = after
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        pos += padding;
        match body.get(pos..pos + 2) {
            Some(b"\r\n") => pos += 2,
            Some(_) => {
                return done(
                    SessionFinding::Unparseable("malformed multipart boundary line"),
                    Vec::new(),
                );
            }
            None => return need_more("the multipart body ends inside a boundary"),
        }

        let mut headers = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
        let head = body.get(pos..).unwrap_or_default();
        let (consumed, disposition) = match httparse::parse_headers(head, &mut headers) {
            Ok(httparse::Status::Complete((consumed, parsed))) => {
                let disposition = parsed
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-disposition"))
                    .map(|h| parse_disposition(h.value));
                (consumed, disposition)
            }
            Ok(httparse::Status::Partial) => {
                return need_more("the multipart body ends inside part headers");
            }
            Err(_) => {
                return done(
                    SessionFinding::Unparseable("malformed multipart part headers"),
                    Vec::new(),
                );
            }
        };
        let disposition = match disposition {
            Some(Ok(d)) => d,
            Some(Err(why)) => return done(SessionFinding::Unparseable(why), Vec::new()),
            None => {
                return done(
                    SessionFinding::Unparseable("a multipart part without content-disposition"),
                    Vec::new(),
                );
            }
        };
        if disposition.is_file {
            // Fields after the first file are not inspected; nothing before it was a token.
            return done(finding, session_parts);
        }
        let content_start = pos + consumed;
        let rest = body.get(content_start..).unwrap_or_default();
        let Some(content_len) = memmem::find(rest, &line_delimiter) else {
            return need_more("the multipart body ends inside a field");
        };
        let next_part = content_start + content_len + 2;
        if disposition.name.as_deref() == Some(SESSION_PARAM) {
            let value = rest.get(..content_len).unwrap_or_default();
            let Ok(value) = std::str::from_utf8(value) else {
                return done(
                    SessionFinding::Unparseable("the session field is not UTF-8"),
                    Vec::new(),
                );
            };
            finding = finding.add(Cow::Borrowed(value));
            session_parts.push(part_start..next_part);
            if finding == SessionFinding::Conflicting {
                return done(finding, Vec::new());
            }
        }
        part_start = next_part;
    }
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

fn done(finding: SessionFinding, session_parts: Vec<Range<usize>>) -> Scan {
    Scan::Done {
        finding,
        session_parts,
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Disposition {
    name: Option<String>,
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
            "filename" | "filename*" => out.is_file = true,
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

    fn finding(body: &str) -> SessionFinding {
        match scan(body.as_bytes(), B, true) {
            Scan::Done { finding, .. } => finding,
            Scan::NeedMore => panic!("complete bodies always decide"),
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
        assert_eq!(finding(&body), SessionFinding::Found("pate_x".into()));
        // A preamble is allowed.
        let body = ["preamble\r\n".to_string(), field("session", "s"), end()].concat();
        assert_eq!(finding(&body), SessionFinding::Found("s".into()));
    }

    #[test]
    fn decides_at_the_first_file_without_the_rest_of_the_body() {
        let head = [field("session", "pate_x"), file("file")].concat();
        // The file part's content is not even needed: its headers are enough.
        let cut = head.find("BINARY").expect("file content");
        assert!(matches!(
            scan(&head.as_bytes()[..cut], B, false),
            Scan::Done { .. }
        ));
        // A session after the file part is not looked at.
        let body = [file("file"), field("session", "late"), end()].concat();
        assert_eq!(finding(&body), SessionFinding::Absent);
    }

    #[test]
    fn incomplete_heads_ask_for_more() {
        let body = [field("a", "1"), field("session", "pate_x"), end()].concat();
        for cut in [0, 3, 10, 30, body.find("pate_x").expect("value") + 3] {
            assert_eq!(
                scan(&body.as_bytes()[..cut], B, false),
                Scan::NeedMore,
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn conflicts_and_garbage() {
        let body = [field("session", "a"), field("session", "b"), end()].concat();
        assert_eq!(finding(&body), SessionFinding::Conflicting);
        let body = [field("session", "a"), field("session", "a"), end()].concat();
        assert_eq!(finding(&body), SessionFinding::Found("a".into()));
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
        ] {
            match finding(&body) {
                SessionFinding::Unparseable(reason) => {
                    assert!(reason.contains(why), "{body:?}: {reason}")
                }
                other => panic!("{body:?}: {other:?}"),
            }
        }
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
        let Scan::Done { session_parts, .. } = scan(body.as_bytes(), B, true) else {
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
                is_file: true
            }
        );
        let d = parse_disposition(b"FORM-DATA;NAME=session").expect("valid");
        assert_eq!(d.name.as_deref(), Some("session"));
    }

    proptest! {
        #[test]
        fn never_panics(body in prop::collection::vec(any::<u8>(), 0..300), complete in any::<bool>()) {
            let _ = scan(&body, B, complete);
        }

        #[test]
        fn every_prefix_either_waits_or_agrees(cut in 0usize..200) {
            let body = [field("a", "1"), field("session", "tok"), file("f"), end()].concat();
            let cut = cut.min(body.len());
            match scan(&body.as_bytes()[..cut], B, false) {
                Scan::NeedMore => {}
                Scan::Done { finding, .. } => prop_assert_eq!(finding, SessionFinding::Found("tok".into())),
            }
        }
    }
}
