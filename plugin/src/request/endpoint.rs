//! The control endpoint's headers: only on internal listeners; `GET`/`HEAD` answer what
//! this Envoy serves from, `PUT` starts a push (its body goes to `push`), anything else is
//! refused.

use super::host::{Event, Level};
use super::push::PushState;
use super::{Action, Request, RequestHost, Stage};
use crate::config::PushConfig;
use crate::control::{CONTROL_SOURCE, is_internal_address};
use crate::reply::{error_body, status_body};
use crate::shared;
use crate::shared::floor::{self, Floor};
use pat_core::protocol::control::{Floor as FloorField, Status};

impl Request {
    pub(super) fn control_headers(
        &mut self,
        host: &impl RequestHost,
        push: &PushConfig,
        end_of_stream: bool,
    ) -> Action {
        self.stage = Stage::Done;
        let listener = host
            .property(&["destination", "address"])
            .unwrap_or_default();
        let internal = is_internal_address(&String::from_utf8_lossy(&listener));
        if !internal && !push.allow_public_listener {
            host.log(
                Level::Warn,
                "pat-edge: control request refused: the listener is not on loopback or an internal network",
            );
            control_error(
                host,
                403,
                "the control endpoint only answers on loopback or internal-network listeners",
            );
            return Action::Pause;
        }
        match self.method() {
            b"GET" | b"HEAD" => {
                host.send_json(200, &status_body(&status(host)), &[]);
                Action::Pause
            }
            b"PUT" => {
                let announced = self.content_length;
                if announced.is_some_and(|len| len > push.max_bytes as u64) {
                    host.count(Event::Push { accepted: false });
                    control_error(
                        host,
                        413,
                        &format!(
                            "snapshot larger than push.max_bytes ({} bytes)",
                            push.max_bytes
                        ),
                    );
                    return Action::Pause;
                }
                if end_of_stream {
                    host.count(Event::Push { accepted: false });
                    control_error(
                        host,
                        400,
                        "empty body: PUT a signed snapshot (pat-admin publish)",
                    );
                    return Action::Pause;
                }
                self.stage = Stage::Push(PushState::default());
                Action::Pause
            }
            _ => {
                host.send_json(
                    405,
                    &error_body(
                        405,
                        "use GET for the status or PUT to push a snapshot",
                        CONTROL_SOURCE,
                    ),
                    &[("allow", "GET, HEAD, PUT")],
                );
                Action::Pause
            }
        }
    }
}

/// What this Envoy serves from: the published snapshot (this VM may hold none), and the
/// version floor learnt from the origin.
fn status(host: &impl RequestHost) -> Status {
    let floor = floor::read(host.store()).ok();
    let pointer = shared::read_pointer(host.store()).map(|(p, _)| p).ok();
    let status = match pointer.filter(|p| p.version != 0) {
        Some(p) => Status {
            result: 0,
            loaded: true,
            version: p.version,
            tokens: p.tokens,
            issued_at: p.issued_at,
            expires_at: p.expires_at,
            key_id: Some(pat_core::keys::KeyId(p.key_id).to_string()),
            floor: None,
        },
        None => Status {
            result: 0,
            loaded: false,
            version: 0,
            tokens: 0,
            issued_at: 0,
            expires_at: 0,
            key_id: None,
            floor: None,
        },
    };
    Status {
        floor: match floor {
            Some(Floor::Known(v)) => Some(FloorField::Version(v)),
            Some(Floor::Pending) => Some(FloorField::Pending),
            Some(Floor::Unset) | None => None,
        },
        ..status
    }
}

/// A control endpoint error in its JSON shape.
pub(super) fn control_error(host: &impl RequestHost, status: u32, message: &str) {
    host.send_json(
        status,
        &error_body(i64::from(status), message, CONTROL_SOURCE),
        &[],
    );
}
