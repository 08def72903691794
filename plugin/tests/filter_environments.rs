//! Tokens limited to environments, through the compiled filter: allowed on a method that acts
//! on one environment when the request's one `envName` (query, form or multipart) is in the
//! token's list; another environment, none, two, `envName` in another spelling, or a method
//! that does not act on one environment (`GetEnvs`, `CloneEnv`) is a 704 denial with its own
//! reason; a token without a list is not affected; a list changed by a delta takes effect.

mod filter_support;

use filter_support::*;
use pat_core::snapshot::Stamp;
use pat_testbed::{Exchange, Request};

const ENVIRONMENT: i64 = 704;
const FORM: &str = "application/x-www-form-urlencoded";
const BOUNDARY: &str = "----pat-edge-environments";
const STARTENV: &str = "/1.0/environment/control/rest/startenv";
const GETENVS: &str = "/1.0/environment/control/rest/getenvs";
const CLONEENV: &str = "/1.0/environment/control/rest/cloneenv";
const SCOPE: &[&str] = &[
    "environment.Control.StopEnv",
    "environment.Control.StartEnv",
    "environment.Control.GetEnvs",
    "environment.Control.CloneEnv",
];

fn limited_edge() -> (Edge, Minted, Minted) {
    let edge = edge().build();
    let limited = Minted::new(1, "alice", SCOPE).in_envs(&["prod", "Staging"]);
    let open = Minted::new(2, "bob", SCOPE);
    edge.publish(0, 1, &[&limited, &open]);
    edge.tick();
    (edge, limited, open)
}

fn field(name: &str, value: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

fn file_part(content: &str) -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.war\"\r\nContent-Type: application/octet-stream\r\n\r\n{content}\r\n"
    )
}

fn multipart(path: &str, parts: &[String]) -> Request {
    let body = [parts, &[format!("--{BOUNDARY}--\r\n")]].concat().concat();
    Request::post(path)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .header("content-length", body.len().to_string())
        .body(body)
        .chunk_size(16_384)
}

fn form(path: &str, body: String) -> Request {
    Request::post(path)
        .header("content-type", FORM)
        .body(body)
        .chunk_size(5)
}

/// Allowed for `token` (its id in the identity header).
fn allowed(exchange: &Exchange, id: u64, what: &str) {
    let up = exchange.forwarded().unwrap_or_else(|| {
        panic!(
            "{what}: expected it forwarded, got {:?}: {:?}",
            exchange.status(),
            exchange.local_response().map(|l| l.body_text())
        )
    });
    assert_eq!(
        up.header("x-pat-token-id"),
        Some(id.to_string().as_str()),
        "{what}"
    );
}

/// Denied with this reason and 704, nothing forwarded; the error text.
fn denied(edge: &Edge, exchange: &Exchange, reason: &str, what: &str) -> String {
    let body = assert_denied(edge, exchange, reason, ENVIRONMENT);
    assert!(
        exchange.forwarded().is_none(),
        "{what}: reached the platform"
    );
    body["error"].as_str().expect("error").to_string()
}

fn counted(edge: &Edge, reason: &str) -> u64 {
    edge.tb
        .counter(&format!("pat_edge.requests.denied.{reason}"))
        .unwrap_or(0)
}

