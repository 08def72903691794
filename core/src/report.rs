//! Usage reports: which tokens an edge let through, when last, and from which client
//! address — the source of "last used" in pat-admin, the API and the dashboard.
//!
//! ```text
//! "PATUSE01" | sent at, Unix milliseconds u64 | count u32
//! count × (token id u64 | last used, Unix seconds u64 | family u8 (0 none, 4, 6) | 16 address bytes)
//! key id (8) | Ed25519 signature (64) over SIGNING_CONTEXT ‖ everything before the key id
//! ```
//!
//! Each edge signs its reports with a key of its own (its public key is registered with
//! pat-admin), so the origin takes reports only from edges it knows. A report only ever
//! moves "last used" forward, so a replayed one changes nothing; the origin also refuses
//! reports sent long ago.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::keys::{KeyId, SigningKey, TrustedKeys};

const MAGIC: [u8; 8] = *b"PATUSE01";
const SIGNING_CONTEXT: &[u8] = b"pat-edge usage report v1\0";
const ENTRY_LEN: usize = 8 + 8 + 1 + 16;
/// The most entries one report may hold.
pub const MAX_ENTRIES: usize = 10_000;

/// One token's last use as an edge saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Use {
    /// Public token id.
    pub token_id: u64,
    /// When it was last let through, Unix seconds.
    pub last_used: u64,
    /// The client address it came from, if known.
    pub address: Option<IpAddr>,
}

/// A verified report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// Who signed it.
    pub key_id: KeyId,
    /// When it was sent, Unix milliseconds.
    pub sent_at_ms: u64,
    /// The uses.
    pub uses: Vec<Use>,
}

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Not a report, or cut short or padded.
    #[error("not a well-formed usage report")]
    Malformed,
    /// More entries than allowed.
    #[error("a usage report holds at most {MAX_ENTRIES} entries")]
    TooMany,
    /// Signed by a key that is not registered.
    #[error("the usage report is signed by key {0}, which is not a registered edge key")]
    UnknownKey(KeyId),
    /// The signature does not verify.
    #[error("the usage report's signature does not verify")]
    BadSignature,
}

/// Encodes and signs a report of `uses` (at most [`MAX_ENTRIES`]; the rest are left out).
pub fn sign(uses: &[Use], sent_at_ms: u64, key: &SigningKey) -> Vec<u8> {
    let uses = uses.get(..uses.len().min(MAX_ENTRIES)).unwrap_or_default();
    let mut out = Vec::with_capacity(20 + uses.len() * ENTRY_LEN + 72);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&sent_at_ms.to_le_bytes());
    out.extend_from_slice(&(uses.len() as u32).to_le_bytes());
    for u in uses {
        out.extend_from_slice(&u.token_id.to_le_bytes());
        out.extend_from_slice(&u.last_used.to_le_bytes());
        let (family, addr) = match u.address {
            None => (0u8, [0u8; 16]),
            Some(IpAddr::V4(v4)) => {
                let mut a = [0u8; 16];
                if let Some(slot) = a.get_mut(..4) {
                    slot.copy_from_slice(&v4.octets());
                }
                (4, a)
            }
            Some(IpAddr::V6(v6)) => (6, v6.octets()),
        };
        out.push(family);
        out.extend_from_slice(&addr);
    }
    let signature = key.sign(&[SIGNING_CONTEXT, &out].concat());
    out.extend_from_slice(&key.public_key().id().0);
    out.extend_from_slice(&signature);
    out
}

/// Verifies a report against the registered edge keys and decodes it.
pub fn open(bytes: &[u8], keys: &TrustedKeys) -> Result<Report, ReportError> {
    let body_len = bytes.len().checked_sub(72).ok_or(ReportError::Malformed)?;
    let (body, trailer) = bytes.split_at(body_len);
    let (key_id, signature) = trailer.split_at(8);
    let key_id = KeyId(key_id.try_into().map_err(|_| ReportError::Malformed)?);
    let signature: &[u8; 64] = signature.try_into().map_err(|_| ReportError::Malformed)?;
    let key = keys.get(key_id).ok_or(ReportError::UnknownKey(key_id))?;
    if !key.verify(&[SIGNING_CONTEXT, body].concat(), signature) {
        return Err(ReportError::BadSignature);
    }
    let rest = body.strip_prefix(&MAGIC).ok_or(ReportError::Malformed)?;
    let (sent_at, rest) = rest
        .split_first_chunk::<8>()
        .ok_or(ReportError::Malformed)?;
    let (count, rest) = rest
        .split_first_chunk::<4>()
        .ok_or(ReportError::Malformed)?;
    let count = u32::from_le_bytes(*count) as usize;
    if count > MAX_ENTRIES {
        return Err(ReportError::TooMany);
    }
    if rest.len() != count * ENTRY_LEN {
        return Err(ReportError::Malformed);
    }
    let mut uses = Vec::with_capacity(count);
    for entry in rest.chunks_exact(ENTRY_LEN) {
        let (id, entry) = entry
            .split_first_chunk::<8>()
            .ok_or(ReportError::Malformed)?;
        let (at, entry) = entry
            .split_first_chunk::<8>()
            .ok_or(ReportError::Malformed)?;
        let (&family, addr) = entry.split_first().ok_or(ReportError::Malformed)?;
        let addr: [u8; 16] = addr.try_into().map_err(|_| ReportError::Malformed)?;
        let address = match family {
            0 => None,
            4 => {
                let v4: [u8; 4] = addr
                    .get(..4)
                    .and_then(|a| a.try_into().ok())
                    .ok_or(ReportError::Malformed)?;
                Some(IpAddr::V4(Ipv4Addr::from(v4)))
            }
            6 => Some(IpAddr::V6(Ipv6Addr::from(addr))),
            _ => return Err(ReportError::Malformed),
        };
        uses.push(Use {
            token_id: u64::from_le_bytes(*id),
            last_used: u64::from_le_bytes(*at),
            address,
        });
    }
    Ok(Report {
        key_id,
        sent_at_ms: u64::from_le_bytes(*sent_at),
        uses,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let key = SigningKey::generate().expect("rng");
        let keys = TrustedKeys::new([key.public_key()]);
        let uses = [
            Use {
                token_id: 7,
                last_used: 1_800_000_000,
                address: Some("203.0.113.9".parse().expect("ip")),
            },
            Use {
                token_id: 8,
                last_used: 1_800_000_100,
                address: Some("2001:db8::1".parse().expect("ip")),
            },
            Use {
                token_id: 9,
                last_used: 1_800_000_200,
                address: None,
            },
        ];
        let bytes = sign(&uses, 42, &key);
        let report = open(&bytes, &keys).expect("opens");
        assert_eq!(report.uses, uses);
        assert_eq!(report.sent_at_ms, 42);
        assert_eq!(report.key_id, key.public_key().id());

        let stranger = SigningKey::generate().expect("rng");
        assert!(matches!(
            open(&sign(&uses, 42, &stranger), &keys),
            Err(ReportError::UnknownKey(_))
        ));
        let mut tampered = bytes.clone();
        tampered[20] ^= 1;
        assert_eq!(open(&tampered, &keys), Err(ReportError::BadSignature));
        assert_eq!(open(b"short", &keys), Err(ReportError::Malformed));
        assert_eq!(open(&[], &keys), Err(ReportError::Malformed));
    }
}
