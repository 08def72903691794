//! Tokens limited to named environments (`--env`, `envNames`) and per-token rate limits
//! (`--rate-limit`, `rateLimit`, the `default-rate-limit` setting): checked before anything
//! changes (a bad name or limit is named, exit 2 / 711, nothing stored, no password asked),
//! shown by `list`, `show` and `GetTokens`, changed or cleared by `edit` / `EditToken`,
//! kept by `copy` (unless given) and `regenerate`, audited, and carried by every document
//! the store signs with the methods that act on one environment; a change of the default
//! signs a full snapshot with the new effective limits.

mod support;

use pat_core::rate::RateLimit;
use pat_core::snapshot::Document;
use pat_core::token::TokenHash;
use serde_json::{Value, json};
use support::*;

const STOPENV: &str = "environment.Control.StopEnv";
const GETENVS: &str = "environment.Control.GetEnvs";

fn setup() -> (Admin, String) {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    (admin, key)
}

fn generate(admin: &Admin, extra: &[&str]) -> (i64, String) {
    let mut args = vec!["--method", STOPENV, "--method", GETENVS];
    args.extend_from_slice(extra);
    admin.token("alice", &args)
}

fn show(admin: &Admin, id: i64) -> Value {
    let run = admin.run(&["--json", "show", "--user", "alice", &id.to_string()]);
    run.ok();
    run.json()
}

fn rate(text: &str) -> RateLimit {
    text.parse().expect("a rate limit")
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

/// What the state edges reach holds for `value`: its environments and rate limit.
fn published(admin: &Admin, key: &str, value: &str) -> (Vec<String>, Option<RateLimit>) {
    let served = admin.served(key);
    let t = served.find(&TokenHash::of(value)).expect("published");
    (
        t.envs().names().map(str::to_string).collect(),
        t.rate_limit(),
    )
}

#[test]
fn generate_takes_environments_and_a_rate_limit_and_every_view_shows_them() {
    let (admin, key) = setup();
    let run = admin.confirmed(&[
        "--json",
        "generate",
        "--user",
        "alice",
        "--description",
        "deploys",
        "--method",
        STOPENV,
        "--method",
        GETENVS,
        "--env",
        "Staging",
        "--env",
        "my-app,staging",
        "--rate-limit",
        "10/s",
    ]);
    run.ok();
    let created = run.json();
    let (id, value) = (
        created["id"].as_i64().expect("id"),
        created["token"].as_str().expect("value").to_string(),
    );
    assert_eq!(created["envs"], json!(["my-app", "staging"]), "{created}");
    assert_eq!(created["rate_limit"], "10/s");
    assert_eq!(created["effective_rate_limit"], "10/s");

    let shown = show(&admin, id);
    assert_eq!(shown["envs"], json!(["my-app", "staging"]));
    assert_eq!(shown["rate_limit"], "10/s");
    let listed = admin.tokens("alice");
    assert_eq!(listed[0]["envs"], json!(["my-app", "staging"]));
    assert_eq!(listed[0]["rate_limit"], "10/s");
    let human = admin
        .run(&["show", "--user", "alice", &id.to_string()])
        .ok()
        .to_string();
    assert!(human.contains("my-app, staging"), "{human}");
    assert!(human.contains("10/s on each edge"), "{human}");
    let list = admin.run(&["list", "--user", "alice"]).ok().to_string();
    let header = list.lines().next().unwrap_or_default();
    assert!(
        header.contains("ENVIRONMENTS") && header.contains("RATE LIMIT"),
        "{list}"
    );
    assert!(
        list.contains("my-app +1") && list.contains("10/s"),
        "{list}"
    );

    // The audit entry names both.
    let audit = admin.audit();
    let entry = audit
        .iter()
        .find(|e| e["action"] == "token.generate")
        .expect("audited");
    let detail = entry["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("environments my-app,staging; rate limit 10/s"),
        "{detail}"
    );

    // The document edges get carries them, and which of its methods act on one environment.
    let served = admin.served(&key);
    let t = served.find(&TokenHash::of(&value)).expect("published");
    assert_eq!(t.envs().names().collect::<Vec<_>>(), ["my-app", "staging"]);
    assert_eq!(t.rate_limit(), Some(rate("10/s")));
    assert!(t.method_acts_on_env("environment.control.stopenv"));
    assert!(!t.method_acts_on_env("environment.control.getenvs"));

    // Without the flags: any environment, no limit.
    let (open_id, open) = generate(&admin, &[]);
    let shown = show(&admin, open_id);
    assert_eq!(
        (
            &shown["envs"],
            &shown["rate_limit"],
            &shown["effective_rate_limit"]
        ),
        (&Value::Null, &Value::Null, &Value::Null)
    );
    assert_eq!(published(&admin, &key, &open), (vec![], None));
    // Exactly 32 environments are fine.
    let most: Vec<String> = (0..32).map(|i| format!("env-{i}")).collect();
    generate(&admin, &["--env", &most.join(",")]);
}

#[test]
fn malformed_environments_and_limits_are_named_and_change_nothing() {
    let (admin, _key) = setup();
    let (id, _) = generate(&admin, &["--env", "my-app"]);
    let before = everything(&admin);
    let too_many: Vec<String> = (0..33).map(|i| format!("env-{i}")).collect();
    let too_many = too_many.join(",");
    for (flag, value, words) in [
        (
            "--env",
            "-app",
            &["--env: ", "`-app`", "letters, digits and hyphens"][..],
        ),
        ("--env", "my_app", &["`my_app`"]),
        ("--env", &"x".repeat(64), &["longer than 63"]),
        (
            "--env",
            too_many.as_str(),
            &["at most 32 environments (33 given)"],
        ),
        (
            "--rate-limit",
            "10/h",
            &["--rate-limit: ", "`10/h` is not a rate limit"],
        ),
        ("--rate-limit", "0/s", &["`0/s`", "from 1 to"]),
        (
            "--rate-limit",
            "none",
            &["`none` is not a rate limit", "--no-rate-limit"],
        ),
    ] {
        // `--env=-app`: as one argument, so a leading hyphen is a value.
        let given = format!("{flag}={value}");
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
            &given,
        ]);
        let message = json_failure(&run, 2);
        assert_eq!(run.stdout, "", "{value}");
        for word in words {
            assert!(message.contains(word), "{value}: {word} in {message}");
        }
        // edit and copy: the same, with the password given.
        for command in ["edit", "copy"] {
            let run = admin.confirmed(&[
                "--json",
                command,
                "--user",
                "alice",
                &id.to_string(),
                &given,
            ]);
            let message = json_failure(&run, 2);
            for word in words {
                assert!(
                    message.contains(word),
                    "{command} {value}: {word} in {message}"
                );
            }
        }
    }
    assert_eq!(everything(&admin), before, "nothing changed");
}

