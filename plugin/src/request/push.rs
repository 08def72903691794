//! A push's body: moved into the VM as it arrives, checked on its signed head as soon as
//! the head is complete (which also takes the edge's push lease), then verified and
//! published whole.

use pat_core::snapshot::announced_len;

use super::endpoint::control_error;
use super::host::{Event, Level};
use super::{Action, Request, RequestHost, Stage};
use crate::config::{Config, PushConfig};
use crate::control::{CONTROL_SOURCE, rejection_status};
use crate::replica::{Clock, PUSH_HEAD_LEN, PushRejection, kind_word};
use crate::reply::{accepted_body, error_body, stale_body};
use crate::shared::push_lease::{self, Holder, LEASE_MS, Lease};
use pat_core::protocol::control;

/// A push in progress: its body so far, its announced length once its signed head checked
/// out, and the lease it holds.
#[derive(Default)]
pub(super) struct PushState {
    /// The body so far, moved out of Envoy's buffer as it arrives: the control listener's
    /// buffer limit stays small (1 MiB), so Envoy never reads far ahead of the head check.
    received: Vec<u8>,
    /// The signed head was checked (and the lease taken).
    checked: bool,
    /// A single document's announced length (a bundle announces none).
    announced: Option<u64>,
    lease: Option<Holder>,
    renewed_at_ms: u64,
}

impl Request {
    pub(super) fn push_body(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        size: usize,
        end_of_stream: bool,
    ) -> Action {
        let Some(push) = &config.push else {
            return Action::Continue;
        };
        let (now, timer) = (host.now_millis(), host.now_micros());
        let clock = Clock {
            now_ms: now,
            max_age_ms: config.max_snapshot_age_ms,
        };
        match self.take_push_bytes(host, config, push, size, end_of_stream, clock) {
            Ok(true) => {}
            Ok(false) => return Action::Pause,
            Err(rejection) => return self.refuse_push(host, &rejection),
        }
        let Stage::Push(state) = &mut self.stage else {
            return Action::Pause;
        };
        let bytes = std::mem::take(&mut state.received);
        let outcome = host.replica_mut(|replica| {
            replica.accept(host.store(), &config.keys, bytes, clock, host.vm_active())
        });
        match outcome {
            Ok(accepted) => {
                self.release_lease(host);
                self.stage = Stage::Done;
                let ms = host.now_micros().saturating_sub(timer) as f64 / 1000.0;
                host.count(Event::Push { accepted: true });
                host.count(Event::Serving {
                    version: accepted.version,
                    tokens: accepted.tokens,
                    apply_ms: ms as u64,
                });
                host.log(
                    Level::Info,
                    &format!(
                        "pat-edge: push accepted: {} version {} ({} tokens, expires at {}), verified and published in {ms:.2} ms, VM memory {} bytes",
                        kind_word(accepted.kind),
                        accepted.version,
                        accepted.tokens,
                        accepted.expires_at,
                        host.memory_bytes()
                    ),
                );
                host.send_json(
                    200,
                    &accepted_body(accepted.version, accepted.tokens, accepted.issued_at),
                    &[],
                );
                Action::Pause
            }
            Err(rejection) => self.refuse_push(host, &rejection),
        }
    }

    /// Moves the newly arrived push bytes into the VM, checks the signed head as soon as it
    /// is complete (and takes the push lease), and enforces the lengths. `Ok(true)`: the whole
    /// body is here.
    fn take_push_bytes(
        &mut self,
        host: &impl RequestHost,
        config: &Config,
        push: &PushConfig,
        size: usize,
        end_of_stream: bool,
        clock: Clock,
    ) -> Result<bool, PushRejection> {
        let Stage::Push(state) = &mut self.stage else {
            return Ok(false);
        };
        let chunk = host.body(0, size).ok_or(PushRejection::Unreadable)?;
        host.drain_body(size);
        let max = push.max_bytes as u64;
        let total = (state.received.len() + chunk.len()) as u64;
        if total > max {
            return Err(PushRejection::TooLarge { bytes: total, max });
        }
        state.received.extend_from_slice(&chunk);
        if !state.checked && (total >= PUSH_HEAD_LEN as u64 || end_of_stream) {
            // The signed head decides before the rest arrives: garbage, forged, expired and
            // replayed pushes are answered at once.
            let head = state
                .received
                .get(..PUSH_HEAD_LEN)
                .unwrap_or(&state.received);
            let is_bundle = pat_core::snapshot::bundle::is_bundle(head);
            let header = host.replica(|replica| {
                replica.precheck_push(host.store(), &config.keys, head, self.content_length, clock)
            })?;
            // A single document announces its length in its signed header.
            let announced = (!is_bundle).then(|| announced_len(&header));
            if let Some(announced) = announced
                && announced > max
            {
                return Err(PushRejection::TooLarge {
                    bytes: announced,
                    max,
                });
            }
            let holder = Holder((host.vm_number() << 32) | u64::from(self.context_id));
            match push_lease::acquire(host.store(), holder, clock.now_ms)? {
                Lease::Held => {}
                Lease::Busy { .. } => return Err(PushRejection::Busy),
            }
            state.lease = Some(holder);
            state.renewed_at_ms = clock.now_ms;
            state.checked = true;
            state.announced = announced;
            // One allocation for the whole snapshot (a growing vector would double it).
            let expected = announced.or(self.content_length);
            if let Some(expected) = expected {
                let missing = usize::try_from(expected.min(max).saturating_sub(total)).unwrap_or(0);
                state.received.reserve_exact(missing);
            }
        }
        if let Some(announced) = state.announced
            && total > announced
        {
            return Err(PushRejection::Invalid(
                pat_core::snapshot::SnapshotError::Length {
                    expected: announced,
                    actual: total,
                },
            ));
        }
        if let Some(holder) = state.lease
            && clock.now_ms.saturating_sub(state.renewed_at_ms) >= LEASE_MS / 2
        {
            push_lease::acquire(host.store(), holder, clock.now_ms)?;
            state.renewed_at_ms = clock.now_ms;
        }
        Ok(end_of_stream)
    }

    /// Refuses a push now, releasing its lease.
    fn refuse_push(&mut self, host: &impl RequestHost, rejection: &PushRejection) -> Action {
        self.release_lease(host);
        self.stage = Stage::Done;
        host.count(Event::Push { accepted: false });
        host.log(
            Level::Warn,
            &format!("pat-edge: push rejected: {rejection}"),
        );
        match rejection {
            PushRejection::NotNewer { current, .. }
            | PushRejection::DoesNotApply { current, .. } => {
                host.send_json(409, &stale_body(&rejection.to_string(), *current), &[])
            }
            PushRejection::WaitingForOrigin | PushRejection::Busy => host.send_json(
                503,
                &error_body(503, &rejection.to_string(), CONTROL_SOURCE),
                &[(control::RETRY_AFTER, control::RETRY_AFTER_SECS)],
            ),
            _ => control_error(host, rejection_status(rejection), &rejection.to_string()),
        }
        Action::Pause
    }

    /// Gives the push lease back, if this request holds it.
    pub(super) fn release_lease(&mut self, host: &impl RequestHost) {
        if let Stage::Push(state) = &mut self.stage
            && let Some(holder) = state.lease.take()
            && let Err(e) = push_lease::release(host.store(), holder)
        {
            host.log(
                Level::Warn,
                &format!("pat-edge: releasing the push lease: {e}"),
            );
        }
    }
}
