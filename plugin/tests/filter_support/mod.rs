//! Shared setup for the pat-edge filter tests: an "Envoy" with the public and control
//! filters in every VM (as `envoy.yaml` configures them), a signing key, and helpers to mint
//! tokens, build signed snapshots and push them.

#![allow(dead_code, unreachable_pub)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pat_core::env::EnvList;
use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::rate::RateLimit;
use pat_core::snapshot::{Base, Built, SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::Token;
use pat_testbed::{
    Exchange, FailurePolicy, Plugin, Request, Testbed, TestbedBuilder, wasm_artifact,
};

/// The testbed clock starts here: 2026-11-27T12:00:00Z.
pub const START: u64 = 1_795_780_800;
pub const CONTROL_PATH: &str = pat_core::protocol::control::PATH;
pub const STOPENV: &str = "/1.0/environment/control/rest/stopenv";

pub fn method(name: &str) -> MethodName {
    MethodName::parse(name).expect("valid method name")
}

/// A token as the publisher knows it, with its secret value for the test to use.
pub struct Minted {
    pub token: Token,
    pub id: u64,
    pub user: String,
    pub expires_at: Option<u64>,
    pub scope: Vec<MethodName>,
    /// The client networks it may be used from; empty = any.
    pub networks: Vec<pat_core::net::Network>,
    /// The environments it may act on; `None` = any.
    pub envs: Option<EnvList>,
    /// Its rate limit; `None` = none.
    pub rate_limit: Option<RateLimit>,
}

impl Minted {
    pub fn new(id: u64, user: &str, scope: &[&str]) -> Self {
        Self {
            token: Token::generate().expect("rng"),
            id,
            user: user.to_string(),
            expires_at: None,
            scope: scope.iter().map(|m| method(m)).collect(),
            networks: Vec::new(),
            envs: None,
            rate_limit: None,
        }
    }

    /// Limits it to these environments.
    pub fn in_envs(mut self, names: &[&str]) -> Self {
        self.envs = EnvList::parse(names).expect("valid environment names");
        self
    }

    /// Gives it a rate limit (`5/s`, `30/min`).
    pub fn rate_limited(mut self, limit: &str) -> Self {
        self.rate_limit = Some(limit.parse().expect("a rate limit"));
        self
    }

    /// Limits it to these networks (CIDR notation).
    pub fn limited_to(mut self, networks: &[&str]) -> Self {
        self.networks = networks
            .iter()
            .map(|n| n.parse().expect("a network"))
            .collect();
        self
    }

    pub fn expiring(mut self, at: u64) -> Self {
        self.expires_at = Some(at);
        self
    }

    pub fn value(&self) -> &str {
        self.token.expose()
    }
}

/// How long the snapshots of these tests last: a week from START.
pub const LIFETIME: u64 = 7 * 86_400;

/// Builds and signs a snapshot of `tokens`, issued at START for a week.
pub fn snapshot(key: &SigningKey, version: u64, tokens: &[&Minted]) -> Vec<u8> {
    snapshot_stamped(key, Stamp::lasting(version, START, LIFETIME), tokens)
}

/// Builds and signs a snapshot of `tokens` with this stamp.
pub fn snapshot_stamped(key: &SigningKey, stamp: Stamp, tokens: &[&Minted]) -> Vec<u8> {
    snapshot_built(key, stamp, tokens).bytes
}

/// A delta on top of `base` (the `Built` of the previous document) to `version`: `added`
/// added or changed, `removed` removed.
pub fn delta(
    key: &SigningKey,
    base: (u64, &Built),
    version: u64,
    added: &[&Minted],
    removed: &[&Minted],
) -> Built {
    let mut builder = SnapshotBuilder::new();
    declare_env_methods(&mut builder, added);
    for t in added {
        builder.add(spec(t)).expect("valid token");
    }
    for t in removed {
        builder.remove(&t.token.hash());
    }
    builder
        .build_delta(
            Stamp::lasting(version, START, LIFETIME),
            Base {
                version: base.0,
                state_id: base.1.state_id,
            },
            0,
            key,
        )
        .expect("build")
}

fn spec(t: &Minted) -> TokenSpec<'_> {
    TokenSpec {
        hash: t.token.hash(),
        id: t.id,
        user: &t.user,
        expires_at: t.expires_at,
        scope: &t.scope,
        networks: &t.networks,
        envs: t.envs.as_ref(),
        rate_limit: t.rate_limit,
    }
}

