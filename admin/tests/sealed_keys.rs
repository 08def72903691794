//! A PostgreSQL store keeps its signing keys sealed with `PAT_ADMIN_KEY_SECRET`: no
//! private key in the database in the clear, a key made without the secret is refused with
//! what to set, and a replica given another secret refuses to sign (nothing is committed)
//! and says why.
//!
//! Needs a PostgreSQL server (`PAT_TEST_POSTGRES`, set by `scripts/test` for both engines'
//! runs); without one it says so and stops.

mod support;

use support::*;

fn postgres_store() -> Option<Admin> {
    if std::env::var_os("PAT_TEST_POSTGRES").is_none() {
        eprintln!("PAT_TEST_POSTGRES is not set: no PostgreSQL server");
        return None;
    }
    Some(Admin {
        dir: tempfile::TempDir::new().expect("temp dir"),
        pg: Some(PgDatabase::create()),
    })
}

#[test]
fn keys_are_sealed_and_need_the_same_secret() {
    let Some(admin) = postgres_store() else {
        return;
    };
    admin.user("alice");

    // Without the secret: refused, nothing stored.
    let run = admin
        .command()
        .env_remove("PAT_ADMIN_KEY_SECRET")
        .args(["key", "generate"])
        .output()
        .expect("runs");
    let run = Run::from_output(run);
    let err = run.fails(2);
    assert!(err.contains("PAT_ADMIN_KEY_SECRET"), "{err}");
    assert!(
        admin
            .run(&["--json", "key", "list"])
            .json()
            .as_array()
            .expect("keys")
            .is_empty()
    );

    // With it: a key whose private half is nowhere in the database in the clear.
    admin.key();
    for (table, bytes) in admin.store_files() {
        assert!(
            !bytes.windows(14).any(|w| w == b"ed25519-secret"),
            "a private key in the clear in {}",
            table.display()
        );
    }
    let (id, _) = admin.token("alice", &["--method", "environment.control.stopenv"]);

    // Another secret: the change cannot be signed, so it is not made, and the error says why.
    let before = admin.tokens("alice");
    let run = admin
        .command()
        .env(
            "PAT_ADMIN_KEY_SECRET",
            "another secret that is long enough, 32+",
        )
        .args([
            "remove",
            "--user",
            "alice",
            &id.to_string(),
            "--password-stdin",
        ])
        .write_stdin(format!("{PASSWORD}\n"))
        .output()
        .expect("runs");
    let run = Run::from_output(run);
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("does not open with the secret in PAT_ADMIN_KEY_SECRET"),
        "{}",
        run.stderr
    );
    assert_eq!(admin.tokens("alice"), before, "nothing changed");
}
