//! The header-map wire format, little-endian: `u32 count`, `count × (u32 key_len,
//! u32 value_len)`, then each key and value followed by a NUL (lengths exclude it).
//! Values are bytes, passed through exactly (they need not be UTF-8); keys are
//! converted lossily.

use crate::http::Headers;

/// Serializes a map. An empty map serializes to nothing (returned as pointer 0, size 0).
pub(crate) fn encode(headers: &Headers) -> Vec<u8> {
    if headers.is_empty() {
        return Vec::new();
    }
    let data: usize = headers.byte_size() + headers.len() * 2;
    let mut out = Vec::with_capacity(4 + headers.len() * 8 + data);
    out.extend_from_slice(&(headers.len() as u32).to_le_bytes());
    for (k, v) in headers.iter_bytes() {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in headers.iter_bytes() {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(raw) as usize)
}

/// Parses a map; anything malformed yields an empty map, as Envoy's `toPairs` does.
pub(crate) fn decode(bytes: &[u8]) -> Headers {
    Headers::from_pairs(decode_checked(bytes).unwrap_or_default())
}

fn decode_checked(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    if bytes.len() < 4 {
        return Some(Vec::new());
    }
    let count = u32_at(bytes, 0)?;
    let table_end = count.checked_mul(8)?.checked_add(4)?;
    if table_end > bytes.len() {
        return None;
    }
    let mut pairs = Vec::with_capacity(count);
    let mut at = table_end;
    let mut take = |len: usize| -> Option<&[u8]> {
        let end = at.checked_add(len)?;
        let data = bytes.get(at..end)?;
        at = end.checked_add(1)?;
        Some(data)
    };
    for i in 0..count {
        let key_len = u32_at(bytes, 4 + i * 8)?;
        let value_len = u32_at(bytes, 8 + i * 8)?;
        let key = String::from_utf8_lossy(take(key_len)?).into_owned();
        let value = take(value_len)?.to_vec();
        pairs.push((key, value));
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_sdk_layout() {
        let headers: Headers = [(":method", "GET"), ("x-a", "")].into_iter().collect();
        let bytes = encode(&headers);
        assert_eq!(
            bytes,
            [
                2, 0, 0, 0, 7, 0, 0, 0, 3, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, b':', b'm', b'e', b't',
                b'h', b'o', b'd', 0, b'G', b'E', b'T', 0, b'x', b'-', b'a', 0, 0
            ]
        );
        assert_eq!(decode(&bytes), headers);
    }

    #[test]
    fn values_are_bytes_not_text() {
        let mut headers = Headers::new();
        headers.add_bytes("x-raw", b"a\xff\x80b".to_vec());
        let bytes = encode(&headers);
        assert_eq!(
            bytes,
            [
                1, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0, b'x', b'-', b'r', b'a', b'w', 0, b'a', 0xff,
                0x80, b'b', 0
            ]
        );
        let decoded = decode(&bytes);
        assert_eq!(decoded.get_bytes("x-raw"), Some(&b"a\xff\x80b"[..]));
        assert_eq!(decoded.get("x-raw"), Some("a\u{fffd}\u{fffd}b"));
    }

    #[test]
    fn malformed_is_empty() {
        assert!(decode(&[]).is_empty());
        assert!(decode(&[5, 0, 0, 0, 1]).is_empty());
        assert!(decode(&[1, 0, 0, 0, 200, 0, 0, 0, 0, 0, 0, 0, b'a']).is_empty());
        assert!(encode(&Headers::new()).is_empty());
    }
}
