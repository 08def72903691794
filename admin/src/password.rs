//! Account passwords: argon2id hashes, reading a password (no-echo prompt on a terminal, or
//! the first lines of stdin with `--password-stdin`), and confirmation with a delay that grows
//! with consecutive failures.

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Shortest accepted password.
pub const MIN_LEN: usize = 8;
/// Longest accepted password.
pub const MAX_LEN: usize = 1024;

/// Where passwords come from.
pub struct Source {
    from_stdin: bool,
    lines: Option<std::vec::IntoIter<Zeroizing<String>>>,
}

impl Source {
    /// `from_stdin`: read lines of standard input instead of prompting.
    pub fn new(from_stdin: bool) -> Self {
        Self {
            from_stdin,
            lines: None,
        }
    }

    /// Reads one password: the next line of stdin, or a no-echo prompt on the terminal.
    pub fn read(&mut self, prompt: &str) -> Result<Zeroizing<String>> {
        if self.from_stdin {
            let lines = self.lines.get_or_insert_with(|| {
                let stdin = std::io::stdin();
                let mut lines = Vec::new();
                for _ in 0..2 {
                    let mut line = Zeroizing::new(String::new());
                    match stdin.lock().read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let trimmed = line.trim_end_matches(['\n', '\r']).len();
                            line.truncate(trimmed);
                            lines.push(line);
                        }
                    }
                }
                lines.into_iter()
            });
            return lines.next().ok_or_else(|| {
                Error::Password(
                    "--password-stdin: standard input has no (more) lines to read a password from"
                        .into(),
                )
            });
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::Password(
                "no terminal to ask for the password on; pass --password-stdin and write the password as the first line of standard input".into(),
            ));
        }
        rpassword::prompt_password(prompt)
            .map(Zeroizing::new)
            .map_err(|e| Error::Password(format!("cannot read the password: {e}")))
    }

    /// Reads a new password (twice when prompting) and checks it is acceptable.
    pub fn read_new(&mut self, account: &str) -> Result<Zeroizing<String>> {
        let password = self.read(&format!("New password for {account}: "))?;
        if !self.from_stdin {
            let again = self.read(&format!("Repeat the new password for {account}: "))?;
            if *again != *password {
                return Err(Error::Password(
                    "the two passwords differ; nothing was changed".into(),
                ));
            }
        }
        check_new(&password)?;
        Ok(password)
    }
}

/// Rules for a new password.
pub fn check_new(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_LEN {
        return Err(Error::Password(format!(
            "the password must have at least {MIN_LEN} characters"
        )));
    }
    if password.len() > MAX_LEN {
        return Err(Error::Password(format!(
            "the password must have at most {MAX_LEN} bytes"
        )));
    }
    Ok(())
}

/// Hashes a password with argon2id (default parameters, random salt) into a PHC string.
pub fn hash(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| Error::Random(format!("cannot hash the password: {e}")))
}

/// Checks a password against a stored PHC string (constant-time comparison inside argon2).
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The pause before checking a password after `failures` consecutive wrong ones: none after
/// none, then 250 ms, doubling up to 16 s.
pub fn delay_after(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => Duration::from_millis(250u64 << (n - 1).min(6)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_are_salted() {
        let a = hash("correct horse").expect("hash");
        let b = hash("correct horse").expect("hash");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "random salt");
        assert!(verify("correct horse", &a));
        assert!(!verify("correct horsE", &a));
        assert!(!verify("correct horse", "not a hash"));
    }

    #[test]
    fn new_password_rules() {
        assert!(check_new("short").is_err());
        assert!(check_new("long enough").is_ok());
        assert!(check_new(&"x".repeat(MAX_LEN + 1)).is_err());
    }

    #[test]
    fn delays_grow_and_cap() {
        let delays: Vec<u64> = (0..10).map(|n| delay_after(n).as_millis() as u64).collect();
        assert_eq!(
            delays,
            [0, 250, 500, 1000, 2000, 4000, 8000, 16000, 16000, 16000]
        );
    }
}
