//! The request machine driven natively by the recording fake host
//! ([`crate::test_support::FakeRequest`]), which buffers the body as Envoy does: a body
//! callback that pauses keeps its bytes buffered for the next one, one that continues
//! releases them (they are "forwarded"), and a local reply ends the stream. One file per
//! behaviour.

mod bodies;
mod control;
mod env_names;
mod environments;
mod identity;
mod multipart;
mod pollution;
mod pushes;
mod rate_limits;
mod usage;
mod verdicts;

pub(super) use super::{Action, Event, Request};
pub(super) use crate::config::Config;
pub(super) use crate::decide::Reason;
pub(super) use crate::log::Level;
pub(super) use crate::replica::PUSH_HEAD_LEN;
pub(super) use crate::shared::push_lease::LEASE_KEY;
pub(super) use crate::test_support::{FakeRequest as Fake, Minted, Run, Unreadable, Vm};
pub(super) use pat_core::protocol::control::PATH as CONTROL;
pub(super) use pat_core::token::Token;

pub(super) const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
pub(super) const UPLOAD: &str = "/1.0/storage/uploader/rest/upload";
pub(super) const FORM: &str = "application/x-www-form-urlencoded";
pub(super) const BOUNDARY: &str = "----pat-edge-unit";

pub(super) fn with_session(path: &str, session: &str) -> String {
    format!("{path}?envName=x&session={session}")
}

/// A multipart body: `fields`, then a file part, then `late` fields.
pub(super) fn multipart(fields: &[(&str, &str)], file: &[u8], late: &[(&str, &str)]) -> Vec<u8> {
    let field = |body: &mut Vec<u8>, (name, value): &(&str, &str)| {
        body.extend(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .bytes(),
        );
    };
    let mut body = Vec::new();
    for f in fields {
        field(&mut body, f);
    }
    body.extend(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.war\"\r\n\r\n"
        )
        .bytes(),
    );
    body.extend_from_slice(file);
    body.extend(b"\r\n");
    for f in late {
        field(&mut body, f);
    }
    body.extend(format!("--{BOUNDARY}--\r\n").bytes());
    body
}

pub(super) fn multipart_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// A configuration with the push endpoint.
pub(super) fn control(vm: &Vm) -> Config {
    vm.config(&format!(
        r#""push":{{"path":"{CONTROL}","max_bytes":1048576}}"#
    ))
}

/// A push of `len` bytes to the control endpoint.
pub(super) fn put<'a>(vm: &'a Vm, len: usize) -> Fake<'a> {
    Fake::new(vm, "PUT", CONTROL, &[("content-length", &len.to_string())])
}
