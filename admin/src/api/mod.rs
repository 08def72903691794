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
//! from; empty on `EditToken`: any address), `envNames` (the environments it may act on,
//! in the same shapes as `apiList`; empty on `EditToken`: any environment), `rateLimit`
//! (`10/s`, `600/min`; empty or `none` on `EditToken`: none of its own, the
//! `default-rate-limit` setting's applies), and `grace` on `RegenerateToken` (seconds the
//! old value keeps working); tokens in answers carry `allowedIps`, `envNames` (`null`:
//! any), `rateLimit` (its own; `null`: none), `effectiveRateLimit` (what edges enforce: its
//! own, else the default; `null`: none) and `oldKeyExpiresAt`.
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
//!
//! # Layout
//! - [`errors`]: the `result` codes ([`code`]) and error answers ([`ApiError`]), from the
//!   operations' typed errors.
//! - [`sessions`]: `Signin`/`Signout` and the login session of every other call (pat-admin's
//!   own in standalone mode, the platform's in platform mode).
//! - [`tokens`]: the token methods (`CreateToken`, `EditToken`, `RegenerateToken`,
//!   `DeleteTokens`, `GetTokens`), each one call of [`crate::ops`].
//! - [`catalogue`]: `GetTokenTemplates`, `GetTokenApiList`, the platform's shape of methods.
//! - [`http`]: the HTTP layer (paths, GET/POST, form bodies, the client's address).
//! - [`params`]: the parameters of a call; [`page`]: the Access Tokens page.
//! - Here: the service ([`Api`]), its store connections, and dispatch by [`TokenMethod`].

pub mod catalogue;
pub mod errors;
pub mod http;
pub mod page;
pub mod params;
pub mod sessions;
pub mod tokens;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::HeaderName;
use serde_json::Value;

use crate::catalogue::Catalogue;
use crate::error::Error;
use crate::ops::{Actor, Publishing};
use crate::password;
use crate::platform::{self, ApiPasswords, Platform, SessionCache};
use crate::store::db::Location;
use crate::store::pool::{Pool, Pooled};
use crate::store::sessions as session_store;
use crate::store::{Open, Store};
pub use catalogue::method_id;
pub use errors::{ApiError, code};
use params::Params;

/// Where the token methods live (lowercase; matched in any case).
pub const PREFIX: &str = "/1.0/users/authentication/rest/";
/// The largest request body read, in bytes.
pub const MAX_BODY: usize = 64 * 1024;
/// The `source` of every error this service answers.
pub const SOURCE: &str = "pat-admin";

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

/// How the service is set up.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// A request header that carries the client's address (set by Envoy; the service then
    /// trusts it, so only use it when nothing but Envoy can reach the API's address).
    pub client_address_header: Option<HeaderName>,
    /// Platform mode's settings (`None`: standalone mode).
    pub platform: Option<platform::Settings>,
    /// The clock of every store connection the API opens ([`crate::clock`]).
    pub clock: crate::clock::Clock,
}

/// Platform mode: the calls to the platform and its answers about sessions.
pub(crate) struct PlatformMode {
    pub(crate) platform: Platform,
    pub(crate) sessions: SessionCache,
}

/// The service: the store directory, a few open connections, the catalogue.
pub struct Api {
    dir: Location,
    catalogue: &'static Catalogue,
    pool: Pool,
    /// Read-only connections for `/healthz`.
    health: Arc<Pool>,
    dummy_hash: String,
    config: Config,
    runtime: tokio::runtime::Handle,
    platform: Option<PlatformMode>,
}

/// Who calls: the account acting, and the login session it came with (platform mode's
/// `CheckPassword` needs it; never stored).
pub(crate) struct Caller<'p> {
    pub(crate) actor: Actor,
    pub(crate) session: &'p str,
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

impl Api {
    /// The service on the store in `dir` (which must exist: `serve` opened it first). Call
    /// from within the Tokio runtime it will run on.
    pub fn new(dir: Location, config: Config) -> Result<Self, Error> {
        let catalogue = Catalogue::builtin().map_err(Error::Internal)?;
        // Unknown logins are checked against this, so they cost what a real check costs.
        let dummy = session_store::new_value()?;
        let dummy_hash = password::hash(&dummy)?;
        let runtime = tokio::runtime::Handle::current();
        let platform = match &config.platform {
            Some(settings) => Some(PlatformMode {
                sessions: SessionCache::new(settings.session_cache),
                platform: Platform::new(settings.clone(), runtime.clone())?,
            }),
            None => None,
        };
        let (location, clock) = (dir.clone(), config.clock.clone());
        let pool = Pool::new(8, move || {
            Ok(Store::open_as(location.clone(), Open::Existing)?.with_clock(clock.clone()))
        });
        let (location, clock) = (dir.clone(), config.clock.clone());
        let keep = crate::store::pool::readers_to_keep(dir.engine(), 1);
        let health = Arc::new(Pool::new(keep, move || {
            Ok(Store::open_reader(&location)?.with_clock(clock.clone()))
        }));
        Ok(Self {
            dir,
            catalogue,
            pool,
            health,
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
    pub(crate) fn passwords<'s>(&'s self, caller: &Caller<'s>) -> Option<ApiPasswords<'s>> {
        self.platform.as_ref().map(|mode| ApiPasswords {
            platform: &mode.platform,
            session: caller.session,
        })
    }

    /// A connection from the pool (returned when the guard drops).
    pub(crate) fn store(&self) -> Result<Pooled<'_>, ApiError> {
        Ok(self.pool.get()?)
    }

    /// The router: the token methods under [`PREFIX`], the Access Tokens page under
    /// [`page::PATH`].
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .merge(page::routes())
            .route(
                pat_core::protocol::origin::HEALTH_PATH,
                axum::routing::get(|State(api): State<Arc<Self>>| async move {
                    crate::health::check(api.dir.engine().to_string(), api.health.clone()).await
                }),
            )
            .fallback(http::handle)
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
            return Err(errors::unknown_method(method));
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
            TokenMethod::Signin | TokenMethod::Signout => Err(ApiError::new(
                code::INTERNAL,
                format!("{} was not answered", method.as_str()),
            )),
            TokenMethod::GetTokenApiList => self.api_list(params),
            TokenMethod::GetTokenTemplates => Ok(self.templates()),
            TokenMethod::CreateToken => self.create(store, &caller, params),
            TokenMethod::EditToken => self.edit(store, &caller, params),
            TokenMethod::RegenerateToken => self.regenerate(store, &caller, params),
            TokenMethod::DeleteTokens => self.delete(store, &caller, params),
            TokenMethod::GetTokens => self.get_tokens(store, &caller, params),
        }
    }

    /// How the API publishes a change: to every configured edge, on the service's runtime
    /// (the call blocks on it: every method runs on a blocking thread).
    pub(crate) fn publishing(&self) -> Publishing<'static> {
        Publishing::quiet().on(self.runtime.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::errors::unknown_method;
    use super::*;
    use crate::expiry::ExpiryError;

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
