//! A fleet: several `pat-admin serve` replicas on one PostgreSQL store, the platform
//! stand-in, and real Envoy edges whose `pat_origin` and `pat_api` clusters list every
//! replica (issue 19, "several replicas, one chain").
//!
//! - [`test_server`]: the PostgreSQL server the tests may use (`PAT_TEST_POSTGRES`).
//! - [`Database`]: a fresh database on it, dropped with the guard.
//! - [`PrivatePostgres`]: a cluster of the test's own (initdb as `postgres` into a temporary
//!   directory, its own port), for tests that restart the server.
//! - [`Fleet`]: the replicas (killed and restarted one by one), accounts, the signing key and
//!   the edges; [`Http`] sends token-method calls without panicking on a dead replica.
//! - [`check_chain`]: the snapshot chain as stored: no gap, no fork.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

use crate::{
    Edge, Proc, admin_json, binary, envoy, free_port, module, root, run_admin, wait_for_port,
    within,
};

/// The secret every replica seals and unseals the signing keys with (`PAT_ADMIN_KEY_SECRET`).
pub const KEY_SECRET: &str = "e2e fleet sealing secret, thirty-two bytes or more";
/// The password of the fleet's accounts.
pub const PASSWORD: &str = "fleet pass phrase 9";
/// A platform method in the `ide-plugins` scope: what the edge is asked with a token.
pub const STOPENV: &str = "/1.0/environment/control/rest/stopenv";

/// The PostgreSQL server the tests may use (`PAT_TEST_POSTGRES`, `postgres://user@host:port`).
pub fn test_server() -> Option<String> {
    std::env::var("PAT_TEST_POSTGRES")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// A database of its own on a server, dropped (with its connections) with the guard.
pub struct Database {
    server: String,
    name: String,
}

impl Database {
    /// A new, empty database on `server`.
    pub fn create(server: &str) -> Self {
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("random");
        let name = format!(
            "pat_fleet_{}",
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let mut client = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot connect to the PostgreSQL server {server}: {e}"));
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        Self {
            server: server.to_string(),
            name,
        }
    }

    /// Its URL (`--store`).
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    /// A connection of the test's own to it.
    pub fn connect(&self) -> postgres::Client {
        postgres::Client::connect(&self.url(), postgres::NoTls).expect("connect to the store")
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if let Ok(mut client) =
            postgres::Client::connect(&format!("{}/postgres", self.server), postgres::NoTls)
        {
            let _ = client.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// A PostgreSQL cluster of the test's own: initdb'd into a temporary directory as the
/// `postgres` user, on a port of its own; stopped (immediate) and removed when dropped.
pub struct PrivatePostgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    /// Serving TLS only ([`PrivatePostgres::start_tls_only`]).
    tls: bool,
}

impl PrivatePostgres {
    /// Starts one, or says why it cannot here (not root, no `postgres` user, no server
    /// binaries): the caller skips.
    pub fn start() -> Result<Self, String> {
        Self::start_with(false)
    }

    /// Starts one that accepts TLS connections only (`hostssl` in `pg_hba.conf`, plain TCP
    /// rejected), with a certificate for `127.0.0.1` and `localhost` signed by a CA of its
    /// own ([`PrivatePostgres::ca_file`]), made with the `openssl` command.
    pub fn start_tls_only() -> Result<Self, String> {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> Result<Self, String> {
        let uid = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
            })
            .unwrap_or_default();
        if uid != "0" {
            return Err("not root: cannot run initdb as the postgres user".into());
        }
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no PostgreSQL server binaries in /usr/lib/postgresql: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
            .max()
            .ok_or("no initdb/pg_ctl under /usr/lib/postgresql/*/bin")?;
        let known = Command::new("id")
            .arg("postgres")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !known {
            return Err("no `postgres` user to own the cluster".into());
        }
        let dir = tempfile::Builder::new()
            .prefix("pat-fleet-pg")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let chown = Command::new("chown")
            .arg("postgres")
            .arg(dir.path())
            .status()
            .map_err(|e| e.to_string())?;
        if !chown.success() {
            return Err("cannot give the cluster's directory to postgres".into());
        }
        let cluster = Self {
            dir,
            bin,
            port: free_port(),
            tls,
        };
        let initdb = cluster.as_postgres(
            &cluster.bin.join("initdb"),
            &[
                "-D",
                &cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
        );
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&initdb.stderr)
            ));
        }
        if tls {
            cluster.make_certificates()?;
            std::fs::write(
                std::path::Path::new(&cluster.data()).join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.1/32 trust\nhostnossl all all 0.0.0.0/0 reject\n",
            )
            .map_err(|e| e.to_string())?;
        }
        cluster.ctl(&["start"])?;
        Ok(cluster)
    }

    /// The CA certificate that signed a TLS-only cluster's server certificate (PEM).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A CA and a server certificate for 127.0.0.1 and localhost, the key readable by the
    /// `postgres` user only (the server refuses a key others can read).
    fn make_certificates(&self) -> Result<(), String> {
        let dir = self.dir.path();
        let run = |args: &[&str]| openssl(dir, args);
        make_ca(dir, "ca", "pat-edge test CA")?;
        run(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ])?;
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .map_err(|e| e.to_string())?;
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ])?;
        for file in ["server.pem", "server.key"] {
            let ok = Command::new("chown")
                .arg("postgres")
                .arg(dir.join(file))
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                return Err(format!("cannot give {file} to postgres"));
            }
        }
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .map_err(|e| e.to_string())
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn as_postgres(&self, program: &std::path::Path, args: &[&str]) -> Output {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("runuser runs")
    }

    /// `pg_ctl` with `args` (and the cluster's options), waiting for it.
    fn ctl(&self, args: &[&str]) -> Result<(), String> {
        let mut options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            let dir = self.dir.path().display();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={dir}/server.pem -c ssl_key_file={dir}/server.key"
            ));
        }
        let log = self.dir.path().join("server.log").display().to_string();
        let data = self.data();
        let mut all = vec!["-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options];
        all.extend_from_slice(args);
        let out = self.as_postgres(&self.bin.join("pg_ctl"), &all);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {args:?} failed: {}{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            ))
        }
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Its URL without a database (`postgres://postgres@127.0.0.1:PORT`).
    pub fn server(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are closed, transactions in
    /// flight rolled back).
    pub fn stop(&self) {
        self.ctl(&["stop", "-m", "fast"]).expect("PostgreSQL stops");
    }

    /// Starts it again after [`PrivatePostgres::stop`].
    pub fn start_again(&self) {
        self.ctl(&["start"]).expect("PostgreSQL starts again");
    }

    /// `pg_ctl restart -m fast`.
    pub fn restart(&self) {
        self.ctl(&["restart", "-m", "fast"])
            .expect("PostgreSQL restarts");
    }
}

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &std::path::Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A self-signed CA certificate `<name>.pem` (key `<name>.key`) in `dir`, named `cn`,
/// made with the `openssl` command; returns the certificate's path.
pub fn make_ca(dir: &std::path::Path, name: &str, cn: &str) -> Result<PathBuf, String> {
    let (key, cert, subject) = (
        format!("{name}.key"),
        format!("{name}.pem"),
        format!("/CN={cn}"),
    );
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &subject,
        ],
    )?;
    Ok(dir.join(cert))
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.ctl(&["stop", "-m", "immediate"]);
    }
}

