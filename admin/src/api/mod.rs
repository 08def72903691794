//! The platform's token API, `users.Authentication` (Jelastic API 8.0.2), served by
//! `pat-admin serve --api-listen`: account holders sign in and manage their own tokens with
//! the clients they already use (`py-jelastic`, `jelastic-client`, the dashboard).
//!
//! Every method is `/1.0/users/authentication/rest/<method>` (any case), by GET or POST,
//! its parameters in the query string or a form body ([`params`]). Answers are HTTP 200
//! JSON in the platform's shape: `{"result": 0, …}`, or `{"result": <code>, "error": "…",
//! "source": "pat-admin"}` with the codes in [`code`].
//!
//! The methods call [`crate::ops`], the same operations as the CLI: same limits, expiry
//! rules, audit log (actor `api <client address>`), password back-off and publishing. A
//! change answers once it is committed (and signed), after its push to the configured edges
//! (bounded by `push-timeout`/`push-deadline`), with a `publish` object saying whether every
//! edge accepted it (clients ignore fields they do not know).
//!
//! Beyond the platform's parameters, each optional (its own clients do not send them):
//! `allowedIps` on `CreateToken`/`EditToken` (the client networks a token is accepted
//! from; empty on `EditToken`: any address) and `grace` on `RegenerateToken` (seconds the
//! old value keeps working); tokens in answers carry `allowedIps` and `oldKeyExpiresAt`.
//!
//! This is the standalone mode: pat-admin's own accounts are the authority, so `Signin`
//! makes login sessions ([`crate::store::sessions`]): random, stored hashed, with idle and
//! absolute lifetimes (`config set session-idle`, `session-lifetime`), ended by `Signout`
//! and by a password change. Every password check, `Signin`'s and a change's, goes through
//! [`crate::attempts`]: one at a time per account (or unknown login) and per client
//! address, the others refused at once ([`code::TOO_MANY_ATTEMPTS`]), after the back-off of
//! the account and of the client address, whichever is longer; an unknown login is checked
//! against a dummy argon2id hash and counted like an account, so it costs the same time as
//! a wrong password.

pub mod page;
pub mod params;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::attempts::{self, Attempt, Purpose, Verdict};
use crate::catalogue::{Catalogue, docs_url};
use crate::error::Error;
use crate::expiry::{ExpiryError, api_instant};
use crate::ops::{
    self, Actor, ChangePublish, Description, Edit, EditPlan, Networks, NewToken, Ops, PublishPlan,
    Scope, Selection,
};
use crate::password;
use crate::platform::{self, ApiPasswords, Platform, SessionAnswer, SessionCache};
use crate::publish;
use crate::store::db::Location;
use crate::store::sessions;
use crate::store::snapshots::Published;
use crate::store::{Open, Store, audit, now, settings, tokens, users};
use params::{Ids, Params};

/// Where the token methods live (lowercase; matched in any case).
pub const PREFIX: &str = "/1.0/users/authentication/rest/";
/// The largest request body read, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The `source` of every error this service answers.
pub const SOURCE: &str = "pat-admin";

/// The `result` codes.
pub mod code {
    /// Success.
    pub const OK: i64 = 0;
    /// Not found: no such token among the caller's (another account's id is not found too).
    /// `py-jelastic` raises `JelasticResourceNotFound` for it.
    pub const NOT_FOUND: i64 = 5;
    /// No valid login session: missing, malformed, unknown, expired or signed out; or an
    /// access token where a login session belongs.
    pub const SESSION: i64 = 701;
    /// Wrong login or password (`Signin`), wrong password (a change); nothing was changed.
    pub const WRONG_PASSWORD: i64 = 710;
    /// Invalid input: a parameter missing or malformed, an unknown or forbidden API method
    /// in `apiList`, a bad or past date, a description too long, a body too large, not
    /// UTF-8, or of a type the service does not read; nothing was changed.
    pub const INVALID: i64 = 711;
    /// Refused by a rule: the token limit, an expiry beyond the maximum lifetime or none
    /// where one is required; nothing was changed.
    pub const REFUSED: i64 = 712;
    /// No such method in this service (with suggestions).
    pub const UNKNOWN_METHOD: i64 = 713;
    /// Too many attempts: another password check for the account (or from the client
    /// address) is waiting or running, so this one was not checked; nothing was changed.
    /// The answer's `retryAfter` says in how many seconds that check should be over.
    pub const TOO_MANY_ATTEMPTS: i64 = 714;
    /// The account is disabled (by the operator, or the platform says it is suspended): it
    /// may not change tokens, and its tokens are on no edge.
    pub const ACCOUNT_DISABLED: i64 = 715;
    /// Platform mode: the platform did not answer (down, too slow, or not its JSON); nothing
    /// was changed.
    pub const PLATFORM_UNAVAILABLE: i64 = 716;
    /// The service failed (its store); the change, if any, was not made.
    pub const INTERNAL: i64 = 99;
}

