//! `regenerate --grace` (and `RegenerateToken`'s `grace`): the new value at once, the old
//! one kept as a second record of the same token until the window ends (or the token's own
//! expiry, if sooner), bounded by `config set max-grace` (default 7 days); `list`, `show`,
//! `lookup` and `GetTokens` say until when; `edit` keeps it; `remove` and a later
//! `regenerate` end it at once (the next delta removes the old hash); once the window has
//! passed the old hash leaves the next document; the audit log names both values by their
//! public ids, never a value.

mod support;

use pat_core::snapshot::Document;
use pat_core::token::TokenHash;
use serde_json::{Value, json};
use support::*;

const STOPENV: &str = "environment.Control.StopEnv";

fn setup() -> (Admin, String) {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    (admin, key)
}

fn now() -> u64 {
    now_ms() / 1000
}

/// An RFC 3339 time (`2026-12-02T10:00:00Z`) as Unix seconds.
fn unix(text: &str) -> u64 {
    let t = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    u64::try_from(t.unix_timestamp()).expect("after 1970")
}

/// `regenerate --json` with `extra`; (new value, the JSON).
fn regenerate(admin: &Admin, id: i64, extra: &[&str]) -> (String, Value) {
    let mut args = vec!["--json", "regenerate", "--user", "alice"];
    let id = id.to_string();
    args.push(&id);
    args.extend_from_slice(extra);
    let run = admin.confirmed(&args);
    run.ok();
    let json = run.json();
    (json["token"].as_str().expect("value").to_string(), json)
}

fn show(admin: &Admin, id: i64) -> Value {
    let run = admin.run(&["--json", "show", "--user", "alice", &id.to_string()]);
    run.ok();
    run.json()
}

