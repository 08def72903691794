//! Configuring a root context: the configuration parsed and checked, and what a VM sets up
//! in shared data before its listeners take traffic.

use super::host::{Level, RootHost};
use super::{Root, refresh};
use crate::config::{Config, Unmatched};
use crate::shared::{self, fetch_slot, floor};

impl Root {
    /// Parses `bytes` (the plugin configuration; `env` looks up the VM's environment) and
    /// sets up what the configuration needs: the pointer in shared data, and with an origin
    /// the pending version floor (no push is accepted until the origin said which version it
    /// holds) and the fetch slot (the first head fetch due now); the refresh tick. `None`
    /// (logged) when the configuration is refused or the tick cannot be set.
    pub fn configure(
        host: &impl RootHost,
        bytes: &[u8],
        env: impl Fn(&str) -> Option<String>,
    ) -> Option<Config> {
        let config = match Config::parse(bytes, env) {
            Ok(config) => config,
            Err(e) => {
                host.log(
                    Level::Error,
                    &format!("pat-edge: configuration rejected: {e}"),
                );
                return None;
            }
        };
        if let Err(e) = shared::ensure_pointer(host.store()) {
            host.log(Level::Warn, &format!("pat-edge: {e}"));
        }
        if config.origin.is_some() {
            let ready = floor::ensure_pending(host.store())
                .and_then(|()| fetch_slot::ensure_slot(host.store(), host.now_millis()));
            if let Err(e) = ready {
                host.log(Level::Warn, &format!("pat-edge: {e}"));
            }
        }
        // The trusted keys may have changed: a state refused before may be usable now.
        host.replica_mut(|replica| replica.forget_refusals());
        if !host.set_tick_period(config.refresh_interval) {
            host.log(Level::Error, "pat-edge: cannot set the refresh tick");
            return None;
        }
        host.log(Level::Info, &describe(&config));
        if host.vm_active() {
            refresh(host, &config);
        }
        Some(config)
    }
}

/// The configuration, as logged once it is taken.
fn describe(config: &Config) -> String {
    let keys: Vec<String> = config.keys.iter().map(|k| k.id().to_string()).collect();
    format!(
        "pat-edge: configured: trusted keys [{}], push endpoint {}, origin {}, usage reports {}, max snapshot age {} ms, ordinary sessions {}, missing session {}",
        keys.join(", "),
        config.push.as_ref().map_or("disabled", |p| p.path.as_str()),
        config
            .origin
            .as_ref()
            .map_or("none", |o| o.cluster.as_str()),
        config.usage.as_ref().map_or_else(
            || "off".to_string(),
            |u| format!(
                "to {} every {} s, signed by edge key {}",
                u.config.cluster,
                u.config.interval.as_secs(),
                u.key.public_key().id()
            )
        ),
        config.max_snapshot_age_ms,
        word(config.ordinary_sessions),
        word(config.missing_session),
    )
}

fn word(rule: Unmatched) -> &'static str {
    match rule {
        Unmatched::Pass => "pass",
        Unmatched::Deny => "deny",
    }
}
