//! `envoy-platform.yaml` is `envoy.yaml` but for the token API's route: the two files may
//! differ only in their header comment and in the route block that sends token methods to
//! `pat_api`, so a fix to one (a listener setting, a cluster, the filter's configuration)
//! cannot be forgotten in the other. Both files start a real Envoy in the end-to-end tests.
//!
//! `deploy/envoy-remote.yaml` is `envoy.yaml` but for its header comment and its two `code:`
//! blocks, which fetch the module from the origin by its hash (`tests/remote_module.rs` runs
//! it).

use pat_e2e::root;

/// The lines of `file` outside its header comment and the token API's route block (from the
/// comment that introduces the route to the Access Tokens page's route).
fn body(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(file)).expect(file);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a body");
    let route = lines
        .iter()
        .position(|l| l.contains("# The platform's token methods") || l.contains("# PLATFORM MODE"))
        .expect("the token API's route");
    let page = lines
        .iter()
        .position(|l| l.contains("# The Access Tokens page"))
        .expect("the page's route");
    assert!(start < route && route < page, "{file}: unexpected layout");
    lines[start..route]
        .iter()
        .chain(&lines[page..])
        .map(|l| l.to_string())
        .collect()
}

#[test]
fn the_platform_variant_differs_only_in_the_token_route() {
    let standalone = body("envoy.yaml");
    let platform = body("envoy-platform.yaml");
    for (n, (a, b)) in standalone.iter().zip(&platform).enumerate() {
        assert_eq!(a, b, "line {n} of the shared part differs");
    }
    assert_eq!(standalone.len(), platform.len());
}

#[test]
fn the_platform_variant_routes_exactly_the_token_methods_to_pat_api() {
    let text = std::fs::read_to_string(root().join("envoy-platform.yaml")).expect("file");
    let mut routed: Vec<String> = text
        .lines()
        .filter_map(|l| {
            l.split("path: \"/1.0/users/authentication/rest/")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .map(str::to_string)
        })
        .collect();
    routed.sort();
    assert_eq!(
        routed,
        [
            "createtoken",
            "deletetokens",
            "edittoken",
            "gettokenapilist",
            "gettokens",
            "gettokentemplates",
            "regeneratetoken"
        ]
    );
    assert!(!text.contains("prefix: \"/1.0/users/authentication/rest/\""));
}

/// `file` without its header comment and with every `code:` block (the line and the lines
/// indented deeper below it) replaced by a `code:` line alone; the blocks, separately.
fn without_code(file: &str) -> (Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(root().join(file)).expect(file);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| !l.starts_with('#') && !l.is_empty())
        .expect("a body");
    let indent = |l: &str| l.len() - l.trim_start().len();
    let (mut rest, mut blocks) = (Vec::new(), Vec::new());
    let mut i = start;
    while i < lines.len() {
        let line = lines[i];
        if line.trim_start() == "code:" {
            let depth = indent(line);
            let mut block = String::new();
            i += 1;
            while i < lines.len() && (lines[i].trim().is_empty() || indent(lines[i]) > depth) {
                block.push_str(lines[i].trim());
                block.push('\n');
                i += 1;
            }
            rest.push(line.to_string());
            blocks.push(block);
            continue;
        }
        rest.push(line.to_string());
        i += 1;
    }
    (rest, blocks)
}

#[test]
fn the_remote_variant_differs_only_in_where_the_code_comes_from() {
    let (local, local_code) = without_code("envoy.yaml");
    let (remote, remote_code) = without_code("deploy/envoy-remote.yaml");
    for (n, (a, b)) in local.iter().zip(&remote).enumerate() {
        assert_eq!(a, b, "line {n} outside the code blocks differs");
    }
    assert_eq!(local.len(), remote.len());
    assert_eq!(local_code.len(), 2, "the public and the control filter");
    for block in &local_code {
        assert_eq!(
            block,
            "local: { filename: target/wasm32-wasip1/release/pat_plugin.wasm }\n"
        );
    }
    // Both filters fetch the same module through the origin's cluster, by its hash, pinned to
    // it, with retries; nothing else.
    assert_eq!(remote_code.len(), 2);
    assert_eq!(remote_code[0], remote_code[1]);
    let fields: Vec<&str> = remote_code[0]
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect();
    assert_eq!(
        fields,
        [
            "remote:",
            "http_uri:",
            "uri: http://pat-origin/module/sha256/${MODULE_SHA256}/plugin.wasm",
            "cluster: pat_origin",
            "timeout: 30s",
            "sha256: \"${MODULE_SHA256}\"",
            "retry_policy:",
            "retry_back_off: { base_interval: 1s, max_interval: 8s }",
            "num_retries: 5",
        ]
    );
}
