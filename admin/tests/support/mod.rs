//! Running the real `pat-admin` binary against a temporary store.

#![allow(dead_code, unreachable_pub)]

pub mod edge;
pub mod old_store;

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery";

/// A temporary store and a way to run pat-admin on it: a directory (SQLite), or, when
/// `PAT_TEST_ENGINE=postgres`, a fresh database on the server at `PAT_TEST_POSTGRES`
/// (dropped at the end), so the same tests run on both engines.
pub struct Admin {
    pub dir: TempDir,
    pub pg: Option<PgDatabase>,
}

/// The secret PostgreSQL test stores seal their keys with.
pub const KEY_SECRET: &str = "test-only sealing secret, 32 bytes or more";

/// Whether this run tests the PostgreSQL store.
pub fn postgres() -> bool {
    std::env::var("PAT_TEST_ENGINE").is_ok_and(|e| e == "postgres")
}

/// A database of its own on the test server, dropped with it.
pub struct PgDatabase {
    pub server: String,
    pub name: String,
}

impl PgDatabase {
    /// A new, empty database on the server at `PAT_TEST_POSTGRES`.
    pub fn create() -> Self {
        let server = std::env::var("PAT_TEST_POSTGRES")
            .expect("PAT_TEST_ENGINE=postgres needs PAT_TEST_POSTGRES=postgres://user@host:port");
        let mut random = [0u8; 8];
        getrandom::fill(&mut random).expect("random");
        let name = format!(
            "pat_test_{}",
            random
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let mut client = postgres::Client::connect(&format!("{server}/postgres"), postgres::NoTls)
            .expect("connect to the test PostgreSQL server");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create the test database");
        Self { server, name }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for PgDatabase {
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

/// What a run produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// What a finished command produced.
    pub fn from_output(output: Output) -> Self {
        Self::from(output)
    }

    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Asserts this exit code and returns stderr.
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stderr
    }

    /// Stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout))
    }
}

impl Admin {
    /// A fresh, empty store.
    pub fn new() -> Self {
        Self {
            dir: TempDir::new().expect("temp dir"),
            pg: postgres().then(PgDatabase::create),
        }
    }

    /// A fresh store on SQLite whatever the engine tested (tests of SQLite's files).
    pub fn sqlite() -> Self {
        Self {
            dir: TempDir::new().expect("temp dir"),
            pg: None,
        }
    }

    /// The store directory (SQLite; on PostgreSQL, where files such as edge keys go).
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The store as `--store` takes it: the directory, or the database URL.
    pub fn store_arg(&self) -> String {
        match &self.pg {
            Some(pg) => pg.url(),
            None => self.store().display().to_string(),
        }
    }

    /// The store's location.
    pub fn location(&self) -> pat_admin::store::db::Location {
        pat_admin::store::db::Location::parse(&self.store_arg())
    }

    /// Opens the store in this process (creating it).
    pub fn open(&self) -> pat_admin::store::Store {
        pat_admin::store::Store::open_as(self.location(), pat_admin::store::Open::Create)
            .expect("open the store")
            .with_clock(self.clock())
    }

    /// Creates the (empty) store, as the first `user add` or `key generate` would, for tests
    /// of commands that need one to exist.
    pub fn init(&self) -> &Self {
        drop(self.open());
        self
    }

    /// The environment a pat-admin process on this store needs: the sealing secret (this
    /// process's own when it has one, as the PostgreSQL run of `scripts/test` sets it, so
    /// keys sealed by a child open in tests that sign in-process).
    ///
    /// And the test clock's offset file ([`Admin::advance`]): every pat-admin process of the
    /// test reads its time shifted by it (the binary is built with the `test-clock` feature
    /// for these tests, `pat_admin::clock`).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        let secret =
            std::env::var("PAT_ADMIN_KEY_SECRET").unwrap_or_else(|_| KEY_SECRET.to_string());
        vec![
            ("PAT_ADMIN_KEY_SECRET", secret),
            (
                pat_admin::clock::TEST_CLOCK_FILE_VAR,
                self.clock_file().display().to_string(),
            ),
        ]
    }

