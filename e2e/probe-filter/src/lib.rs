//! A probe for the benchmark: an HTTP filter that, on every request's headers, makes the host
//! calls its configuration names (comma-separated), and nothing else. Counting Envoy's
//! instructions with and without one operation tells what that operation costs; the
//! benchmark does this for each call the pat-edge filter makes per request.
//!
//! Operations: `get_path` (read `:path`), `get_missing` (read an absent header),
//! `remove_missing` (remove an absent header), `add` (add a header), `replace` (set a header),
//! `time` (read the clock), `metric` (increment a counter), `sha256` (hash a token-sized
//! string in the guest).

#[cfg(target_arch = "wasm32")]
mod filter {
    use std::rc::Rc;

    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType};
    use sha2::Digest;

    #[derive(Clone, Copy)]
    enum Op {
        GetPath,
        GetMissing,
        RemoveMissing,
        Add,
        Replace,
        Time,
        Metric,
        Sha256,
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
            for name in String::from_utf8_lossy(&config).split(',').map(str::trim) {
                ops.push(match name {
                    "" => continue,
                    "get_path" => Op::GetPath,
                    "get_missing" => Op::GetMissing,
                    "remove_missing" => Op::RemoveMissing,
                    "add" => Op::Add,
                    "replace" => Op::Replace,
                    "time" => Op::Time,
                    "metric" => Op::Metric,
                    "sha256" => Op::Sha256,
                    other => {
                        let _ = hostcalls::log(LogLevel::Error, &format!("unknown op {other}"));
                        return false;
                    }
                });
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

    impl HttpContext for Probe {
        fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
            let headers = MapType::HttpRequestHeaders;
            let mut sink = 0usize;
            for op in self.ops.iter() {
                match op {
                    Op::GetPath => {
                        sink += hostcalls::get_map_value_bytes(headers, ":path")
                            .ok()
                            .flatten()
                            .map_or(0, |v| v.len());
                    }
                    Op::GetMissing => {
                        sink += hostcalls::get_map_value_bytes(headers, "x-probe-absent")
                            .ok()
                            .flatten()
                            .map_or(0, |v| v.len());
                    }
                    Op::RemoveMissing => {
                        let _ = hostcalls::remove_map_value(headers, "x-probe-absent");
                    }
                    Op::Add => {
                        let _ = hostcalls::add_map_value_bytes(headers, "x-probe-added", b"12345");
                    }
                    Op::Replace => {
                        let _ = hostcalls::set_map_value_bytes(
                            headers,
                            "x-probe-replaced",
                            Some(b"12345"),
                        );
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
