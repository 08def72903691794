//! Compaction: when the chain of deltas since the latest full snapshot is long (more than
//! 256 deltas), large (more than an eighth of the full snapshot, and 64 KiB), or the full
//! snapshot is older than a quarter of the lifetime, `serve` (in the background) or
//! `publish` (after its push) stores a full snapshot of the latest delta's state at that
//! delta's version: the same state id, so the chain goes on from it. Edges that start from
//! nothing then get it alone; older documents are pruned to what a catch-up can still use.
//! Nothing is compacted when nothing is due.

mod support;

use std::time::{Duration, Instant};

use pat_admin::snapshot;
use pat_admin::store::tokens;
use pat_core::snapshot::Kind;
use pat_core::token::TokenHash;
use support::*;

/// `count` token changes of `per_change` new tokens each, each change in its own
/// transaction with its own delta when a key is active (as `generate` makes them, without
/// the password hashing that makes the real command slow).
fn changes(admin: &Admin, count: usize, per_change: usize) -> Vec<String> {
    let mut store = admin.open();
    let dir = admin.location();
    let mut values = Vec::new();
    for i in 0..count {
        let batch: Vec<String> = (0..per_change)
            .map(|j| format!("compaction-{i}-{j}-{}", now_ms()))
            .collect();
        store
            .write(|tx| {
                for value in &batch {
                    tokens::insert(
                        tx,
                        &tokens::Token {
                            id: 0,
                            user: "alice".into(),
                            description: "chain".into(),
                            hash: TokenHash::of(value),
                            scope_set: None,
                            methods: vec!["environment.control.stopenv".into()],
                            created_at: tx.now(),
                            expires_at: None,
                            regenerated_at: None,
                            last_used_at: None,
                            last_used_ip: None,
                            networks: Vec::new(),
                            old_value: None,
                            suspended: false,
                            envs: None,
                            rate_limit: None,
                        },
                    )?;
                }
                snapshot::after_change(tx, &dir).map(|built| {
                    if let Some(built) = built {
                        assert_eq!(built.stamp.kind, Kind::Delta, "each change is a delta");
                    }
                })
            })
            .expect("change");
        values.extend(batch);
    }
    values
}

