//! The smaller defects of issue 9, each on the real binary.

mod support;
use support::*;

#[test]
fn methods_with_a_token_id_needs_only_checked() {
    let admin = Admin::new();
    let err = admin.run(&["methods", "2"]).fails(2).to_string();
    assert!(err.contains("--only-checked"), "{err}");
    let err = admin
        .run(&["methods", "--user", "alice"])
        .fails(2)
        .to_string();
    assert!(err.contains("--only-checked"), "{err}");
}

#[test]
fn audit_of_an_unknown_account_is_not_found() {
    let admin = Admin::new();
    admin.user("alice");
    let err = admin
        .run(&["audit", "--user", "nobody"])
        .fails(4)
        .to_string();
    assert!(err.contains("no account named nobody"), "{err}");
    assert!(
        admin
            .run(&["audit", "--user", "ALICE"])
            .ok()
            .contains("user.add")
    );
}

#[test]
fn the_password_back_off_is_announced() {
    let admin = Admin::new();
    admin.user("alice");
    let args = [
        "generate",
        "--user",
        "alice",
        "--description",
        "x",
        "--api",
        "marketplace",
    ];
    admin.confirmed_with(&args, "wrong password!").fails(3);
    admin.confirmed_with(&args, "wrong password!").fails(3);
    let run = admin.confirmed(&args);
    run.ok();
    assert!(
        run.stderr.contains("Checking the password in 0.5 s"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("2 wrong password(s) in a row"),
        "{}",
        run.stderr
    );
}

#[test]
fn show_states_the_scope_once() {
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token(
        "alice",
        &["--method", "env.control.stopenv,env.control.startenv"],
    );
    let shown = admin
        .run(&["show", "--user", "alice", &id.to_string()])
        .ok()
        .to_string();
    let scope = shown
        .lines()
        .find(|l| l.starts_with("scope"))
        .expect("scope line");
    assert_eq!(
        scope.split_whitespace().collect::<Vec<_>>(),
        ["scope", "2", "methods"],
        "{scope}"
    );
    let (id, _) = admin.token("alice", &["--api", "marketplace"]);
    let shown = admin
        .run(&["show", "--user", "alice", &id.to_string()])
        .ok()
        .to_string();
    assert!(shown.contains("Marketplace ("), "{shown}");
}

#[test]
fn a_no_op_edit_changes_nothing_and_is_not_audited() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    let (id, _) = admin.token(
        "alice",
        &["--api", "marketplace", "--expires-at", &date_in(5)],
    );
    let before = admin.audit().len();
    let version =
        |admin: &Admin| admin.run(&["--json", "config", "show"]).json()["last_version"].clone();
    let v = version(&admin);
    // No password on stdin: none is asked for.
    let run = admin.run(&[
        "edit",
        "--user",
        "alice",
        &id.to_string(),
        "--description",
        "test token",
        "--expires-at",
        &date_in(5),
    ]);
    run.ok();
    assert!(run.stderr.contains("unchanged"), "{}", run.stderr);
    assert!(!run.stderr.contains("updated"), "{}", run.stderr);
    let json = admin
        .run(&[
            "--json",
            "edit",
            "--user",
            "alice",
            &id.to_string(),
            "--api",
            "marketplace",
        ])
        .json();
    assert_eq!(json["changed"], false);
    assert_eq!(admin.audit().len(), before, "not audited");
    assert_eq!(version(&admin), v, "nothing signed");
    // A real change still is.
    let json = admin
        .confirmed(&[
            "--json",
            "edit",
            "--user",
            "alice",
            &id.to_string(),
            "--description",
            "new",
        ])
        .json();
    assert_eq!(json["changed"], true);
    assert_eq!(admin.audit()[1]["action"], "token.edit");
}

#[test]
fn account_names_are_case_insensitive_and_kept_as_created() {
    let admin = Admin::new();
    admin.user("Alice");
    let err = admin
        .run_with(
            &["user", "add", "alice", "--password-stdin"],
            &format!("{PASSWORD}\n"),
        )
        .fails(5)
        .to_string();
    assert!(
        err.contains("an account named Alice already exists"),
        "{err}"
    );
    assert!(err.contains("case-insensitive"), "{err}");
    let public = admin.key();
    let (id, value) = admin.token("ALICE", &["--api", "marketplace"]);
    let listed = admin.tokens("alice");
    assert_eq!(listed[0]["user"], "Alice", "stored as created");
    admin
        .run(&["show", "--user", "aLiCe", &id.to_string()])
        .ok();
    // The snapshot (what edges forward as x-pat-user) has the stored name.
    let server = admin.serve();
    let snapshot = server.snapshot(&public);
    let entry = snapshot
        .find(&pat_core::token::TokenHash::of(&value))
        .expect("the token is in the snapshot");
    assert_eq!(entry.user(), "Alice");
    admin
        .confirmed(&["remove", "--user", "alice", &id.to_string()])
        .ok();
    assert!(admin.tokens("Alice").is_empty());
}

#[test]
fn bash_completion_of_api_offers_the_sets() {
    let admin = Admin::new();
    let script = admin.run(&["completions", "bash"]).ok().to_string();
    let api = script
        .lines()
        .skip_while(|l| !l.contains("--api)"))
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        api.contains("ide-plugins marketplace maven-plugin"),
        "{api}"
    );
    assert!(!api.contains("compgen -f"), "{api}");
}

#[test]
fn dates_say_which_part_is_wrong() {
    let admin = Admin::new();
    admin.user("alice");
    for (date, says) in [
        ("31-02-2027", "February 2027 has no day 31"),
        ("2027-12-31", "has the year first"),
        ("12-13-2027", "month 13 does not exist"),
    ] {
        let err = admin
            .confirmed(&[
                "generate",
                "--user",
                "alice",
                "--description",
                "x",
                "--api",
                "marketplace",
                "--expires-at",
                date,
            ])
            .fails(2)
            .to_string();
        assert!(err.contains(says), "{date}: {err}");
    }
}

#[test]
fn publishing_twice_without_a_change_keeps_the_version() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    admin.token("alice", &["--api", "marketplace"]);
    let first = admin.run(&["--json", "publish"]).json();
    let second = admin.run(&["--json", "publish"]).json();
    assert_eq!(first["version"], second["version"]);
    assert_eq!(second["built"], false);
}

#[test]
fn serve_listens_on_a_host_name() {
    let admin = Admin::new();
    admin.user("alice");
    let port = free_port();
    let mut child = admin
        .std_command()
        .args(["serve", "--listen", &format!("localhost:{port}")])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("starts");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut answered = None;
    while std::time::Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            || std::net::TcpStream::connect(("::1", port)).is_ok()
        {
            answered = Some(());
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("serve exited: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        answered.is_some(),
        "serve --listen localhost:{port} did not listen"
    );
    let err = admin
        .run(&["serve", "--listen", "localhost"])
        .fails(2)
        .to_string();
    assert!(err.contains("HOST:PORT"), "{err}");
}
