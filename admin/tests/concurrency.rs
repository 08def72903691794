//! Concurrent `pat-admin` processes lose and corrupt nothing.
//!
//! One account's password is checked once at a time: a change that finds another check of it
//! under way exits 9 at once ("too many attempts … retry in N s"), and a script retries it, as
//! these do.

mod support;

use pat_admin::store::{Store, tokens};
use support::*;

#[test]
fn twenty_parallel_generates_make_twenty_tokens() {
    let admin = Admin::new();
    admin.user("alice");
    let generate = |i: usize| {
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
    };
    let mut running: Vec<_> = (0..20).map(|i| (i, generate(i), 0)).collect();
    let mut ids = Vec::new();
    let mut values = Vec::new();
    while let Some((i, child, tries)) = running.pop() {
        let out = child.wait_with_output().expect("wait");
        if out.status.code() == Some(9) && tries < 200 {
            // Another check of alice's password was under way: nothing was done; retry.
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(stderr.contains("too many attempts"), "{stderr}");
            std::thread::sleep(std::time::Duration::from_millis(20));
            running.insert(0, (i, generate(i), tries + 1));
            continue;
        }
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

    let store = Store::open_as(admin.location(), pat_admin::store::Open::Existing).expect("opens");
    store.check_integrity().expect("intact");
    let listed = tokens::list(store.conn(), "alice").expect("list");
    assert_eq!(listed.len(), 20);
    let mut descriptions: Vec<_> = listed.iter().map(|t| t.description.clone()).collect();
    descriptions.sort();
    descriptions.dedup();
    assert_eq!(descriptions.len(), 20);
}