    /// The file holding the offset, in seconds, of this test's pat-admin clocks.
    pub fn clock_file(&self) -> PathBuf {
        self.dir.path().join("clock-offset")
    }

    /// The offset of this test's pat-admin clocks from the system clock, seconds.
    pub fn clock_offset(&self) -> i64 {
        match std::fs::read_to_string(self.clock_file()) {
            Ok(text) => text.trim().parse().expect("an offset in seconds"),
            Err(_) => 0,
        }
    }

    /// The clock of this test's pat-admin processes (and of [`Admin::open`]'s store).
    pub fn clock(&self) -> pat_admin::clock::Clock {
        pat_admin::clock::Clock::shifted_by_file(self.clock_file())
    }

    /// The time by this test's pat-admin clocks, Unix seconds.
    pub fn now(&self) -> u64 {
        self.clock().now()
    }

    /// Moves this test's pat-admin clocks `secs` seconds forward, at once for every process
    /// already running (a `serve` re-signs or compacts on its next check, a grace window
    /// ends): the offset file is replaced in one rename, so no process reads half of it.
    pub fn advance(&self, secs: u64) {
        let offset = self.clock_offset() + i64::try_from(secs).expect("seconds");
        let file = self.clock_file();
        let next = file.with_extension("next");
        std::fs::write(&next, offset.to_string()).expect("write the clock offset");
        std::fs::rename(&next, &file).expect("replace the clock offset");
    }

    /// Moves this test's pat-admin clocks forward until they read `at` (Unix seconds); a
    /// time already reached leaves them as they are.
    pub fn advance_to(&self, at: u64) {
        let now = self.now();
        if at > now {
            self.advance(at - now);
        }
    }

    /// A command for the binary, on this store, with no inherited store variable.
    pub fn command(&self) -> Command {
        let mut cmd = Command::cargo_bin("pat-admin").expect("binary built");
        cmd.env_remove("PAT_ADMIN_STORE")
            .env_remove("PAT_STORE")
            .envs(self.env())
            .arg("--store")
            .arg(self.store_arg());
        cmd
    }

