//! Where output goes, and how it looks.
//!
//! - Results go to stdout; notes, warnings and progress to stderr, so stdout stays
//!   scriptable (`TOKEN=$(pat-admin generate …)`).
//! - With `--json`, stdout carries one JSON document and stderr only JSON lines
//!   (`{"warning": …}`, `{"error": …, "exit_code": …}`); notes for people are dropped.
//! - Colour only on a terminal: [`anstream`] strips styles when the stream is not one, or
//!   when `NO_COLOR` is set (and forces them with `CLICOLOR_FORCE`).
//! - A reader that goes away (`pat-admin methods | head -1`) is not an error to report: a
//!   write to a closed stdout becomes [`Error::BrokenPipe`], which the binary turns into a
//!   quiet exit. Writes to stderr never fail a command.

use std::io::{IsTerminal, Write};

use anstyle::{AnsiColor, Style};
use serde::Serialize;

use crate::error::{Error, Result};

/// Writes `text` to stdout (styles stripped unless it is a terminal).
pub fn stdout(text: &str) -> Result<()> {
    let mut out = anstream::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                Error::BrokenPipe
            } else {
                Error::io("standard output", e)
            }
        })
}

/// Writes `text` to stderr; a closed stderr is ignored.
pub fn stderr(text: &str) {
    let mut err = anstream::stderr().lock();
    let _ = err.write_all(text.as_bytes()).and_then(|()| err.flush());
}

/// Is stdout a terminal (tables are for people, counts and hints go to stderr otherwise)?
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// `text` in `style` (stripped again by [`stdout`]/[`stderr`] when not on a terminal).
pub fn paint(style: Style, text: &str) -> String {
    format!("{style}{text}{style:#}")
}

/// Green: accepted, active.
pub const GOOD: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Green)));
/// Red: rejected, unreachable, expired.
pub const BAD: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Red)));
/// Yellow: warnings, behind, expiring soon.
pub const WARN: Style = Style::new().fg_color(Some(anstyle::Color::Ansi(AnsiColor::Yellow)));
/// Bold: headlines.
pub const BOLD: Style = Style::new().bold();

/// The output mode of one run.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// `--json`.
    pub json: bool,
}

impl Output {
    /// Prints a result: `value` as JSON, or the human rendering.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        if self.json {
            self.json_only(value)
        } else {
            stdout(&human())
        }
    }

    /// Prints `value` as JSON on stdout when `--json` is on; nothing otherwise.
    pub fn json_only<T: Serialize>(&self, value: &T) -> Result<()> {
        if !self.json {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(value)
            .map_err(|e| Error::Internal(format!("cannot encode JSON: {e}")))?;
        stdout(&format!("{text}\n"))
    }

    /// A note for people on stderr; dropped with `--json`.
    pub fn note(&self, text: &str) {
        if !self.json {
            stderr(&format!("{text}\n"));
        }
    }

    /// A warning on stderr: `pat-admin: warning: …`, or `{"warning": …}` with `--json`.
    pub fn warn(&self, text: &str) {
        if self.json {
            stderr(&format!("{}\n", serde_json::json!({ "warning": text })));
        } else {
            stderr(&format!("pat-admin: {} {text}\n", paint(WARN, "warning:")));
        }
    }

    /// A failure that does not undo what the command did (a change saved but not pushed):
    /// `pat-admin: …`, or `{"error": …, "exit_code": …}` with `--json`.
    pub fn failure(&self, text: &str, code: u8) {
        error_line(self.json, text, code);
    }
}

/// Prints an error on stderr, as `pat-admin: …` or as one JSON object.
pub fn error_line(json: bool, text: &str, code: u8) {
    if json {
        stderr(&format!(
            "{}\n",
            serde_json::json!({ "error": text, "exit_code": code })
        ));
    } else {
        stderr(&format!("pat-admin: {text}\n"));
    }
}
