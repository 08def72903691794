//! Shared data dies with Envoy. A restarted edge gets the current snapshot from the origin
//! (`pat-admin serve`) by itself: valid tokens work again without anyone publishing.

use std::time::Duration;

use pat_e2e::{Client, Stack, within};

#[test]
fn after_a_restart_tokens_work_again_from_the_origin() {
    let mut stack = Stack::start();
    let (_, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let url = stack.url(&format!(
        "/1.0/environment/control/rest/stopenv?session={token}"
    ));
    assert!(client.get(&url, &[]).is_ok());

    stack.kill_envoy();
    stack.start_envoy();
    // No publish: the edge fetches from the origin at start.
    let took = within(Duration::from_secs(10), || client.get(&url, &[]).is_ok())
        .expect("the token works again");
    println!("serving again {took:?} after Envoy was ready");
    for _ in 0..16 {
        assert!(client.get(&url, &[]).is_ok(), "on every worker");
    }
    let stats = stack.stats();
    assert!(
        stats.contains("wasmcustom.pat_edge.origin.fetched: 1"),
        "{stats}"
    );
}