    /// A `std` command for the binary on this store (tests that spawn and wait themselves).
    pub fn std_command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("pat-admin"));
        cmd.env_remove("PAT_ADMIN_STORE")
            .env_remove("PAT_STORE")
            .envs(self.env())
            .arg("--store")
            .arg(self.store_arg());
        cmd
    }

    /// Runs with `args` and `stdin`.
    pub fn run_with(&self, args: &[&str], stdin: &str) -> Run {
        Run::from(
            self.command()
                .args(args)
                .write_stdin(stdin)
                .output()
                .expect("pat-admin runs"),
        )
    }

    /// Runs with `args` and an empty stdin.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, "")
    }

    /// Runs a change confirmed with [`PASSWORD`] on stdin.
    pub fn confirmed(&self, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.push("--password-stdin");
        self.run_with(&all, &format!("{PASSWORD}\n"))
    }

    /// Starts a change confirmed with [`PASSWORD`] on stdin without waiting for it (stdout
    /// and stderr piped), with extra environment variables.
    pub fn spawn_confirmed(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Child {
        self.spawn_confirmed_to(args, env, std::process::Stdio::piped())
    }

    /// [`Admin::spawn_confirmed`] with its stdout going to `stdout`.
    pub fn spawn_confirmed_to(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        stdout: std::process::Stdio,
    ) -> std::process::Child {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .std_command()
            .envs(env.iter().copied())
            .args(args)
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("pat-admin starts");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("password written");
        child
    }

    /// Creates an account with [`PASSWORD`].
    pub fn user(&self, name: &str) {
        self.run_with(
            &["user", "add", name, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )
        .ok();
    }

    /// Creates a signing key and returns its public key text.
    pub fn key(&self) -> String {
        let run = self.run(&["--json", "key", "generate"]);
        run.ok();
        run.json()["public_key"]
            .as_str()
            .expect("public_key")
            .to_string()
    }

    /// Generates a token; returns (id, value).
    pub fn token(&self, user: &str, scope: &[&str]) -> (i64, String) {
        let mut args = vec![
            "--json",
            "generate",
            "--user",
            user,
            "--description",
            "test token",
        ];
        args.extend_from_slice(scope);
        let run = self.confirmed(&args);
        run.ok();
        let json = run.json();
        (
            json["id"].as_i64().expect("id"),
            json["token"].as_str().expect("token").to_string(),
        )
    }
}

/// Mode bits of a file.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

// ---- Helpers added for the CLI behaviour suites (cli_*.rs). ----

impl Admin {
    /// Runs a change confirmed with `password` (instead of [`PASSWORD`]) on stdin.
    pub fn confirmed_with(&self, args: &[&str], password: &str) -> Run {
        let mut all = args.to_vec();
        all.push("--password-stdin");
        self.run_with(&all, &format!("{password}\n"))
    }

    /// The store's database, opened directly (either engine): for states the CLI refuses to
    /// create (an expired token) and for checking what is stored.
    pub fn db(&self) -> pat_admin::store::db::Connection {
        match &self.pg {
            Some(pg) => pat_admin::store::db::Connection::postgres(&pg.url(), false)
                .expect("connect to the store database"),
            None => pat_admin::store::db::Connection::sqlite(
                rusqlite::Connection::open(self.store().join("pat-admin.db"))
                    .expect("open the store database"),
            ),
        }
    }

    /// The SQLite database file, opened with rusqlite (tests of SQLite's own behaviour).
    pub fn sqlite_db(&self) -> rusqlite::Connection {
        assert!(self.pg.is_none(), "a SQLite test runs on Admin::sqlite()");
        rusqlite::Connection::open(self.store().join("pat-admin.db"))
            .expect("open the store database")
    }

    /// Makes a token expired by moving its expiry to yesterday (the CLI refuses past dates).
    pub fn expire(&self, id: i64) {
        let yesterday = time::OffsetDateTime::now_utc().unix_timestamp() - 86_400;
        let changed = self
            .db()
            .execute(
                "UPDATE tokens SET expires_at = ?1 WHERE id = ?2",
                pat_admin::params![yesterday, id],
            )
            .expect("update expires_at");
        assert_eq!(changed, 1, "token {id} exists");
    }

    /// The stored SHA-256 of a token's value.
    pub fn stored_hash(&self, id: i64) -> Vec<u8> {
        self.db()
            .query_row("SELECT hash FROM tokens WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .expect("token row")
    }

    /// Every file under the store directory with its bytes (database, WAL, keys...); on
    /// PostgreSQL, every table's rows as bytes (text, bytes and numbers as decimal text),
    /// one entry per table, besides any file in the directory.
    pub fn store_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let bytes = std::fs::read(&path).expect("read store file");
                    out.push((path, bytes));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.store(), &mut out);
        if self.pg.is_some() {
            use pat_admin::store::db::Value;
            let db = self.db();
            let tables: Vec<String> = db
                .rows(
                    "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema()",
                    [],
                    |row| row.get(0),
                )
                .expect("tables");
            for table in tables {
                let mut bytes = Vec::new();
                db.for_each(&format!("SELECT * FROM \"{table}\""), [], |row| {
                    for value in row.values() {
                        match value {
                            Value::Text(t) => bytes.extend_from_slice(t.as_bytes()),
                            Value::Blob(b) => bytes.extend_from_slice(b),
                            Value::Int(i) => bytes.extend_from_slice(i.to_string().as_bytes()),
                            Value::Real(r) => bytes.extend_from_slice(r.to_string().as_bytes()),
                            Value::Null => {}
                        }
                        bytes.push(0);
                    }
                    Ok(())
                })
                .expect("table rows");
                out.push((PathBuf::from(format!("postgres table {table}")), bytes));
            }
        }
        out
    }

    /// The account's tokens, as `list --json` shows them.
    pub fn tokens(&self, user: &str) -> Vec<serde_json::Value> {
        let run = self.run(&["--json", "list", "--user", user]);
        run.ok();
        run.json()
            .as_array()
            .expect("list --json is an array")
            .clone()
    }

    /// The audit log, newest first, as `audit --json` shows it.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        let run = self.run(&["--json", "audit"]);
        run.ok();
        run.json()
            .as_array()
            .expect("audit --json is an array")
            .clone()
    }
}

