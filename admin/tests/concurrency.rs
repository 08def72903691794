//! Concurrent `pat-admin` processes lose and corrupt nothing.

mod support;

use pat_admin::store::{Store, tokens};
use support::*;

#[test]
fn twenty_parallel_generates_make_twenty_tokens() {
    let admin = Admin::new();
    admin.user("alice");
    let children: Vec<_> = (0..20)
        .map(|i| {
            admin.spawn_confirmed(
                &[
                    "--json",
                    "generate",
                    "--user",
                    "alice",
                    "--description",
                    &format!("parallel {i}"),
                    "--api",
                    "ide-plugins",
                ],
                &[],
            )
        })
        .collect();
    let mut ids = Vec::new();
    let mut values = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        ids.push(json["id"].as_i64().expect("id"));
        values.push(json["token"].as_str().expect("token").to_string());
    }
    ids.sort_unstable();
    ids.dedup();
    values.sort();
    values.dedup();
    assert_eq!((ids.len(), values.len()), (20, 20), "20 distinct tokens");

    let store = Store::open_as(&admin.store(), pat_admin::store::Open::Existing).expect("opens");
    store.check_integrity().expect("intact");
    let listed = tokens::list(store.conn(), "alice").expect("list");
    assert_eq!(listed.len(), 20);
    let mut descriptions: Vec<_> = listed.iter().map(|t| t.description.clone()).collect();
    descriptions.sort();
    descriptions.dedup();
    assert_eq!(descriptions.len(), 20);
}
