//! The Kubernetes manifests in `deploy/` (Istio's WasmPlugin and its gateway, Envoy Gateway's
//! EnvoyExtensionPolicy, EnvoyProxy and EnvoyPatchPolicy, the origin's Deployment and Service)
//! are checked by `deploy/check.py`: against the published CRDs' OpenAPI schemas vendored in
//! `deploy/schemas/` and the Kubernetes 1.37 schemas (strict), the CRDs' CEL rules that apply,
//! and pat-edge's own rules (fail closed, pinned by sha256, keys from a Secret through the
//! environment, never inline). Each kind of check is shown to bite on a broken copy. The
//! filter's configuration in them (`pluginConfig`, `config`) is parsed by the filter's own
//! parser with exactly the environment variables the manifest passes to the VM.
//!
//! Needs the checkers in the project's Python (`scripts/test`: `ensure_deploy_checkers`).

use std::path::Path;
use std::process::{Command, Output};

use pat_core::keys::SigningKey;
use pat_e2e::{python, root};
use pat_plugin::config::{Config, ConfigError};
use serde_json::Value;

fn check(dir: &Path, args: &[&str]) -> Output {
    Command::new(python())
        .arg(root().join("deploy/check.py"))
        .args(args)
        .arg(dir)
        .output()
        .expect("deploy/check.py runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A copy of `deploy/` with `from` replaced by `to` (once, and it must be there) in `file`.
fn broken_copy(file: &str, from: &str, to: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    copy_tree(&root().join("deploy"), dir.path());
    let path = dir.path().join(file);
    let original = std::fs::read_to_string(&path).expect(file);
    assert_eq!(original.matches(from).count(), 1, "{file}: `{from}`");
    std::fs::write(&path, original.replace(from, to)).expect("write");
    dir
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn the_manifests_validate_against_the_published_schemas() {
    let deploy = root().join("deploy");
    let out = check(&deploy, &["--fill"]);
    let report = text(&out.stderr);
    println!("{report}");
    assert!(out.status.success(), "{report}");
    assert!(report.contains("10 manifests (2 Deployment, 1 EnvoyExtensionPolicy, 1 EnvoyPatchPolicy, 1 EnvoyProxy, 1 Namespace, 1 PersistentVolumeClaim, 2 Service, 1 WasmPlugin)"), "{report}");
    assert!(report.contains("; 0 problems"), "{report}");
    // The files are templates: unfilled, the digests are not digests.
    let unfilled = check(&deploy, &[]);
    assert!(!unfilled.status.success());
    assert!(text(&unfilled.stderr).contains("a placeholder is left"));
}

#[test]
fn the_checks_refuse_what_an_api_server_or_a_reviewer_would() {
    let cases: [(&str, &str, &str, &str); 14] = [
        // The CRDs' schemas: enums, patterns, unknown fields, types.
        (
            "istio/wasmplugin.yaml",
            "phase: AUTHN",
            "phase: AUTHENTICATION",
            "'AUTHENTICATION' is not one of",
        ),
        (
            "istio/wasmplugin.yaml",
            "sha256: \"${IMAGE_DIGEST}\"",
            "sha256: \"sha256:${IMAGE_DIGEST}\"",
            "does not match '(^$|^[a-f0-9]{64}$)'",
        ),
        (
            "istio/wasmplugin.yaml",
            "  vmConfig:\n",
            "  vmconfig:\n",
            "('vmconfig' was unexpected)",
        ),
        (
            "envoy-gateway/envoyextensionpolicy.yaml",
            "    failOpen: false\n",
            "    failOpen: \"no\"\n",
            "'no' is not of type 'boolean'",
        ),
        // The CRDs' CEL rules, translated.
        (
            "envoy-gateway/envoyextensionpolicy.yaml",
            "      type: Image\n",
            "      type: HTTP\n",
            "If type is HTTP, http field needs to be set.",
        ),
        (
            "istio/wasmplugin.yaml",
            "    - name: PAT_EDGE_KEY\n      valueFrom: HOST\n",
            "    - name: PAT_EDGE_KEY\n      valueFrom: HOST\n      value: x\n",
            "value may only be set when valueFrom is INLINE",
        ),
        // Kubernetes' own schemas.
        (
            "origin/origin.yaml",
            "  replicas: 1\n",
            "  replicas: one\n",
            "Kubernetes 1.37.0 schema: spec.replicas",
        ),
        // pat-edge's rules: fail closed, pinned, keys from the Secret, never inline.
        (
            "istio/wasmplugin.yaml",
            "failStrategy: FAIL_CLOSE",
            "failStrategy: FAIL_OPEN",
            "failStrategy must be FAIL_CLOSE",
        ),
        (
            "envoy-gateway/envoyextensionpolicy.yaml",
            "    failOpen: false\n",
            "    failOpen: true\n",
            "failOpen: false must be said",
        ),
        (
            "envoy-gateway/envoyextensionpolicy.yaml",
            "url: ${IMAGE}@sha256:${IMAGE_DIGEST}",
            "url: ${IMAGE}:latest",
            "must pin the same digest as sha256",
        ),
        (
            "istio/wasmplugin.yaml",
            "    strip_token: true\n",
            "    strip_token: true\n    public_keys: [\"ed25519:11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"]\n",
            "must not set public_keys",
        ),
        // The origin's full answer fits what Envoy takes from a filter's HTTP call.
        (
            "envoy-gateway/envoyproxy.yaml",
            "      value: 268435456\n",
            "      value: 1048576\n",
            "must set http.async_response_buffer_limit to at least 67108864",
        ),
        (
            "istio/gateway.yaml",
            "            http.async_response_buffer_limit: \"268435456\"\n",
            "",
            "must set http.async_response_buffer_limit to at least 67108864",
        ),
        (
            "envoy-gateway/envoyproxy.yaml",
            "                name: pat-edge-keys\n                key: PAT_EDGE_KEY\n",
            "                name: other\n                key: PAT_EDGE_KEY\n",
            "env PAT_EDGE_KEY: must come from secretKeyRef",
        ),
    ];
    for (file, from, to, expected) in cases {
        let dir = broken_copy(file, from, to);
        let out = check(dir.path(), &["--fill"]);
        let report = text(&out.stderr);
        assert!(!out.status.success(), "{file}: `{to}` passed:\n{report}");
        assert!(
            report.contains(expected),
            "{file}: `{to}`: no `{expected}` in:\n{report}"
        );
    }
    // A CEL rule the checker has no translation for is a failure, not a pass.
    let dir = broken_copy(
        "envoy-gateway/envoyproxy.yaml",
        "        container:\n",
        "        container:\n          image: envoyproxy/envoy:v1.36.0\n          imageRepository: envoyproxy/envoy\n",
    );
    let report = text(&check(dir.path(), &["--fill"]).stderr);
    assert!(
        report.contains("!has(self.image) || !has(self.imageRepository)"),
        "{report}"
    );
}

#[test]
fn the_plugin_configuration_is_the_filters_own_with_the_keys_from_the_environment() {
    let out = check(&root().join("deploy"), &["--fill", "--plugin-configs"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plugins: Vec<Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    let kinds: Vec<&str> = plugins
        .iter()
        .map(|p| p["kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, ["EnvoyExtensionPolicy", "WasmPlugin"]);

    let signing = SigningKey::generate().expect("rng");
    let public = signing.public_key().to_string();
    let edge = SigningKey::generate().expect("rng");
    let edge_secret = edge.to_secret_text().to_string();
    for plugin in &plugins {
        let file = plugin["file"].as_str().expect("file");
        let passed: Vec<&str> = plugin["env"]
            .as_array()
            .expect("env")
            .iter()
            .map(|v| v.as_str().expect("a name"))
            .collect();
        // The VM sees exactly what the manifest passes it from the host.
        let env = |name: &str| -> Option<String> {
            if !passed.contains(&name) {
                return None;
            }
            match name {
                "PAT_PUBLIC_KEYS" => Some(public.clone()),
                "PAT_EDGE_KEY" => Some(edge_secret.clone()),
                _ => None,
            }
        };
        let json = serde_json::to_vec(&plugin["config"]).expect("JSON");
        let config = Config::parse(&json, env).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(config.keys.len(), 1, "{file}: the key from PAT_PUBLIC_KEYS");
        assert!(
            config.push.is_none(),
            "{file}: no push endpoint on a fleet edge"
        );
        let origin = config.origin.as_ref().expect("pulls from the origin");
        let usage = config
            .usage
            .as_ref()
            .expect("reports usage: PAT_EDGE_KEY reached the VM");
        assert_eq!(origin.cluster, usage.config.cluster, "{file}");
        assert_eq!(
            usage.key.public_key().to_string(),
            edge.public_key().to_string(),
            "{file}: the edge key from the environment signs the reports"
        );
        assert!(config.strip_token, "{file}");
        // Without the keys in the environment the filter refuses to start (fail closed).
        let refused = Config::parse(&json, |_| None).expect_err("no keys");
        assert!(
            matches!(refused, ConfigError::NoKeys(_)),
            "{file}: {refused}"
        );
    }
}
