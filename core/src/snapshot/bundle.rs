//! Several signed documents in one byte string: what an origin answers an edge that asks to
//! catch up (a chain of deltas, or a full snapshot and the deltas after it).
//!
//! ```text
//! "PATBNDL1" | count u32 | count × (length u64 | document)
//! ```
//!
//! The bundle itself is not signed: every document in it is, and is verified on its own.

/// First 8 bytes of a bundle.
pub const MAGIC: [u8; 8] = *b"PATBNDL1";
/// The most documents one bundle may hold.
pub const MAX_DOCUMENTS: usize = 100_000;

/// Why a bundle could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    /// Not a bundle.
    #[error("not a pat-edge bundle (bad magic bytes)")]
    Magic,
    /// Cut short or padded.
    #[error("the bundle is truncated or padded")]
    Length,
    /// More documents than allowed.
    #[error("the bundle holds more than {MAX_DOCUMENTS} documents")]
    TooMany,
}

/// Encodes documents into a bundle.
pub fn encode<'a>(documents: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let documents: Vec<&[u8]> = documents.into_iter().collect();
    let total: usize = documents.iter().map(|d| d.len() + 8).sum();
    let mut out = Vec::with_capacity(12 + total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(documents.len() as u32).to_le_bytes());
    for document in documents {
        out.extend_from_slice(&(document.len() as u64).to_le_bytes());
        out.extend_from_slice(document);
    }
    out
}

/// Is this a bundle (rather than a single document)?
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Bytes before the first document: the magic, the count, the first length.
pub const PREFIX_LEN: usize = 8 + 4 + 8;

/// The documents of a bundle, in order, taken out of it without copying the first one (in a
/// catch-up, the first is a full snapshot: tens of megabytes at a million tokens).
pub fn into_documents(mut bytes: Vec<u8>) -> Result<Vec<Vec<u8>>, BundleError> {
    let spans: Vec<(usize, usize)> = {
        let documents = decode(&bytes)?;
        let base = bytes.as_ptr() as usize;
        documents
            .iter()
            .map(|d| (d.as_ptr() as usize - base, d.len()))
            .collect()
    };
    let mut out = Vec::with_capacity(spans.len());
    for &(start, len) in spans.iter().rev() {
        let document = bytes.split_off(start);
        bytes.truncate(start.saturating_sub(8));
        debug_assert_eq!(document.len(), len);
        out.push(document);
    }
    out.reverse();
    Ok(out)
}

/// The documents of a bundle, in order (each still to be verified).
pub fn decode(bytes: &[u8]) -> Result<Vec<&[u8]>, BundleError> {
    let rest = bytes.strip_prefix(&MAGIC).ok_or(BundleError::Magic)?;
    let (count, mut rest) = rest.split_first_chunk::<4>().ok_or(BundleError::Length)?;
    let count = u32::from_le_bytes(*count) as usize;
    if count > MAX_DOCUMENTS {
        return Err(BundleError::TooMany);
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, tail) = rest.split_first_chunk::<8>().ok_or(BundleError::Length)?;
        let len = usize::try_from(u64::from_le_bytes(*len)).map_err(|_| BundleError::Length)?;
        if len > tail.len() {
            return Err(BundleError::Length);
        }
        let (document, tail) = tail.split_at(len);
        out.push(document);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(BundleError::Length);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let docs: [&[u8]; 3] = [b"one", b"", b"three"];
        let bytes = encode(docs);
        assert!(is_bundle(&bytes));
        assert_eq!(decode(&bytes), Ok(docs.to_vec()));
        assert_eq!(decode(b"PATSNAP1"), Err(BundleError::Magic));
        assert_eq!(decode(&bytes[..bytes.len() - 1]), Err(BundleError::Length));
        let mut padded = bytes.clone();
        padded.push(0);
        assert_eq!(decode(&padded), Err(BundleError::Length));
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&huge), Err(BundleError::TooMany));
        assert_eq!(decode(&encode([])), Ok(Vec::new()));
        assert_eq!(
            into_documents(bytes.clone()),
            Ok(docs.iter().map(|d| d.to_vec()).collect::<Vec<_>>())
        );
        assert_eq!(into_documents(encode([])), Ok(Vec::new()));
        assert_eq!(into_documents(b"nope".to_vec()), Err(BundleError::Magic));
    }
}
