//! Locating built `.wasm` artifacts (refusing one older than its sources), and the
//! process-wide engine and module cache.
//!
//! Cranelift takes about a second per module, so compiled [`Module`]s are cached
//! per path (keyed with the file's mtime, so a rebuild is picked up). The cache
//! and the [`Engine`] hold no test state, which is why they are the only
//! process-wide values in the crate.

use crate::error::Error;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;
use wasmtime::{Engine, Module};

/// Path of `<target dir>/wasm32-wasip1/release/<name>.wasm` for a workspace crate.
///
/// `name` is the crate name with underscores (`"testbed_fixture"`, `"pat_plugin"`).
/// The target dir is `$CARGO_TARGET_DIR` (relative paths are taken from the
/// workspace root) or `<workspace root>/target`. Errors with the exact build
/// command when the file is missing, and when it is older than a source it was built from
/// ([`check_fresh`]): tests of a stale module would test code that is no longer there.
pub fn wasm_artifact(name: &str) -> Result<PathBuf, Error> {
    let target = target_dir()?;
    let file = name.replace('-', "_");
    let path = target
        .join("wasm32-wasip1")
        .join("release")
        .join(format!("{file}.wasm"));
    let command = format!(
        "cargo build --release --target wasm32-wasip1 -p {}",
        name.replace('_', "-")
    );
    if !path.is_file() {
        return Err(Error::ArtifactMissing {
            name: file,
            path,
            command,
        });
    }
    check_fresh(&path, &command)?;
    Ok(path)
}

/// Refuses a `.wasm` older than any source it was built from, as cargo's dep-info file next
/// to it (`<name>.d`) lists them (the crate's own files and its path dependencies'; a new
/// module shows up as a change to the file that declares it). Without a dep-info file there
/// is nothing to compare, and the module is taken. `command` rebuilds it.
pub fn check_fresh(wasm: &Path, command: &str) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: wasm.to_path_buf(),
        source,
    };
    let built = std::fs::metadata(wasm)
        .and_then(|m| m.modified())
        .map_err(io)?;
    let Ok(dep_info) = std::fs::read_to_string(wasm.with_extension("d")) else {
        return Ok(());
    };
    for source in dep_info_sources(&dep_info) {
        let changed = std::fs::metadata(&source).and_then(|m| m.modified());
        if changed.is_ok_and(|changed| changed > built) {
            return Err(Error::ArtifactStale {
                path: wasm.to_path_buf(),
                source_path: source,
                command: command.to_string(),
            });
        }
    }
    Ok(())
}

/// The sources a make-style dep-info file lists for its first target (`target: a b\ c`).
fn dep_info_sources(dep_info: &str) -> Vec<PathBuf> {
    let Some(line) = dep_info.lines().next() else {
        return Vec::new();
    };
    let Some((_, sources)) = line.split_once(": ") else {
        return Vec::new();
    };
    let mut paths = Vec::new();
    let mut current = String::new();
    let mut chars = sources.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ' ' => {
                if !current.is_empty() {
                    paths.push(PathBuf::from(std::mem::take(&mut current)));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        paths.push(PathBuf::from(current));
    }
    paths
}

/// `$CARGO_TARGET_DIR` (relative to the workspace root) or `<workspace root>/target`.
fn target_dir() -> Result<PathBuf, Error> {
    let root = workspace_root()?;
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    })
}

/// The first ancestor of this crate's manifest dir whose `Cargo.toml` declares `[workspace]`.
fn workspace_root() -> Result<PathBuf, Error> {
    let start = Path::new(env!("CARGO_MANIFEST_DIR"));
    start
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|manifest| manifest.lines().any(|l| l.trim() == "[workspace]"))
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| Error::WorkspaceRoot(start.to_path_buf()))
}

/// The engine every testbed uses (a module can only run in the engine that compiled it).
///
/// Compiled code is also cached on disk under `<target dir>/pat-testbed-cache`, so
/// each test binary does not pay for Cranelift again; without a usable target dir
/// the engine simply compiles.
pub(crate) fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = wasmtime::Config::new();
        if let Some(cache) = disk_cache() {
            config.cache(Some(cache));
        }
        Engine::new(&config).unwrap_or_default()
    })
}

fn disk_cache() -> Option<wasmtime::Cache> {
    let directory = target_dir().ok()?.join("pat-testbed-cache");
    let mut config = wasmtime::CacheConfig::new();
    config.with_directory(directory);
    wasmtime::Cache::new(config).ok()
}

type ModuleCache = Mutex<HashMap<PathBuf, (SystemTime, Module)>>;

/// Compiles `path`, or returns the cached module if the file has not changed.
pub(crate) fn load_module(path: &Path) -> Result<Module, Error> {
    static CACHE: OnceLock<ModuleCache> = OnceLock::new();
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let key = path.canonicalize().map_err(io)?;
    let mtime = std::fs::metadata(&key)
        .and_then(|m| m.modified())
        .map_err(io)?;
    // Holding the lock while compiling keeps two tests from compiling the same file twice.
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((cached_mtime, module)) = cache.get(&key)
        && *cached_mtime == mtime
    {
        return Ok(module.clone());
    }
    let bytes = std::fs::read(&key).map_err(io)?;
    let module = Module::new(engine(), &bytes).map_err(|e| Error::Compile {
        path: key.clone(),
        message: format!("{e:#}"),
    })?;
    cache.insert(key, (mtime, module.clone()));
    Ok(module)
}