/// The date `days` from today (UTC) as `DD-MM-YYYY` (negative: in the past).
pub fn date_in(days: i64) -> String {
    let date = time::OffsetDateTime::now_utc().date() + time::Duration::days(days);
    date.format(time::macros::format_description!("[day]-[month]-[year]"))
        .expect("format date")
}

/// Asserts a token value has the published shape `pate_[0-9A-Za-z]{36}` and a valid checksum.
pub fn assert_token_shape(value: &str) {
    let rest = value
        .strip_prefix("pate_")
        .unwrap_or_else(|| panic!("token without the pate_ prefix: {value:?}"));
    assert!(
        rest.len() == 36 && rest.bytes().all(|b| b.is_ascii_alphanumeric()),
        "token does not match pate_[0-9A-Za-z]{{36}}: {value:?}"
    );
    assert_eq!(
        pat_core::token::validate(value),
        Ok(()),
        "checksum of {value:?}"
    );
}

/// Occurrences of `needle` in `haystack` (bytes).
pub fn occurrences(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

// ---- Helpers for the snapshot freshness and durability suites. ----

/// A `pat-admin serve` on a free port, killed when dropped; its stderr goes to `serve.log`
/// (or `serve-N.log`) in the test's directory.
pub struct Server {
    child: std::process::Child,
    /// The port it listens on.
    pub port: u16,
    /// The token API's port, when it serves one.
    pub api_port: Option<u16>,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How often the tests' `serve` looks at the latest document (`--check-every`; the default
/// is 2 s).
pub const SERVE_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Admin {
    /// Starts `pat-admin serve` on this store and waits until it listens.
    pub fn serve(&self) -> Server {
        self.serve_with(false)
    }

    /// Starts `pat-admin serve` with the token API too (`--api-listen`, client addresses
    /// from `x-test-client`).
    pub fn serve_api(&self) -> Server {
        self.serve_with(true)
    }

    fn serve_with(&self, api: bool) -> Server {
        let port = free_port();
        let api_port = api.then(free_port);
        let mut n = 0;
        let log = loop {
            let name = if n == 0 {
                "serve.log".to_string()
            } else {
                format!("serve-{n}.log")
            };
            let path = self.dir.path().join(name);
            if !path.exists() {
                break path;
            }
            n += 1;
        };
        let child = self
            .std_command()
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--check-every", &format!("{}s", SERVE_CHECK.as_secs())])
            .args(api_port.map_or_else(Vec::new, |p| {
                vec![
                    "--api-listen".to_string(),
                    format!("127.0.0.1:{p}"),
                    "--client-address-header".into(),
                    "x-test-client".into(),
                ]
            }))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("serve starts");
        let mut server = Server {
            child,
            port,
            api_port,
            log,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
            || api_port.is_some_and(|p| std::net::TcpStream::connect(("127.0.0.1", p)).is_err())
        {
            server.assert_running();
            assert!(
                std::time::Instant::now() < deadline,
                "serve did not listen: {}",
                server.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        server
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub etag: Option<String>,
    pub body: Vec<u8>,
    /// Every header, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

impl Server {
    /// `GET path`, optionally conditional.
    pub fn get(&self, path: &str, if_none_match: Option<&str>) -> Reply {
        http_get(self.port, path, if_none_match)
    }

    /// `POST path` with `body`.
    pub fn post(&self, path: &str, body: &[u8]) -> Reply {
        http_post(self.port, path, body)
    }

    /// Waits long enough for its re-signer to have looked at the store `checks` times (each
    /// [`SERVE_CHECK`], and a margin): for tests that something does *not* happen, which no
    /// clock can show sooner.
    pub fn wait_checks(&self, checks: u32) {
        std::thread::sleep(SERVE_CHECK * checks + std::time::Duration::from_millis(300));
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics if it exited.
    pub fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("serve exited ({status}): {}", self.log());
        }
    }

    /// The state it serves to an edge that holds nothing (`GET /snapshot`: the latest full
    /// snapshot and the deltas after it), verified with `key` and applied as an edge does.
    pub fn snapshot(&self, key: &str) -> Served {
        let reply = self.get("/snapshot", None);
        assert_eq!(
            reply.status,
            200,
            "GET /snapshot: {}",
            String::from_utf8_lossy(&reply.body)
        );
        Served::from_bundle(reply.body, key)
    }

    /// The signed head it serves, verified with `key`.
    pub fn head(&self, key: &str) -> (pat_core::snapshot::Header, Vec<u8>) {
        let reply = self.get("/snapshot/head", None);
        assert_eq!(
            reply.status,
            200,
            "GET /snapshot/head: {}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.body.len(), pat_core::snapshot::BODY_OFFSET);
        let header =
            pat_core::snapshot::verify_head(&reply.body, &trusted(key)).expect("a signed head");
        (header, reply.body)
    }
}

/// The trusted keys of an edge that trusts `key` (`ed25519:...`).
pub fn trusted(key: &str) -> pat_core::keys::TrustedKeys {
    pat_core::keys::TrustedKeys::new([key.parse().expect("a public key")])
}

/// A plain HTTP/1.1 GET on 127.0.0.1 (`Connection: close`, so the body ends with the stream).
pub fn http_get(port: u16, path: &str, if_none_match: Option<&str>) -> Reply {
    let condition = if_none_match.map_or(String::new(), |t| format!("If-None-Match: {t}\r\n"));
    http_request(port, "GET", path, &condition, &[])
}

/// A plain HTTP/1.1 POST of `body` on 127.0.0.1.
pub fn http_post(port: u16, path: &str, body: &[u8]) -> Reply {
    http_request(
        port,
        "POST",
        path,
        &format!(
            "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
            body.len()
        ),
        body,
    )
}

/// A plain HTTP/1.1 request on 127.0.0.1 with extra header lines (each ending in CRLF).
pub fn http_request(port: u16, method: &str, path: &str, headers: &str, body: &[u8]) -> Reply {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
    )
    .expect("send");
    // A refused body may close the connection before all of it is read.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    // A server that refuses a body may reset the connection after answering.
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert!(!raw.is_empty(), "no answer: {e}");
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let header = |name: &str| {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    };
    let mut body = raw[split + 4..].to_vec();
    if let Some(len) = header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body.truncate(len);
    }
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect();
    Reply {
        status,
        etag: header("etag"),
        body,
        headers,
    }
}

/// A pipe whose buffer is already full: a process given its write end as stdout blocks on
/// its first write, for as long as nobody reads the read end (keep it alive). Linux only
/// (the pipe is filled through `/proc/self/fd` opened with `O_NONBLOCK`).
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

/// A listener that accepts TCP connections and never reads from them or answers: an edge
/// that hangs.
pub struct HangingEdge {
    listener: std::net::TcpListener,
    held: Vec<std::net::TcpStream>,
}

impl HangingEdge {
    /// Listens on a free port.
    pub fn new() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        Self {
            listener,
            held: Vec::new(),
        }
    }

    /// Its URL, as `edge add` takes it.
    pub fn url(&self) -> String {
        format!("http://{}", self.listener.local_addr().expect("addr"))
    }

    /// Accepts (and keeps, unread) the connections that arrived; how many there were.
    pub fn accept_pending(&mut self) -> usize {
        let mut n = 0;
        while let Ok((stream, _)) = self.listener.accept() {
            self.held.push(stream);
            n += 1;
        }
        n
    }

    /// Waits until a push connects (it then hangs: nothing is read or answered).
    pub fn wait_for_push(&mut self, limit: std::time::Duration) {
        let deadline = std::time::Instant::now() + limit;
        while self.accept_pending() == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "no push reached the edge within {limit:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

/// The state a bundle (or a single full snapshot) leads to, as an edge applies it: each
/// document verified with the key, the first a full snapshot, each delta applied on top.
/// Checks as it goes that every document's stated token count is what the state holds.
pub struct Served {
    /// The state.
    pub state: pat_core::snapshot::TokenState,
    /// The hash prefixes it holds, replayed from the documents.
    pub prefixes: std::collections::BTreeSet<[u8; 16]>,
    /// The documents, `(version, kind)`, in order.
    pub documents: Vec<(u64, pat_core::snapshot::Kind)>,
    /// The signed head of the last one.
    pub last_head: Vec<u8>,
}

impl Served {
    /// Opens and applies `bytes` (a bundle, or one full snapshot).
    pub fn from_bundle(bytes: Vec<u8>, key: &str) -> Self {
        use pat_core::snapshot::{Document, TokenState, bundle, open};
        let keys = trusted(key);
        let raw = if bundle::is_bundle(&bytes) {
            bundle::into_documents(bytes).expect("a well-formed bundle")
        } else {
            vec![bytes]
        };
        let mut state: Option<TokenState> = None;
        let mut prefixes = std::collections::BTreeSet::new();
        let mut documents = Vec::new();
        let mut last_head = Vec::new();
        for bytes in raw {
            last_head = bytes[..pat_core::snapshot::BODY_OFFSET.min(bytes.len())].to_vec();
            let document = open::open(bytes, &keys).expect("a document the edge accepts");
            let header = *document.header();
            documents.push((header.version, header.kind));
            match document {
                Document::Full(full) => {
                    assert!(state.is_none(), "a full snapshot only starts a bundle");
                    prefixes = full.entries().map(|(p, _)| p).collect();
                    state = Some(TokenState::new(full));
                }
                Document::Delta(delta) => {
                    let held = state
                        .as_mut()
                        .expect("a bundle starts with a full snapshot here");
                    held.apply(&delta)
                        .expect("each delta applies to the state before");
                    for p in delta.removed() {
                        prefixes.remove(&p);
                    }
                    prefixes.extend(delta.entries().map(|(p, _)| p));
                }
            }
            let held = state.as_ref().expect("state");
            assert_eq!(
                held.token_count(),
                u64::from(header.state_tokens),
                "version {}: the stated token count is what the state holds",
                header.version
            );
            assert_eq!(prefixes.len() as u64, held.token_count());
        }
        Self {
            state: state.expect("at least one document"),
            prefixes,
            documents,
            last_head,
        }
    }

    /// Applies a catch-up (a bundle of deltas) on top, as an edge that holds this state
    /// does; checks the stated token counts as it goes.
    pub fn apply(&mut self, bytes: Vec<u8>, key: &str) {
        use pat_core::snapshot::{Document, bundle, open};
        let keys = trusted(key);
        for bytes in bundle::into_documents(bytes).expect("a well-formed bundle") {
            self.last_head = bytes[..pat_core::snapshot::BODY_OFFSET].to_vec();
            let Document::Delta(delta) = open::open(bytes, &keys).expect("accepted") else {
                panic!("a catch-up holds deltas");
            };
            self.state.apply(&delta).expect("applies to the state held");
            for p in delta.removed() {
                self.prefixes.remove(&p);
            }
            self.prefixes.extend(delta.entries().map(|(p, _)| p));
            self.documents
                .push((delta.header().version, pat_core::snapshot::Kind::Delta));
            assert_eq!(
                self.state.token_count(),
                u64::from(delta.header().state_tokens)
            );
            assert_eq!(self.prefixes.len() as u64, self.state.token_count());
        }
    }

    /// The version reached.
    pub fn version(&self) -> u64 {
        self.state.version()
    }

    /// Tokens held.
    pub fn token_count(&self) -> u64 {
        self.state.token_count()
    }

    /// The token with this hash.
    pub fn find(
        &self,
        hash: &pat_core::token::TokenHash,
    ) -> Option<pat_core::snapshot::StateToken<'_>> {
        self.state.find(hash)
    }

    /// The hash prefixes held, sorted.
    pub fn hashes(&self) -> Vec<[u8; 16]> {
        self.prefixes.iter().copied().collect()
    }

    /// The header of the last document applied.
    pub fn header(&self) -> &pat_core::snapshot::Header {
        self.state.header()
    }
}

// ---- Helpers for edge keys and usage reports. ----

impl Admin {
    /// Creates an edge key named `name` with `edge key generate` (its secret written to
    /// `NAME.key` in the test's directory); returns its id and the secret key.
    pub fn edge_key(&self, name: &str) -> (String, pat_core::keys::SigningKey) {
        let file = self.dir.path().join(format!("{name}.key"));
        let run = self.run(&[
            "--json",
            "edge",
            "key",
            "generate",
            "--name",
            name,
            "--output",
            file.to_str().expect("utf-8"),
        ]);
        run.ok();
        let text = std::fs::read_to_string(&file).expect("the key file");
        let key = pat_core::keys::SigningKey::from_secret_text(&text).expect("a secret key");
        (run.json()["id"].as_str().expect("id").to_string(), key)
    }
}

impl Admin {
    /// The stored documents an edge that holds nothing needs, read from the database
    /// directly (not through the origin): the latest full snapshot and every delta after
    /// it, as a bundle.
    pub fn stored_bundle(&self) -> Vec<u8> {
        let db = self.db();
        let full: i64 = db
            .query_row(
                "SELECT max(version) FROM snapshots WHERE kind = 'full'",
                [],
                |r| r.get(0),
            )
            .expect("a full snapshot");
        let mut stmt = db
            .prepare(
                "SELECT bytes FROM snapshots WHERE (kind = 'full' AND version = ?1)
                 OR (kind = 'delta' AND version > ?1) ORDER BY version",
            )
            .expect("query");
        let docs: Vec<Vec<u8>> = stmt
            .query_map([full], |r| r.get(0))
            .expect("rows")
            .map(|r| r.expect("row"))
            .collect();
        pat_core::snapshot::bundle::encode(docs.iter().map(Vec::as_slice))
    }
}

/// The wall clock, Unix milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64
}

impl Server {
    /// A token API method through `--api-listen`, from client address `192.0.2.1`: the JSON
    /// answer.
    pub fn api(&self, method: &str, query: &str) -> serde_json::Value {
        let port = self.api_port.expect("serve_api");
        let reply = http_request(
            port,
            "GET",
            &format!("/1.0/users/authentication/rest/{method}?{query}"),
            "x-test-client: 192.0.2.1\r\n",
            &[],
        );
        assert_eq!(reply.status, 200);
        reply.json()
    }

    /// Signs `user` in through the API with [`PASSWORD`]; the session.
    pub fn sign_in(&self, user: &str) -> String {
        let answer = self.api(
            "Signin",
            &format!("login={user}&password={}", PASSWORD.replace(' ', "+")),
        );
        assert_eq!(answer["result"], 0, "{answer}");
        answer["session"].as_str().expect("session").to_string()
    }
}

// ---- Helpers for allowed networks and grace windows. ----

impl Admin {
    /// The latest stored document — the highest version and, at that version, the delta
    /// rather than a compaction of it — opened with `key` as an edge opens it.
    pub fn latest_document(&self, key: &str) -> pat_core::snapshot::Document {
        let bytes: Vec<u8> = self
            .db()
            .query_row(
                "SELECT bytes FROM snapshots ORDER BY version DESC, kind = 'delta' DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .expect("a stored document");
        pat_core::snapshot::open::open(bytes, &trusted(key)).expect("a document edges accept")
    }

    /// The state an edge that holds nothing reaches from the stored documents (the latest
    /// full snapshot and the deltas after it).
    pub fn served(&self, key: &str) -> Served {
        Served::from_bundle(self.stored_bundle(), key)
    }

    /// The token state serial (how many token changes were committed).
    pub fn state_serial(&self) -> i64 {
        self.db()
            .query_row(
                "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'state_serial'), 0)",
                [],
                |r| r.get(0),
            )
            .expect("serial")
    }
}

/// The `{"error", "exit_code"}` line a failed `--json` command wrote on stderr, checked to
/// carry `code`; its message.
pub fn json_failure(run: &Run, code: i32) -> String {
    let stderr = run.fails(code);
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("\"error\""))
        .unwrap_or_else(|| panic!("no JSON error on stderr: {stderr}"));
    let error: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
    assert_eq!(error["exit_code"], code, "{line}");
    error["error"].as_str().expect("error text").to_string()
}

/// Percent-encodes a query parameter value.
pub fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