#[test]
fn in_the_query_only_the_listed_environments_on_environment_methods() {
    let (edge, limited, open) = limited_edge();
    let t = limited.value();
    for vm in 0..2 {
        // Listed, any case of the value (the platform compares names without regard to case).
        for env in ["prod", "staging", "PROD", "Staging"] {
            allowed(
                &edge.get(vm, &format!("{STOPENV}?envName={env}"), t),
                1,
                env,
            );
        }
        allowed(
            &edge.get(vm, &format!("{STARTENV}?envName=staging&x=1"), t),
            1,
            "StartEnv",
        );
        // Another environment, none, an empty one.
        let error = denied(
            &edge,
            &edge.get(vm, &format!("{STOPENV}?envName=dev"), t),
            "environment_not_allowed",
            "dev",
        );
        assert!(error.contains("dev"), "{error}");
        assert!(!error.contains(t), "{error}");
        let error = denied(
            &edge,
            &edge.get(vm, STOPENV, t),
            "environment_not_allowed",
            "none",
        );
        assert!(error.contains("envName"), "{error}");
        denied(
            &edge,
            &edge.get(vm, &format!("{STOPENV}?envName="), t),
            "environment_not_allowed",
            "empty",
        );
        // A prefix or an extension of a listed name is another name.
        for env in ["pro", "prod2", "prod.example"] {
            denied(
                &edge,
                &edge.get(vm, &format!("{STOPENV}?envName={env}"), t),
                "environment_not_allowed",
                env,
            );
        }
        // Two values, or the name in another spelling a platform might read.
        for query in [
            "envName=prod&envName=staging",
            "envName=prod&envName=dev",
            "envname=prod",
            "envName=prod&ENVNAME=prod",
            "envNam%45=prod",
            "envNam%65=dev&envName=prod",
        ] {
            denied(
                &edge,
                &edge.get(vm, &format!("{STOPENV}?{query}"), t),
                "ambiguous_environment",
                query,
            );
        }
        // `envNam%65` is `envName` itself: the same value twice is one value.
        allowed(
            &edge.get(vm, &format!("{STOPENV}?envNam%65=prod&envName=prod"), t),
            1,
            "envNam%65",
        );
        // Methods that do not act on one environment, even naming a listed one.
        let error = denied(
            &edge,
            &edge.get(vm, GETENVS, t),
            "not_an_environment_method",
            "GetEnvs",
        );
        assert!(error.to_lowercase().contains("getenvs"), "{error}");
        denied(
            &edge,
            &edge.get(vm, &format!("{GETENVS}?envName=prod"), t),
            "not_an_environment_method",
            "GetEnvs naming prod",
        );
        denied(
            &edge,
            &edge.get(vm, &format!("{CLONEENV}?envName=prod&dstEnvName=prod2"), t),
            "not_an_environment_method",
            "CloneEnv",
        );
        // Out of scope is still out of scope (702), not an environment matter.
        assert_denied(
            &edge,
            &edge.get(
                vm,
                "/1.0/environment/control/rest/deleteenv?envName=prod",
                t,
            ),
            "out_of_scope",
            702,
        );
        // A token without a list: none of this applies.
        for path in [
            format!("{STOPENV}?envName=dev"),
            STOPENV.to_string(),
            format!("{STOPENV}?envName=prod&envName=dev"),
            format!("{STOPENV}?envname=prod"),
            GETENVS.to_string(),
            format!("{CLONEENV}?envName=a&dstEnvName=b"),
        ] {
            allowed(&edge.get(vm, &path, open.value()), 2, &path);
        }
    }
    assert_eq!(counted(&edge, "environment_not_allowed"), 2 * 6);
    assert_eq!(counted(&edge, "ambiguous_environment"), 2 * 6);
    assert_eq!(counted(&edge, "not_an_environment_method"), 2 * 3);
    assert_eq!(
        edge.tb.counter("pat_edge.requests.denied"),
        Some(2 * (6 + 6 + 3 + 1))
    );
    assert_eq!(
        edge.tb.counter("pat_edge.requests.allowed"),
        Some(2 * (6 + 6))
    );
    edge.assert_clean(&[t, open.value()]);
}

