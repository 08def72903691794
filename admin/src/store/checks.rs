//! Password checks under way: at most one per account (or login that names none) and per
//! client address at a time, across every process on the store (the CLI, `serve`'s API).
//!
//! A check takes a *slot* for each of its keys in one write transaction before it waits out
//! its back-off, and gives them back in the transaction that records its result. A slot
//! names its holder (a random id), when the check is expected to be over (its back-off and
//! the check itself: what "retry in N s" is computed from), when it stops blocking even if
//! its holder never gives it back (a process killed while it waited), and how many attempts
//! it refused: the first refusal is audited at once, the rest in one entry when the check
//! ends, so a flood of refused attempts cannot flood the audit log.

use crate::store::db::{Connection, OptionalExtension, params};

use crate::error::{Error, Result};

/// What a check's slots are keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    /// An account, or a login that names none (any case: compared lowercased, as account
    /// names are), so unknown logins queue exactly like accounts.
    Login(&'a str),
    /// A client address (API calls).
    Address(&'a str),
}

impl Key<'_> {
    fn text(&self) -> String {
        match self {
            Self::Login(name) => format!("login:{}", name.to_ascii_lowercase()),
            Self::Address(address) => format!("address:{address}"),
        }
    }
}

/// A check holding its slots: give them back with [`release`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder(i64);

impl Holder {
    /// A new random holder id.
    pub fn new() -> Result<Self> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Self(i64::from_le_bytes(bytes)))
    }
}

/// What [`take`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Every slot is this check's now.
    Yes,
    /// A slot is held (the others were not taken): the check holding it is expected to be
    /// over at `until` (Unix milliseconds); `first` when this is the first attempt it
    /// refused (later ones are counted on it, for one audit entry at its end).
    Busy {
        /// Unix milliseconds.
        until: u64,
        /// The first attempt refused while that check is under way.
        first: bool,
    },
}

/// Inside a write transaction: takes a slot for every key, or none when one of them is held
/// (the refusal is counted on the slots that were). Slots whose holders are past `stale_at`
/// are dropped first.
pub fn take(
    tx: &Connection,
    keys: &[Key<'_>],
    holder: Holder,
    now_ms: u64,
    ends_at: u64,
    stale_at: u64,
) -> Result<Taken> {
    tx.prepare_cached("DELETE FROM password_checks WHERE stale_at <= ?1")?
        .execute([now_ms as i64])?;
    let mut busy: Option<(u64, bool)> = None;
    for key in keys {
        let held: Option<(i64, i64)> = tx
            .prepare_cached(
                "UPDATE password_checks SET refused = refused + 1 WHERE key = ?1 RETURNING ends_at, refused",
            )?
            .query_row([key.text()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        if let Some((end, refused)) = held {
            let (end, first) = (end.max(0) as u64, refused == 1);
            busy = Some(busy.map_or((end, first), |(e, f)| (e.max(end), f || first)));
        }
    }
    if let Some((until, first)) = busy {
        return Ok(Taken::Busy { until, first });
    }
    for key in keys {
        tx.prepare_cached(
            "INSERT INTO password_checks (key, holder, ends_at, stale_at) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            key.text(),
            holder.0,
            ends_at as i64,
            stale_at as i64
        ])?;
    }
    Ok(Taken::Yes)
}

/// Gives back every slot `holder` took; how many attempts they refused meanwhile.
pub fn release(conn: &Connection, holder: Holder) -> Result<u64> {
    let refused: i64 = conn
        .prepare_cached("SELECT coalesce(sum(refused), 0) FROM password_checks WHERE holder = ?1")?
        .query_row([holder.0], |row| row.get(0))?;
    conn.prepare_cached("DELETE FROM password_checks WHERE holder = ?1")?
        .execute([holder.0])?;
    Ok(refused.max(0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Connection {
        let conn = Connection::sqlite_in_memory().expect("memory");
        crate::store::schema::migrate(&conn).expect("schema");
        conn
    }

    #[test]
    fn one_holder_per_key_until_released_or_stale() {
        let conn = store();
        let (a, b) = (Holder(1), Holder(2));
        let busy = |until, first| Taken::Busy { until, first };
        let keys = [Key::Login("Alice"), Key::Address("192.0.2.1")];
        assert_eq!(
            take(&conn, &keys, a, 1_000, 3_000, 63_000).expect("take"),
            Taken::Yes
        );
        // The account in another case, or the address alone: held until 3 s; the first
        // refusal of each slot says so.
        assert_eq!(
            take(&conn, &[Key::Login("ALICE")], b, 2_000, 9_000, 69_000).expect("take"),
            busy(3_000, true)
        );
        assert_eq!(
            take(&conn, &[Key::Address("192.0.2.1")], b, 2_000, 9_000, 69_000).expect("take"),
            busy(3_000, true)
        );
        assert_eq!(
            take(&conn, &keys, b, 2_000, 9_000, 69_000).expect("take"),
            busy(3_000, false)
        );
        // Another account from another address is free.
        let free = [Key::Login("bob"), Key::Address("192.0.2.2")];
        assert_eq!(
            take(&conn, &free, b, 2_000, 9_000, 69_000).expect("take"),
            Taken::Yes
        );
        // Nothing of a refused attempt was taken: releasing b frees only bob's keys.
        assert_eq!(release(&conn, b).expect("release"), 0);
        assert_eq!(
            take(&conn, &[Key::Login("alice")], b, 2_500, 9_000, 69_000).expect("take"),
            busy(3_000, false)
        );
        // a's slots refused 1 + 1 + 2 + 1 attempts.
        assert_eq!(release(&conn, a).expect("release"), 5);
        assert_eq!(
            take(&conn, &keys, b, 2_600, 9_000, 69_000).expect("take"),
            Taken::Yes
        );
        // A holder that never comes back stops blocking at its stale time.
        assert_eq!(
            take(&conn, &keys, a, 68_999, 70_000, 130_000).expect("take"),
            busy(9_000, true)
        );
        assert_eq!(
            take(&conn, &keys, a, 69_000, 70_000, 130_000).expect("take"),
            Taken::Yes
        );
    }
}
