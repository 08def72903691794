//! With `--json`, an error is one JSON object on stderr, `{"error", "exit_code"}`, and stdout
//! stays empty, whatever the exit code.

mod support;
use support::*;

/// Asserts the run failed with `code`, nothing on stdout and a JSON error on stderr; returns
/// the message.
fn json_error(run: &Run, code: i32) -> String {
    let stderr = run.fails(code);
    assert_eq!(run.stdout, "", "stdout stays empty");
    let body: serde_json::Value = serde_json::from_str(stderr.trim_end())
        .unwrap_or_else(|e| panic!("stderr is not one JSON object ({e}): {stderr}"));
    let object = body.as_object().expect("an object");
    assert_eq!(object.len(), 2, "{body}");
    assert_eq!(body["exit_code"], code);
    let message = body["error"].as_str().expect("error text").to_string();
    assert!(!message.starts_with("pat-admin:"), "{message}");
    message
}

#[test]
fn each_kind_of_error_is_json() {
    let admin = Admin::new();
    admin.user("alice");

    let message = json_error(&admin.run(&["--json", "list", "--user", "ghost"]), 4);
    assert!(message.contains("no account named ghost"), "{message}");

    let message = json_error(
        &admin.confirmed(&[
            "--json",
            "generate",
            "--user",
            "alice",
            "--description",
            "ci",
            "--api",
            "marketplace",
            "--expires-at",
            "2030-01-01",
        ]),
        2,
    );
    assert!(message.contains("DD-MM-YYYY"), "{message}");

    let message = json_error(
        &admin.confirmed(&[
            "--json",
            "generate",
            "--user",
            "alice",
            "--description",
            "ci",
            "--method",
            "environment.Control.StopEnvv",
        ]),
        2,
    );
    assert!(
        message.contains("did you mean environment.Control.StopEnv"),
        "{message}"
    );

    let message = json_error(
        &admin.confirmed_with(
            &[
                "--json",
                "generate",
                "--user",
                "alice",
                "--description",
                "ci",
                "--api",
                "marketplace",
            ],
            "not the password",
        ),
        3,
    );
    assert!(message.contains("wrong password"), "{message}");

    admin.run(&["edge", "add", "http://127.0.0.1:10001"]).ok();
    let message = json_error(
        &admin.run(&["--json", "edge", "add", "http://127.0.0.1:10001"]),
        5,
    );
    assert!(message.contains("already configured"), "{message}");

    let message = json_error(&admin.run(&["--json", "key", "activate", "nope"]), 4);
    assert!(message.contains("no signing key nope"), "{message}");

    let message = json_error(&admin.run(&["--json", "publish"]), 5);
    assert!(message.contains("no signing key"), "{message}");

    let message = json_error(&admin.run(&["--json", "user", "add", "alice"]), 5);
    assert!(message.contains("already exists"), "{message}");
}

#[test]
fn a_broken_store_is_a_json_failure() {
    let admin = Admin::sqlite();
    std::fs::write(admin.store(), "not a directory").expect("write");
    let message = json_error(&admin.run(&["--json", "user", "list"]), 1);
    assert!(message.contains("is not a directory"), "{message}");
    // The same error for people: one line on stderr.
    let err = admin.run(&["user", "list"]).fails(1).to_string();
    assert!(err.starts_with("pat-admin: store "), "{err}");
}

#[test]
fn a_world_readable_database_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let admin = Admin::sqlite();
    admin.init();
    admin.run(&["user", "list"]).ok();
    let db = admin.store().join("pat-admin.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let message = json_error(&admin.run(&["--json", "user", "list"]), 1);
    assert!(message.contains("readable by other users"), "{message}");
    assert!(message.contains("chmod 600"), "{message}");
}
