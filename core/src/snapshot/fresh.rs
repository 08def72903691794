//! Freshness: whether a snapshot may still be used, by its signed expiry and, on the edge's
//! own terms, by its age (TUF's defence against freeze and rollback attacks).
//!
//! Both bounds are checked against the same clock, in milliseconds. A snapshot that is not
//! fresh is never accepted, and an edge drops the one it holds once it stops being fresh: a
//! replayed old snapshot only works inside its lifetime, and an edge cut off from its
//! publisher fails closed instead of enforcing a frozen token list forever.

use super::layout::Header;

/// Why a snapshot is no longer fresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    /// Its signed expiry has passed.
    #[error(
        "snapshot version {version} expired at {expires_at} (Unix seconds); the publisher re-signs the current state well before that (pat-admin serve, pat-admin publish)"
    )]
    Expired {
        /// The snapshot version.
        version: u64,
        /// Its signed expiry, Unix seconds.
        expires_at: u64,
    },
    /// Issued longer ago than this edge accepts (`max_snapshot_age_ms`).
    #[error(
        "snapshot version {version} was issued at {issued_at} (Unix seconds), more than max_snapshot_age_ms = {max_age_ms} ago"
    )]
    TooOld {
        /// The snapshot version.
        version: u64,
        /// When it was issued, Unix seconds.
        issued_at: u64,
        /// The edge's limit.
        max_age_ms: u64,
    },
}

/// Until when (Unix milliseconds, exclusive) a snapshot with this header may be used at an
/// edge that accepts snapshots up to `max_age_ms` old.
pub fn fresh_until_ms(header: &Header, max_age_ms: u64) -> u64 {
    let expires = header.expires_at.saturating_mul(1000);
    let aged = header
        .issued_at
        .saturating_mul(1000)
        .saturating_add(max_age_ms);
    expires.min(aged)
}

/// Checks that a snapshot may be used at `now_ms` (Unix milliseconds).
pub fn check_fresh(header: &Header, now_ms: u64, max_age_ms: u64) -> Result<(), Stale> {
    if now_ms >= header.expires_at.saturating_mul(1000) {
        return Err(Stale::Expired {
            version: header.version,
            expires_at: header.expires_at,
        });
    }
    if now_ms
        >= header
            .issued_at
            .saturating_mul(1000)
            .saturating_add(max_age_ms)
    {
        return Err(Stale::TooOld {
            version: header.version,
            issued_at: header.issued_at,
            max_age_ms,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(issued_at: u64, expires_at: u64) -> Header {
        Header {
            kind: super::super::layout::Kind::Full,
            state_tokens: 0,
            version: 3,
            base_version: 0,
            issued_at,
            expires_at,
            key_id: [0; 8],
            state_id: [0; 32],
            base_state_id: [0; 32],
            body_digest: [0; 32],
            method_count: 0,
            scope_count: 0,
            user_count: 0,
            record_count: 0,
            removed_count: 0,
            network_count: 0,
            env_method_count: 0,
            env_list_count: 0,
            restriction_count: 0,
            body_len: 0,
        }
    }

    #[test]
    fn the_earlier_bound_wins() {
        let h = header(1_000, 2_000);
        // Expiry first.
        assert_eq!(check_fresh(&h, 1_999_999, 10_000_000), Ok(()));
        assert_eq!(
            check_fresh(&h, 2_000_000, 10_000_000),
            Err(Stale::Expired {
                version: 3,
                expires_at: 2_000
            })
        );
        assert_eq!(fresh_until_ms(&h, 10_000_000), 2_000_000);
        // Age first.
        assert_eq!(check_fresh(&h, 1_499_999, 500_000), Ok(()));
        assert!(matches!(
            check_fresh(&h, 1_500_000, 500_000),
            Err(Stale::TooOld { .. })
        ));
        assert_eq!(fresh_until_ms(&h, 500_000), 1_500_000);
    }

    #[test]
    fn extreme_values_saturate() {
        let h = header(u64::MAX, u64::MAX);
        assert_eq!(check_fresh(&h, u64::MAX - 1, u64::MAX), Ok(()));
        let h = header(0, 0);
        assert!(check_fresh(&h, 0, u64::MAX).is_err());
    }
}