/// One `pat-admin serve` replica.
pub struct Replica {
    /// `--listen`: the origin (Envoy's `pat_origin`).
    pub origin: u16,
    /// `--api-listen`: the token API (Envoy's `pat_api`).
    pub api: u16,
    proc: Option<Proc>,
}

/// Replicas on one store, the platform stand-in, and edges started from `envoy.yaml`.
pub struct Fleet {
    /// Logs and Envoy configurations.
    pub dir: TempDir,
    /// The store (`postgres://…/db`).
    pub store: String,
    /// The replicas.
    pub replicas: Vec<Replica>,
    /// The stand-in's port.
    pub platform: u16,
    /// The public key edges trust.
    pub public_key: String,
    _standin: Proc,
}

impl Fleet {
    /// Starts the stand-in and `replicas` replicas on `store` (the first alone, so that it
    /// creates the schema), waits until each is healthy, and generates the signing key.
    pub fn start(store: &str, replicas: usize) -> Self {
        let dir = TempDir::new().expect("temp dir");
        let platform = free_port();
        let standin = Proc::spawn(
            "platform-standin",
            Command::new(binary("platform-standin"))
                .args(["--listen", &format!("127.0.0.1:{platform}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let mut fleet = Self {
            dir,
            store: store.to_string(),
            replicas: (0..replicas)
                .map(|_| Replica {
                    origin: free_port(),
                    api: free_port(),
                    proc: None,
                })
                .collect(),
            platform,
            public_key: String::new(),
            _standin: standin,
        };
        for i in 0..replicas {
            fleet.start_replica(i);
            fleet
                .wait_healthy(i, Duration::from_secs(60))
                .unwrap_or_else(|| panic!("replica {i} is not healthy: {}", fleet.log(i)));
        }
        let key = fleet.admin_ok(&["--json", "key", "generate"], "");
        fleet.public_key = key["public_key"].as_str().expect("public key").to_string();
        wait_for_port(platform);
        fleet
    }

    /// Starts (or restarts) replica `i` on its ports; its stderr is appended to
    /// `replica-i.log`.
    pub fn start_replica(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("replica-{i}.log")))
            .expect("log file");
        let replica = &self.replicas[i];
        let mut serve = Command::new(binary("pat-admin"));
        serve
            .env_remove("PAT_ADMIN_STORE")
            .env("PAT_ADMIN_KEY_SECRET", KEY_SECRET)
            .args(["--store", &self.store, "serve"])
            .args(["--listen", &format!("127.0.0.1:{}", replica.origin)])
            .args(["--api-listen", &format!("127.0.0.1:{}", replica.api)])
            .args(["--client-address-header", "x-pat-client-address"])
            .arg("--module")
            .arg(module())
            .stdout(Stdio::null())
            .stderr(log);
        self.replicas[i].proc = Some(Proc::spawn("pat-admin serve", &mut serve));
    }

    /// Kills replica `i` with SIGKILL.
    pub fn kill_replica(&mut self, i: usize) {
        if let Some(mut proc) = self.replicas[i].proc.take() {
            proc.kill();
        }
    }

    /// Whether replica `i` runs (and has not exited).
    pub fn replica_running(&mut self, i: usize) -> bool {
        self.replicas[i]
            .proc
            .as_mut()
            .is_some_and(|p| matches!(p.child.try_wait(), Ok(None)))
    }

    /// Replica `i`'s log.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("replica-{i}.log")))
            .unwrap_or_default()
    }