/// The methods these tests' snapshots declare as acting on one environment (as pat-admin's
/// catalogue does: they take `envName` and no other environment). Not `GetEnvs`, which lists
/// every environment, nor `CloneEnv`, which names a second one.
pub const ENV_METHODS: &[&str] = &[
    "environment.Control.StopEnv",
    "environment.Control.StartEnv",
    "environment.Control.DeleteEnv",
    "environment.Control.GetEnvInfo",
];

/// Declares [`ENV_METHODS`] when some token is limited to environments (snapshots of other
/// tests stay as they were).
fn declare_env_methods(builder: &mut SnapshotBuilder, tokens: &[&Minted]) {
    if tokens.iter().any(|t| t.envs.is_some()) {
        builder.env_methods(ENV_METHODS.iter().map(|m| method(m)));
    }
}

/// Builds and signs a full snapshot of `tokens` with this stamp, keeping its state id.
pub fn snapshot_built(key: &SigningKey, stamp: Stamp, tokens: &[&Minted]) -> Built {
    let mut builder = SnapshotBuilder::new();
    declare_env_methods(&mut builder, tokens);
    for t in tokens {
        builder.add(spec(t)).expect("valid token");
    }
    builder.build(stamp, StateOf::Genesis, key).expect("build")
}

/// One edge: `workers` VMs, each with the public filter (`public`) and the control filter
/// (`control`, push enabled), trusting `key` through `PAT_PUBLIC_KEYS`.
pub struct Edge {
    pub tb: Testbed,
    pub key: SigningKey,
}

pub struct EdgeBuilder {
    workers: usize,
    public: String,
    control: String,
    key: SigningKey,
    tweak: Box<dyn FnOnce(TestbedBuilder) -> TestbedBuilder>,
}

impl EdgeBuilder {
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Extra JSON fields for the public filter's configuration (e.g. `"strip_token":true`).
    pub fn public(mut self, fields: &str) -> Self {
        self.public = format!("{{{fields}}}");
        self
    }

    /// The control filter's whole configuration.
    pub fn control(mut self, json: &str) -> Self {
        self.control = json.to_string();
        self
    }

    /// The publisher's key (another "process" of the same deployment, e.g. after a restart).
    pub fn key(mut self, key: SigningKey) -> Self {
        self.key = key;
        self
    }

    pub fn testbed(mut self, f: impl FnOnce(TestbedBuilder) -> TestbedBuilder + 'static) -> Self {
        self.tweak = Box::new(f);
        self
    }

    pub fn build(self) -> Edge {
        let builder =
            Testbed::builder(wasm_artifact("pat_plugin").unwrap_or_else(|e| panic!("{e}")))
                .workers(self.workers)
                .plugin(Plugin::new("public").configuration(self.public))
                .plugin(Plugin::new("control").configuration(self.control))
                .env("PAT_PUBLIC_KEYS", self.key.public_key().to_string())
                .allow_on_headers_stop_iteration(true)
                .failure_policy(FailurePolicy::FailReload)
                .destination_address("127.0.0.1:10001")
                .start_time(UNIX_EPOCH + Duration::from_secs(START));
        let tb = (self.tweak)(builder).build().expect("the filter starts");
        Edge { tb, key: self.key }
    }
}

