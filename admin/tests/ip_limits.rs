//! Per-token client networks (`--allow-ip`, `allowedIps`): checked and normalized before
//! anything changes (a bad entry is named, exit 2 / 711, nothing stored, no password
//! asked), shown by `list`, `show` and `GetTokens`, kept by `copy` and `regenerate`,
//! replaced or dropped by `edit` / `EditToken`, and carried by every document the store
//! signs: a full snapshot, and the delta of a change that touches only the list.

mod support;

use std::net::IpAddr;

use pat_core::snapshot::{Document, Kind};
use pat_core::token::TokenHash;
use serde_json::{Value, json};
use support::*;

const STOPENV: &str = "environment.Control.StopEnv";

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

fn setup() -> (Admin, String) {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    (admin, key)
}

fn generate(admin: &Admin, extra: &[&str]) -> (i64, String) {
    let mut args = vec!["--method", STOPENV];
    args.extend_from_slice(extra);
    admin.token("alice", &args)
}

fn show(admin: &Admin, id: i64) -> Value {
    let run = admin.run(&["--json", "show", "--user", "alice", &id.to_string()]);
    run.ok();
    run.json()
}

/// Everything a refused change must leave alone: the tokens, the audit log, the state
/// serial and the stored documents.
fn everything(admin: &Admin) -> (Vec<Value>, usize, i64, i64) {
    let documents: i64 = admin
        .db()
        .query_row("SELECT count(*) FROM snapshots", [], |r| r.get(0))
        .expect("documents");
    (
        admin.tokens("alice"),
        admin.audit().len(),
        admin.state_serial(),
        documents,
    )
}

/// The networks a record of the latest delta carries for `value`.
fn delta_networks(admin: &Admin, key: &str, value: &str) -> Option<Vec<String>> {
    let Document::Delta(delta) = admin.latest_document(key) else {
        panic!("the latest document is a delta");
    };
    let prefix = TokenHash::of(value).prefix();
    delta
        .entries()
        .find(|(p, _)| *p == prefix)
        .map(|(_, e)| e.networks.iter().map(|n| n.to_string()).collect())
}

#[test]
fn generate_normalizes_the_list_and_every_view_shows_it() {
    let (admin, key) = setup();
    let (limited, value) = generate(
        &admin,
        &[
            "--allow-ip",
            "2001:DB8::/32",
            "--allow-ip",
            "127.0.0.2,203.0.113.0/24",
            // The same network twice, and an IPv4-mapped IPv6 network: as IPv4.
            "--allow-ip",
            "203.0.113.0/24",
            "--allow-ip",
            "::ffff:198.51.100.0/120",
        ],
    );
    let (open, open_value) = generate(&admin, &[]);
    let want = json!([
        "127.0.0.2/32",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "2001:db8::/32"
    ]);
    assert_eq!(show(&admin, limited)["allowed_ips"], want);
    assert_eq!(show(&admin, open)["allowed_ips"], json!([]), "no list: any");
    // The exact shape of a token in `show --json` / `list --json`.
    let shown = show(&admin, open);
    let mut keys: Vec<&str> = shown
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "allowed_ips",
            "created_at",
            "description",
            "effective_rate_limit",
            "email",
            "envs",
            "expires_at",
            "id",
            "last_used_at",
            "last_used_ip",
            "old_value_expires_at",
            "rate_limit",
            "regenerated_at",
            "scope",
            "status",
            "user",
            "valid_through"
        ]
    );
    assert!(shown["old_value_expires_at"].is_null());
    let listed = admin.tokens("alice");
    assert_eq!(listed[0]["allowed_ips"], want);
    assert_eq!(listed[1]["allowed_ips"], json!([]));

    let human = admin
        .run(&["show", "--user", "alice", &limited.to_string()])
        .ok()
        .to_string();
    assert!(
        human.contains("127.0.0.2/32, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32"),
        "{human}"
    );
    let human = admin
        .run(&["show", "--user", "alice", &open.to_string()])
        .ok()
        .to_string();
    assert!(human.contains("any address"), "{human}");
    let list = admin.run(&["list", "--user", "alice"]).ok().to_string();
    assert!(
        list.lines().next().unwrap_or("").contains("ALLOWED IPS"),
        "{list}"
    );
    let line = |id: i64| {
        list.lines()
            .find(|l| l.split_whitespace().next() == Some(id.to_string().as_str()))
            .unwrap_or_else(|| panic!("token {id} in {list}"))
            .to_string()
    };
    assert!(line(limited).contains("127.0.0.2/32 +3"), "{list}");
    assert!(line(open).contains(" any "), "{list}");

    // The audit log has the list; the edge gets it, and enforces it only on that token.
    let audit = admin.audit();
    let entry = audit
        .iter()
        .find(|e| e["action"] == "token.generate" && e["token_id"] == limited)
        .expect("audited");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("allowed IPs 127.0.0.2/32,198.51.100.0/24,203.0.113.0/24,2001:db8::/32"),
        "{entry}"
    );
    let served = admin.served(&key);
    let t = served.find(&TokenHash::of(&value)).expect("published");
    assert!(t.is_address_limited());
    for inside in [
        "127.0.0.2",
        "198.51.100.7",
        "::ffff:198.51.100.7",
        "2001:db8::1",
    ] {
        assert!(t.allows_address(ip(inside)), "{inside}");
    }
    for outside in ["127.0.0.1", "198.51.101.1", "2001:db9::1"] {
        assert!(!t.allows_address(ip(outside)), "{outside}");
    }
    let o = served.find(&TokenHash::of(&open_value)).expect("published");
    assert!(!o.is_address_limited());
    assert!(o.allows_address(ip("192.0.2.1")));
}

