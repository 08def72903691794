//! HTTP values the tests build and inspect: header maps, requests, responses.

use std::fmt;

/// A header value: the exact bytes, plus a UTF-8 view for the `&str` API.
///
/// Envoy's HTTP/1 codec accepts obs-text (bytes 0x80–0xFF) in header values and in
/// `:path`, so a value is not always UTF-8.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// Valid UTF-8 (almost every value).
    Text(String),
    /// Not UTF-8: the bytes, and their lossy conversion.
    Bytes(Vec<u8>, String),
}

impl Value {
    fn new(bytes: Vec<u8>) -> Self {
        match String::from_utf8(bytes) {
            Ok(text) => Value::Text(text),
            Err(e) => {
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                Value::Bytes(e.into_bytes(), lossy)
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Value::Text(text) => text.as_bytes(),
            Value::Bytes(bytes, _) => bytes,
        }
    }

    fn text(&self) -> &str {
        match self {
            Value::Text(text) | Value::Bytes(_, text) => text,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Text(text) => fmt::Debug::fmt(text, f),
            Value::Bytes(bytes, _) => write!(f, "b\"{}\"", bytes.escape_ascii()),
        }
    }
}

/// An ordered header map with Envoy's semantics: keys are stored lowercased,
/// order is preserved, a key may appear several times, pseudo-headers (`:path`...)
/// stay in front of regular headers.
///
/// Values are bytes and need not be UTF-8 (see [`Request::header_bytes`]). The
/// `&str` accessors ([`get`](Self::get), [`get_all`](Self::get_all),
/// [`iter`](Self::iter)) show a non-UTF-8 value converted lossily (invalid bytes
/// become U+FFFD), so a present value never reads as absent; the `_bytes`
/// accessors give the exact bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, Value)>,
}

impl Headers {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries (a repeated key counts once per value).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn values<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a Value> {
        self.entries
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// The first value of `name` (case-insensitive), lossily converted if not UTF-8.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values(name).next().map(Value::text)
    }

    /// The exact bytes of the first value of `name` (case-insensitive).
    pub fn get_bytes(&self, name: &str) -> Option<&[u8]> {
        self.values(name).next().map(Value::bytes)
    }

    /// Every value of `name`, in order (lossily converted if not UTF-8).
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.values(name).map(Value::text).collect()
    }

    /// True if `name` is present.
    pub fn contains(&self, name: &str) -> bool {
        self.values(name).next().is_some()
    }

    /// Appends `name: value` (pseudo-headers go after the last pseudo-header).
    pub fn add(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        self.insert(name.as_ref(), Value::Text(value.into()));
    }

    /// Appends `name: value` with a value that need not be UTF-8.
    pub fn add_bytes(&mut self, name: impl AsRef<str>, value: impl Into<Vec<u8>>) {
        self.insert(name.as_ref(), Value::new(value.into()));
    }

    fn insert(&mut self, name: &str, value: Value) {
        let name = name.to_ascii_lowercase();
        if name.starts_with(':') {
            let at = self
                .entries
                .iter()
                .position(|(k, _)| !k.starts_with(':'))
                .unwrap_or(self.entries.len());
            self.entries.insert(at, (name, value));
        } else {
            self.entries.push((name, value));
        }
    }

    /// Removes every value of `name`, then adds `name: value` (Envoy's `setCopy`).
    pub fn replace(&mut self, name: impl AsRef<str>, value: impl Into<String>) {
        self.remove(name.as_ref());
        self.add(name, value);
    }

    /// [`replace`](Self::replace) with a value that need not be UTF-8.
    pub fn replace_bytes(&mut self, name: impl AsRef<str>, value: impl Into<Vec<u8>>) {
        self.remove(name.as_ref());
        self.add_bytes(name, value);
    }

    /// Removes every value of `name`.
    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    }

    /// Iterates `(name, value)` pairs in order (values lossily converted if not UTF-8).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.text()))
    }

    /// Iterates `(name, value bytes)` pairs in order.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.bytes()))
    }

    /// Sum of key and value lengths in bytes (Envoy's `byteSize`).
    pub(crate) fn byte_size(&self) -> usize {
        self.iter_bytes().map(|(k, v)| k.len() + v.len()).sum()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl<K: AsRef<str>, V: Into<String>> FromIterator<(K, V)> for Headers {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut headers = Headers::new();
        for (k, v) in iter {
            headers.add(k, v);
        }
        headers
    }
}

