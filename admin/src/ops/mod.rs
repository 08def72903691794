//! The operations, one implementation for every front end: the command line
//! ([`crate::commands`]) and the platform API ([`crate::api`]) both call these, so the two can
//! never drift: the same limits, expiry rules, audit entries, password back-off, signing in
//! the change's transaction, and publishing.
//!
//! Every change is **one call** ([`Ops::create`], [`Ops::copy_token`],
//! [`Ops::regenerate_token`], [`Ops::edit_token`], [`Ops::remove_tokens`],
//! [`Ops::revoke_leaked`], and the account operations [`Ops::switch_account`],
//! [`Ops::change_password`], [`Ops::platform_account`], [`Ops::set_platform_identity`]) that
//! goes through the same steps:
//!
//! 1. It checks the request and reads what it needs, without a password: a typo costs no
//!    password and changes nothing.
//! 2. It confirms the account's password as the [`Confirmation`] says (asked for only now,
//!    with the back-off that grows with consecutive failures, whoever made them), or takes a
//!    confirmation made earlier, or none for the operator's own actions.
//! 3. It commits in one transaction that re-checks the password did not change meanwhile,
//!    audits the change (never a secret) and builds, signs and stores the snapshot of the new
//!    state (when a signing key is active).
//! 4. It calls the front end's `committed` callback (so a new token value can be shown even
//!    if publishing then fails), then
//! 5. publishes as the [`Publishing`] says and records the push: the result's
//!    [`ChangePublish`] says what happened; a failure to publish never turns a committed
//!    change into an error.
//!
//! The typed values the steps take ([`Description`], [`Scope`], [`Expiry`], [`Networks`],
//! [`Envs`], [`Rate`], [`Grace`], [`Confirmed`]) can only be made by the checks, so no front
//! end can skip one.
//!
//! A token may be limited to client networks ([`Networks`]) and to named environments
//! ([`Envs`]), and may carry a rate limit of its own ([`Rate`]; without one the
//! `default-rate-limit` setting applies: [`Ops::set_default_rate_limit`]): set by generate,
//! edit and copy, kept by copy and regenerate. A regeneration may keep the previous value
//! working for a grace window ([`Grace`], at most `max-grace`): the previous hash stays a
//! second record of the token in every document until the window ends (or the token's own
//! expiry, if sooner), and a later regeneration, a removal or a revocation ends it at once.
//!
//! Who acts is an [`Actor`]: an account and the channel it came through (the CLI, run by an
//! OS user, or the API, from a client address), which the audit log records.
//!
//! # Layout
//! - [`params`]: the checked parameters (description, scope, expiry, networks,
//!   environments, rate limit, grace, the selection of a removal, a new token, an edit).
//! - [`confirmation`]: who acts ([`Actor`], [`Channel`]) and the password confirmation
//!   ([`Confirmation`], [`Confirmed`], the back-off through [`crate::attempts`]).
//! - [`tokens`]: the token operations (show, list, create, copy, regenerate, edit, remove,
//!   revoke leaked values) and their audit details.
//! - [`accounts`]: the account operations (disable/enable, password change, platform
//!   accounts, platform identity).
//! - [`publishing`]: publishing after a change ([`Publishing`], [`ChangePublish`]) and the
//!   push and its audit entry shared with `pat-admin publish`.

pub mod accounts;
pub mod confirmation;
pub mod params;
pub mod publishing;
pub mod tokens;

pub use accounts::AccountChange;
pub use confirmation::{Actor, Channel, Confirmation, Confirmed, still_confirmed};
pub use params::{
    Description, Edit, Envs, Expiry, Grace, MAX_DESCRIPTION, Networks, NewToken, Rate, Scope,
    Selection,
};
pub use publishing::{ChangePublish, PublishEvent, PublishState, Publishing};
pub use tokens::{
    CopyOf, Edited, Issued, Leaked, Regeneration, Removed, Revocation, Revoked, describe, value_id,
};

use crate::catalogue::Catalogue;
use crate::error::Result;
use crate::store::Store;

/// How a platform account's password is checked (platform mode): by the platform.
pub trait PlatformPasswords {
    /// Is `password` the password of the platform account with `email`? An error when the
    /// platform gave no usable answer (nothing is counted then).
    fn check(&self, email: &str, password: &str) -> Result<bool>;
}

/// What a change did: its outcome, and what publishing it did (`None`: nothing was
/// committed that edges hold, so nothing was published: an edit to the same values, an
/// account already in that state).
#[derive(Debug)]
pub struct Done<T> {
    /// The change's own result.
    pub outcome: T,
    /// What publishing did.
    pub publish: Option<ChangePublish>,
}

/// The operations over one open store.
pub struct Ops<'a> {
    store: &'a mut Store,
    catalogue: &'a Catalogue,
    platform: Option<&'a dyn PlatformPasswords>,
}

impl<'a> Ops<'a> {
    /// The operations on `store` with `catalogue`.
    pub fn new(store: &'a mut Store, catalogue: &'a Catalogue) -> Self {
        Self {
            store,
            catalogue,
            platform: None,
        }
    }

    /// The same, confirming platform accounts' passwords with `platform`.
    pub fn with_platform(mut self, platform: Option<&'a dyn PlatformPasswords>) -> Self {
        self.platform = platform;
        self
    }

    /// The catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        self.catalogue
    }
}
