//! The platform API catalogue built into the binary (`data/platform-api.json`): which methods
//! exist, the predefined token sets, API docs links, and name resolution with "did you mean".

use std::collections::HashMap;
use std::sync::OnceLock;

use pat_core::method::{MethodName, MethodNameError};
use serde::Deserialize;

const CATALOGUE_JSON: &str = include_str!("../data/platform-api.json");

/// One API method.
#[derive(Debug, Clone)]
pub struct Method {
    /// As the catalogue spells it: `environment.Control.StopEnv`.
    pub name: String,
    /// Canonical form: `environment.control.stopenv`.
    pub canonical: MethodName,
    /// Listed in the public API documentation.
    pub public: bool,
    /// Form parameter names, when known.
    pub params: Vec<String>,
}

/// Parameters that name an environment besides `envName`: a method taking one of them acts
/// on (or creates) another environment too, so a token limited to some environments may not
/// call it.
pub const OTHER_ENV_PARAMS: [&str; 4] = ["targetEnv", "srcEnvName", "dstEnvName", "targetAppid"];

impl Method {
    /// Does it act on the one environment its `envName` names: its parameters include
    /// `envName` and none of [`OTHER_ENV_PARAMS`]? Only these may be called by a token
    /// limited to some environments (`GetEnvs`, which lists every environment, and
    /// `CloneEnv`, which makes another, may not).
    pub fn acts_on_one_env(&self) -> bool {
        let has = |name: &str| self.params.iter().any(|p| p.eq_ignore_ascii_case(name));
        has(pat_core::env::ENV_PARAM) && !OTHER_ENV_PARAMS.iter().any(|p| has(p))
    }
}

/// A predefined token set (the dashboard's "API" choices).
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// Command-line id: `ide-plugins`.
    pub id: String,
    /// Display name: `IDE Plugins`.
    pub name: String,
    /// How sure the catalogue is about the set's contents.
    pub confidence: String,
    /// Its methods, canonical.
    pub methods: Vec<MethodName>,
}

/// The whole catalogue.
#[derive(Debug)]
pub struct Catalogue {
    methods: Vec<Method>,
    by_canonical: HashMap<String, usize>,
    sets: Vec<TokenSet>,
    max_tokens_per_account: u32,
}

/// Why a method or set name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogueError {
    /// Not shaped like a method name.
    #[error(transparent)]
    Name(#[from] MethodNameError),
    /// Well formed but not in the catalogue.
    #[error("unknown API method `{name}`{}; list them with: pat-admin methods --search TEXT", suggestion(.suggestions))]
    UnknownMethod {
        /// What was asked for.
        name: String,
        /// Close matches, catalogue spelling.
        suggestions: Vec<String>,
    },
    /// Never grantable.
    #[error(
        "{0} cannot be granted: access tokens can never call users.Authentication methods (tokens cannot mint or manage tokens)"
    )]
    Forbidden(String),
    /// Not a predefined set.
    #[error("unknown API set `{name}`; choose one of: {known}")]
    UnknownSet {
        /// What was asked for.
        name: String,
        /// The sets there are.
        known: String,
    },
}

fn suggestion(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(", "))
    }
}

#[derive(Deserialize)]
struct RawCatalogue {
    services: HashMap<String, Vec<RawMethod>>,
    token_sets: HashMap<String, RawSet>,
    token_rules: RawRules,
}

#[derive(Deserialize)]
struct RawMethod {
    name: String,
    public: bool,
    #[serde(default)]
    params: Vec<String>,
}

#[derive(Deserialize)]
struct RawSet {
    name: String,
    confidence: String,
    methods: Vec<String>,
}

#[derive(Deserialize)]
struct RawRules {
    max_tokens_per_account: u32,
}

