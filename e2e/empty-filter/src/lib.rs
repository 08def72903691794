//! An HTTP filter that does nothing, built with the same SDK and release profile as pat-edge:
//! the cost of running any proxy-wasm filter in Envoy, which the benchmark compares against.

#[cfg(target_arch = "wasm32")]
mod filter {
    use proxy_wasm::traits::{Context, HttpContext};

    struct Empty;

    impl Context for Empty {}

    impl HttpContext for Empty {}

    proxy_wasm::main! {{
        proxy_wasm::set_http_context(|_, _| -> Box<dyn HttpContext> { Box::new(Empty) });
    }}
}
