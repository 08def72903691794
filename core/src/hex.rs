//! Lowercase hex, the one encoder every crate uses: token hashes, key ids, shared-data keys,
//! entity tags.

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex of `bytes`, two digits a byte.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                DIGITS.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

/// The value of one hex digit (either case).
pub(crate) fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_lowercase_two_digits_a_byte() {
        assert_eq!(encode(&[]), "");
        assert_eq!(encode(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
        let all: Vec<u8> = (0..=255).collect();
        let text = encode(&all);
        let expected: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, expected);
    }

    #[test]
    fn digits_either_case() {
        assert_eq!(digit(b'7'), Some(7));
        assert_eq!(digit(b'c'), Some(12));
        assert_eq!(digit(b'C'), Some(12));
        assert_eq!(digit(b'g'), None);
    }
}
