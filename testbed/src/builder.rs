//! Configuring a testbed: the module, plugins (root contexts), workers, clusters,
//! environment, clock, limits and failure policy.

use crate::error::Error;
use crate::http::{HttpMessage, Response};
use crate::testbed::Testbed;
use crate::world::LogLevel;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What Envoy does with a VM after a trap (`failure_policy` in the filter config).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Every later request on that VM gets a local 503 without running the guest (Envoy's default).
    #[default]
    FailClosed,
    /// The next request on that VM recreates it from scratch, then runs.
    FailReload,
    /// Later requests bypass the filter (forwarded untouched). An auth bypass: only for tests of it.
    FailOpen,
}

/// One plugin = one root context in every VM (`root_id` + configuration).
#[derive(Clone, Debug)]
pub struct Plugin {
    pub(crate) root_id: String,
    pub(crate) name: String,
    pub(crate) configuration: Vec<u8>,
}

impl Plugin {
    /// A plugin with this `root_id` (also its `plugin_name` unless [`Plugin::name`] is set).
    pub fn new(root_id: impl Into<String>) -> Self {
        let root_id = root_id.into();
        Plugin {
            name: root_id.clone(),
            root_id,
            configuration: Vec::new(),
        }
    }

    /// The plugin configuration (buffer type 7, read in `on_configure`).
    pub fn configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.configuration = configuration.into();
        self
    }

    /// The filter's `name` (property `plugin_name`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The root id.
    pub fn root_id(&self) -> &str {
        &self.root_id
    }
}

/// Computes the upstream's answer to a forwarded request.
pub type UpstreamFn = Arc<dyn Fn(&HttpMessage) -> Response + Send + Sync>;

/// Immutable settings shared by every VM of a testbed.
pub(crate) struct Config {
    pub(crate) wasm: PathBuf,
    pub(crate) workers: usize,
    pub(crate) plugins: Vec<Plugin>,
    pub(crate) vm_id: String,
    pub(crate) vm_configuration: Vec<u8>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) clusters: HashSet<String>,
    pub(crate) log_level: LogLevel,
    pub(crate) start_time: SystemTime,
    pub(crate) buffer_limit: usize,
    pub(crate) failure_policy: FailurePolicy,
    pub(crate) allow_on_headers_stop_iteration: bool,
    pub(crate) upstream: Option<UpstreamFn>,
    pub(crate) source_address: String,
    pub(crate) destination_address: String,
}

impl Config {
    pub(crate) fn plugin_index(&self, root_id: &str) -> Option<usize> {
        self.plugins.iter().position(|p| p.root_id == root_id)
    }
}

/// Builds a [`Testbed`]. Start from [`Testbed::builder`].
pub struct TestbedBuilder {
    config: Config,
}

impl TestbedBuilder {
    pub(crate) fn new(wasm: PathBuf) -> Self {
        TestbedBuilder {
            config: Config {
                wasm,
                workers: 1,
                plugins: Vec::new(),
                vm_id: String::new(),
                vm_configuration: Vec::new(),
                env: Vec::new(),
                clusters: HashSet::new(),
                log_level: LogLevel::Trace,
                // 2026-01-01T00:00:00Z: a fixed date keeps tests deterministic.
                start_time: UNIX_EPOCH + Duration::from_secs(1_767_225_600),
                buffer_limit: 1024 * 1024,
                failure_policy: FailurePolicy::FailClosed,
                allow_on_headers_stop_iteration: false,
                upstream: None,
                source_address: "10.0.0.1:40000".to_string(),
                destination_address: "10.0.0.2:10000".to_string(),
            },
        }
    }

    /// Number of worker VMs (default 1).
    pub fn workers(mut self, workers: usize) -> Self {
        self.config.workers = workers;
        self
    }

    /// Adds a plugin (root context). Without any, a plugin with an empty root id and
    /// empty configuration is used.
    pub fn plugin(mut self, plugin: Plugin) -> Self {
        self.config.plugins.push(plugin);
        self
    }

