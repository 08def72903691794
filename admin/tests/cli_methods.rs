//! `methods`: the catalogue, search, set filter, a token's methods, docs links, JSON.

mod support;
use serde_json::Value;
use support::*;

/// `methods --json ARGS`: the method names listed.
fn names(admin: &Admin, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--json", "methods"];
    all.extend_from_slice(args);
    let run = admin.run(&all);
    run.ok();
    run.json()
        .as_array()
        .expect("an array")
        .iter()
        .map(|m| m["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn without_a_filter_every_method_is_listed() {
    let admin = Admin::new();
    assert_eq!(names(&admin, &[]).len(), 1219);
    let run = admin.run(&["methods"]);
    let human = run.ok().to_string();
    assert!(human.starts_with("METHOD"), "{}", &human[..80]);
    assert_eq!(human.lines().count(), 1 + 1219, "header and methods");
    // The count is for people: on stderr, out of pipes.
    assert_eq!(run.stderr, "1219 methods\n");
    assert!(!admin.store().exists(), "the catalogue needs no store");
}

#[test]
fn search_ignores_case_and_knows_the_env_alias() {
    let admin = Admin::new();
    let upper = names(&admin, &["--search", "CONTROL.STOPENV"]);
    assert_eq!(upper, ["environment.Control.StopEnv"]);
    assert_eq!(names(&admin, &["--search", "env.control.stopenv"]), upper);

    let stop = names(&admin, &["--search", "stopenv"]);
    assert_eq!(
        stop,
        [
            "administration.Cluster.StopEnv",
            "environment.Control.StopEnv"
        ]
    );

    assert!(names(&admin, &["--search", "no-such-method-anywhere"]).is_empty());
    let run = admin.run(&["methods", "--search", "no-such-method-anywhere"]);
    assert_eq!(run.ok(), "");
    assert_eq!(run.stderr, "No method matches.\n");
}

#[test]
fn api_filter_lists_a_sets_methods() {
    let admin = Admin::new();
    let ide = names(&admin, &["--api", "ide-plugins"]);
    assert_eq!(ide.len(), 14);
    assert!(ide.contains(&"environment.Control.StopEnv".to_string()));
    assert!(ide.contains(&"storage.Uploader.Upload".to_string()));
    // Combined with a search.
    assert_eq!(
        names(&admin, &["--api", "ide-plugins", "--search", "uploader"]),
        ["storage.Uploader.Upload"]
    );
    for set in ["marketplace", "maven-plugin"] {
        assert!(!names(&admin, &["--api", set]).is_empty(), "{set}");
    }

    let err = admin.run(&["methods", "--api", "all"]).fails(2).to_string();
    assert!(
        err.contains("ide-plugins, marketplace, maven-plugin"),
        "{err}"
    );
}

#[test]
fn only_checked_lists_a_tokens_methods() {
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token(
        "alice",
        &["--method", "storage.uploader.upload,env.control.stopenv"],
    );
    let id = id.to_string();
    assert_eq!(
        names(&admin, &["--only-checked", "--user", "alice", &id]),
        ["environment.Control.StopEnv", "storage.Uploader.Upload"]
    );
    assert_eq!(
        names(
            &admin,
            &[
                "--only-checked",
                "--user",
                "alice",
                &id,
                "--search",
                "upload"
            ]
        ),
        ["storage.Uploader.Upload"]
    );

    let err = admin
        .run(&["methods", "--only-checked", "--user", "alice", "99"])
        .fails(4)
        .to_string();
    assert!(err.contains("alice has no token 99"), "{err}");
    let err = admin
        .run(&["methods", "--only-checked", "--user", "ghost", &id])
        .fails(4)
        .to_string();
    assert!(err.contains("no account named ghost"), "{err}");
    // --only-checked needs both the account and the id.
    admin
        .run(&["methods", "--only-checked", "--user", "alice"])
        .fails(2);
    admin.run(&["methods", "--only-checked", &id]).fails(2);
}

#[test]
fn every_method_has_a_docs_link() {
    let admin = Admin::new();
    let human = admin
        .run(&["methods", "--search", "stopenv"])
        .ok()
        .to_string();
    assert!(
        human
            .lines()
            .any(|l| l.starts_with("environment.Control.StopEnv ")
                && l.ends_with(
                    " https://docs.jelastic.com/api/#!/api/environment.Control-method-StopEnv"
                )),
        "{human}"
    );
    assert!(
        human.contains(
            "https://docs.jelastic.com/api/private/#!/api/administration.Cluster-method-StopEnv"
        ),
        "private methods link the private docs: {human}"
    );

    let run = admin.run(&["--json", "methods"]);
    for m in run.json().as_array().expect("array") {
        let docs = m["docs"].as_str().expect("docs");
        assert!(docs.starts_with("https://docs.jelastic.com/api/"), "{docs}");
    }
}

#[test]
fn json_has_name_canonical_public_docs_params() {
    let admin = Admin::new();
    let run = admin.run(&[
        "--json",
        "methods",
        "--search",
        "environment.control.stopenv",
    ]);
    run.ok();
    let Value::Array(list) = run.json() else {
        panic!("an array: {}", run.stdout)
    };
    assert_eq!(list.len(), 1);
    let m = list[0].as_object().expect("an object");
    let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["canonical", "docs", "name", "params", "public"]);
    assert_eq!(m["name"], "environment.Control.StopEnv");
    assert_eq!(m["canonical"], "environment.control.stopenv");
    assert_eq!(m["public"], true);
    assert_eq!(
        m["docs"],
        "https://docs.jelastic.com/api/#!/api/environment.Control-method-StopEnv"
    );
    assert_eq!(m["params"], serde_json::json!(["envName"]));
}
