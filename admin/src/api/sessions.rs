//! Login sessions: `Signin` and `Signout` (standalone mode: pat-admin's own sessions,
//! random, stored hashed, with idle and absolute lifetimes), and the session every other
//! call comes with, checked here or, in platform mode, by the platform (`GetUserInfo`), its
//! account made and kept up to date by [`crate::ops::Ops::platform_account`].
//!
//! # Layout
//! - [`Api::signin`], [`Api::signout`].
//! - [`Api::authenticate`]: the caller of a call, in either mode.
//! - The `session` parameter's checks.

use serde_json::{Value, json};

use super::params::Params;
use super::{Api, ApiError, Caller, PlatformMode, code};
use crate::attempts::{self, Attempt, Purpose, Verdict};
use crate::expiry::api_instant;
use crate::ops::{Actor, Ops};
use crate::password;
use crate::platform::{self, SessionAnswer};
use crate::settings;
use crate::store::sessions;
use crate::store::{Store, audit, users};

impl Api {
    /// Session lifetimes: (idle, absolute), seconds.
    fn lifetimes(store: &Store) -> Result<(u64, u64), ApiError> {
        Ok((
            settings::SESSION_IDLE.get(store.conn())?,
            settings::SESSION_LIFETIME.get(store.conn())?,
        ))
    }

    pub(crate) fn signin(
        &self,
        store: &mut Store,
        params: &Params,
        client: &str,
    ) -> Result<Value, ApiError> {
        let login = params.required("login")?.trim().to_string();
        let password = params.required("password")?;
        if password.len() > password::MAX_LEN {
            return Err(ApiError::invalid(format!(
                "the password is longer than {} bytes",
                password::MAX_LEN
            )));
        }
        let account = users::get(store.conn(), &login)?;
        let actor = format!("api {client}");
        let attempt = Attempt {
            login: &login,
            account: account.as_ref().map(|u| u.name.as_str()),
            client: Some(client),
            actor: &actor,
            purpose: Purpose::SignIn,
        };
        let verdict = attempts::check(
            store,
            &attempt,
            |_, _| {},
            || {
                Ok(match &account {
                    Some(user) => password::verify(password, &user.password_hash),
                    None => {
                        // The same work as a real check, and always false.
                        let _ = password::verify(password, &self.dummy_hash);
                        false
                    }
                })
            },
        )?;
        let (Verdict::Right, Some(user)) = (verdict, account) else {
            return Err(ApiError::new(
                code::WRONG_PASSWORD,
                "wrong login or password",
            ));
        };
        let at = store.now();
        let value = sessions::new_value()?;
        let (idle, absolute) = Self::lifetimes(store)?;
        store.write(|tx| {
            sessions::prune(tx, at, idle, absolute)?;
            sessions::insert(tx, &sessions::hash(&value), &user.name, at, client)?;
            audit::record_by(
                tx,
                &actor,
                Some(&user.name),
                "session.signin",
                None,
                "signed in",
            )
        })?;
        Ok(json!({
            "result": code::OK,
            "session": value.as_str(),
            "login": user.name,
            "idleLifetime": idle,
            "expiresAt": api_instant(at + absolute),
        }))
    }

    pub(crate) fn signout(&self, store: &mut Store, params: &Params) -> Result<Value, ApiError> {
        let value = session_param(params)?;
        let hash = sessions::hash(value);
        let Some(found) = sessions::get(store.conn(), &hash)? else {
            return Err(ApiError::session(
                "the session is not valid (signed out or expired)",
            ));
        };
        store.write(|tx| {
            sessions::delete(tx, &hash)?;
            audit::record_by(
                tx,
                &format!("api {}", found.client),
                Some(&found.user),
                "session.signout",
                None,
                "signed out",
            )
        })?;
        Ok(json!({ "result": code::OK }))
    }

