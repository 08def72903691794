//! `key generate`, `key list`, `key activate`.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;

use pat_core::keys::SigningKey;
use serde::Serialize;

use super::{Ctx, create_secret_file, table};
use crate::cli::KeyCommand;
use crate::error::{Error, Result, exit};
use crate::expiry::rfc3339;
use crate::store::sealed::Sealer;
use crate::store::{KEYS_DIR, audit, keys};

/// Runs a `key` subcommand.
pub fn run(ctx: &mut Ctx, command: KeyCommand) -> Result<u8> {
    match command {
        KeyCommand::Generate { inactive } => generate(ctx, inactive),
        KeyCommand::List => {
            let list: Vec<KeyView> = keys::list(ctx.store.conn())?
                .iter()
                .map(KeyView::of)
                .collect();
            ctx.emit(&list, || {
                if list.is_empty() {
                    return "No signing keys yet (pat-admin key generate).\n".into();
                }
                table(
                    &["ID", "PUBLIC KEY", "CREATED", "ACTIVE"],
                    list.iter()
                        .map(|k| {
                            vec![
                                k.id.clone(),
                                k.public_key.clone(),
                                k.created_at.clone(),
                                if k.active { "yes" } else { "" }.into(),
                            ]
                        })
                        .collect(),
                )
            })?;
            Ok(exit::OK)
        }
        KeyCommand::Activate { id } => {
            ctx.store.write(|tx| {
                keys::activate(tx, &id)?;
                audit::record(tx, None, "key.activate", None, &format!("key {id}"))
            })?;
            #[derive(Serialize)]
            struct Activated<'a> {
                id: &'a str,
                active: bool,
            }
            ctx.emit(&Activated { id: &id, active: true }, || {
                format!("Key {id} now signs new snapshots. Keep the previous key trusted at the edges until every edge has a snapshot signed by {id}.\n")
            })?;
            Ok(exit::OK)
        }
    }
}

/// A key as the commands show it.
#[derive(Debug, Serialize)]
struct KeyView {
    id: String,
    public_key: String,
    /// RFC 3339.
    created_at: String,
    active: bool,
}

impl KeyView {
    fn of(k: &keys::Key) -> Self {
        Self {
            id: k.id.clone(),
            public_key: k.public_key.clone(),
            created_at: rfc3339(k.created_at),
            active: k.active,
        }
    }
}

/// Creates a key. On SQLite the private key goes to `keys/<id>.key` (0600, never
/// overwritten) before the store records it; on PostgreSQL it is sealed in the store with
/// the secret in `PAT_ADMIN_KEY_SECRET` (every replica signs with it). Active at once, or
/// (`inactive`) staged for `key activate`.
fn generate(ctx: &mut Ctx, inactive: bool) -> Result<u8> {
    let secret = SigningKey::generate().map_err(|e| Error::Random(e.to_string()))?;
    let public = secret.public_key();
    let id = public.id().to_string();
    let (file, sealed, path) = match ctx.store.dir() {
        Some(store_dir) => {
            let dir = store_dir.join(KEYS_DIR);
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&dir)
                .map_err(|e| Error::io(&dir, e))?;
            let relative = format!("{KEYS_DIR}/{id}.key");
            let path = store_dir.join(&relative);
            let mut file = create_secret_file(&path)?;
            file.write_all(secret.to_secret_text().as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| Error::io(&path, e))?;
            (relative, None, Some(path))
        }
        None => {
            let sealer = Sealer::from_env()?;
            let text = secret.to_secret_text();
            (String::new(), Some(sealer.seal(&id, &text)?), None)
        }
    };
    let row = keys::Key {
        id: id.clone(),
        public_key: public.to_string(),
        file,
        sealed,
        created_at: ctx.store.now(),
        active: !inactive,
    };
    let saved = ctx.store.write(|tx| {
        keys::add(tx, &row)?;
        let detail = if inactive {
            format!("key {id}, inactive")
        } else {
            format!("key {id}")
        };
        audit::record(tx, None, "key.generate", None, &detail)
    });
    if let Err(e) = saved {
        if let Some(path) = path {
            let _ = std::fs::remove_file(&path);
        }
        return Err(e);
    }
    ctx.emit(&KeyView::of(&row), || {
        if inactive {
            format!(
                "Key {id} created, not active: the current key keeps signing. Add its public key to the edges (filter public_keys, or PAT_PUBLIC_KEYS), then run pat-admin key activate {id}:\n{}\n",
                row.public_key
            )
        } else {
            format!(
                "Key {id} created and active. The edges must trust its public key (filter public_keys, or PAT_PUBLIC_KEYS):\n{}\n",
                row.public_key
            )
        }
    })?;
    Ok(exit::OK)
}
