//! Platform API method names and how request paths map to them.
//!
//! A method is `group.class.method` (the catalogue spells it `environment.Control.StopEnv`);
//! its REST path is `/1.0/{group}/{class}/rest/{method}`, which clients send lowercased.
//! The canonical form used everywhere (snapshot, scopes, comparisons) is all lowercase,
//! with group aliases expanded (`env` → `environment`).

use std::fmt;

/// Short group names accepted by the platform (used by platform scripts), and what they mean.
pub const GROUP_ALIASES: &[(&str, &str)] = &[("env", "environment")];

/// The API version segment the filter authorizes. Any other path is not an API method.
pub const API_VERSION: &str = "1.0";

/// Methods no token may ever call, whatever its scope says: tokens cannot mint or
/// manage tokens, nor sign in. Matched on the canonical `group.class.` prefix.
pub const TOKEN_FORBIDDEN_PREFIXES: &[&str] = &["users.authentication."];

/// Longest canonical method name accepted (the catalogue's longest is well under this).
pub const MAX_METHOD_NAME_LEN: usize = 128;

/// A canonical API method name: three lowercase `[a-z0-9_]` parts joined by dots.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MethodName(String);

/// Why a method name was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MethodNameError {
    /// Not three dot-separated parts.
    #[error(
        "`{0}` is not a method name: expected group.Class.Method, e.g. environment.Control.StopEnv"
    )]
    Shape(String),
    /// A part with characters other than letters, digits and `_`.
    #[error("`{0}` is not a method name: only letters, digits and `_` may appear between the dots")]
    Characters(String),
    /// Longer than [`MAX_METHOD_NAME_LEN`].
    #[error("method name is longer than {MAX_METHOD_NAME_LEN} characters")]
    TooLong,
}

impl MethodName {
    /// Parses a method name in any letter case (`environment.Control.StopEnv`,
    /// `env.control.stopenv`), expanding group aliases.
    pub fn parse(name: &str) -> Result<Self, MethodNameError> {
        if name.len() > MAX_METHOD_NAME_LEN {
            return Err(MethodNameError::TooLong);
        }
        let mut parts = name.split('.');
        let (Some(group), Some(class), Some(method), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MethodNameError::Shape(name.to_string()));
        };
        if [group, class, method].iter().any(|p| p.is_empty()) {
            return Err(MethodNameError::Shape(name.to_string()));
        }
        if ![group, class, method].iter().all(|p| is_name_part(p)) {
            return Err(MethodNameError::Characters(name.to_string()));
        }
        Ok(Self::from_parts(group, class, method))
    }

    fn from_parts(group: &str, class: &str, method: &str) -> Self {
        // One allocation: this runs on every token request at the edge.
        let group = GROUP_ALIASES
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(group))
            .map_or(group, |(_, full)| full);
        let mut out = String::with_capacity(group.len() + class.len() + method.len() + 2);
        out.push_str(group);
        out.push('.');
        out.push_str(class);
        out.push('.');
        out.push_str(method);
        out.make_ascii_lowercase();
        Self(out)
    }

    /// The canonical text, e.g. `environment.control.stopenv`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `group.class` service part, e.g. `environment.control`.
    pub fn service(&self) -> &str {
        self.0
            .rsplit_once('.')
            .map_or(&self.0, |(service, _)| service)
    }

    /// True for methods no token may call, whatever its scope (see [`TOKEN_FORBIDDEN_PREFIXES`]).
    pub fn is_forbidden_for_tokens(&self) -> bool {
        is_forbidden_for_tokens(&self.0)
    }
}

/// [`MethodName::is_forbidden_for_tokens`] on an already canonical name.
pub fn is_forbidden_for_tokens(canonical: &str) -> bool {
    TOKEN_FORBIDDEN_PREFIXES
        .iter()
        .any(|prefix| canonical.starts_with(prefix))
}

