//! Usage reports from the edges (`POST /usage` on `serve --listen`): which tokens each
//! worker let through, when last, and from which client address — the source of "last
//! used" in `list`, `show` and the API's `GetTokens`.
//!
//! A report is taken only when it is signed by a registered edge key (`pat-admin edge key
//! generate`), well-formed, at most [`MAX_REPORT_BYTES`], and sent within the last
//! [`MAX_AGE_MS`] (and not more than [`MAX_AHEAD_MS`] in the future: clocks drift a
//! little, not more). It is merged in one transaction, idempotently: a token's
//! `last_used_at` only moves forward (to the reported time, never beyond the origin's own
//! clock), its `last_used_ip` goes with the newest use, and a use of a token that does not
//! exist (removed since, or never here) is ignored. So a replayed or reordered report
//! changes nothing, and several edges' reports of one token keep the latest use.

use std::net::IpAddr;

use pat_core::report::{self, ReportError};

use crate::error::Result;
use crate::store::{Store, edge_keys, tokens};

/// The largest report body taken (a full report, 10,000 uses, is about 330 KB).
pub const MAX_REPORT_BYTES: usize = 512 * 1024;
/// Reports sent longer ago than this are refused, milliseconds.
pub const MAX_AGE_MS: u64 = 10 * 60 * 1000;
/// Reports sent further in the future than this are refused, milliseconds.
pub const MAX_AHEAD_MS: u64 = 60 * 1000;

/// Why a report was refused (nothing was merged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Larger than [`MAX_REPORT_BYTES`].
    #[error("the usage report is larger than {MAX_REPORT_BYTES} bytes")]
    TooLarge,
    /// Not a report.
    #[error("{0}")]
    Malformed(String),
    /// Signed by a key that is not registered (or was removed).
    #[error(
        "the usage report is signed by key {0}, which is not a registered edge key (pat-admin edge key list)"
    )]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the usage report's signature does not verify")]
    BadSignature,
    /// Sent too long ago.
    #[error("the usage report was sent {age_s} s ago, more than {} s: refused as a replay", MAX_AGE_MS / 1000)]
    TooOld {
        /// Its age, seconds.
        age_s: u64,
    },
    /// Sent in the future.
    #[error("the usage report was sent {ahead_s} s in the future: check the edge's clock")]
    InFuture {
        /// How far ahead, seconds.
        ahead_s: u64,
    },
}

impl Refusal {
    /// The HTTP status: 413 too large, 403 unknown key or bad signature, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::TooLarge => 413,
            Self::UnknownKey(_) | Self::BadSignature => 403,
            Self::Malformed(_) | Self::TooOld { .. } | Self::InFuture { .. } => 400,
        }
    }
}

/// A merged report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Merged {
    /// The edge key's name.
    pub edge: String,
    /// Uses in the report.
    pub uses: usize,
    /// Tokens whose "last used" moved.
    pub updated: usize,
}

/// Verifies `body` against the registered edge keys at `now_ms` (Unix milliseconds) and
/// merges it. `Err` is a store failure; `Ok(Err(_))` a refused report.
pub fn receive(
    store: &mut Store,
    body: &[u8],
    now_ms: u64,
) -> Result<std::result::Result<Merged, Refusal>> {
    if body.len() > MAX_REPORT_BYTES {
        return Ok(Err(Refusal::TooLarge));
    }
    let keys = edge_keys::trusted(store.conn())?;
    let report = match report::open(body, &keys) {
        Ok(r) => r,
        Err(ReportError::UnknownKey(id)) => return Ok(Err(Refusal::UnknownKey(id.to_string()))),
        Err(ReportError::BadSignature) => return Ok(Err(Refusal::BadSignature)),
        Err(e @ (ReportError::Malformed | ReportError::TooMany)) => {
            return Ok(Err(Refusal::Malformed(e.to_string())));
        }
    };
    if report.sent_at_ms > now_ms.saturating_add(MAX_AHEAD_MS) {
        return Ok(Err(Refusal::InFuture {
            ahead_s: (report.sent_at_ms - now_ms) / 1000,
        }));
    }
    if now_ms.saturating_sub(report.sent_at_ms) > MAX_AGE_MS {
        return Ok(Err(Refusal::TooOld {
            age_s: (now_ms - report.sent_at_ms) / 1000,
        }));
    }
    let now = now_ms / 1000;
    let key_id = report.key_id.to_string();
    let merged = store.write(|tx| {
        let mut updated = 0;
        for u in &report.uses {
            let Ok(id) = i64::try_from(u.token_id) else {
                continue;
            };
            let address = u.address.map(|a: IpAddr| a.to_string());
            if tokens::merge_use(tx, id, u.last_used.min(now), address.as_deref())? {
                updated += 1;
            }
        }
        edge_keys::touch(tx, &key_id, now)?;
        let edge = edge_keys::list(tx)?
            .into_iter()
            .find(|k| k.id == key_id)
            .map(|k| k.name)
            .unwrap_or_default();
        Ok(Merged {
            edge,
            uses: report.uses.len(),
            updated,
        })
    })?;
    Ok(Ok(merged))
}
