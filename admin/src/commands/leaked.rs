//! `lookup` and `revoke-leaked`: from a leaked token value to its token, for secret scanners.
//!
//! Values are read from stdin, never from the command line (argv is visible to every user
//! of the machine and kept in shell history): one per line, surrounding whitespace and a
//! trailing newline ignored, blank lines skipped; on a terminal, one value at a no-echo
//! prompt. Every value is checked first, without any lookup (prefix, length, characters,
//! CRC32 checksum, as the edge does): a line that is not a token fails the command (exit 2)
//! before anything is looked up or changed. Then each value is hashed (SHA-256, as stored)
//! and looked up by its hash (the `hash` column is UNIQUE); the stored hash is compared
//! with the computed one in constant time. Values are never printed, stored or logged:
//! output and the audit log show `pate_…` and the last four characters.
//!
//! A regenerated token's previous value, while it still works in its grace window, is that
//! token's: `lookup` says so (`old_value`), and `revoke-leaked` removes the token (the
//! previous value with it).

use std::io::{IsTerminal, Read};

use pat_core::token::{TokenHash, mask, validate};
use serde::Serialize;
use zeroize::Zeroizing;

use super::{ChangePublish, Ctx, PublishState, table};
use crate::cli::{LookupArgs, RevokeLeakedArgs};
use crate::error::{Error, Result, exit};
use crate::ops::tokens::holder;
use crate::ops::{Confirmation, Leaked, Revoked};
use crate::output;

use crate::store::tokens::Which;

/// The most stdin is read for values (a scanner's batch, not a file dump).
const MAX_INPUT: u64 = 1 << 20;

/// Reads and checks every value on stdin.
fn read_values() -> Result<Vec<Leaked>> {
    let mut text = Zeroizing::new(String::new());
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let value = rpassword::prompt_password("Token value (not echoed): ")
            .map_err(|e| Error::Password(format!("cannot read the token value: {e}")))?;
        text.push_str(&value);
        drop(Zeroizing::new(value));
    } else {
        stdin
            .lock()
            .take(MAX_INPUT + 1)
            .read_to_string(&mut text)
            .map_err(|e| {
                Error::Invalid(format!(
                    "cannot read token values from standard input ({e}); write them there as text, one per line"
                ))
            })?;
        if text.len() as u64 > MAX_INPUT {
            return Err(Error::Invalid(format!(
                "standard input holds more than {MAX_INPUT} bytes; give token values one per line, in smaller batches"
            )));
        }
    }
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let value = line.trim();
        if value.is_empty() {
            continue;
        }
        validate(value).map_err(|e| {
            Error::Invalid(format!(
                "line {} of standard input ({}): {e}; nothing was looked up or changed",
                n + 1,
                mask(value)
            ))
        })?;
        values.push(Leaked {
            masked: mask(value),
            hash: TokenHash::of(value),
        });
    }
    if values.is_empty() {
        return Err(Error::Invalid(
            "no token value on standard input: write the leaked value(s) there, one per line (e.g. printf '%s\\n' \"$VALUE\" | pat-admin lookup)".into(),
        ));
    }
    Ok(values)
}

/// What `lookup` says about one value.
#[derive(Debug, Serialize)]
struct Found {
    /// The value, masked.
    value: String,
    /// `true` when it is a token in this store.
    found: bool,
    id: Option<i64>,
    user: Option<String>,
    description: Option<String>,
    /// `active`, `expired`, or `null` when not found.
    status: Option<&'static str>,
    /// `true` when it is the token's previous value, still working in a regeneration's
    /// grace window (until `old_value_expires_at`).
    old_value: bool,
    /// RFC 3339: when that previous value stops working; `null` otherwise.
    old_value_expires_at: Option<String>,
    /// RFC 3339, `null` = never or not found.
    expires_at: Option<String>,
}

