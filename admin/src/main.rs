//! `pat-admin` entry point: parse the command line, run, map errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use pat_admin::cli::Opts;
use pat_admin::commands;
use pat_admin::error::Error;

fn main() -> ExitCode {
    let opts = match Opts::try_parse() {
        Ok(opts) => opts,
        Err(e) => return usage_error(e),
    };
    let json = opts.json;
    match run(opts) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            if json {
                let body =
                    serde_json::json!({ "error": e.to_string(), "exit_code": e.exit_code() });
                eprintln!("{body}");
            } else {
                eprintln!("pat-admin: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Help and version go to stdout with exit 0; usage errors exit 2, as JSON on stderr when
/// `--json` was asked for.
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
    let message = e.render().to_string();
    let first = message
        .lines()
        .next()
        .unwrap_or("usage error")
        .trim_start_matches("error: ");
    eprintln!("{}", serde_json::json!({ "error": first, "exit_code": 2 }));
    ExitCode::from(2)
}

fn run(opts: Opts) -> Result<u8, Error> {
    let store = match opts.store {
        Some(dir) => dir,
        None => default_store()?,
    };
    commands::run(opts.command, store, opts.json)
}

/// The user's data directory, e.g. `~/.local/share/pat-admin`.
fn default_store() -> Result<PathBuf, Error> {
    directories::ProjectDirs::from("", "", "pat-admin")
        .map(|dirs| dirs.data_dir().to_path_buf())
        .ok_or_else(|| {
            Error::Invalid(
                "no home directory to keep the store in; pass --store DIR or set PAT_ADMIN_STORE"
                    .into(),
            )
        })
}
