//! Private signing keys sealed in the store, for stores several hosts share (PostgreSQL).
//!
//! Every replica must sign, and no replica's files are shared, so a PostgreSQL store keeps
//! each private key in `signing_keys.sealed`, encrypted with XChaCha20-Poly1305 under a key
//! derived (BLAKE3 `derive_key`) from the secret in `PAT_ADMIN_KEY_SECRET`, which every
//! replica gets from its environment (a Kubernetes Secret, a systemd credential). The key id
//! is the associated data: a sealed key moved to another row does not open. Whoever reads
//! the database alone gets no key; whoever has the database and the secret can sign, as
//! whoever has a SQLite store's `keys/` directory can.
//!
//! Layout of a sealed key: `pat-sealed-1` (12 bytes), a random 24-byte nonce, the
//! ciphertext of the key's secret text with its 16-byte tag.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The environment variable holding the sealing secret.
pub const SECRET_ENV: &str = "PAT_ADMIN_KEY_SECRET";
/// Shortest secret accepted, in bytes.
pub const MIN_SECRET: usize = 32;
const MAGIC: &[u8; 12] = b"pat-sealed-1";
const NONCE: usize = 24;
const CONTEXT: &str = "pat-admin 2026-12 signing keys sealed in the store";

/// The sealing key, derived from the secret.
pub struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    /// From `PAT_ADMIN_KEY_SECRET`; an error that says what to set when it is missing or
    /// short.
    pub fn from_env() -> Result<Self> {
        let secret = Zeroizing::new(std::env::var(SECRET_ENV).unwrap_or_default());
        Self::new(secret.as_bytes())
    }

    /// From a secret of at least [`MIN_SECRET`] bytes.
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_SECRET {
            return Err(Error::Invalid(format!(
                "a PostgreSQL store keeps its signing keys sealed with the secret in {SECRET_ENV}: set it to at least {MIN_SECRET} random characters, the same on every replica (e.g. {SECRET_ENV}=$(head -c 32 /dev/urandom | base64))"
            )));
        }
        let key = Zeroizing::new(blake3::derive_key(CONTEXT, secret));
        Ok(Self {
            cipher: XChaCha20Poly1305::new(key.as_slice().into()),
        })
    }

    /// Seals the secret text of key `id`.
    pub fn seal(&self, id: &str, secret_text: &str) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE];
        getrandom::fill(&mut nonce).map_err(|e| Error::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: secret_text.as_bytes(),
                    aad: id.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("cannot seal the key".into()))?;
        let mut out = Vec::with_capacity(MAGIC.len() + NONCE + sealed.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens key `id`'s sealed secret text.
    pub fn open(&self, id: &str, sealed: &[u8]) -> Result<Zeroizing<String>> {
        let refuse = || {
            Error::Invalid(format!(
                "signing key {id} does not open with the secret in {SECRET_ENV}: give this replica the same secret as the one that created the key"
            ))
        };
        let body = sealed.strip_prefix(MAGIC.as_slice()).ok_or_else(refuse)?;
        if body.len() < NONCE {
            return Err(refuse());
        }
        let (nonce, ciphertext) = body.split_at(NONCE);
        let plain = Zeroizing::new(
            self.cipher
                .decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: id.as_bytes(),
                    },
                )
                .map_err(|_| refuse())?,
        );
        String::from_utf8(plain.to_vec())
            .map(Zeroizing::new)
            .map_err(|_| refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn a_sealed_key_opens_with_the_same_secret_and_id_only() {
        let sealer = Sealer::new(SECRET).unwrap();
        let sealed = sealer.seal("k1", "ed25519-secret:abc").unwrap();
        assert!(
            !sealed.windows(3).any(|w| w == b"abc"),
            "the text is not in the clear"
        );
        assert_eq!(
            sealer.open("k1", &sealed).unwrap().as_str(),
            "ed25519-secret:abc"
        );
        assert!(sealer.open("k2", &sealed).is_err(), "bound to its key id");
        let other = Sealer::new(b"another secret, also 32 bytes long!").unwrap();
        assert!(other.open("k1", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open("k1", &tampered).is_err());
        assert!(sealer.open("k1", b"pat-sealed-1").is_err());
    }

    #[test]
    fn a_short_secret_is_refused_with_what_to_set() {
        let Err(e) = Sealer::new(b"short") else {
            panic!("accepted a short secret")
        };
        assert!(e.to_string().contains(SECRET_ENV));
    }
}
