//! Helpers shared by the testbed's own tests.

use pat_testbed::{Testbed, TestbedBuilder, wasm_artifact};

/// A builder for the fixture filter (built by
/// `cargo build --release --target wasm32-wasip1 -p testbed-fixture`).
pub(crate) fn fixture() -> TestbedBuilder {
    let wasm = wasm_artifact("testbed_fixture").unwrap_or_else(|e| panic!("{e}"));
    Testbed::builder(wasm)
}