#[test]
fn in_form_and_multipart_bodies() {
    let (edge, limited, open) = limited_edge();
    let t = limited.value();
    // Form bodies, read in small chunks.
    allowed(
        &edge
            .tb
            .vm(0)
            .send(form(STOPENV, format!("envName=prod&session={t}"))),
        1,
        "form prod",
    );
    allowed(
        &edge
            .tb
            .vm(1)
            .send(form(STOPENV, format!("session={t}&envName=Staging"))),
        1,
        "form staging",
    );
    denied(
        &edge,
        &edge
            .tb
            .vm(0)
            .send(form(STOPENV, format!("envName=dev&session={t}"))),
        "environment_not_allowed",
        "form dev",
    );
    denied(
        &edge,
        &edge
            .tb
            .vm(1)
            .send(form(STOPENV, format!("session={t}&x=1"))),
        "environment_not_allowed",
        "form without envName",
    );
    // The token in the query, the environment in the body: one request, one environment.
    allowed(
        &edge.tb.vm(0).send(form(
            &format!("{STOPENV}?session={t}"),
            "envName=prod".to_string(),
        )),
        1,
        "query token, form prod",
    );
    denied(
        &edge,
        &edge.tb.vm(1).send(form(
            &format!("{STOPENV}?envName=prod"),
            format!("envName=dev&session={t}"),
        )),
        "ambiguous_environment",
        "query prod, form dev",
    );
    denied(
        &edge,
        &edge.tb.vm(0).send(form(
            STOPENV,
            format!("envName=prod&session={t}&envname=dev"),
        )),
        "ambiguous_environment",
        "form in two spellings",
    );
    // Multipart: fields before the file.
    allowed(
        &edge.tb.vm(1).send(multipart(
            STOPENV,
            &[
                field("envName", "prod"),
                field("session", t),
                file_part("DATA"),
            ],
        )),
        1,
        "multipart prod",
    );
    denied(
        &edge,
        &edge.tb.vm(0).send(multipart(
            STOPENV,
            &[
                field("session", t),
                field("envName", "dev"),
                file_part("DATA"),
            ],
        )),
        "environment_not_allowed",
        "multipart dev",
    );
    denied(
        &edge,
        &edge.tb.vm(1).send(multipart(
            STOPENV,
            &[
                field("envName", "prod"),
                field("session", t),
                field("envName", "staging"),
                file_part("DATA"),
            ],
        )),
        "ambiguous_environment",
        "multipart two values",
    );
    // After the file (the head already forwarded): a part renaming the environment ends
    // the request.
    let big = "B".repeat(100_000);
    let late = edge.tb.vm(0).send(multipart(
        STOPENV,
        &[
            field("envName", "prod"),
            field("session", t),
            file_part(&big),
            field("envName", "dev"),
        ],
    ));
    denied(
        &edge,
        &late,
        "ambiguous_environment",
        "multipart renamed after the file",
    );
    // The same upload is fine for a token without a list.
    allowed(
        &edge.tb.vm(1).send(multipart(
            STOPENV,
            &[
                field("envName", "prod"),
                field("session", open.value()),
                file_part(&big),
                field("envName", "dev"),
            ],
        )),
        2,
        "open token, renamed after the file",
    );
    assert_eq!(counted(&edge, "environment_not_allowed"), 3);
    assert_eq!(counted(&edge, "ambiguous_environment"), 4);
    // The upload renamed after its file counted as allowed when its head went through.
    assert_eq!(edge.tb.counter("pat_edge.requests.allowed"), Some(6));
    edge.assert_clean(&[t, open.value()]);
}

#[test]
fn a_list_changed_by_a_delta_takes_effect() {
    let edge = edge().build();
    let mut token = Minted::new(1, "alice", SCOPE).in_envs(&["prod"]);
    let v1 = snapshot_built(&edge.key, Stamp::lasting(1, START, LIFETIME), &[&token]);
    edge.push(0, v1.bytes.clone());
    edge.tick();
    for vm in 0..2 {
        allowed(
            &edge.get(vm, &format!("{STOPENV}?envName=prod"), token.value()),
            1,
            "v1 prod",
        );
        denied(
            &edge,
            &edge.get(vm, &format!("{STOPENV}?envName=dev"), token.value()),
            "environment_not_allowed",
            "v1 dev",
        );
    }
    // Edited: now only dev.
    token = token.in_envs(&["dev"]);
    let d2 = delta(&edge.key, (1, &v1), 2, &[&token], &[]);
    let reply = edge.push(0, d2.bytes.clone());
    assert_eq!(reply.local_response().expect("answered").status, 200);
    edge.tick();
    for vm in 0..2 {
        allowed(
            &edge.get(vm, &format!("{STOPENV}?envName=dev"), token.value()),
            1,
            "v2 dev",
        );
        denied(
            &edge,
            &edge.get(vm, &format!("{STOPENV}?envName=prod"), token.value()),
            "environment_not_allowed",
            "v2 prod",
        );
        denied(
            &edge,
            &edge.get(vm, GETENVS, token.value()),
            "not_an_environment_method",
            "v2 GetEnvs",
        );
    }
    // The list lifted: any environment, any method of the scope.
    token.envs = None;
    let d3 = delta(&edge.key, (2, &d2), 3, &[&token], &[]);
    let reply = edge.push(0, d3.bytes);
    assert_eq!(reply.local_response().expect("answered").status, 200);
    edge.tick();
    for vm in 0..2 {
        allowed(
            &edge.get(vm, &format!("{STOPENV}?envName=prod"), token.value()),
            1,
            "v3 prod",
        );
        allowed(&edge.get(vm, GETENVS, token.value()), 1, "v3 GetEnvs");
        allowed(&edge.get(vm, STOPENV, token.value()), 1, "v3 no envName");
    }
    edge.assert_clean(&[token.value()]);
}

#[test]
fn the_code_is_configurable() {
    let edge = edge()
        .public(r#""deny":{"codes":{"environment":7040}}"#)
        .build();
    let token = Minted::new(1, "alice", SCOPE).in_envs(&["prod"]);
    edge.publish(0, 1, &[&token]);
    edge.tick();
    assert_denied(
        &edge,
        &edge.get(1, &format!("{STOPENV}?envName=dev"), token.value()),
        "environment_not_allowed",
        7040,
    );
}