pub fn edge() -> EdgeBuilder {
    EdgeBuilder {
        workers: 2,
        public: "{}".into(),
        control: format!(r#"{{"push":{{"path":"{CONTROL_PATH}"}}}}"#),
        key: SigningKey::generate().expect("rng"),
        tweak: Box::new(|b| b),
    }
}

impl Edge {
    /// PUTs a snapshot to the control path on VM `vm`.
    pub fn push(&self, vm: usize, bytes: Vec<u8>) -> Exchange {
        self.tb
            .vm(vm)
            .send_to("control", Request::put(CONTROL_PATH).body(bytes))
    }

    /// PUTs a snapshot in pieces of `chunk` bytes, as a large push arrives.
    pub fn push_in(&self, vm: usize, bytes: Vec<u8>, chunk: usize) -> Exchange {
        self.tb.vm(vm).send_to(
            "control",
            Request::put(CONTROL_PATH).body(bytes).chunk_size(chunk),
        )
    }

    /// Pushes and asserts it was accepted.
    pub fn publish(&self, vm: usize, version: u64, tokens: &[&Minted]) {
        let reply = self.push(vm, snapshot(&self.key, version, tokens));
        let local = reply
            .local_response()
            .expect("the control endpoint answers");
        assert_eq!(local.status, 200, "push refused: {}", local.body_text());
    }

    /// A GET through the public filter with the token in the query.
    pub fn get(&self, vm: usize, path: &str, session: &str) -> Exchange {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.tb
            .vm(vm)
            .send(Request::get(format!("{path}{sep}session={session}")))
    }

    /// Like [`Self::get`], from a client at `source` (`ip:port`, Envoy's `source.address`).
    pub fn get_from(&self, vm: usize, path: &str, session: &str, source: &str) -> Exchange {
        let sep = if path.contains('?') { '&' } else { '?' };
        self.tb
            .vm(vm)
            .send(Request::get(format!("{path}{sep}session={session}")).source_address(source))
    }

    /// Lets every VM's refresh tick fire.
    pub fn tick(&self) {
        self.tb.advance(Duration::from_millis(50));
    }

    pub fn now(&self) -> u64 {
        self.tb
            .now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    }

    /// Asserts no VM trapped and no log line contains any of `secrets`.
    pub fn assert_clean(&self, secrets: &[&str]) {
        assert!(self.tb.traps().is_empty(), "traps: {:?}", self.tb.traps());
        for entry in self.tb.logs() {
            for secret in secrets {
                assert!(
                    !entry.message.contains(secret),
                    "a token leaked into a log line: {}",
                    entry.message
                );
            }
        }
    }
}

/// The JSON body of a local response.
pub fn json(exchange: &Exchange) -> serde_json::Value {
    let local = exchange.local_response().expect("a local response");
    serde_json::from_slice(&local.body).expect("a JSON body")
}

/// Asserts the request was denied with this reason's metric and `result` code.
pub fn assert_denied(
    edge: &Edge,
    exchange: &Exchange,
    reason: &str,
    code: i64,
) -> serde_json::Value {
    let local = exchange
        .local_response()
        .unwrap_or_else(|| panic!("expected a denial ({reason}), got {:?}", exchange.status()));
    assert_eq!(local.status, 200, "denials answer 200 like the platform");
    assert_eq!(local.header("content-type"), Some("application/json"));
    let body = json(exchange);
    assert_eq!(body["result"], code, "{body}");
    assert_eq!(body["source"], "JEL");
    assert!(
        body["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{body}"
    );
    assert!(
        edge.tb
            .counter(&format!("pat_edge.requests.denied.{reason}"))
            .unwrap_or(0)
            >= 1,
        "metric pat_edge.requests.denied.{reason} not counted: {:?}",
        edge.tb.metrics()
    );
    body
}

/// The forwarded request of an exchange that must have been forwarded.
pub fn forwarded(exchange: &Exchange) -> pat_testbed::HttpMessage {
    exchange.forwarded().unwrap_or_else(|| {
        panic!(
            "expected the request to be forwarded, got {:?}: {:?}",
            exchange.status(),
            exchange.local_response()
        )
    })
}