/// `lookup`: which token each value on stdin is. Exit 0 when every value was found, 4 when
/// one was not (it may have been removed already, or belong to another store).
pub fn lookup(ctx: &mut Ctx, _args: &LookupArgs) -> Result<u8> {
    let values = read_values()?;
    let at = ctx.store.now();
    let mut report = Vec::new();
    for value in &values {
        let token = holder(ctx.store.conn(), value)?;
        report.push(match token {
            Some((t, which)) => Found {
                value: value.masked.clone(),
                found: true,
                id: Some(t.id),
                user: Some(t.user.clone()),
                description: Some(t.description.clone()),
                status: Some(if t.is_expired(at) {
                    "expired"
                } else {
                    "active"
                }),
                old_value: which == Which::Old,
                old_value_expires_at: (which == Which::Old)
                    .then(|| t.old_value_until(at).map(crate::expiry::rfc3339))
                    .flatten(),
                expires_at: t.expires_at.map(crate::expiry::rfc3339),
            },
            None => Found {
                value: value.masked.clone(),
                found: false,
                id: None,
                user: None,
                description: None,
                status: None,
                old_value: false,
                old_value_expires_at: None,
                expires_at: None,
            },
        });
    }
    ctx.emit(&report, || {
        table(
            &["VALUE", "ID", "USER", "DESCRIPTION", "STATUS"],
            report
                .iter()
                .map(|f| {
                    vec![
                        f.value.clone(),
                        f.id.map(|id| id.to_string()).unwrap_or_default(),
                        f.user.clone().unwrap_or_default(),
                        f.description.clone().unwrap_or_default(),
                        match (f.status, &f.old_value_expires_at) {
                            (Some("active"), Some(end)) => output::paint(
                                output::BAD,
                                &format!("active (its old value, until {end})"),
                            ),
                            (Some("active"), None) => output::paint(output::BAD, "active"),
                            (Some(other), _) => other.to_string(),
                            (None, _) => "not found".into(),
                        },
                    ]
                })
                .collect(),
        )
    })?;
    let missing = report.iter().filter(|f| !f.found).count();
    if missing > 0 {
        ctx.out.failure(
            &format!(
                "{missing} of {} value(s) are no token in this store (removed already, or issued by another store)",
                report.len()
            ),
            exit::NOT_FOUND,
        );
        return Ok(exit::NOT_FOUND);
    }
    Ok(exit::OK)
}

/// `revoke-leaked --reason TEXT`: removes the tokens whose values are on stdin in one
/// transaction (with the snapshot that no longer has them), audits each removal with the
/// operator, the reason and any previous value that stops working with it, and publishes
/// ([`crate::ops::Ops::revoke_leaked`]). No account password: this is the operator's
/// emergency action. Exit 4 when no value is a token here (nothing changed); otherwise the
/// publish result (0, 6, 7), with the values that were not found listed.
pub fn revoke(ctx: &mut Ctx, args: RevokeLeakedArgs) -> Result<u8> {
    let reason = args.reason.trim().to_string();
    if reason.is_empty() || reason.chars().any(char::is_control) || reason.chars().count() > 200 {
        return Err(Error::Invalid(
            "--reason: say in up to 200 characters, on one line, why the tokens are revoked (it is kept in the audit log)".into(),
        ));
    }
    let values = read_values()?;
    let out = ctx.out;
    let publishing = ctx.publishing(args.no_publish, &args.push)?;
    let done = ctx.ops().revoke_leaked(
        &values,
        &reason,
        Confirmation::operator(),
        publishing,
        |revocation| {
            if !out.json {
                let mut text = String::new();
                for r in &revocation.revoked {
                    text.push_str(&format!(
                        "Removed token {} of {} ({}), value {}.\n",
                        r.id, r.user, r.description, r.value
                    ));
                }
                output::stdout(&text)?;
            }
            if !revocation.unknown.is_empty() {
                out.warn(&format!(
                    "{} value(s) are no token in this store: {}",
                    revocation.unknown.len(),
                    revocation.unknown.join(", ")
                ));
            }
            Ok(())
        },
    )?;
    let publish = done
        .publish
        .unwrap_or_else(|| ChangePublish::unpushed(PublishState::Skipped, None));
    let code = ctx.report_publish(&publish);
    #[derive(Serialize)]
    struct Report {
        revoked: Vec<Revoked>,
        unknown: Vec<String>,
        publish: ChangePublish,
    }
    ctx.out.json_only(&Report {
        revoked: done.outcome.revoked,
        unknown: done.outcome.unknown,
        publish,
    })?;
    Ok(code)
}