/// The methods served, as the platform spells them.
pub const METHODS: &[&str] = &[
    "Signin",
    "Signout",
    "CreateToken",
    "EditToken",
    "RegenerateToken",
    "DeleteTokens",
    "GetTokens",
    "GetTokenTemplates",
    "GetTokenApiList",
];

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The `result` code.
    pub code: i64,
    /// The `error` text (never a secret).
    pub message: String,
    /// `retryAfter`, seconds: when trying again may be answered ([`code::TOO_MANY_ATTEMPTS`]).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Invalid input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(code::INVALID, message)
    }

    fn session(message: impl Into<String>) -> Self {
        Self::new(code::SESSION, message)
    }

    /// The JSON answer.
    pub fn to_json(&self) -> Value {
        let mut answer = json!({ "result": self.code, "error": self.message, "source": SOURCE });
        if let Some(secs) = self.retry_after {
            answer["retryAfter"] = Value::from(secs);
        }
        answer
    }
}

impl From<platform::PlatformError> for ApiError {
    fn from(e: platform::PlatformError) -> Self {
        Self::from(Error::Platform(e))
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::WrongPassword(_) => {
                Self::new(code::WRONG_PASSWORD, "wrong password; nothing was changed")
            }
            Error::TooManyAttempts { retry_after } => Self {
                code: code::TOO_MANY_ATTEMPTS,
                message: format!(
                    "too many attempts: another password check for this account or from this address is under way; nothing was checked or changed, retry in {retry_after} s"
                ),
                retry_after: Some(retry_after),
            },
            Error::AccountDisabled { .. } => Self::new(code::ACCOUNT_DISABLED, e.to_string()),
            Error::Platform(e) => {
                eprintln!("pat-admin serve: API: {e}");
                Self::new(
                    code::PLATFORM_UNAVAILABLE,
                    format!("{e}; nothing was changed, try again later"),
                )
            }
            Error::NoSuchToken { id, .. } => {
                Self::new(code::NOT_FOUND, format!("token {id} not found"))
            }
            Error::NoSuchUser(_) => Self::session("the session's account no longer exists"),
            Error::Expiry(ExpiryError::TooFar { .. } | ExpiryError::Required(_))
            | Error::Refused(_) => Self::new(code::REFUSED, e.to_string()),
            Error::Invalid(_) | Error::Catalogue(_) | Error::Expiry(_) | Error::Password(_) => {
                Self::invalid(e.to_string())
            }
            other => {
                // Store and system failures: logged for the operator (never a secret: no
                // parameter value reaches these messages), a plain answer for the client.
                eprintln!("pat-admin serve: API: {other}");
                Self::new(
                    code::INTERNAL,
                    "the service could not complete the request; nothing was changed",
                )
            }
        }
    }
}

/// How the service is set up.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// A request header that carries the client's address (set by Envoy; the service then
    /// trusts it, so only use it when nothing but Envoy can reach the API's address).
    pub client_address_header: Option<HeaderName>,
    /// Platform mode's settings (`None`: standalone mode).
    pub platform: Option<platform::Settings>,
}

/// Platform mode: the calls to the platform and its answers about sessions.
struct PlatformMode {
    platform: Platform,
    sessions: SessionCache,
}

