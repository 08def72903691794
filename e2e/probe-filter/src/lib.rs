//! A probe for the benchmark: an HTTP filter that, on every request's headers, makes the host
//! calls its configuration names (comma-separated, in order, repeats allowed), and nothing
//! else. Counting Envoy's instructions with and without an operation tells what that
//! operation costs; the benchmark does this for each call the pat-edge filter makes per
//! request, and for the alternatives it could make instead.
//!
//! Header names below are the ones pat-edge uses (`x-pat-token-id`, `x-pat-user`, and
//! `x-pat-identity` for a single identity header); whether a header is present depends on
//! what the benchmark sends.
//!
//! Reading one header (`proxy_get_header_map_value`; `get_map_value_bytes` unless said):
//! - `get_path`: `:path`.
//! - `get_path_string`: `:path` through the SDK's `String` getter (`get_map_value`), which
//!   checks UTF-8 (and panics on anything else: not for a filter, measured for the price).
//! - `get_missing`: `x-probe-absent`, a header no request carries.
//! - `get_present`: `user-agent`, which every header set but the bare one sends (a present
//!   header's read, as `content-type` is on a POST).
//! - `get_two_present`: `user-agent`, then `accept`.
//! - `get_content_type`: `content-type` (absent on a GET).
//! - `get:NAME`: the header `NAME`.
//!
//! Reading every header at once (`proxy_get_header_map_pairs`), then finding what pat-edge
//! needs in them: `:path` (kept, as the filter keeps it), `content-type` and whether either
//! identity header (or `x-pat-identity`) is present:
//! - `get_pairs`: the SDK's `get_map_bytes` (names as `String`s, checked for UTF-8; values as
//!   bytes; two allocations per header).
//! - `get_pairs_string`: the SDK's `get_map` (names and values as checked `String`s).
//! - `get_pairs_raw`: the host call made directly (the SDK does not export it) and the
//!   serialized map read in place: one allocation, the host's, and a copy of `:path`.
//! - `header_map_size`: `proxy_get_header_map_size` (the SDK does not wrap it): the map's size
//!   in bytes, nothing named. The cheapest header call there is; not something the filter
//!   could decide with. (The number of headers comes free: it is an argument of
//!   `on_http_request_headers`.)
//!
//! Changing headers:
//! - `remove_missing`: remove `x-probe-absent` (`proxy_remove_header_map_value`).
//! - `remove_present`: remove `x-pat-user` (present when the benchmark sends a forged one).
//! - `add`: add `x-probe-added: 12345` (`proxy_add_header_map_value`).
//! - `add_identity`: add `x-pat-token-id: 123`, then `x-pat-user: alice@example.com` (the two
//!   identity headers pat-edge adds).
//! - `add_one_long`: add `x-pat-identity: 123;alice@example.com` (both values in one header).
//! - `replace`: set `x-probe-replaced: 12345` (`proxy_replace_header_map_value`; absent).
//! - `replace_absent`: set `x-pat-token-id: 123` (absent: an add that first removes).
//! - `replace_present`: set `x-pat-user: alice@example.com` (present when forged).
//! - `remove:NAME`, `add:NAME=VALUE`, `replace:NAME=VALUE`: the same for any header.
//!
//! Other calls and guest work:
//! - `property_source_address`: `get_property(["source", "address"])`, the client address
//!   (read for tokens limited to client networks).
//! - `time` (read the clock), `metric` (increment a counter), `sha256` (hash a token-sized
//!   string in the guest).
//! - `log_headers`: log (info) the header count Envoy passes and every header's name and
//!   value length, as the filter is given them: for checking a header set, not for counting.

/// The identity headers pat-edge strips (and `x-pat-identity`, the single-header form).
#[cfg(target_arch = "wasm32")]
const IDENTITY: [&str; 3] = ["x-pat-token-id", "x-pat-user", "x-pat-identity"];

#[cfg(target_arch = "wasm32")]
mod filter {
    use std::rc::Rc;

    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
    use sha2::Digest;

    use super::IDENTITY;
    use super::raw;

    #[derive(Clone)]
    enum Op {
        Get(String),
        GetString(String),
        Pairs,
        PairsString,
        PairsRaw,
        MapSize,
        Remove(String),
        Add(String, String),
        Replace(String, String),
        SourceAddress,
        Time,
        Metric,
        Sha256,
        LogHeaders,
    }