    /// The account a valid login session names, as an actor from `client`: pat-admin's own
    /// session (standalone mode), or the platform's (platform mode).
    pub(crate) fn authenticate<'p>(
        &self,
        store: &mut Store,
        params: &'p Params,
        client: &str,
    ) -> Result<Caller<'p>, ApiError> {
        if let Some(mode) = &self.platform {
            return self.authenticate_with_platform(mode, store, params, client);
        }
        let value = session_param(params)?;
        let hash = sessions::hash(value);
        let Some(found) = sessions::get(store.conn(), &hash)? else {
            return Err(ApiError::session(
                "the session is not valid (signed out or expired): sign in with Signin",
            ));
        };
        let (idle, absolute) = Self::lifetimes(store)?;
        let at = store.now();
        if at >= found.created_at.saturating_add(absolute)
            || at >= found.last_used_at.saturating_add(idle)
        {
            store.write(|tx| sessions::delete(tx, &hash))?;
            return Err(ApiError::session(
                "the session has expired: sign in again with Signin",
            ));
        }
        if at.saturating_sub(found.last_used_at) >= sessions::TOUCH_EVERY {
            store.write(|tx| sessions::touch(tx, &hash, at))?;
        }
        Ok(Caller {
            actor: Actor::api(found.user, client.to_string()),
            session: value,
        })
    }

    /// Platform mode: whose the platform says the session is (`GetUserInfo`, its answer kept
    /// a few seconds by the session's SHA-256), as the store's account for that uid (made on
    /// first use, its email kept up to date, disabled while the platform says it is not
    /// enabled: [`Ops::platform_account`]; a change of what the edges hold is pushed).
    fn authenticate_with_platform<'p>(
        &self,
        mode: &PlatformMode,
        store: &mut Store,
        params: &'p Params,
        client: &str,
    ) -> Result<Caller<'p>, ApiError> {
        let value = platform_session_param(params)?;
        let hash = sessions::hash(value);
        let info = match mode.sessions.get(&hash) {
            Some(info) => info,
            None => match mode.platform.user_info(value)? {
                SessionAnswer::Valid(info) => {
                    mode.sessions.put(hash, info.clone());
                    info
                }
                SessionAnswer::Invalid(code) => {
                    eprintln!(
                        "pat-admin serve: API: the platform's GetUserInfo refused a session from {client} (result {code})"
                    );
                    return Err(ApiError::session(format!(
                        "the session is not valid on the platform (its GetUserInfo answered result {code}): sign in with the platform's Signin"
                    )));
                }
            },
        };
        let actor = format!("api {client}");
        // What the edges hold may change (a suspension, an enabling, an identity): it is
        // pushed now, as a change is; the origin hands it out all the same.
        let change = Ops::new(store, self.catalogue)
            .platform_account(&actor, &info, self.publishing())?
            .outcome;
        if change.changed {
            // An email or a status changed: later answers must come from the platform.
            mode.sessions.forget_uid(info.uid);
        }
        if !info.is_enabled() {
            return Err(ApiError::new(
                code::ACCOUNT_DISABLED,
                format!(
                    "the platform says the account is {}: it may not manage tokens, and its tokens were taken off the edges",
                    info.status
                ),
            ));
        }
        Ok(Caller {
            actor: Actor::api(change.account.name, client.to_string()),
            session: value,
        })
    }
}

/// Platform mode's `session` parameter: the platform's login session (opaque: not empty, at
/// most 512 printable ASCII characters), never an access token.
fn platform_session_param(params: &Params) -> Result<&str, ApiError> {
    let value = params.optional("session")?.ok_or_else(|| {
        ApiError::session(
            "a login session is required: sign in with the platform's Signin and pass it as session",
        )
    })?;
    if pat_core::token::is_token_like(value) {
        return Err(ApiError::session(
            "an access token cannot manage tokens: sign in with the platform's Signin and use that session",
        ));
    }
    if value.is_empty()
        || value.len() > platform::MAX_SESSION
        || !value.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(ApiError::session(
            "the session is not valid: sign in with the platform's Signin",
        ));
    }
    Ok(value)
}

/// The `session` parameter, which must be a login session (never an access token).
fn session_param(params: &Params) -> Result<&str, ApiError> {
    let value = params.optional("session")?.ok_or_else(|| {
        ApiError::session("a login session is required: sign in with Signin and pass it as session")
    })?;
    if pat_core::token::is_token_like(value) {
        return Err(ApiError::session(
            "an access token cannot manage tokens: sign in with Signin and use that session",
        ));
    }
    if !sessions::is_well_formed(value) {
        return Err(ApiError::session(
            "the session is not valid: sign in with Signin",
        ));
    }
    Ok(value)
}
