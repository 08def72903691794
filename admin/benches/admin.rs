//! pat-admin's costs, measured in one run.
//!
//! Run: `cargo bench -p pat-admin --bench admin`. Prints:
//! - building and signing a snapshot of 1,000,000 tokens from the store (100,000 accounts,
//!   four scopes): median time of 3 builds, and its size;
//! - `generate` end to end (the real binary, a fresh process each time) next to the
//!   argon2id verification it contains, and the difference: what generate costs apart from
//!   the password KDF. That includes building and signing the change's delta: every token
//!   change signs one in its own transaction (`--no-publish` only skips the push).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pat_admin::password;
use pat_admin::snapshot;
use pat_admin::store::{Store, keys, tokens, users};
use pat_core::keys::SigningKey;
use pat_core::token::TokenHash;

/// The current time, Unix seconds (the system clock, as pat-admin reads it).
fn now() -> u64 {
    pat_admin::clock::Clock::system().now()
}

const TOKENS: usize = 1_000_000;
const PASSWORD: &str = "benchmark password";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let store_dir = dir.path().join("store");
    let mut store = Store::open(&store_dir).expect("store");

    // A signing key, as `key generate` makes it.
    let secret = SigningKey::generate().expect("rng");
    let keys_dir = store_dir.join(pat_admin::store::KEYS_DIR);
    std::fs::create_dir_all(&keys_dir).expect("keys dir");
    std::fs::write(
        keys_dir.join("bench.key"),
        secret.to_secret_text().as_bytes(),
    )
    .expect("key file");
    let public = secret.public_key();
    store
        .write(|tx| {
            keys::add(
                tx,
                &keys::Key {
                    id: public.id().to_string(),
                    public_key: public.to_string(),
                    file: "keys/bench.key".into(),
                    sealed: None,
                    created_at: now(),
                    active: true,
                },
            )
        })
        .expect("key row");

    // 1,000,000 tokens for 100,000 accounts, inserted directly (hashing 100,000 passwords
    // would only measure argon2).
    let started = Instant::now();
    let hash = password::hash(PASSWORD).expect("hash");
    let scopes = [
        ("environment.control.getenvs", None),
        (
            "environment.control.startenv environment.control.stopenv",
            None,
        ),
        (
            "environment.deployment.deployarchive storage.uploader.upload",
            Some("maven-plugin"),
        ),
        ("marketplace.app.getlist", None),
    ];
    store
        .write(|tx| {
            for u in 0..TOKENS / 10 {
                users::add(tx, &format!("user{u}@example.com"), &hash, now())?;
            }
            for i in 0..TOKENS {
                let (methods, set) = scopes[i % scopes.len()];
                tokens::insert(
                    tx,
                    &tokens::Token {
                        id: 0,
                        user: format!("user{}@example.com", i / 10),
                        description: format!("token {i}"),
                        hash: TokenHash::of(&format!("bench-{i}")),
                        scope_set: set.map(str::to_string),
                        methods: methods.split(' ').map(str::to_string).collect(),
                        created_at: now(),
                        expires_at: (i % 3 == 0).then_some(now() + 86_400 * 30),
                        regenerated_at: None,
                        last_used_at: None,
                        last_used_ip: None,
                        networks: Vec::new(),
                        old_value: None,
                        suspended: false,
                        envs: None,
                        rate_limit: None,
                    },
                )?;
            }
            Ok(())
        })
        .expect("seed");
    println!(
        "seeded {TOKENS} tokens in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut builds = Vec::new();
    let mut size = 0;
    for _ in 0..3 {
        let started = Instant::now();
        let published = snapshot::build(&mut store).expect("build");
        builds.push(started.elapsed());
        size = published.bytes.len();
    }
    println!(
        "build and sign a {TOKENS}-token snapshot: median {:.0} ms of 3; {size} bytes ({:.1} bytes per token)",
        median(builds).as_secs_f64() * 1e3,
        size as f64 / TOKENS as f64
    );

    // generate, end to end, on a store with an account (and the million tokens above).
    users::add(store.conn(), "alice", &hash, now()).expect("alice");
    let mut generates = Vec::new();
    let mut kdfs = Vec::new();
    for i in 0..9 {
        let started = Instant::now();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pat-admin"))
            .env_remove("PAT_ADMIN_STORE")
            .args([
                "--store",
                store_dir.to_str().expect("utf-8"),
                "generate",
                "--user",
                "alice",
            ])
            .args([
                "--description",
                &format!("bench {i}"),
                "--api",
                "ide-plugins",
                "--password-stdin",
                "--no-publish",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .expect("write");
        assert!(child.wait().expect("wait").success());
        generates.push(started.elapsed());

        let started = Instant::now();
        assert!(password::verify(PASSWORD, &hash));
        kdfs.push(started.elapsed());
    }
    let (g, k) = (median(generates), median(kdfs));
    println!(
        "generate (new process, 1,000,001-token store, snapshot signed in its transaction): median {:.0} ms; argon2id verify {:.0} ms; apart from the KDF {:.0} ms ({:.0}% of generate is the KDF)",
        g.as_secs_f64() * 1e3,
        k.as_secs_f64() * 1e3,
        (g.saturating_sub(k)).as_secs_f64() * 1e3,
        k.as_secs_f64() / g.as_secs_f64() * 100.0
    );
}
