//! The personal access token format.
//!
//! `pate_`, then 30 random base62 characters from the OS CSPRNG (30 · log2 62 ≈ 178.6
//! bits), then a 6-character base62 CRC32 of everything before it (GitHub's scheme). The checksum
//! lets the edge reject a typo or a random string without a lookup, and the fixed prefix
//! lets secret scanners find leaked tokens (`pate_[0-9A-Za-z]{36}`).
//!
//! Only [`TokenHash`] (SHA-256 of the whole token string) is ever stored or published.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// Every token starts with this prefix; anything else is an ordinary login session.
pub const PREFIX: &str = "pate_";
/// Number of random base62 characters.
pub const RANDOM_LEN: usize = 30;
/// Number of base62 checksum characters (CRC32 < 62^6).
pub const CHECKSUM_LEN: usize = 6;
/// Total token length in bytes (all ASCII).
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
/// Characters of a token kept visible by [`mask`], after the prefix.
const MASK_TAIL: usize = 4;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Why a string that starts with [`PREFIX`] is not a well-formed token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    /// The string does not start with [`PREFIX`]: it is not meant to be a token at all.
    #[error("not a personal access token: it does not start with `{PREFIX}`")]
    MissingPrefix,
    /// Wrong number of characters.
    #[error("malformed token: {0} characters where a token has {TOKEN_LEN}")]
    WrongLength(usize),
    /// A character outside `[0-9A-Za-z]` after the prefix.
    #[error("malformed token: only the characters 0-9, A-Z and a-z may follow `{PREFIX}`")]
    BadCharacter,
    /// The checksum does not match: mistyped, truncated or made up.
    #[error("malformed token: the checksum does not match (mistyped or truncated token)")]
    BadChecksum,
}

/// Is this session value meant to be a personal access token (as opposed to an ordinary
/// login session)? True when it carries the token prefix, whether or not it is well formed.
pub fn is_token_like(session: &str) -> bool {
    session.starts_with(PREFIX)
}

/// Checks the format and checksum of a token without any lookup. Never allocates.
pub fn validate(candidate: &str) -> Result<(), TokenFormatError> {
    let rest = candidate
        .strip_prefix(PREFIX)
        .ok_or(TokenFormatError::MissingPrefix)?;
    if candidate.len() != TOKEN_LEN {
        return Err(TokenFormatError::WrongLength(candidate.chars().count()));
    }
    if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(TokenFormatError::BadCharacter);
    }
    let (body, checksum) = candidate.split_at(TOKEN_LEN - CHECKSUM_LEN);
    let expected = checksum_of(body);
    if bool::from(expected.as_slice().ct_eq(checksum.as_bytes())) {
        Ok(())
    } else {
        Err(TokenFormatError::BadChecksum)
    }
}

/// The 6-character base62 CRC32 of `body` (prefix + random part).
fn checksum_of(body: &str) -> [u8; CHECKSUM_LEN] {
    let mut value = crc32fast::hash(body.as_bytes());
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = base62_digit(value);
        value /= 62;
    }
    out
}

/// The base62 digit for `value % 62`.
fn base62_digit(value: u32) -> u8 {
    BASE62.get((value % 62) as usize).copied().unwrap_or(b'0')
}

/// Shows a session value in logs and error messages without revealing it: the prefix (if
/// any) and the last few characters, e.g. `pate_…9xQe`. Only `[0-9A-Za-z]` characters of the
/// tail are shown, so the result is always safe inside JSON, headers and logs.
pub fn mask(session: &str) -> String {
    let (prefix, rest) = match session.strip_prefix(PREFIX) {
        Some(rest) => (PREFIX, rest),
        None => ("", session),
    };
    // Short values reveal nothing: a tail of a short secret is too much of it.
    if rest.len() < 16 {
        return format!("{prefix}…");
    }
    // The last MASK_TAIL characters, of which the alphanumeric ones are shown (denials
    // format this on every request they answer: one allocation).
    let tail_start = rest
        .char_indices()
        .rev()
        .nth(MASK_TAIL - 1)
        .map_or(0, |(at, _)| at);
    let tail = rest.get(tail_start..).unwrap_or_default();
    let mut masked = String::with_capacity(prefix.len() + '…'.len_utf8() + MASK_TAIL);
    masked.push_str(prefix);
    masked.push('…');
    masked.extend(tail.chars().filter(char::is_ascii_alphanumeric));
    masked
}

/// SHA-256 of a token string: the only form in which a token is stored or published.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Hashes a token value (the whole string, prefix included).
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Lowercase hex, 64 characters.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
            let hi = crate::hex::digit(*pair.first()?)?;
            let lo = crate::hex::digit(*pair.get(1)?)?;
            *slot = (hi << 4) | lo;
        }
        Some(Self(out))
    }

    /// The first 16 bytes: what a snapshot stores to find the token (a second value sharing
    /// them takes 2^128 tries to find).
    pub fn prefix(&self) -> [u8; 16] {
        let mut out = [0u8; 16];
        if let Some(head) = self.0.get(..16) {
            out.copy_from_slice(head);
        }
        out
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Self) -> bool {
        bool::from(self.0.ct_eq(&other.0))
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({})", self.to_hex())
    }
}

