//! Environment names a token may be limited to, and the list's form in snapshots.
//!
//! An environment's name is the first label of its domain (`shortdomain` when the platform
//! creates it: `my-app` in `my-app.platform.example`), so the rules are a DNS label's: 1 to
//! 63 ASCII letters, digits and hyphens, not starting or ending with a hyphen. Domains are
//! case-insensitive, and so is the platform's lookup of an environment by name: names are
//! kept in lowercase and a request's `envName` is compared without regard to ASCII case.
//!
//! In a snapshot a list is its names, lowercase, sorted, unique, joined by commas (no name
//! holds one); [`list_contains`] checks a request's name against that form without
//! allocating.

use std::fmt;

/// The most environments one token may be limited to.
pub const MAX_PER_TOKEN: usize = 32;

/// The longest environment name (a DNS label).
pub const MAX_NAME_LEN: usize = 63;

/// The request parameter that names an environment.
pub const ENV_PARAM: &str = "envName";

/// Why an environment name or list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvNameError {
    /// Empty.
    #[error("an environment name cannot be empty")]
    Empty,
    /// Longer than a DNS label.
    #[error("environment name `{0}` is longer than {MAX_NAME_LEN} characters")]
    TooLong(String),
    /// A character the platform does not allow.
    #[error(
        "environment name `{0}` may hold only letters, digits and hyphens, and may not start or end with a hyphen"
    )]
    Characters(String),
    /// More names than a token may carry.
    #[error("a token may be limited to at most {MAX_PER_TOKEN} environments ({0} given)")]
    TooMany(usize),
}

/// Checks one name as the platform allows it; the name is returned in lowercase.
pub fn normalize_name(name: &str) -> Result<String, EnvNameError> {
    if name.is_empty() {
        return Err(EnvNameError::Empty);
    }
    // The length check first, so a hostile megabyte is not echoed back in full.
    if name.len() > MAX_NAME_LEN {
        let shown: String = name.chars().take(MAX_NAME_LEN).collect();
        return Err(EnvNameError::TooLong(format!("{shown}…")));
    }
    let bytes = name.as_bytes();
    let allowed = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || *b == b'-');
    if !allowed || bytes.first() == Some(&b'-') || bytes.last() == Some(&b'-') {
        return Err(EnvNameError::Characters(name.escape_debug().to_string()));
    }
    Ok(name.to_ascii_lowercase())
}

/// A token's environment list: names valid, lowercase, sorted and unique, 1 to
/// [`MAX_PER_TOKEN`] of them. An empty list is "any environment" and is not an `EnvList`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvList(Vec<String>);

impl EnvList {
    /// A list from names as given (any case, any order, repeats folded); `Ok(None)` for no
    /// names (any environment).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Option<Self>, EnvNameError> {
        let mut list = names
            .iter()
            .map(|n| normalize_name(n.as_ref().trim()))
            .collect::<Result<Vec<_>, _>>()?;
        list.sort();
        list.dedup();
        if list.len() > MAX_PER_TOKEN {
            return Err(EnvNameError::TooMany(list.len()));
        }
        Ok((!list.is_empty()).then_some(Self(list)))
    }

    /// The names, lowercase and sorted.
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// The snapshot form: names joined by commas.
    pub fn encoded(&self) -> String {
        self.0.join(",")
    }

    /// Does it hold `name` (compared without regard to ASCII case)?
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for EnvList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// Is `encoded` (a list in snapshot form) a valid list: names valid and lowercase, sorted,
/// unique, 1 to [`MAX_PER_TOKEN`] of them?
pub fn is_valid_encoded(encoded: &str) -> bool {
    let mut count = 0;
    let mut previous: Option<&str> = None;
    for name in encoded.split(',') {
        count += 1;
        let canonical = normalize_name(name).is_ok_and(|n| n == name);
        if !canonical || previous.is_some_and(|p| p >= name) || count > MAX_PER_TOKEN {
            return false;
        }
        previous = Some(name);
    }
    true
}

/// Does the list in snapshot form hold `name` (compared without regard to ASCII case)? No
/// allocation: this runs on the request path.
pub fn list_contains(encoded: &str, name: &str) -> bool {
    list_contains_bytes(encoded.as_bytes(), name.as_bytes())
}

/// [`list_contains`] over bytes (a list as a snapshot holds it, a name as a request gives
/// it).
pub fn list_contains_bytes(encoded: &[u8], name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && encoded
            .split(|&b| b == b',')
            .any(|listed| listed.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dns_label_rules_and_fold_to_lowercase() {
        assert_eq!(normalize_name("My-App2"), Ok("my-app2".into()));
        assert_eq!(normalize_name("a"), Ok("a".into()));
        assert_eq!(normalize_name(""), Err(EnvNameError::Empty));
        for bad in [
            "-app", "app-", "my app", "my_app", "app,b", "ün", "a.b", "a/b",
        ] {
            assert!(
                matches!(normalize_name(bad), Err(EnvNameError::Characters(_))),
                "{bad}"
            );
        }
        let long = "a".repeat(64);
        assert!(matches!(
            normalize_name(&long),
            Err(EnvNameError::TooLong(_))
        ));
        assert!(normalize_name(&"a".repeat(63)).is_ok());
    }

    #[test]
    fn lists_are_sorted_unique_lowercase_and_bounded() {
        let list = EnvList::parse(&["Prod", "dev", "prod", " staging "])
            .unwrap()
            .unwrap();
        assert_eq!(list.names(), ["dev", "prod", "staging"]);
        assert_eq!(list.encoded(), "dev,prod,staging");
        assert_eq!(list.to_string(), "dev, prod, staging");
        assert!(list.contains("PROD") && !list.contains("pro"));
        assert_eq!(EnvList::parse::<&str>(&[]), Ok(None));
        let many: Vec<String> = (0..33).map(|i| format!("e{i}")).collect();
        assert_eq!(EnvList::parse(&many), Err(EnvNameError::TooMany(33)));
        assert!(EnvList::parse(&many[..32]).unwrap().is_some());
    }

    #[test]
    fn encoded_lists_are_checked_and_searched_without_case() {
        assert!(is_valid_encoded("dev,prod"));
        for bad in ["", "prod,dev", "dev,dev", "Dev", "dev,", ",dev", "a b"] {
            assert!(!is_valid_encoded(bad), "{bad:?}");
        }
        let many: Vec<String> = (0..33).map(|i| format!("e{i:02}")).collect();
        assert!(!is_valid_encoded(&many.join(",")));
        assert!(is_valid_encoded(&many[..32].join(",")));
        assert!(list_contains("dev,prod", "PROD"));
        assert!(list_contains("dev,prod", "dev"));
        assert!(!list_contains("dev,prod", "de"));
        assert!(!list_contains("dev,prod", ""));
        assert!(!list_contains("dev,prod", "dev,prod"));
    }
}