    /// The HTTP status of replica `i`'s `/healthz` on its API listener (`None`: no answer).
    pub fn healthz(&self, i: usize) -> Option<u16> {
        Http::new()
            .get(&format!(
                "http://127.0.0.1:{}/healthz",
                self.replicas[i].api
            ))
            .ok()
            .map(|(status, _)| status)
    }

    /// Waits until replica `i` answers `/healthz` with 200 on both listeners; how long it took.
    pub fn wait_healthy(&mut self, i: usize, limit: Duration) -> Option<Duration> {
        let http = Http::new();
        let (origin, api) = (self.replicas[i].origin, self.replicas[i].api);
        let start = Instant::now();
        loop {
            let ok = [origin, api].iter().all(|port| {
                http.get(&format!("http://127.0.0.1:{port}/healthz"))
                    .is_ok_and(|(status, _)| status == 200)
            });
            if ok {
                return Some(start.elapsed());
            }
            if start.elapsed() > limit || !self.replica_running(i) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs pat-admin on the store.
    pub fn admin(&self, args: &[&str], stdin: &str) -> Output {
        let mut command = Command::new(binary("pat-admin"));
        command
            .env_remove("PAT_ADMIN_STORE")
            .env("PAT_ADMIN_KEY_SECRET", KEY_SECRET)
            .args(["--store", &self.store])
            .args(args);
        run_admin(command, stdin)
    }

    /// Runs pat-admin and expects success; stdout as JSON (or null).
    pub fn admin_ok(&self, args: &[&str], stdin: &str) -> Value {
        admin_json(args, self.admin(args, stdin))
    }

    /// Adds the accounts `names` (password [`PASSWORD`]), a few `pat-admin user add` at once.
    pub fn add_users(&self, names: &[String]) {
        for chunk in names.chunks(4) {
            std::thread::scope(|s| {
                for name in chunk {
                    s.spawn(move || {
                        self.admin_ok(
                            &["user", "add", name, "--password-stdin"],
                            &format!("{PASSWORD}\n"),
                        );
                    });
                }
            });
        }
    }

    /// Signs `user` in through replica `i`'s API: the login session.
    pub fn sign_in(&self, i: usize, user: &str) -> String {
        let (status, json) = Http::new()
            .call(
                &self.api_url(i, "Signin"),
                &[("login", user), ("password", PASSWORD)],
            )
            .unwrap_or_else(|e| panic!("Signin of {user}: {e:?}"));
        assert_eq!((status, &json["result"]), (200, &Value::from(0)), "{json}");
        json["session"].as_str().expect("session").to_string()
    }

    /// The URL of token method `method` on replica `i`'s API listener.
    pub fn api_url(&self, i: usize, method: &str) -> String {
        format!(
            "http://127.0.0.1:{}/1.0/users/authentication/rest/{}",
            self.replicas[i].api,
            method.to_ascii_lowercase()
        )
    }

    /// Starts an Envoy from the top-level `envoy.yaml` whose `pat_origin` and `pat_api`
    /// clusters list every replica, registers its control listener as an edge (changes are
    /// pushed to it), and waits until it is ready and has heard from the origin.
    pub fn start_edge(&self, name: &str) -> Edge {
        let (public, control, admin) = (free_port(), free_port(), free_port());
        let config = self.envoy_config(public, control, admin);
        let path = self.dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, config).expect("write the Envoy configuration");
        let log =
            std::fs::File::create(self.dir.path().join(format!("{name}.log"))).expect("log file");
        let proc = Proc::spawn(
            "envoy",
            Command::new(envoy())
                .current_dir(root())
                .env("PAT_PUBLIC_KEYS", &self.public_key)
                .env_remove("PAT_EDGE_KEY")
                .arg("-c")
                .arg(&path)
                .args(["--concurrency", "2", "--use-dynamic-base-id", "-l", "info"])
                .stdout(Stdio::null())
                .stderr(log),
        );
        let mut edge = Edge {
            proc,
            public,
            control,
            admin,
        };
        let ready = within(Duration::from_secs(60), || {
            edge.proc.assert_running();
            reqwest::blocking::get(format!("http://127.0.0.1:{admin}/ready"))
                .is_ok_and(|r| r.status().is_success())
        });
        assert!(ready.is_some(), "Envoy {name} did not become ready");
        self.admin_ok(&["edge", "add", &edge.control_url()], "");
        within(Duration::from_secs(30), || {
            let status = edge_status(&edge);
            status["result"] == 0 && !status["floor"].is_string()
        })
        .expect("the edge heard from the origin");
        edge
    }

    /// `envoy.yaml` with these ports, the replicas as the clusters' endpoints and the built
    /// filter's absolute path.
    fn envoy_config(&self, public: u16, control: u16, admin: u16) -> String {
        assert!(self.replicas.len() >= 2, "envoy.yaml names two replicas");
        let original = std::fs::read_to_string(root().join("envoy.yaml")).expect("envoy.yaml");
        let mut config = original.replace(
            "target/wasm32-wasip1/release/pat_plugin.wasm",
            &module().display().to_string(),
        );
        let endpoint = |port: u16| {
            format!(
                "\n        - endpoint:\n            address:\n              socket_address: {{ address: 127.0.0.1, port_value: {port} }}"
            )
        };
        // Replicas beyond the second: endpoints after the second one's.
        for (second, pick) in [(10012, 0), (10013, 1)] {
            let line = format!("socket_address: {{ address: 127.0.0.1, port_value: {second} }}");
            assert!(config.contains(&line), "envoy.yaml no longer has `{line}`");
            let extra: String = self.replicas[2..]
                .iter()
                .map(|r| endpoint(if pick == 0 { r.origin } else { r.api }))
                .collect();
            config = config.replace(&line, &format!("{line}{extra}"));
        }
        for (from, to) in [
            (10000, public),
            (10001, control),
            (9901, admin),
            (8080, self.platform),
            (10002, self.replicas[0].origin),
            (10003, self.replicas[0].api),
            (10012, self.replicas[1].origin),
            (10013, self.replicas[1].api),
        ] {
            let before = format!("port_value: {from} ");
            assert!(
                config.contains(&before),
                "envoy.yaml no longer has `{before}`"
            );
            config = config.replace(&before, &format!("port_value: {to} "));
        }
        config
    }
}

/// What an edge's control endpoint reports (one worker's view): `version`, `tokens`, ….
pub fn edge_status(edge: &Edge) -> Value {
    Http::new()
        .get(&format!(
            "{}{}",
            edge.control_url(),
            pat_core::protocol::control::PATH
        ))
        .map_or(Value::Null, |(_, json)| json)
}

/// Why a call got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoAnswer {
    /// The connection was refused: the request never reached a server.
    Connect(String),
    /// The connection broke (or timed out) after the request was sent: its fate is unknown.
    InFlight(String),
}

