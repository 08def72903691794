//! `methods`: the catalogue with search, set filter, "only checked" for a token, and an API
//! docs link per method — the dashboard's method picker on the command line.

use serde::Serialize;

use super::{Ctx, table};
use crate::catalogue::{Method, docs_url};
use crate::cli::MethodsArgs;
use crate::error::{Result, exit};
use crate::store::{tokens, users};

#[derive(Debug, Serialize)]
struct MethodView<'a> {
    name: &'a str,
    canonical: &'a str,
    public: bool,
    docs: String,
    params: &'a [String],
}

/// Runs `methods`.
pub fn run(ctx: &mut Ctx, args: MethodsArgs) -> Result<u8> {
    let set = args
        .api
        .as_deref()
        .map(|name| ctx.catalogue.set(name))
        .transpose()?;
    let checked: Option<Vec<String>> = match (args.only_checked, &args.user, args.id) {
        (true, Some(user), Some(id)) => {
            users::require(ctx.store.conn(), user)?;
            Some(tokens::require(ctx.store.conn(), user, id)?.methods)
        }
        _ => None,
    };
    let search = args.search.clone().unwrap_or_default();
    let selected: Vec<&Method> = ctx
        .catalogue
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
    ctx.emit(&views, || {
        if views.is_empty() {
            return "No method matches.\n".into();
        }
        let mut text = table(
            &["METHOD", "DOCS"],
            views
                .iter()
                .map(|v| vec![v.name.to_string(), v.docs.clone()])
                .collect(),
        );
        text.push_str(&format!("{} method(s)\n", views.len()));
        text
    })?;
    Ok(exit::OK)
}
