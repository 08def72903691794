//! The request's `envName`: what the single pass that finds `session` also reports
//! ([`crate::session::find_params`], the multipart scan), for tokens limited to a list of
//! environments.
//!
//! The finding is order-independent: a parameter named `envName` in another case anywhere
//! (`envname`, `ENVNAME`, `envNam%45`: [`is_env_other_case`]) makes it
//! [`EnvFinding::Ambiguous`], whatever else is found, since a platform that reads names
//! without regard to case could act on it; otherwise two different values anywhere (query,
//! form, multipart, before or after the file) make it [`EnvFinding::Conflicting`];
//! identical repeated values are one value. Values are decoded like `session`'s and not
//! validated here: the decision compares them with the token's list.
//!
//! Nothing here refuses a request: only a token with a list of environments is judged on
//! it. When the session finding is a refusal, the env finding is whatever was found before
//! the scan stopped (the request is refused anyway).

use std::fmt;

use crate::session::is_other_case_of;

/// The parameter that names the environment a platform method acts on.
pub const ENV_NAME_PARAM: &str = "envName";

/// Longest `envName` value kept as it is; a longer one is [`EnvName::Long`], which no list
/// of environments contains.
pub const MAX_ENV_NAME_BYTES: usize = 64;

/// The longest name (in bytes) that can read `envName` in another case: no non-ASCII
/// character folds into its letters (checked in the tests), so only ASCII ones do.
pub(crate) const ENV_OTHER_CASE_MAX_BYTES: usize = 7;

/// An `envName` value as the platform decodes it (form-urlencoded rules, invalid UTF-8
/// replaced), kept inline (no allocation) up to [`MAX_ENV_NAME_BYTES`].
#[derive(Clone)]
pub enum EnvName {
    /// A value of at most [`MAX_ENV_NAME_BYTES`] bytes.
    Short {
        /// Its length.
        len: u8,
        /// Its bytes (UTF-8), zero after `len`.
        bytes: [u8; MAX_ENV_NAME_BYTES],
    },
    /// A value longer than that: no list contains it. Two long values are taken for one
    /// (they do not conflict); a long one beside a short one does.
    Long,
}

impl EnvName {
    /// The value as found (long values are not kept).
    pub fn new(value: &str) -> Self {
        Self::from_text(value.as_bytes())
    }

    /// A value already known to be ASCII (a plain urlencoded value), without checking it
    /// is UTF-8 again.
    pub(crate) fn from_ascii(value: &[u8]) -> Self {
        debug_assert!(value.is_ascii());
        Self::from_text(value)
    }

    /// `value`: UTF-8.
    fn from_text(value: &[u8]) -> Self {
        let mut bytes = [0; MAX_ENV_NAME_BYTES];
        match bytes.get_mut(..value.len()) {
            Some(slot) => {
                slot.copy_from_slice(value);
                Self::Short {
                    len: value.len() as u8,
                    bytes,
                }
            }
            None => Self::Long,
        }
    }

    /// The kept bytes (`None`: long).
    fn kept(&self) -> Option<&[u8]> {
        match self {
            Self::Short { len, bytes } => bytes.get(..usize::from(*len)),
            Self::Long => None,
        }
    }

    /// The value, or `None` when it is longer than [`MAX_ENV_NAME_BYTES`].
    pub fn as_str(&self) -> Option<&str> {
        self.kept().and_then(|kept| std::str::from_utf8(kept).ok())
    }
}

/// Two long values are the same one.
impl PartialEq for EnvName {
    fn eq(&self, other: &Self) -> bool {
        self.kept() == other.kept()
    }
}

impl Eq for EnvName {}

impl fmt::Debug for EnvName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(value) => write!(f, "{value:?}"),
            None => f.write_str("Long"),
        }
    }
}

/// What the request's parameters say about `envName`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EnvFinding {
    /// No `envName` parameter (nor one in another case).
    #[default]
    Absent,
    /// Exactly one value (possibly repeated identically): the decisive one.
    Found(EnvName),
    /// Two or more different values.
    Conflicting,
    /// A parameter named `envName` in another case ([`is_env_other_case`]), or a multipart
    /// file part named `envName`: a place the platform might read an environment name from
    /// but the filter does not.
    Ambiguous,
}

impl EnvFinding {
    /// Folds one more value into the finding.
    pub(crate) fn note(&mut self, value: EnvName) {
        match self {
            Self::Absent => *self = Self::Found(value),
            Self::Found(previous) if *previous == value => {}
            Self::Found(_) => *self = Self::Conflicting,
            Self::Conflicting | Self::Ambiguous => {}
        }
    }

