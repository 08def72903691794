//! One VM of a fake Envoy: its shared data, its replica and usage log, its clock, and what
//! its hosts logged and counted.

use std::cell::{Cell, RefCell};

use pat_core::env::EnvList;
use pat_core::keys::{SigningKey, TrustedKeys};
use pat_core::method::MethodName;
use pat_core::net::Network;
use pat_core::rate::RateLimit;
use pat_core::snapshot::layout::{HEADER_LEN, Header};
use pat_core::snapshot::{Base, SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::Token;

use super::publisher::Publisher;
use crate::config::Config;
use crate::log::Level;
use crate::rate_limit::LocalBudgets;
use crate::replica::{Clock, Replica};
use crate::shared::ensure_pointer;
use crate::shared::memory::MemoryStore;
use crate::usage::UsageLog;
use crate::{request, root};

/// [`Vm::snapshot`]s are issued here (Unix seconds); the VM's clock starts a minute later.
pub const START: u64 = 1_795_780_800;

/// One VM: its shared data, replica, usage log, clock, and what it logged and counted.
pub struct Vm {
    /// The key its snapshots are signed with...
    pub key: SigningKey,
    /// ...and the keys it trusts (that one).
    pub keys: TrustedKeys,
    pub store: MemoryStore,
    pub replica: RefCell<Replica>,
    pub usage: RefCell<UsageLog>,
    /// Its per-worker rate-limit budgets.
    pub rate_budgets: RefCell<LocalBudgets>,
    /// The host's clock, Unix milliseconds.
    pub now_ms: Cell<u64>,
    /// Whether it serves requests.
    pub active: Cell<bool>,
    /// What its request hosts counted...
    pub events: RefCell<Vec<request::Event>>,
    /// ...and its root hosts.
    pub root_events: RefCell<Vec<root::Event>>,
    pub logs: RefCell<Vec<(Level, String)>>,
    /// How often a request asked the host to load the published state.
    pub refreshes: Cell<usize>,
}

impl Default for Vm {
    fn default() -> Self {
        Self::new()
    }
}

impl Vm {
    /// A serving VM with a key of its own, the pointer created in its shared data, its clock
    /// a minute after [`START`].
    pub fn new() -> Self {
        Self::with_store(MemoryStore::default())
    }

    /// A VM over this shared data (another VM of the same Envoy shares it).
    pub fn with_store(store: MemoryStore) -> Self {
        let key = SigningKey::generate().expect("rng");
        let keys = TrustedKeys::new([key.public_key()]);
        ensure_pointer(&store).expect("store");
        Self {
            key,
            keys,
            store,
            replica: RefCell::new(Replica::default()),
            usage: RefCell::new(UsageLog::default()),
            rate_budgets: RefCell::new(LocalBudgets::default()),
            now_ms: Cell::new((START + 60) * 1000),
            active: Cell::new(true),
            events: RefCell::new(Vec::new()),
            root_events: RefCell::new(Vec::new()),
            logs: RefCell::new(Vec::new()),
            refreshes: Cell::new(0),
        }
    }

    /// A publisher that signs with this VM's key (a chain of its own).
    pub fn publisher(&self) -> Publisher {
        Publisher::with_key(
            SigningKey::from_secret_text(&self.key.to_secret_text()).expect("same key"),
        )
    }

    /// A configuration with these extra JSON fields, trusting the VM's key, with an edge
    /// key of its own in `PAT_EDGE_KEY`.
    pub fn config(&self, fields: &str) -> Config {
        self.try_config(fields).expect("a valid configuration")
    }

    /// [`Self::config`], or why it is refused.
    pub fn try_config(&self, fields: &str) -> Result<Config, crate::config::ConfigError> {
        let edge_key = SigningKey::generate().expect("rng");
        Config::parse(format!("{{{fields}}}").as_bytes(), |name| {
            self.env(name, &edge_key)
        })
    }

    /// The VM's environment: its public key in `PAT_PUBLIC_KEYS`, `edge_key` in
    /// `PAT_EDGE_KEY`.
    pub fn env(&self, name: &str, edge_key: &SigningKey) -> Option<String> {
        match name {
            "PAT_PUBLIC_KEYS" => Some(self.key.public_key().to_string()),
            "PAT_EDGE_KEY" => Some(edge_key.to_secret_text().to_string()),
            _ => None,
        }
    }

    /// A full snapshot of `tokens` at `version`, signed by the VM's key, issued at [`START`]
    /// for a week.
    pub fn snapshot(&self, version: u64, tokens: &[&Minted]) -> Vec<u8> {
        self.builder(tokens)
            .build(
                Stamp::lasting(version, START, 7 * 86_400),
                StateOf::Genesis,
                &self.key,
            )
            .expect("build")
            .bytes
    }

    /// A delta on top of the document `base` (as [`Self::snapshot`] or this built it)
    /// adding `tokens`, at `version`.
    pub fn delta(
        &self,
        base: &[u8],
        version: u64,
        tokens: &[&Minted],
        state_tokens: u32,
    ) -> Vec<u8> {
        let header =
            Header::decode(base[..HEADER_LEN].try_into().expect("header")).expect("a header");
        self.builder(tokens)
            .build_delta(
                Stamp::lasting(version, START + 1, 7 * 86_400),
                Base {
                    version: header.version,
                    state_id: header.state_id,
                },
                state_tokens,
                &self.key,
            )
            .expect("build")
            .bytes
    }

    fn builder(&self, tokens: &[&Minted]) -> SnapshotBuilder {
        let mut builder = SnapshotBuilder::new();
        builder.env_methods(
            ENV_METHODS
                .iter()
                .map(|m| MethodName::parse(m).expect("method")),
        );
        for t in tokens {
            builder
                .add(TokenSpec {
                    hash: t.token.hash(),
                    id: t.id,
                    user: &t.user,
                    expires_at: None,
                    scope: &t.scope,
                    networks: &t.networks,
                    envs: t.envs.as_ref(),
                    rate_limit: t.rate_limit,
                })
                .expect("valid token");
        }
        builder
    }

    /// Publishes a document from another VM of this Envoy: this one holds nothing until it
    /// refreshes.
    pub fn publish_elsewhere(&self, bytes: Vec<u8>) {
        let clock = Clock {
            now_ms: self.now_ms.get(),
            max_age_ms: 86_400_000,
        };
        Replica::default()
            .accept(&self.store, &self.keys, bytes, clock, false)
            .expect("published");
    }

    /// What its request hosts counted.
    pub fn events(&self) -> Vec<request::Event> {
        self.events.borrow().clone()
    }

    /// What its request hosts counted, forgotten.
    pub fn take_events(&self) -> Vec<request::Event> {
        std::mem::take(&mut self.events.borrow_mut())
    }

    /// What its root hosts counted, forgotten.
    pub fn take_root_events(&self) -> Vec<root::Event> {
        std::mem::take(&mut self.root_events.borrow_mut())
    }

    /// Whether a line at `level` containing `part` was logged.
    pub fn logged(&self, level: Level, part: &str) -> bool {
        self.logs
            .borrow()
            .iter()
            .any(|(l, m)| *l == level && m.contains(part))
    }

    /// The version its replica serves, if any.
    pub fn version(&self) -> Option<u64> {
        self.replica.borrow().version()
    }
}

/// A token the snapshot holds, with its value for the test to send.
pub struct Minted {
    pub token: Token,
    pub id: u64,
    pub user: String,
    pub scope: Vec<MethodName>,
    pub networks: Vec<Network>,
    pub envs: Option<EnvList>,
    pub rate_limit: Option<RateLimit>,
}

/// The methods the fake's snapshots declare as acting on one environment (pat-admin takes
/// them from its catalogue).
pub const ENV_METHODS: &[&str] = &[
    "environment.Control.StopEnv",
    "environment.Control.StartEnv",
    "environment.Control.RestartNodes",
    "environment.File.Write",
];

impl Minted {
    /// Token `id` of `alice`, allowed one method.
    pub fn new(id: u64, scope: &str) -> Self {
        Self {
            token: Token::generate().expect("rng"),
            id,
            user: "alice".into(),
            scope: vec![MethodName::parse(scope).expect("method")],
            networks: Vec::new(),
            envs: None,
            rate_limit: None,
        }
    }

    /// Also allowed these methods.
    pub fn and(mut self, methods: &[&str]) -> Self {
        self.scope.extend(
            methods
                .iter()
                .map(|m| MethodName::parse(m).expect("method")),
        );
        self
    }

    /// Limited to these environments.
    pub fn in_envs(mut self, names: &[&str]) -> Self {
        self.envs = EnvList::parse(names).expect("names");
        self
    }

    /// Limited to this rate (`5/s`).
    pub fn rate_limited(mut self, limit: &str) -> Self {
        self.rate_limit = Some(limit.parse().expect("limit"));
        self
    }

    /// Limited to one client network.
    pub fn limited_to(mut self, network: &str) -> Self {
        self.networks = vec![network.parse().expect("network")];
        self
    }

    /// Its value.
    pub fn value(&self) -> &str {
        self.token.expose()
    }
}