#[test]
fn malformed_networks_are_named_and_change_nothing() {
    let (admin, _key) = setup();
    let (id, _) = generate(&admin, &["--allow-ip", "10.0.0.0/8"]);
    let before = everything(&admin);
    let too_many: Vec<String> = (0..33).map(|i| format!("10.{i}.0.0/16")).collect();
    let too_many = too_many.join(",");
    for (list, words) in [
        (
            "10.0.0.1/24",
            &["`10.0.0.1/24`", "host bits", "did you mean 10.0.0.0/24"][..],
        ),
        ("example.com", &["`example.com`", "not an IP network"]),
        ("10.0.0.0/33", &["`10.0.0.0/33`", "prefix length"]),
        ("2001:db8::/129", &["`2001:db8::/129`", "prefix length"]),
        (too_many.as_str(), &["networks, more than the 32 one token"]),
    ] {
        // generate: refused before the password is asked (none is given here).
        let run = admin.run(&[
            "--json",
            "generate",
            "--user",
            "alice",
            "--description",
            "bad",
            "--method",
            STOPENV,
            "--allow-ip",
            list,
        ]);
        let message = json_failure(&run, 2);
        assert_eq!(run.stdout, "", "{list}");
        assert!(message.starts_with("--allow-ip: "), "{message}");
        for word in words {
            assert!(message.contains(word), "{list}: {word} in {message}");
        }
        // edit: the same, with the password given.
        let run = admin.confirmed(&[
            "--json",
            "edit",
            "--user",
            "alice",
            &id.to_string(),
            "--allow-ip",
            "192.0.2.0/24",
            "--allow-ip",
            list,
        ]);
        let message = json_failure(&run, 2);
        for word in words {
            assert!(message.contains(word), "{list}: {word} in {message}");
        }
    }
    // Without --json: the message on stderr, exit 2.
    let err = admin
        .run(&[
            "generate",
            "--user",
            "alice",
            "--description",
            "bad",
            "--method",
            STOPENV,
            "--allow-ip",
            "300.1.2.3",
        ])
        .fails(2)
        .to_string();
    assert!(err.contains("`300.1.2.3` is not an IP network"), "{err}");
    assert_eq!(everything(&admin), before, "nothing changed");
    // Exactly 32 are fine.
    let most: Vec<String> = (0..32).map(|i| format!("10.{i}.0.0/16")).collect();
    generate(&admin, &["--allow-ip", &most.join(",")]);
}

