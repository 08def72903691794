//! Finding the `session` parameter in a query string or an
//! `application/x-www-form-urlencoded` body, and removing it when configured to.
//!
//! Decoding follows the form-urlencoded rules servlet containers apply (`+` is a space,
//! `%XX` escapes, names decoded too), so `sess%69on=…` is found like `session=…`.
//! Several `session` values that differ are reported as a conflict: the edge cannot know
//! which one the platform would use, so it refuses to guess. So is a parameter named
//! `session` in another case (`Session`, `SESSION`, `sess%49on`; see [`is_other_case`])
//! beside a token, whatever its value: a platform that reads names without regard to case
//! could act on it instead of the token. Without a token such a parameter changes nothing.
//! A value in token format anywhere else (another parameter, a differently spelled name
//! such as `Session` or `session[]`, a value with a token inside, the path) is reported as a
//! stray token: the platform could read it, and stripping could not remove it.
//!
//! The same pass reports the request's `envName` ([`find_params`], [`Findings`]; the rules
//! are in [`crate::env_name`]).

use std::borrow::Cow;

use crate::env_name::{ENV_NAME_PARAM, EnvFinding, EnvName, is_env_other_case};
use crate::stray::{contains_token, hides_token};

/// The parameter that carries tokens and login sessions.
pub const SESSION_PARAM: &str = "session";

/// What a search for `session` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionFinding {
    /// No `session` parameter.
    Absent,
    /// Exactly one value (possibly repeated identically).
    Found(String),
    /// No `session`, but a parameter named `session` in another case ([`is_other_case`]):
    /// nothing to decide on its own, a conflict beside a token found anywhere else.
    OtherCase,
    /// Two or more different values.
    Conflicting,
    /// A token-format value outside the one decisive `session` value.
    StrayToken,
    /// The body could not be parsed (the reason is safe to show).
    Unparseable(&'static str),
    /// The body is larger than the configured inspection limit.
    TooLarge,
}

impl SessionFinding {
    /// Folds one more value into the finding.
    pub(crate) fn add(self, value: Cow<'_, str>) -> Self {
        match self {
            Self::Absent => Self::Found(value.into_owned()),
            Self::OtherCase => Self::Found(value.into_owned()).with_other_case(),
            Self::Found(previous) if previous == value => Self::Found(previous),
            Self::Found(_) => Self::Conflicting,
            other => other,
        }
    }

    /// Folds in a parameter named `session` in another case: beside a token, a conflict.
    /// Beside an ordinary session it changes nothing, and nothing needs remembering: a token
    /// found later differs from that session, which conflicts anyway.
    pub(crate) fn with_other_case(self) -> Self {
        match self {
            Self::Absent => Self::OtherCase,
            Self::Found(value) if pat_core::token::is_token_like(&value) => Self::Conflicting,
            other => other,
        }
    }

    /// Combines what two parts of one request carry (the query and the body): different
    /// values conflict, so does a token in one beside `session` in another case in the
    /// other, and the first refusal wins.
    pub fn merge(self, other: Self) -> Self {
        match (self, other) {
            (Self::Absent, other) => other,
            (Self::OtherCase, other) => other.with_other_case(),
            (found @ Self::Found(_), Self::Absent) => found,
            (found @ Self::Found(_), Self::OtherCase) => found.with_other_case(),
            (Self::Found(a), Self::Found(b)) if a == b => Self::Found(a),
            (Self::Found(_), Self::Found(_)) => Self::Conflicting,
            (Self::Found(_), refusal) => refusal,
            (refusal, _) => refusal,
        }
    }

    /// A finding that refuses the request whatever else is found.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, Self::Absent | Self::OtherCase | Self::Found(_))
    }
}

/// What one pass over a request's parameters found: the `session` and the `envName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    /// The `session`, or why the request is refused.
    pub session: SessionFinding,
    /// The `envName` (only a token limited to environments is judged on it).
    pub env: EnvFinding,
}

impl Default for Findings {
    fn default() -> Self {
        Self {
            session: SessionFinding::Absent,
            env: EnvFinding::Absent,
        }
    }
}

impl Findings {
    /// Combines what two parts of one request carry (the query and the body), each finding
    /// by its own rule ([`SessionFinding::merge`], [`EnvFinding::merge`]).
    pub fn merge(self, other: Self) -> Self {
        Self {
            session: self.session.merge(other.session),
            env: self.env.merge(other.env),
        }
    }
}

/// Searches urlencoded pairs (a query string or a form body) for the `session` value, and
/// for token-format values anywhere else ([`SessionFinding::StrayToken`]): the session
/// half of [`find_params`].
pub fn find_in_pairs(raw: &[u8]) -> SessionFinding {
    find_params(raw).session
}