/// The service: the store directory, a few open connections, the catalogue.
pub struct Api {
    dir: Location,
    catalogue: &'static Catalogue,
    pool: Mutex<Vec<Store>>,
    dummy_hash: String,
    config: Config,
    runtime: tokio::runtime::Handle,
    platform: Option<PlatformMode>,
}

/// Who calls: the account acting, and the login session it came with (platform mode's
/// `CheckPassword` needs it; never stored).
struct Caller<'p> {
    actor: Actor,
    session: &'p str,
}

/// The methods served, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenMethod {
    Signin,
    Signout,
    CreateToken,
    EditToken,
    RegenerateToken,
    DeleteTokens,
    GetTokens,
    GetTokenTemplates,
    GetTokenApiList,
}

impl TokenMethod {
    const ALL: [Self; 9] = [
        Self::Signin,
        Self::Signout,
        Self::CreateToken,
        Self::EditToken,
        Self::RegenerateToken,
        Self::DeleteTokens,
        Self::GetTokens,
        Self::GetTokenTemplates,
        Self::GetTokenApiList,
    ];

    /// The method named `name` (any case).
    fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(name))
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Signin => "Signin",
            Self::Signout => "Signout",
            Self::CreateToken => "CreateToken",
            Self::EditToken => "EditToken",
            Self::RegenerateToken => "RegenerateToken",
            Self::DeleteTokens => "DeleteTokens",
            Self::GetTokens => "GetTokens",
            Self::GetTokenTemplates => "GetTokenTemplates",
            Self::GetTokenApiList => "GetTokenApiList",
        }
    }
}

/// A store connection borrowed from the pool; returned when dropped.
struct Pooled<'a> {
    api: &'a Api,
    store: Option<Store>,
}

impl Pooled<'_> {
    fn get(&mut self) -> &mut Store {
        self.store.as_mut().expect("held until dropped")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        if let (Some(store), Ok(mut pool)) = (self.store.take(), self.api.pool.lock())
            && pool.len() < 8
        {
            pool.push(store);
        }
    }
}

impl Api {
    /// The service on the store in `dir` (which must exist: `serve` opened it first). Call
    /// from within the Tokio runtime it will run on.
    pub fn new(dir: Location, config: Config) -> Result<Self, Error> {
        let catalogue = Catalogue::builtin().map_err(Error::Internal)?;
        // Unknown logins are checked against this, so they cost what a real check costs.
        let dummy = sessions::new_value()?;
        let dummy_hash = password::hash(&dummy)?;
        let runtime = tokio::runtime::Handle::current();
        let platform = match &config.platform {
            Some(settings) => Some(PlatformMode {
                sessions: SessionCache::new(settings.session_cache),
                platform: Platform::new(settings.clone(), runtime.clone())?,
            }),
            None => None,
        };
        Ok(Self {
            dir,
            catalogue,
            pool: Mutex::new(Vec::new()),
            dummy_hash,
            config,
            runtime,
            platform,
        })
    }

    /// Which mode it runs in, for the log: standalone, or platform mode with the platform's
    /// address.
    pub fn mode(&self) -> String {
        match &self.platform {
            None => "standalone mode (pat-admin's accounts sign in here)".into(),
            Some(mode) => {
                let s = mode.platform.settings();
                format!(
                    "platform mode: sessions and passwords checked by the platform at {} (sessions cached {} s, calls time out after {} s, passwords confirmed by {}, edges see the {})",
                    s.url,
                    s.session_cache.as_secs(),
                    s.timeout.as_secs(),
                    s.password_check.as_str(),
                    s.identity.as_str()
                )
            }
        }
    }

    /// How platform accounts' passwords are confirmed for this caller (platform mode).
    fn passwords<'s>(&'s self, caller: &Caller<'s>) -> Option<ApiPasswords<'s>> {
        self.platform.as_ref().map(|mode| ApiPasswords {
            platform: &mode.platform,
            session: caller.session,
        })
    }

