//! `--help` for every command, `--version`, and the exit codes in the top-level help.
//! Key phrases only: a golden copy of the help would break on every wording change.

mod support;
use support::*;

#[test]
fn top_level_help_lists_the_commands_and_the_exit_codes() {
    let admin = Admin::new();
    let help = admin.run(&["--help"]).ok().to_string();
    // The help is wrapped to the terminal width: compare phrases with whitespace collapsed.
    let flat = help.split_whitespace().collect::<Vec<_>>().join(" ");
    for command in [
        "user",
        "generate",
        "list",
        "show",
        "edit",
        "regenerate",
        "copy",
        "remove",
        "methods",
        "key",
        "edge",
        "publish",
        "status",
        "serve",
        "audit",
        "config",
        "completions",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "{command} in {help}"
        );
    }
    for phrase in [
        "Exit codes",
        "0 success",
        "1 failure",
        "2 invalid input",
        "3 wrong password",
        "4 not found",
        "5 refused by a rule",
        "6 an edge did not accept",
        "--store",
        "PAT_ADMIN_STORE",
        "--json",
    ] {
        assert!(flat.contains(phrase), "{phrase} in {help}");
    }
    assert_eq!(admin.run(&["help"]).ok(), help, "`help` is `--help`");
    assert!(!admin.store().exists(), "help needs no store");
}

#[test]
fn every_subcommand_has_help() {
    let admin = Admin::new();
    for (command, phrase) in [
        (&["user"][..], "Accounts"),
        (&["user", "add"], "Create an account"),
        (&["user", "passwd"], "Change an account's password"),
        (&["user", "list"], "List accounts"),
        (&["generate"], "shown exactly once"),
        (&["list"], "Tokens: one account's, or every account's"),
        (&["show"], "One token in detail"),
        (
            &["edit"],
            "Change a token's description, expiry, scope, allowed client networks, environments",
        ),
        (&["regenerate"], "Give a token a new value"),
        (&["copy"], "Create a new token with the parameters"),
        (&["remove"], "Remove tokens"),
        (&["methods"], "API method catalogue"),
        (&["key"], "Ed25519 keys"),
        (&["key", "generate"], "Create a signing key"),
        (&["key", "list"], "List signing keys"),
        (&["key", "activate"], "key rotation"),
        (&["edge"], "The edges"),
        (&["edge", "add"], "Add an edge"),
        (&["edge", "remove"], "Remove an edge"),
        (&["edge", "list"], "List the configured edges"),
        (&["edge", "key"], "sign their usage reports"),
        (&["edge", "key", "generate"], "Create an edge's key"),
        (&["edge", "key", "list"], "List the registered edge keys"),
        (&["edge", "key", "remove"], "Remove an edge key"),
        (&["publish"], "Sign a snapshot"),
        (&["status"], "Ask edges which snapshot"),
        (&["serve"], "Serve signed snapshots"),
        (&["audit"], "audit log"),
        (&["config"], "Store settings"),
        (&["config", "show"], "Show the settings"),
        (&["config", "set"], "max-tokens-per-account"),
        (&["completions"], "shell completion script"),
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let run = admin.run(&args);
        let help = run.ok();
        assert!(help.contains(phrase), "{command:?}: {phrase} in {help}");
        assert!(help.contains("Usage: pat-admin"), "{command:?}: {help}");
    }
}

#[test]
fn change_commands_document_their_flags() {
    let admin = Admin::new();
    let generate = admin.run(&["generate", "--help"]).ok().to_string();
    for flag in [
        "--user",
        "--description",
        "--expires-at",
        "DD-MM-YYYY",
        "--api",
        "--method",
        "--output",
        "--password-stdin",
        "--no-publish",
        "--allow-ip <CIDR>",
        "--env <NAME>",
        "--rate-limit <N/s|N/min>",
    ] {
        assert!(generate.contains(flag), "{flag} in {generate}");
    }
    let edit = admin.run(&["edit", "--help"]).ok().to_string();
    let copy = admin.run(&["copy", "--help"]).ok().to_string();
    for flag in [
        "--env <NAME>",
        "--any-env",
        "--rate-limit <N/s|N/min>",
        "--no-rate-limit",
    ] {
        assert!(edit.contains(flag), "{flag} in {edit}");
        assert!(copy.contains(flag), "{flag} in {copy}");
    }
    for flag in ["--no-expiry", "--allow-ip <CIDR>", "--no-ip-limit"] {
        assert!(edit.contains(flag), "{flag} in {edit}");
    }
    let regenerate = admin.run(&["regenerate", "--help"]).ok().to_string();
    let flat = regenerate.split_whitespace().collect::<Vec<_>>().join(" ");
    for phrase in [
        "--grace <DURATION>",
        "Keep the old value working",
        "max-grace",
    ] {
        assert!(flat.contains(phrase), "{phrase} in {regenerate}");
    }
    // The two edit flags exclude each other.
    let err = admin
        .run(&[
            "edit",
            "--user",
            "alice",
            "1",
            "--allow-ip",
            "10.0.0.0/8",
            "--no-ip-limit",
        ])
        .fails(2)
        .to_string();
    assert!(err.contains("cannot be used with"), "{err}");
    for (set, clear) in [
        ("--env=a", "--any-env"),
        ("--rate-limit=1/s", "--no-rate-limit"),
    ] {
        let err = admin
            .run(&["edit", "--user", "alice", "1", set, clear])
            .fails(2)
            .to_string();
        assert!(err.contains("cannot be used with"), "{err}");
    }
}

#[test]
fn version_and_usage_errors() {
    let admin = Admin::new();
    let version = admin.run(&["--version"]).ok().to_string();
    assert_eq!(version, "pat-admin 0.1.0\n");
    let key = admin.run(&["key", "--version"]).ok().to_string();
    assert!(
        key.starts_with("pat-admin") && key.ends_with(" 0.1.0\n"),
        "propagated: {key}"
    );

    let err = admin.run(&[]).fails(2).to_string();
    assert!(err.contains("Usage: pat-admin"), "{err}");
    let err = admin.run(&["frobnicate"]).fails(2).to_string();
    assert!(err.contains("unrecognized subcommand"), "{err}");
    let err = admin
        .run(&["generate", "--user", "alice"])
        .fails(2)
        .to_string();
    assert!(
        err.contains("--description"),
        "a missing flag is named: {err}"
    );
    let err = admin
        .run(&["show", "--user", "alice", "one"])
        .fails(2)
        .to_string();
    assert!(err.contains("invalid value 'one'"), "{err}");
}
