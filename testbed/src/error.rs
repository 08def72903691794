//! The library's error type.

use crate::world::LogEntry;
use std::path::PathBuf;

/// Everything that can go wrong while locating, compiling, starting or driving a module.
///
/// Guest misbehaviour while serving requests (traps, bad statuses) is *recorded*
/// (see [`crate::Testbed::traps`]), not returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `.wasm` file is not there; `command` builds it.
    #[error("wasm artifact `{name}` not found at {}: build it with `{command}`", path.display())]
    ArtifactMissing {
        /// Crate name as given (underscores).
        name: String,
        /// Where it was expected.
        path: PathBuf,
        /// The cargo command that produces it.
        command: String,
    },
    /// The `.wasm` file is older than a source it was built from; `command` rebuilds it.
    #[error(
        "wasm artifact {} is older than {}, which changed since it was built: rebuild it with `{command}`",
        path.display(),
        source_path.display()
    )]
    ArtifactStale {
        /// The artifact.
        path: PathBuf,
        /// A source newer than it.
        source_path: PathBuf,
        /// The cargo command that rebuilds it.
        command: String,
    },
    /// The workspace root (a `Cargo.toml` with `[workspace]`) could not be found.
    #[error("cannot locate the workspace root above {}", .0.display())]
    WorkspaceRoot(PathBuf),
    /// Reading the module failed.
    #[error("failed to read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Cranelift rejected the module.
    #[error("failed to compile {}: {message}", path.display())]
    Compile {
        /// The file.
        path: PathBuf,
        /// Wasmtime's message.
        message: String,
    },
    /// The module could not be linked or instantiated (missing export, bad signature...).
    #[error("failed to instantiate the module: {0}")]
    Instantiate(String),
    /// The module does not declare a supported ABI (`proxy_abi_version_0_2_0`/`_0_2_1`).
    #[error("the module exports neither proxy_abi_version_0_2_1 nor proxy_abi_version_0_2_0")]
    UnsupportedAbi,
    /// The builder was given no plugin, or two plugins with the same root id.
    #[error("invalid testbed configuration: {0}")]
    Config(String),
    /// `on_vm_start` or `on_configure` returned false.
    #[error("VM {vm}: {callback} returned false for plugin `{plugin}`{}", format_logs(.logs))]
    Rejected {
        /// VM index.
        vm: usize,
        /// Plugin root id.
        plugin: String,
        /// `proxy_on_vm_start` or `proxy_on_configure`.
        callback: &'static str,
        /// Everything that VM logged so far.
        logs: Vec<LogEntry>,
    },
    /// The guest trapped while starting (`_initialize`, `on_vm_start`, `on_configure`...).
    #[error("VM {vm}: trap in {callback} during startup: {message}{}", format_logs(.logs))]
    StartupTrap {
        /// VM index.
        vm: usize,
        /// The export that trapped.
        callback: &'static str,
        /// Wasmtime's trap message.
        message: String,
        /// Everything that VM logged so far.
        logs: Vec<LogEntry>,
    },
    /// No pending HTTP call has this token.
    #[error("no pending HTTP call with token {0}")]
    UnknownHttpCall(u32),
}

fn format_logs(logs: &[LogEntry]) -> String {
    if logs.is_empty() {
        return String::new();
    }
    let mut out = String::from("\nlogs:");
    for entry in logs {
        out.push_str(&format!("\n  [{:?}] {}", entry.level, entry.message));
    }
    out
}
