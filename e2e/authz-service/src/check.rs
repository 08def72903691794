//! The check itself, as pat-edge makes it on a request's query: the `session` parameter; a
//! token (not an ordinary login session) checked for format and checksum, hashed with
//! SHA-256 and looked up; the method resolved from the path and looked up in the token's
//! scope. What it does not do that pat-edge does: bodies, parameter pollution, expiry,
//! client networks, signed updates.

use std::collections::HashMap;
use std::io::BufRead;
use std::sync::Arc;

use pat_core::method::resolve_path;
use pat_core::token::{self, TokenHash};

/// A token's identity and scope.
pub(crate) struct Entry {
    pub(crate) id: String,
    pub(crate) user: Arc<str>,
    /// Canonical method names, sorted.
    pub(crate) scope: Arc<[String]>,
}

/// Every token, by the SHA-256 of its value.
pub(crate) struct Tokens(HashMap<[u8; 32], Entry>);

/// What the check decided.
pub(crate) enum Verdict<'a> {
    /// No token: the platform's to judge.
    Pass,
    /// A token allowed this method: forward with its identity.
    Allow(&'a Entry),
    /// Refused: the platform's error code and a message.
    Deny(i64, &'static str),
}

impl Tokens {
    /// Reads the tokens file: one token a line, `<sha256 hex>\t<id>\t<user>\t<method,method>`.
    pub(crate) fn load(path: &str) -> std::io::Result<Self> {
        let file = std::io::BufReader::new(std::fs::File::open(path)?);
        let mut users: HashMap<String, Arc<str>> = HashMap::new();
        let mut scopes: HashMap<String, Arc<[String]>> = HashMap::new();
        let mut map = HashMap::new();
        for line in file.lines() {
            let line = line?;
            let mut fields = line.split('\t');
            let (Some(hash), Some(id), Some(user), Some(scope)) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Some(hash) = decode_hex(hash) else {
                continue;
            };
            let user = users
                .entry(user.to_string())
                .or_insert_with(|| Arc::from(user))
                .clone();
            let scope = scopes
                .entry(scope.to_string())
                .or_insert_with(|| {
                    let mut methods: Vec<String> = scope.split(',').map(str::to_string).collect();
                    methods.sort();
                    Arc::from(methods)
                })
                .clone();
            map.insert(
                hash,
                Entry {
                    id: id.to_string(),
                    user,
                    scope,
                },
            );
        }
        Ok(Self(map))
    }

    /// How many tokens it holds.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// Checks a request by its `:path` (path and query).
    pub(crate) fn check(&self, path_and_query: &str) -> Verdict<'_> {
        let query = path_and_query.split_once('?').map_or("", |(_, q)| q);
        let Some(session) = form_urlencoded::parse(query.as_bytes())
            .find(|(name, _)| name == "session")
            .map(|(_, value)| value)
        else {
            return Verdict::Pass;
        };
        if !token::is_token_like(&session) {
            return Verdict::Pass;
        }
        if token::validate(&session).is_err() {
            return Verdict::Deny(701, "the access token is not valid");
        }
        let Ok(method) = resolve_path(path_and_query) else {
            return Verdict::Deny(703, "the path names no API method unambiguously");
        };
        let Some(entry) = self.0.get(&TokenHash::of(&session).0) else {
            return Verdict::Deny(701, "the access token is not valid");
        };
        if entry
            .scope
            .binary_search_by(|m| m.as_str().cmp(method.as_str()))
            .is_err()
        {
            return Verdict::Deny(702, "the access token does not allow this method");
        }
        Verdict::Allow(entry)
    }
}

fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if text.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A denial's body, in the platform's shape.
pub(crate) fn denial_body(code: i64, message: &str) -> String {
    format!(r#"{{"result":{code},"error":"{message}","source":"authz"}}"#)
}
