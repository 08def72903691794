//! pat-admin's store on a PostgreSQL server that accepts TLS connections only: with
//! `sslmode=verify-full` and the server's CA as `sslrootcert` every command works (plain TCP
//! is rejected by the server, so working proves TLS); a CA that did not sign the server's
//! certificate, or `sslmode=disable`, is a clear error and changes nothing.
//!
//! Needs root and Debian's PostgreSQL server binaries (a cluster of the test's own, as
//! `scripts/test` installs them); skips without them, saying why.

use std::process::Command;

use pat_e2e::fleet::{PrivatePostgres, make_ca};
use pat_e2e::{admin_json, binary, run_admin};

fn admin(store: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(binary("pat-admin"));
    command.arg("--store").arg(store).args(args).env(
        "PAT_ADMIN_KEY_SECRET",
        "0123456789abcdef0123456789abcdef-tls-test",
    );
    run_admin(command, "")
}

#[test]
fn a_tls_only_server_is_reached_with_a_verified_certificate_and_nothing_else() {
    let cluster = match PrivatePostgres::start_tls_only() {
        Ok(cluster) => cluster,
        Err(why) => {
            eprintln!("skipped: {why}");
            return;
        }
    };
    let ca = cluster.ca_file().display().to_string();
    let base = format!("{}/postgres", cluster.server());
    let verified = format!("{base}?sslmode=verify-full&sslrootcert={ca}");

    // A new store: created (schema, a sealed signing key), then read back.
    let key = admin(&verified, &["key", "generate"]);
    assert!(
        key.status.success(),
        "{}",
        String::from_utf8_lossy(&key.stderr)
    );
    let config = admin_json(
        &["config", "show"],
        admin(&verified, &["--json", "config", "show"]),
    );
    assert!(config.is_object(), "{config}");
    let status = admin_json(
        &["audit"],
        admin(&verified, &["--json", "audit", "--limit", "5"]),
    );
    assert!(
        status.as_array().is_some_and(|e| !e.is_empty()),
        "the key generation is audited: {status}"
    );

    // The server only takes TLS: without it, refused by the server.
    let plain = admin(
        &format!("{base}?sslmode=disable"),
        &["--json", "config", "show"],
    );
    assert!(!plain.status.success());
    let error = String::from_utf8_lossy(&plain.stderr);
    assert!(
        error.contains("no encryption") || error.contains("pg_hba.conf"),
        "{error}"
    );

    // A CA that did not sign the server's certificate: the connection is refused by
    // pat-admin, with a message naming the certificate.
    let other = tempfile::tempdir().expect("dir");
    let other_ca = make_ca(other.path(), "other-ca", "someone else").expect("a CA");
    let wrong = format!("{base}?sslmode=require&sslrootcert={}", other_ca.display());
    let refused = admin(&wrong, &["--json", "config", "show"]);
    assert!(!refused.status.success());
    let error = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(error.contains("certificate"), "{error}");

    // Without sslrootcert, the system's roots: they do not hold the test CA either.
    let system = admin(
        &format!("{base}?sslmode=require"),
        &["--json", "config", "show"],
    );
    assert!(!system.status.success());
    assert!(
        String::from_utf8_lossy(&system.stderr)
            .to_lowercase()
            .contains("certificate")
    );
    // And no password or secret in what was printed.
    assert!(!String::from_utf8_lossy(&refused.stderr).contains("0123456789abcdef"));
}
