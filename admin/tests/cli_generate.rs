//! `generate`: scopes, expiry dates, every rejection, and the token value shown exactly once.

mod support;
use support::*;

const GENERATE: [&str; 5] = ["generate", "--user", "alice", "--description", "ci"];

/// `generate --user alice --description ci` followed by `extra` (`--json` works there too:
/// it is a global flag).
fn generate<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut args: Vec<&'a str> = GENERATE.to_vec();
    args.extend_from_slice(extra);
    args
}

#[test]
fn human_mode_prints_only_the_token_on_stdout() {
    let admin = Admin::new();
    admin.user("alice");
    let run = admin.confirmed(&generate(&["--api", "ide-plugins"]));
    let stdout = run.ok();
    let token = stdout.strip_suffix('\n').expect("one line");
    assert_token_shape(token);
    assert_eq!(stdout, format!("{token}\n"), "nothing else on stdout");
    assert!(
        run.stderr
            .contains("Token 1 created for alice (IDE Plugins, no expiry)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("will not be shown again"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains(token),
        "the value is not repeated on stderr"
    );
}

#[test]
fn json_mode_has_the_token_and_its_id_and_nothing_on_stderr() {
    let admin = Admin::new();
    admin.user("alice");
    let run = admin.confirmed(&generate(&["--json", "--api", "IDE Plugins"]));
    run.ok();
    assert_eq!(run.stderr, "");
    let json = run.json();
    assert_token_shape(json["token"].as_str().expect("token"));
    assert_eq!(json["id"], 1);
    assert_eq!(json["user"], "alice");
    assert_eq!(json["description"], "ci");
    assert_eq!(
        json["scope"]["set"], "ide-plugins",
        "set found by display name"
    );
    assert_eq!(json["scope"]["set_name"], "IDE Plugins");
    assert_eq!(
        json["scope"]["methods"].as_array().expect("methods").len(),
        14
    );
    assert_eq!(json["expires_at"], serde_json::Value::Null);
    assert_eq!(json["status"], "active");
    assert!(json.get("token_file").is_none());
    assert_eq!(
        occurrences(run.stdout.as_bytes(), b"pate_"),
        1,
        "the value appears once"
    );
}

#[test]
fn methods_repeated_comma_separated_any_case_and_env_alias() {
    let admin = Admin::new();
    admin.user("alice");
    let run = admin.confirmed(&[
        "--json",
        "generate",
        "--user",
        "alice",
        "--description",
        "deploy bot",
        "--method",
        "env.control.stopenv",
        "--method",
        "ENVIRONMENT.CONTROL.StartEnv,storage.uploader.upload",
        "--method",
        "environment.Control.StopEnv",
    ]);
    run.ok();
    let json = run.json();
    assert_eq!(json["scope"]["set"], serde_json::Value::Null);
    assert_eq!(
        json["scope"]["methods"],
        serde_json::json!([
            "environment.Control.StartEnv",
            "environment.Control.StopEnv",
            "storage.Uploader.Upload"
        ]),
        "catalogue spelling, sorted, duplicates merged"
    );
}

#[test]
fn an_expiry_date_is_the_last_valid_day() {
    let admin = Admin::new();
    admin.user("alice");
    let day = date_in(10);
    let run = admin.confirmed(&generate(&[
        "--json",
        "--api",
        "marketplace",
        "--expires-at",
        &day,
    ]));
    run.ok();
    let json = run.json();
    assert_eq!(json["valid_through"], day.as_str());
    assert_eq!(json["status"], "active");
    // Valid through the end of that day, UTC: it stops working at the next midnight.
    let end = time::OffsetDateTime::parse(
        json["expires_at"].as_str().expect("RFC 3339"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339")
    .unix_timestamp();
    assert_eq!(end % 86_400, 0, "a midnight");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!(
        (10 * 86_400..11 * 86_400 + 1).contains(&(end - now)),
        "{end} vs {now}"
    );
}

#[test]
fn bad_or_past_dates_are_refused() {
    let admin = Admin::new();
    admin.user("alice");
    for bad in [
        "2030-12-31",
        "31/12/2030",
        "31-13-2030",
        "32-01-2030",
        "1-1-2030",
        "tomorrow",
    ] {
        let err = admin
            .confirmed(&generate(&["--api", "marketplace", "--expires-at", bad]))
            .fails(2)
            .to_string();
        assert!(err.contains("DD-MM-YYYY"), "{bad}: {err}");
    }
    let yesterday = date_in(-1);
    let err = admin
        .confirmed(&generate(&[
            "--api",
            "marketplace",
            "--expires-at",
            &yesterday,
        ]))
        .fails(2)
        .to_string();
    assert!(err.contains("is in the past"), "{err}");
    assert!(admin.tokens("alice").is_empty());
}

#[test]
fn scope_mistakes_are_refused_with_help() {
    let admin = Admin::new();
    admin.user("alice");
    let refused = |extra: &[&str]| admin.confirmed(&generate(extra)).fails(2).to_string();

    let err = refused(&["--method", "environment.Control.StopEnvv"]);
    assert!(err.contains("unknown API method"), "{err}");
    assert!(
        err.contains("did you mean environment.Control.StopEnv"),
        "{err}"
    );

    let err = refused(&["--method", "nonsense"]);
    assert!(err.contains("nonsense"), "{err}");

    for forbidden in [
        "users.Authentication.Signin",
        "users.authentication.signout",
    ] {
        let err = refused(&["--method", forbidden]);
        assert!(err.contains("cannot be granted"), "{forbidden}: {err}");
        assert!(err.contains("users.Authentication"), "{err}");
    }

    let err = refused(&["--api", "everything"]);
    assert!(err.contains("unknown API set `everything`"), "{err}");
    assert!(
        err.contains("ide-plugins, marketplace, maven-plugin"),
        "{err}"
    );

    let err = refused(&[]);
    assert!(err.contains("choose a scope"), "{err}");

    // --api and --method together is a usage error.
    let err = refused(&[
        "--api",
        "marketplace",
        "--method",
        "environment.Control.StopEnv",
    ]);
    assert!(err.contains("cannot be used with"), "{err}");

    assert!(admin.tokens("alice").is_empty(), "nothing was created");
}

#[test]
fn descriptions_must_say_something() {
    let admin = Admin::new();
    admin.init();
    for (description, message) in [
        ("   ", "the description is empty"),
        (&*"x".repeat(201), "longer than 200 characters"),
        ("line\nbreak", "control characters"),
    ] {
        let err = admin
            .confirmed(&[
                "generate",
                "--user",
                "alice",
                "--description",
                description,
                "--api",
                "marketplace",
            ])
            .fails(2)
            .to_string();
        assert!(err.contains(message), "{description:?}: {err}");
    }
}

#[test]
fn unknown_account_is_not_found() {
    let admin = Admin::new();
    admin.init();
    let err = admin
        .confirmed(&[
            "generate",
            "--user",
            "ghost",
            "--description",
            "ci",
            "--api",
            "marketplace",
        ])
        .fails(4)
        .to_string();
    assert!(err.contains("no account named ghost"), "{err}");
}

#[test]
fn wrong_password_creates_nothing() {
    let admin = Admin::new();
    admin.user("alice");
    let run = admin.confirmed_with(&generate(&["--api", "marketplace"]), "not the password");
    let err = run.fails(3);
    assert!(
        err.contains("wrong password for alice; nothing was changed"),
        "{err}"
    );
    assert_eq!(run.stdout, "");
    assert!(admin.tokens("alice").is_empty());
    assert_eq!(admin.audit()[0]["action"], "auth.failed");
}

#[test]
fn output_file_gets_the_token_with_mode_0600_and_stdout_does_not() {
    let admin = Admin::new();
    admin.user("alice");
    let file = admin.dir.path().join("token.txt");
    let path = file.to_str().expect("utf-8 path");

    let run = admin.confirmed(&generate(&["--api", "marketplace", "--output", path]));
    assert_eq!(run.ok(), "", "no token on stdout");
    assert!(run.stderr.contains("written to"), "{}", run.stderr);
    assert_eq!(mode(&file), 0o600);
    let content = std::fs::read_to_string(&file).expect("token file");
    let token = content.strip_suffix('\n').expect("one line");
    assert_token_shape(token);
    assert!(!run.stderr.contains(token));

    // --json with --output names the file instead of the value.
    let other = admin.dir.path().join("other.txt");
    let other_path = other.to_str().expect("utf-8 path");
    let run = admin.confirmed(&generate(&[
        "--json",
        "--api",
        "marketplace",
        "--output",
        other_path,
    ]));
    run.ok();
    let json = run.json();
    assert!(json.get("token").is_none(), "{json}");
    assert_eq!(json["token_file"], other_path);
    assert!(!run.stdout.contains("pate_"));
    assert_token_shape(std::fs::read_to_string(&other).expect("file").trim_end());
}

#[test]
fn output_to_an_existing_file_is_refused_and_leaves_it_alone() {
    let admin = Admin::new();
    admin.user("alice");
    let file = admin.dir.path().join("precious.txt");
    std::fs::write(&file, "do not overwrite\n").expect("write");

    let err = admin
        .confirmed(&generate(&[
            "--api",
            "marketplace",
            "--output",
            file.to_str().expect("utf-8"),
        ]))
        .fails(5)
        .to_string();
    assert!(err.contains("already exists"), "{err}");
    assert!(err.contains("never overwrites"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&file).expect("file"),
        "do not overwrite\n"
    );
    assert!(admin.tokens("alice").is_empty(), "no token was created");
}

#[test]
fn the_value_is_stored_nowhere_and_shown_nowhere_else() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    let (id, token) = admin.token("alice", &["--method", "environment.Control.StopEnv"]);
    admin.run(&["publish"]).ok();

    for args in [
        &["list", "--user", "alice"][..],
        &["--json", "list", "--user", "alice"],
        &["show", "--user", "alice", "1"],
        &["--json", "show", "--user", "alice", "1"],
        &["audit"],
        &["--json", "audit"],
    ] {
        let run = admin.run(args);
        run.ok();
        assert!(!run.stdout.contains(&token), "{args:?} shows the token");
        assert!(
            !run.stdout.contains("pate_"),
            "{args:?} shows a token-like value"
        );
        assert!(!run.stderr.contains(&token), "{args:?}");
    }

    // Only its SHA-256 is kept.
    let hash = pat_core::token::TokenHash::of(&token);
    assert_eq!(admin.stored_hash(id), hash.0);
    let files = admin.store_files();
    assert!(
        files.len() >= 2,
        "the database and the key at least: {files:?}"
    );
    for (path, bytes) in &files {
        assert_eq!(
            occurrences(bytes, token.as_bytes()),
            0,
            "{} holds the token",
            path.display()
        );
    }
}

#[test]
fn the_per_account_limit_refuses_one_more_token() {
    let admin = Admin::new();
    admin
        .run(&["config", "set", "max-tokens-per-account", "2"])
        .ok();
    admin.user("alice");
    admin.token("alice", &["--api", "marketplace"]);
    admin.token("alice", &["--api", "marketplace"]);

    let err = admin
        .confirmed(&generate(&["--api", "marketplace"]))
        .fails(5)
        .to_string();
    assert!(err.contains("already has 2 tokens, the maximum"), "{err}");
    assert!(err.contains("max-tokens-per-account"), "{err}");

    // A copy is one more token too.
    admin.confirmed(&["copy", "--user", "alice", "1"]).fails(5);
    assert_eq!(admin.tokens("alice").len(), 2);
}

#[test]
fn a_maximum_lifetime_requires_an_expiry_within_it() {
    let admin = Admin::new();
    admin.user("alice");
    admin
        .run(&["config", "set", "max-lifetime-days", "30"])
        .ok();

    let err = admin
        .confirmed(&generate(&["--api", "marketplace"]))
        .fails(5)
        .to_string();
    assert!(err.contains("need an expiry"), "{err}");
    assert!(err.contains("30 days"), "{err}");

    let too_far = date_in(31);
    let err = admin
        .confirmed(&generate(&[
            "--api",
            "marketplace",
            "--expires-at",
            &too_far,
        ]))
        .fails(5)
        .to_string();
    assert!(
        err.contains("beyond the maximum token lifetime of 30 days"),
        "{err}"
    );
    assert!(
        err.contains(&format!("latest allowed: {}", date_in(30))),
        "{err}"
    );
    assert!(admin.tokens("alice").is_empty());

    let run = admin.confirmed(&generate(&[
        "--json",
        "--api",
        "marketplace",
        "--expires-at",
        &date_in(30),
    ]));
    run.ok();
    assert_eq!(run.json()["valid_through"], date_in(30));

    admin
        .run(&["config", "set", "max-lifetime-days", "none"])
        .ok();
    admin.confirmed(&generate(&["--api", "marketplace"])).ok();
    assert_eq!(admin.tokens("alice").len(), 2);
}
