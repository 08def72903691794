//! `POST /usage` on `serve --listen`: an edge's signed usage report is merged into "last
//! used" idempotently — `last_used_at` only moves forward, the address goes with the newest
//! use, unknown or removed tokens are ignored, a replay changes nothing — and refused
//! otherwise without changing anything: a key that is not registered (or was removed) or a
//! bad signature 403, a malformed report 400, one sent more than 10 minutes ago or more than
//! a minute in the future 400, a body over the bound 413.

mod support;

use std::net::IpAddr;

use pat_core::keys::SigningKey;
use pat_core::report::{self, Use};
use support::*;

fn use_of(id: i64, at: u64, ip: &str) -> Use {
    Use {
        token_id: id as u64,
        last_used: at,
        address: Some(ip.parse::<IpAddr>().expect("ip")),
    }
}

/// `(last_used_at, last_used_ip)` of token `id`, as `list --json` shows them.
fn last_used(admin: &Admin, id: i64) -> (serde_json::Value, serde_json::Value) {
    let token = admin
        .tokens("alice")
        .into_iter()
        .find(|t| t["id"] == id)
        .expect("listed");
    (token["last_used_at"].clone(), token["last_used_ip"].clone())
}

fn rfc3339(unix: u64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .expect("instant")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format")
}

#[test]
fn reports_are_merged_forward_only_and_replays_change_nothing() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    let (a, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let (b, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let (_, edge) = admin.edge_key("edge-1");
    let (_, other_edge) = admin.edge_key("edge-2");
    let serve = admin.serve();
    let now = now_ms() / 1000;

    let report = report::sign(
        &[
            use_of(a, now - 100, "203.0.113.9"),
            use_of(b, now - 50, "2001:db8::1"),
            use_of(999_999, now, "203.0.113.9"),
        ],
        now_ms(),
        &edge,
    );
    let reply = serve.post("/usage", &report);
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let json = reply.json();
    assert_eq!(
        (
            &json["result"],
            &json["edge"],
            &json["uses"],
            &json["updated"]
        ),
        (&0.into(), &"edge-1".into(), &3.into(), &2.into()),
        "the unknown token is ignored: {json}"
    );
    assert_eq!(
        last_used(&admin, a),
        (rfc3339(now - 100).into(), "203.0.113.9".into())
    );
    assert_eq!(
        last_used(&admin, b),
        (rfc3339(now - 50).into(), "2001:db8::1".into())
    );

    // The same report again: nothing moves.
    let again = serve.post("/usage", &report);
    assert_eq!((again.status, &again.json()["updated"]), (200, &0.into()));

    // Another edge saw an older use of a and a newer one of b: only b moves, with its
    // address.
    let older_and_newer = report::sign(
        &[
            use_of(a, now - 500, "198.51.100.1"),
            use_of(b, now - 10, "198.51.100.2"),
        ],
        now_ms(),
        &other_edge,
    );
    assert_eq!(serve.post("/usage", &older_and_newer).json()["updated"], 1);
    assert_eq!(
        last_used(&admin, a),
        (rfc3339(now - 100).into(), "203.0.113.9".into()),
        "never moves back"
    );
    assert_eq!(
        last_used(&admin, b),
        (rfc3339(now - 10).into(), "198.51.100.2".into())
    );

    // A use an edge dates in the future (its clock is ahead) counts as now.
    let ahead = report::sign(&[use_of(a, now + 30, "203.0.113.9")], now_ms(), &edge);
    assert_eq!(serve.post("/usage", &ahead).status, 200);
    let (at, _) = last_used(&admin, a);
    let at = time::OffsetDateTime::parse(
        at.as_str().expect("text"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339")
    .unix_timestamp() as u64;
    assert!(at <= now_ms() / 1000 && at >= now, "{at}");

    // No address known: kept as none.
    let (c, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let no_address = report::sign(
        &[Use {
            token_id: c as u64,
            last_used: now,
            address: None,
        }],
        now_ms(),
        &edge,
    );
    assert_eq!(serve.post("/usage", &no_address).status, 200);
    assert_eq!(
        last_used(&admin, c),
        (rfc3339(now).into(), serde_json::Value::Null)
    );

    // The edge key records the report.
    let keys = admin.run(&["--json", "edge", "key", "list"]).json();
    assert!(keys[0]["last_report_at"].is_string(), "{keys}");
    // Reports are no token change: no new document.
    let versions = admin.run(&["--json", "config", "show"]).json()["last_version"].clone();
    assert_eq!(versions, 3);
}

#[test]
fn refused_reports_change_nothing() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    let (a, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let (id, edge) = admin.edge_key("edge-1");
    let serve = admin.serve();
    let now = now_ms() / 1000;
    let uses = [use_of(a, now, "203.0.113.9")];
    let refused = |body: &[u8], status: u16, says: &str| {
        let reply = serve.post("/usage", body);
        assert_eq!(
            reply.status,
            status,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let json = reply.json();
        assert_eq!(json["source"], "pat-admin");
        let error = json["error"].as_str().expect("error").to_string();
        assert!(error.contains(says), "{error}");
        assert_eq!(last_used(&admin, a).0, serde_json::Value::Null, "{says}");
    };

    // Not registered.
    let stranger = SigningKey::generate().expect("rng");
    refused(
        &report::sign(&uses, now_ms(), &stranger),
        403,
        "not a registered edge key",
    );
    // Forged: altered after signing.
    let mut forged = report::sign(&uses, now_ms(), &edge);
    forged[30] ^= 1;
    refused(&forged, 403, "does not verify");
    // Malformed.
    refused(b"not a report", 400, "not a well-formed usage report");
    refused(b"", 400, "not a well-formed usage report");
    // Stale or from the future.
    refused(
        &report::sign(&uses, now_ms() - 11 * 60 * 1000, &edge),
        400,
        "refused as a replay",
    );
    refused(
        &report::sign(&uses, now_ms() + 2 * 60 * 1000, &edge),
        400,
        "in the future",
    );
    // Too large: refused on its announced length.
    let huge = http_request(
        serve.port,
        "POST",
        "/usage",
        "Content-Type: application/octet-stream\r\nContent-Length: 600000\r\n",
        &[],
    );
    assert_eq!(huge.status, 413);
    // Only POST.
    assert_eq!(serve.get("/usage", None).status, 405);

    // A removed key's reports are refused from then on.
    let good = report::sign(&uses, now_ms(), &edge);
    admin.run(&["edge", "key", "remove", &id]).ok();
    refused(&good, 403, "not a registered edge key");
}
