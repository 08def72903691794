//! Running the real `pat-admin` binary against a temporary store.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use tempfile::TempDir;

/// The password every test account uses.
pub const PASSWORD: &str = "correct horse battery";

/// A temporary store and a way to run pat-admin on it.
pub struct Admin {
    pub dir: TempDir,
}

/// What a run produced.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
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
        }
    }

    /// The store directory.
    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// A command for the binary, on this store, with no inherited store variable.
    pub fn command(&self) -> Command {
        let mut cmd = Command::cargo_bin("pat-admin").expect("binary built");
        cmd.env_remove("PAT_ADMIN_STORE")
            .arg("--store")
            .arg(self.store());
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
        use std::io::Write;
        use std::process::Stdio;
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("pat-admin"))
            .env_remove("PAT_ADMIN_STORE")
            .envs(env.iter().copied())
            .arg("--store")
            .arg(self.store())
            .args(args)
            .arg("--password-stdin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
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

    /// The store's database, opened directly: for states the CLI refuses to create (an
    /// expired token) and for checking what is stored.
    pub fn db(&self) -> rusqlite::Connection {
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
                rusqlite::params![yesterday, id],
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

    /// Every file under the store directory with its bytes (database, WAL, keys...).
    pub fn store_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        fn walk(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
            for entry in std::fs::read_dir(dir).expect("read store dir") {
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
