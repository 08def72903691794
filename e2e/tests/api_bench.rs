//! A benchmark of the token API through the real Envoy, with publishing on (the stack's edge
//! is configured, so every change is signed in its transaction and pushed to the edge before
//! the API answers). Not part of the test run; run it with release binaries:
//!
//! ```sh
//! cargo build --release -p pat-admin -p platform-standin
//! PAT_E2E_BINARIES=release cargo test -p pat-e2e --test api_bench -- --ignored --nocapture
//! ```
//!
//! It prints medians: `CreateToken` end to end (a new connection through Envoy each time),
//! the argon2id verification every change contains (the password KDF, measured in this
//! process with the same parameters), and the difference; then sustained token changes per
//! second (`EditToken`, each with its password check, commit, signature and push) with one
//! and with four clients at once.

use std::time::{Duration, Instant};

use pat_e2e::{Client, PASSWORD, Stack};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[test]
#[ignore = "a benchmark: run it explicitly (see the module documentation)"]
fn api_latency_and_sustained_changes() {
    let stack = Stack::start();
    stack.admin_ok(&["config", "set", "max-tokens-per-account", "100000"], "");
    let client = Client::new();
    let p = PASSWORD.replace(' ', "+");
    let signin = client.get(
        &stack.api_url("Signin", &format!("login=alice&password={p}")),
        &[],
    );
    let session = signin.json["session"]
        .as_str()
        .expect("session")
        .to_string();

    // The KDF alone, as the service runs it.
    let hash = pat_admin::password::hash(PASSWORD).expect("hash");
    let kdf = median(
        (0..30)
            .map(|_| {
                let started = Instant::now();
                assert!(pat_admin::password::verify(PASSWORD, &hash));
                started.elapsed()
            })
            .collect(),
    );

    let create = |n: usize| {
        let started = Instant::now();
        let answer = client.get(
            &stack.api_url(
                "CreateToken",
                &format!(
                    "session={session}&password={p}&description=bench+{n}&tokenTemplate=ide-plugins"
                ),
            ),
            &[],
        );
        assert_eq!(answer.json["result"], 0, "{answer:?}");
        assert_eq!(answer.json["publish"]["state"], "published", "{answer:?}");
        (
            started.elapsed(),
            answer.json["token"]["id"].as_i64().expect("id"),
        )
    };
    for n in 0..5 {
        create(n); // warm up
    }
    let mut ids = Vec::new();
    let created = median(
        (0..40)
            .map(|n| {
                let (t, id) = create(n);
                ids.push(id);
                t
            })
            .collect(),
    );
    println!(
        "CreateToken through Envoy, published to the edge: median {}",
        ms(created)
    );
    println!(
        "  argon2id verification (the password KDF):       median {}",
        ms(kdf)
    );
    println!(
        "  CreateToken apart from the KDF:                 median {}",
        ms(created.saturating_sub(kdf))
    );

    for clients in [1usize, 4] {
        let window = Duration::from_secs(10);
        let started = Instant::now();
        let done: usize = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..clients)
                .map(|c| {
                    let (stack, session, p, id) = (&stack, &session, &p, ids[c]);
                    scope.spawn(move || {
                        let client = Client::new();
                        let mut n = 0usize;
                        while started.elapsed() < window {
                            let answer = client.get(
                                &stack.api_url(
                                    "EditToken",
                                    &format!("session={session}&password={p}&id={id}&description=edit+{c}+{n}"),
                                ),
                                &[],
                            );
                            assert_eq!(answer.json["result"], 0, "{answer:?}");
                            assert_eq!(answer.json["publish"]["state"], "published", "{answer:?}");
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("worker")).sum()
        });
        let secs = started.elapsed().as_secs_f64();
        println!(
            "sustained EditToken, {clients} client(s), each signed and pushed: {:.1} changes/s ({done} in {secs:.1} s)",
            done as f64 / secs
        );
    }
    let status = stack.edge_status();
    println!(
        "the edge holds version {} ({} tokens)",
        status["version"], status["tokens"]
    );
}
