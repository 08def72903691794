//! `GET /snapshot?since=V`: an edge that holds version V gets the deltas `V+1..=latest`
//! (when the store still has them all and they are smaller than the full answer), which
//! applied to its state give exactly the origin's state; the latest version gets an empty
//! bundle; nothing held, a version the origin never had, or a gap the store no longer covers
//! gets the full answer. Every answer names its range in its `ETag`, is revalidated by
//! caches (`no-cache`, `304`), and changes its tag when the latest version moves. A
//! malformed `since` is 400.

mod support;

use pat_core::snapshot::{Kind, bundle};
use support::*;

const SCOPE: &[&str] = &["--api", "ide-plugins"];

/// Ages the latest full snapshot so that the next `publish` compacts the chain.
fn age_full(admin: &Admin) {
    admin
        .db()
        .execute(
            "UPDATE snapshots SET issued_at = issued_at - 7 * 3600 WHERE kind = 'full'",
            [],
        )
        .expect("age");
}

#[test]
fn an_edge_that_holds_a_version_gets_the_deltas_since() {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    let serve = admin.serve();
    admin.token("alice", SCOPE);
    // An edge that fetched version 1.
    let mut edge = serve.snapshot(&key);
    assert_eq!(edge.version(), 1);
    let (second, _) = admin.token("alice", SCOPE);
    admin.token("alice", SCOPE);
    admin
        .confirmed(&["remove", "--user", "alice", &second.to_string()])
        .ok();

    let reply = serve.get("/snapshot?since=1", None);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_eq!(reply.header("x-pat-snapshot-version"), Some("4"));
    let tag = reply.etag.clone().expect("etag");
    assert!(tag.starts_with("\"since-1-4-"), "{tag}");
    let docs = bundle::decode(&reply.body).expect("a bundle").len();
    assert_eq!(docs, 3, "deltas 2, 3 and 4");
    edge.apply(reply.body, &key);
    let full = serve.snapshot(&key);
    assert_eq!(edge.version(), 4);
    assert_eq!(
        edge.hashes(),
        full.hashes(),
        "the same tokens as the full answer"
    );
    assert_eq!(edge.header().state_id, full.header().state_id);
    assert_eq!(edge.last_head, serve.get("/snapshot/head", None).body);

    // Revalidation: not modified while nothing moves; a new answer (and tag) once it does.
    let again = serve.get("/snapshot?since=1", Some(&tag));
    assert_eq!((again.status, again.body.len()), (304, 0));
    assert_eq!(again.etag.as_deref(), Some(tag.as_str()));
    admin.token("alice", SCOPE);
    let moved = serve.get("/snapshot?since=1", Some(&tag));
    assert_eq!(moved.status, 200);
    let moved_tag = moved.etag.clone().expect("etag");
    assert!(moved_tag.starts_with("\"since-1-5-"), "{moved_tag}");
    assert_eq!(moved.header("x-pat-snapshot-version"), Some("5"));

    // The latest version: an empty bundle.
    let current = serve.get("/snapshot?since=5", None);
    assert_eq!(current.status, 200);
    assert_eq!(bundle::decode(&current.body).expect("bundle").len(), 0);
    assert!(
        current
            .etag
            .as_deref()
            .expect("etag")
            .starts_with("\"since-5-5-")
    );
    assert_eq!(current.header("x-pat-snapshot-version"), Some("5"));

    // Nothing held, or a version the origin never had: the full answer.
    for path in ["/snapshot?since=0", "/snapshot?since=99", "/snapshot"] {
        let reply = serve.get(path, None);
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply
                .etag
                .as_deref()
                .expect("etag")
                .starts_with("\"full-1-5-"),
            "{path}: {:?}",
            reply.etag
        );
        let served = Served::from_bundle(reply.body, &key);
        assert_eq!(served.documents.first(), Some(&(1, Kind::Full)), "{path}");
        assert_eq!(served.version(), 5);
    }

    // Malformed: 400, in JSON, and not cached.
    for bad in [
        "since=",
        "since=-1",
        "since=x",
        "since=1&since=2",
        "other=1",
    ] {
        let reply = serve.get(&format!("/snapshot?{bad}"), None);
        assert_eq!(reply.status, 400, "{bad}");
        assert_eq!(reply.header("cache-control"), Some("no-store"));
        assert_eq!(reply.json()["source"], "pat-admin");
        assert!(reply.json()["error"].is_string());
    }
}

#[test]
fn after_a_compaction_lagging_edges_get_what_the_store_still_covers() {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    let serve = admin.serve();
    for _ in 0..5 {
        admin.token("alice", SCOPE);
    }
    // Compaction at version 5 (publish compacts a chain whose full snapshot is old).
    age_full(&admin);
    admin.run(&["publish"]).ok();
    let full = serve.get("/snapshot", None);
    let tag = full.etag.clone().expect("etag");
    assert!(tag.starts_with("\"full-5-5-"), "compacted: {tag}");
    let compacted = Served::from_bundle(full.body, &key);
    assert_eq!(compacted.documents, [(5, Kind::Full)]);
    assert_eq!(compacted.token_count(), 5);

    // Deltas older than the compaction are kept only while they are smaller than it: the
    // last one here, not the rest.
    let kept: Vec<u64> = {
        let db = admin.db();
        let mut stmt = db
            .prepare("SELECT version FROM snapshots WHERE kind = 'delta' ORDER BY version")
            .expect("query");
        stmt.query_map([], |r| r.get::<_, i64>(0))
            .expect("rows")
            .map(|r| r.expect("row") as u64)
            .collect()
    };
    assert_eq!(kept, [5], "older deltas pruned");
    let since_4 = serve.get("/snapshot?since=4", None);
    assert!(
        since_4
            .etag
            .as_deref()
            .expect("etag")
            .starts_with("\"since-4-5-"),
        "{:?}",
        since_4.etag
    );
    assert_eq!(bundle::decode(&since_4.body).expect("bundle").len(), 1);
    // An edge at 2 lags more than the store covers: the full answer.
    let since_2 = serve.get("/snapshot?since=2", None);
    assert!(
        since_2
            .etag
            .as_deref()
            .expect("etag")
            .starts_with("\"full-5-5-"),
        "{:?}",
        since_2.etag
    );
    // The head is still the delta that moved the chain to 5 (what edges were pushed).
    let (header, _) = serve.head(&key);
    assert_eq!((header.version, header.kind), (5, Kind::Delta));

    // The next change goes on from the compaction.
    admin.token("alice", SCOPE);
    let served = serve.snapshot(&key);
    assert_eq!(served.documents, [(5, Kind::Full), (6, Kind::Delta)]);
    assert_eq!(served.token_count(), 6);
}