    fn store(&self) -> Result<Pooled<'_>, ApiError> {
        let idle = self.pool.lock().ok().and_then(|mut p| p.pop());
        let store = match idle {
            Some(store) => store,
            None => Store::open_as(self.dir.clone(), Open::Existing)?,
        };
        Ok(Pooled {
            api: self,
            store: Some(store),
        })
    }

    /// The router: the token methods under [`PREFIX`], the Access Tokens page under
    /// [`page::PATH`].
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .merge(page::routes())
            .fallback(handle)
            .with_state(self)
    }

    /// Answers one call of `method` (any case) with `params` from `client`: the platform's
    /// JSON. Blocking (store, password hashing, the back-off, publishing): run it off the
    /// async threads.
    pub fn call(&self, method: &str, params: &Params, client: &str) -> Value {
        match self.dispatch(method, params, client) {
            Ok(answer) => answer,
            Err(e) => e.to_json(),
        }
    }

    fn dispatch(&self, method: &str, params: &Params, client: &str) -> Result<Value, ApiError> {
        let Some(method) = TokenMethod::parse(method) else {
            return Err(unknown_method(method));
        };
        let mut pooled = self.store()?;
        let store = pooled.get();
        if self.platform.is_some() && matches!(method, TokenMethod::Signin | TokenMethod::Signout) {
            return Err(ApiError::new(
                code::UNKNOWN_METHOD,
                format!(
                    "users.Authentication.{} is the platform's own here (platform mode): Envoy routes it to the platform; sign in there and use that session",
                    method.as_str()
                ),
            ));
        }
        match method {
            TokenMethod::Signin => return self.signin(store, params, client),
            TokenMethod::Signout => return self.signout(store, params),
            _ => {}
        }
        let caller = self.authenticate(store, params, client)?;
        match method {
            TokenMethod::Signin | TokenMethod::Signout => unreachable_method(method),
            TokenMethod::GetTokenApiList => self.api_list(params),
            TokenMethod::GetTokenTemplates => Ok(self.templates()),
            TokenMethod::CreateToken => self.create(store, &caller, params),
            TokenMethod::EditToken => self.edit(store, &caller, params),
            TokenMethod::RegenerateToken => self.regenerate(store, &caller, params),
            TokenMethod::DeleteTokens => self.delete(store, &caller, params),
            TokenMethod::GetTokens => self.get_tokens(store, &caller, params),
        }
    }

    /// Session lifetimes: (idle, absolute), seconds.
    fn lifetimes(store: &Store) -> Result<(u64, u64), ApiError> {
        Ok((
            settings::session_idle(store.conn())?,
            settings::session_lifetime(store.conn())?,
        ))
    }

    fn signin(&self, store: &mut Store, params: &Params, client: &str) -> Result<Value, ApiError> {
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
        let at = now();
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

    fn signout(&self, store: &mut Store, params: &Params) -> Result<Value, ApiError> {
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
    fn authenticate<'p>(
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
        let at = now();
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
        let change = Ops::new(store, self.catalogue).platform_account(&actor, &info)?;
        if change.changed {
            // An email or a status changed: later answers must come from the platform.
            mode.sessions.forget_uid(info.uid);
        }
        if change.built.is_some() {
            // What the edges hold changed (a suspension, an enabling, an identity): push it
            // now, as a change does; the origin hands it out all the same.
            self.publish(store, change.built);
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

    /// `tokenTemplate` or `apiList`, checked; `None` when neither was given.
    fn scope(&self, params: &Params) -> Result<Option<Scope>, ApiError> {
        let template = params
            .optional("tokenTemplate")?
            .filter(|t| !t.trim().eq_ignore_ascii_case("custom"));
        let methods = params::list_items(params.all("apiList"));
        match (template, methods.is_empty()) {
            (Some(_), false) => Err(ApiError::invalid("give tokenTemplate or apiList, not both")),
            (Some(name), true) => Ok(Some(Scope::set(self.catalogue, name)?)),
            (None, false) => Ok(Some(Scope::methods(self.catalogue, &methods)?)),
            (None, true) if params.has("apiList") => Err(ApiError::invalid(
                "apiList is empty: name at least one API method (see GetTokenApiList)",
            )),
            (None, true) => Ok(None),
        }
    }

    fn description(params: &Params, name: &str) -> Result<Option<Description>, ApiError> {
        Ok(params.one(name)?.map(Description::parse).transpose()?)
    }

    /// `allowedIps`: CIDRs separated by commas, semicolons, spaces or newlines (or a list,
    /// as for `apiList`); `None` when the parameter is absent, "any address" when empty.
    fn networks(params: &Params) -> Result<Option<Networks>, ApiError> {
        if !params.has("allowedIps") {
            return Ok(None);
        }
        let items = params::list_items(params.all("allowedIps"));
        Ok(Some(Networks::parse(&items, "allowedIps")?))
    }

    fn create(
        &self,
        store: &mut Store,
        caller: &Caller<'_>,
        params: &Params,
    ) -> Result<Value, ApiError> {
        let actor = &caller.actor;
        let description = Self::description(params, "description")?
            .ok_or_else(|| ApiError::invalid("the parameter `description` is required"))?;
        let scope = self.scope(params)?.ok_or_else(|| {
            ApiError::invalid(
                "choose the token's scope: tokenTemplate (see GetTokenTemplates) or apiList (see GetTokenApiList)",
            )
        })?;
        let networks = Self::networks(params)?.unwrap_or_default();
        let passwords = self.passwords(caller);
        let mut ops =
            Ops::new(store, self.catalogue).with_platform(passwords.as_ref().map(|p| p as _));
        let expiry = ops.expiry_api(params.optional("expiresAt")?)?;
        let password = params.required("password")?;
        let confirmed = ops.confirm(actor, password, |_, _| {})?;
        let issued = ops.generate(
            actor,
            &confirmed,
            NewToken::new(description, scope, expiry).with_networks(networks),
        )?;
        let token = self.token_json(&issued.token, Some(issued.value.expose()));
        let publish = self.publish(store, issued.built);
        Ok(json!({ "result": code::OK, "token": token, "publish": publish }))
    }

    fn edit(
        &self,
        store: &mut Store,
        caller: &Caller<'_>,
        params: &Params,
    ) -> Result<Value, ApiError> {
        let actor = &caller.actor;
        let id = one_id(params, &["id"])?;
        let description = Self::description(params, "description")?;
        let scope = self.scope(params)?;
        let networks = Self::networks(params)?;
        let passwords = self.passwords(caller);
        let mut ops =
            Ops::new(store, self.catalogue).with_platform(passwords.as_ref().map(|p| p as _));
        let expiry = if params.has("expiresAt") {
            // Present but empty: no expiry.
            Some(ops.expiry_api(params.optional("expiresAt")?)?)
        } else {
            None
        };
        let edit = Edit {
            description,
            scope,
            expiry,
            networks,
        };
        if edit.is_empty() {
            return Err(ApiError::invalid(
                "nothing to change: give description, tokenTemplate, apiList, expiresAt or allowedIps",
            ));
        }
        let plan = ops.prepare_edit(actor, id, &edit)?;
        let password = params.required("password")?;
        let confirmed = ops.confirm(actor, password, |_, _| {})?;
        if let EditPlan::Unchanged(current) = plan {
            let token = self.token_json(&current, None);
            return Ok(json!({ "result": code::OK, "token": token, "changed": false }));
        }
        let edited = ops.edit(actor, &confirmed, id, &edit)?;
        let token = self.token_json(&edited.token, None);
        let publish = self.publish(store, edited.built);
        Ok(
            json!({ "result": code::OK, "token": token, "changed": edited.changed, "publish": publish }),
        )
    }

    fn regenerate(
        &self,
        store: &mut Store,
        caller: &Caller<'_>,
        params: &Params,
    ) -> Result<Value, ApiError> {
        let actor = &caller.actor;
        // The spec names it `id`; py-jelastic sends `ids`.
        let id = one_id(params, &["id", "ids"])?;
        let passwords = self.passwords(caller);
        let mut ops =
            Ops::new(store, self.catalogue).with_platform(passwords.as_ref().map(|p| p as _));
        ops.show(actor, id)?;
        let given = params
            .optional("expiresAt")?
            .map(|text| ops.expiry_api(Some(text)))
            .transpose()?;
        let grace = match params.optional("grace")? {
            Some(text) => {
                let text = text.trim();
                let secs = text
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| text.parse::<u64>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "`grace`: `{}` is not a whole number of seconds (how long the old value keeps working; 0 or absent: it stops at once)",
                            text.chars().take(32).collect::<String>()
                        ))
                    })?;
                ops.grace(actor, secs, "grace")?
            }
            None => None,
        };
        let plan = ops.prepare_regenerate(actor, id, given, grace)?;
        let password = params.required("password")?;
        let confirmed = ops.confirm(actor, password, |_, _| {})?;
        let issued = ops.regenerate(actor, &confirmed, plan)?;
        let token = self.token_json(&issued.token, Some(issued.value.expose()));
        let publish = self.publish(store, issued.built);
        Ok(json!({ "result": code::OK, "token": token, "publish": publish }))
    }

    fn delete(
        &self,
        store: &mut Store,
        caller: &Caller<'_>,
        params: &Params,
    ) -> Result<Value, ApiError> {
        let actor = &caller.actor;
        let selection = match params::ids("ids", params.required("ids")?, true)? {
            Ids::All => Selection::All,
            Ids::Some(ids) => Selection::Ids(ids),
        };
        let passwords = self.passwords(caller);
        let mut ops =
            Ops::new(store, self.catalogue).with_platform(passwords.as_ref().map(|p| p as _));
        let removal = ops.prepare_remove(actor, selection)?;
        let password = params.required("password")?;
        let confirmed = ops.confirm(actor, password, |_, _| {})?;
        let removed = ops.remove(actor, &confirmed, removal)?;
        if removed.ids.is_empty() {
            return Ok(json!({ "result": code::OK, "ids": [] }));
        }
        let publish = self.publish(store, removed.built);
        Ok(json!({ "result": code::OK, "ids": removed.ids, "publish": publish }))
    }

    fn get_tokens(
        &self,
        store: &mut Store,
        caller: &Caller<'_>,
        params: &Params,
    ) -> Result<Value, ApiError> {
        let actor = &caller.actor;
        let ops = Ops::new(store, self.catalogue);
        let rows = match params.optional("ids")? {
            None => ops.list(actor)?,
            Some(text) => match params::ids("ids", text, true)? {
                Ids::All => ops.list(actor)?,
                Ids::Some(mut ids) => {
                    ids.sort_unstable();
                    ids.dedup();
                    ids.iter()
                        .map(|&id| ops.show(actor, id))
                        .collect::<Result<Vec<_>, _>>()?
                }
            },
        };
        let list: Vec<Value> = rows.iter().map(|t| self.token_json(t, None)).collect();
        Ok(json!({ "result": code::OK, "apiTokens": list }))
    }

    fn templates(&self) -> Value {
        let templates: Vec<Value> = self
            .catalogue
            .sets()
            .iter()
            .map(|set| {
                let methods: Vec<String> =
                    set.methods.iter().map(|m| m.as_str().to_string()).collect();
                json!({
                    "id": set.id,
                    "name": set.name,
                    "apiListItems": self.items(&methods),
                })
            })
            .collect();
        json!({ "result": code::OK, "templates": templates })
    }

    fn api_list(&self, params: &Params) -> Result<Value, ApiError> {
        // py-jelastic sends the filter as `sortParam`.
        let search = match params.optional("search")? {
            Some(s) => Some(s),
            None => params.optional("sortParam")?,
        };
        let private = params
            .one("showPrivate")?
            .map(|v| params::boolean("showPrivate", v))
            .transpose()?
            .unwrap_or(false);
        let list: Vec<Value> = self
            .catalogue
            .search(search.unwrap_or_default())
            .filter(|m| !m.canonical.is_forbidden_for_tokens())
            .filter(|m| private || m.public)
            .map(|m| {
                json!({
                    "id": method_id(m.canonical.as_str()),
                    "method": m.name,
                    "docs": docs_url(m),
                    "isPublic": m.public,
                })
            })
            .collect();
        Ok(json!({ "result": code::OK, "tokenPermissions": list }))
    }

    fn items(&self, methods: &[String]) -> Vec<Value> {
        methods
            .iter()
            .map(|m| json!({ "id": method_id(m), "method": self.catalogue.display_name(m) }))
            .collect()
    }

    /// A token in the platform's shape; `key` only when a value was just issued. Beyond the
    /// platform's fields (its clients ignore them): `allowedIps`, the client networks it is
    /// accepted from (`[]`: any), `oldKeyExpiresAt`, until when its previous value still
    /// works after a regeneration with a grace window (`null`: it does not), and `suspended`
    /// (its account is disabled: the token is on no edge).
    fn token_json(&self, t: &tokens::Token, key: Option<&str>) -> Value {
        let mut v = json!({
            "id": t.id,
            "description": t.description,
            "expiresAt": t.expires_at.map(api_instant),
            "lastUsed": t.last_used_at.map(api_instant),
            "isSystem": false,
            "createdAt": api_instant(t.created_at),
            "apiListItems": self.items(&t.methods),
            "allowedIps": t.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "oldKeyExpiresAt": t.old_value_until(now()).map(api_instant),
            "suspended": t.suspended,
        });
        if let Some(set) = t
            .scope_set
            .as_deref()
            .and_then(|id| self.catalogue.set(id).ok())
        {
            v["tokenTemplate"] = json!({ "id": set.id, "name": set.name });
        }
        if let Some(key) = key {
            v["key"] = Value::from(key);
        }
        v
    }

    /// Pushes a committed change to the configured edges, as the CLI does; says what
    /// happened. The change stands whatever this says.
    fn publish(&self, store: &mut Store, built: Option<Published>) -> Value {
        let outcome = (|| -> Result<ChangePublish, Error> {
            match ops::plan_publish(store.conn(), built, false)? {
                PublishPlan::Done { result, .. } => Ok(result),
                PublishPlan::Push { edges, published } => {
                    let timeouts = ops::timeouts(store.conn(), None, None)?;
                    let version = published.stamp.version;
                    // As the CLI: an edge a delta does not apply to gets the catch-up.
                    let catch_up = publish::CatchUp::new(store.location().clone());
                    let results = self.runtime.block_on(publish::push_all(
                        &edges,
                        published.bytes,
                        version,
                        Some(catch_up),
                        timeouts,
                        |_| {},
                    ))?;
                    ops::record_push(store, version, results)
                }
            }
        })();
        match outcome {
            Ok(result) => serde_json::to_value(result).unwrap_or(Value::Null),
            Err(e) => json!({
                "state": "not_accepted",
                "version": Value::Null,
                "edges": [],
                "error": e.to_string(),
            }),
        }
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

/// One token id from the first of `names` that is present.
fn one_id(params: &Params, names: &[&str]) -> Result<i64, ApiError> {
    for name in names {
        if let Some(text) = params.optional(name)? {
            return match params::ids(name, text, false)? {
                Ids::Some(ids) if ids.len() == 1 => Ok(ids[0]),
                _ => Err(ApiError::invalid(format!(
                    "`{name}`: give exactly one token id"
                ))),
            };
        }
    }
    Err(ApiError::invalid(format!(
        "the parameter `{}` is required: the token's id",
        names[0]
    )))
}

/// A stable numeric id of a method (the platform numbers its permissions): CRC-32 of the
/// canonical name, unique across the catalogue (tested).
pub fn method_id(canonical: &str) -> u32 {
    crc32fast::hash(canonical.as_bytes())
}

/// Signin and Signout are answered before a caller is authenticated.
fn unreachable_method(method: TokenMethod) -> Result<Value, ApiError> {
    Err(ApiError::new(
        code::INTERNAL,
        format!("{} was not answered", method.as_str()),
    ))
}

fn unknown_method(method: &str) -> ApiError {
    let wanted = method.to_ascii_lowercase();
    let mut close: Vec<(f64, &str)> = METHODS
        .iter()
        .map(|m| (strsim::jaro_winkler(&wanted, &m.to_ascii_lowercase()), *m))
        .filter(|(score, _)| *score >= 0.8)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0));
    let hint = if close.is_empty() {
        String::new()
    } else {
        format!(
            " (did you mean {}?)",
            close
                .iter()
                .take(3)
                .map(|(_, m)| *m)
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    ApiError::new(
        code::UNKNOWN_METHOD,
        format!(
            "users.Authentication.{} is not served here{hint}; the methods are {}",
            method.chars().take(64).collect::<String>(),
            METHODS.join(", ")
        ),
    )
}

fn json_answer(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The client's address: the configured header when Envoy set it, else the peer.
fn client_address(api: &Api, headers: &HeaderMap, peer: SocketAddr) -> String {
    api.config
        .client_address_header
        .as_ref()
        .and_then(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<std::net::IpAddr>().ok())
        .map_or_else(|| peer.ip().to_string(), |ip| ip.to_string())
}

async fn handle(
    State(api): State<Arc<Api>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path();
    let name = match path.get(..PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(PREFIX) => path[PREFIX.len()..].to_string(),
        _ => {
            return json_answer(
                StatusCode::NOT_FOUND,
                &ApiError::new(
                    code::UNKNOWN_METHOD,
                    format!(
                        "not found: the token methods are under {PREFIX}<method>, the Access Tokens page at {}",
                        page::PATH
                    ),
                )
                .to_json(),
            );
        }
    };
    let answer = match read_params(&method, &uri, &headers, body).await {
        Ok(params) => {
            let client = client_address(&api, &headers, peer);
            let worker = Arc::clone(&api);
            tokio::task::spawn_blocking(move || worker.call(&name, &params, &client))
                .await
                .unwrap_or_else(|e| {
                    eprintln!("pat-admin serve: API: a request failed: {e}");
                    ApiError::new(code::INTERNAL, "the service failed").to_json()
                })
        }
        Err(e) => e.to_json(),
    };
    json_answer(StatusCode::OK, &answer)
}

/// The parameters of a request: its query string, and a form body when there is one.
async fn read_params(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Body,
) -> Result<Params, ApiError> {
    if method != Method::GET && method != Method::POST {
        return Err(ApiError::invalid(format!(
            "{method} is not supported: use GET with a query string or POST with a form body"
        )));
    }
    let mut params = Params::default();
    if let Some(query) = uri.query() {
        params.add_encoded(query.as_bytes(), "the query string")?;
    }
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| {
        ApiError::invalid(format!(
            "the request body is larger than {MAX_BODY} bytes (or could not be read)"
        ))
    })?;
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if content_type != "application/x-www-form-urlencoded" {
        return Err(ApiError::invalid(format!(
            "a body of type `{}` is not read: send the parameters in the query string or as application/x-www-form-urlencoded",
            if content_type.is_empty() {
                "none"
            } else {
                &content_type
            }
        )));
    }
    params.add_encoded(&body, "the form body")?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_ids_are_unique_across_the_catalogue() {
        let catalogue = Catalogue::builtin().expect("catalogue");
        let mut ids: Vec<u32> = catalogue
            .methods()
            .iter()
            .map(|m| method_id(m.canonical.as_str()))
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n);
    }

    #[test]
    fn unknown_methods_get_suggestions() {
        let e = unknown_method("CreateTokens");
        assert_eq!(e.code, code::UNKNOWN_METHOD);
        assert!(
            e.message.contains("did you mean CreateToken"),
            "{}",
            e.message
        );
        let e = unknown_method("Frobnicate");
        assert!(!e.message.contains("did you mean"), "{}", e.message);
    }

    #[test]
    fn errors_map_to_codes_without_secrets() {
        let e = ApiError::from(Error::WrongPassword("alice".into()));
        assert_eq!(e.code, code::WRONG_PASSWORD);
        let e = ApiError::from(Error::NoSuchToken {
            user: "bob".into(),
            id: 3,
        });
        assert_eq!(
            (e.code, e.message.as_str()),
            (code::NOT_FOUND, "token 3 not found")
        );
        let e = ApiError::from(Error::Refused("limit".into()));
        assert_eq!(e.code, code::REFUSED);
        let e = ApiError::from(Error::Expiry(ExpiryError::Required(30)));
        assert_eq!(e.code, code::REFUSED);
        let e = ApiError::from(Error::Expiry(ExpiryError::Past("x".into())));
        assert_eq!(e.code, code::INVALID);
    }
}