/// Searches urlencoded pairs (a query string or a form body) in one pass for the `session`
/// value, for token-format values anywhere else ([`SessionFinding::StrayToken`]), and for
/// the `envName` ([`EnvFinding`]; when the session finding is a refusal, the env finding
/// is what was found until the search stopped).
///
/// This runs on every request, so the common case takes no allocation: a pair without
/// escapes is compared and searched as is, and a plain value is borrowed. Anything with `%`
/// or `+` goes through `form_urlencoded`, which defines the result either way. What
/// `envName` adds for a pair whose name is not 7 bytes long is one comparison of lengths.
pub fn find_params(raw: &[u8]) -> Findings {
    let mut finding = SessionFinding::Absent;
    let mut env = EnvFinding::Absent;
    for pair in raw.split(|&b| b == b'&') {
        let (name, value) = match memchr::memchr(b'=', pair) {
            Some(at) => (
                pair.get(..at).unwrap_or_default(),
                pair.get(at + 1..).unwrap_or_default(),
            ),
            None => (pair, &b""[..]),
        };
        let plain_name = !is_escaped(name);
        if plain_name && name != SESSION_PARAM.as_bytes() {
            // Not the session: a token here is a stray one. `+` decodes to a space, which
            // no token contains, so only `%` escapes need decoding to be searched.
            let stray = if memchr::memchr(b'%', value).is_some() {
                form_urlencoded::parse(pair)
                    .next()
                    .is_some_and(|(_, v)| contains_token(v.as_bytes()))
            } else {
                contains_token(pair)
            };
            if stray {
                return Findings {
                    session: SessionFinding::StrayToken,
                    env,
                };
            }
            if is_other_case(name) {
                finding = finding.with_other_case();
                if finding == SessionFinding::Conflicting {
                    break;
                }
            }
            note_env(&mut env, name, || env_value(pair, value));
            continue;
        }
        let value = if plain_name && !is_escaped(value) {
            text(value)
        } else {
            match form_urlencoded::parse(pair).next() {
                Some((name, value)) if name == SESSION_PARAM => value,
                Some((name, value)) => {
                    if contains_token(name.as_bytes()) || contains_token(value.as_bytes()) {
                        return Findings {
                            session: SessionFinding::StrayToken,
                            env,
                        };
                    }
                    if is_other_case(name.as_bytes()) {
                        finding = finding.with_other_case();
                        if finding == SessionFinding::Conflicting {
                            break;
                        }
                    }
                    note_env(&mut env, name.as_bytes(), || EnvName::new(&value));
                    continue;
                }
                None => continue,
            }
        };
        if hides_token(value.as_bytes()) {
            return Findings {
                session: SessionFinding::StrayToken,
                env,
            };
        }
        finding = finding.add(value);
        if finding == SessionFinding::Conflicting {
            break;
        }
    }
    Findings {
        session: finding,
        env,
    }
}

/// Folds a parameter that is not `session` (its name decoded) into `env`: an `envName`
/// value (decoded by `value`, only then), a name in another case, or nothing. Any name not
/// 7 bytes long is decided by that alone.
#[inline]
fn note_env(env: &mut EnvFinding, name: &[u8], value: impl FnOnce() -> EnvName) {
    if name.len() != ENV_NAME_PARAM.len() {
        return;
    }
    if name == ENV_NAME_PARAM.as_bytes() {
        env.note(value());
    } else if is_env_other_case(name) {
        *env = EnvFinding::Ambiguous;
    }
}

/// The value of the plain-named pair `pair` (`raw`), decoded as `form_urlencoded` decodes
/// it. An ASCII value without escapes (the common case) is taken as it is: a byte loop
/// costs less than searching it and checking it is UTF-8 on values this short.
fn env_value(pair: &[u8], raw: &[u8]) -> EnvName {
    if raw.iter().all(|&b| b.is_ascii() && b != b'%' && b != b'+') {
        return EnvName::from_ascii(raw);
    }
    let decoded = form_urlencoded::parse(pair)
        .next()
        .map(|(_, value)| value)
        .unwrap_or_default();
    EnvName::new(&decoded)
}

/// Is `name` (decoded, UTF-8) the `session` parameter's name in another case, as a platform
/// that compares names without regard to case would take it?
///
/// Each letter in either ASCII case, and the non-ASCII letters Unicode's case mappings and
/// case folding turn into them (`ſ` into `s`, `ß` and `ẞ` into `ss`, `ı` and `İ` into `i`;
/// [`FOLDS`]): what Java's `equalsIgnoreCase` or `toUpperCase`, or a case fold, take for
/// `session`. Not `session` itself.
///
/// This runs on every query pair: any name not 7 to 11 bytes long is decided by its length,
/// an ASCII one by one comparison.
pub fn is_other_case(name: &[u8]) -> bool {
    is_other_case_of(name, SESSION_PARAM, SESSION_OTHER_CASE_MAX_BYTES)
}

/// The longest name (in bytes) that can read `session` in another case: `ſ` for each of
/// its three `s` and `ı` for its `i` (checked in the tests).
const SESSION_OTHER_CASE_MAX_BYTES: usize = 11;