    /// `vm_config.vm_id` (property `plugin_vm_id`, shared queue namespace).
    pub fn vm_id(mut self, vm_id: impl Into<String>) -> Self {
        self.config.vm_id = vm_id.into();
        self
    }

    /// `vm_config.configuration` (buffer type 6, read in `on_vm_start`).
    pub fn vm_configuration(mut self, configuration: impl Into<Vec<u8>>) -> Self {
        self.config.vm_configuration = configuration.into();
        self
    }

    /// An environment variable visible through WASI `environ_get`.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.env.push((key.into(), value.into()));
        self
    }

    /// Declares a cluster `proxy_http_call` may target (others get `BadArgument`).
    pub fn cluster(mut self, name: impl Into<String>) -> Self {
        self.config.clusters.insert(name.into());
        self
    }

    /// The host log level (`proxy_get_log_level`); lower levels are dropped. Default
    /// `Trace` records everything (Envoy's default is `Info`).
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.config.log_level = level;
        self
    }

    /// The clock's starting time (default 2026-01-01T00:00:00Z).
    pub fn start_time(mut self, start: SystemTime) -> Self {
        self.config.start_time = start;
        self
    }

    /// Per-request buffer limit (default 1 MiB, like `per_connection_buffer_limit_bytes`).
    pub fn buffer_limit(mut self, bytes: usize) -> Self {
        self.config.buffer_limit = bytes;
        self
    }

    /// What happens after a trap (default [`FailurePolicy::FailClosed`]).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.config.failure_policy = policy;
        self
    }

    /// Envoy's `allow_on_headers_stop_iteration` (default false): when true, a
    /// `StopIteration` from `on_*_headers` keeps delivering body callbacks.
    pub fn allow_on_headers_stop_iteration(mut self, allow: bool) -> Self {
        self.config.allow_on_headers_stop_iteration = allow;
        self
    }

    /// How the upstream answers forwarded requests (default: `200`, empty body).
    /// [`crate::Request::upstream_response`] overrides it per request. It runs while
    /// the VM is locked, so it must not call back into the testbed.
    pub fn upstream(
        mut self,
        upstream: impl Fn(&HttpMessage) -> Response + Send + Sync + 'static,
    ) -> Self {
        self.config.upstream = Some(Arc::new(upstream));
        self
    }

    /// Default `source.address` (`ip:port`).
    pub fn source_address(mut self, address: impl Into<String>) -> Self {
        self.config.source_address = address.into();
        self
    }

    /// Default `destination.address` (`ip:port`).
    pub fn destination_address(mut self, address: impl Into<String>) -> Self {
        self.config.destination_address = address.into();
        self
    }

    /// Compiles (or reuses) the module, creates every VM and runs the start
    /// sequence. Fails if any `on_vm_start`/`on_configure` returns false or traps.
    pub fn build(self) -> Result<Testbed, Error> {
        self.build_inner(false)
    }

    /// Like [`TestbedBuilder::build`], but a plugin returning false from
    /// `on_vm_start`/`on_configure` is recorded ([`Testbed::startup_failures`])
    /// instead of failing; its root context stays in place. Traps still fail.
    pub fn build_allow_failure(self) -> Result<Testbed, Error> {
        self.build_inner(true)
    }

    fn build_inner(mut self, allow_failure: bool) -> Result<Testbed, Error> {
        if self.config.plugins.is_empty() {
            self.config.plugins.push(Plugin::new(""));
        }
        if self.config.workers == 0 {
            return Err(Error::Config("workers must be at least 1".to_string()));
        }
        let mut seen = HashSet::new();
        for plugin in &self.config.plugins {
            if !seen.insert(plugin.root_id.as_str()) {
                return Err(Error::Config(format!(
                    "two plugins with root_id `{}`",
                    plugin.root_id
                )));
            }
        }
        Testbed::start(self.config, allow_failure)
    }
}
