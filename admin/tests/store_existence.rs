//! A store is created only by the commands that set one up; every other command says there
//! is none. A database that is empty or not pat-admin's is refused, never silently replaced.

mod support;
use support::*;

#[test]
fn read_only_commands_do_not_create_a_store() {
    let admin = Admin::sqlite();
    for args in [
        &["list", "--user", "alice"][..],
        &["user", "list"],
        &["key", "list"],
        &["edge", "list"],
        &["audit"],
        &["config", "show"],
        &["publish"],
        &["show", "--user", "alice", "1"],
    ] {
        let err = admin.run(args).fails(1).to_string();
        assert!(err.contains("no pat-admin store in"), "{args:?}: {err}");
        assert!(err.contains("pat-admin user add"), "{args:?}: {err}");
        assert!(
            !admin.store().exists(),
            "{args:?} created {}",
            admin.store().display()
        );
    }
    let run = admin.run(&["--json", "user", "list"]);
    run.fails(1);
    let error: serde_json::Value = serde_json::from_str(run.stderr.trim()).expect("JSON");
    assert_eq!(error["exit_code"], 1);
    // The catalogue needs no store.
    admin.run(&["methods", "--search", "stopenv"]).ok();
    assert!(!admin.store().exists());
}

#[test]
fn the_commands_that_set_up_a_store_create_it() {
    for args in [
        &["key", "generate"][..],
        &["edge", "add", "http://127.0.0.1:10001"],
        &["config", "set", "max-lifetime-days", "90"],
    ] {
        let admin = Admin::sqlite();
        admin.run(args).ok();
        assert!(admin.store().join("pat-admin.db").is_file(), "{args:?}");
        assert_eq!(mode(&admin.store()), 0o700, "{args:?}");
        admin.run(&["user", "list"]).ok();
    }
    let admin = Admin::sqlite();
    admin.user("alice");
    assert!(admin.store().join("pat-admin.db").is_file());
}

#[test]
fn an_emptied_database_next_to_key_files_is_refused() {
    let admin = Admin::sqlite();
    admin.user("alice");
    admin.key();
    std::fs::write(admin.store().join("pat-admin.db"), b"").expect("truncate");
    for args in [
        &["user", "list"][..],
        &["key", "list"],
        &["key", "generate"],
        &["user", "add", "bob"],
    ] {
        let err = admin
            .run_with(args, &format!("{PASSWORD}\n"))
            .fails(1)
            .to_string();
        assert!(
            err.contains("is empty but keys/ holds key files"),
            "{args:?}: {err}"
        );
        assert!(err.contains("restore it from a backup"), "{args:?}: {err}");
    }
    assert_eq!(
        std::fs::metadata(admin.store().join("pat-admin.db"))
            .expect("db")
            .len(),
        0,
        "left as it was"
    );

    // The database gone altogether, keys/ still there: the same refusal.
    std::fs::remove_file(admin.store().join("pat-admin.db")).expect("rm");
    let err = admin.run(&["key", "generate"]).fails(1).to_string();
    assert!(
        err.contains("is missing but keys/ still holds key files"),
        "{err}"
    );
}

#[test]
fn a_foreign_database_is_refused() {
    let admin = Admin::sqlite();
    std::fs::create_dir(admin.store()).expect("dir");
    let db = admin.store().join("pat-admin.db");
    rusqlite::Connection::open(&db)
        .expect("open")
        .execute_batch("CREATE TABLE notes (text TEXT);")
        .expect("a table");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    for args in [&["user", "list"][..], &["key", "generate"]] {
        let err = admin.run(args).fails(1).to_string();
        assert!(
            err.contains("is not a pat-admin database"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_store_directory_open_to_others_is_warned_about() {
    use std::os::unix::fs::PermissionsExt;
    let admin = Admin::sqlite();
    admin.user("alice");
    std::fs::set_permissions(admin.store(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let run = admin.run(&["user", "list"]);
    run.ok();
    assert!(run.stderr.contains("warning:"), "{}", run.stderr);
    assert!(run.stderr.contains("mode 777"), "{}", run.stderr);
    assert!(run.stderr.contains("chmod 700"), "{}", run.stderr);
    let run = admin.run(&["--json", "user", "list"]);
    run.ok();
    let warning: serde_json::Value = serde_json::from_str(run.stderr.trim()).expect("JSON");
    assert!(
        warning["warning"]
            .as_str()
            .expect("text")
            .contains("chmod 700")
    );
}

/// A process that opens the store a second time (the API's connections next to `serve`'s
/// re-signer) must keep SQLite's locks: another process closing its connection must not take
/// itself for the last one and delete the WAL that this process still writes to.
#[test]
fn opening_the_store_again_in_one_process_loses_no_commit() {
    let admin = Admin::sqlite();
    admin.user("alice");
    let mut first =
        pat_admin::store::Store::open_as(admin.store(), pat_admin::store::Open::Existing)
            .expect("open");
    let _second = pat_admin::store::Store::open_as(admin.store(), pat_admin::store::Open::Existing)
        .expect("open again");
    // Another process writes and closes its connection (Python's sqlite3: an operator's
    // script, or a test backdating a row; python3 is needed by scripts/test anyway).
    let other = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys\ndb = sqlite3.connect(sys.argv[1])\nwith db: db.execute(\"UPDATE users SET created_at = created_at\")\ndb.close()",
        ])
        .arg(admin.store().join("pat-admin.db"))
        .status()
        .expect("python3 runs");
    assert!(other.success());
    first
        .write(|tx| pat_admin::store::users::add(tx, "carol", "$argon2id$x", 1))
        .expect("commit");
    drop(first);
    let names = admin.run(&["user", "list"]);
    assert!(names.ok().contains("carol"), "{}", names.stdout);
}
