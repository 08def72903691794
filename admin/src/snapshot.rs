//! Building the signed snapshot from the store: every token not expired now, signed by the
//! active key, with the next version. The signed bytes are kept in the store for `serve` and
//! `publish --resend`.

use std::collections::HashMap;
use std::path::Path;

use pat_core::keys::SigningKey;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, TokenSpec};
use pat_core::token::TokenHash;

use crate::error::{Error, Result};
use crate::store::snapshots::{self, Published};
use crate::store::{Store, audit, keys, now, tokens};

/// Reads the active signing key from its file.
pub fn active_key(store: &Store) -> Result<(keys::Key, SigningKey)> {
    let key = keys::active(store.conn())?.ok_or_else(|| {
        Error::Refused("no signing key: create one with pat-admin key generate".into())
    })?;
    let secret = load_key(&store.dir().join(&key.file))?;
    if secret.public_key().to_string() != key.public_key {
        return Err(Error::Store {
            dir: store.dir().to_path_buf(),
            message: format!("the key file {} does not match key {}", key.file, key.id),
        });
    }
    Ok((key, secret))
}

fn load_key(path: &Path) -> Result<SigningKey> {
    let text =
        zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?);
    SigningKey::from_secret_text(&text).map_err(|e| Error::Store {
        dir: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Builds, signs and stores a new snapshot of the active tokens.
pub fn build(store: &mut Store) -> Result<Published> {
    let (key, secret) = active_key(store)?;
    store.write(|tx| {
        let issued_at = now();
        let version = snapshots::next_version(tx)?;
        let mut builder = SnapshotBuilder::new();
        // Scopes repeat across tokens: parse each distinct list once.
        let mut parsed: HashMap<String, Vec<MethodName>> = HashMap::new();
        tokens::for_each_published(tx, issued_at, |t| {
            if !parsed.contains_key(t.methods) {
                let methods = t
                    .methods
                    .split_whitespace()
                    .map(MethodName::parse)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| {
                        Error::Invalid(format!("token {} has an invalid stored scope: {e}", t.id))
                    })?;
                parsed.insert(t.methods.to_string(), methods);
            }
            let scope = parsed.get(t.methods).map(Vec::as_slice).unwrap_or_default();
            let hash = TokenHash(t.hash.try_into().map_err(|_| {
                Error::Invalid(format!(
                    "token {} has a stored hash of the wrong size",
                    t.id
                ))
            })?);
            builder
                .add(TokenSpec {
                    hash,
                    id: t.id as u64,
                    user: t.user,
                    expires_at: t.expires_at,
                    scope,
                })
                .map_err(|e| Error::Invalid(format!("cannot publish: {e}")))
        })?;
        let count = builder.len() as u64;
        let bytes = builder
            .build(
                pat_core::snapshot::Stamp::lasting(version, issued_at, 24 * 3600),
                &secret,
            )
            .map_err(|e| Error::Invalid(format!("cannot publish: {e}")))?;
        let published = Published {
            version,
            issued_at,
            key_id: key.id.clone(),
            tokens: count,
            bytes,
        };
        snapshots::save(tx, &published)?;
        audit::record(
            tx,
            None,
            "snapshot.build",
            None,
            &format!("version {version}, {count} tokens, key {}", key.id),
        )?;
        Ok(published)
    })
}