/// The public id the audit log gives a value.
fn value_id(value: &str) -> String {
    let hash = TokenHash::of(value);
    let hex: String = hash.0[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The latest delta's added and removed hash prefixes.
fn latest_delta(admin: &Admin, key: &str) -> (Vec<[u8; 16]>, Vec<[u8; 16]>) {
    let Document::Delta(delta) = admin.latest_document(key) else {
        panic!("the latest document is a delta");
    };
    (
        delta.entries().map(|(p, _)| p).collect(),
        delta.removed().collect(),
    )
}

fn prefix(value: &str) -> [u8; 16] {
    TokenHash::of(value).prefix()
}

#[test]
fn both_values_work_until_the_window_ends_and_every_view_says_until_when() {
    let (admin, key) = setup();
    let (id, old) = admin.token("alice", &["--method", STOPENV]);
    let before = now();
    let (new, reply) = regenerate(&admin, id, &["--grace", "1h"]);
    let after = now();
    let until = reply["old_value_expires_at"].as_str().expect("an end");
    let end = unix(until);
    assert!(
        (before + 3600..=after + 3600).contains(&end),
        "{until}: an hour from now"
    );
    assert_eq!(show(&admin, id)["old_value_expires_at"], until);
    assert_eq!(admin.tokens("alice")[0]["old_value_expires_at"], until);
    let human = admin
        .run(&["show", "--user", "alice", &id.to_string()])
        .ok()
        .to_string();
    assert!(human.contains(&format!("works until {until}")), "{human}");
    let list = admin.run(&["list", "--user", "alice"]).ok().to_string();
    assert!(
        list.contains(&format!("active; old value until {until}")),
        "{list}"
    );

    // The edge: two records of token `id`, the old one ending with the window.
    let served = admin.served(&key);
    let (n, o) = (
        served.find(&TokenHash::of(&new)).expect("the new value"),
        served.find(&TokenHash::of(&old)).expect("the old value"),
    );
    assert_eq!((n.id(), o.id()), (id as u64, id as u64));
    assert_eq!(n.expires_at(), None, "the token has no expiry");
    assert_eq!(o.expires_at(), Some(end));
    assert_eq!(served.token_count(), 2);
    // The delta of the regeneration: both records, nothing removed.
    let (mut added, removed) = latest_delta(&admin, &key);
    added.sort_unstable();
    let mut want = vec![prefix(&new), prefix(&old)];
    want.sort_unstable();
    assert_eq!((added, removed), (want, vec![]));

    // The audit log names both values, never one.
    let audit = admin.audit();
    let entry = audit
        .iter()
        .find(|e| e["action"] == "token.regenerate")
        .expect("audited");
    let detail = entry["detail"].as_str().expect("detail");
    assert!(
        detail.starts_with(&format!(
            "value {} replaced by {}; the old value works until {until}",
            value_id(&old),
            value_id(&new)
        )),
        "{detail}"
    );
    let log = serde_json::to_string(&audit).expect("json");
    assert!(
        !log.contains(&old) && !log.contains(&new),
        "no value in the log"
    );

    // lookup: the old value is this token's, and says until when.
    let run = admin.run_with(&["--json", "lookup"], &format!("{old}\n"));
    run.ok();
    let found = &run.json()[0];
    assert_eq!(
        (
            &found["id"],
            &found["old_value"],
            &found["old_value_expires_at"]
        ),
        (&json!(id), &json!(true), &json!(until))
    );
    let run = admin.run_with(&["--json", "lookup"], &format!("{new}\n"));
    assert_eq!(run.json()[0]["old_value"], false);
}

#[test]
fn the_window_ends_with_the_tokens_own_expiry_if_that_is_sooner() {
    let (admin, key) = setup();
    let day = date_in(1);
    let (id, old) = admin.token("alice", &["--method", STOPENV, "--expires-at", &day]);
    let (_, reply) = regenerate(&admin, id, &["--grace", "7d"]);
    assert_eq!(
        reply["old_value_expires_at"], reply["expires_at"],
        "{reply}"
    );
    let end = unix(reply["expires_at"].as_str().expect("expiry"));
    let served = admin.served(&key);
    assert_eq!(
        served.find(&TokenHash::of(&old)).expect("old").expires_at(),
        Some(end)
    );
}

#[test]
fn the_maximum_is_a_setting_and_bad_durations_are_refused() {
    let (admin, _) = setup();
    let (id, _) = admin.token("alice", &["--method", STOPENV]);
    let id_text = id.to_string();
    let serial = admin.state_serial();
    let try_grace = |grace: &str| {
        admin.confirmed(&[
            "--json",
            "regenerate",
            "--user",
            "alice",
            &id_text,
            "--grace",
            grace,
        ])
    };
    // Default: at most 7 days.
    let message = json_failure(&try_grace("8d"), 5);
    assert!(
        message.contains("--grace: 8d is longer than the longest grace window allowed, 7d")
            && message.contains("config set max-grace"),
        "{message}"
    );
    for bad in ["5", "1w", "h1", "1.5h"] {
        let message = json_failure(&try_grace(bad), 2);
        assert!(message.starts_with("--grace: "), "{message}");
        assert!(message.contains("is not a duration"), "{message}");
    }
    // A shorter maximum, then none at all; outside 0s..30d is refused.
    admin.run(&["config", "set", "max-grace", "1h"]).ok();
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["max_grace_secs"],
        3600
    );
    let message = json_failure(&try_grace("2h"), 5);
    assert!(
        message.contains("longest grace window allowed, 1h"),
        "{message}"
    );
    admin.run(&["config", "set", "max-grace", "0s"]).ok();
    let message = json_failure(&try_grace("1m"), 5);
    assert!(
        message.contains("grace windows are turned off"),
        "{message}"
    );
    let err = admin
        .run(&["config", "set", "max-grace", "31d"])
        .fails(2)
        .to_string();
    assert!(err.contains("outside the allowed range"), "{err}");
    assert_eq!(admin.state_serial(), serial, "nothing changed");
    assert!(show(&admin, id)["old_value_expires_at"].is_null());
    // `--grace 0s` is no window.
    let (_, reply) = regenerate(&admin, id, &["--grace", "0s"]);
    assert!(reply["old_value_expires_at"].is_null());
    assert!(
        admin
            .audit()
            .iter()
            .any(|e| e["action"] == "config.set" && e["detail"] == "max-grace = 1h"),
        "audited"
    );
}

#[test]
fn edit_keeps_the_window_and_changes_both_records() {
    let (admin, key) = setup();
    let (id, old) = admin.token("alice", &["--method", STOPENV]);
    let (new, reply) = regenerate(&admin, id, &["--grace", "1h"]);
    admin
        .confirmed(&[
            "edit",
            "--user",
            "alice",
            &id.to_string(),
            "--allow-ip",
            "127.0.0.2",
        ])
        .ok();
    assert_eq!(
        show(&admin, id)["old_value_expires_at"],
        reply["old_value_expires_at"]
    );
    let Document::Delta(delta) = admin.latest_document(&key) else {
        panic!("a delta");
    };
    let mut records: Vec<([u8; 16], Vec<String>)> = delta
        .entries()
        .map(|(p, e)| (p, e.networks.iter().map(|n| n.to_string()).collect()))
        .collect();
    records.sort();
    let mut want = vec![
        (prefix(&new), vec!["127.0.0.2/32".to_string()]),
        (prefix(&old), vec!["127.0.0.2/32".to_string()]),
    ];
    want.sort();
    assert_eq!(records, want, "both values get the new list");
    assert_eq!(delta.removed().count(), 0);
}

#[test]
fn remove_ends_the_window_at_once() {
    let (admin, key) = setup();
    let (id, old) = admin.token("alice", &["--method", STOPENV]);
    let (new, reply) = regenerate(&admin, id, &["--grace", "1h"]);
    let until = reply["old_value_expires_at"]
        .as_str()
        .expect("end")
        .to_string();
    admin
        .confirmed(&["remove", "--user", "alice", &id.to_string()])
        .ok();
    let (added, mut removed) = latest_delta(&admin, &key);
    removed.sort_unstable();
    let mut want = vec![prefix(&new), prefix(&old)];
    want.sort_unstable();
    assert_eq!((added, removed), (vec![], want));
    let served = admin.served(&key);
    assert_eq!(served.token_count(), 0);
    let entry = admin
        .audit()
        .into_iter()
        .find(|e| e["action"] == "token.remove")
        .expect("audited");
    assert_eq!(
        entry["detail"],
        format!(
            "removed; its old value {} (until {until}) stops working with it",
            value_id(&old)
        )
    );
    // The old value is no token any more.
    admin.run_with(&["lookup"], &format!("{old}\n")).fails(4);
}

#[test]
fn a_later_regeneration_ends_the_earlier_window() {
    let (admin, key) = setup();
    let (id, first) = admin.token("alice", &["--method", STOPENV]);
    let (second, _) = regenerate(&admin, id, &["--grace", "1h"]);
    // Again with a window: the second value is the old one now; the first dies.
    let (third, reply) = regenerate(&admin, id, &["--grace", "30m"]);
    let (mut added, removed) = latest_delta(&admin, &key);
    added.sort_unstable();
    let mut want = vec![prefix(&second), prefix(&third)];
    want.sort_unstable();
    assert_eq!((added, removed), (want, vec![prefix(&first)]));
    let until = reply["old_value_expires_at"].as_str().expect("end");
    let served = admin.served(&key);
    assert!(served.find(&TokenHash::of(&first)).is_none());
    assert_eq!(
        served
            .find(&TokenHash::of(&second))
            .expect("second")
            .expires_at(),
        Some(unix(until))
    );
    let detail = admin
        .audit()
        .into_iter()
        .find(|e| e["action"] == "token.regenerate")
        .expect("audited")["detail"]
        .as_str()
        .expect("detail")
        .to_string();
    assert!(
        detail.contains(&format!(
            "the earlier old value {} (until ",
            value_id(&first)
        )) && detail.contains(") stops working now"),
        "{detail}"
    );
    // And without a window: both earlier values die at once.
    let (fourth, reply) = regenerate(&admin, id, &[]);
    assert!(reply["old_value_expires_at"].is_null());
    let (added, mut removed) = latest_delta(&admin, &key);
    removed.sort_unstable();
    let mut want = vec![prefix(&second), prefix(&third)];
    want.sort_unstable();
    assert_eq!((added, removed), (vec![prefix(&fourth)], want));
    assert_eq!(admin.served(&key).token_count(), 1);
}

#[test]
fn once_the_window_has_passed_the_old_hash_leaves_the_next_document() {
    let (admin, key) = setup();
    let (id, old) = admin.token("alice", &["--method", STOPENV]);
    let (new, reply) = regenerate(&admin, id, &["--grace", "1h"]);
    let end = unix(reply["old_value_expires_at"].as_str().expect("end"));
    assert!(admin.served(&key).find(&TokenHash::of(&old)).is_some());
    // Time passes by the test clock: moments before the end the window is still open...
    admin.advance_to(end - 5);
    assert_eq!(
        show(&admin, id)["old_value_expires_at"],
        reply["old_value_expires_at"]
    );
    // ...and then it has passed.
    admin.advance_to(end + 1);
    assert!(show(&admin, id)["old_value_expires_at"].is_null());
    let list = admin.run(&["list", "--user", "alice"]).ok().to_string();
    assert!(!list.contains("old value"), "{list}");
    // publish signs anew (a record expired) and the delta removes the old hash.
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    let (added, removed) = latest_delta(&admin, &key);
    assert_eq!((added, removed), (vec![], vec![prefix(&old)]));
    let served = admin.served(&key);
    assert!(served.find(&TokenHash::of(&old)).is_none());
    assert!(served.find(&TokenHash::of(&new)).is_some());
    // A new chain does not bring it back either.
    let key = admin.key();
    admin.run(&["publish"]).ok();
    let Document::Full(full) = admin.latest_document(&key) else {
        panic!("a full snapshot");
    };
    assert_eq!(full.token_count(), 1);
    assert!(full.find(&TokenHash::of(&old)).is_none());
    // lookup no longer finds a value that works nowhere.
    admin.run_with(&["lookup"], &format!("{old}\n")).fails(4);
}

#[test]
fn a_full_snapshot_carries_the_old_value_with_its_end() {
    let (admin, _) = setup();
    let (id, old) = admin.token("alice", &["--method", STOPENV]);
    let (new, reply) = regenerate(&admin, id, &["--grace", "1d"]);
    let end = unix(reply["old_value_expires_at"].as_str().expect("end"));
    let key = admin.key();
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    assert_eq!(
        (run.json()["kind"].clone(), run.json()["tokens"].clone()),
        (json!("full"), json!(2))
    );
    let Document::Full(full) = admin.latest_document(&key) else {
        panic!("a full snapshot");
    };
    let o = full.find(&TokenHash::of(&old)).expect("old");
    let n = full.find(&TokenHash::of(&new)).expect("new");
    assert_eq!((o.id, n.id), (id as u64, id as u64));
    assert_eq!((o.expires_at, n.expires_at), (Some(end), None));
}

#[test]
fn revoke_leaked_with_an_old_value_removes_its_token() {
    let (admin, key) = setup();
    let (id, old) = admin.token("alice", &["--method", STOPENV]);
    let (new, _) = regenerate(&admin, id, &["--grace", "1h"]);
    let run = admin.run_with(
        &["--json", "revoke-leaked", "--reason", "scanner"],
        &format!("{old}\n"),
    );
    run.ok();
    assert_eq!(run.json()["revoked"][0]["id"], id);
    let served = admin.served(&key);
    assert!(served.find(&TokenHash::of(&old)).is_none());
    assert!(served.find(&TokenHash::of(&new)).is_none());
}

#[test]
fn revoke_leaked_names_the_old_value_that_stops_working_like_a_removal() {
    let (admin, _key) = setup();
    let (id, old) = admin.token("alice", &["--method", STOPENV]);
    let (new, reply) = regenerate(&admin, id, &["--grace", "1h"]);
    let until = reply["old_value_expires_at"]
        .as_str()
        .expect("end")
        .to_string();
    admin
        .run_with(
            &["revoke-leaked", "--reason", "scanner"],
            &format!("{new}\n"),
        )
        .ok();
    let entry = admin
        .audit()
        .into_iter()
        .find(|e| e["action"] == "token.revoke-leaked")
        .expect("audited");
    assert_eq!(
        entry["detail"],
        format!(
            "leaked value {}; reason: scanner; its old value {} (until {until}) stops working with it",
            pat_core::token::mask(&new),
            value_id(&old)
        )
    );
    assert_eq!(entry["token_id"], id);
}

#[test]
fn the_api_takes_a_grace_in_seconds_and_get_tokens_says_until_when() {
    let (admin, key) = setup();
    let server = admin.serve_api();
    let s = server.sign_in("alice");
    let p = enc(PASSWORD);
    let created = server.api(
        "CreateToken",
        &format!("session={s}&password={p}&description=ci&apiList={STOPENV}"),
    );
    let id = created["token"]["id"].as_i64().expect("id");
    let old = created["token"]["key"].as_str().expect("key").to_string();
    let serial = admin.state_serial();
    for (grace, code, words) in [
        ("1h", 711, "`1h` is not a whole number of seconds"),
        ("-5", 711, "`-5` is not a whole number of seconds"),
        (
            "691200",
            712,
            "longer than the longest grace window allowed, 7d",
        ),
    ] {
        let answer = server.api(
            "RegenerateToken",
            &format!("session={s}&password={p}&id={id}&grace={}", enc(grace)),
        );
        assert_eq!(
            (&answer["result"], &answer["source"]),
            (&json!(code), &json!("pat-admin")),
            "{answer}"
        );
        let error = answer["error"].as_str().expect("error");
        assert!(error.contains(words), "{words} in {error}");
        assert!(!error.contains("config set"), "no operator hint: {error}");
    }
    assert_eq!(admin.state_serial(), serial, "nothing changed");

    let before = now();
    // py-jelastic sends the id as `ids`.
    let answer = server.api(
        "RegenerateToken",
        &format!("session={s}&password={p}&ids={id}&grace=600"),
    );
    assert_eq!(answer["result"], 0, "{answer}");
    let token = &answer["token"];
    let new = token["key"].as_str().expect("key").to_string();
    let until = token["oldKeyExpiresAt"]
        .as_str()
        .expect("an end")
        .to_string();
    let end = time::PrimitiveDateTime::parse(
        &until,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .expect("yyyy-MM-dd HH:mm:ss")
    .assume_utc()
    .unix_timestamp() as u64;
    assert!((before + 600..=now() + 600).contains(&end), "{until}");
    let listed = server.api("GetTokens", &format!("session={s}"));
    assert_eq!(listed["apiTokens"][0]["oldKeyExpiresAt"], until);
    assert!(listed["apiTokens"][0].get("key").is_none());
    let served = admin.served(&key);
    assert_eq!(
        served.find(&TokenHash::of(&old)).expect("old").expires_at(),
        Some(end)
    );
    assert!(served.find(&TokenHash::of(&new)).is_some());
    // grace=0 (or none): the old value stops at once, and so does the earlier one.
    let answer = server.api(
        "RegenerateToken",
        &format!("session={s}&password={p}&id={id}&grace=0"),
    );
    assert_eq!(answer["token"]["oldKeyExpiresAt"], Value::Null, "{answer}");
    let served = admin.served(&key);
    assert!(served.find(&TokenHash::of(&old)).is_none());
    assert!(served.find(&TokenHash::of(&new)).is_none());
    assert_eq!(served.token_count(), 1);
    // The audit entry of an API regeneration has both ids too.
    let entry = admin
        .audit()
        .into_iter()
        .find(|e| e["action"] == "token.regenerate")
        .expect("audited");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&format!("value {} replaced by", value_id(&new))),
        "{entry}"
    );
    assert!(
        entry["actor"]
            .as_str()
            .unwrap_or_default()
            .starts_with("api ")
    );
}

