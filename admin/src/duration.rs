//! Durations as operators write them: a whole number and a unit, `s`, `m`, `h` or `d`
//! (`90m`, `24h`, `7d`).

/// Why a duration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Not a number followed by a unit.
    #[error(
        "`{0}` is not a duration: write a whole number and a unit, e.g. 90m, 24h or 7d (units: s, m, h, d)"
    )]
    Form(String),
    /// Too large to represent.
    #[error("`{0}` is too long a duration")]
    Overflow(String),
}

/// Parses `90m`, `24h`, `7d`, `3600s` into seconds.
pub fn parse(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    let form = || DurationError::Form(text.to_string());
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .filter(|&at| at > 0)
        .ok_or_else(form)?;
    let (number, unit) = text.split_at(split);
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(form()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_secs))
        .ok_or_else(|| DurationError::Overflow(text.to_string()))
}

/// Seconds in the largest unit that divides them exactly: `1d`, `36h`, `90m`, `61s`.
pub fn text(secs: u64) -> String {
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
        if secs >= size && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints() {
        for (given, secs, shown) in [
            ("90m", 5_400, "90m"),
            ("24h", 86_400, "1d"),
            ("7d", 604_800, "7d"),
            (" 60s ", 60, "1m"),
            ("36h", 129_600, "36h"),
            ("61s", 61, "61s"),
            ("0s", 0, "0s"),
        ] {
            assert_eq!(parse(given), Ok(secs), "{given}");
            assert_eq!(text(secs), shown, "{secs}");
        }
        for bad in [
            "", "h", "24", "24 h", "1.5h", "-1h", "24H", "1w", "h24", "1d2h",
        ] {
            assert!(matches!(parse(bad), Err(DurationError::Form(_))), "{bad:?}");
        }
        assert!(matches!(
            parse("99999999999999999999d"),
            Err(DurationError::Overflow(_))
        ));
    }
}
