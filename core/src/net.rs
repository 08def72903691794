//! Client networks a token may be limited to: IPv4 and IPv6 CIDRs (`203.0.113.0/24`,
//! `2001:db8::/32`, a bare address meaning its own /32 or /128), and their 18-byte form in
//! snapshots.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// The most networks one token may be limited to: enough for a team's offices and CI
/// runners; a longer list belongs in a firewall.
pub const MAX_PER_TOKEN: usize = 32;

/// A network in CIDR notation, normalized (host bits cleared).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

/// Why a network was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// Not an address or CIDR.
    #[error(
        "`{0}` is not an IP network: use CIDR notation such as 203.0.113.0/24 or 2001:db8::/32"
    )]
    Syntax(String),
    /// A prefix longer than the address.
    #[error(
        "`{0}`: the prefix length is longer than the address (at most /32 for IPv4, /128 for IPv6)"
    )]
    Prefix(String),
    /// Host bits set below the prefix: almost always a typo.
    #[error("`{text}` has host bits set below its prefix; did you mean {normalized}?")]
    HostBits {
        /// What was given.
        text: String,
        /// The network it would denote.
        normalized: String,
    },
}

impl Network {
    /// The network of `addr` with `prefix` bits, host bits cleared.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        (prefix <= max).then(|| Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// Its address (host bits cleared).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// Its prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Does it contain `ip`? An IPv4-mapped IPv6 address is matched as IPv4.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.addr
            }
            _ => false,
        }
    }

    /// The 18-byte form: family (4 or 6), prefix, 16 address bytes (IPv4 in the first 4).
    pub fn encode(&self) -> [u8; 18] {
        let mut out = [0u8; 18];
        let (head, addr) = out.split_at_mut(2);
        match self.addr {
            IpAddr::V4(v4) => {
                head.copy_from_slice(&[4, self.prefix]);
                if let Some(slot) = addr.get_mut(..4) {
                    slot.copy_from_slice(&v4.octets());
                }
            }
            IpAddr::V6(v6) => {
                head.copy_from_slice(&[6, self.prefix]);
                addr.copy_from_slice(&v6.octets());
            }
        }
        out
    }

    /// Decodes [`Self::encode`]'s form; `None` unless it is exactly a normalized network.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let (&family, rest) = bytes.split_first()?;
        let (&prefix, addr) = rest.split_first()?;
        let addr: [u8; 16] = addr.try_into().ok()?;
        let ip = match family {
            4 => {
                let v4: [u8; 4] = addr.get(..4)?.try_into().ok()?;
                if addr.get(4..)?.iter().any(|&b| b != 0) {
                    return None;
                }
                IpAddr::V4(Ipv4Addr::from(v4))
            }
            6 => IpAddr::V6(Ipv6Addr::from(addr)),
            _ => return None,
        };
        let network = Self::new(ip, prefix)?;
        (network.addr == ip).then_some(network)
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let kept = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(bits & kept))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let kept = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(bits & kept))
        }
    }
}

impl FromStr for Network {
    type Err = NetworkError;

    fn from_str(text: &str) -> Result<Self, NetworkError> {
        let trimmed = text.trim();
        let (addr, prefix) = match trimmed.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (trimmed, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| NetworkError::Syntax(text.to_string()))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .map_err(|_| NetworkError::Prefix(text.to_string()))?,
            Some(_) => return Err(NetworkError::Syntax(text.to_string())),
        };
        let network =
            Self::new(addr, prefix).ok_or_else(|| NetworkError::Prefix(text.to_string()))?;
        if network.addr != addr {
            return Err(NetworkError::HostBits {
                text: text.to_string(),
                normalized: network.to_string(),
            });
        }
        Ok(network)
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> Network {
        text.parse().expect(text)
    }

    #[test]
    fn parses_and_matches() {
        let n = net("203.0.113.0/24");
        assert!(n.contains("203.0.113.77".parse().expect("ip")));
        assert!(!n.contains("203.0.114.1".parse().expect("ip")));
        assert!(
            n.contains("::ffff:203.0.113.5".parse().expect("ip")),
            "IPv4-mapped"
        );
        let one = net("127.0.0.2");
        assert_eq!(one.to_string(), "127.0.0.2/32");
        assert!(one.contains("127.0.0.2".parse().expect("ip")));
        assert!(!one.contains("127.0.0.1".parse().expect("ip")));
        let v6 = net("2001:db8::/32");
        assert!(v6.contains("2001:db8:1::5".parse().expect("ip")));
        assert!(!v6.contains("2001:db9::1".parse().expect("ip")));
        assert!(!v6.contains("203.0.113.1".parse().expect("ip")));
        assert!(net("0.0.0.0/0").contains("8.8.8.8".parse().expect("ip")));
        assert!(net("::/0").contains("::1".parse().expect("ip")));
    }

    #[test]
    fn refuses_what_is_not_a_network() {
        for (text, what) in [
            ("10.0.0.0/33", "prefix"),
            ("2001:db8::/129", "prefix"),
            ("10.0.0.1/24", "host bits"),
            ("example.com", "not an IP network"),
            ("10.0.0.0/", "not an IP network"),
            ("10.0.0.0/+8", "not an IP network"),
            ("", "not an IP network"),
        ] {
            let err = text.parse::<Network>().expect_err(text).to_string();
            assert!(err.contains(what), "{text}: {err}");
        }
        assert!(
            "10.0.0.1/24"
                .parse::<Network>()
                .expect_err("host bits")
                .to_string()
                .contains("10.0.0.0/24")
        );
    }

    #[test]
    fn encodes_in_18_bytes() {
        for text in ["10.1.0.0/16", "127.0.0.2/32", "2001:db8::/48", "::1/128"] {
            let n = net(text);
            assert_eq!(Network::decode(&n.encode()), Some(n), "{text}");
        }
        let mut bad = net("10.1.0.0/16").encode();
        bad[5] = 1; // a host bit
        assert_eq!(Network::decode(&bad), None);
        bad = net("10.1.0.0/16").encode();
        bad[0] = 5;
        assert_eq!(Network::decode(&bad), None);
    }
}
