//! Locating modules: a missing artifact names the command that builds it.

use pat_testbed::{Error, Testbed, check_fresh, wasm_artifact};

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

#[test]
fn a_module_older_than_its_sources_is_refused_with_the_rebuild_command() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let wasm = dir.path().join("filter.wasm");
    let source = dir.path().join("with space").join("lib.rs");
    std::fs::create_dir_all(source.parent().expect("parent")).expect("dir");
    std::fs::write(&source, "// the filter").expect("source");
    std::fs::write(&wasm, b"\0asm").expect("module");
    let escaped = source.display().to_string().replace(' ', "\\ ");
    std::fs::write(
        dir.path().join("filter.d"),
        format!("{}: {escaped} /no/such/file.rs\n", wasm.display()),
    )
    .expect("dep-info");
    let command = "cargo build --release --target wasm32-wasip1 -p filter";
    let set = |path: &std::path::Path, secs: u64| {
        let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(when))
            .expect("mtime");
    };
    set(&source, 1_000);
    set(&wasm, 2_000);
    check_fresh(&wasm, command).expect("built after its sources");
    set(&source, 3_000);
    let err = check_fresh(&wasm, command).expect_err("a source changed since");
    match &err {
        Error::ArtifactStale {
            source_path,
            command: rebuild,
            ..
        } => {
            assert_eq!(source_path, &source);
            assert_eq!(rebuild, command);
        }
        other => panic!("unexpected error: {other}"),
    }
    assert!(
        err.to_string().contains("rebuild it with `cargo build"),
        "{err}"
    );
    // Without dep-info there is nothing to compare.
    std::fs::remove_file(dir.path().join("filter.d")).expect("remove");
    check_fresh(&wasm, command).expect("taken");
}
