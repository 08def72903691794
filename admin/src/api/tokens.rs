//! The token methods: `CreateToken`, `EditToken`, `RegenerateToken`, `DeleteTokens` (each
//! one call of [`crate::ops`]: checked, confirmed with the `password` parameter, committed,
//! published to the configured edges before the answer, which says how in `publish`), and
//! `GetTokens`.
//!
//! # Layout
//! - The parameters: `tokenTemplate`/`apiList`, `description`, `allowedIps`, `envNames`,
//!   `rateLimit`, ids, and the `password` confirmation.
//! - The methods, then a token and a publish result in the platform's shape.

use serde_json::{Value, json};
use zeroize::Zeroizing;

use super::params::{self, Ids, Params};
use super::{Api, ApiError, Caller, code};
use crate::error::Error;
use crate::expiry::api_instant;
use crate::ops::{
    ChangePublish, Confirmation, Description, Done, Edit, Envs, Issued, Networks, NewToken, Ops,
    Rate, Regeneration, Scope, Selection,
};
use crate::settings::DEFAULT_RATE_LIMIT;
use crate::store::{Store, tokens};
use pat_core::rate::RateLimit;

/// The `default-rate-limit` setting, for the tokens in an answer.
fn default_rate(store: &Store) -> Result<Option<RateLimit>, ApiError> {
    Ok(DEFAULT_RATE_LIMIT.get(store.conn())?)
}

/// The `password` parameter as a change's confirmation: read only once the request is
/// checked, so a bad parameter is answered as such whatever the password.
fn password(params: &Params) -> Confirmation<'_> {
    Confirmation::ask(move |_| {
        params
            .required("password")
            .map(|p| Zeroizing::new(p.to_string()))
            .map_err(|e| Error::Invalid(e.message))
    })
}

/// A change's publish result in the answer (`null` if it cannot be written).
fn publish_json(publish: &ChangePublish) -> Value {
    serde_json::to_value(publish).unwrap_or(Value::Null)
}

impl Api {
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

    /// `envNames`: environment names separated by commas, semicolons, spaces or newlines (or
    /// a list, as for `apiList`); `None` when the parameter is absent, "any environment" when
    /// empty.
    fn envs(params: &Params) -> Result<Option<Envs>, ApiError> {
        if !params.has("envNames") {
            return Ok(None);
        }
        let items = params::list_items(params.all("envNames"));
        Ok(Some(Envs::parse(&items, "envNames")?))
    }

    /// `rateLimit`: `10/s`, `600/min`; empty or `none`: none of its own. `None` when the
    /// parameter is absent.
    fn rate(params: &Params) -> Result<Option<Rate>, ApiError> {
        Ok(params
            .one("rateLimit")?
            .map(|text| Rate::parse(text, "rateLimit"))
            .transpose()?)
    }

    pub(crate) fn create(
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
        let envs = Self::envs(params)?.unwrap_or_default();
        let rate = Self::rate(params)?.unwrap_or_default();
        let default = default_rate(store)?;
        let passwords = self.passwords(caller);
        let mut ops =
            Ops::new(store, self.catalogue).with_platform(passwords.as_ref().map(|p| p as _));
        let expiry = ops.expiry_api(params.optional("expiresAt")?)?;
        let new = NewToken::new(description, scope, expiry)
            .with_networks(networks)
            .with_envs(envs)
            .with_rate(rate);
        let done = ops.create(actor, new, password(params), self.publishing(), |_| Ok(()))?;
        Ok(self.issued_answer(&done, store.now(), default))
    }

    /// The answer to a change that issued a value (create, regenerate): the token with its
    /// value, shown this once, and the publish result.
    fn issued_answer(&self, done: &Done<Issued>, at: u64, default: Option<RateLimit>) -> Value {
        let issued = &done.outcome;
        let mut answer = json!({
            "result": code::OK,
            "token": self.token_json(&issued.token, Some(issued.value.expose()), at, default),
        });
        if let Some(publish) = &done.publish {
            answer["publish"] = publish_json(publish);
        }
        answer
    }

