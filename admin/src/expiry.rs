//! Token expiry dates: entered as `DD-MM-YYYY`, valid through the end of that day in UTC.
//! Stored as the exclusive instant that ends it (the next day's 00:00:00 UTC, Unix seconds),
//! which is what the snapshot carries and the edge compares with its clock.
//!
//! The platform API sends an instant instead, `yyyy-MM-dd HH:mm:ss` in UTC ([`parse_api`]),
//! and its dashboard a day, `dd-mm-yyyy`: both are accepted there.

use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime};

/// The input format, as shown in messages.
pub const FORMAT: &str = "DD-MM-YYYY";
/// The platform API's format of instants (UTC), as shown in messages.
pub const API_FORMAT: &str = "yyyy-MM-dd HH:mm:ss";

/// Why an expiry date was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpiryError {
    /// Not `DD-MM-YYYY`.
    #[error("`{0}` is not a date: use {FORMAT}, e.g. 31-12-2026")]
    Format(String),
    /// Year first (`2027-12-31`): the order is day, month, year.
    #[error("`{given}` has the year first: write the day first, {FORMAT}: {suggestion}")]
    YearFirst {
        /// What was given.
        given: String,
        /// The same date as `DD-MM-YYYY`.
        suggestion: String,
    },
    /// The month part is not 01 to 12.
    #[error(
        "`{given}`: month {month} does not exist (the month is the middle part of {FORMAT}, 01 to 12)"
    )]
    Month {
        /// What was given.
        given: String,
        /// The month part.
        month: u8,
    },
    /// The day part does not exist in that month.
    #[error(
        "`{given}`: {month_name} {year} has no day {day} (it has {days} days; the day is the first part of {FORMAT})"
    )]
    Day {
        /// What was given.
        given: String,
        /// The day part.
        day: u8,
        /// The month's name.
        month_name: String,
        /// The year.
        year: i32,
        /// Days in that month.
        days: u8,
    },
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
    /// Neither an API instant nor a `DD-MM-YYYY` day.
    #[error(
        "`{0}` is not a date: use {API_FORMAT} (UTC), e.g. 2026-12-31 23:59:59, or {FORMAT} (valid through that day)"
    )]
    ApiFormat(String),
    /// An instant that has passed.
    #[error("{0} (UTC) is in the past")]
    PastInstant(String),
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
    let date = date(text)?;
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