    /// Combines what two parts of one request carry (the query and the body, or the
    /// multipart head and a later part): ambiguity anywhere wins, then different values.
    pub fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Ambiguous, _) | (_, Self::Ambiguous) => Self::Ambiguous,
            (Self::Conflicting, _) | (_, Self::Conflicting) => Self::Conflicting,
            (Self::Absent, other) | (other, Self::Absent) => other,
            (Self::Found(a), Self::Found(b)) if a == b => Self::Found(a),
            (Self::Found(_), Self::Found(_)) => Self::Conflicting,
        }
    }

    /// The one decisive value, if there is one.
    pub fn value(&self) -> Option<&EnvName> {
        match self {
            Self::Found(value) => Some(value),
            _ => None,
        }
    }
}

/// Is `name` (decoded) the `envName` parameter's name in another case, as a platform that
/// compares names without regard to case would take it (`envname`, `ENVNAME`)? The same
/// rule as `session`'s ([`crate::session::is_other_case`]); no non-ASCII letter folds into
/// the letters of `envName`, so any name that is not 7 bytes long is decided by its length.
pub fn is_env_other_case(name: &[u8]) -> bool {
    is_other_case_of(name, ENV_NAME_PARAM, ENV_OTHER_CASE_MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_kept_inline_up_to_the_cap() {
        let at_cap = "e".repeat(MAX_ENV_NAME_BYTES);
        assert_eq!(EnvName::new(&at_cap).as_str(), Some(at_cap.as_str()));
        assert_eq!(EnvName::new("").as_str(), Some(""));
        assert_eq!(EnvName::new("my-project").as_str(), Some("my-project"));
        let long = "e".repeat(MAX_ENV_NAME_BYTES + 1);
        assert_eq!(EnvName::new(&long), EnvName::Long);
        assert_eq!(EnvName::new(&long).as_str(), None);
        assert_eq!(EnvName::new(&long), EnvName::new(&"f".repeat(100)));
        assert_ne!(EnvName::new(&long), EnvName::new(&at_cap));
        assert_ne!(EnvName::new("ab"), EnvName::new("abc"));
        assert_eq!(
            EnvName::from_ascii(b"my-project"),
            EnvName::new("my-project")
        );
        assert_eq!(format!("{:?}", EnvName::new("a")), "\"a\"");
    }

    fn found(value: &str) -> EnvFinding {
        EnvFinding::Found(EnvName::new(value))
    }

    impl EnvFinding {
        fn add(mut self, value: &str) -> Self {
            self.note(EnvName::new(value));
            self
        }
    }

    #[test]
    fn adding_and_merging() {
        use EnvFinding::*;
        assert_eq!(Absent.add("a"), found("a"));
        assert_eq!(found("a").add("a"), found("a"));
        assert_eq!(found("a").add("b"), Conflicting);
        assert_eq!(found("").add("a"), Conflicting);
        assert_eq!(Conflicting.add("a"), Conflicting);
        assert_eq!(Ambiguous.add("a"), Ambiguous);
        let long = "x".repeat(MAX_ENV_NAME_BYTES + 1);
        assert_eq!(
            Absent.add(&long).add(&"y".repeat(200)),
            Found(EnvName::Long)
        );
        assert_eq!(Absent.add(&long).add("y"), Conflicting);
        // Merging: ambiguity wins, then conflicts, then different values conflict.
        let all = [Absent, found("a"), found("b"), Conflicting, Ambiguous];
        for x in &all {
            for y in &all {
                let merged = x.clone().merge(y.clone());
                assert_eq!(merged, y.clone().merge(x.clone()), "{x:?} {y:?}");
                let expected = match (x, y) {
                    (Ambiguous, _) | (_, Ambiguous) => Ambiguous,
                    (Conflicting, _) | (_, Conflicting) => Conflicting,
                    (Absent, v) | (v, Absent) => v.clone(),
                    (a, b) if a == b => a.clone(),
                    _ => Conflicting,
                };
                assert_eq!(merged, expected, "{x:?} {y:?}");
            }
        }
        assert_eq!(found("a").value().and_then(EnvName::as_str), Some("a"));
        assert_eq!(Conflicting.value(), None);
    }

    #[test]
    fn other_case_names() {
        for name in ["envname", "ENVNAME", "EnvName", "envNAME", "eNVnAME"] {
            assert!(is_env_other_case(name.as_bytes()), "{name}");
        }
        for name in [
            "envName", "envNam", "envNames", "env_name", "envNamé", "ENVNAME ", "", "session",
        ] {
            assert!(!is_env_other_case(name.as_bytes()), "{name}");
        }
    }
}
