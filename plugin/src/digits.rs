//! Numbers in decimal without allocating (token ids in identity headers and shared-data
//! keys: both on the request path).

/// `n` in decimal, written into the end of `buf`.
pub fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
        start -= 1;
        if n == 0 {
            break;
        }
    }
    buf.get(start..).unwrap_or_default()
}

/// [`decimal`] as text.
pub fn decimal_str(n: u64, buf: &mut [u8; 20]) -> &str {
    std::str::from_utf8(decimal(n, buf)).unwrap_or("0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_token_ids() {
        for n in [0, 5, 10, 4_294_967_296, u64::MAX] {
            assert_eq!(decimal(n, &mut [0; 20]), n.to_string().as_bytes());
            assert_eq!(decimal_str(n, &mut [0; 20]), n.to_string());
        }
    }
}