    /// The operations one configuration word stands for, or `None` if it names none.
    fn parse(word: &str) -> Option<Vec<Op>> {
        let get = |name: &str| Op::Get(name.to_string());
        let add = |name: &str, value: &str| Op::Add(name.to_string(), value.to_string());
        let replace = |name: &str, value: &str| Op::Replace(name.to_string(), value.to_string());
        let pair = |rest: &str| {
            rest.split_once('=')
                .map(|(n, v)| (n.to_string(), v.to_string()))
        };
        Some(vec![match word {
            "get_path" => get(":path"),
            "get_path_string" => Op::GetString(":path".to_string()),
            "get_missing" => get("x-probe-absent"),
            "get_present" => get("user-agent"),
            "get_two_present" => return Some(vec![get("user-agent"), get("accept")]),
            "get_content_type" => get("content-type"),
            "get_pairs" => Op::Pairs,
            "get_pairs_string" => Op::PairsString,
            "get_pairs_raw" => Op::PairsRaw,
            "header_map_size" => Op::MapSize,
            "remove_missing" => Op::Remove("x-probe-absent".to_string()),
            "remove_present" => Op::Remove("x-pat-user".to_string()),
            "add" => add("x-probe-added", "12345"),
            "add_identity" => {
                return Some(vec![
                    add("x-pat-token-id", "123"),
                    add("x-pat-user", "alice@example.com"),
                ]);
            }
            "add_one_long" => add("x-pat-identity", "123;alice@example.com"),
            "replace" => replace("x-probe-replaced", "12345"),
            "replace_absent" => replace("x-pat-token-id", "123"),
            "replace_present" => replace("x-pat-user", "alice@example.com"),
            "property_source_address" => Op::SourceAddress,
            "time" => Op::Time,
            "metric" => Op::Metric,
            "sha256" => Op::Sha256,
            "log_headers" => Op::LogHeaders,
            other => {
                if let Some(name) = other.strip_prefix("get:") {
                    get(name)
                } else if let Some(name) = other.strip_prefix("remove:") {
                    Op::Remove(name.to_string())
                } else if let Some((n, v)) = other.strip_prefix("add:").and_then(pair) {
                    Op::Add(n, v)
                } else if let Some((n, v)) = other.strip_prefix("replace:").and_then(pair) {
                    Op::Replace(n, v)
                } else {
                    return None;
                }
            }
        }])
    }

    struct Root {
        ops: Rc<Vec<Op>>,
        metric: u32,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, size: usize) -> bool {
            let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
                .ok()
                .flatten()
                .unwrap_or_default();
            let mut ops = Vec::new();
            for word in String::from_utf8_lossy(&config).split(',').map(str::trim) {
                if word.is_empty() {
                    continue;
                }
                let Some(parsed) = parse(word) else {
                    let _ = hostcalls::log(LogLevel::Error, &format!("unknown op {word}"));
                    return false;
                };
                ops.extend(parsed);
            }
            self.ops = Rc::new(ops);
            self.metric = hostcalls::define_metric(MetricType::Counter, "probe.count").unwrap_or(0);
            true
        }

        fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
            Some(Box::new(Probe {
                ops: Rc::clone(&self.ops),
                metric: self.metric,
            }))
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    struct Probe {
        ops: Rc<Vec<Op>>,
        metric: u32,
    }

    impl Context for Probe {}

    /// What pat-edge needs from the request headers, found in all of them.
    #[derive(Default)]
    struct Needed {
        path: Vec<u8>,
        content_type: bool,
        identity: bool,
    }

    impl Needed {
        fn sink(&self) -> usize {
            self.path.len() + usize::from(self.content_type) + usize::from(self.identity)
        }
    }