    pub(crate) fn edit(
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
        let envs = Self::envs(params)?;
        let rate = Self::rate(params)?;
        let default = default_rate(store)?;
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
            envs,
            rate,
        };
        if edit.is_empty() {
            return Err(ApiError::invalid(
                "nothing to change: give description, tokenTemplate, apiList, expiresAt, allowedIps, envNames or rateLimit",
            ));
        }
        // The password is checked even when nothing would change.
        let done = ops.edit_token(
            actor,
            id,
            &edit,
            password(params).even_if_unchanged(),
            self.publishing(),
            |_| Ok(()),
        )?;
        let token = self.token_json(&done.outcome.token, None, store.now(), default);
        Ok(match &done.publish {
            None => json!({ "result": code::OK, "token": token, "changed": done.outcome.changed }),
            Some(publish) => json!({
                "result": code::OK,
                "token": token,
                "changed": done.outcome.changed,
                "publish": publish_json(publish),
            }),
        })
    }

    pub(crate) fn regenerate(
        &self,
        store: &mut Store,
        caller: &Caller<'_>,
        params: &Params,
    ) -> Result<Value, ApiError> {
        let actor = &caller.actor;
        // The spec names it `id`; py-jelastic sends `ids`.
        let id = one_id(params, &["id", "ids"])?;
        let regeneration = Regeneration {
            id,
            expires_at: params.optional("expiresAt")?,
            grace: params.optional("grace")?,
        };
        let default = default_rate(store)?;
        let passwords = self.passwords(caller);
        let done = Ops::new(store, self.catalogue)
            .with_platform(passwords.as_ref().map(|p| p as _))
            .regenerate_token(
                actor,
                regeneration,
                password(params),
                self.publishing(),
                |_| Ok(()),
            )?;
        Ok(self.issued_answer(&done, store.now(), default))
    }

    pub(crate) fn delete(
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
        let done = Ops::new(store, self.catalogue)
            .with_platform(passwords.as_ref().map(|p| p as _))
            .remove_tokens(
                actor,
                selection,
                password(params),
                self.publishing(),
                |_| Ok(()),
            )?;
        Ok(match &done.publish {
            // Nothing to remove: nothing committed or published.
            None => json!({ "result": code::OK, "ids": [] }),
            Some(publish) => json!({
                "result": code::OK,
                "ids": done.outcome.ids,
                "publish": publish_json(publish),
            }),
        })
    }

    pub(crate) fn get_tokens(
        &self,
        store: &mut Store,
        caller: &Caller<'_>,
        params: &Params,
    ) -> Result<Value, ApiError> {
        let actor = &caller.actor;
        let default = default_rate(store)?;
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
        let at = store.now();
        let list: Vec<Value> = rows
            .iter()
            .map(|t| self.token_json(t, None, at, default))
            .collect();
        Ok(json!({ "result": code::OK, "apiTokens": list }))
    }

    /// A token in the platform's shape; `key` only when a value was just issued. Beyond the
    /// platform's fields (its clients ignore them): `allowedIps`, the client networks it is
    /// accepted from (`[]`: any), `oldKeyExpiresAt`, until when its previous value still
    /// works after a regeneration with a grace window (`null`: it does not), `suspended`
    /// (its account is disabled: the token is on no edge), `envNames`, the environments it
    /// may act on (`null`: any), `rateLimit`, its own rate limit (`"10/s"`, `"600/min"`;
    /// `null`: none of its own), and `effectiveRateLimit`, the one edges enforce (its own,
    /// else the `default-rate-limit` setting's; `null`: none). `at`: now, by the store's
    /// clock; `default`: that setting.
    fn token_json(
        &self,
        t: &tokens::Token,
        key: Option<&str>,
        at: u64,
        default: Option<RateLimit>,
    ) -> Value {
        let mut v = json!({
            "id": t.id,
            "description": t.description,
            "expiresAt": t.expires_at.map(api_instant),
            "lastUsed": t.last_used_at.map(api_instant),
            "isSystem": false,
            "createdAt": api_instant(t.created_at),
            "apiListItems": self.items(&t.methods),
            "allowedIps": t.networks.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "oldKeyExpiresAt": t.old_value_until(at).map(api_instant),
            "suspended": t.suspended,
            "envNames": t.envs.as_ref().map(|e| e.names().to_vec()),
            "rateLimit": t.rate_limit.map(|r| r.to_string()),
            "effectiveRateLimit": t.rate_limit.or(default).map(|r| r.to_string()),
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
