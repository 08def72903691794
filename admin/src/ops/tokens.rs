//! The token operations: show, list, and every change of an account's tokens, one call each
//! ([`Ops::create`], [`Ops::copy_token`], [`Ops::regenerate_token`], [`Ops::edit_token`],
//! [`Ops::remove_tokens`]), and the operator's [`Ops::revoke_leaked`].
//!
//! # Layout
//! - The requests that need the store to check ([`CopyOf`], [`Regeneration`], [`Leaked`])
//!   and the results ([`Issued`], [`Edited`], [`Removed`], [`Revocation`]).
//! - The operations: check, confirm ([`super::confirmation`]), commit, `committed`,
//!   publish ([`super::publishing`]).
//! - Their commits, each one transaction with its audit entries and its signed document.
//! - The audit details: [`describe`] (a token's parameters), [`value_id`] (a value's
//!   public id).

use crate::store::db::Connection;
use pat_core::token::{Token, TokenHash};
use serde::Serialize;

use super::params::{
    Description, Edit, Envs, Expiry, Grace, Networks, NewToken, Rate, Scope, Selection,
};
use super::{Actor, Confirmation, Confirmed, Done, Ops, Publishing};
use crate::error::{Error, Result};
use crate::expiry::{last_day, rfc3339};
use crate::settings::Setting;
use crate::snapshot;
use crate::store::snapshots::Published;
use crate::store::tokens::Which;
use crate::store::{audit, tokens};

/// `copy`: a new token with another one's parameters.
#[derive(Debug, Clone)]
pub struct CopyOf<'a> {
    /// The token copied (the actor's).
    pub id: i64,
    /// Its description, unless given.
    pub description: Option<&'a str>,
    /// Its expiry, unless given (as the actor's channel writes dates); refused when the
    /// kept one has passed.
    pub expires_at: Option<&'a str>,
    /// Its environments, unless given.
    pub envs: Option<Envs>,
    /// Its own rate limit, unless given.
    pub rate: Option<Rate>,
}

/// `regenerate` / `RegenerateToken`: a new value, every other parameter kept.
#[derive(Debug, Clone, Copy)]
pub struct Regeneration<'a> {
    /// The token (the actor's).
    pub id: i64,
    /// A new expiry (as the actor's channel writes dates); else the kept one, refused when
    /// it has passed.
    pub expires_at: Option<&'a str>,
    /// How long the previous value keeps working (`--grace 1h`, `grace=3600`); absent or 0:
    /// it stops at once.
    pub grace: Option<&'a str>,
}

/// A leaked value, checked (token format) and hashed by the front end that read it; never
/// the value itself.
#[derive(Debug, Clone)]
pub struct Leaked {
    /// The value as it may be shown: `pate_…` and its last four characters.
    pub masked: String,
    /// Its SHA-256, as stored.
    pub hash: TokenHash,
}

/// A regeneration, checked: the token, the expiry the new value gets, and how long the
/// previous value keeps working (`None`: it stops at once).
#[derive(Debug, Clone)]
struct Regenerate {
    id: i64,
    expiry: Expiry,
    grace: Option<Grace>,
}

/// A removal, checked: the ids (sorted, each the caller's when checked).
#[derive(Debug, Clone)]
struct Removal {
    ids: Vec<i64>,
}

/// What [`Ops::prepare_edit`] found.
#[derive(Debug)]
enum EditPlan {
    /// The token already has these values (here it is).
    Unchanged(Box<tokens::Token>),
    /// Something changes.
    Change,
}

/// A token with a new value: the row and the value (shown once, never stored).
pub struct Issued {
    /// The row as committed.
    pub token: tokens::Token,
    /// The value: shown once, never stored.
    pub value: Token,
}

/// An edit's result.
#[derive(Debug)]
pub struct Edited {
    /// The row as it is now.
    pub token: tokens::Token,
    /// Whether anything changed (an edit to the same values changes nothing, needs no
    /// password unless the confirmation says so, and signs nothing).
    pub changed: bool,
}