impl Headers {
    /// A map from decoded wire pairs (values as the guest sent them).
    pub(crate) fn from_pairs(pairs: Vec<(String, Vec<u8>)>) -> Self {
        let mut headers = Headers::new();
        for (k, v) in pairs {
            headers.add_bytes(k, v);
        }
        headers
    }
}

/// A request or response as it left a filter: the forwarded request, or the
/// response the client saw.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HttpMessage {
    /// Headers, pseudo-headers included.
    pub headers: Headers,
    /// The whole body.
    pub body: Vec<u8>,
    /// Trailers (empty when there were none).
    pub trailers: Headers,
}

impl HttpMessage {
    /// First value of a header (lossily converted if not UTF-8).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The exact bytes of the first value of a header.
    pub fn header_bytes(&self, name: &str) -> Option<&[u8]> {
        self.headers.get_bytes(name)
    }

    /// `:status` parsed as a number (responses).
    pub fn status(&self) -> Option<u16> {
        self.headers.get(":status").and_then(|s| s.parse().ok())
    }

    /// `:path` (requests; lossily converted if not UTF-8, see
    /// [`header_bytes`](Self::header_bytes)).
    pub fn path(&self) -> Option<&str> {
        self.headers.get(":path")
    }

    /// The body as UTF-8 (lossy).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A request the test sends through a VM.
///
/// Pseudo-headers `:method`, `:path`, `:authority` (default `testbed.local`) and
/// `:scheme` (default `http`) are always present. The body arrives in the chunks
/// given, so streaming code paths get exercised.
///
/// Header values and `:path` may be bytes that are not UTF-8
/// ([`header_bytes`](Self::header_bytes), [`path_bytes`](Self::path_bytes)), as
/// Envoy's HTTP/1 codec delivers obs-text (0x80–0xFF) unchanged.
#[derive(Clone, Debug)]
pub struct Request {
    pub(crate) method: String,
    pub(crate) path: Value,
    pub(crate) authority: String,
    pub(crate) scheme: String,
    pub(crate) headers: Vec<(String, Value)>,
    pub(crate) chunks: Vec<Vec<u8>>,
    pub(crate) trailers: Vec<(String, String)>,
    pub(crate) upstream: Option<Response>,
    pub(crate) source_address: Option<String>,
    pub(crate) destination_address: Option<String>,
}

impl Request {
    /// A request with any method.
    pub fn new(method: impl Into<String>, path: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            path: Value::Text(path.into()),
            authority: "testbed.local".to_string(),
            scheme: "http".to_string(),
            headers: Vec::new(),
            chunks: Vec::new(),
            trailers: Vec::new(),
            upstream: None,
            source_address: None,
            destination_address: None,
        }
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: impl Into<String>) -> Self {
        Self::new("POST", path)
    }

    /// `PUT path`.
    pub fn put(path: impl Into<String>) -> Self {
        Self::new("PUT", path)
    }

    /// `DELETE path`.
    pub fn delete(path: impl Into<String>) -> Self {
        Self::new("DELETE", path)
    }