/// A freshly generated token value. It is wiped from memory when dropped, and its `Debug`
/// output is masked; the value itself is only reachable through [`Token::expose`].
pub struct Token(Zeroizing<String>);

impl Token {
    /// Generates a new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut value = Zeroizing::new(String::with_capacity(TOKEN_LEN));
        value.push_str(PREFIX);
        let mut produced = 0;
        let mut pool = Zeroizing::new([0u8; 64]);
        while produced < RANDOM_LEN {
            getrandom::fill(pool.as_mut_slice())?;
            // Rejection sampling keeps every character uniform: 248 = 4 · 62.
            for &byte in pool.iter().filter(|&&b| b < 248) {
                if produced == RANDOM_LEN {
                    break;
                }
                value.push(char::from(base62_digit(u32::from(byte))));
                produced += 1;
            }
        }
        let checksum = checksum_of(&value);
        value.extend(checksum.iter().map(|&b| char::from(b)));
        Ok(Self(value))
    }

    /// The secret value. Print it once, to the one who asked for it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash stored in place of the value.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", mask(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_tokens_are_valid_and_distinct() {
        let a = Token::generate().expect("rng");
        let b = Token::generate().expect("rng");
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert!(a.expose().starts_with(PREFIX));
        assert_eq!(validate(a.expose()), Ok(()));
        assert_ne!(a.expose(), b.expose());
        assert_ne!(a.hash(), b.hash());
    }

    #[test]
    fn known_checksum() {
        // The CRC32 of the body, in base62, fixed so the format cannot drift silently.
        let body = "pate_000000000000000000000000000000";
        let crc = crc32fast::hash(body.as_bytes());
        let token = format!(
            "{body}{}",
            std::str::from_utf8(&checksum_of(body)).expect("ascii")
        );
        let mut decoded = 0u64;
        for c in token[TOKEN_LEN - CHECKSUM_LEN..].bytes() {
            let digit = BASE62.iter().position(|&d| d == c).expect("base62") as u64;
            decoded = decoded * 62 + digit;
        }
        assert_eq!(decoded, u64::from(crc));
        assert_eq!(validate(&token), Ok(()));
    }

    #[test]
    fn rejects_what_is_not_a_token() {
        assert_eq!(validate("abc"), Err(TokenFormatError::MissingPrefix));
        assert_eq!(validate("pate_abc"), Err(TokenFormatError::WrongLength(8)));
        let good = Token::generate().expect("rng");
        let mut bad_char = good.expose().to_string();
        bad_char.replace_range(10..11, "-");
        assert_eq!(validate(&bad_char), Err(TokenFormatError::BadCharacter));
        let mut non_ascii = good.expose().to_string();
        non_ascii.replace_range(10..12, "é");
        assert_eq!(validate(&non_ascii), Err(TokenFormatError::BadCharacter));
    }

    #[test]
    fn mask_hides_the_secret() {
        let token = Token::generate().expect("rng");
        let masked = mask(token.expose());
        assert!(masked.starts_with("pate_…"));
        assert_eq!(masked.chars().count(), PREFIX.len() + 1 + MASK_TAIL);
        assert!(token.expose().ends_with(&masked["pate_…".len()..]));
        assert_eq!(mask("pate_short"), "pate_…");
        assert_eq!(mask("ordinary-session-value-123456"), "…3456");
        assert_eq!(mask("pate_\"quote\\and<html>\n\u{1}xyzw"), "pate_…xyzw");
        assert_eq!(format!("{token:?}"), format!("Token({masked})"));
    }

    #[test]
    fn hash_hex_round_trip() {
        let h = TokenHash::of("pate_x");
        assert_eq!(TokenHash::from_hex(&h.to_hex()), Some(h));
        assert_eq!(TokenHash::from_hex(&h.to_hex().to_uppercase()), Some(h));
        assert_eq!(TokenHash::from_hex("zz"), None);
        assert!(h.ct_eq(&h));
        assert!(!h.ct_eq(&TokenHash::of("pate_y")));
    }

    proptest! {
        #[test]
        fn any_single_character_change_is_caught(pos in 5usize..TOKEN_LEN, c in "[0-9A-Za-z]") {
            let token = Token::generate().expect("rng");
            let mut changed = token.expose().to_string();
            changed.replace_range(pos..pos + 1, &c);
            prop_assume!(changed != token.expose());
            prop_assert_eq!(validate(&changed), Err(TokenFormatError::BadChecksum));
        }

        #[test]
        fn mask_matches_its_definition(s in "(pate_)?\\PC{0,40}") {
            let (prefix, rest) = s.strip_prefix(PREFIX).map_or(("", s.as_str()), |r| (PREFIX, r));
            let expected = if rest.len() < 16 {
                format!("{prefix}…")
            } else {
                let last: Vec<char> = rest.chars().rev().take(MASK_TAIL).collect();
                let tail: String = last.into_iter().rev().filter(char::is_ascii_alphanumeric).collect();
                format!("{prefix}…{tail}")
            };
            prop_assert_eq!(mask(&s), expected);
        }

        #[test]
        fn validate_and_mask_never_panic(s in "\\PC*") {
            let _ = validate(&s);
            let masked = mask(&s);
            prop_assert!(masked.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '…'));
        }
    }
}
