//! A configuration the filter cannot use is refused at `on_configure`, with a log line that
//! says what is wrong.

use pat_core::keys::SigningKey;
use pat_testbed::{Plugin, Testbed, wasm_artifact};

fn start(configuration: &str, env_keys: Option<String>) -> Testbed {
    let mut builder =
        Testbed::builder(wasm_artifact("pat_plugin").unwrap_or_else(|e| panic!("{e}")))
            .plugin(Plugin::new("public").configuration(configuration));
    if let Some(keys) = env_keys {
        builder = builder.env("PAT_PUBLIC_KEYS", keys);
    }
    builder.build_allow_failure().expect("the module loads")
}

#[test]
fn refused_configurations_explain_themselves() {
    let key = SigningKey::generate()
        .expect("rng")
        .public_key()
        .to_string();
    let cases = [
        ("{not json", Some(key.clone()), "configuration is not valid"),
        (
            r#"{"strip_tokens":true}"#,
            Some(key.clone()),
            "unknown field `strip_tokens`",
        ),
        ("{}", None, "no trusted public keys"),
        ("{}", Some("ed25519:short".into()), "PAT_PUBLIC_KEYS"),
        (r#"{"public_keys":["nope"]}"#, None, "public_keys[0]"),
        (
            r#"{"deny":{"codes":{"forbidden":0}}}"#,
            Some(key.clone()),
            "deny.codes.forbidden",
        ),
        (
            r#"{"push":{"path":"no-slash"}}"#,
            Some(key.clone()),
            "push.path",
        ),
    ];
    for (configuration, env, expected) in cases {
        let tb = start(configuration, env);
        let failures = tb.startup_failures();
        assert_eq!(failures.len(), 1, "{configuration}: {failures:?}");
        assert_eq!(failures[0].callback, "proxy_on_configure");
        let logged = tb.logs_containing("configuration rejected");
        assert!(
            logged.iter().any(|line| line.contains(expected)),
            "{configuration}: expected a log line mentioning {expected:?}, got {logged:?}"
        );
    }
}

#[test]
fn a_good_configuration_logs_what_it_trusts() {
    let key = SigningKey::generate().expect("rng");
    let tb = start("", Some(key.public_key().to_string()));
    assert!(tb.startup_failures().is_empty());
    let id = key.public_key().id().to_string();
    assert!(
        !tb.logs_containing(&id).is_empty(),
        "the trusted key id is logged"
    );
}
