//! Token expiry dates: entered as `DD-MM-YYYY`, valid through the end of that day in UTC.
//! Stored as the exclusive instant that ends it (the next day's 00:00:00 UTC, Unix seconds),
//! which is what the snapshot carries and the edge compares with its clock.

use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime};

/// The input format, as shown in messages.
pub const FORMAT: &str = "DD-MM-YYYY";

/// Why an expiry date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    /// Not `DD-MM-YYYY`.
    #[error("`{0}` is not a date: use {FORMAT}, e.g. 31-12-2026")]
    Format(String),
    /// Before today (UTC).
    #[error(
        "{0} is in the past (dates are in UTC; the token would be valid through the end of that day)"
    )]
    Past(String),
    /// Beyond the configured maximum lifetime.
    #[error(
        "{date} is beyond the maximum token lifetime of {days} days (latest allowed: {latest})"
    )]
    TooFar {
        /// The date given.
        date: String,
        /// The configured maximum.
        days: u32,
        /// The last allowed date.
        latest: String,
    },
    /// No expiry, but a maximum lifetime is configured.
    #[error(
        "tokens need an expiry date: the maximum token lifetime is {0} days (use --expires-at {FORMAT})"
    )]
    Required(u32),
}

/// Parses `DD-MM-YYYY` and returns the exclusive end instant (Unix seconds), checking it is
/// not in the past and, when `max_days` is set, not beyond it.
pub fn parse(text: &str, now: OffsetDateTime, max_days: Option<u32>) -> Result<u64, ExpiryError> {
    let text = text.trim();
    let date = Date::parse(text, format_description!("[day]-[month]-[year]"))
        .map_err(|_| ExpiryError::Format(text.to_string()))?;
    let today = now.date();
    if date < today {
        return Err(ExpiryError::Past(text.to_string()));
    }
    if let Some(days) = max_days {
        let latest = today + Duration::days(i64::from(days));
        if date > latest {
            return Err(ExpiryError::TooFar {
                date: text.to_string(),
                days,
                latest: format(latest),
            });
        }
    }
    let end = date
        .next_day()
        .ok_or_else(|| ExpiryError::Format(text.to_string()))?;
    u64::try_from(end.midnight().assume_utc().unix_timestamp())
        .map_err(|_| ExpiryError::Format(text.to_string()))
}

/// Checks the "no expiry" choice against the configured maximum lifetime.
pub fn check_none(max_days: Option<u32>) -> Result<(), ExpiryError> {
    match max_days {
        Some(days) => Err(ExpiryError::Required(days)),
        None => Ok(()),
    }
}

/// The last valid day of an exclusive end instant, as `DD-MM-YYYY`.
pub fn last_day(expires_at: u64) -> String {
    let end = i64::try_from(expires_at).unwrap_or(i64::MAX);
    OffsetDateTime::from_unix_timestamp(end.saturating_sub(1))
        .map(|t| format(t.date()))
        .unwrap_or_else(|_| "?".into())
}

fn format(date: Date) -> String {
    date.format(format_description!("[day]-[month]-[year]"))
        .unwrap_or_else(|_| date.to_string())
}

/// RFC 3339 text of a Unix instant.
pub fn rfc3339(unix: u64) -> String {
    OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-27 15:30 UTC);

    #[test]
    fn valid_through_the_end_of_the_day() {
        let end = parse("31-12-2026", NOW, None).expect("valid");
        assert_eq!(end, datetime!(2027-01-01 00:00 UTC).unix_timestamp() as u64);
        assert_eq!(last_day(end), "31-12-2026");
        // Today is still allowed: valid until midnight UTC.
        assert_eq!(
            parse("27-11-2026", NOW, None),
            Ok(datetime!(2026-11-28 00:00 UTC).unix_timestamp() as u64)
        );
    }

    #[test]
    fn bad_dates_say_the_format() {
        for bad in [
            "2026-12-31",
            "31/12/2026",
            "31-13-2026",
            "32-01-2027",
            "1-1-2027",
            "29-02-2027",
            "",
            "tomorrow",
        ] {
            let err = parse(bad, NOW, None).expect_err(bad);
            assert!(matches!(err, ExpiryError::Format(_)), "{bad}: {err}");
            assert!(err.to_string().contains("DD-MM-YYYY"), "{err}");
        }
        assert!(parse("29-02-2028", NOW, None).is_ok());
    }

    #[test]
    fn past_and_too_far() {
        assert_eq!(
            parse("26-11-2026", NOW, None),
            Err(ExpiryError::Past("26-11-2026".into()))
        );
        assert!(parse("27-12-2026", NOW, Some(30)).is_ok());
        let err = parse("28-12-2026", NOW, Some(30)).expect_err("too far");
        assert!(
            err.to_string().contains("latest allowed: 27-12-2026"),
            "{err}"
        );
        assert_eq!(check_none(None), Ok(()));
        assert_eq!(check_none(Some(30)), Err(ExpiryError::Required(30)));
    }

    #[test]
    fn instants_as_text() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    }
}
