//! `serve`: the latest full snapshot and the deltas after it (`GET /snapshot`, a bundle) and
//! the latest document's signed head, read-only, with conditional requests and the caching
//! headers an HTTP cache in front of the origin needs; a change made by another process is
//! served at once. (Catch-ups, `?since=`, have their own suite: `origin_since.rs`.)

mod support;

use pat_core::snapshot::{BODY_OFFSET, Kind, bundle, verify_head};
use support::*;

#[test]
fn serves_the_latest_state_and_its_head() {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    let serve = admin.serve();
    for path in ["/snapshot", "/snapshot/head", "/snapshot?since=3"] {
        let reply = serve.get(path, None);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
        assert_eq!(reply.header("cache-control"), Some("no-store"), "{path}");
        assert!(
            reply.json()["error"]
                .as_str()
                .expect("text")
                .contains("nothing has been published yet"),
            "{path}"
        );
    }

    // A change signs and stores the first document by itself (no edge, no publish): a
    // full snapshot, served as a bundle of one.
    let (_, first) = admin.token("alice", &["--api", "ide-plugins"]);
    let reply = serve.get("/snapshot", None);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/octet-stream")
    );
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    assert_eq!(reply.header("x-pat-snapshot-version"), Some("1"));
    let tag = reply.etag.clone().expect("an etag");
    assert!(tag.starts_with("\"full-1-1-"), "{tag}");
    assert!(bundle::is_bundle(&reply.body));
    let served = Served::from_bundle(reply.body, &key);
    assert_eq!(served.documents, [(1, Kind::Full)]);
    assert!(
        served
            .find(&pat_core::token::TokenHash::of(&first))
            .is_some()
    );

    // The head: exactly the latest document's signed first BODY_OFFSET bytes, verifiable
    // alone; a cache may answer polls with it for a second.
    let head = serve.get("/snapshot/head", None);
    assert_eq!(head.status, 200);
    assert_eq!(head.body.len(), BODY_OFFSET);
    assert_eq!(head.body, served.last_head);
    assert_eq!(head.header("cache-control"), Some("max-age=1"));
    assert_eq!(head.header("x-pat-snapshot-version"), Some("1"));
    let header = verify_head(&head.body, &trusted(&key)).expect("signed");
    assert_eq!(header.version, 1);
    let head_tag = head.etag.clone().expect("an etag");
    let again = serve.get("/snapshot/head", Some(&head_tag));
    assert_eq!(
        (again.status, again.body.len()),
        (304, 0),
        "head not modified"
    );
    assert_eq!(again.etag.as_deref(), Some(head_tag.as_str()));

    let again = serve.get("/snapshot", Some(&tag));
    assert_eq!((again.status, again.body.len()), (304, 0), "not modified");
    assert_eq!(again.header("x-pat-snapshot-version"), Some("1"));

    // publish with nothing changed pushes the same document: still not modified.
    admin.run(&["publish"]).ok();
    assert_eq!(serve.get("/snapshot", Some(&tag)).status, 304);

    // The next change is a delta: the full answer is the full snapshot and the delta.
    let (_, second) = admin.token("alice", &["--api", "marketplace"]);
    let reply = serve.get("/snapshot", Some(&tag));
    assert_eq!(
        reply.status, 200,
        "a new version for the same conditional request"
    );
    let new_tag = reply.etag.clone().expect("etag");
    assert!(new_tag.starts_with("\"full-1-2-"), "{new_tag}");
    assert_eq!(reply.header("x-pat-snapshot-version"), Some("2"));
    let served = Served::from_bundle(reply.body, &key);
    assert_eq!(served.documents, [(1, Kind::Full), (2, Kind::Delta)]);
    assert_eq!(served.token_count(), 2);
    for value in [&first, &second] {
        assert!(
            served
                .find(&pat_core::token::TokenHash::of(value))
                .is_some()
        );
    }
    let head = serve.get("/snapshot/head", Some(&head_tag));
    assert_eq!(head.status, 200, "the head moved");
    assert_eq!(head.body, served.last_head, "the delta's head");

    assert_eq!(serve.get("/other", None).status, 404);
    let put = http_request(
        serve.port,
        "PUT",
        "/snapshot",
        "Content-Length: 1\r\n",
        b"x",
    );
    assert_eq!(put.status, 405, "read-only");
}