impl Catalogue {
    /// The catalogue compiled into this binary. Its validity is checked by the test suite;
    /// should it ever fail to parse, the error says so instead of panicking.
    pub fn builtin() -> Result<&'static Catalogue, String> {
        static CATALOGUE: OnceLock<Result<Catalogue, String>> = OnceLock::new();
        CATALOGUE
            .get_or_init(|| Self::parse(CATALOGUE_JSON))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Parses a catalogue document.
    pub fn parse(json: &str) -> Result<Catalogue, String> {
        let raw: RawCatalogue = serde_json::from_str(json)
            .map_err(|e| format!("the built-in API catalogue is invalid: {e}"))?;
        let mut methods = Vec::new();
        for (service, list) in &raw.services {
            for m in list {
                let name = format!("{service}.{}", m.name);
                let canonical = MethodName::parse(&name).map_err(|e| {
                    format!("the built-in API catalogue has a bad method name: {e}")
                })?;
                methods.push(Method {
                    name,
                    canonical,
                    public: m.public,
                    params: m.params.clone(),
                });
            }
        }
        methods.sort_by(|a, b| {
            a.name
                .to_ascii_lowercase()
                .cmp(&b.name.to_ascii_lowercase())
        });
        let by_canonical = methods
            .iter()
            .enumerate()
            .map(|(i, m)| (m.canonical.as_str().to_string(), i))
            .collect::<HashMap<_, _>>();
        let mut catalogue = Catalogue {
            methods,
            by_canonical,
            sets: Vec::new(),
            max_tokens_per_account: raw.token_rules.max_tokens_per_account,
        };
        let mut sets = Vec::new();
        for (id, set) in &raw.token_sets {
            let methods = set
                .methods
                .iter()
                .map(|m| catalogue.resolve(m).map(|m| m.canonical.clone()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("the built-in token set {id} is invalid: {e}"))?;
            sets.push(TokenSet {
                id: id.clone(),
                name: set.name.clone(),
                confidence: set.confidence.clone(),
                methods,
            });
        }
        sets.sort_by(|a, b| a.id.cmp(&b.id));
        catalogue.sets = sets;
        Ok(catalogue)
    }

    /// Every method, sorted by name.
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// The methods that act on one environment ([`Method::acts_on_one_env`]), canonical:
    /// what every document declares, so edges can hold tokens limited to environments.
    pub fn env_methods(&self) -> impl Iterator<Item = &MethodName> + '_ {
        self.methods
            .iter()
            .filter(|m| m.acts_on_one_env())
            .map(|m| &m.canonical)
    }

    /// The predefined token sets, sorted by id.
    pub fn sets(&self) -> &[TokenSet] {
        &self.sets
    }

    /// The platform's limit on tokens per account.
    pub fn max_tokens_per_account(&self) -> u32 {
        self.max_tokens_per_account
    }

    /// Resolves a method name typed by an operator (any case, `env.` alias). Refuses the
    /// methods no token may call and suggests close names for unknown ones.
    pub fn resolve(&self, name: &str) -> Result<&Method, CatalogueError> {
        let canonical = MethodName::parse(name.trim())?;
        if canonical.is_forbidden_for_tokens() {
            let shown = self
                .by_canonical
                .get(canonical.as_str())
                .map_or(name, |&i| self.methods[i].name.as_str());
            return Err(CatalogueError::Forbidden(shown.to_string()));
        }
        match self.by_canonical.get(canonical.as_str()) {
            Some(&i) => Ok(&self.methods[i]),
            None => Err(CatalogueError::UnknownMethod {
                name: name.to_string(),
                suggestions: self.suggest(canonical.as_str()),
            }),
        }
    }

    /// The catalogue spelling of a canonical name (the canonical name if unknown).
    pub fn display_name<'a>(&'a self, canonical: &'a str) -> &'a str {
        self.by_canonical
            .get(canonical)
            .map_or(canonical, |&i| self.methods[i].name.as_str())
    }

    /// The method with this canonical name.
    pub fn method(&self, canonical: &str) -> Option<&Method> {
        self.by_canonical.get(canonical).map(|&i| &self.methods[i])
    }

    /// Up to three close names: same method name in another service first, then by
    /// Jaro-Winkler similarity.
    fn suggest(&self, canonical: &str) -> Vec<String> {
        let wanted_method = canonical.rsplit('.').next().unwrap_or(canonical);
        let mut scored: Vec<(f64, &Method)> = self
            .methods
            .iter()
            .filter(|m| !m.canonical.is_forbidden_for_tokens())
            .map(|m| {
                let own = m.canonical.as_str();
                let own_method = own.rsplit('.').next().unwrap_or(own);
                let score =
                    strsim::jaro_winkler(canonical, own).max(if own_method == wanted_method {
                        0.95
                    } else {
                        0.0
                    });
                (score, m)
            })
            .filter(|(score, _)| *score >= 0.85)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        scored
            .into_iter()
            .take(3)
            .map(|(_, m)| m.name.clone())
            .collect()
    }

