//! The control endpoint's rules: where pushes are accepted and how outcomes are reported.
//!
//! Control replies use real HTTP statuses (this is an operator API, not the platform API)
//! and the same JSON shape, with `result` equal to the HTTP status on errors and
//! `source` = [`CONTROL_SOURCE`].

use std::net::{IpAddr, SocketAddr};

use pat_core::snapshot::SnapshotError;

use crate::replica::PushRejection;

/// `source` of control-endpoint errors.
pub const CONTROL_SOURCE: &str = pat_core::protocol::control::SOURCE;

/// Is a listener address (Envoy's `destination.address`, `ip:port`) loopback or on an
/// internal network (RFC 1918, RFC 6598 shared space, link-local, IPv6 unique-local)?
pub fn is_internal_address(address: &str) -> bool {
    let ip = address
        .parse::<SocketAddr>()
        .map(|s| s.ip())
        .or_else(|_| address.parse::<IpAddr>());
    match ip {
        Ok(IpAddr::V4(v4)) => is_internal_v4(v4),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => is_internal_v4(v4),
            None => {
                let first = v6.segments().first().copied().unwrap_or(0);
                v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
            }
        },
        Err(_) => false,
    }
}

fn is_internal_v4(ip: std::net::Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || (a == 100 && (64..128).contains(&b))
}

/// HTTP status for a refused push: 400 malformed or unusable, 403 untrusted or forged,
/// 409 not newer than what the edge (or its origin) holds, 413 too large, 503 retry later.
pub fn rejection_status(rejection: &PushRejection) -> u32 {
    match rejection {
        PushRejection::NotNewer { .. }
        | PushRejection::BelowFloor { .. }
        | PushRejection::DoesNotApply { .. } => 409,
        PushRejection::Invalid(SnapshotError::UntrustedKey(_) | SnapshotError::BadSignature(_)) => {
            403
        }
        PushRejection::Invalid(_) | PushRejection::Stale(_) | PushRejection::Unreadable => 400,
        PushRejection::TooLarge { .. } => 413,
        PushRejection::WaitingForOrigin | PushRejection::Busy | PushRejection::Store(_) => 503,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pat_core::keys::KeyId;

    #[test]
    fn internal_addresses() {
        for internal in [
            "127.0.0.1:10001",
            "10.1.2.3:80",
            "172.16.0.1:1",
            "192.168.1.1:443",
            "100.64.0.1:1",
            "169.254.1.1:1",
            "[::1]:10001",
            "[fd00::1]:1",
            "[fe80::1]:1",
            "[::ffff:10.0.0.1]:1",
            "127.0.0.1",
        ] {
            assert!(is_internal_address(internal), "{internal}");
        }
        for public in [
            "8.8.8.8:443",
            "172.32.0.1:1",
            "100.128.0.1:1",
            "[2001:db8::1]:1",
            "",
            "garbage",
        ] {
            assert!(!is_internal_address(public), "{public}");
        }
    }

    #[test]
    fn rejection_statuses() {
        assert_eq!(
            rejection_status(&PushRejection::NotNewer {
                offered: 1,
                current: 2
            }),
            409
        );
        assert_eq!(
            rejection_status(&PushRejection::BelowFloor {
                offered: 1,
                floor: 2
            }),
            409
        );
        assert_eq!(rejection_status(&PushRejection::WaitingForOrigin), 503);
        assert_eq!(
            rejection_status(&PushRejection::Stale(pat_core::snapshot::Stale::Expired {
                version: 1,
                expires_at: 2
            })),
            400
        );
        assert_eq!(
            rejection_status(&PushRejection::Invalid(SnapshotError::UntrustedKey(KeyId(
                [0; 8]
            )))),
            403
        );
        assert_eq!(
            rejection_status(&PushRejection::Invalid(SnapshotError::Digest)),
            400
        );
    }
}