/// A removal's result.
#[derive(Debug)]
pub struct Removed {
    /// The ids removed.
    pub ids: Vec<i64>,
}

/// A token removed by `revoke-leaked`, as it reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Revoked {
    /// The value, masked.
    pub value: String,
    /// The token's id.
    pub id: i64,
    /// Its account.
    pub user: String,
    /// Its description.
    pub description: String,
}

/// What `revoke-leaked` did.
#[derive(Debug)]
pub struct Revocation {
    /// The tokens removed.
    pub revoked: Vec<Revoked>,
    /// The values that are no token here, masked.
    pub unknown: Vec<String>,
}

/// The token a leaked value belongs to, if any (its current value, or its previous one
/// while that still works in a grace window), and which of the two it is.
pub fn holder(conn: &Connection, value: &Leaked) -> Result<Option<(tokens::Token, Which)>> {
    let at = conn.now();
    Ok(tokens::by_hash(conn, &value.hash, at)?
        .and_then(|t| t.has_value(&value.hash, at).map(|which| (t, which))))
}

impl Ops<'_> {
    /// One of the actor's tokens (another account's id is "not found").
    pub fn show(&self, actor: &Actor, id: i64) -> Result<tokens::Token> {
        tokens::require(self.store.conn(), &actor.account, id)
    }

    /// The actor's tokens, by id.
    pub fn list(&self, actor: &Actor) -> Result<Vec<tokens::Token>> {
        tokens::list(self.store.conn(), &actor.account)
    }

    /// Steps 4 and 5 of a committed change: the front end's `committed`, then publishing.
    fn after_commit<T>(
        &mut self,
        outcome: T,
        built: Option<Published>,
        publishing: Publishing<'_>,
        committed: impl FnOnce(&T) -> Result<()>,
    ) -> Result<Done<T>> {
        committed(&outcome)?;
        let publish = self.publish_change(built, publishing);
        Ok(Done {
            outcome,
            publish: Some(publish),
        })
    }

    /// `generate` / `CreateToken`: a new token with a new value, checked (`new`), confirmed,
    /// committed, `committed` told (to show the value), published.
    pub fn create(
        &mut self,
        actor: &Actor,
        new: NewToken,
        confirmation: Confirmation<'_>,
        publishing: Publishing<'_>,
        committed: impl FnOnce(&Issued) -> Result<()>,
    ) -> Result<Done<Issued>> {
        let confirmed = self.confirmed(actor, confirmation)?;
        let (issued, built) = self.commit_new(actor, &confirmed, new)?;
        self.after_commit(issued, built, publishing, committed)
    }

    /// `copy`: a new token with another one's scope and allowed networks, its description,
    /// expiry, environments and rate limit unless given.
    pub fn copy_token(
        &mut self,
        actor: &Actor,
        copy: CopyOf<'_>,
        confirmation: Confirmation<'_>,
        publishing: Publishing<'_>,
        committed: impl FnOnce(&Issued) -> Result<()>,
    ) -> Result<Done<Issued>> {
        // The source must exist before the description is judged (a missing token says so).
        let source = self.show(actor, copy.id)?;
        let description = copy.description.map(Description::parse).transpose()?;
        let given = copy
            .expires_at
            .map(|text| self.expiry_given(actor, Some(text)))
            .transpose()?;
        let expiry = self.fresh_expiry(actor, given, source.expires_at, source.id)?;
        let new = NewToken {
            description: description.unwrap_or(Description(source.description.clone())),
            scope: Scope {
                set: source.scope_set.clone(),
                methods: source.methods.clone(),
            },
            expiry,
            networks: Networks(source.networks.clone()),
            envs: copy.envs.unwrap_or(Envs(source.envs.clone())),
            rate: copy.rate.unwrap_or(Rate(source.rate_limit)),
            copy_of: Some(source.id),
        };
        self.create(actor, new, confirmation, publishing, committed)
    }

    /// `regenerate` / `RegenerateToken`: a new value, every other parameter kept (allowed
    /// networks, environments and rate limit included). The previous value stops working at once, or with a grace window
    /// at its end (or the token's expiry, if sooner); a previous value still in an earlier
    /// window stops now. The audit entry names both values by [`value_id`].
    pub fn regenerate_token(
        &mut self,
        actor: &Actor,
        regeneration: Regeneration<'_>,
        confirmation: Confirmation<'_>,
        publishing: Publishing<'_>,
        committed: impl FnOnce(&Issued) -> Result<()>,
    ) -> Result<Done<Issued>> {
        // The token must exist before its new date is judged (a missing token says so).
        let existing = self.show(actor, regeneration.id)?;
        let given = regeneration
            .expires_at
            .map(|text| self.expiry_given(actor, Some(text)))
            .transpose()?;
        let grace = match regeneration.grace {
            Some(text) => self.grace_given(actor, text)?,
            None => None,
        };
        let expiry = self.fresh_expiry(actor, given, existing.expires_at, existing.id)?;
        let plan = Regenerate {
            id: regeneration.id,
            expiry,
            grace,
        };
        let confirmed = self.confirmed(actor, confirmation)?;
        let (issued, built) = self.commit_regeneration(actor, &confirmed, plan)?;
        self.after_commit(issued, built, publishing, committed)
    }

    /// `edit` / `EditToken`: description, scope, expiry, allowed networks, environments,
    /// rate limit; the value stays
    /// (a previous value in its grace window too). An edit to the values the token already
    /// has changes nothing: no password (unless the confirmation says
    /// [`Confirmation::even_if_unchanged`]), no audit entry, no document, nothing published
    /// (`publish` is `None`).
    pub fn edit_token(
        &mut self,
        actor: &Actor,
        id: i64,
        edit: &Edit,
        confirmation: Confirmation<'_>,
        publishing: Publishing<'_>,
        committed: impl FnOnce(&Edited) -> Result<()>,
    ) -> Result<Done<Edited>> {
        let plan = self.prepare_edit(actor, id, edit)?;
        if let EditPlan::Unchanged(current) = plan {
            if confirmation.checks_unchanged() {
                self.confirmed(actor, confirmation)?;
            }
            return Ok(Done {
                outcome: Edited {
                    token: *current,
                    changed: false,
                },
                publish: None,
            });
        }
        let confirmed = self.confirmed(actor, confirmation)?;
        let (edited, built) = self.commit_edit(actor, &confirmed, id, edit)?;
        if !edited.changed {
            return Ok(Done {
                outcome: edited,
                publish: None,
            });
        }
        self.after_commit(edited, built, publishing, committed)
    }

    /// `remove` / `DeleteTokens`: every id must be the actor's and still exist, or nothing
    /// is removed. A token's previous value in a grace window goes with it (the audit entry
    /// names it). Removing [`Selection::All`] of an account without tokens commits and
    /// publishes nothing (`publish` is `None`).
    pub fn remove_tokens(
        &mut self,
        actor: &Actor,
        selection: Selection,
        confirmation: Confirmation<'_>,
        publishing: Publishing<'_>,
        committed: impl FnOnce(&Removed) -> Result<()>,
    ) -> Result<Done<Removed>> {
        let removal = self.prepare_remove(actor, selection)?;
        let confirmed = self.confirmed(actor, confirmation)?;
        let (removed, built) = self.commit_removal(actor, &confirmed, removal)?;
        if removed.ids.is_empty() {
            return Ok(Done {
                outcome: removed,
                publish: None,
            });
        }
        self.after_commit(removed, built, publishing, committed)
    }

    /// `revoke-leaked`: removes the tokens the leaked `values` belong to (a previous value
    /// still in its grace window is its token's) in one transaction with the document that
    /// no longer has them, audits each with the operator, the masked value, the `reason`
    /// and, like a removal, the previous value that stops working with it; then publishes.
    /// The operator's emergency action: `confirmation` must be [`Confirmation::operator`].
    /// Refused (not found, nothing changed) when no value is a token here.
    pub fn revoke_leaked(
        &mut self,
        values: &[Leaked],
        reason: &str,
        confirmation: Confirmation<'_>,
        publishing: Publishing<'_>,
        committed: impl FnOnce(&Revocation) -> Result<()>,
    ) -> Result<Done<Revocation>> {
        if !confirmation.is_operator() {
            return Err(Error::Internal(
                "revoke-leaked is the operator's: it takes no account's password".into(),
            ));
        }
        let dir = self.store.location().clone();
        let (revocation, built) = self.store.write(|tx| {
            let at = tx.now();
            let mut revoked: Vec<Revoked> = Vec::new();
            let mut unknown = Vec::new();
            for value in values {
                let Some((t, _)) = holder(tx, value)? else {
                    unknown.push(value.masked.clone());
                    continue;
                };
                if revoked.iter().any(|r| r.id == t.id) {
                    continue;
                }
                let old = t
                    .old_value
                    .zip(t.old_value_until(at))
                    .map(|(o, end)| (o.hash, end));
                tokens::delete(tx, &t.user, t.id)?;
                audit::record(
                    tx,
                    Some(&t.user),
                    "token.revoke-leaked",
                    Some(t.id),
                    &format!(
                        "leaked value {}; reason: {reason}{}",
                        value.masked,
                        old_value_ends(old)
                    ),
                )?;
                revoked.push(Revoked {
                    value: value.masked.clone(),
                    id: t.id,
                    user: t.user,
                    description: t.description,
                });
            }
            let built = if revoked.is_empty() {
                None
            } else {
                snapshot::after_change(tx, &dir)?
            };
            Ok((Revocation { revoked, unknown }, built))
        })?;
        if revocation.revoked.is_empty() {
            return Err(Error::NotFound(format!(
                "none of the {} value(s) is a token in this store (removed already, or issued by another store); nothing was changed",
                values.len()
            )));
        }
        self.after_commit(revocation, built, publishing, committed)
    }

    /// `config set default-rate-limit`: the rate limit of every token without one of its
    /// own becomes `limit` (`None`: no limit). Audited as `config.set` with `detail`. When
    /// the effective limit of any token changes, the token state serial moves and a full
    /// snapshot of the new state is signed in the same transaction (every such token's
    /// record changes, so a full snapshot is no bigger than a delta would be), and published.
    pub fn set_default_rate_limit(
        &mut self,
        limit: Option<pat_core::rate::RateLimit>,
        detail: &str,
        publishing: Publishing<'_>,
    ) -> Result<Done<()>> {
        let dir = self.store.location().clone();
        let built = self.store.write(|tx| {
            let setting = &crate::settings::DEFAULT_RATE_LIMIT;
            let before = setting.get(tx)?;
            match limit {
                Some(l) => crate::store::settings::set(tx, setting.key(), &l.to_string())?,
                None => crate::store::settings::unset(tx, setting.key())?,
            }
            audit::record(tx, None, "config.set", None, detail)?;
            if before == limit || !tokens::any_without_rate_limit(tx)? {
                return Ok(None);
            }
            crate::store::snapshots::bump_state(tx)?;
            snapshot::full_after_change(
                tx,
                &dir,
                "config set default-rate-limit: the tokens without a rate limit of their own change",
            )
        })?;
        let publish = built
            .is_some()
            .then(|| self.publish_change(built, publishing));
        Ok(Done {
            outcome: (),
            publish,
        })
    }

    /// What an edit would make of the token, without changing anything: `None` when the
    /// token already has these values (no password is needed, nothing is audited or signed).
    fn prepare_edit(&self, actor: &Actor, id: i64, edit: &Edit) -> Result<EditPlan> {
        let current = tokens::require(self.store.conn(), &actor.account, id)?;
        let after = edit.apply(current.clone());
        Ok(if after == current {
            EditPlan::Unchanged(Box::new(current))
        } else {
            EditPlan::Change
        })
    }

    /// Commits a new token with a new value (`generate`, `CreateToken`, `copy`).
    fn commit_new(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        new: NewToken,
    ) -> Result<(Issued, Option<Published>)> {
        let value = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        let max = self.max_tokens()?;
        let mut row = tokens::Token {
            id: 0,
            user: actor.account.clone(),
            description: new.description.0,
            hash: value.hash(),
            scope_set: new.scope.set,
            methods: new.scope.methods,
            created_at: self.store.now(),
            expires_at: new.expiry.0,
            regenerated_at: None,
            last_used_at: None,
            last_used_ip: None,
            networks: new.networks.0,
            old_value: None,
            suspended: false,
            envs: new.envs.0,
            rate_limit: new.rate.0,
        };
        let dir = self.store.location().clone();
        let (id, built) = self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
            let count = tokens::count(tx, &actor.account)?;
            if count >= max {
                return Err(Error::Refused(format!(
                    "{} already has {count} tokens, the maximum; remove some, or raise the limit with: pat-admin config set max-tokens-per-account N",
                    actor.account
                )));
            }
            let id = tokens::insert(tx, &row)?;
            match new.copy_of {
                Some(source) => actor.record(
                    tx,
                    "token.copy",
                    Some(id),
                    &format!("copy of {source}; {}", describe(&row)),
                )?,
                None => actor.record(tx, "token.generate", Some(id), &describe(&row))?,
            }
            Ok((id, snapshot::after_change(tx, &dir)?))
        })?;
        row.id = id;
        Ok((Issued { token: row, value }, built))
    }

    /// Commits an edit.
    fn commit_edit(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        id: i64,
        edit: &Edit,
    ) -> Result<(Edited, Option<Published>)> {
        let dir = self.store.location().clone();
        let (token, changed, built) = self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
            let before = tokens::require(tx, &actor.account, id)?;
            let row = edit.apply(before.clone());
            if row == before {
                return Ok((row, false, None));
            }
            tokens::update(tx, &row)?;
            actor.record(tx, "token.edit", Some(row.id), &describe(&row))?;
            Ok((row, true, snapshot::after_change(tx, &dir)?))
        })?;
        Ok((Edited { token, changed }, built))
    }

    /// Commits a regeneration: a new value, every other parameter kept (allowed
    /// networks included). The previous value stops working at once, or with a grace window
    /// at its end (or the token's expiry, if sooner); a previous value still in an earlier
    /// window stops now. The audit entry names both values by [`value_id`].
    fn commit_regeneration(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        plan: Regenerate,
    ) -> Result<(Issued, Option<Published>)> {
        let value = Token::generate().map_err(|e| Error::Random(e.to_string()))?;
        let dir = self.store.location().clone();
        let (token, built) = self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
            let mut row = tokens::require(tx, &actor.account, plan.id)?;
            let at = tx.now();
            let ended = row
                .old_value
                .zip(row.old_value_until(at))
                .map(|(old, end)| (old.hash, end));
            let previous = row.hash;
            let old_until = plan
                .grace
                .map(|g| at.saturating_add(g.0))
                .map(|end| row.expires_at.map_or(end, |e| e.min(end)))
                .filter(|&end| end > at);
            row.old_value = old_until.map(|until| tokens::OldValue {
                hash: previous,
                until,
            });
            row.hash = value.hash();
            row.expires_at = plan.expiry.0;
            row.regenerated_at = Some(at);
            tokens::update(tx, &row)?;
            let mut detail = format!(
                "value {} replaced by {}; {}",
                value_id(&previous),
                value_id(&row.hash),
                match row.old_value_until(at) {
                    Some(end) => format!("the old value works until {}", rfc3339(end)),
                    None => "the old value stops working now".to_string(),
                }
            );
            if let Some((hash, end)) = ended {
                detail.push_str(&format!(
                    "; the earlier old value {} (until {}) stops working now",
                    value_id(&hash),
                    rfc3339(end)
                ));
            }
            detail.push_str(&format!("; {}", describe(&row)));
            actor.record(tx, "token.regenerate", Some(row.id), &detail)?;
            Ok((row, snapshot::after_change(tx, &dir)?))
        })?;
        Ok((Issued { token, value }, built))
    }

    /// Checks a removal: every id is the actor's (or, for [`Selection::All`], whatever the
    /// actor has now).
    fn prepare_remove(&self, actor: &Actor, selection: Selection) -> Result<Removal> {
        let mut ids = match selection {
            Selection::Ids(ids) => {
                if ids.is_empty() {
                    return Err(Error::Invalid("no token ids given".into()));
                }
                ids
            }
            Selection::All => self.list(actor)?.into_iter().map(|t| t.id).collect(),
        };
        ids.sort_unstable();
        ids.dedup();
        for &id in &ids {
            tokens::require(self.store.conn(), &actor.account, id)?;
        }
        Ok(Removal { ids })
    }

    /// Commits a removal: every id must still exist, or nothing is removed.
    fn commit_removal(
        &mut self,
        actor: &Actor,
        confirmed: &Confirmed,
        removal: Removal,
    ) -> Result<(Removed, Option<Published>)> {
        let dir = self.store.location().clone();
        let built = self.store.write(|tx| {
            Self::still_confirmed(tx, actor, confirmed)?;
            if removal.ids.is_empty() {
                return Ok(None);
            }
            let at = tx.now();
            for &id in &removal.ids {
                let old = tokens::get(tx, &actor.account, id)?.and_then(|t| {
                    t.old_value
                        .zip(t.old_value_until(at))
                        .map(|(o, end)| (o.hash, end))
                });
                if !tokens::delete(tx, &actor.account, id)? {
                    return Err(Error::NoSuchToken {
                        user: actor.account.clone(),
                        id,
                    });
                }
                let detail = format!("removed{}", old_value_ends(old));
                actor.record(tx, "token.remove", Some(id), &detail)?;
            }
            snapshot::after_change(tx, &dir)
        })?;
        Ok((Removed { ids: removal.ids }, built))
    }
}

