//! A request's headers as the host hands them over in one call
//! (`proxy_get_header_map_pairs`): the filter reads the whole map once instead of asking for
//! `:path`, `content-type`, `content-length` and each identity header in turn (each of those
//! calls costs Envoy more than reading every header of a typical request at once; see
//! `BENCHMARKS.md`, "What each call costs").
//!
//! The serialization (proxy-wasm ABI v0.2.1): the number of pairs as a little-endian `u32`,
//! then each pair's name length and value length (`u32` each), then each name and value,
//! each followed by a NUL byte. [`HeaderMap::read`] (which the filter uses) and
//! [`HeaderMap::parse`] check the whole layout; a map that does not add up is refused rather
//! than read in part, so a header can never be missed because an earlier one was garbled.
//! [`HeaderMap::iter`] and [`HeaderMap::get`] are for maps that were checked: on a
//! malformed one they stop early.

/// A serialized header map that was checked to be well formed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    bytes: Vec<u8>,
}

/// A serialized header map that does not add up: truncated, with lengths that point past
/// its end, missing a NUL terminator, or with bytes left over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the host's serialized header map is malformed")]
pub struct MalformedHeaderMap;

impl HeaderMap {
    /// Checks a serialized map (an empty buffer is an empty map: what the SDK's own getter
    /// makes of a null answer).
    pub fn parse(bytes: Vec<u8>) -> Result<Self, MalformedHeaderMap> {
        Self::read(&bytes, |_, _| {})?;
        Ok(Self { bytes })
    }

    /// A map as the host gave it, not checked yet: read it with [`Self::read`], which checks
    /// it while reading.
    pub fn unchecked(bytes: Vec<u8>) -> Self {
        Self { bytes }
    }

    /// The serialized bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Serializes `pairs` as the host would (for hosts that are not Envoy: tests, fakes).
    pub fn serialize<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Self {
        let pairs: Vec<(&str, &[u8])> = pairs.into_iter().collect();
        let mut bytes = Vec::new();
        let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
        bytes.extend(len(pairs.len()));
        for (name, value) in &pairs {
            bytes.extend(len(name.len()));
            bytes.extend(len(value.len()));
        }
        for (name, value) in &pairs {
            bytes.extend_from_slice(name.as_bytes());
            bytes.push(0);
            bytes.extend_from_slice(value);
            bytes.push(0);
        }
        Self { bytes }
    }

    /// Takes a serialized map and calls `each` with every (name, value) pair in the host's
    /// order, checking the layout as it goes: one pass instead of [`Self::parse`] then
    /// [`Self::iter`]. On `Err` the map did not add up, and what `each` was told must be
    /// thrown away.
    pub fn read<'a>(
        bytes: &'a [u8],
        mut each: impl FnMut(&'a [u8], &'a [u8]),
    ) -> Result<(), MalformedHeaderMap> {
        if bytes.is_empty() {
            return Ok(());
        }
        let mut pairs = Pairs::new(bytes)?;
        for (name, value) in pairs.by_ref() {
            each(name, value);
        }
        if pairs.complete() {
            Ok(())
        } else {
            Err(MalformedHeaderMap)
        }
    }

    /// Every (name, value) pair, in the host's order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        Pairs::new(&self.bytes).into_iter().flatten()
    }

    /// The first value of header `name` (names are lower-case in Envoy's maps).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, value)| value)
    }
}

/// The pairs of a serialized map, read in place.
struct Pairs<'a> {
    bytes: &'a [u8],
    /// Pairs read so far, and in all.
    index: usize,
    count: usize,
    /// Where the next name starts.
    data: usize,
    /// A length pointed past the end or a terminator was missing: iteration stopped.
    broken: bool,
}