/// The non-ASCII characters that Unicode's case mappings (upper, lower) or case folding turn
/// into ASCII letters only, with those letters (lower case): every such character there
/// is (checked in the tests against Unicode's tables as Rust has them).
const FOLDS: [(char, &str); 13] = [
    ('ß', "ss"),
    ('ı', "i"),
    ('İ', "i"),
    ('ſ', "s"),
    ('ẞ', "ss"),
    ('\u{212A}', "k"), // KELVIN SIGN
    ('ﬀ', "ff"),
    ('ﬁ', "fi"),
    ('ﬂ', "fl"),
    ('ﬃ', "ffi"),
    ('ﬄ', "ffl"),
    ('ﬅ', "st"),
    ('ﬆ', "st"),
];

/// Is `name` (decoded) the parameter `param` (ASCII) in another case, by the rule of
/// [`is_other_case`]? `max_bytes`: the longest name that can fold into `param` (its length
/// when none of [`FOLDS`] folds into its letters); any name outside `param.len()..=max_bytes`
/// is decided by its length.
#[inline]
pub(crate) fn is_other_case_of(name: &[u8], param: &str, max_bytes: usize) -> bool {
    if !(param.len()..=max_bytes).contains(&name.len()) || name == param.as_bytes() {
        return false;
    }
    if name.is_ascii() {
        return name.eq_ignore_ascii_case(param.as_bytes());
    }
    // Non-ASCII letters take two bytes or more each (`ß`: two for two letters, `ẞ`: three).
    std::str::from_utf8(name).is_ok_and(|name| folds_to(name, param))
}

/// Whether `name`, each letter folded as [`is_other_case`] says, reads `param`.
fn folds_to(name: &str, param: &str) -> bool {
    let mut want = param.bytes().map(|b| b.to_ascii_lowercase());
    for c in name.chars() {
        let matches = if c.is_ascii() {
            want.next() == Some(c.to_ascii_lowercase() as u8)
        } else {
            match FOLDS.iter().find(|(from, _)| *from == c) {
                Some((_, to)) => to.bytes().all(|b| want.next() == Some(b)),
                None => false,
            }
        };
        if !matches {
            return false;
        }
    }
    want.next().is_none()
}

/// Does the path part of `:path` (before the `?`) carry a token-format value, as is or
/// `%`-encoded (`/x;session=pate_…`, `/pate_…/`)?
pub fn path_carries_token(path: &[u8]) -> bool {
    if contains_token(path) {
        return true;
    }
    memchr::memchr(b'%', path).is_some() && {
        let decoded: Vec<u8> = percent_encoding::percent_decode(path).collect();
        contains_token(&decoded)
    }
}

/// Whether urlencoded bytes need decoding (`%XX` escapes or `+` for space).
fn is_escaped(raw: &[u8]) -> bool {
    memchr::memchr2(b'%', b'+', raw).is_some()
}

/// Bytes as text, invalid UTF-8 replaced (the way `form_urlencoded` decodes), borrowed when
/// valid.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Splits `:path` into path and query (without the `?`).
pub fn split_path(path_and_query: &[u8]) -> (&[u8], Option<&[u8]>) {
    match path_and_query.iter().position(|&b| b == b'?') {
        Some(at) => (
            path_and_query.get(..at).unwrap_or_default(),
            path_and_query.get(at + 1..),
        ),
        None => (path_and_query, None),
    }
}

/// Removes every `session` pair from urlencoded bytes, keeping every other pair byte for
/// byte (nothing is re-encoded). Returns `None` when there was nothing to remove.
pub fn strip_pairs(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    push_kept(raw, &mut out).then_some(out)
}

/// `:path` without its `session` pairs (the `?` goes too when nothing else remains).
///
/// This runs on every allowed request when the token is stripped (as `envoy.yaml` ships):
/// one allocation, and a pair's name is only decoded when it is escaped.
pub fn strip_from_path(path_and_query: &[u8]) -> Option<Vec<u8>> {
    let (path, query) = split_path(path_and_query);
    let query = query?;
    let mut out = Vec::with_capacity(path_and_query.len());
    out.extend_from_slice(path);
    out.push(b'?');
    if !push_kept(query, &mut out) {
        return None;
    }
    if out.len() == path.len() + 1 {
        out.pop();
    }
    Some(out)
}

/// Appends the pairs of `raw` that are not `session` to `out`, joined by `&` as they were;
/// returns whether any was left out.
fn push_kept(raw: &[u8], out: &mut Vec<u8>) -> bool {
    let (mut removed, mut first) = (false, true);
    for pair in raw.split(|&b| b == b'&') {
        if is_session_pair(pair) {
            removed = true;
            continue;
        }
        if !first {
            out.push(b'&');
        }
        first = false;
        out.extend_from_slice(pair);
    }
    removed
}

