//! Request parameters as platform clients send them: a query string, a form body
//! (`application/x-www-form-urlencoded`), or both, by GET or POST.
//!
//! Decoding is strict: every name and value must be UTF-8 after percent-decoding (a client
//! sending Latin-1 is told so, not silently given replacement characters), and a parameter
//! given twice with different values is refused rather than guessed at (`apiList`, which some
//! clients repeat, is the exception: its values add up).
//!
//! Lists (`apiList`, `ids`) come in every shape real clients send: comma- or
//! semicolon-separated, or written as a list — `py-jelastic` puts a Python list into the
//! query as its `str()`, `['a', 'b']`; others send JSON, `["a","b"]`.

use std::collections::BTreeMap;

use super::ApiError;

/// The parameters of one request.
#[derive(Debug, Default)]
pub struct Params {
    values: BTreeMap<String, Vec<String>>,
}

impl Params {
    /// Adds every parameter of `text` (a query string or a form body) from `origin` (for
    /// messages: "the query string", "the form body").
    pub fn add_encoded(&mut self, text: &[u8], origin: &str) -> Result<(), ApiError> {
        for pair in text.split(|&b| b == b'&') {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = decode(name).ok_or_else(|| {
                ApiError::invalid(format!("{origin} has a parameter name that is not UTF-8"))
            })?;
            let value = decode(value).ok_or_else(|| {
                ApiError::invalid(format!(
                    "{origin}: the value of `{name}` is not UTF-8 (percent-encode UTF-8 bytes)"
                ))
            })?;
            self.values.entry(name).or_default().push(value);
        }
        Ok(())
    }

    /// A parameter given at most once (or several times with the same value).
    pub fn one(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.values.get(name).map(Vec::as_slice) {
            None | Some([]) => Ok(None),
            Some([first, rest @ ..]) => {
                if rest.iter().any(|v| v != first) {
                    return Err(ApiError::invalid(format!(
                        "`{name}` is given more than once with different values"
                    )));
                }
                Ok(Some(first.as_str()))
            }
        }
    }

    /// A parameter that must be there and not blank.
    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        match self.one(name)? {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(ApiError::invalid(format!(
                "the parameter `{name}` is required"
            ))),
        }
    }

    /// A parameter that, when given, is not blank (blank counts as absent).
    pub fn optional(&self, name: &str) -> Result<Option<&str>, ApiError> {
        Ok(self.one(name)?.filter(|v| !v.trim().is_empty()))
    }

    /// Every value of a parameter (repeated parameters add up).
    pub fn all(&self, name: &str) -> &[String] {
        self.values.get(name).map_or(&[], Vec::as_slice)
    }

    /// Whether a parameter is present at all (even empty).
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// Percent-decodes one name or value (`+` is a space), strictly UTF-8.
fn decode(raw: &[u8]) -> Option<String> {
    let plus: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let bytes: Vec<u8> = percent_encoding::percent_decode(&plus).collect();
    String::from_utf8(bytes).ok()
}

/// The items of a list parameter: `a,b`, `a;b`, `a b`, `["a","b"]`, `['a', 'b']`, each
/// trimmed of whitespace and quotes; empty items dropped.
pub fn list_items(values: &[String]) -> Vec<String> {
    let mut items = Vec::new();
    for value in values {
        let text = value.trim();
        let text = text
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .unwrap_or(text);
        for item in text.split([',', ';', ' ', '\n', '\r', '\t']) {
            let item = item.trim().trim_matches(['"', '\'']).trim();
            if !item.is_empty() {
                items.push(item.to_string());
            }
        }
    }
    items
}

/// Token ids as clients send them (`ids` or `id`): a list of whole numbers, or `*` (all).
pub enum Ids {
    /// These ids.
    Some(Vec<i64>),
    /// `*`.
    All,
}

/// Parses a list of ids (`1,4;6`, `[1, 4]`, `*`).
pub fn ids(name: &str, text: &str, allow_all: bool) -> Result<Ids, ApiError> {
    if text.trim() == "*" {
        return if allow_all {
            Ok(Ids::All)
        } else {
            Err(ApiError::invalid(format!(
                "`{name}`: `*` is not allowed here; give one token id"
            )))
        };
    }
    let items = list_items(&[text.to_string()]);
    if items.is_empty() {
        return Err(ApiError::invalid(format!(
            "the parameter `{name}` is required: token ids, comma- or semicolon-separated"
        )));
    }
    items
        .iter()
        .map(|item| match item.parse::<i64>() {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(ApiError::invalid(format!(
                "`{name}`: `{item}` is not a token id (ids are whole numbers, comma- or semicolon-separated{})",
                if allow_all { ", or * for all" } else { "" }
            ))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Ids::Some)
}

/// A boolean as clients send it: `true`/`false` (any case, as Python's `True`), `1`/`0`.
pub fn boolean(name: &str, text: &str) -> Result<bool, ApiError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" | "" => Ok(false),
        _ => Err(ApiError::invalid(format!(
            "`{name}`: `{text}` is not a boolean (true or false)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_in_every_shape_clients_send() {
        let want = ["env.control.StopEnv", "environment.Control.StartEnv"];
        for sent in [
            "env.control.StopEnv,environment.Control.StartEnv",
            "env.control.StopEnv;environment.Control.StartEnv",
            "['env.control.StopEnv', 'environment.Control.StartEnv']",
            "[\"env.control.StopEnv\",\"environment.Control.StartEnv\"]",
            " env.control.StopEnv , environment.Control.StartEnv ",
        ] {
            assert_eq!(list_items(&[sent.to_string()]), want, "{sent}");
        }
        assert_eq!(
            list_items(&[
                "env.control.StopEnv".into(),
                "environment.Control.StartEnv".into()
            ]),
            want
        );
        assert!(list_items(&["[]".into()]).is_empty());
    }

    #[test]
    fn decoding_is_strict_utf8_and_refuses_conflicts() {
        let mut p = Params::default();
        p.add_encoded(b"a=1&b=x+y%21&c&a=1&e=%C3%A9", "q")
            .expect("ok");
        assert_eq!(p.one("a").expect("same value twice"), Some("1"));
        assert_eq!(p.one("b").expect("b"), Some("x y!"));
        assert_eq!(p.one("c").expect("c"), Some(""));
        assert_eq!(p.one("e").expect("e"), Some("é"));
        assert!(p.has("c") && !p.has("d"));
        assert!(p.required("c").is_err());
        assert!(p.add_encoded(b"x=%FF", "q").is_err());
        assert!(p.add_encoded(b"x=\xff", "q").is_err());
        let mut twice = Params::default();
        twice.add_encoded(b"id=1&id=2", "q").expect("parsed");
        assert!(twice.one("id").is_err());
    }

    #[test]
    fn ids_and_booleans() {
        assert!(matches!(ids("ids", "1,4;6", true), Ok(Ids::Some(v)) if v == [1, 4, 6]));
        assert!(matches!(ids("ids", "[1, 4]", true), Ok(Ids::Some(v)) if v == [1, 4]));
        assert!(matches!(ids("ids", "*", true), Ok(Ids::All)));
        assert!(ids("id", "*", false).is_err());
        assert!(ids("ids", "1,x", true).is_err());
        assert!(ids("ids", "-1", true).is_err());
        assert!(ids("ids", " ", true).is_err());
        assert_eq!(boolean("b", "True").ok(), Some(true));
        assert_eq!(boolean("b", "0").ok(), Some(false));
        assert!(boolean("b", "maybe").is_err());
    }
}