impl<'a> Pairs<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, MalformedHeaderMap> {
        let count = u32_at(bytes, 0).ok_or(MalformedHeaderMap)? as usize;
        let data = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(4))
            .filter(|&n| n <= bytes.len())
            .ok_or(MalformedHeaderMap)?;
        Ok(Self {
            bytes,
            index: 0,
            count,
            data,
            broken: false,
        })
    }

    /// Every pair was read and the data ends exactly with the last one.
    fn complete(&self) -> bool {
        !self.broken && self.index == self.count && self.data == self.bytes.len()
    }

    /// `len` bytes at `at`, followed by a NUL; where the next field starts.
    fn field(&self, at: usize, len: usize) -> Option<(&'a [u8], usize)> {
        let end = at.checked_add(len)?;
        let field = self.bytes.get(at..end)?;
        (self.bytes.get(end) == Some(&0)).then_some((field, end + 1))
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.broken || self.index >= self.count {
            return None;
        }
        let sizes = 4 + self.index * 8;
        let pair = (|| {
            let name_len = u32_at(self.bytes, sizes)? as usize;
            let value_len = u32_at(self.bytes, sizes + 4)? as usize;
            let (name, at) = self.field(self.data, name_len)?;
            let (value, next) = self.field(at, value_len)?;
            Some((name, value, next))
        })();
        match pair {
            Some((name, value, next)) => {
                self.data = next;
                self.index += 1;
                Some((name, value))
            }
            None => {
                self.broken = true;
                None
            }
        }
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let word: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(word))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn request() -> HeaderMap {
        HeaderMap::serialize([
            (
                ":path",
                &b"/1.0/environment/control/rest/stopenv?session=x"[..],
            ),
            (":method", b"GET"),
            ("x-empty", b""),
            ("accept", b"*/*"),
            ("accept", b"text/plain"),
        ])
    }

    #[test]
    fn a_serialized_map_reads_back_in_order() {
        let map = HeaderMap::parse(request().bytes).expect("well formed");
        let names: Vec<&[u8]> = map.iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [&b":path"[..], b":method", b"x-empty", b"accept", b"accept"]
        );
        assert_eq!(map.get(":method"), Some(&b"GET"[..]));
        assert_eq!(map.get("x-empty"), Some(&b""[..]));
        assert_eq!(map.get("accept"), Some(&b"*/*"[..]), "the first value");
        assert_eq!(map.get("content-type"), None);
    }

    #[test]
    fn empty_maps_are_empty() {
        assert_eq!(
            HeaderMap::parse(Vec::new()).expect("empty").iter().count(),
            0
        );
        let none = HeaderMap::serialize([]);
        assert_eq!(
            HeaderMap::parse(none.bytes)
                .expect("count 0")
                .iter()
                .count(),
            0
        );
    }

    #[test]
    fn maps_that_do_not_add_up_are_refused() {
        let good = request().bytes;
        // Every truncation.
        for len in 1..good.len() {
            assert_eq!(
                HeaderMap::parse(good[..len].to_vec()),
                Err(MalformedHeaderMap),
                "truncated to {len}"
            );
        }
        // Bytes left over.
        let mut longer = good.clone();
        longer.push(0);
        assert_eq!(HeaderMap::parse(longer), Err(MalformedHeaderMap));
        // A missing terminator.
        let mut unterminated = good.clone();
        let last = unterminated.len() - 1;
        unterminated[last] = b'x';
        assert_eq!(HeaderMap::parse(unterminated), Err(MalformedHeaderMap));
        // A count larger than the data.
        let mut counted = good.clone();
        counted[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(HeaderMap::parse(counted), Err(MalformedHeaderMap));
        // A length pointing past the end.
        let mut long_name = good;
        long_name[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(HeaderMap::parse(long_name), Err(MalformedHeaderMap));
    }

    proptest! {
        #[test]
        fn any_pairs_round_trip(pairs in proptest::collection::vec(("[a-z:-]{0,12}", proptest::collection::vec(any::<u8>(), 0..40)), 0..12)) {
            let map = HeaderMap::serialize(pairs.iter().map(|(n, v)| (n.as_str(), v.as_slice())));
            let map = HeaderMap::parse(map.bytes).expect("well formed");
            let read: Vec<(Vec<u8>, Vec<u8>)> = map.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect();
            let written: Vec<(Vec<u8>, Vec<u8>)> = pairs.iter().map(|(n, v)| (n.as_bytes().to_vec(), v.clone())).collect();
            prop_assert_eq!(read, written);
        }

        #[test]
        fn any_bytes_parse_or_are_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut seen = 0;
            let read = HeaderMap::read(&bytes, |_, _| seen += 1);
            prop_assert_eq!(read.is_ok(), HeaderMap::parse(bytes.clone()).is_ok());
            if let Ok(map) = HeaderMap::parse(bytes) {
                prop_assert_eq!(map.iter().count(), seen);
                let _ = map.iter().count();
                let _ = map.get(":path");
            }
        }
    }
}
