//! The catalogue methods: `GetTokenTemplates` (the predefined sets) and `GetTokenApiList`
//! (the methods a token may be given), in the platform's shape, with stable numeric ids.
//!
//! # Layout
//! - [`Api::templates`], [`Api::api_list`], [`Api::items`]: the answers.
//! - [`method_id`]: a method's stable id.

use serde_json::{Value, json};

use super::params::{self, Params};
use super::{Api, ApiError, code};
use crate::catalogue::docs_url;

impl Api {
    pub(crate) fn templates(&self) -> Value {
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

    pub(crate) fn api_list(&self, params: &Params) -> Result<Value, ApiError> {
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

    pub(crate) fn items(&self, methods: &[String]) -> Vec<Value> {
        methods
            .iter()
            .map(|m| json!({ "id": method_id(m), "method": self.catalogue.display_name(m) }))
            .collect()
    }
}

/// A stable numeric id of a method (the platform numbers its permissions): CRC-32 of the
/// canonical name, unique across the catalogue (tested).
pub fn method_id(canonical: &str) -> u32 {
    crc32fast::hash(canonical.as_bytes())
}