fn documents(admin: &Admin) -> Vec<(u64, String)> {
    let db = admin.db();
    let mut stmt = db
        .prepare("SELECT version, kind FROM snapshots ORDER BY version, kind DESC")
        .expect("query");
    stmt.query_map([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

fn compactions(admin: &Admin) -> Vec<String> {
    admin
        .audit()
        .iter()
        .filter(|e| e["action"] == "snapshot.compact")
        .map(|e| e["detail"].as_str().expect("detail").to_string())
        .collect()
}

#[test]
fn publish_compacts_a_long_chain_at_its_latest_version() {
    let admin = Admin::new();
    admin.user("alice");
    // A full snapshot of 25,000 tokens (about 1 MB: its eighth is more than 257 small
    // deltas, so only their number counts here).
    let mut values = changes(&admin, 1, 25_000);
    let key = admin.key();
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    assert_eq!(
        (
            &run.json()["version"],
            &run.json()["kind"],
            &run.json()["tokens"]
        ),
        (&1.into(), &"full".into(), &25_000.into())
    );
    values.extend(changes(&admin, 256, 1));
    // 256 deltas: not compacted.
    admin.run(&["publish"]).ok();
    assert!(compactions(&admin).is_empty());
    values.extend(changes(&admin, 1, 1));
    let before = Served::from_bundle(admin.stored_bundle(), &key);
    assert_eq!(
        before.documents.len(),
        258,
        "a full snapshot and 257 deltas"
    );
    assert_eq!(before.version(), 258);

    // 257 are.
    let run = admin.run(&["--json", "publish"]);
    run.ok();
    assert_eq!(
        (
            &run.json()["version"],
            &run.json()["kind"],
            &run.json()["built"]
        ),
        (&258.into(), &"delta".into(), &false.into()),
        "the latest document is pushed as it is"
    );
    let detail = compactions(&admin);
    assert_eq!(detail.len(), 1, "{detail:?}");
    assert!(
        detail[0].contains("version 258") && detail[0].contains("257 deltas since"),
        "{detail:?}"
    );

    // Edges that start from nothing get the compaction alone: the same state.
    let serve = admin.serve();
    let after = serve.snapshot(&key);
    assert_eq!(after.documents, [(258, Kind::Full)]);
    assert_eq!(
        after.header().state_id,
        before.header().state_id,
        "the chain goes on"
    );
    assert_eq!(after.hashes(), before.hashes());
    assert_eq!(after.token_count(), 25_257);
    for value in &values {
        assert!(after.find(&TokenHash::of(value)).is_some());
    }
    // The head still names the delta edges were pushed.
    assert_eq!(serve.head(&key).0.kind, Kind::Delta);

    // Pruned: no older full snapshot; the deltas a catch-up can still use (smaller together
    // than the full snapshot) stay.
    let docs = documents(&admin);
    assert_eq!(
        docs.iter().filter(|(_, k)| k == "full").count(),
        1,
        "only the compaction is kept of the full snapshots"
    );
    let (kept, full_len): (i64, i64) = admin
        .db()
        .query_row(
            "SELECT (SELECT coalesce(sum(len), 0) FROM snapshots WHERE kind = 'delta'),
                    (SELECT len FROM snapshots WHERE kind = 'full')",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("sizes");
    assert!(
        kept < full_len,
        "{kept} bytes of deltas kept, the full is {full_len}"
    );
    // Here all 257 deltas are far smaller than the 1 MB full snapshot: all kept, and an
    // edge still at version 1 catches up with them rather than with the full snapshot.
    let deltas: Vec<u64> = docs
        .iter()
        .filter(|(_, k)| k == "delta")
        .map(|(v, _)| *v)
        .collect();
    assert_eq!(deltas, (2..=258).collect::<Vec<_>>());
    let since = serve.get("/snapshot?since=1", None);
    assert!(
        since
            .etag
            .as_deref()
            .expect("tag")
            .starts_with("\"since-1-258-"),
        "{:?}",
        since.etag
    );
    assert!(since.body.len() < usize::try_from(full_len).expect("len"));
    let full = serve.get("/snapshot?since=0", None);
    assert!(
        full.etag
            .as_deref()
            .expect("tag")
            .starts_with("\"full-258-258-")
    );

    // Compacted: nothing more to do.
    admin.run(&["publish"]).ok();
    assert_eq!(compactions(&admin).len(), 1);
}

#[test]
fn serve_compacts_a_large_chain_in_the_background() {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    admin.token("alice", &["--method", "environment.Control.StopEnv"]);
    // One change of 2,000 tokens: a delta of about 80 KB on a full snapshot of one.
    changes(&admin, 1, 2_000);
    let serve = admin.serve();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !serve.log().contains("compacted version 2") {
        assert!(Instant::now() < deadline, "not compacted: {}", serve.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        serve
            .log()
            .contains("bytes of deltas since the full snapshot"),
        "{}",
        serve.log()
    );
    let served = serve.snapshot(&key);
    assert_eq!(served.documents, [(2, Kind::Full)]);
    assert_eq!(served.token_count(), 2_001);
    assert_eq!(compactions(&admin).len(), 1);
}

#[test]
fn serve_compacts_when_the_full_snapshot_is_a_quarter_of_its_lifetime_old() {
    let admin = Admin::new();
    admin.user("alice");
    let key = admin.key();
    admin.token("alice", &["--api", "ide-plugins"]);
    admin.token("alice", &["--api", "ide-plugins"]);
    let serve = admin.serve();
    // Five hours on (default lifetime 24 h: a quarter is 6 h), a change: a fresh delta on a
    // full snapshot not yet a quarter of its lifetime old, a short chain of small deltas:
    // nothing to do.
    admin.advance(5 * 3600);
    admin.token("alice", &["--api", "ide-plugins"]);
    serve.wait_checks(2);
    assert!(!serve.log().contains("compacted"), "{}", serve.log());
    assert!(
        !serve.log().contains("signed snapshot version"),
        "{}",
        serve.log()
    );
    assert_eq!(
        serve.snapshot(&key).documents,
        [(1, Kind::Full), (2, Kind::Delta), (3, Kind::Delta)]
    );

    // Two hours later the full snapshot is 7 hours old while the latest delta is only 2:
    // the full answer an edge that starts from nothing gets must stay fresh enough to be a
    // base, so it is compacted (and the delta is not re-signed).
    admin.advance(2 * 3600);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !serve.log().contains("compacted version 3") {
        assert!(Instant::now() < deadline, "not compacted: {}", serve.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(serve.log().contains("a quarter of its"), "{}", serve.log());
    assert!(
        !serve.log().contains("signed snapshot version"),
        "{}",
        serve.log()
    );
    let served = serve.snapshot(&key);
    assert_eq!(served.documents, [(3, Kind::Full)]);
    assert_eq!(served.token_count(), 3);
    let age = admin.now() - served.header().issued_at;
    assert!(age < 30, "the compaction is fresh: {age} s old");
}
