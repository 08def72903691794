//! Ed25519 keys that sign snapshots, in the text forms operators copy around.
//!
//! - Public key: `ed25519:` + base64url (no padding) of the 32 key bytes. This exact text is
//!   what `pat-admin key generate` prints, what the filter's `public_keys` configuration and
//!   the `PAT_PUBLIC_KEYS` environment variable (comma-separated) accept.
//! - Key id: the first 8 bytes of SHA-256 of the public key, in hex. A snapshot names the
//!   key that signed it, so the filter can hold several keys during a rotation.
//! - Secret key: `ed25519-secret:` + base64url of the 32-byte seed (stored by pat-admin in
//!   a `0600` file; never printed).

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer as _, VerifyingKey};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const PUBLIC_PREFIX: &str = "ed25519:";
const SECRET_PREFIX: &str = "ed25519-secret:";

/// Why a key text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Missing the `ed25519:` prefix.
    #[error("`{0}` is not a public key: expected `ed25519:` followed by 43 base64url characters")]
    Prefix(String),
    /// The base64 part is not 32 bytes of base64url.
    #[error(
        "`{0}` is not a public key: the part after `ed25519:` must be 43 base64url characters (32 bytes)"
    )]
    Encoding(String),
    /// 32 bytes that are not a valid Ed25519 point.
    #[error("`{0}` is not a valid Ed25519 public key")]
    Point(String),
    /// A secret key file that is not in the expected form. The content is never echoed.
    #[error("the secret key is not in the `ed25519-secret:<base64url>` form")]
    Secret,
    /// An empty list of trusted keys.
    #[error("no trusted public keys were given")]
    NoKeys,
}

/// Identifies a public key: the first 8 bytes of its SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 8]);

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// An Ed25519 public key trusted to sign snapshots.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    fn from_verifying(key: VerifyingKey) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let mut id = [0u8; 8];
        id.copy_from_slice(digest.get(..8).unwrap_or(&[0u8; 8]));
        Self { key, id: KeyId(id) }
    }

    /// This key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// Verifies an Ed25519 signature (strict: no malleable or small-order encodings).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verify_strict(message, &signature).is_ok()
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let encoded = text
            .strip_prefix(PUBLIC_PREFIX)
            .ok_or_else(|| KeyError::Prefix(shorten(text)))?;
        let bytes: [u8; 32] = URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeyError::Encoding(shorten(text)))?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Point(shorten(text)))?;
        Ok(Self::from_verifying(key))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PUBLIC_PREFIX}{}",
            URL_SAFE_NO_PAD.encode(self.key.as_bytes())
        )
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self}, id {})", self.id)
    }
}

/// Public keys quoted in error messages are cut short: they can come from anywhere.
fn shorten(text: &str) -> String {
    let mut out: String = text.chars().take(60).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// The set of public keys a filter accepts snapshots from (several during a rotation).
#[derive(Clone, Debug, Default)]
pub struct TrustedKeys(Vec<PublicKey>);

impl TrustedKeys {
    /// Builds the set, dropping duplicates.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let mut out: Vec<PublicKey> = Vec::new();
        for key in keys {
            if !out.contains(&key) {
                out.push(key);
            }
        }
        Self(out)
    }

    /// Parses a comma-separated list (the `PAT_PUBLIC_KEYS` form). Blank items are ignored.
    pub fn parse_list(list: &str) -> Result<Self, KeyError> {
        let keys = list
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(PublicKey::from_str)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(keys))
    }

    /// The key with this id, if trusted.
    pub fn get(&self, id: KeyId) -> Option<&PublicKey> {
        self.0.iter().find(|k| k.id == id)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no key is trusted (nothing can be accepted).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The trusted keys.
    pub fn iter(&self) -> impl Iterator<Item = &PublicKey> {
        self.0.iter()
    }
}

/// An Ed25519 signing key. Its seed is wiped on drop and never printed by `Debug`.
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A new key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut_slice())?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Parses the `ed25519-secret:<base64url>` text form.
    pub fn from_secret_text(text: &str) -> Result<Self, KeyError> {
        let encoded = text
            .trim()
            .strip_prefix(SECRET_PREFIX)
            .ok_or(KeyError::Secret)?;
        let bytes = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(encoded)
                .map_err(|_| KeyError::Secret)?,
        );
        let seed: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Secret)?;
        Ok(Self(ed25519_dalek::SigningKey::from_bytes(seed)))
    }

    /// The `ed25519-secret:<base64url>` text form, for a `0600` key file.
    pub fn to_secret_text(&self) -> Zeroizing<String> {
        let seed = Zeroizing::new(self.0.to_bytes());
        Zeroizing::new(format!(
            "{SECRET_PREFIX}{}\n",
            URL_SAFE_NO_PAD.encode(seed.as_slice())
        ))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_verifying(self.0.verifying_key())
    }

    /// Signs a message.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_text_round_trip() {
        let key = SigningKey::generate().expect("rng");
        let public = key.public_key();
        let text = public.to_string();
        assert!(text.starts_with("ed25519:"));
        assert_eq!(text.len(), "ed25519:".len() + 43);
        assert_eq!(text.parse::<PublicKey>(), Ok(public.clone()));
        assert_eq!(format!(" {text}\n").parse::<PublicKey>(), Ok(public));
    }

    #[test]
    fn bad_public_keys_are_explained() {
        assert!(matches!(
            "abc".parse::<PublicKey>(),
            Err(KeyError::Prefix(_))
        ));
        assert!(matches!(
            "ed25519:abc".parse::<PublicKey>(),
            Err(KeyError::Encoding(_))
        ));
        assert!(matches!(
            "ed25519:!!!".parse::<PublicKey>(),
            Err(KeyError::Encoding(_))
        ));
        let long = format!("ed25519:{}", "A".repeat(500));
        let Err(KeyError::Encoding(quoted)) = long.parse::<PublicKey>() else {
            panic!("expected an encoding error");
        };
        assert!(quoted.chars().count() <= 61);
    }

    #[test]
    fn secret_text_round_trip_and_signatures() {
        let key = SigningKey::generate().expect("rng");
        let again = SigningKey::from_secret_text(&key.to_secret_text()).expect("round trip");
        assert_eq!(key.public_key(), again.public_key());
        let signature = key.sign(b"message");
        assert!(key.public_key().verify(b"message", &signature));
        assert!(!key.public_key().verify(b"massage", &signature));
        let other = SigningKey::generate().expect("rng");
        assert!(!other.public_key().verify(b"message", &signature));
        assert!(matches!(
            SigningKey::from_secret_text("ed25519-secret:xx"),
            Err(KeyError::Secret)
        ));
        assert!(!format!("{key:?}").contains(key.to_secret_text().trim()));
    }

    #[test]
    fn trusted_key_lists() {
        let a = SigningKey::generate().expect("rng").public_key();
        let b = SigningKey::generate().expect("rng").public_key();
        let keys = TrustedKeys::parse_list(&format!("{a}, {b},,{a}")).expect("valid list");
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.get(b.id()), Some(&b));
        assert!(
            TrustedKeys::parse_list("")
                .expect("empty is fine")
                .is_empty()
        );
        assert!(TrustedKeys::parse_list(&format!("{a},nonsense")).is_err());
    }
}
