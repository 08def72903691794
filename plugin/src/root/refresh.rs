//! The VM's catch-up with the published state (every tick, and on a VM's first token
//! request), logged and counted.

use super::host::{Event, Level, RootHost};
use crate::config::Config;
use crate::replica::Refresh;

/// Switches this VM to a newer published state, if there is one, and drops the one it holds
/// when it expires.
pub fn refresh(host: &impl RootHost, config: &Config) {
    let (started, timer) = (host.now_millis(), host.now_micros());
    let outcome = host.replica_mut(|replica| replica.refresh(host.store(), &config.keys, started));
    match outcome {
        Ok(Refresh::Applied {
            version,
            tokens,
            deltas,
            full,
        }) => {
            let ms = host.now_micros().saturating_sub(timer) as f64 / 1000.0;
            host.count(Event::Serving {
                version,
                tokens,
                apply_ms: Some(ms as u64),
            });
            let how = match (full, deltas) {
                (true, 0) => "the full snapshot".to_string(),
                (true, n) => format!("the full snapshot and {n} delta(s)"),
                (false, n) => format!("{n} delta(s)"),
            };
            host.log(
                Level::Info,
                &format!(
                    "pat-edge: serving version {version} ({tokens} tokens), applied {how} in {ms:.2} ms, VM memory {} bytes",
                    host.memory_bytes()
                ),
            );
        }
        Ok(Refresh::Failed(e)) => {
            host.count(Event::LoadFailed);
            host.count(Event::Serving {
                version: 0,
                tokens: 0,
                apply_ms: None,
            });
            host.log(
                Level::Error,
                &format!(
                    "pat-edge: the published snapshot cannot be used here, token requests are denied until a valid one arrives: {e}"
                ),
            );
        }
        Ok(Refresh::Unchanged | Refresh::NothingPublished) => {}
        Err(e) => host.log(
            Level::Warn,
            &format!("pat-edge: snapshot check failed: {e}"),
        ),
    }
}