#[test]
fn edit_replaces_or_drops_the_list_and_its_delta_carries_the_new_record() {
    let (admin, key) = setup();
    let (id, value) = generate(&admin, &["--allow-ip", "127.0.0.2"]);
    let (other, other_value) = generate(&admin, &[]);
    let id_text = id.to_string();

    // Only the list changes: a delta with exactly this token's new record.
    let run = admin.confirmed(&[
        "--json",
        "edit",
        "--user",
        "alice",
        &id_text,
        "--allow-ip",
        "192.0.2.0/24",
        "--allow-ip",
        "2001:db8::1",
    ]);
    run.ok();
    assert_eq!(run.json()["changed"], true);
    assert_eq!(
        run.json()["allowed_ips"],
        json!(["192.0.2.0/24", "2001:db8::1/128"])
    );
    let Document::Delta(delta) = admin.latest_document(&key) else {
        panic!("a delta");
    };
    let prefixes: Vec<[u8; 16]> = delta.entries().map(|(p, _)| p).collect();
    assert_eq!(
        prefixes,
        [TokenHash::of(&value).prefix()],
        "only this token"
    );
    assert_eq!(delta.removed().count(), 0, "the value stays");
    assert_eq!(
        delta_networks(&admin, &key, &value),
        Some(vec!["192.0.2.0/24".into(), "2001:db8::1/128".into()])
    );
    let served = admin.served(&key);
    let t = served.find(&TokenHash::of(&value)).expect("still there");
    assert!(t.allows_address(ip("192.0.2.9")) && !t.allows_address(ip("127.0.0.2")));
    assert_eq!(
        served.documents.last().map(|d| d.1),
        Some(Kind::Delta),
        "applied as a delta"
    );

    // The same list again (in another spelling): nothing to do, no password needed.
    let run = admin.run(&[
        "--json",
        "edit",
        "--user",
        "alice",
        &id_text,
        "--allow-ip",
        "2001:DB8::1/128,192.0.2.0/24",
    ]);
    run.ok();
    assert_eq!(run.json()["changed"], false);

    // --no-ip-limit: any address again, in a delta.
    admin
        .confirmed(&["edit", "--user", "alice", &id_text, "--no-ip-limit"])
        .ok();
    assert_eq!(show(&admin, id)["allowed_ips"], json!([]));
    assert_eq!(delta_networks(&admin, &key, &value), Some(vec![]));
    let served = admin.served(&key);
    assert!(
        !served
            .find(&TokenHash::of(&value))
            .expect("there")
            .is_address_limited()
    );
    // The other token was never touched.
    assert!(
        served
            .find(&TokenHash::of(&other_value))
            .expect("there")
            .allows_address(ip("203.0.113.1"))
    );
    assert_eq!(show(&admin, other)["allowed_ips"], json!([]));
    let entry = &admin.audit()[1];
    assert_eq!(entry["action"], "token.edit");
    assert!(
        entry["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("allowed IPs any;"),
        "{entry}"
    );
}

#[test]
fn copy_and_regenerate_keep_the_list() {
    let (admin, key) = setup();
    let (id, _) = generate(&admin, &["--allow-ip", "198.51.100.0/24"]);
    let run = admin.confirmed(&["--json", "copy", "--user", "alice", &id.to_string()]);
    run.ok();
    let copy = run.json();
    assert_eq!(copy["allowed_ips"], json!(["198.51.100.0/24"]));
    let copy_value = copy["token"].as_str().expect("value").to_string();
    let run = admin.confirmed(&["--json", "regenerate", "--user", "alice", &id.to_string()]);
    run.ok();
    assert_eq!(run.json()["allowed_ips"], json!(["198.51.100.0/24"]));
    let new_value = run.json()["token"].as_str().expect("value").to_string();
    let served = admin.served(&key);
    for value in [&copy_value, &new_value] {
        let t = served.find(&TokenHash::of(value)).expect("published");
        assert!(t.allows_address(ip("198.51.100.1")));
        assert!(!t.allows_address(ip("198.51.101.1")));
    }
}

#[test]
fn a_full_snapshot_carries_the_lists() {
    let (admin, _) = setup();
    let (_, value) = generate(&admin, &["--allow-ip", "127.0.0.2/32"]);
    let (_, open) = generate(&admin, &[]);
    // A new key starts a new chain: a full snapshot of everything.
    let key = admin.key();
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    assert_eq!(run.json()["kind"], "full", "{}", run.stdout);
    let Document::Full(full) = admin.latest_document(&key) else {
        panic!("a full snapshot");
    };
    let limited = full.find(&TokenHash::of(&value)).expect("there");
    assert_eq!(
        limited
            .networks
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>(),
        ["127.0.0.2/32"]
    );
    assert!(
        full.find(&TokenHash::of(&open))
            .expect("there")
            .networks
            .is_unrestricted()
    );
}

#[test]
fn the_api_takes_allowed_ips_on_create_and_edit_and_lists_them() {
    let (admin, key) = setup();
    let server = admin.serve_api();
    let s = server.sign_in("alice");
    let p = enc(PASSWORD);
    let created = server.api(
        "CreateToken",
        &format!(
            "session={s}&password={p}&description=ci&apiList={STOPENV}&allowedIps={}",
            enc("203.0.113.0/24\n2001:db8::/48, 127.0.0.2")
        ),
    );
    assert_eq!(created["result"], 0, "{created}");
    let token = &created["token"];
    let id = token["id"].as_i64().expect("id");
    let value = token["key"].as_str().expect("key").to_string();
    assert_eq!(
        token["allowedIps"],
        json!(["127.0.0.2/32", "203.0.113.0/24", "2001:db8::/48"])
    );
    assert_eq!(token["oldKeyExpiresAt"], Value::Null);
    // The exact shape of a token in GetTokens.
    let listed = server.api("GetTokens", &format!("session={s}"));
    let only = &listed["apiTokens"][0];
    let mut keys: Vec<&str> = only
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "allowedIps",
            "apiListItems",
            "createdAt",
            "description",
            "effectiveRateLimit",
            "envNames",
            "expiresAt",
            "id",
            "isSystem",
            "lastUsed",
            "oldKeyExpiresAt",
            "rateLimit",
            "suspended"
        ]
    );
    assert_eq!(only["allowedIps"], token["allowedIps"]);
    // Without the parameter: any address.
    let open = server.api(
        "CreateToken",
        &format!("session={s}&password={p}&description=open&apiList={STOPENV}"),
    );
    assert_eq!(open["token"]["allowedIps"], json!([]), "{open}");

    // Malformed: 711, the entry named, nothing changed (the password is not even checked).
    let before = everything(&admin);
    for (list, words) in [
        (
            "10.0.0.1/8",
            &["allowedIps: ", "`10.0.0.1/8`", "10.0.0.0/8"][..],
        ),
        ("10.0.0.0/8,nope", &["`nope`", "not an IP network"]),
    ] {
        let answer = server.api(
            "CreateToken",
            &format!(
                "session={s}&password=wrong&description=bad&apiList={STOPENV}&allowedIps={}",
                enc(list)
            ),
        );
        assert_eq!(
            (&answer["result"], &answer["source"]),
            (&json!(711), &json!("pat-admin")),
            "{answer}"
        );
        let error = answer["error"].as_str().expect("error");
        for word in words {
            assert!(error.contains(word), "{word} in {error}");
        }
        let answer = server.api(
            "EditToken",
            &format!("session={s}&password={p}&id={id}&allowedIps={}", enc(list)),
        );
        assert_eq!(answer["result"], 711, "{answer}");
    }
    assert_eq!(everything(&admin), before);

    // EditToken: absent keeps the list, a new one replaces it, empty removes it.
    let kept = server.api(
        "EditToken",
        &format!("session={s}&password={p}&id={id}&description=renamed"),
    );
    assert_eq!(kept["token"]["allowedIps"], token["allowedIps"], "{kept}");
    let replaced = server.api(
        "EditToken",
        &format!("session={s}&password={p}&id={id}&allowedIps=192.0.2.7"),
    );
    assert_eq!(replaced["changed"], true, "{replaced}");
    assert_eq!(replaced["token"]["allowedIps"], json!(["192.0.2.7/32"]));
    assert_eq!(
        delta_networks(&admin, &key, &value),
        Some(vec!["192.0.2.7/32".into()])
    );
    let removed = server.api(
        "EditToken",
        &format!("session={s}&password={p}&id={id}&allowedIps="),
    );
    assert_eq!(removed["changed"], true, "{removed}");
    assert_eq!(removed["token"]["allowedIps"], json!([]));
    assert_eq!(delta_networks(&admin, &key, &value), Some(vec![]));
    // The CLI sees what the API did (one implementation).
    assert_eq!(show(&admin, id)["allowed_ips"], json!([]));
}
