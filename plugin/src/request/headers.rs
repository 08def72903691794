//! The request headers, read at once: identity headers removed (every name the filter can
//! set, [`crate::config::IdentityHeaders::removed`]), the control path sent to the endpoint, the query's `session` found, and the body to read chosen by its content
//! type.

use super::verdict::{BodyStrip, Strip};
use super::{Action, Request, RequestHost, Stage};
use crate::config::Config;
use crate::content_type::{BodyKind, classify};
use crate::header_map::HeaderMap;
use crate::multipart::Scanner;
use crate::session::{Findings, SessionFinding, find_params, path_carries_token, split_path};

impl Request {
    pub(super) fn headers(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        end_of_stream: bool,
    ) -> Action {
        // Every header in one host call: cheaper in Envoy than reading `:path` and looking
        // for each identity header one by one.
        let unreadable =
            SessionFinding::Unparseable("its headers could not be read from the proxy");
        let Some(headers) = host.request_headers() else {
            // Fail closed: without its headers nothing about the request can be checked.
            return self.conclude_now(host, config, unreadable, Strip::default());
        };
        // Where a value is in the map, to read it there later.
        let base = headers.as_bytes().as_ptr() as usize;
        let at = |value: &[u8]| {
            let start = (value.as_ptr() as usize).saturating_sub(base);
            start..start + value.len()
        };
        let (mut path, mut method, mut content_type) = (0..0, 0..0, None);
        let (mut content_types, mut content_length) = (0usize, None);
        // Which identity headers the client sent, of every name the filter can set (names
        // compared as Envoy's remove does, ignoring case, although Envoy's maps are
        // lower-case). At most six names; three with the default configuration.
        let removed = &config.removed_headers;
        let mut claimed = [false; 6];
        let read = HeaderMap::read(headers.as_bytes(), |name, value| {
            for (claims, known) in claimed.iter_mut().zip(removed) {
                *claims |= known.as_bytes().eq_ignore_ascii_case(name);
            }
            match name {
                b":path" => path = at(value),
                b":method" => method = at(value),
                b"content-type" => {
                    content_types += 1;
                    content_type = Some(at(value));
                }
                // Envoy refuses requests whose content-length values differ: the first is
                // the one.
                b"content-length" if content_length.is_none() => {
                    content_length = Some(
                        std::str::from_utf8(value)
                            .ok()
                            .and_then(|v| v.trim().parse::<u64>().ok()),
                    );
                }
                _ => {}
            }
        });
        if read.is_err() {
            return self.conclude_now(host, config, unreadable, Strip::default());
        }
        let content_length = content_length.flatten();
        (self.path, self.method, self.content_length) = (path, method, content_length);
        self.headers = headers;
        // Identity a client claims is removed from every request (a remove takes every value
        // of the header). A client rarely sends these: knowing from the map that they are
        // absent saves a call per header and request.
        for (claims, name) in claimed.into_iter().zip(removed) {
            if claims {
                host.remove_header(name);
            }
        }
        let (path, query) = split_path(self.path());
        if let Some(push) = &config.push
            && path == push.path.as_bytes()
        {
            return self.control_headers(host, push, end_of_stream);
        }
        let Findings {
            session: mut finding,
            env,
        } = query.map_or_else(Findings::default, find_params);
        if !finding.is_refusal() && path_carries_token(path) {
            finding = SessionFinding::StrayToken;
        }
        self.env = env;
        let strip = Strip {
            query: matches!(finding, SessionFinding::Found(_)),
            body: BodyStrip::Nothing,
        };
        if finding.is_refusal() || end_of_stream {
            return self.conclude_now(host, config, finding, strip);
        }
        if content_types > 1 {
            // Which one would the platform read? The filter must read the body the way the
            // platform will, so it does not guess.
            let twice = SessionFinding::Unparseable("it has more than one content-type header");
            return self.conclude_now(host, config, twice, Strip::default());
        }
        let content_type = content_type
            .and_then(|at| self.headers.as_bytes().get(at))
            .map(String::from_utf8_lossy);
        let kind = classify(content_type.as_deref());
        match kind {
            // Opaque bodies (JSON, text, none) are not parsed: the query decides.
            Ok(BodyKind::Opaque) => self.conclude_now(host, config, finding, strip),
            Ok(BodyKind::Form) => {
                self.stage = Stage::Form { query: finding };
                Action::Pause
            }
            Ok(BodyKind::Multipart { boundary }) => {
                let scanner = Scanner::new(&boundary)
                    .beside_query(&finding)
                    .beside_query_env(&self.env);
                self.stage = Stage::MultipartHead {
                    query: finding,
                    scanner: Box::new(scanner),
                };
                Action::Pause
            }
            Err(why) => self.conclude_now(
                host,
                config,
                SessionFinding::Unparseable(why),
                Strip::default(),
            ),
        }
    }
}