/// An HTTP client that opens a connection per request and never panics on a failure.
pub struct Http {
    client: reqwest::blocking::Client,
    address: std::net::IpAddr,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

impl Http {
    /// A client from 127.0.0.1, 30 s per request.
    pub fn new() -> Self {
        Self::from_address(std::net::Ipv4Addr::LOCALHOST.into())
    }

    /// A client connecting from `address` (a loopback address), which it also gives as its
    /// client address to a replica's API listener (as Envoy would): pat-admin checks one
    /// password at a time per client address, so clients of their own need addresses of
    /// their own.
    pub fn from_address(address: std::net::IpAddr) -> Self {
        Self {
            client: reqwest::blocking::Client::builder()
                .pool_max_idle_per_host(0)
                .timeout(Duration::from_secs(30))
                .local_address(address)
                .no_proxy()
                .build()
                .expect("client"),
            address,
        }
    }

    fn answer(
        result: reqwest::Result<reqwest::blocking::Response>,
    ) -> Result<(u16, Value), NoAnswer> {
        let response = result.map_err(|e| {
            if e.is_connect() {
                NoAnswer::Connect(e.to_string())
            } else {
                NoAnswer::InFlight(e.to_string())
            }
        })?;
        let status = response.status().as_u16();
        let body = response
            .bytes()
            .map_err(|e| NoAnswer::InFlight(e.to_string()))?;
        // Not JSON (Envoy's own answers): the text, so the caller can tell why.
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        Ok((status, json))
    }