    /// Adds a header (repeat the call for repeated headers).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), Value::Text(value.into())));
        self
    }

    /// Adds a header whose value is raw bytes, not necessarily UTF-8
    /// (`b"multipart/form-data; boundary=\xff"`): the guest receives exactly these
    /// bytes.
    pub fn header_bytes(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.into(), Value::new(value.into())));
        self
    }

    /// Replaces `:path` with raw bytes, not necessarily UTF-8
    /// (`Request::get("").path_bytes(b"/a?q=\xff")`).
    pub fn path_bytes(mut self, path: impl Into<Vec<u8>>) -> Self {
        self.path = Value::new(path.into());
        self
    }

    /// Sets `:authority`.
    pub fn authority(mut self, authority: impl Into<String>) -> Self {
        self.authority = authority.into();
        self
    }

    /// Sets `:scheme`.
    pub fn scheme(mut self, scheme: impl Into<String>) -> Self {
        self.scheme = scheme.into();
        self
    }

    /// The body, delivered as one chunk.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.chunks = vec![body.into()];
        self.chunks.retain(|c| !c.is_empty());
        self
    }

    /// The body, delivered in these chunks (empty chunks are dropped).
    pub fn body_chunks<C: Into<Vec<u8>>>(mut self, chunks: impl IntoIterator<Item = C>) -> Self {
        self.chunks = chunks
            .into_iter()
            .map(Into::into)
            .filter(|c| !c.is_empty())
            .collect();
        self
    }

    /// Re-splits the body into chunks of at most `size` bytes.
    pub fn chunk_size(mut self, size: usize) -> Self {
        let body: Vec<u8> = self.chunks.concat();
        self.chunks = body.chunks(size.max(1)).map(<[u8]>::to_vec).collect();
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.trailers.push((name.into(), value.into()));
        self
    }

    /// What the upstream answers to this request (overrides the builder's upstream).
    pub fn upstream_response(mut self, response: Response) -> Self {
        self.upstream = Some(response);
        self
    }

    /// `source.address` for this request (`ip:port`).
    pub fn source_address(mut self, address: impl Into<String>) -> Self {
        self.source_address = Some(address.into());
        self
    }

    /// `destination.address` for this request (`ip:port`).
    pub fn destination_address(mut self, address: impl Into<String>) -> Self {
        self.destination_address = Some(address.into());
        self
    }

    pub(crate) fn header_map(&self) -> Headers {
        let mut headers = Headers::new();
        headers.add(":authority", self.authority.clone());
        headers.insert(":path", self.path.clone());
        headers.add(":method", self.method.clone());
        headers.add(":scheme", self.scheme.clone());
        for (k, v) in &self.headers {
            headers.insert(k, v.clone());
        }
        headers
    }

    pub(crate) fn trailer_map(&self) -> Option<Headers> {
        (!self.trailers.is_empty()).then(|| self.trailers.iter().cloned().collect())
    }
}

/// A response: what the upstream answers, or the answer to an HTTP call.
#[derive(Clone, Debug)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) chunks: Vec<Vec<u8>>,
    pub(crate) trailers: Vec<(String, String)>,
}

impl Response {
    /// A response with this status and no body.
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: Vec::new(),
            chunks: Vec::new(),
            trailers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The body, as one chunk.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.chunks = vec![body.into()];
        self.chunks.retain(|c| !c.is_empty());
        self
    }

    /// The body in chunks (empty chunks are dropped).
    pub fn body_chunks<C: Into<Vec<u8>>>(mut self, chunks: impl IntoIterator<Item = C>) -> Self {
        self.chunks = chunks
            .into_iter()
            .map(Into::into)
            .filter(|c| !c.is_empty())
            .collect();
        self
    }

    /// Adds a trailer.
    pub fn trailer(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.trailers.push((name.into(), value.into()));
        self
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    pub(crate) fn header_map(&self) -> Headers {
        let mut headers = Headers::new();
        headers.add(":status", self.status.to_string());
        for (k, v) in &self.headers {
            headers.add(k, v.clone());
        }
        headers
    }

    pub(crate) fn trailer_map(&self) -> Option<Headers> {
        (!self.trailers.is_empty()).then(|| self.trailers.iter().cloned().collect())
    }

    pub(crate) fn body_bytes(&self) -> Vec<u8> {
        self.chunks.concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_removes_every_value_and_appends() {
        let mut h: Headers = [("a", "1"), ("X-User", "x"), ("b", "2"), ("x-user", "y")]
            .into_iter()
            .collect();
        h.replace("X-USER", "z");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            vec![("a", "1"), ("b", "2"), ("x-user", "z")]
        );
    }

    #[test]
    fn non_utf8_values_keep_their_bytes() {
        let mut h = Headers::new();
        h.add_bytes("x-raw", b"a\xffb".to_vec());
        h.add_bytes("x-text", "plain");
        assert_eq!(h.get_bytes("X-Raw"), Some(&b"a\xffb"[..]));
        assert_eq!(h.get("x-raw"), Some("a\u{fffd}b"));
        assert!(h.contains("x-raw"));
        assert_eq!(h.byte_size(), 5 + 3 + 6 + 5);
        assert_eq!(
            format!("{h:?}"),
            r#"[("x-raw", b"a\xffb"), ("x-text", "plain")]"#
        );
        // A UTF-8 value is the same however it was added.
        let mut text = Headers::new();
        text.add_bytes("x-raw", "caf\u{e9}");
        assert_eq!(text, [("x-raw", "caf\u{e9}")].into_iter().collect());
    }

    #[test]
    fn pseudo_headers_stay_in_front() {
        let mut h: Headers = [(":path", "/"), ("a", "1")].into_iter().collect();
        h.replace(":path", "/new");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            vec![(":path", "/new"), ("a", "1")]
        );
    }
}
