//! `man --dir DIR`: man pages generated from the clap definitions (`clap_mangen`):
//! `pat-admin.1` and one page per command and subcommand (`pat-admin-key-generate.1`).

use std::path::Path;

use serde::Serialize;

use crate::cli::ManArgs;
use crate::error::{Error, Result, exit};
use crate::output::Output;

/// Writes every page into `args.dir` (created if needed) and lists them.
pub fn run(out: Output, args: &ManArgs) -> Result<u8> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let command = <crate::cli::Opts as clap::CommandFactory>::command();
    let mut written = Vec::new();
    write_pages(&command, "pat-admin", "pat-admin", dir, &mut written)?;
    #[derive(Serialize)]
    struct Written {
        dir: String,
        pages: Vec<String>,
    }
    let report = Written {
        dir: dir.display().to_string(),
        pages: written,
    };
    out.emit(&report, || {
        format!(
            "Wrote {} man pages to {} (read them with: man pat-admin).\n",
            report.pages.len(),
            report.dir
        )
    })?;
    Ok(exit::OK)
}

/// Writes `command`'s page as `<name>.1` (`pat-admin-key-generate.1`; `bin` is how it is
/// typed: `pat-admin key generate`), then its subcommands' pages.
fn write_pages(
    command: &clap::Command,
    name: &str,
    bin: &str,
    dir: &Path,
    written: &mut Vec<String>,
) -> Result<()> {
    let command = command
        .clone()
        .name(name.to_string())
        .bin_name(bin.to_string());
    let file = format!("{name}.1");
    let path = dir.join(&file);
    let mut page = Vec::new();
    clap_mangen::Man::new(command.clone())
        .title(name.to_uppercase())
        .render(&mut page)
        .map_err(|e| Error::io(&path, e))?;
    std::fs::write(&path, page).map_err(|e| Error::io(&path, e))?;
    written.push(file);
    for sub in command.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        write_pages(
            sub,
            &format!("{name}-{}", sub.get_name()),
            &format!("{bin} {}", sub.get_name()),
            dir,
            written,
        )?;
    }
    Ok(())
}