    /// A predefined set by id (`ide-plugins`) or display name (`IDE Plugins`), any case.
    pub fn set(&self, name: &str) -> Result<&TokenSet, CatalogueError> {
        let wanted = name.trim().to_ascii_lowercase().replace([' ', '_'], "-");
        self.sets
            .iter()
            .find(|s| s.id == wanted || s.name.to_ascii_lowercase().replace(' ', "-") == wanted)
            .ok_or_else(|| CatalogueError::UnknownSet {
                name: name.to_string(),
                known: self
                    .sets
                    .iter()
                    .map(|s| s.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Methods whose name contains `text` (case-insensitive; `env.` works too).
    pub fn search<'a>(&'a self, text: &str) -> impl Iterator<Item = &'a Method> + 'a {
        let needle = text.trim().to_ascii_lowercase();
        let expanded = needle
            .strip_prefix("env.")
            .map(|rest| format!("environment.{rest}"));
        self.methods.iter().filter(move |m| {
            let name = m.canonical.as_str();
            name.contains(&needle) || expanded.as_deref().is_some_and(|e| name.contains(e))
        })
    }
}

/// The API documentation page of a method (public or private docs).
pub fn docs_url(method: &Method) -> String {
    let (service, name) = method.name.rsplit_once('.').unwrap_or((&method.name, ""));
    let section = if method.public { "api" } else { "api/private" };
    format!("https://docs.jelastic.com/{section}/#!/api/{service}-method-{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> &'static Catalogue {
        Catalogue::builtin().expect("the built-in catalogue parses")
    }

    #[test]
    fn the_built_in_catalogue_is_complete() {
        let c = catalogue();
        assert_eq!(c.methods().len(), 1219);
        assert_eq!(
            c.sets().iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["ide-plugins", "marketplace", "maven-plugin"]
        );
        assert_eq!(c.max_tokens_per_account(), 100);
        for set in c.sets() {
            assert!(
                set.methods.iter().all(|m| !m.is_forbidden_for_tokens()),
                "{}",
                set.id
            );
        }
    }

    #[test]
    fn methods_that_act_on_one_environment() {
        let c = catalogue();
        let acts = |name: &str| c.resolve(name).expect(name).acts_on_one_env();
        assert!(acts("environment.Control.StopEnv"));
        assert!(acts("environment.Control.StartEnv"));
        assert!(
            !acts("environment.Control.GetEnvs"),
            "lists every environment"
        );
        assert!(!acts("environment.Control.CloneEnv"), "makes another one");
        assert!(!acts("environment.Build.AddProject"), "takes targetEnv");
        assert_eq!(c.env_methods().count(), 198);
        assert_eq!(
            c.methods()
                .iter()
                .filter(|m| m.params.iter().any(|p| p == "envName"))
                .count(),
            206,
            "take envName at all"
        );
    }

    #[test]
    fn resolves_names_in_any_case_with_aliases() {
        let c = catalogue();
        for name in [
            "environment.Control.StopEnv",
            "ENVIRONMENT.control.stopenv",
            "env.Control.StopEnv",
            " env.control.stopenv ",
        ] {
            assert_eq!(
                c.resolve(name).expect(name).name,
                "environment.Control.StopEnv"
            );
        }
    }

    #[test]
    fn unknown_names_get_suggestions() {
        let err = catalogue()
            .resolve("environment.Control.StopEnvv")
            .expect_err("unknown");
        assert!(
            err.to_string()
                .contains("did you mean environment.Control.StopEnv"),
            "{err}"
        );
        let err = catalogue()
            .resolve("environment.Kontrol.StopEnv")
            .expect_err("unknown");
        assert!(
            err.to_string().contains("environment.Control.StopEnv"),
            "{err}"
        );
        assert!(matches!(
            catalogue().resolve("nonsense"),
            Err(CatalogueError::Name(_))
        ));
        let err = catalogue().resolve("zzz.Qqq.Xxx").expect_err("unknown");
        assert!(!err.to_string().contains("did you mean"), "{err}");
    }

    #[test]
    fn authentication_methods_are_never_granted() {
        let err = catalogue()
            .resolve("users.authentication.signin")
            .expect_err("forbidden");
        assert!(
            matches!(err, CatalogueError::Forbidden(ref name) if name == "users.Authentication.Signin"),
            "{err}"
        );
    }

    #[test]
    fn sets_by_id_or_name() {
        let c = catalogue();
        assert_eq!(c.set("ide-plugins").expect("set").name, "IDE Plugins");
        assert_eq!(c.set("IDE Plugins").expect("set").id, "ide-plugins");
        assert_eq!(c.set("maven_plugin").expect("set").id, "maven-plugin");
        let err = c.set("all").expect_err("unknown");
        assert!(
            err.to_string()
                .contains("ide-plugins, marketplace, maven-plugin"),
            "{err}"
        );
    }

    #[test]
    fn search_and_docs_links() {
        let c = catalogue();
        let found: Vec<&str> = c
            .search("env.control.stopenv")
            .map(|m| m.name.as_str())
            .collect();
        assert_eq!(found, ["environment.Control.StopEnv"]);
        assert!(
            c.search("uploader")
                .any(|m| m.name == "storage.Uploader.Upload")
        );
        let stop = c.resolve("environment.Control.StopEnv").expect("known");
        assert_eq!(
            docs_url(stop),
            "https://docs.jelastic.com/api/#!/api/environment.Control-method-StopEnv"
        );
    }
}
