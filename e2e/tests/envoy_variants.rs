//! `envoy-platform.yaml` is `envoy.yaml` but for the token API's route: the two files may
//! differ only in their header comment and in the route block that sends token methods to
//! `pat_api`, so a fix to one (a listener setting, a cluster, the filter's configuration)
//! cannot be forgotten in the other. Both files start a real Envoy in the end-to-end tests.

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
