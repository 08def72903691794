//! `pat-admin` entry point: parse the command line, run, map errors to exit codes
//! (`run() -> Result<ExitCode>`, as `fd` does).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pat_admin::cli::Opts;
use pat_admin::commands;
use pat_admin::error::Error;
use pat_admin::output;
use pat_admin::store::db::Location;

fn main() -> ExitCode {
    let opts = match Opts::try_parse() {
        Ok(opts) => opts,
        Err(e) => return usage_error(e),
    };
    let json = opts.json;
    match run(opts) {
        Ok(code) => ExitCode::from(code),
        // The reader went away (`| head`): nothing to say, like other Unix tools.
        Err(Error::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            output::error_line(json, &e.to_string(), e.exit_code());
            ExitCode::from(e.exit_code())
        }
    }
}

/// Help and version go to stdout with exit 0; usage errors exit 2, as JSON on stderr when
/// `--json` was asked for (the whole message, argument names included, on one line).
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let informational = matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if informational || !std::env::args_os().any(|a| a == "--json") {
        let code = e.exit_code();
        let _ = e.print();
        return ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    output::error_line(true, &usage_message(&e.render().to_string()), 2);
    ExitCode::from(2)
}

/// clap's rendered error without the `error:` label, the usage block and the help hint:
/// `the following required arguments were not provided: --user <USER>`.
fn usage_message(rendered: &str) -> String {
    let mut parts = Vec::new();
    for line in rendered.lines() {
        let line = line.trim();
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line.trim_start_matches("error: ").to_string());
        }
    }
    let text = parts.join(" ");
    if text.is_empty() {
        "usage error".into()
    } else {
        text
    }
}

fn run(opts: Opts) -> Result<u8, Error> {
    // `--store`, else PAT_ADMIN_STORE (clap reads it), else PAT_STORE, else the default.
    let named = opts
        .store
        .or_else(|| std::env::var("PAT_STORE").ok().filter(|s| !s.is_empty()));
    let store = match named {
        Some(text) => Location::parse(&text),
        None => Location::Sqlite(default_store()?),
    };
    commands::run(opts.command, store, opts.json)
}

/// The user's data directory, e.g. `~/.local/share/pat-admin`.
fn default_store() -> Result<PathBuf, Error> {
    directories::ProjectDirs::from("", "", "pat-admin")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .ok_or_else(|| {
            Error::Internal(
                "no home directory to keep the store in; pass --store DIR (or postgres://...) or set PAT_ADMIN_STORE"
                    .into(),
            )
        })
}