/// Is `text` a canonical method name (what a snapshot may contain)?
pub fn is_canonical(text: &str) -> bool {
    MethodName::parse(text).is_ok_and(|m| m.0 == text)
}

fn is_name_part(part: &str) -> bool {
    !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MethodName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MethodName({})", self.0)
    }
}

/// Why a request path does not name exactly one API method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not of the form `/1.0/{group}/{class}/rest/{method}`.
    #[error("the path is not an API method path (/{API_VERSION}/group/class/rest/method)")]
    NotAnApiPath,
    /// The path could reach another method than the one it seems to name after some
    /// server's normalization: percent-encoding, dot-segments, empty segments, path
    /// parameters, backslashes, fragments or non-ASCII bytes.
    #[error(
        "the path is ambiguous ({0}); send the plain /{API_VERSION}/group/class/rest/method form"
    )]
    Ambiguous(&'static str),
}

/// Resolves the method a request path (`:path`, query string allowed) addresses.
///
/// Strict on purpose: the filter authorizes a token for the method it resolves here, so any
/// path another component might normalize into a *different* method is refused rather than
/// guessed at.
pub fn resolve_path(path_and_query: &str) -> Result<MethodName, PathError> {
    // This runs on every token request at the edge: one pass over the path finds both
    // whether it is ambiguous and where its segments are; one allocation for the name.
    let path = path_and_query
        .as_bytes()
        .iter()
        .position(|&b| b == b'?')
        .and_then(|end| path_and_query.get(..end))
        .unwrap_or(path_and_query);
    let scan = scan(path);
    if let Some(reason) = scan.ambiguity {
        return Err(PathError::Ambiguous(reason));
    }
    // `/1.0/group/class/rest/method`: exactly five slashes, the first at the start.
    let [0, version, group, class, rest] = scan.slashes else {
        return Err(PathError::NotAnApiPath);
    };
    if scan.count != 5 {
        return Err(PathError::NotAnApiPath);
    }
    let segment = |from: usize, to: usize| path.get(from + 1..to).unwrap_or_default();
    let (group, class, rest, method) = (
        segment(version, group),
        segment(group, class),
        segment(class, rest),
        segment(rest, path.len()),
    );
    // Segments 2, 3 and 5 (group, class, method) must be name parts.
    let names = (1 << 2) | (1 << 3) | (1 << 5);
    if segment(0, version) == API_VERSION
        && rest.eq_ignore_ascii_case("rest")
        && scan.names & names == names
    {
        Ok(MethodName::from_parts(group, class, method))
    } else {
        Err(PathError::NotAnApiPath)
    }
}

/// What one pass over a path finds.
struct Scan {
    /// The first reason it is ambiguous, if any.
    ambiguity: Option<&'static str>,
    /// Where its first five slashes are (0 past the last one found), and how many it has.
    slashes: [usize; 5],
    count: usize,
    /// Bit `i`: segment `i` (the text before the first slash is segment 0) is a name part
    /// (see [`is_name_part`]), for the first eight segments.
    names: u8,
}

// What each byte is to the scan: a name character, another printable one, `.`, `/`, or a
// reason for the path to be ambiguous (the index into `SUSPICIOUS`).
const NAME: u8 = 0;
const PRINTABLE: u8 = 1;
const DOT: u8 = 2;
const SLASH: u8 = 3;
const FIRST_SUSPICIOUS: u8 = 4;
const SUSPICIOUS: [&str; 5] = [
    "percent-encoded characters",
    "path parameters",
    "backslashes",
    "a fragment",
    "spaces, control or non-ASCII characters",
];

/// Every byte's class (a table: the scan runs on every token request at the edge).
const CLASSES: [u8; 256] = classes();

