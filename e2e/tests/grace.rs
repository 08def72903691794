//! Regeneration with a grace window, through the real Envoy: after `regenerate --grace 5s`
//! both values work at once; the old one is denied once the window has ended (the edge
//! enforces the old record's own end time as it enforces expiry: within one refresh tick);
//! `remove` and a later `regenerate` end a window early; the token API's
//! `RegenerateToken` with `grace` does the same, and `GetTokens` says until when.

use std::time::Duration;

use pat_e2e::{Answer, Client, PASSWORD, Stack, unix_now, within};
use serde_json::Value;

const STOPENV: &str = "/1.0/environment/control/rest/stopenv?envName=x";
/// Fresh connections per check, so both workers answer.
const PROBES: usize = 12;

fn call(stack: &Stack, token: &str) -> Answer {
    Client::new().get(&stack.url(&format!("{STOPENV}&session={token}")), &[])
}

/// Every probe of `token` is allowed (`true`) or denied with 701.
fn all(stack: &Stack, token: &str, works: bool) -> bool {
    (0..PROBES).all(|_| {
        let answer = call(stack, token);
        if works {
            answer.is_ok()
        } else {
            answer.denied_with(701)
        }
    })
}

/// Within a second (a pushed change reaches every worker within a refresh tick of the
/// push's answer), every probe of `token` is allowed (`true`) or denied with 701.
fn soon(stack: &Stack, token: &str, works: bool) -> bool {
    within(Duration::from_secs(1), || all(stack, token, works)).is_some()
}

fn confirmed(stack: &Stack, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--password-stdin");
    stack.admin_ok(&all, &format!("{PASSWORD}\n"))
}

/// When token `id`'s previous value stops working, as stored (Unix seconds).
fn old_until(stack: &Stack, id: i64) -> u64 {
    let until: i64 = stack
        .db()
        .query_row("SELECT old_until FROM tokens WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .expect("a window");
    u64::try_from(until).expect("after 1970")
}

#[test]
fn both_values_work_for_five_seconds_then_only_the_new_one() {
    let stack = Stack::start();
    let (id, old) = stack.token(&["--api", "ide-plugins"]);
    assert!(soon(&stack, &old, true));
    let reply = confirmed(
        &stack,
        &[
            "--json",
            "regenerate",
            "--user",
            "alice",
            &id.to_string(),
            "--grace",
            "5s",
        ],
    );
    assert_eq!(reply["publish"]["state"], "published", "{reply}");
    let new = reply["token"].as_str().expect("value").to_string();
    assert!(reply["old_value_expires_at"].is_string(), "{reply}");
    let end = old_until(&stack, id);
    // Both at once, on every worker.
    assert!(
        unix_now() < end,
        "the command took the whole window: {reply}"
    );
    assert!(soon(&stack, &new, true), "the new value works at once");
    assert!(soon(&stack, &old, true), "and the old one still does");
    let listed = stack.admin_ok(&["--json", "list", "--user", "alice"], "");
    assert_eq!(
        listed[0]["old_value_expires_at"],
        reply["old_value_expires_at"]
    );
    // The old value works until the window's end...
    while unix_now() + 1 < end {
        assert!(call(&stack, &old).is_ok(), "before the end");
        std::thread::sleep(Duration::from_millis(200));
    }
    // ...and is denied from then on: from `end`, give or take one refresh tick (20 ms).
    while unix_now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = within(Duration::from_millis(1000), || all(&stack, &old, false))
        .expect("the old value is denied once its window ended");
    let denied = call(&stack, &old);
    assert!(
        denied.json["error"]
            .as_str()
            .is_some_and(|e| e.contains("expired") || e.contains("not valid")),
        "{denied:?}"
    );
    assert!(soon(&stack, &new, true), "the new value goes on");
    println!("old value denied {took:?} after the window's end second began");
    // pat-admin agrees, and the next document drops the old hash.
    let shown = stack.admin_ok(&["--json", "show", "--user", "alice", &id.to_string()], "");
    assert!(shown["old_value_expires_at"].is_null(), "{shown}");
    stack.admin_ok(&["publish"], "");
    assert!(soon(&stack, &old, false));
    assert!(soon(&stack, &new, true));
}

#[test]
fn remove_and_a_later_regeneration_end_the_window_early() {
    let stack = Stack::start();
    let (id, first) = stack.token(&["--api", "ide-plugins"]);
    let id = id.to_string();
    let regenerate = |grace: Option<&str>| {
        let mut args = vec!["--json", "regenerate", "--user", "alice", &id];
        if let Some(g) = grace {
            args.extend(["--grace", g]);
        }
        let reply = confirmed(&stack, &args);
        reply["token"].as_str().expect("value").to_string()
    };
    let second = regenerate(Some("1h"));
    assert!(soon(&stack, &first, true) && soon(&stack, &second, true));
    // Regenerated again without a window: the first value dies now, an hour early.
    let third = regenerate(None);
    assert!(soon(&stack, &first, false), "the window ended at once");
    assert!(soon(&stack, &second, false), "no window this time");
    assert!(soon(&stack, &third, true));
    // In a window again, then removed: both die at once.
    let fourth = regenerate(Some("1h"));
    assert!(soon(&stack, &third, true) && soon(&stack, &fourth, true));
    confirmed(&stack, &["remove", "--user", "alice", &id]);
    assert!(soon(&stack, &third, false), "remove ends the window");
    assert!(soon(&stack, &fourth, false));
}

#[test]
fn the_token_api_regenerates_with_a_grace_and_delete_ends_it() {
    let stack = Stack::start();
    let signin = Client::new().post(
        &stack.api_url("Signin", ""),
        "application/x-www-form-urlencoded",
        format!("login=alice&password={}", PASSWORD.replace(' ', "+")).into_bytes(),
    );
    let s = signin.json["session"]
        .as_str()
        .expect("session")
        .to_string();
    let password = PASSWORD.replace(' ', "+");
    let (id, old) = stack.token(&["--api", "ide-plugins"]);
    let post = |method: &str, body: String| {
        Client::new()
            .post(
                &stack.api_url(method, ""),
                "application/x-www-form-urlencoded",
                body.into_bytes(),
            )
            .json
    };
    let answer = post(
        "RegenerateToken",
        format!("session={s}&password={password}&ids={id}&grace=3600"),
    );
    assert_eq!(answer["result"], 0, "{answer}");
    assert_eq!(answer["publish"]["state"], "published", "{answer}");
    let new = answer["token"]["key"].as_str().expect("key").to_string();
    let until = answer["token"]["oldKeyExpiresAt"]
        .as_str()
        .expect("until when")
        .to_string();
    assert!(soon(&stack, &new, true) && soon(&stack, &old, true));
    let listed = post("GetTokens", format!("session={s}"));
    assert_eq!(listed["apiTokens"][0]["oldKeyExpiresAt"], until.as_str());
    // Beyond the maximum (7 days by default): refused, nothing changed.
    let refused = post(
        "RegenerateToken",
        format!("session={s}&password={password}&id={id}&grace=700000"),
    );
    assert_eq!(refused["result"], 712, "{refused}");
    assert!(soon(&stack, &old, true));
    let deleted = post(
        "DeleteTokens",
        format!("session={s}&password={password}&ids={id}"),
    );
    assert_eq!(deleted["result"], 0, "{deleted}");
    assert!(soon(&stack, &old, false) && soon(&stack, &new, false));
}
