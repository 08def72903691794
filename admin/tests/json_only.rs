//! Under `--json`, stdout and stderr carry JSON only, a change's JSON includes its publish
//! result per edge, and usage errors keep the argument's name.

mod support;
use support::*;

/// Every non-empty stderr line is a JSON object.
fn stderr_is_json(run: &Run) -> Vec<serde_json::Value> {
    run.stderr
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}"))
        })
        .collect()
}

#[test]
fn a_change_with_an_edge_down_is_json_with_its_publish_result() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    let down = format!("http://127.0.0.1:{}", free_port());
    admin.run(&["edge", "add", &down]).ok();

    let run = admin.confirmed(&[
        "--json",
        "generate",
        "--user",
        "alice",
        "--description",
        "ci",
        "--api",
        "marketplace",
        "--timeout",
        "1",
        "--deadline",
        "2",
    ]);
    run.fails(6);
    let json = run.json();
    assert_token_shape(json["token"].as_str().expect("token"));
    assert_eq!(json["publish"]["state"], "not_accepted", "{json}");
    assert_eq!(json["publish"]["version"], 1);
    assert_eq!(json["publish"]["edges"][0]["edge"], down.as_str());
    assert_eq!(json["publish"]["edges"][0]["outcome"], "unreachable");
    let errors = stderr_is_json(&run);
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert_eq!(errors[0]["exit_code"], 6);
    assert!(
        errors[0]["error"]
            .as_str()
            .expect("text")
            .contains("saved and signed")
    );

    let id = json["id"].as_i64().expect("id").to_string();
    let run = admin.confirmed(&[
        "--json",
        "remove",
        "--user",
        "alice",
        &id,
        "--timeout",
        "1",
        "--deadline",
        "2",
    ]);
    run.fails(6);
    let json = run.json();
    assert_eq!(
        json["removed"],
        serde_json::json!([id.parse::<i64>().expect("id")])
    );
    assert_eq!(json["publish"]["edges"][0]["outcome"], "unreachable");
    assert_eq!(stderr_is_json(&run).len(), 1);

    // --no-publish says so.
    let run = admin.confirmed(&[
        "--json",
        "generate",
        "--user",
        "alice",
        "--description",
        "ci",
        "--api",
        "marketplace",
        "--no-publish",
    ]);
    run.ok();
    assert_eq!(run.json()["publish"]["state"], "skipped");
    assert_eq!(run.stderr, "");
}

#[test]
fn usage_errors_keep_the_argument_name() {
    let admin = Admin::new();
    let run = admin.run(&["--json", "show", "3"]);
    run.fails(2);
    assert_eq!(run.stdout, "");
    let errors = stderr_is_json(&run);
    let message = errors[0]["error"].as_str().expect("text");
    assert!(message.contains("--user"), "{message}");
    assert!(message.contains("required"), "{message}");
    assert!(!message.contains("Usage"), "{message}");
}

#[test]
fn times_are_rfc_3339_and_unknown_values_null() {
    let rfc3339 = |v: &serde_json::Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap_or_else(|| panic!("a string: {v}")),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap_or_else(|e| panic!("{v}: {e}"))
    };
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    let (id, _) = admin.token(
        "alice",
        &[
            "--api",
            "marketplace",
            "--expires-at",
            &date_in(3),
            "--no-publish",
        ],
    );
    let token = &admin.tokens("alice")[0];
    rfc3339(&token["created_at"]);
    rfc3339(&token["expires_at"]);
    assert_eq!(token["regenerated_at"], serde_json::Value::Null);
    assert!(token.get("expires_at_unix").is_none());
    for entry in admin.audit() {
        rfc3339(&entry["at"]);
    }
    let keys = admin.run(&["--json", "key", "list"]).json();
    rfc3339(&keys[0]["created_at"]);
    let users = admin.run(&["--json", "user", "list"]).json();
    rfc3339(&users[0]["created_at"]);
    let report = admin.run(&["--json", "publish"]).json();
    rfc3339(&report["issued_at"]);
    rfc3339(&report["expires_at"]);
    let shown = admin
        .run(&["--json", "show", "--user", "alice", &id.to_string()])
        .json();
    rfc3339(&shown["expires_at"]);
}