/// Parses an expiry as the platform API sends it: `yyyy-MM-dd HH:mm:ss` (also with a `T`),
/// an instant in UTC that must be in the future; or the dashboard's `dd-mm-yyyy`, valid
/// through that day (as [`parse`]). Returns the exclusive end instant (Unix seconds). With
/// `max_days`, the instant may be at most the end of the day `max_days` from today, as for
/// a day.
pub fn parse_api(
    text: &str,
    now: OffsetDateTime,
    max_days: Option<u32>,
) -> Result<u64, ExpiryError> {
    let text = text.trim();
    let bytes = text.as_bytes();
    if bytes.len() == 10 && bytes[2] == b'-' && bytes[5] == b'-' {
        return parse(text, now, max_days);
    }
    let normalized = text.replacen('T', " ", 1);
    let at = PrimitiveDateTime::parse(
        &normalized,
        format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .map_err(|_| ExpiryError::ApiFormat(text.to_string()))?
    .assume_utc();
    if at <= now {
        return Err(ExpiryError::PastInstant(text.to_string()));
    }
    if let Some(days) = max_days {
        let latest = now.date() + Duration::days(i64::from(days));
        let end = latest
            .next_day()
            .map(|d| d.midnight().assume_utc())
            .ok_or_else(|| ExpiryError::ApiFormat(text.to_string()))?;
        if at > end {
            return Err(ExpiryError::TooFar {
                date: text.to_string(),
                days,
                latest: format(latest),
            });
        }
    }
    u64::try_from(at.unix_timestamp()).map_err(|_| ExpiryError::ApiFormat(text.to_string()))
}

/// An instant as the platform API writes it: `yyyy-MM-dd HH:mm:ss` (UTC).
pub fn api_instant(unix: u64) -> String {
    OffsetDateTime::from_unix_timestamp(i64::try_from(unix).unwrap_or(i64::MAX))
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// `DD-MM-YYYY` as a date, saying which part is wrong when it is not one.
fn date(text: &str) -> Result<Date, ExpiryError> {
    let format = || ExpiryError::Format(text.to_string());
    let parts: Vec<&str> = text.split('-').collect();
    let [first, second, third] = parts.as_slice() else {
        return Err(format());
    };
    if !parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format());
    }
    if first.len() == 4 && second.len() == 2 && third.len() == 2 {
        return Err(ExpiryError::YearFirst {
            given: text.to_string(),
            suggestion: format!("{third}-{second}-{first}"),
        });
    }
    if (first.len(), second.len(), third.len()) != (2, 2, 4) {
        return Err(format());
    }
    let (day, month, year) = match (
        first.parse::<u8>(),
        second.parse::<u8>(),
        third.parse::<i32>(),
    ) {
        (Ok(d), Ok(m), Ok(y)) => (d, m, y),
        _ => return Err(format()),
    };
    let month = time::Month::try_from(month).map_err(|_| ExpiryError::Month {
        given: text.to_string(),
        month,
    })?;
    let days = month.length(year);
    Date::from_calendar_date(year, month, day).map_err(|_| ExpiryError::Day {
        given: text.to_string(),
        day,
        month_name: month.to_string(),
        year,
        days,
    })
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
        for bad in ["31/12/2026", "1-1-2027", "", "tomorrow", "31-12-26"] {
            let err = parse(bad, NOW, None).expect_err(bad);
            assert!(matches!(err, ExpiryError::Format(_)), "{bad}: {err}");
            assert!(err.to_string().contains("DD-MM-YYYY"), "{err}");
        }
        // Which part is wrong.
        for (bad, says) in [
            (
                "2027-12-31",
                "year first: write the day first, DD-MM-YYYY: 31-12-2027",
            ),
            ("31-13-2026", "month 13 does not exist"),
            ("32-01-2027", "January 2027 has no day 32 (it has 31 days"),
            ("29-02-2027", "February 2027 has no day 29 (it has 28 days"),
            ("31-02-2027", "February 2027 has no day 31"),
            ("00-03-2027", "March 2027 has no day 0"),
        ] {
            let err = parse(bad, NOW, None).expect_err(bad).to_string();
            assert!(err.contains(says), "{bad}: {err}");
            assert!(err.contains("DD-MM-YYYY"), "{err}");
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
        assert_eq!(api_instant(0), "1970-01-01 00:00:00");
    }

    #[test]
    fn api_instants_and_dashboard_days() {
        let at = parse_api("2026-12-31 12:30:00", NOW, None).expect("instant");
        assert_eq!(at, datetime!(2026-12-31 12:30 UTC).unix_timestamp() as u64);
        assert_eq!(parse_api("2026-12-31T12:30:00", NOW, None), Ok(at));
        assert_eq!(api_instant(at), "2026-12-31 12:30:00");
        // The dashboard's day: through its end.
        assert_eq!(
            parse_api("31-12-2026", NOW, None),
            Ok(datetime!(2027-01-01 00:00 UTC).unix_timestamp() as u64)
        );
        assert!(matches!(
            parse_api("2026-11-27 15:29:59", NOW, None),
            Err(ExpiryError::PastInstant(_))
        ));
        for bad in [
            "2026-12-31",
            "2026-13-01 00:00:00",
            "31.12.2026",
            "soon",
            "",
        ] {
            assert!(
                matches!(parse_api(bad, NOW, None), Err(ExpiryError::ApiFormat(_))),
                "{bad}"
            );
        }
        assert!(parse_api("31-13-2026", NOW, None).is_err());
        // The maximum lifetime: through the end of the day max_days from today.
        assert!(parse_api("2026-12-27 23:59:59", NOW, Some(30)).is_ok());
        assert!(parse_api("2026-12-28 00:00:00", NOW, Some(30)).is_ok());
        assert!(matches!(
            parse_api("2026-12-28 00:00:01", NOW, Some(30)),
            Err(ExpiryError::TooFar { .. })
        ));
    }
}