#[allow(clippy::indexing_slicing)] // evaluated at compile time: an index out of range fails the build
const fn classes() -> [u8; 256] {
    let mut table = [FIRST_SUSPICIOUS + 4; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        table[b] = if (b as u8).is_ascii_alphanumeric() || b == b'_' as usize {
            NAME
        } else {
            PRINTABLE
        };
        b += 1;
    }
    table[b'.' as usize] = DOT;
    table[b'/' as usize] = SLASH;
    table[b'%' as usize] = FIRST_SUSPICIOUS;
    table[b';' as usize] = FIRST_SUSPICIOUS + 1;
    table[b'\\' as usize] = FIRST_SUSPICIOUS + 2;
    table[b'#' as usize] = FIRST_SUSPICIOUS + 3;
    table
}

#[cfg(test)]
fn ambiguity(path: &str) -> Option<&'static str> {
    scan(path).ambiguity
}

/// Scans a path (without its query): where its slashes are, which segments are name parts,
/// and the first reason it is ambiguous, if any. In order of precedence: a leading
/// character other than `/`; the first suspicious character; duplicate slashes; a trailing
/// slash; dot-segments.
fn scan(path: &str) -> Scan {
    let mut scan = Scan {
        ambiguity: None,
        slashes: [0; 5],
        count: 0,
        names: 0,
    };
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        scan.ambiguity = Some("it does not start with /");
        return scan;
    }
    let mut duplicate_slashes = false;
    let mut dot_segment = false;
    // The current segment: its length so far, whether it is all dots, all name characters.
    let (mut segment_len, mut all_dots, mut all_name) = (0usize, true, true);
    let mut after_slash = false;
    for (at, &b) in bytes.iter().enumerate() {
        let class = CLASSES
            .get(usize::from(b))
            .copied()
            .unwrap_or(FIRST_SUSPICIOUS + 4);
        match class {
            SLASH => {
                if let Some(slot) = scan.slashes.get_mut(scan.count) {
                    *slot = at;
                }
                if all_name && segment_len > 0 && scan.count < 8 {
                    scan.names |= 1 << scan.count;
                }
                scan.count += 1;
                duplicate_slashes |= after_slash;
                dot_segment |= all_dots && (segment_len == 1 || segment_len == 2);
                (segment_len, all_dots, all_name) = (0, true, true);
            }
            NAME => {
                segment_len += 1;
                all_dots = false;
            }
            DOT => {
                segment_len += 1;
                all_name = false;
            }
            PRINTABLE => {
                segment_len += 1;
                all_dots = false;
                all_name = false;
            }
            suspicious => {
                let reason = SUSPICIOUS.get(usize::from(suspicious - FIRST_SUSPICIOUS));
                scan.ambiguity = Some(reason.copied().unwrap_or("a suspicious character"));
                return scan;
            }
        }
        after_slash = class == SLASH;
    }
    if all_name && segment_len > 0 && scan.count < 8 {
        scan.names |= 1 << scan.count;
    }
    dot_segment |= all_dots && (segment_len == 1 || segment_len == 2);
    scan.ambiguity = if duplicate_slashes {
        Some("duplicate slashes")
    } else if after_slash && bytes.len() > 1 {
        Some("a trailing slash")
    } else if dot_segment {
        Some("dot-segments")
    } else {
        None
    };
    scan
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn resolved(path: &str) -> Result<String, PathError> {
        resolve_path(path).map(|m| m.as_str().to_string())
    }

    /// The straightforward multi-pass rules `ambiguity` implements in one pass.
    fn reference_ambiguity(path: &str) -> Option<&'static str> {
        if !path.starts_with('/') {
            return Some("it does not start with /");
        }
        for b in path.bytes() {
            match b {
                b'%' => return Some("percent-encoded characters"),
                b';' => return Some("path parameters"),
                b'\\' => return Some("backslashes"),
                b'#' => return Some("a fragment"),
                0x21..=0x7e => {}
                _ => return Some("spaces, control or non-ASCII characters"),
            }
        }
        if path.contains("//") {
            return Some("duplicate slashes");
        }
        if path.ends_with('/') && path.len() > 1 {
            return Some("a trailing slash");
        }
        if path.split('/').any(|s| s == "." || s == "..") {
            return Some("dot-segments");
        }
        None
    }

    proptest! {
        #[test]
        fn one_pass_ambiguity_matches_the_reference(path in "[/a.%;#\\\\ é1]{0,24}") {
            prop_assert_eq!(ambiguity(&path), reference_ambiguity(&path));
        }
    }

    #[test]
    fn resolves_api_paths_case_insensitively() {
        for path in [
            "/1.0/environment/control/rest/stopenv",
            "/1.0/Environment/Control/REST/StopEnv",
            "/1.0/env/control/rest/stopenv?envName=x&session=y",
            "/1.0/ENV/control/rest/stopenv",
        ] {
            assert_eq!(
                resolved(path).as_deref(),
                Ok("environment.control.stopenv"),
                "{path}"
            );
        }
        assert_eq!(
            resolved("/1.0/s3/bucket/rest/getlist").as_deref(),
            Ok("s3.bucket.getlist")
        );
    }

    #[test]
    fn other_paths_are_not_api_methods() {
        for path in [
            "/",
            "/1.0",
            "/1.0/environment/control/stopenv",
            "/1.0/environment/control/rest",
            "/1.0/environment/control/rest/stopenv/extra",
            "/2.0/environment/control/rest/stopenv",
            "/1.0/environment/control/soap/stopenv",
            "/1.0/environment/con-trol/rest/stopenv",
            "/1.0/environment/control.x/rest/stopenv",
            "/favicon.ico",
            "",
        ] {
            let expected = if path.is_empty() {
                Err(PathError::Ambiguous("it does not start with /"))
            } else {
                Err(PathError::NotAnApiPath)
            };
            assert_eq!(resolved(path), expected, "{path}");
        }
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        let cases = [
            (
                "/1.0/environment/control/rest/stop%65nv",
                "percent-encoded characters",
            ),
            (
                "/1.0/environment%2Fcontrol/rest/stopenv",
                "percent-encoded characters",
            ),
            (
                "/1.0/environment/control/rest/stopenv;jsessionid=1",
                "path parameters",
            ),
            (
                "/1.0//environment/control/rest/stopenv",
                "duplicate slashes",
            ),
            ("/1.0/environment/control/rest/stopenv/", "a trailing slash"),
            ("/1.0/environment/x/../control/rest/stopenv", "dot-segments"),
            ("/1.0/environment/./control/rest/stopenv", "dot-segments"),
            ("/1.0/environment\\control/rest/stopenv", "backslashes"),
            ("/1.0/environment/control/rest/stopenv#frag", "a fragment"),
            (
                "/1.0/environment/control/rest/stop env",
                "spaces, control or non-ASCII characters",
            ),
            (
                "/1.0/environment/contröl/rest/stopenv",
                "spaces, control or non-ASCII characters",
            ),
            (
                "1.0/environment/control/rest/stopenv",
                "it does not start with /",
            ),
        ];
        for (path, reason) in cases {
            assert_eq!(resolved(path), Err(PathError::Ambiguous(reason)), "{path}");
        }
        // The query string is not part of the path check.
        assert!(resolved("/1.0/env/control/rest/stopenv?a=%2F..%2F;x").is_ok());
    }

    #[test]
    fn parses_method_names() {
        let m = MethodName::parse("environment.Control.StopEnv").expect("valid");
        assert_eq!(m.as_str(), "environment.control.stopenv");
        assert_eq!(m.service(), "environment.control");
        assert_eq!(MethodName::parse("env.control.stopenv"), Ok(m));
        assert!(matches!(
            MethodName::parse("environment.Control"),
            Err(MethodNameError::Shape(_))
        ));
        assert!(matches!(
            MethodName::parse("a..b"),
            Err(MethodNameError::Shape(_))
        ));
        assert!(matches!(
            MethodName::parse("a.b.c.d"),
            Err(MethodNameError::Shape(_))
        ));
        assert!(matches!(
            MethodName::parse("a.b-c.d"),
            Err(MethodNameError::Characters(_))
        ));
        assert_eq!(
            MethodName::parse(&"a.b.".repeat(60)),
            Err(MethodNameError::TooLong)
        );
        assert!(is_canonical("environment.control.stopenv"));
        assert!(!is_canonical("environment.Control.stopenv"));
        assert!(!is_canonical("env.control.stopenv"));
    }

    #[test]
    fn authentication_methods_are_forbidden_for_tokens() {
        assert!(
            MethodName::parse("users.Authentication.Signin")
                .expect("valid")
                .is_forbidden_for_tokens()
        );
        assert!(
            resolve_path("/1.0/users/authentication/rest/createtoken")
                .expect("valid")
                .is_forbidden_for_tokens()
        );
        assert!(
            !MethodName::parse("users.Account.GetUserInfo")
                .expect("valid")
                .is_forbidden_for_tokens()
        );
    }

    /// The straightforward rules `resolve_path` implements in one pass.
    fn reference_resolve(path_and_query: &str) -> Result<MethodName, PathError> {
        let path = path_and_query
            .split_once('?')
            .map_or(path_and_query, |(p, _)| p);
        if let Some(reason) = reference_ambiguity(path) {
            return Err(PathError::Ambiguous(reason));
        }
        let seg: Vec<&str> = path.split('/').collect();
        match seg.as_slice() {
            ["", API_VERSION, group, class, rest, method]
                if rest.eq_ignore_ascii_case("rest")
                    && [group, class, method].iter().all(|p| is_name_part(p)) =>
            {
                Ok(MethodName::from_parts(group, class, method))
            }
            _ => Err(PathError::NotAnApiPath),
        }
    }

    proptest! {
        #[test]
        fn one_pass_resolution_matches_the_reference(
            parts in prop::collection::vec(prop_oneof![
                Just("/".to_string()), Just("1.0".to_string()), Just("rest".to_string()),
                Just("REST".to_string()), Just("env".to_string()), Just("?".to_string()),
                Just(".".to_string()), "[a-zA-Z0-9_%;#. -]{0,6}",
            ], 0..14),
        ) {
            let path = parts.concat();
            prop_assert_eq!(resolve_path(&path), reference_resolve(&path), "{}", path);
        }

        #[test]
        fn api_shaped_paths_resolve_as_the_reference_says(
            version in prop_oneof![Just("1.0"), Just("1.1"), Just("")],
            segments in prop::collection::vec("[a-zA-Z0-9_.~-]{0,6}", 4),
            rest in prop_oneof![Just("rest"), Just("REST"), Just("rst")],
            query in prop_oneof![Just(""), Just("?a=b"), Just("?x/y")],
        ) {
            let path = format!("/{version}/{}/{}/{rest}/{}{query}", segments[0], segments[1], segments[2]);
            prop_assert_eq!(resolve_path(&path), reference_resolve(&path), "{}", path);
            let deeper = format!("{path}/{}", segments[3]);
            prop_assert_eq!(resolve_path(&deeper), reference_resolve(&deeper), "{}", deeper);
        }

        #[test]
        fn resolve_never_panics_and_yields_canonical_names(path in "[/a-zA-Z0-9.%;_?#\\\\-]{0,64}") {
            if let Ok(m) = resolve_path(&path) {
                prop_assert!(is_canonical(m.as_str()));
            }
        }

        #[test]
        fn lowercase_and_uppercase_paths_agree(g in "[a-z][a-z0-9]{0,8}", c in "[a-z]{1,8}", m in "[a-z]{1,12}") {
            let lower = format!("/1.0/{g}/{c}/rest/{m}");
            let upper = lower.to_uppercase();
            prop_assert_eq!(resolve_path(&lower), resolve_path(&upper));
        }
    }
}