/// The end of an audit detail when a token goes while its previous value still works in a
/// grace window (a removal, a revocation): `; its old value sha256:… (until …) stops
/// working with it`; empty otherwise.
fn old_value_ends(old: Option<(TokenHash, u64)>) -> String {
    match old {
        Some((hash, end)) => format!(
            "; its old value {} (until {}) stops working with it",
            value_id(&hash),
            rfc3339(end)
        ),
        None => String::new(),
    }
}

/// Audit details of a token's parameters (never its value).
pub fn describe(t: &tokens::Token) -> String {
    format!(
        "description {:?}; scope {}; expires {}; allowed IPs {}; environments {}; rate limit {}",
        t.description,
        t.scope_set.clone().unwrap_or_else(|| t.methods.join(",")),
        t.expires_at.map_or("never".to_string(), last_day),
        if t.networks.is_empty() {
            "any".to_string()
        } else {
            tokens::networks_text(&t.networks).replace(' ', ",")
        },
        t.envs.as_ref().map_or("any".to_string(), |e| e.encoded()),
        t.rate_limit
            .map_or("default".to_string(), |r| r.to_string())
    )
}

/// A value's public id in the audit log: `sha256:` and the first 12 hex digits of its
/// SHA-256 (the store keeps only the hash; this says which value without being one).
pub fn value_id(hash: &TokenHash) -> String {
    let hex: String = hash.0[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}
