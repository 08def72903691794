//! The request headers: identity headers removed, the control path sent to the endpoint,
//! the query's `session` found, and the body to read chosen by its content type.

use super::verdict::{BodyStrip, Strip};
use super::{Action, Request, RequestHost, Stage};
use crate::config::Config;
use crate::content_type::{BodyKind, classify};
use crate::multipart::Scanner;
use crate::session::{SessionFinding, find_in_pairs, path_carries_token, split_path};

impl Request {
    pub(super) fn headers(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        end_of_stream: bool,
    ) -> Action {
        strip_header(host, &config.identity.token_id);
        strip_header(host, &config.identity.user);
        self.path = host.header(":path").unwrap_or_default();
        let (path, query) = split_path(&self.path);
        if let Some(push) = &config.push
            && path == push.path.as_bytes()
        {
            return self.control_headers(host, push, end_of_stream);
        }
        let mut finding = query.map_or(SessionFinding::Absent, find_in_pairs);
        if !finding.is_refusal() && path_carries_token(path) {
            finding = SessionFinding::StrayToken;
        }
        let strip = Strip {
            query: matches!(finding, SessionFinding::Found(_)),
            body: BodyStrip::Nothing,
        };
        if finding.is_refusal() || end_of_stream {
            return self.conclude_now(host, config, finding, strip);
        }
        let content_type = host.header("content-type");
        let content_type = content_type.as_deref().map(String::from_utf8_lossy);
        match classify(content_type.as_deref()) {
            // Opaque bodies (JSON, text, none) are not parsed: the query decides.
            Ok(BodyKind::Opaque) => self.conclude_now(host, config, finding, strip),
            Ok(BodyKind::Form) => {
                self.stage = Stage::Form { query: finding };
                Action::Pause
            }
            Ok(BodyKind::Multipart { boundary }) => {
                self.stage = Stage::MultipartHead {
                    query: finding,
                    scanner: Box::new(Scanner::new(&boundary)),
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

/// Removes every value of a request header if there is one. Looking first is cheaper in
/// Envoy than an unconditional remove, and a client rarely sends these headers.
fn strip_header(host: &impl RequestHost, name: &str) {
    if host.header(name).is_some() {
        host.remove_header(name);
    }
}