/// Whether one urlencoded pair is a `session` pair, its name decoded as `form_urlencoded`
/// decodes it: a plain name (no `%` or `+`) is compared as it is.
fn is_session_pair(pair: &[u8]) -> bool {
    let name = match memchr::memchr(b'=', pair) {
        Some(at) => pair.get(..at).unwrap_or_default(),
        None => pair,
    };
    if is_escaped(name) {
        form_urlencoded::parse(pair)
            .next()
            .is_some_and(|(name, _)| name == SESSION_PARAM)
    } else {
        name == SESSION_PARAM.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn found(s: &str) -> SessionFinding {
        SessionFinding::Found(s.to_string())
    }

    #[test]
    fn finds_the_session_however_it_is_encoded() {
        assert_eq!(find_in_pairs(b"envName=x&session=abc"), found("abc"));
        assert_eq!(find_in_pairs(b"sess%69on=abc"), found("abc"));
        assert_eq!(find_in_pairs(b"session=pate%5Fabc"), found("pate_abc"));
        assert_eq!(find_in_pairs(b"session=a+b"), found("a b"));
        assert_eq!(find_in_pairs(b"&&session=abc&&"), found("abc"));
        assert_eq!(find_in_pairs(b"session"), found(""));
        assert_eq!(find_in_pairs(b"session="), found(""));
    }

    #[test]
    fn tokens_outside_the_session_are_stray() {
        let t = pat_core::token::Token::generate().expect("rng");
        let t = t.expose();
        for raw in [
            format!("Session={t}"),
            format!("SESSION={t}"),
            format!("session[]={t}"),
            format!("session=%20{t}"),
            format!("session=+{t}"),
            format!("x=1?session={t}"),
            format!("x=1&token={t}&session=abc"),
            format!("session={t}&other=%70ate_{}", &t[5..]),
            t.to_string(),
            format!("session={t}&note={t}"),
        ] {
            assert_eq!(
                find_in_pairs(raw.as_bytes()),
                SessionFinding::StrayToken,
                "{raw}"
            );
        }
        // One decisive token, however often repeated as the session, is fine.
        assert_eq!(
            find_in_pairs(format!("envName=x&session={t}&session={t}").as_bytes()),
            found(t)
        );
        assert_eq!(
            find_in_pairs(format!("session=pate%5F{}", &t[5..]).as_bytes()),
            found(t)
        );
        assert!(path_carries_token(
            format!("/1.0/a/b/rest/c;session={t}").as_bytes()
        ));
        assert!(path_carries_token(
            format!("/x/%70ate_{}", &t[5..]).as_bytes()
        ));
        assert!(!path_carries_token(
            b"/1.0/environment/control/rest/stopenv"
        ));
    }

    #[test]
    fn session_in_another_case_beside_a_token_conflicts() {
        let t = pat_core::token::Token::generate().expect("rng");
        let t = t.expose();
        // Whatever its value, in either order, however it is encoded.
        for raw in [
            format!("session={t}&Session=x"),
            format!("Session=x&session={t}"),
            format!("session={t}&SESSION=x"),
            format!("session={t}&SESSION="),
            format!("session={t}&SESSION"),
            format!("session={t}&sess%49on=x"),
            format!("session={t}&%53ession=legacy"),
            format!("sess%69on={t}&sEsSiOn=x"),
            format!("session=pate%5F{}&Session=x", &t[5..]),
            format!("session={t}&Session=a+b"),
            // What Java's case-insensitive comparisons also take for `session`.
            format!("session={t}&%C5%BFession=x"),
            format!("session={t}&sess%C4%B1on=x"),
            format!("session={t}&SESS%C4%B0ON=x"),
            format!("session={t}&se%C3%9Fion=x"),
        ] {
            assert_eq!(
                find_in_pairs(raw.as_bytes()),
                SessionFinding::Conflicting,
                "{raw}"
            );
        }
        // In the other part of the request: the query and the body merged, both ways.
        for other in [
            &b"SESSION=x"[..],
            b"envName=e&Session=",
            b"sess%49on=legacy",
        ] {
            let other = find_in_pairs(other);
            assert_eq!(
                found(t).merge(other.clone()),
                SessionFinding::Conflicting,
                "{other:?}"
            );
            assert_eq!(other.merge(found(t)), SessionFinding::Conflicting);
        }
        // A token-format value under that name stays what it was: a stray token.
        assert_eq!(
            find_in_pairs(format!("session={t}&Session={t}").as_bytes()),
            SessionFinding::StrayToken
        );
    }

    #[test]
    fn session_in_another_case_without_a_token_is_left_alone() {
        // No token: nothing for the edge to authorize, so nothing is ambiguous.
        assert_eq!(find_in_pairs(b"session=legacy&Session=x"), found("legacy"));
        assert_eq!(find_in_pairs(b"SESSION=x&session=legacy"), found("legacy"));
        assert_eq!(
            find_in_pairs(b"session=legacy").merge(find_in_pairs(b"Session=x")),
            found("legacy")
        );
        assert!(!find_in_pairs(b"Session=x").is_refusal());
        assert!(
            !find_in_pairs(b"Session=x")
                .merge(SessionFinding::Absent)
                .is_refusal()
        );
        // Names that only look alike are not the session in another case.
        for raw in [
            &b"session_=x"[..],
            b"sessions=x",
            b"se%C3%9F%C3%9Fion=x",
            b"Sesion=x",
        ] {
            let t = pat_core::token::Token::generate().expect("rng");
            let token = find_in_pairs(format!("session={}", t.expose()).as_bytes());
            assert_eq!(
                token.clone().merge(find_in_pairs(raw)),
                token,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn merging_query_and_body() {
        use SessionFinding::*;
        assert_eq!(Absent.merge(found("a")), found("a"));
        assert_eq!(found("a").merge(Absent), found("a"));
        assert_eq!(found("a").merge(found("a")), found("a"));
        assert_eq!(found("a").merge(found("b")), Conflicting);
        assert_eq!(found("a").merge(StrayToken), StrayToken);
        assert_eq!(TooLarge.merge(found("a")), TooLarge);
        assert!(StrayToken.is_refusal() && !found("a").is_refusal() && !Absent.is_refusal());
    }

    #[test]
    fn other_names_are_not_the_session() {
        // The session in another case is noted, for a token found elsewhere.
        assert_eq!(find_in_pairs(b"Session=abc"), SessionFinding::OtherCase);
        for raw in [
            &b"session_=abc"[..],
            b"xsession=abc",
            b"session%00=abc",
            b"",
            b"a=session",
        ] {
            assert_eq!(
                find_in_pairs(raw),
                SessionFinding::Absent,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn repeated_values_agree_or_conflict() {
        assert_eq!(find_in_pairs(b"session=abc&x=1&session=abc"), found("abc"));
        assert_eq!(find_in_pairs(b"session=abc&session=ab%63"), found("abc"));
        assert_eq!(
            find_in_pairs(b"session=abc&session=abd"),
            SessionFinding::Conflicting
        );
        assert_eq!(
            find_in_pairs(b"session=&session=abc"),
            SessionFinding::Conflicting
        );
    }

    #[test]
    fn strips_only_session_pairs_verbatim() {
        assert_eq!(
            strip_pairs(b"a=%2F&session=x&b=c+d\xff"),
            Some(b"a=%2F&b=c+d\xff".to_vec())
        );
        assert_eq!(strip_pairs(b"sess%69on=x&session=x"), Some(Vec::new()));
        assert_eq!(strip_pairs(b"a=1"), None);
        assert_eq!(
            strip_from_path(b"/1.0/a/b/rest/c?session=x"),
            Some(b"/1.0/a/b/rest/c".to_vec())
        );
        assert_eq!(
            strip_from_path(b"/1.0/a/b/rest/c?envName=e&session=x"),
            Some(b"/1.0/a/b/rest/c?envName=e".to_vec())
        );
        assert_eq!(strip_from_path(b"/1.0/a/b/rest/c"), None);
        assert_eq!(split_path(b"/p?q?r"), (&b"/p"[..], Some(&b"q?r"[..])));
    }

    #[test]
    fn the_folds_are_every_character_unicode_maps_to_ascii_letters() {
        let ascii_letters = |s: String| s.bytes().all(|b| b.is_ascii_alphabetic());
        for c in ('\u{80}'..=char::MAX).filter(|c| !c.is_ascii()) {
            let upper: String = c.to_uppercase().collect();
            let lower: String = c.to_lowercase().collect();
            let expected = if ascii_letters(upper.clone()) {
                Some(upper.to_ascii_lowercase())
            } else if ascii_letters(lower.clone()) {
                Some(lower)
            } else {
                None
            };
            let listed = FOLDS.iter().find(|(from, _)| *from == c).map(|(_, to)| to);
            match (expected, listed) {
                (Some(expected), listed) => assert_eq!(Some(&expected.as_str()), listed, "{c}"),
                // Lowercased first by Java's simple mapping and case folding, which Rust's
                // full mappings do not show: `İ` to `i`, `ẞ` to `ß`.
                (None, Some(_)) => assert!(['İ', 'ẞ'].contains(&c), "{c}"),
                (None, None) => {}
            }
        }
    }

    /// The longest name (bytes) that folds into `param`, by [`FOLDS`] and ASCII letters.
    fn longest_fold(param: &str) -> usize {
        let param = param.to_ascii_lowercase();
        // best[i]: the most bytes that read `param[i..]`.
        let mut best: Vec<Option<usize>> = vec![None; param.len() + 1];
        best[param.len()] = Some(0);
        for i in (0..param.len()).rev() {
            let rest = &param[i..];
            let ascii = best[i + 1].map(|b| b + 1);
            let folded = FOLDS
                .iter()
                .filter(|(_, to)| rest.starts_with(to))
                .filter_map(|(from, to)| best[i + to.len()].map(|b| b + from.len_utf8()));
            best[i] = ascii.into_iter().chain(folded).max();
        }
        best[0].expect("ASCII letters always fold")
    }

    #[test]
    fn other_case_length_bounds_are_exact() {
        assert_eq!(longest_fold(SESSION_PARAM), SESSION_OTHER_CASE_MAX_BYTES);
        assert_eq!(
            longest_fold(crate::env_name::ENV_NAME_PARAM),
            crate::env_name::ENV_OTHER_CASE_MAX_BYTES
        );
        // Longer names in another case are not found.
        assert!(is_other_case("ſeſſıon".as_bytes()));
        assert_eq!("ſeſſıon".len(), SESSION_OTHER_CASE_MAX_BYTES);
    }

    fn env_of(raw: &[u8]) -> EnvFinding {
        let found = find_params(raw);
        assert_eq!(found.session, find_in_pairs(raw));
        found.env
    }

    fn env(value: &str) -> EnvFinding {
        EnvFinding::Found(EnvName::new(value))
    }

    #[test]
    fn finds_the_env_name_however_it_is_encoded() {
        assert_eq!(
            find_params(b"envName=my-project&session=abc"),
            Findings {
                session: found("abc"),
                env: env("my-project"),
            }
        );
        for (raw, expected) in [
            (&b"session=abc&envName=x"[..], "x"),
            (b"env%4Eame=x", "x"),
            (b"%65nvName=x", "x"),
            (b"envNam%65=x", "x"),
            (b"envName=my%2Dproject", "my-project"),
            (b"envName=a+b", "a b"),
            (b"envName=a=b", "a=b"),
            (b"envName=%FF", "\u{FFFD}"),
            (b"envName=\xff", "\u{FFFD}"),
            (b"envName", ""),
            (b"envName=", ""),
            (b"&&envName=x&&", "x"),
            // Identical repeated values are one value, however they are encoded.
            (b"envName=x&a=1&envName=x", "x"),
            (b"envName=x&envName=%78", "x"),
        ] {
            assert_eq!(
                env_of(raw),
                env(expected),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        for raw in [
            &b""[..],
            b"session=abc",
            b"a=envName",
            b"xenvName=x",
            b"envName_=x",
        ] {
            assert_eq!(
                env_of(raw),
                EnvFinding::Absent,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn different_env_names_conflict() {
        for raw in [
            &b"envName=a&envName=b"[..],
            b"envName=&envName=a",
            b"envName&envName=a",
            b"envName=a&session=abc&envName=b",
            b"envName=a&env%4Eame=A",
            b"envName=a&envName=a+",
        ] {
            assert_eq!(
                env_of(raw),
                EnvFinding::Conflicting,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        // Across the query and the body.
        let query = find_params(b"envName=a&session=abc");
        assert_eq!(
            query.clone().merge(find_params(b"envName=b")).env,
            EnvFinding::Conflicting
        );
        assert_eq!(query.clone().merge(find_params(b"envName=a")).env, env("a"));
        assert_eq!(query.clone().merge(find_params(b"x=1")).env, env("a"));
        assert_eq!(Findings::default().merge(query.clone()), query);
    }

    #[test]
    fn env_name_in_another_case_is_ambiguous() {
        for raw in [
            &b"envname=a"[..],
            b"ENVNAME=a",
            b"EnvName",
            b"envName=a&envname=a",
            b"envname=a&envName=a",
            b"envNam%45=a",
            b"%45nvName=a",
            b"envName=a&ENV%4EAME=",
            // Ambiguity wins over a conflict, in either order.
            b"envName=a&envName=b&ENVNAME=c",
            b"ENVNAME=c&envName=a&envName=b",
        ] {
            assert_eq!(
                env_of(raw),
                EnvFinding::Ambiguous,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let query = find_params(b"envName=a");
        assert_eq!(
            query.merge(find_params(b"ENVNAME=a")).env,
            EnvFinding::Ambiguous
        );
        // Names that only look alike are other parameters.
        for raw in [
            &b"envNames=a"[..],
            b"env_name=a",
            b"envNam=a",
            b"env+name=a",
            b"envName%00=a",
            b"envNam%C3%A9=a",
            b"%C4%B1envName=a",
        ] {
            assert_eq!(
                env_of(raw),
                EnvFinding::Absent,
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn long_env_names_are_found_but_not_kept() {
        let at_cap = "a".repeat(crate::env_name::MAX_ENV_NAME_BYTES);
        let long = "a".repeat(crate::env_name::MAX_ENV_NAME_BYTES + 1);
        let longer = "b".repeat(10_000);
        assert_eq!(env_of(format!("envName={at_cap}").as_bytes()), env(&at_cap));
        assert_eq!(
            env_of(format!("envName={long}").as_bytes()),
            EnvFinding::Found(EnvName::Long)
        );
        // Escapes decoded first: 22 bytes of escapes are 66 decoded bytes.
        assert_eq!(
            env_of(format!("envName={}", "%E2%82%AC".repeat(22)).as_bytes()),
            EnvFinding::Found(EnvName::Long)
        );
        // Long values are one value (none is in any list); beside a short one, a conflict.
        assert_eq!(
            env_of(format!("envName={long}&envName={longer}").as_bytes()),
            EnvFinding::Found(EnvName::Long)
        );
        assert_eq!(
            env_of(format!("envName={long}&envName={at_cap}").as_bytes()),
            EnvFinding::Conflicting
        );
    }

    #[test]
    fn the_session_rules_are_unchanged_beside_env_names() {
        let t = pat_core::token::Token::generate().expect("rng");
        let t = t.expose();
        assert_eq!(
            find_params(format!("envName=e&session={t}&ENVNAME=f").as_bytes()),
            Findings {
                session: found(t),
                env: EnvFinding::Ambiguous,
            }
        );
        // A token under the env name is a stray token, as under any other name.
        assert_eq!(
            find_in_pairs(format!("session={t}&envName={t}").as_bytes()),
            SessionFinding::StrayToken
        );
        assert_eq!(
            find_in_pairs(format!("envName=pate%5F{}", &t[5..]).as_bytes()),
            SessionFinding::StrayToken
        );
    }

    /// `envName` by the plain `form_urlencoded` reading: values under exactly that name
    /// (longer than the cap all one), and names that are it in another case by Unicode's
    /// mappings (as [`reference_other_case`] for `session`).
    fn reference_env(raw: &[u8]) -> EnvFinding {
        let mut values: Vec<Option<String>> = Vec::new();
        let mut ambiguous = false;
        for (name, value) in form_urlencoded::parse(raw) {
            if name == crate::env_name::ENV_NAME_PARAM {
                let kept = (value.len() <= crate::env_name::MAX_ENV_NAME_BYTES)
                    .then(|| value.into_owned());
                if !values.contains(&kept) {
                    values.push(kept);
                }
            } else {
                ambiguous |= name.replace('İ', "i").replace('ẞ', "ß").to_uppercase() == "ENVNAME";
            }
        }
        match values.as_slice() {
            _ if ambiguous => EnvFinding::Ambiguous,
            [] => EnvFinding::Absent,
            [Some(value)] => env(value),
            [None] => EnvFinding::Found(EnvName::Long),
            _ => EnvFinding::Conflicting,
        }
    }

    /// `session` in another case by Unicode's own mappings (full uppercase takes `ß` to
    /// `SS`, `ſ` to `S`, `ı` to `I`), with `İ` and `ẞ` lowercased first as Java's simple
    /// mapping and case folding do.
    fn reference_other_case(name: &str) -> bool {
        name != SESSION_PARAM
            && name.replace('İ', "i").replace('ẞ', "ß").to_uppercase() == "SESSION"
    }

    /// The plain `form_urlencoded` search the fast path must agree with: pairs in order,
    /// the first refusal wins; a conflict is two different values, or a token-like value
    /// beside `session` in another case.
    fn reference_find(raw: &[u8]) -> SessionFinding {
        let mut values: Vec<String> = Vec::new();
        let mut other_case = false;
        for (name, value) in form_urlencoded::parse(raw) {
            if name != SESSION_PARAM {
                if contains_token(name.as_bytes()) || contains_token(value.as_bytes()) {
                    return SessionFinding::StrayToken;
                }
                other_case |= reference_other_case(&name);
            } else {
                if hides_token(value.as_bytes()) {
                    return SessionFinding::StrayToken;
                }
                values.push(value.into_owned());
            }
            let differ = values.iter().any(|v| *v != values[0]);
            let token = values
                .first()
                .is_some_and(|v| pat_core::token::is_token_like(v));
            if differ || (token && other_case) {
                return SessionFinding::Conflicting;
            }
        }
        match values.into_iter().next() {
            Some(value) => SessionFinding::Found(value),
            None if other_case => SessionFinding::OtherCase,
            None => SessionFinding::Absent,
        }
    }

    proptest! {
        #[test]
        fn fast_search_matches_form_urlencoded(
            raw in prop::collection::vec(
                prop::sample::select(&b"session=&+%69%6F%2x\xffab"[..]),
                0..60,
            )
        ) {
            prop_assert_eq!(find_in_pairs(&raw), reference_find(&raw));
        }

        #[test]
        fn fast_search_matches_form_urlencoded_on_session_pairs(
            pairs in prop::collection::vec(
                "(session|sess%69on|s|Session|SESSION|sess%49on|se%C3%9Fion|sessIon)(=(pate_)?[a-z+%0-9]{0,6})?",
                0..4,
            )
        ) {
            let raw = pairs.join("&");
            prop_assert_eq!(find_in_pairs(raw.as_bytes()), reference_find(raw.as_bytes()));
        }

        #[test]
        fn fast_search_matches_form_urlencoded_with_tokens(
            pairs in prop::collection::vec(
                ("(session|Session|s|%73ession|x|SESSION|sess%49on|%C5%BFession)", "(=|=%20|=\\+|=x|=pate%5F)?", any::<bool>()),
                0..5,
            )
        ) {
            let t = pat_core::token::Token::generate().expect("rng");
            let raw = pairs
                .iter()
                .map(|(name, eq, with_token)| {
                    let value = if *with_token { &t.expose()[5..] } else { "v" };
                    match eq.as_str() {
                        "" => name.clone(),
                        "=pate%5F" => format!("{name}=pate%5F{value}"),
                        eq => format!("{name}{eq}pate_{value}"),
                    }
                })
                .collect::<Vec<_>>()
                .join("&");
            prop_assert_eq!(find_in_pairs(raw.as_bytes()), reference_find(raw.as_bytes()), "{}", raw);
        }

        /// The env finding agrees with the plain reading whenever the request is not
        /// refused for its session (a refusal stops the search).
        #[test]
        fn env_search_matches_form_urlencoded(
            raw in prop::collection::vec(
                prop::sample::select(&b"envName=&+%45%4e%65x\xffab"[..]),
                0..60,
            )
        ) {
            if !find_in_pairs(&raw).is_refusal() {
                prop_assert_eq!(env_of(&raw), reference_env(&raw));
            }
        }

        #[test]
        fn env_search_matches_form_urlencoded_on_env_pairs(
            pairs in prop::collection::vec(
                (
                    "(envName|env%4Eame|%65nvName|envname|ENVNAME|envNam%45|EnvName|envNames|e|session|Session)",
                    "(=[a-z+%0-9]{0,4})?",
                    prop::sample::select(vec![0usize, 1, 63, 64, 65, 66, 200]),
                ),
                0..5,
            )
        ) {
            let raw = pairs
                .iter()
                .map(|(name, value, long)| {
                    let tail = "q".repeat(*long);
                    if value.is_empty() && *long == 0 { name.clone() } else if value.is_empty() { format!("{name}={tail}") } else { format!("{name}{value}{tail}") }
                })
                .collect::<Vec<_>>()
                .join("&");
            if !find_in_pairs(raw.as_bytes()).is_refusal() {
                prop_assert_eq!(env_of(raw.as_bytes()), reference_env(raw.as_bytes()), "{}", raw);
            }
        }

        #[test]
        fn env_other_case_names_agree_with_unicode(name in "[eEnNvVaAmMſßẞıİ\u{212A}x]{5,9}") {
            let reference = name != crate::env_name::ENV_NAME_PARAM
                && name.replace('İ', "i").replace('ẞ', "ß").to_uppercase() == "ENVNAME";
            prop_assert_eq!(
                crate::env_name::is_env_other_case(name.as_bytes()),
                reference,
                "{}",
                name
            );
        }

        #[test]
        fn other_case_names_agree_with_unicode(name in "[sSeEiIoOnNſßẞıİx]{5,9}") {
            prop_assert_eq!(
                is_other_case(name.as_bytes()),
                reference_other_case(&name),
                "{}",
                name
            );
        }

        /// Stripping is what it always was: every pair whose decoded name is `session` left
        /// out, the others joined as they were (the definition, written the slow way).
        #[test]
        fn stripping_matches_its_definition(pairs in prop::collection::vec((
            prop::sample::select(vec![
                "session", "sess%69on", "%73ession", "Session", "se+ssion", "session+",
                "session%", "a", "", "x%FF", "sessio",
            ]),
            prop::sample::select(vec!["", "pate_x", "1", "a%26b", "=", "?"]),
            any::<bool>(),
        ), 0..6))
        {
            let raw: Vec<u8> = pairs
                .iter()
                .map(|(name, value, with_value)| {
                    if *with_value { format!("{name}={value}") } else { name.to_string() }
                })
                .collect::<Vec<_>>()
                .join("&")
                .into_bytes();
            let reference = |raw: &[u8]| -> Option<Vec<u8>> {
                let mut removed = false;
                let kept: Vec<&[u8]> = raw
                    .split(|&b| b == b'&')
                    .filter(|pair| {
                        let is_session = form_urlencoded::parse(pair)
                            .next()
                            .is_some_and(|(name, _)| name == SESSION_PARAM);
                        removed |= is_session;
                        !is_session
                    })
                    .collect();
                removed.then(|| kept.join(&b'&'))
            };
            prop_assert_eq!(strip_pairs(&raw), reference(&raw));
            let path = [&b"/1.0/a/b/rest/c?"[..], &raw].concat();
            let expected = reference(&raw).map(|q| {
                if q.is_empty() { b"/1.0/a/b/rest/c".to_vec() } else { [&b"/1.0/a/b/rest/c?"[..], &q].concat() }
            });
            prop_assert_eq!(strip_from_path(&path), expected);
        }

        #[test]
        fn stripped_text_has_no_session(raw in "[a-z%0-9=&+]{0,60}") {
            if let Some(stripped) = strip_pairs(raw.as_bytes()) {
                prop_assert_eq!(find_in_pairs(&stripped), SessionFinding::Absent);
            }
        }

        #[test]
        fn never_panics(raw in prop::collection::vec(any::<u8>(), 0..200)) {
            let _ = find_in_pairs(&raw);
        }
    }
}
