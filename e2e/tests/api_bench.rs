//! A benchmark of the token API through the real Envoy, with publishing on (the stack's edge
//! is configured, so every change is signed in its transaction and pushed to the edge before
//! the API answers), in standalone mode and in platform mode side by side. Not part of the
//! test run; run it with release binaries:
//!
//! ```sh
//! cargo build --release -p pat-admin -p platform-standin
//! PAT_E2E_BINARIES=release cargo test -p pat-e2e --test api_bench -- --ignored --nocapture
//! ```
//!
//! For each mode it prints medians: `CreateToken` end to end (a new connection through Envoy
//! each time), and in standalone mode the argon2id verification every change contains (the
//! password KDF, measured in this process with the same parameters); then sustained token
//! changes per second (`EditToken`, each with its password check, commit, signature and
//! push) with one client, and with four clients of four accounts from four client addresses
//! (one password check at a time per account and per client address: four clients of one
//! account would mostly be refused). In platform mode a change's password is checked by the
//! platform (its `Signin`, then `Signout`: two calls), and a session by its `GetUserInfo`
//! (cached for `platform-session-cache`, 5 s by default); the stand-in plays the platform and
//! compares passwords without a KDF, so its figures are pat-edge's cost plus two loopback
//! round trips, not a real platform's own sign-in cost.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use pat_e2e::{Client, PASSWORD, PLATFORM_ACCOUNTS, PLATFORM_PASSWORD, Stack};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn enc(text: &str) -> String {
    text.replace('@', "%40").replace(' ', "+")
}

/// Signs `login` in through Envoy's Signin route (pat-admin's, or the platform's) from
/// `client`: the session.
fn sign_in(stack: &Stack, client: &Client, login: &str, password: &str) -> String {
    let signin = client.post(
        &stack.api_url("Signin", ""),
        "application/x-www-form-urlencoded",
        format!("login={}&password={}", enc(login), enc(password)).into_bytes(),
    );
    signin.json["session"]
        .as_str()
        .unwrap_or_else(|| panic!("signed in: {signin:?}"))
        .to_string()
}

struct Figures {
    create: Duration,
    one_client: f64,
    four_clients: f64,
    /// Changes whose push an edge did not accept (they stand, and the origin serves them).
    not_accepted: usize,
}

/// `accounts`: (login, password) of four accounts.
fn measure(stack: &Stack, accounts: &[(String, String)]) -> Figures {
    stack.admin_ok(&["config", "set", "max-tokens-per-account", "100000"], "");
    // Client addresses 127.0.0.2–5: one per account.
    let clients: Vec<Client> = (2..6)
        .map(|n| Client::from_address(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n))))
        .collect();
    let sessions: Vec<String> = accounts
        .iter()
        .zip(&clients)
        .map(|((login, password), client)| sign_in(stack, client, login, password))
        .collect();
    let create = |c: usize, n: usize| {
        let started = Instant::now();
        let answer = clients[c].get(
            &stack.api_url(
                "CreateToken",
                &format!(
                    "session={}&password={}&description=bench+{n}&tokenTemplate=ide-plugins",
                    sessions[c],
                    enc(&accounts[c].1)
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
        create(0, n); // warm up
    }
    let created = median((0..40).map(|n| create(0, n).0).collect());
    let ids: Vec<i64> = (0..4).map(|c| create(c, 100 + c).1).collect();
    let mut rates = Vec::new();
    for n_clients in [1usize, 4] {
        let window = Duration::from_secs(10);
        let started = Instant::now();
        let done: (usize, usize) = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..n_clients)
                .map(|c| {
                    let (client, session, password, id) =
                        (&clients[c], &sessions[c], &accounts[c].1, ids[c]);
                    scope.spawn(move || {
                        let (mut n, mut not_accepted) = (0usize, 0usize);
                        while started.elapsed() < window {
                            let answer = client.get(
                                &stack.api_url(
                                    "EditToken",
                                    &format!(
                                        "session={session}&password={}&id={id}&description=edit+{c}+{n}",
                                        enc(password)
                                    ),
                                ),
                                &[],
                            );
                            assert_eq!(answer.json["result"], 0, "{answer:?}");
                            if answer.json["publish"]["state"] != "published" {
                                not_accepted += 1;
                            }
                            n += 1;
                        }
                        (n, not_accepted)
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("worker"))
                .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
        });
        rates.push((done.0 as f64 / started.elapsed().as_secs_f64(), done.1));
    }
    Figures {
        create: created,
        one_client: rates[0].0,
        four_clients: rates[1].0,
        not_accepted: rates[0].1 + rates[1].1,
    }
}

#[test]
#[ignore = "a benchmark: run it explicitly (see the module documentation)"]
fn api_latency_and_sustained_changes_in_both_modes() {
    // Standalone: pat-admin's own accounts.
    let stack = Stack::start();
    let mut accounts = vec![("alice".to_string(), PASSWORD.to_string())];
    for name in ["bob", "carol", "dave"] {
        stack.admin_ok(
            &["user", "add", name, "--password-stdin"],
            &format!("{PASSWORD}\n"),
        );
        accounts.push((name.to_string(), PASSWORD.to_string()));
    }
    let standalone = measure(&stack, &accounts);
    drop(stack);

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

    // Platform mode: the platform's accounts (two of them from the stack, two more added).
    let stack = Stack::start_platform();
    for (uid, email) in [(1003, "carol%40example.com"), (1004, "dave%40example.com")] {
        stack.standin(&format!(
            "/_standin/account?uid={uid}&email={email}&password={}",
            PLATFORM_PASSWORD.replace(' ', "+")
        ));
    }
    let mut accounts: Vec<(String, String)> = PLATFORM_ACCOUNTS
        .iter()
        .map(|(_, email)| (email.to_string(), PLATFORM_PASSWORD.to_string()))
        .collect();
    accounts.push(("carol@example.com".into(), PLATFORM_PASSWORD.into()));
    accounts.push(("dave@example.com".into(), PLATFORM_PASSWORD.into()));
    let calls_before = stack.standin("/_standin/calls");
    let platform = measure(&stack, &accounts);
    let calls = stack.standin("/_standin/calls");

    println!(
        "| token API through Envoy, published to the edge | standalone | platform mode | difference |"
    );
    println!("| --- | ---: | ---: | ---: |");
    println!(
        "| CreateToken, median | {} | {} | {:+.1} ms |",
        ms(standalone.create),
        ms(platform.create),
        (platform.create.as_secs_f64() - standalone.create.as_secs_f64()) * 1000.0
    );
    println!(
        "| sustained EditToken, 1 client | {:.1}/s | {:.1}/s | {:+.0}% |",
        standalone.one_client,
        platform.one_client,
        (platform.one_client / standalone.one_client - 1.0) * 100.0
    );
    println!(
        "| sustained EditToken, 4 clients (4 accounts, 4 addresses) | {:.1}/s | {:.1}/s | {:+.0}% |",
        standalone.four_clients,
        platform.four_clients,
        (platform.four_clients / standalone.four_clients - 1.0) * 100.0
    );
    println!(
        "| changes an edge did not accept at once (they stand; the origin serves them) | {} | {} | |",
        standalone.not_accepted, platform.not_accepted
    );
    println!(
        "standalone: the argon2id verification in every change, median {}",
        ms(kdf)
    );
    println!(
        "platform mode: calls to the platform during the run: {}",
        ["Signin", "Signout", "GetUserInfo"]
            .iter()
            .map(|m| format!(
                "{m} {}",
                calls[m].as_u64().unwrap_or(0) - calls_before[m].as_u64().unwrap_or(0)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
}