#[test]
fn a_compaction_keeps_the_old_value_and_the_networks() {
    let (admin, key) = setup();
    let (id, old) = admin.token("alice", &["--method", STOPENV, "--allow-ip", "127.0.0.2"]);
    let (new, reply) = regenerate(&admin, id, &["--grace", "1h"]);
    let end = unix(reply["old_value_expires_at"].as_str().expect("end"));
    // The full snapshot of the chain is a quarter of its lifetime old: publish compacts.
    admin
        .db()
        .execute(
            "UPDATE snapshots SET issued_at = issued_at - 7 * 3600 WHERE kind = 'full'",
            [],
        )
        .expect("age it");
    let run = admin.run(&["publish"]);
    run.ok();
    assert!(
        admin
            .audit()
            .iter()
            .any(|e| e["action"] == "snapshot.compact"),
        "compacted: {}",
        run.stderr
    );
    let served = admin.served(&key);
    assert_eq!(served.documents.len(), 1, "the compaction alone");
    assert_eq!(served.documents[0].1, pat_core::snapshot::Kind::Full);
    let (o, n) = (
        served.find(&TokenHash::of(&old)).expect("old"),
        served.find(&TokenHash::of(&new)).expect("new"),
    );
    assert_eq!((o.id(), n.id()), (id as u64, id as u64));
    assert_eq!((o.expires_at(), n.expires_at()), (Some(end), None));
    for t in [o, n] {
        assert!(t.allows_address("127.0.0.2".parse().expect("ip")));
        assert!(!t.allows_address("127.0.0.1".parse().expect("ip")));
    }
}
