//! `config set snapshot-lifetime DURATION`: 60 s to 30 d, default 24 h, shown by
//! `config show`, audited, and stamped on every snapshot as its signed expiry. A bad value
//! exits 2 and changes nothing.

mod support;

use pat_core::snapshot::verify;
use support::*;

fn lifetime(admin: &Admin) -> serde_json::Value {
    admin.run(&["--json", "config", "show"]).json()["snapshot_lifetime_secs"].clone()
}

/// The signed lifetime (expires_at - issued_at) of the latest stored document.
fn signed_lifetime(admin: &Admin, key: &str) -> u64 {
    let bytes: Vec<u8> = admin
        .db()
        .query_row(
            "SELECT bytes FROM snapshots ORDER BY version DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .expect("a stored snapshot");
    let header = verify(&bytes, &trusted(key)).expect("verifies");
    header.expires_at - header.issued_at
}

#[test]
fn the_lifetime_is_a_setting_stamped_on_every_snapshot() {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    assert_eq!(lifetime(&admin), 86_400, "default 24 h");
    let human = admin.run(&["config", "show"]).ok().to_string();
    let line = human
        .lines()
        .find(|l| l.starts_with("snapshot-lifetime"))
        .unwrap_or_else(|| panic!("no snapshot-lifetime line: {human}"));
    assert!(
        line.contains("1d") && line.contains("re-signs every 6h"),
        "{line}"
    );

    admin.token("alice", &["--api", "ide-plugins"]);
    assert_eq!(signed_lifetime(&admin, &key), 86_400);

    for (given, secs) in [
        ("90m", 5_400),
        ("7d", 604_800),
        ("60s", 60),
        ("30d", 2_592_000),
        (" 24h ", 86_400),
        ("36h", 129_600),
    ] {
        let run = admin.run(&["--json", "config", "set", "snapshot-lifetime", given]);
        run.ok();
        assert_eq!(run.json()["snapshot_lifetime_secs"], secs, "{given}");
        admin.token("alice", &["--api", "ide-plugins"]);
        assert_eq!(signed_lifetime(&admin, &key), secs, "{given}");
    }
    let audited: Vec<_> = admin
        .audit()
        .iter()
        .filter(|e| e["action"] == "config.set")
        .map(|e| e["detail"].as_str().expect("detail").to_string())
        .collect();
    assert_eq!(
        audited,
        [
            "snapshot-lifetime = 36h",
            "snapshot-lifetime = 1d",
            "snapshot-lifetime = 30d",
            "snapshot-lifetime = 1m",
            "snapshot-lifetime = 7d",
            "snapshot-lifetime = 90m",
        ]
    );
}

#[test]
fn bad_lifetimes_exit_2_and_change_nothing() {
    let admin = Admin::new();
    admin
        .run(&["config", "set", "snapshot-lifetime", "90m"])
        .ok();
    let audit_before = admin.audit().len();
    for (bad, says) in [
        ("59s", "outside the allowed range, 1m to 30d"),
        ("0s", "outside the allowed range"),
        ("31d", "outside the allowed range"),
        ("721h", "outside the allowed range"),
        ("24", "is not a duration"),
        ("1.5h", "is not a duration"),
        ("-1h", "is not a duration"),
        ("24H", "is not a duration"),
        ("1w", "is not a duration"),
        ("1d2h", "is not a duration"),
        ("", "is not a duration"),
        ("none", "is not a duration"),
        ("99999999999999999999d", "too long"),
    ] {
        // `--`: "-1h" is a value, not a flag.
        let err = admin
            .run(&["config", "set", "snapshot-lifetime", "--", bad])
            .fails(2)
            .to_string();
        assert!(
            err.contains("snapshot-lifetime") && err.contains(says),
            "{bad:?}: {err}"
        );
        assert_eq!(lifetime(&admin), 5_400, "{bad:?} changed nothing");
    }
    assert_eq!(admin.audit().len(), audit_before, "nothing audited");
    let err = admin
        .run(&["config", "set", "snapshot-lifetime", "5"])
        .fails(2)
        .to_string();
    assert!(err.contains("e.g. 90m, 24h or 7d"), "says how: {err}");
    let help = admin.run(&["config", "set", "--help"]).ok().to_string();
    assert!(help.contains("snapshot-lifetime"), "{help}");
}