#[test]
fn edit_changes_or_clears_them_and_copy_and_regenerate_keep_them() {
    let (admin, key) = setup();
    let (id, value) = generate(&admin, &["--env", "one", "--rate-limit", "5/s"]);
    let edit = |args: &[&str]| {
        let mut all = vec!["--json", "edit", "--user", "alice"];
        let id = id.to_string();
        all.push(&id);
        all.extend_from_slice(args);
        let run = admin.confirmed(&all);
        run.ok();
        run.json()
    };
    let edited = edit(&["--env", "two", "--env", "three"]);
    assert_eq!(edited["envs"], json!(["three", "two"]), "{edited}");
    assert_eq!(edited["rate_limit"], "5/s", "kept");
    // The change is a delta carrying the new record.
    let Document::Delta(_) = admin.latest_document(&key) else {
        panic!("a delta");
    };
    assert_eq!(
        published(&admin, &key, &value),
        (vec!["three".into(), "two".into()], Some(rate("5/s")))
    );
    let edited = edit(&["--rate-limit", "600/min"]);
    assert_eq!(edited["rate_limit"], "600/min");
    assert_eq!(published(&admin, &key, &value).1, Some(rate("600/min")));
    // The same values again: nothing changes.
    let same = edit(&["--rate-limit", "600/min"]);
    assert_eq!(same["changed"], false);

    // copy keeps both, or takes new ones.
    let copied = admin.confirmed(&["--json", "copy", "--user", "alice", &id.to_string()]);
    copied.ok();
    let copied = copied.json();
    assert_eq!(copied["envs"], json!(["three", "two"]), "{copied}");
    assert_eq!(copied["rate_limit"], "600/min");
    let copy_value = copied["token"].as_str().expect("value").to_string();
    assert_eq!(
        published(&admin, &key, &copy_value),
        (vec!["three".into(), "two".into()], Some(rate("600/min")))
    );
    let other = admin.confirmed(&[
        "--json",
        "copy",
        "--user",
        "alice",
        &id.to_string(),
        "--any-env",
        "--rate-limit",
        "1/s",
    ]);
    other.ok();
    let other = other.json();
    assert_eq!(
        (&other["envs"], &other["rate_limit"]),
        (&Value::Null, &json!("1/s"))
    );

    // regenerate keeps both.
    let run = admin.confirmed(&["--json", "regenerate", "--user", "alice", &id.to_string()]);
    run.ok();
    let regenerated = run.json();
    assert_eq!(regenerated["envs"], json!(["three", "two"]));
    assert_eq!(regenerated["rate_limit"], "600/min");
    let new_value = regenerated["token"].as_str().expect("value").to_string();
    assert_eq!(
        published(&admin, &key, &new_value),
        (vec!["three".into(), "two".into()], Some(rate("600/min")))
    );

    // Cleared: any environment, no limit of its own.
    let cleared = edit(&["--any-env", "--no-rate-limit"]);
    assert_eq!(
        (&cleared["envs"], &cleared["rate_limit"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(published(&admin, &key, &new_value), (vec![], None));
    let detail = admin
        .audit()
        .iter()
        .find(|e| e["action"] == "token.edit")
        .and_then(|e| e["detail"].as_str().map(str::to_string))
        .unwrap_or_default();
    assert!(
        detail.ends_with("environments any; rate limit default"),
        "{detail}"
    );
}

#[test]
fn the_default_rate_limit_applies_to_tokens_without_their_own_and_republishes() {
    let (admin, key) = setup();
    let (own_id, own) = generate(&admin, &["--rate-limit", "10/s"]);
    let (plain_id, plain) = generate(&admin, &[]);
    let serial = admin.state_serial();

    admin
        .run(&["config", "set", "default-rate-limit", "100/min"])
        .ok();
    let shown = admin.run(&["--json", "config", "show"]).json();
    assert_eq!(shown["default_rate_limit"], "100/min");
    // The state moved and a full snapshot carries the new effective limits.
    assert!(admin.state_serial() > serial);
    let Document::Full(_) = admin.latest_document(&key) else {
        panic!("a full snapshot");
    };
    assert_eq!(published(&admin, &key, &plain).1, Some(rate("100/min")));
    assert_eq!(published(&admin, &key, &own).1, Some(rate("10/s")));
    let plain_shown = show(&admin, plain_id);
    assert_eq!(
        (
            &plain_shown["rate_limit"],
            &plain_shown["effective_rate_limit"]
        ),
        (&Value::Null, &json!("100/min"))
    );
    assert_eq!(show(&admin, own_id)["effective_rate_limit"], "10/s");
    let human = admin
        .run(&["show", "--user", "alice", &plain_id.to_string()])
        .ok()
        .to_string();
    assert!(
        human.contains("100/min on each edge (the default rate limit)"),
        "{human}"
    );
    assert!(
        admin
            .audit()
            .iter()
            .any(|e| e["action"] == "config.set" && e["detail"] == "default-rate-limit = 100/min")
    );

    // A new token without its own gets the default in the delta of its creation.
    let (_, later) = generate(&admin, &[]);
    let Document::Delta(_) = admin.latest_document(&key) else {
        panic!("a delta");
    };
    assert_eq!(published(&admin, &key, &later).1, Some(rate("100/min")));

    // The same value again: nothing signed.
    let documents = everything(&admin).3;
    let serial = admin.state_serial();
    admin
        .run(&["config", "set", "default-rate-limit", "100/m"])
        .ok();
    assert_eq!(
        (everything(&admin).3, admin.state_serial()),
        (documents, serial)
    );

    // A bad value changes nothing.
    let before = everything(&admin);
    let err = admin
        .run(&["config", "set", "default-rate-limit", "fast"])
        .fails(2)
        .to_string();
    assert!(err.contains("`fast` is not a rate limit"), "{err}");
    assert_eq!(everything(&admin), before);

    // none: no limit again, republished.
    admin
        .run(&["config", "set", "default-rate-limit", "none"])
        .ok();
    assert_eq!(published(&admin, &key, &plain).1, None);
    assert_eq!(published(&admin, &key, &own).1, Some(rate("10/s")));
    assert_eq!(
        admin.run(&["--json", "config", "show"]).json()["default_rate_limit"],
        Value::Null
    );
}

#[test]
fn the_api_takes_env_names_and_rate_limits_and_lists_them() {
    let (admin, key) = setup();
    let server = admin.serve_api();
    let s = server.sign_in("alice");
    let p = enc(PASSWORD);
    // The shapes apiList takes: comma-separated, a JSON array, repeated.
    for (envs, expected) in [
        (
            format!("envNames={}", enc("web, API")),
            json!(["api", "web"]),
        ),
        (
            format!("envNames={}", enc(r#"["web","db"]"#)),
            json!(["db", "web"]),
        ),
        ("envNames=a&envNames=b".to_string(), json!(["a", "b"])),
    ] {
        let created = server.api(
            "CreateToken",
            &format!(
                "session={s}&password={p}&description=ci&apiList={STOPENV}&{envs}&rateLimit=20%2Fs"
            ),
        );
        assert_eq!(created["result"], 0, "{created}");
        assert_eq!(created["token"]["envNames"], expected, "{created}");
        assert_eq!(created["token"]["rateLimit"], "20/s");
        assert_eq!(created["token"]["effectiveRateLimit"], "20/s");
    }
    let created = server.api(
        "CreateToken",
        &format!("session={s}&password={p}&description=open&apiList={STOPENV}"),
    );
    let token = &created["token"];
    let (id, value) = (
        token["id"].as_i64().expect("id"),
        token["key"].as_str().expect("key").to_string(),
    );
    assert_eq!(
        (
            &token["envNames"],
            &token["rateLimit"],
            &token["effectiveRateLimit"]
        ),
        (&Value::Null, &Value::Null, &Value::Null),
        "{created}"
    );
    let listed = server.api("GetTokens", &format!("session={s}"));
    assert_eq!(listed["apiTokens"][0]["envNames"], json!(["api", "web"]));
    assert_eq!(listed["apiTokens"][0]["rateLimit"], "20/s");

    // Malformed: 711, named, nothing changed (the password is not even checked).
    let before = everything(&admin);
    for (param, words) in [
        ("envNames=my_app", &["envNames: ", "`my_app`"][..]),
        ("envNames=-x", &["`-x`"]),
        (
            "rateLimit=10%2Fh",
            &["rateLimit: ", "`10/h` is not a rate limit"],
        ),
        ("rateLimit=0%2Fmin", &["`0/min`"]),
    ] {
        let answer = server.api(
            "CreateToken",
            &format!("session={s}&password=wrong&description=bad&apiList={STOPENV}&{param}"),
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
            &format!("session={s}&password={p}&id={id}&{param}"),
        );
        assert_eq!(answer["result"], 711, "{answer}");
    }
    assert_eq!(everything(&admin), before);

    // EditToken: sets, keeps when absent, clears with "" and none.
    let set = server.api(
        "EditToken",
        &format!("session={s}&password={p}&id={id}&envNames=prod&rateLimit=5%2Fmin"),
    );
    assert_eq!(set["changed"], true, "{set}");
    assert_eq!(
        (&set["token"]["envNames"], &set["token"]["rateLimit"]),
        (&json!(["prod"]), &json!("5/min"))
    );
    assert_eq!(
        published(&admin, &key, &value),
        (vec!["prod".into()], Some(rate("5/min")))
    );
    let kept = server.api(
        "EditToken",
        &format!("session={s}&password={p}&id={id}&description=renamed"),
    );
    assert_eq!(kept["token"]["envNames"], json!(["prod"]), "{kept}");
    let cleared = server.api(
        "EditToken",
        &format!("session={s}&password={p}&id={id}&envNames=&rateLimit=none"),
    );
    assert_eq!(cleared["changed"], true, "{cleared}");
    assert_eq!(
        (
            &cleared["token"]["envNames"],
            &cleared["token"]["rateLimit"]
        ),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(published(&admin, &key, &value), (vec![], None));
    // The default shows as the effective limit.
    admin
        .run(&["config", "set", "default-rate-limit", "7/s"])
        .ok();
    let listed = server.api("GetTokens", &format!("session={s}&ids={id}"));
    let only = &listed["apiTokens"][0];
    assert_eq!(
        (&only["rateLimit"], &only["effectiveRateLimit"]),
        (&Value::Null, &json!("7/s")),
        "{listed}"
    );
    // The CLI sees what the API did (one implementation).
    assert_eq!(show(&admin, id)["effective_rate_limit"], "7/s");
}
