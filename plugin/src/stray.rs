//! Token-format values where no token belongs.
//!
//! A value in token format (the `pate_` prefix and a valid checksum) anywhere in a request
//! other than the one decisive `session` parameter is ambiguous: another component could
//! read it as the credential, and with `strip_token` it would reach the platform unstripped.
//! Such requests are denied. The checksum makes this exact: a random string passes it once
//! in 2^32.

use pat_core::token::{PREFIX, TOKEN_LEN, validate};

/// Where the prefix's `_` is within it.
const UNDERSCORE: usize = PREFIX.len() - 1;

/// Does `bytes` contain a value in token format?
///
/// This runs on the path and every query pair of every request: it looks for the prefix's
/// last byte, `_`, which is rare in platform API calls (a substring searcher would be set up
/// anew on each call, which costs more than the search).
pub fn contains_token(bytes: &[u8]) -> bool {
    memchr::memchr_iter(b'_', bytes).any(|underscore| {
        underscore.checked_sub(UNDERSCORE).is_some_and(|at| {
            bytes.get(at..=underscore) == Some(PREFIX.as_bytes()) && is_token_at(bytes, at)
        })
    })
}

/// Is the `session` value `value` acceptable as the decisive one, as far as stray tokens
/// go: either it is meant to be one token (and is then checked as a token), or it contains
/// none. A value such as `" pate_…"` or `"x pate_…"` hides a token inside something else.
pub fn hides_token(value: &[u8]) -> bool {
    if value.len() == TOKEN_LEN && value.starts_with(PREFIX.as_bytes()) {
        return false;
    }
    contains_token(value)
}

fn is_token_at(bytes: &[u8], at: usize) -> bool {
    bytes
        .get(at..at.saturating_add(TOKEN_LEN))
        .and_then(|window| std::str::from_utf8(window).ok())
        .is_some_and(|window| validate(window).is_ok())
}

/// Finds token-format values in a stream of bytes delivered in pieces: a token split
/// across two pieces is found like one inside a piece. Keeps at most `TOKEN_LEN - 1` bytes.
#[derive(Debug, Default, Clone)]
pub struct Spotter {
    tail: Vec<u8>,
}

impl Spotter {
    /// Feeds the next piece; true when a token was found (in it or across its start).
    pub fn feed(&mut self, piece: &[u8]) -> bool {
        let keep = TOKEN_LEN - 1;
        let mut found = false;
        if !self.tail.is_empty() {
            // Tokens that start in the tail end within `keep` bytes of the piece.
            let reach = piece.len().min(keep);
            let mut window = Vec::with_capacity(self.tail.len() + reach);
            window.extend_from_slice(&self.tail);
            window.extend_from_slice(piece.get(..reach).unwrap_or_default());
            found = contains_token(&window);
        }
        found = found || contains_token(piece);
        if piece.len() >= keep {
            self.tail.clear();
            self.tail
                .extend_from_slice(piece.get(piece.len() - keep..).unwrap_or_default());
        } else {
            self.tail.extend_from_slice(piece);
            let excess = self.tail.len().saturating_sub(keep);
            self.tail.drain(..excess);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pat_core::token::Token;
    use proptest::prelude::*;

    fn token() -> String {
        Token::generate().expect("rng").expose().to_string()
    }

    #[test]
    fn finds_tokens_anywhere_and_nothing_else() {
        let t = token();
        for hit in [
            t.clone(),
            format!(" {t}"),
            format!("x{t}y"),
            format!("a=1&b={t}"),
        ] {
            assert!(contains_token(hit.as_bytes()), "{hit}");
        }
        let mut typo = t.clone().into_bytes();
        typo[10] ^= 1;
        for miss in [
            b"pate_".to_vec(),
            b"pate_short".to_vec(),
            typo,
            t.to_uppercase().into_bytes(),
            Vec::new(),
        ] {
            assert!(!contains_token(&miss), "{}", String::from_utf8_lossy(&miss));
        }
    }

    #[test]
    fn a_session_value_is_one_token_or_hides_none() {
        let t = token();
        assert!(!hides_token(t.as_bytes()));
        assert!(!hides_token(b"legacy-session"));
        assert!(!hides_token(b"pate_malformed"), "checked as a token later");
        assert!(hides_token(format!(" {t}").as_bytes()));
        assert!(hides_token(format!("{t},{t}").as_bytes()));
    }

    /// The definition: a token-format value starts at some position.
    fn contains_token_by_definition(bytes: &[u8]) -> bool {
        (0..bytes.len())
            .any(|at| bytes[at..].starts_with(PREFIX.as_bytes()) && is_token_at(bytes, at))
    }

    proptest! {
        #[test]
        fn the_search_agrees_with_the_definition(
            parts in prop::collection::vec(prop_oneof!["[a-z_=&]{0,12}", Just("pate_".to_string()), Just("pate".to_string()), Just(String::new()).prop_map(|_| token())], 0..6),
        ) {
            let bytes = parts.concat().into_bytes();
            prop_assert_eq!(contains_token(&bytes), contains_token_by_definition(&bytes));
        }

        #[test]
        fn spotting_in_pieces_agrees_with_the_whole(
            prefix in "[a-z_ ]{0,50}",
            suffix in "[a-z_ ]{0,50}",
            with_token in any::<bool>(),
            cuts in prop::collection::vec(0usize..140, 0..6),
        ) {
            let middle = if with_token { token() } else { "pate_notatoken".to_string() };
            let whole = format!("{prefix}{middle}{suffix}").into_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(whole.len())).collect();
            cuts.sort_unstable();
            let mut spotter = Spotter::default();
            let mut found = false;
            let mut at = 0;
            for cut in cuts.into_iter().chain([whole.len()]) {
                found |= spotter.feed(&whole[at..cut]);
                at = cut;
            }
            prop_assert_eq!(found, contains_token(&whole));
            prop_assert_eq!(found, with_token);
        }
    }
}
