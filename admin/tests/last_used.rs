//! "Last used", from the edges' usage reports, wherever tokens are shown: `list` (a `LAST
//! USED` column; RFC 3339 in JSON, `null` when never), `show` (with the client address),
//! the API's `GetTokens` (`lastUsed`, `yyyy-MM-dd HH:mm:ss` UTC or `null`), and `list
//! --unused-for 90d` (active tokens not used for that long, a never-used one counted from
//! its creation; exit 8 when there are any, like `--expiring-within`).

mod support;

use pat_core::report::{self, Use};
use support::*;

const DAY: u64 = 86_400;

fn report_use(serve: &Server, key: &pat_core::keys::SigningKey, id: i64, at: u64, ip: &str) {
    let body = report::sign(
        &[Use {
            token_id: id as u64,
            last_used: at,
            address: Some(ip.parse().expect("ip")),
        }],
        now_ms(),
        key,
    );
    assert_eq!(serve.post("/usage", &body).status, 200);
}

#[test]
fn last_used_is_shown_by_list_show_and_get_tokens() {
    let admin = Admin::new();
    admin.user("alice");
    admin.key();
    let (used, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let (never, _) = admin.token("alice", &["--api", "marketplace"]);
    let (_, edge) = admin.edge_key("edge-1");
    let serve = admin.serve_api();
    let at = now_ms() / 1000 - 3_600;
    report_use(&serve, &edge, used, at, "203.0.113.9");
    let when = time::OffsetDateTime::from_unix_timestamp(at as i64).expect("instant");
    let rfc = when
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let api = when
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second]"
        ))
        .expect("format");

    let list = admin.tokens("alice");
    assert_eq!(list[0]["last_used_at"], rfc.as_str());
    assert_eq!(list[0]["last_used_ip"], "203.0.113.9");
    assert_eq!(list[1]["last_used_at"], serde_json::Value::Null);
    let human = admin.run(&["list"]).ok().to_string();
    assert!(
        human.lines().next().expect("header").contains("LAST USED"),
        "{human}"
    );
    let line = |id: i64| {
        human
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .expect("a line")
            .to_string()
    };
    assert!(line(used).contains(&rfc), "{human}");
    assert!(line(never).contains("never"), "{human}");

    let show = admin
        .run(&["show", "--user", "alice", &used.to_string()])
        .ok()
        .to_string();
    assert!(show.contains(&format!("{rfc} from 203.0.113.9")), "{show}");
    let show = admin.run(&["--json", "show", "--user", "alice", &never.to_string()]);
    show.ok();
    assert_eq!(show.json()["last_used_at"], serde_json::Value::Null);

    // The platform's GetTokens.
    let session = serve.sign_in("alice");
    let tokens = serve.api("GetTokens", &format!("session={session}"));
    assert_eq!(tokens["result"], 0, "{tokens}");
    let listed = tokens["apiTokens"].as_array().expect("apiTokens");
    let of = |id: i64| {
        listed
            .iter()
            .find(|t| t["id"] == id)
            .expect("listed")
            .clone()
    };
    assert_eq!(of(used)["lastUsed"], api.as_str());
    assert_eq!(of(never)["lastUsed"], serde_json::Value::Null);
}

#[test]
fn unused_for_lists_the_tokens_nobody_used_for_that_long() {
    let admin = Admin::new();
    admin.user("alice");
    admin.user("bob");
    admin.key();
    let (recent, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let (stale, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let (never_old, _) = admin.token("bob", &["--api", "ide-plugins"]);
    let (never_new, _) = admin.token("bob", &["--api", "ide-plugins"]);
    let (expired, _) = admin.token("bob", &["--api", "ide-plugins"]);
    let now = now_ms() / 1000;
    // Created 120 days ago (the store is older than the test).
    admin
        .db()
        .execute(
            "UPDATE tokens SET created_at = ?1 WHERE id != ?2",
            pat_admin::params![(now - 120 * DAY) as i64, never_new],
        )
        .expect("age");
    admin.expire(expired);
    let (_, edge) = admin.edge_key("edge-1");
    let serve = admin.serve();
    report_use(&serve, &edge, recent, now - 10 * DAY, "203.0.113.9");
    report_use(&serve, &edge, stale, now - 100 * DAY, "203.0.113.9");

    let run = admin.run(&["--json", "list", "--unused-for", "90d"]);
    let found: Vec<i64> = run
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(
        found,
        [stale, never_old],
        "used 100 days ago, and never used since its creation 120 days ago"
    );
    let err = run.fails(8).to_string();
    assert!(err.contains("went unused for 90d"), "{err}");

    // One account; a window nobody falls in: exit 0.
    let run = admin.run(&["--json", "list", "--user", "alice", "--unused-for", "90d"]);
    assert_eq!(run.json().as_array().expect("array").len(), 1);
    run.fails(8);
    let run = admin.run(&["list", "--unused-for", "200d"]);
    assert!(
        run.ok().contains("Every active token was used within 200d"),
        "{}",
        run.stdout
    );
    // With --expiring-within, both must hold.
    admin
        .run(&["list", "--unused-for", "90d", "--expiring-within", "14d"])
        .ok();
    // A bad duration is invalid input.
    let err = admin
        .run(&["list", "--unused-for", "90"])
        .fails(2)
        .to_string();
    assert!(err.contains("--unused-for"), "{err}");
}
