//! Changes reach every worker fast: a revoked token is denied on every worker within 1 s of
//! the publish; a regenerated token's old value dies and the new one works.

use std::time::Duration;

use pat_e2e::{Client, PASSWORD, Stack, within};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
/// Fresh connections per check: with two workers, 24 connections all landing on one worker
/// is a 2^-23 chance.
const PROBES: usize = 24;

#[test]
fn a_revoked_token_is_denied_on_every_worker_within_a_second() {
    let stack = Stack::start();
    let (id, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let url = stack.url(&format!("{STOPENV}?session={token}"));
    // Both workers serve it (and so hold the snapshot).
    assert!((0..PROBES).all(|_| client.get(&url, &[]).is_ok()));

    // `remove` publishes by itself; it returns once the edge accepted.
    stack.admin_ok(
        &[
            "remove",
            "--user",
            "alice",
            &id.to_string(),
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let took = within(Duration::from_secs(1), || {
        (0..PROBES).all(|_| client.get(&url, &[]).denied_with(701))
    })
    .expect("denied on every worker within 1 s");
    println!("revocation effective on every worker after {took:?}");
}

#[test]
fn regenerating_kills_the_old_value_and_the_new_one_works() {
    let stack = Stack::start();
    let (id, old) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    assert!(
        client
            .get(&stack.url(&format!("{STOPENV}?session={old}")), &[])
            .is_ok()
    );

    let reply = stack.admin_ok(
        &[
            "--json",
            "regenerate",
            "--user",
            "alice",
            &id.to_string(),
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
    );
    let new = reply["token"].as_str().expect("new value").to_string();
    assert_ne!(new, old);
    within(Duration::from_secs(1), || {
        (0..PROBES).all(|_| {
            client
                .get(&stack.url(&format!("{STOPENV}?session={old}")), &[])
                .denied_with(701)
                && client
                    .get(&stack.url(&format!("{STOPENV}?session={new}")), &[])
                    .is_ok()
        })
    })
    .expect("old denied, new allowed, everywhere");
    let answer = client.get(&stack.url(&format!("{STOPENV}?session={new}")), &[]);
    assert_eq!(
        answer.json["token_id"],
        id.to_string(),
        "same token, new value"
    );
}
