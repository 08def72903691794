//! Locating modules: a missing artifact names the command that builds it.

use pat_testbed::{Error, Testbed, wasm_artifact};

#[test]
fn a_missing_artifact_names_the_build_command() {
    let err = wasm_artifact("no_such_crate").unwrap_err();
    match &err {
        Error::ArtifactMissing { path, command, .. } => {
            assert!(path.ends_with("wasm32-wasip1/release/no_such_crate.wasm"));
            assert_eq!(
                command,
                "cargo build --release --target wasm32-wasip1 -p no-such-crate"
            );
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(err.to_string().contains("cargo build --release"));
}

#[test]
fn the_fixture_artifact_exists() {
    let path = wasm_artifact("testbed_fixture").unwrap_or_else(|e| panic!("{e}"));
    assert!(path.is_file());
}

#[test]
fn an_unreadable_module_is_an_io_error() {
    let err = Testbed::builder("/nonexistent/filter.wasm")
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}
