//! Per-token rate limits: `N/s` or `N/min`, their text form and their form in snapshots.
//!
//! An edge enforces a limit as a token bucket that refills at the limit's rate and holds
//! [`RateLimit::burst`] requests: one second's worth, at least one. So `50/s` allows a burst
//! of 50 and then one request every 20 ms; `30/min` allows one request and then one every
//! 2 s. A limit holds per edge: across N edges a token gets at most N times its limit.

use std::fmt;
use std::str::FromStr;

/// The largest count a limit may have (per second or per minute).
pub const MAX_COUNT: u32 = 1_000_000;

/// The period a limit counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Per {
    /// Requests per second.
    Second,
    /// Requests per minute.
    Minute,
}

impl Per {
    /// Seconds in the period.
    pub fn seconds(self) -> u32 {
        match self {
            Self::Second => 1,
            Self::Minute => 60,
        }
    }

    fn from_seconds(seconds: u32) -> Option<Self> {
        match seconds {
            1 => Some(Self::Second),
            60 => Some(Self::Minute),
            _ => None,
        }
    }
}

/// A limit: at most `count` requests per period, with a burst of one second's worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RateLimit {
    count: u32,
    per: Per,
}

/// Why a limit was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitError {
    /// Not `N/s` or `N/min`.
    #[error("`{0}` is not a rate limit: write it as N/s or N/min, e.g. 10/s or 600/min")]
    Syntax(String),
    /// Zero or more than [`MAX_COUNT`].
    #[error("`{0}`: the count must be from 1 to {MAX_COUNT}")]
    Count(String),
}

impl RateLimit {
    /// At most `count` requests per `per`; `None` for 0 or more than [`MAX_COUNT`].
    pub fn new(count: u32, per: Per) -> Option<Self> {
        (1..=MAX_COUNT)
            .contains(&count)
            .then_some(Self { count, per })
    }

    /// Requests per period.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The period.
    pub fn per(&self) -> Per {
        self.per
    }

    /// How many requests the bucket holds: one second's worth, at least one.
    pub fn burst(&self) -> u32 {
        self.count.div_ceil(self.per.seconds()).max(1)
    }

    /// Nanoseconds between two requests at the steady rate.
    pub fn interval_nanos(&self) -> u64 {
        u64::from(self.per.seconds()) * 1_000_000_000 / u64::from(self.count)
    }

    /// The snapshot form: the count and the period in seconds.
    pub fn to_wire(self) -> (u32, u32) {
        (self.count, self.per.seconds())
    }

    /// From the snapshot form; `None` when it is not a limit this code writes.
    pub fn from_wire(count: u32, period_seconds: u32) -> Option<Self> {
        Self::new(count, Per::from_seconds(period_seconds)?)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.per {
            Per::Second => write!(f, "{}/s", self.count),
            Per::Minute => write!(f, "{}/min", self.count),
        }
    }
}

impl FromStr for RateLimit {
    type Err = RateLimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shown = || text.chars().take(40).collect::<String>();
        let (count, per) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| RateLimitError::Syntax(shown()))?;
        let per = match per.trim().to_ascii_lowercase().as_str() {
            "s" | "sec" | "second" => Per::Second,
            "m" | "min" | "minute" => Per::Minute,
            _ => return Err(RateLimitError::Syntax(shown())),
        };
        let count = count.trim();
        if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RateLimitError::Syntax(shown()));
        }
        let count: u32 = count.parse().map_err(|_| RateLimitError::Count(shown()))?;
        Self::new(count, per).ok_or_else(|| RateLimitError::Count(shown()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_bad_text_is_refused() {
        for (text, shown) in [
            ("10/s", "10/s"),
            (" 600 / min ", "600/min"),
            ("5/second", "5/s"),
            ("1/M", "1/min"),
        ] {
            let limit: RateLimit = text.parse().unwrap();
            assert_eq!(limit.to_string(), shown);
            assert_eq!(shown.parse::<RateLimit>(), Ok(limit));
        }
        for bad in ["", "10", "10/h", "/s", "-1/s", "1.5/s", "ten/s", "10/s/s"] {
            assert!(
                matches!(bad.parse::<RateLimit>(), Err(RateLimitError::Syntax(_))),
                "{bad}"
            );
        }
        for bad in ["0/s", "1000001/min", "99999999999/s"] {
            assert!(
                matches!(bad.parse::<RateLimit>(), Err(RateLimitError::Count(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn burst_is_one_seconds_worth_at_least_one() {
        let limit = |t: &str| t.parse::<RateLimit>().unwrap();
        assert_eq!(limit("50/s").burst(), 50);
        assert_eq!(limit("30/min").burst(), 1);
        assert_eq!(limit("600/min").burst(), 10);
        assert_eq!(limit("61/min").burst(), 2);
        assert_eq!(limit("50/s").interval_nanos(), 20_000_000);
        assert_eq!(limit("30/min").interval_nanos(), 2_000_000_000);
    }

    #[test]
    fn wire_form_round_trips_and_refuses_what_this_code_never_writes() {
        let limit: RateLimit = "7/min".parse().unwrap();
        assert_eq!(limit.to_wire(), (7, 60));
        assert_eq!(RateLimit::from_wire(7, 60), Some(limit));
        assert_eq!(RateLimit::from_wire(0, 1), None);
        assert_eq!(RateLimit::from_wire(7, 2), None);
        assert_eq!(RateLimit::from_wire(MAX_COUNT + 1, 1), None);
    }
}
