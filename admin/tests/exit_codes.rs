//! Every exit code in the README's table, on the real binary, and the table itself: the
//! codes it lists are exactly the ones exercised here, and `--help` names each of them.

mod support;
use support::*;

/// The `| code | meaning |` rows of the README's exit-code table.
fn readme_codes() -> Vec<(u8, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let table = readme
        .split("| code | meaning |")
        .nth(1)
        .expect("the exit-code table");
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells[0].parse().expect("a code"), cells[1].to_string())
        })
        .collect()
}

#[test]
fn every_code_in_the_readme_is_what_the_binary_exits_with() {
    let codes = readme_codes();
    assert_eq!(
        codes.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        (0..=9).collect::<Vec<u8>>(),
        "{codes:?}"
    );
    let meaning = |code: u8| codes[usize::from(code)].1.clone();

    let admin = Admin::new();
    // 0
    admin.user("alice");
    assert!(meaning(0).contains("success"));

    // 1: the store, and the network setup: serve on an address in use.
    let err = Admin::new().run(&["user", "list"]).fails(1).to_string();
    assert!(err.contains("no pat-admin store"), "{err}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let err = admin
        .run(&["serve", "--listen", &format!("127.0.0.1:{port}")])
        .fails(1)
        .to_string();
    assert!(err.contains("cannot listen on"), "{err}");
    assert!(err.contains("choose another with --listen"), "{err}");
    assert!(meaning(1).contains("address in use"));

    // 2: invalid input.
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
            "2030-01-01",
        ])
        .fails(2)
        .to_string();
    assert!(err.contains("year first"), "{err}");
    assert!(meaning(2).contains("invalid input"));

    // 3: wrong password.
    admin
        .confirmed_with(
            &[
                "generate",
                "--user",
                "alice",
                "--description",
                "x",
                "--api",
                "marketplace",
            ],
            "wrong password!",
        )
        .fails(3);

    // 4: not found, an edge included.
    let err = admin
        .run(&["edge", "remove", "http://127.0.0.1:9"])
        .fails(4)
        .to_string();
    assert!(err.contains("is not a configured edge"), "{err}");
    admin.run(&["list", "--user", "ghost"]).fails(4);
    assert!(meaning(4).contains("edge"));

    // 5: refused by a rule, the maximum lifetime included.
    admin
        .run(&["config", "set", "max-lifetime-days", "30"])
        .ok();
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
            &date_in(31),
        ])
        .fails(5)
        .to_string();
    assert!(err.contains("beyond the maximum token lifetime"), "{err}");
    admin.run(&["publish"]).fails(5); // no signing key
    assert!(meaning(5).contains("maximum lifetime"));

    // 7: saved, not signed (no key, an edge configured).
    let down = format!("http://127.0.0.1:{}", free_port());
    admin.run(&["edge", "add", &down]).ok();
    admin
        .confirmed(&[
            "generate",
            "--user",
            "alice",
            "--description",
            "x",
            "--api",
            "marketplace",
            "--expires-at",
            &date_in(5),
        ])
        .fails(7);
    assert!(meaning(7).contains("saved but not signed"));

    // 6: an edge did not accept.
    admin.key();
    admin
        .run(&["publish", "--timeout", "1", "--deadline", "1"])
        .fails(6);
    admin.run(&["status", "--timeout", "1"]).fails(6);

    // 8: expiring tokens found.
    admin.run(&["list", "--expiring-within", "14d"]).fails(8);
    assert_eq!(
        admin.run(&["list", "--expiring-within", "1d"]).code,
        0,
        "none within a day"
    );

    // 9: another password check for the account is under way (a slot held, as a check
    // waiting out its back-off holds it, in this or another process).
    let in_a_minute = now_ms() + 60_000;
    admin
        .db()
        .execute(
            "INSERT INTO password_checks (key, holder, ends_at, stale_at) VALUES ('login:alice', 1, ?1, ?1)",
            [in_a_minute as i64],
        )
        .expect("a slot");
    let err = admin
        .confirmed(&["remove", "--user", "alice", "1"])
        .fails(9)
        .to_string();
    assert!(err.contains("too many attempts"), "{err}");
    assert!(
        err.contains("retry in 60 s") || err.contains("retry in 59 s"),
        "{err}"
    );
    assert!(meaning(9).contains("too many attempts"));

    let help = admin
        .run(&["--help"])
        .ok()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for code in 0..=9 {
        assert!(help.contains(&format!("{code} ")), "{code} in {help}");
    }
    assert!(
        help.contains("7 a change was saved but not signed"),
        "{help}"
    );
    assert!(help.contains("8 list --expiring-within"), "{help}");
    assert!(help.contains("9 too many attempts"), "{help}");
}
