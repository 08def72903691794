//! Stores as earlier releases left them, for the migration tests: the files as pat-admin
//! creates them, and the rows every schema has had since the first.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use pat_core::keys::SigningKey;
use rusqlite::{Connection, params};

use super::{Admin, PASSWORD};

/// Creates `admin`'s store directory and `keys/` (0700) and an empty database (0600, WAL), as
/// any release does; the caller writes the old schema into it.
pub fn create(admin: &Admin) -> (PathBuf, Connection) {
    let dir = admin.store();
    for path in [dir.clone(), dir.join("keys")] {
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .expect("store dir");
    }
    let db = dir.join("pat-admin.db");
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&db)
        .expect("db file");
    let conn = Connection::open(&db).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL")
        .expect("wal");
    (dir, conn)
}

/// Adds an active signing key (its file under `dir` and its row) and the account `alice`
/// (password [`PASSWORD`]); returns the key.
pub fn add_key_and_alice(conn: &Connection, dir: &Path) -> SigningKey {
    let secret = SigningKey::generate().expect("rng");
    let public = secret.public_key();
    let id = public.id().to_string();
    let file = format!("keys/{id}.key");
    std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(dir.join(&file))
        .expect("key file")
        .write_all(secret.to_secret_text().as_bytes())
        .expect("write key");
    conn.execute(
        "INSERT INTO signing_keys (id, public_key, file, created_at, active) VALUES (?1, ?2, ?3, 1, 1)",
        params![id, public.to_string(), file],
    )
    .expect("key row");
    let hash = pat_admin::password::hash(PASSWORD).expect("argon2");
    conn.execute(
        "INSERT INTO users (name, password_hash, created_at) VALUES ('alice', ?1, 1)",
        [hash],
    )
    .expect("account");
    secret
}
