//! `methods`: the catalogue with search, set filter, "only checked" for a token, and an API
//! docs link per method — the dashboard's method picker on the command line. Needs no store
//! unless `--only-checked` names a token.

use serde::Serialize;

use super::table;
use crate::catalogue::{Catalogue, Method, docs_url};
use crate::cli::MethodsArgs;
use crate::error::{Result, exit};
use crate::output::Output;
use crate::store::{Store, tokens, users};

#[derive(Debug, Serialize)]
struct MethodView<'a> {
    name: &'a str,
    canonical: &'a str,
    public: bool,
    docs: String,
    params: &'a [String],
}

/// Runs `methods`; `store` is needed (and given) only with `--only-checked`.
pub fn run(
    out: Output,
    catalogue: &Catalogue,
    store: Option<&Store>,
    args: MethodsArgs,
) -> Result<u8> {
    let set = args
        .api
        .as_deref()
        .map(|name| catalogue.set(name))
        .transpose()?;
    let checked: Option<Vec<String>> = match (args.only_checked, &args.user, args.id, store) {
        (true, Some(user), Some(id), Some(store)) => {
            let user = users::require(store.conn(), user)?.name;
            Some(tokens::require(store.conn(), &user, id)?.methods)
        }
        _ => None,
    };
    let search = args.search.clone().unwrap_or_default();
    let selected: Vec<&Method> = catalogue
        .search(&search)
        .filter(|m| set.is_none_or(|s| s.methods.contains(&m.canonical)))
        .filter(|m| {
            checked
                .as_ref()
                .is_none_or(|c| c.iter().any(|x| x == m.canonical.as_str()))
        })
        .collect();
    let views: Vec<MethodView<'_>> = selected
        .iter()
        .map(|m| MethodView {
            name: &m.name,
            canonical: m.canonical.as_str(),
            public: m.public,
            docs: docs_url(m),
            params: &m.params,
        })
        .collect();
    out.emit(&views, || {
        if views.is_empty() {
            return String::new();
        }
        table(
            &["METHOD", "DOCS"],
            views
                .iter()
                .map(|v| vec![v.name.to_string(), v.docs.clone()])
                .collect(),
        )
    })?;
    // The count is for people: on stderr, so a pipe gets only the methods.
    if views.is_empty() {
        out.note("No method matches.");
    } else {
        out.note(&format!(
            "{} method{}",
            views.len(),
            if views.len() == 1 { "" } else { "s" }
        ));
    }
    Ok(exit::OK)
}
