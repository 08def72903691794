//! What the origin hands out, as `pat-admin serve` answers it over HTTP and as `publish`
//! sends it to an edge whose answer says it lags behind a pushed delta:
//!
//! - the **head**: the latest document's signed head (its first `BODY_OFFSET` bytes);
//! - the **full answer**: a bundle of the latest full snapshot and every delta after it —
//!   everything an edge that holds nothing (or another chain) needs;
//! - the **catch-up since V**: a bundle of the deltas `V+1..=latest`, when the store still
//!   has every one of them and together they are smaller than the full answer; otherwise the
//!   full answer. `V` = the latest version is an empty bundle.
//!
//! Each answer is first [`plan`]ned from metadata alone (which documents, its `ETag`, its
//! length), so a conditional request is answered without reading a byte of a document, then
//! [`load`]ed in the same read transaction.

use crate::store::db::Connection;
use pat_core::snapshot::Kind;
use pat_core::snapshot::bundle;

use crate::error::{Error, Result};
use crate::store::snapshots::{self, Stamp};

/// What an answer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The latest full snapshot (version `from`) and the deltas after it.
    Full {
        /// The full snapshot's version.
        from: u64,
    },
    /// The deltas after version `since` (none when `since` is the latest).
    Since {
        /// The version the edge holds.
        since: u64,
    },
}

/// A planned answer: the documents, in order, and what names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Full answer or catch-up.
    pub answer: Answer,
    /// The version the answer ends at (the latest).
    pub last_version: u64,
    /// The documents, `(version, kind)`, in order.
    pub documents: Vec<(u64, Kind)>,
    /// The bundle's length in bytes.
    pub len: u64,
    /// Its entity tag: the range and a digest of the signed heads at both ends, so that
    /// any other content (a compaction, a restored store) has another tag.
    pub etag: String,
}

/// 16 hex digits of BLAKE3 over the heads that pin an answer.
fn digest(heads: &[&[u8]]) -> String {
    let mut hasher = blake3::Hasher::new();
    for head in heads {
        hasher.update(head);
    }
    pat_core::hex::encode(&hasher.finalize().as_bytes()[..8])
}

fn bundle_len(lens: impl Iterator<Item = u64>) -> u64 {
    bundle::PREFIX_LEN as u64 - 8 + lens.map(|l| l + 8).sum::<u64>()
}

/// The full answer: the latest full snapshot and the deltas after it, linked.
fn full_plan(conn: &Connection) -> Result<Option<Plan>> {
    let Some(full) = snapshots::latest_full_stamp(conn)? else {
        return Ok(None);
    };
    let full_head = snapshots::head_of(conn, full.version, Kind::Full)?.unwrap_or_default();
    let deltas = snapshots::deltas_after(conn, full.version)?;
    check_links(&full, deltas.iter().map(|(s, _)| s))?;
    let last_version = deltas.last().map_or(full.version, |(s, _)| s.version);
    let last_head = deltas
        .last()
        .map_or(full_head.as_slice(), |(_, h)| h.as_slice());
    let mut documents = vec![(full.version, Kind::Full)];
    documents.extend(deltas.iter().map(|(s, _)| (s.version, Kind::Delta)));
    Ok(Some(Plan {
        answer: Answer::Full { from: full.version },
        last_version,
        len: bundle_len(std::iter::once(full.len).chain(deltas.iter().map(|(s, _)| s.len))),
        etag: format!(
            "\"full-{}-{last_version}-{}\"",
            full.version,
            digest(&[&full_head, last_head])
        ),
        documents,
    }))
}

/// Every delta names the document before it.
fn check_links<'a>(first: &Stamp, deltas: impl Iterator<Item = &'a Stamp>) -> Result<()> {
    let mut previous = first.version;
    for delta in deltas {
        if delta.base_version != Some(previous) {
            return Err(Error::Internal(format!(
                "the stored chain has a gap: the delta to version {} does not follow version {previous}",
                delta.version
            )));
        }
        previous = delta.version;
    }
    Ok(())
}

/// Plans the answer to an edge that holds version `since` (`None` or 0: nothing). `None`
/// when nothing has been published.
pub fn plan(conn: &Connection, since: Option<u64>) -> Result<Option<Plan>> {
    let Some(full) = full_plan(conn)? else {
        return Ok(None);
    };
    let since = match since {
        Some(v) if v > 0 && v <= full.last_version => v,
        // Nothing held, or more than the origin has (another chain): the full answer.
        _ => return Ok(Some(full)),
    };
    let latest_head = snapshots::latest_head(conn)?
        .map(|(_, h)| h)
        .unwrap_or_default();
    if since == full.last_version {
        return Ok(Some(Plan {
            answer: Answer::Since { since },
            last_version: since,
            documents: Vec::new(),
            len: bundle_len(std::iter::empty()),
            etag: format!("\"since-{since}-{since}-{}\"", digest(&[&latest_head])),
        }));
    }
    let deltas = snapshots::deltas_after(conn, since)?;
    let complete = deltas.first().and_then(|(s, _)| s.base_version) == Some(since)
        && deltas.last().map(|(s, _)| s.version) == Some(full.last_version)
        && deltas
            .windows(2)
            .all(|w| w[1].0.base_version == Some(w[0].0.version));
    let len = bundle_len(deltas.iter().map(|(s, _)| s.len));
    if !complete || len >= full.len {
        return Ok(Some(full));
    }
    let first_head = deltas
        .first()
        .map(|(_, h)| h.as_slice())
        .unwrap_or_default();
    Ok(Some(Plan {
        answer: Answer::Since { since },
        last_version: full.last_version,
        documents: deltas
            .iter()
            .map(|(s, _)| (s.version, Kind::Delta))
            .collect(),
        len,
        etag: format!(
            "\"since-{since}-{}-{}\"",
            full.last_version,
            digest(&[first_head, &latest_head])
        ),
    }))
}

/// The bundle a plan describes (read in the same transaction as the plan).
pub fn load(conn: &Connection, plan: &Plan) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(usize::try_from(plan.len).unwrap_or(0));
    out.extend_from_slice(&bundle::MAGIC);
    out.extend_from_slice(&(plan.documents.len() as u32).to_le_bytes());
    for &(version, kind) in &plan.documents {
        let bytes = snapshots::bytes_of(conn, version, kind)?;
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    Ok(out)
}

/// The answer to an edge that holds `since`, planned and loaded in one read transaction:
/// the plan and the bundle. `None` when nothing has been published.
pub fn answer(conn: &Connection, since: Option<u64>) -> Result<Option<(Plan, Vec<u8>)>> {
    match plan(conn, since)? {
        Some(plan) => {
            let bytes = load(conn, &plan)?;
            Ok(Some((plan, bytes)))
        }
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_lengths_match_the_encoding() {
        let docs: [&[u8]; 2] = [&[1; 300], &[2; 264]];
        assert_eq!(
            bundle_len(docs.iter().map(|d| d.len() as u64)),
            bundle::encode(docs).len() as u64
        );
        assert_eq!(
            bundle_len(std::iter::empty()),
            bundle::encode([]).len() as u64
        );
    }
}