    fn needed<'a>(pairs: impl Iterator<Item = (&'a [u8], &'a [u8])>) -> Needed {
        let mut found = Needed::default();
        for (name, value) in pairs {
            match name {
                b":path" => found.path = value.to_vec(),
                b"content-type" => found.content_type = true,
                _ if IDENTITY.iter().any(|i| i.as_bytes() == name) => found.identity = true,
                _ => {}
            }
        }
        found
    }

    impl HttpContext for Probe {
        fn on_http_request_headers(&mut self, num_headers: usize, _: bool) -> Action {
            let headers = MapType::HttpRequestHeaders;
            let mut sink = 0usize;
            for op in self.ops.iter() {
                match op {
                    Op::Get(name) => {
                        sink += hostcalls::get_map_value_bytes(headers, name)
                            .ok()
                            .flatten()
                            .map_or(0, |v| v.len());
                    }
                    Op::GetString(name) => {
                        sink += hostcalls::get_map_value(headers, name)
                            .ok()
                            .flatten()
                            .map_or(0, |v| v.len());
                    }
                    Op::Pairs => {
                        let pairs = hostcalls::get_map_bytes(headers).unwrap_or_default();
                        sink +=
                            needed(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_slice()))).sink();
                    }
                    Op::PairsString => {
                        let pairs = hostcalls::get_map(headers).unwrap_or_default();
                        sink +=
                            needed(pairs.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()))).sink();
                    }
                    Op::PairsRaw => {
                        let serialized = raw::header_map_pairs(headers);
                        sink += needed(raw::Pairs::new(&serialized)).sink();
                    }
                    Op::MapSize => sink += raw::header_map_size(headers),
                    Op::Remove(name) => {
                        let _ = hostcalls::remove_map_value(headers, name);
                    }
                    Op::Add(name, value) => {
                        let _ = hostcalls::add_map_value_bytes(headers, name, value.as_bytes());
                    }
                    Op::Replace(name, value) => {
                        let _ =
                            hostcalls::set_map_value_bytes(headers, name, Some(value.as_bytes()));
                    }
                    Op::SourceAddress => {
                        sink += hostcalls::get_property(vec!["source", "address"])
                            .ok()
                            .flatten()
                            .map_or(0, |v| v.len());
                    }
                    Op::Time => sink += hostcalls::get_current_time().map_or(0, |_| 1),
                    Op::Metric => {
                        let _ = hostcalls::increment_metric(self.metric, 1);
                    }
                    Op::Sha256 => {
                        let digest =
                            sha2::Sha256::digest(b"pate_0123456789012345678901234567890123456");
                        sink += usize::from(digest.first().copied().unwrap_or(0));
                    }
                    Op::LogHeaders => {
                        let pairs = hostcalls::get_map_bytes(headers).unwrap_or_default();
                        let mut line = format!(
                            "probe: {num_headers} request headers, {} bytes:",
                            raw::header_map_size(headers)
                        );
                        for (name, value) in &pairs {
                            line.push_str(&format!(" {name}({})", value.len()));
                        }
                        let _ = hostcalls::log(LogLevel::Info, &line);
                    }
                }
            }
            std::hint::black_box(sink);
            Action::Continue
        }
    }

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
            Box::new(Root { ops: Rc::new(Vec::new()), metric: 0 })
        });
    }}
}

/// The two header-map host calls the SDK does not offer as such: the serialized pairs
/// without deserializing them, and the map's size.
#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod raw {
    use proxy_wasm::types::{MapType, Status};

    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_header_map_pairs(
            map_type: MapType,
            return_data: *mut *mut u8,
            return_size: *mut usize,
        ) -> Status;
        fn proxy_get_header_map_size(map_type: MapType, return_size: *mut usize) -> Status;
    }

    /// The map as Envoy serializes it: a count, each name's and value's length (u32 LE), then
    /// each name and value followed by a NUL.
    pub(crate) fn header_map_pairs(map_type: MapType) -> Vec<u8> {
        let mut data: *mut u8 = std::ptr::null_mut();
        let mut size = 0usize;
        // SAFETY: the host writes a pointer to `size` bytes it allocated in this VM through
        // `proxy_on_memory_allocate` (the SDK's: a boxed slice of exactly `size` bytes), which
        // this takes ownership of, as the SDK's own getters do.
        match unsafe { proxy_get_header_map_pairs(map_type, &mut data, &mut size) } {
            Status::Ok if !data.is_null() => unsafe { Vec::from_raw_parts(data, size, size) },
            _ => Vec::new(),
        }
    }

    pub(crate) fn header_map_size(map_type: MapType) -> usize {
        let mut size = 0usize;
        // SAFETY: the host writes one usize (a u32 in wasm32) to `size`.
        match unsafe { proxy_get_header_map_size(map_type, &mut size) } {
            Status::Ok => size,
            _ => 0,
        }
    }

    /// The (name, value) pairs of a serialized map, read in place.
    pub(crate) struct Pairs<'a> {
        bytes: &'a [u8],
        index: usize,
        count: usize,
        data: usize,
    }

    impl<'a> Pairs<'a> {
        pub(crate) fn new(bytes: &'a [u8]) -> Self {
            let count = u32_at(bytes, 0).map_or(0, |c| c as usize);
            Self {
                bytes,
                index: 0,
                count,
                data: 4 + count * 8,
            }
        }
    }

    fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
        let word = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
    }

    impl<'a> Iterator for Pairs<'a> {
        type Item = (&'a [u8], &'a [u8]);

        fn next(&mut self) -> Option<Self::Item> {
            if self.index >= self.count {
                return None;
            }
            let sizes = 4 + self.index * 8;
            let name_len = u32_at(self.bytes, sizes)? as usize;
            let value_len = u32_at(self.bytes, sizes + 4)? as usize;
            let name = self.bytes.get(self.data..self.data + name_len)?;
            let value_at = self.data + name_len + 1;
            let value = self.bytes.get(value_at..value_at + value_len)?;
            self.data = value_at + value_len + 1;
            self.index += 1;
            Some((name, value))
        }
    }
}