    /// GET `url`.
    pub fn get(&self, url: &str) -> Result<(u16, Value), NoAnswer> {
        Self::answer(self.client.get(url).send())
    }

    /// POST `form` to `url` (a form body, as platform clients send), with the client address
    /// a direct caller of a replica's API listener would get from Envoy.
    pub fn call(&self, url: &str, form: &[(&str, &str)]) -> Result<(u16, Value), NoAnswer> {
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        Self::answer(
            self.client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-pat-client-address", self.address.to_string())
                .body(body)
                .send(),
        )
    }
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The stored chain, as [`check_chain`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chain {
    /// The oldest version kept (older deltas are pruned).
    pub first: u64,
    /// The latest version.
    pub latest: u64,
    /// Documents stored.
    pub documents: usize,
    /// Full snapshots among them.
    pub fulls: usize,
    /// Tokens in the latest document's state.
    pub tokens: u64,
}

/// Reads the `snapshots` table and checks it is one chain: versions contiguous from the
/// oldest kept to the latest, each delta based on the version before it, at most one
/// document of each kind per version, a full snapshot only where a chain starts (the oldest
/// kept version) or as a compaction beside a delta of its version, and every document of the
/// latest full snapshot's chain.
pub fn check_chain(db: &mut postgres::Client) -> Result<Chain, String> {
    let rows = db
        .query(
            "SELECT version, kind, base_version, chain, tokens FROM snapshots ORDER BY version, kind",
            &[],
        )
        .map_err(|e| format!("reading the snapshots: {e}"))?;
    let docs: Vec<(i64, String, Option<i64>, i64, i64)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect();
    let Some(first) = docs.first().map(|d| d.0) else {
        return Err("no snapshot stored".into());
    };
    let latest = docs.last().map_or(first, |d| d.0);
    let mut problems = Vec::new();
    let chain = docs
        .iter()
        .filter(|d| d.1 == "full")
        .map(|d| d.3)
        .next_back();
    let mut fulls = 0;
    for version in first..=latest {
        let here: Vec<_> = docs.iter().filter(|d| d.0 == version).collect();
        let deltas: Vec<_> = here.iter().filter(|d| d.1 == "delta").collect();
        let full = here.iter().filter(|d| d.1 == "full").count();
        fulls += full;
        if here.is_empty() {
            problems.push(format!("gap: no document at version {version}"));
        }
        if deltas.len() > 1 || full > 1 {
            problems.push(format!(
                "fork: {} documents at version {version}",
                here.len()
            ));
        }
        for delta in &deltas {
            if delta.2 != Some(version - 1) {
                problems.push(format!(
                    "fork: the delta at {version} is based on {:?}",
                    delta.2
                ));
            }
        }
        if full == 1 && deltas.is_empty() && version != first {
            problems.push(format!(
                "a full snapshot at {version} that is neither the chain's start nor a compaction"
            ));
        }
        if let Some(chain) = chain
            && here.iter().any(|d| d.3 != chain)
        {
            problems.push(format!("version {version} belongs to another chain"));
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("\n"));
    }
    Ok(Chain {
        first: u64::try_from(first).unwrap_or(0),
        latest: u64::try_from(latest).unwrap_or(0),
        documents: docs.len(),
        fulls,
        tokens: docs
            .iter()
            .rev()
            .find(|d| d.0 == latest)
            .map_or(0, |d| u64::try_from(d.4).unwrap_or(0)),
    })
}
