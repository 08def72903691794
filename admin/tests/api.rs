//! The token API of `pat-admin serve --api-listen`, spoken to directly over HTTP: answers
//! in the platform's shape, every kind of bad input refused with nothing changed, one
//! account never sees another's tokens, wrong passwords share the CLI's back-off and are
//! audited with the client address, sign-ins slow down per account and per address (an
//! unknown login costing what a wrong password costs), sessions expire and end.

mod support;

use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// `pat-admin serve --api-listen` on a store, killed when dropped.
struct Api {
    child: Child,
    port: u16,
}

impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The client address header the tests set (as Envoy would).
const CLIENT: &str = "x-test-client";

fn serve_api(admin: &Admin) -> Api {
    let port = free_port();
    let child = admin
        .std_command()
        .args([
            "serve",
            "--api-listen",
            &format!("127.0.0.1:{port}"),
            "--client-address-header",
            CLIENT,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the API did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Api { child, port }
}

/// Percent-encodes a parameter value.
fn enc(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Api {
    /// A raw request: (HTTP status, body as JSON).
    fn raw(&self, request: &[u8]) -> (u16, Value) {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        // A server that answers before reading all of a large body may close early.
        let _ = stream.write_all(request);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let text = String::from_utf8_lossy(&answer);
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// GET `method` with `query` (already encoded) from client address `from`.
    fn get_from(&self, method: &str, query: &str, from: &str) -> Value {
        let (status, body) = self.raw(
            format!(
                "GET /1.0/users/authentication/rest/{method}?{query} HTTP/1.1\r\nHost: x\r\n{CLIENT}: {from}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    fn get(&self, method: &str, query: &str) -> Value {
        self.get_from(method, query, "192.0.2.1")
    }

    /// POST a form body.
    fn post(&self, method: &str, body: &[u8], content_type: &str) -> Value {
        let mut request = format!(
            "POST /1.0/users/authentication/rest/{method} HTTP/1.1\r\nHost: x\r\n{CLIENT}: 192.0.2.1\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        self.raw(&request).1
    }

    fn sign_in(&self, user: &str) -> String {
        let answer = self.get(
            "Signin",
            &format!("login={user}&password={}", enc(PASSWORD)),
        );
        assert_eq!(answer["result"], 0, "{answer}");
        answer["session"].as_str().expect("session").to_string()
    }
}

fn error_code(answer: &Value) -> i64 {
    assert_eq!(answer["source"], "pat-admin", "{answer}");
    assert!(
        answer["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{answer}"
    );
    answer["result"].as_i64().expect("result")
}

/// Everything a change would alter: the tokens, the audit log's length, the state serial.
fn state(admin: &Admin) -> (Vec<Value>, i64, String) {
    let db = admin.db();
    let audit: i64 = db
        .query_row("SELECT count(*) FROM audit", [], |r| r.get(0))
        .expect("audit");
    let serial: String = db
        .query_row(
            "SELECT coalesce((SELECT value FROM meta WHERE key = 'state_serial'), '0')",
            [],
            |r| r.get(0),
        )
        .expect("serial");
    (admin.tokens("alice"), audit, serial)
}

fn setup() -> (Admin, Api, String) {
    let admin = Admin::new();
    admin.user("alice");
    admin.user("bob");
    admin.key();
    let api = serve_api(&admin);
    let session = api.sign_in("alice");
    (admin, api, session)
}

#[test]
fn answers_have_the_platform_shape() {
    let (admin, api, s) = setup();
    let p = enc(PASSWORD);
    let created = api.get(
        "CreateToken",
        &format!("session={s}&password={p}&description=CI&tokenTemplate=IDE%20Plugins&expiresAt=2099-12-31%2012:00:00"),
    );
    assert_eq!(created["result"], 0, "{created}");
    let token = &created["token"];
    let key = token["key"].as_str().expect("key on create");
    assert_token_shape(key);
    assert_eq!(token["description"], "CI");
    assert_eq!(token["expiresAt"], "2099-12-31 12:00:00");
    assert_eq!(token["lastUsed"], Value::Null);
    assert_eq!(token["isSystem"], false);
    assert_eq!(token["tokenTemplate"]["id"], "ide-plugins");
    assert_eq!(token["tokenTemplate"]["name"], "IDE Plugins");
    let items = token["apiListItems"].as_array().expect("items");
    assert_eq!(items.len(), 14);
    assert!(
        items
            .iter()
            .all(|i| i["id"].is_u64() && i["method"].is_string())
    );
    // No edges configured: committed and signed, nothing to push.
    assert_eq!(created["publish"]["state"], "no_edges", "{created}");
    assert!(created["publish"]["version"].is_u64());
    let id = token["id"].as_i64().expect("id");

    // The CLI sees the same token (one store, one implementation).
    let cli = admin.tokens("alice");
    assert_eq!(cli.len(), 1);
    assert_eq!(cli[0]["id"], id);
    assert_eq!(cli[0]["scope"]["set"], "ide-plugins");
    assert_eq!(cli[0]["expires_at"], "2099-12-31T12:00:00Z");

    let listed = api.get("GetTokens", &format!("session={s}"));
    assert_eq!(listed["result"], 0);
    let only = &listed["apiTokens"][0];
    assert!(
        only.get("key").is_none(),
        "never a value in a list: {listed}"
    );
    assert_eq!(only["id"], id);

    // POST with a form body works the same; the dashboard's day format too.
    let body = format!(
        "session={s}&password={p}&description=form&apiList=env.control.StopEnv%3Benvironment.Control.StartEnv&expiresAt=31-12-2099"
    );
    let form = api.post(
        "createtoken",
        body.as_bytes(),
        "application/x-www-form-urlencoded; charset=UTF-8",
    );
    assert_eq!(form["result"], 0, "{form}");
    assert_eq!(form["token"]["expiresAt"], "2100-01-01 00:00:00");
    assert!(form["token"].get("tokenTemplate").is_none());
    let methods: Vec<&str> = form["token"]["apiListItems"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["method"].as_str().expect("method"))
        .collect();
    assert_eq!(
        methods,
        [
            "environment.Control.StartEnv",
            "environment.Control.StopEnv"
        ]
    );

    let edited = api.get(
        "EditToken",
        &format!("session={s}&password={p}&id={id}&description=renamed"),
    );
    assert_eq!(edited["result"], 0, "{edited}");
    assert_eq!(edited["changed"], true);
    assert!(edited["token"].get("key").is_none(), "no value on edit");
    let same = api.get(
        "EditToken",
        &format!("session={s}&password={p}&id={id}&description=renamed"),
    );
    assert_eq!(
        (same["result"].as_i64(), same["changed"].as_bool()),
        (Some(0), Some(false))
    );

    let regenerated = api.get(
        "RegenerateToken",
        &format!("session={s}&password={p}&id={id}"),
    );
    let new_key = regenerated["token"]["key"].as_str().expect("a new value");
    assert_ne!(new_key, key);

    let templates = api.get("GetTokenTemplates", &format!("session={s}"));
    let names: Vec<&str> = templates["templates"]
        .as_array()
        .expect("templates")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["IDE Plugins", "Marketplace", "Maven Plugin"]);
    let public = api.get("GetTokenApiList", &format!("session={s}"));
    let all = api.get("GetTokenApiList", &format!("session={s}&showPrivate=True"));
    let count = |v: &Value| v["tokenPermissions"].as_array().expect("list").len();
    assert!(
        count(&public) > 100 && count(&all) > count(&public),
        "{}",
        count(&public)
    );
    let search = api.get(
        "GetTokenApiList",
        &format!("session={s}&search=env.control.stopenv"),
    );
    assert_eq!(
        search["tokenPermissions"][0]["method"],
        "environment.Control.StopEnv"
    );
    assert!(
        search["tokenPermissions"][0]["docs"]
            .as_str()
            .is_some_and(|d| d.starts_with("https://docs.jelastic.com/"))
    );

    let deleted = api.get("DeleteTokens", &format!("session={s}&password={p}&ids=*"));
    assert_eq!(deleted["result"], 0, "{deleted}");
    assert_eq!(deleted["ids"].as_array().expect("ids").len(), 2);
    assert!(admin.tokens("alice").is_empty());
}

#[test]
fn bad_input_of_every_kind_is_refused_and_changes_nothing() {
    let (admin, api, s) = setup();
    let p = enc(PASSWORD);
    let (_, key) = admin.token("alice", &["--api", "ide-plugins"]);
    let id = admin.tokens("alice")[0]["id"].as_i64().expect("id");
    let before = state(&admin);
    let long = "x".repeat(201);
    let cases: Vec<(String, i64, &str)> = vec![
        (
            format!("CreateToken?session={s}&password={p}&tokenTemplate=marketplace"),
            711,
            "description",
        ),
        (
            format!("CreateToken?session={s}&password={p}&description=x"),
            711,
            "tokenTemplate",
        ),
        (
            format!("CreateToken?session={s}&description=x&tokenTemplate=marketplace"),
            711,
            "password",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description={long}&tokenTemplate=marketplace"
            ),
            711,
            "longer than 200",
        ),
        (
            format!("CreateToken?session={s}&password={p}&description=x&tokenTemplate=everything"),
            711,
            "unknown API set",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description=x&tokenTemplate=marketplace&apiList=env.control.StopEnv"
            ),
            711,
            "not both",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description=x&apiList=env.control.StopEnvv"
            ),
            711,
            "did you mean environment.Control.StopEnv",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description=x&apiList=users.Authentication.CreateToken"
            ),
            711,
            "cannot be granted",
        ),
        (
            format!("CreateToken?session={s}&password={p}&description=x&apiList=%5B%5D"),
            711,
            "empty",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description=x&tokenTemplate=marketplace&expiresAt=2020-01-01%2000:00:00"
            ),
            711,
            "in the past",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description=x&tokenTemplate=marketplace&expiresAt=2030-13-01%2000:00:00"
            ),
            711,
            "yyyy-MM-dd HH:mm:ss",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description=x&tokenTemplate=marketplace&expiresAt=31-02-2030"
            ),
            711,
            "February 2030 has no day 31",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description=a&description=b&tokenTemplate=marketplace"
            ),
            711,
            "more than once",
        ),
        (
            format!("EditToken?session={s}&password={p}&id={id}"),
            711,
            "nothing to change",
        ),
        (
            format!("EditToken?session={s}&password={p}&description=x"),
            711,
            "`id` is required",
        ),
        (
            format!("EditToken?session={s}&password={p}&id=abc&description=x"),
            711,
            "not a token id",
        ),
        (
            format!("EditToken?session={s}&password={p}&id=1,2&description=x"),
            711,
            "exactly one",
        ),
        (
            format!("EditToken?session={s}&password={p}&id={id}&description=%01"),
            711,
            "control characters",
        ),
        (
            format!("RegenerateToken?session={s}&password={p}&ids=*"),
            711,
            "not allowed",
        ),
        (
            format!("DeleteTokens?session={s}&password={p}"),
            711,
            "`ids` is required",
        ),
        (
            format!("DeleteTokens?session={s}&password={p}&ids=1;x"),
            711,
            "not a token id",
        ),
        (
            format!("GetTokenApiList?session={s}&showPrivate=perhaps"),
            711,
            "not a boolean",
        ),
        (
            format!(
                "CreateToken?session={s}&password={p}&description=%FF&tokenTemplate=marketplace"
            ),
            711,
            "not UTF-8",
        ),
        (
            format!("CreateTokens?session={s}"),
            713,
            "did you mean CreateToken",
        ),
        ("GetTokens".to_string(), 701, "Signin"),
        (format!("GetTokens?session={key}"), 701, "access token"),
        (
            "GetTokens?session=pats_notasession".to_string(),
            701,
            "not valid",
        ),
        (
            "GetTokens?session=pats_0123456789abcdefghijABCDEFGHIJ01".to_string(),
            701,
            "not valid",
        ),
    ];
    for (request, code, says) in &cases {
        let (method, query) = request.split_once('?').unwrap_or((request, ""));
        let answer = api.get(method, query);
        assert_eq!(error_code(&answer), *code, "{request}: {answer}");
        assert!(
            answer["error"].as_str().expect("error").contains(says),
            "{request}: {answer}"
        );
    }
    // Bodies: over the limit, not a form, not UTF-8.
    let big = format!("session={s}&description={}", "x".repeat(70 * 1024));
    let answer = api.post(
        "CreateToken",
        big.as_bytes(),
        "application/x-www-form-urlencoded",
    );
    assert!(
        error_code(&answer) == 711 && answer["error"].as_str().expect("e").contains("larger than"),
        "{answer}"
    );
    let answer = api.post("CreateToken", br#"{"session":"x"}"#, "application/json");
    assert!(
        error_code(&answer) == 711
            && answer["error"]
                .as_str()
                .expect("e")
                .contains("application/json"),
        "{answer}"
    );
    let mut latin1 =
        format!("session={s}&password={p}&tokenTemplate=marketplace&description=caf").into_bytes();
    latin1.push(0xE9);
    let answer = api.post("CreateToken", &latin1, "application/x-www-form-urlencoded");
    assert!(
        error_code(&answer) == 711 && answer["error"].as_str().expect("e").contains("UTF-8"),
        "{answer}"
    );
    let (status, answer) = api.raw(b"DELETE /1.0/users/authentication/rest/gettokens HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!((status, error_code(&answer)), (200, 711), "{answer}");
    let (status, answer) = api.raw(b"GET /1.0/environment/control/rest/stopenv HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert_eq!((status, error_code(&answer)), (404, 713), "{answer}");
    assert_eq!(state(&admin), before, "nothing changed");
}

#[test]
fn rules_refuse_with_their_own_code() {
    let (admin, api, s) = setup();
    let p = enc(PASSWORD);
    admin
        .run(&["config", "set", "max-lifetime-days", "30"])
        .ok();
    let answer = api.get(
        "CreateToken",
        &format!("session={s}&password={p}&description=x&tokenTemplate=marketplace"),
    );
    assert!(
        error_code(&answer) == 712
            && answer["error"]
                .as_str()
                .expect("e")
                .contains("need an expiry"),
        "{answer}"
    );
    let answer = api.get("CreateToken", &format!("session={s}&password={p}&description=x&tokenTemplate=marketplace&expiresAt=2099-01-01%2000:00:00"));
    assert!(
        error_code(&answer) == 712
            && answer["error"]
                .as_str()
                .expect("e")
                .contains("maximum token lifetime"),
        "{answer}"
    );
    admin
        .run(&["config", "set", "max-lifetime-days", "none"])
        .ok();
    admin
        .run(&["config", "set", "max-tokens-per-account", "1"])
        .ok();
    let ok = api.get(
        "CreateToken",
        &format!("session={s}&password={p}&description=x&tokenTemplate=marketplace"),
    );
    assert_eq!(ok["result"], 0, "{ok}");
    let answer = api.get(
        "CreateToken",
        &format!("session={s}&password={p}&description=y&tokenTemplate=marketplace"),
    );
    assert!(
        error_code(&answer) == 712 && answer["error"].as_str().expect("e").contains("the maximum"),
        "{answer}"
    );
    assert_eq!(admin.tokens("alice").len(), 1);
}

#[test]
fn another_accounts_tokens_are_not_found() {
    let (admin, api, s) = setup();
    let p = enc(PASSWORD);
    let (_, _) = admin.token("bob", &["--api", "ide-plugins"]);
    let bobs = admin.tokens("bob")[0]["id"].as_i64().expect("id");
    let before = admin.tokens("bob");
    for (method, query) in [
        ("GetTokens", format!("session={s}&ids={bobs}")),
        (
            "EditToken",
            format!("session={s}&password={p}&id={bobs}&description=mine"),
        ),
        (
            "RegenerateToken",
            format!("session={s}&password={p}&ids={bobs}"),
        ),
        (
            "DeleteTokens",
            format!("session={s}&password={p}&ids={bobs}"),
        ),
    ] {
        let answer = api.get(method, &query);
        assert_eq!(error_code(&answer), 5, "{method}: {answer}");
        assert_eq!(answer["error"], format!("token {bobs} not found"));
    }
    let listed = api.get("GetTokens", &format!("session={s}"));
    assert_eq!(listed["apiTokens"], serde_json::json!([]));
    // `*` is only the caller's own.
    let deleted = api.get("DeleteTokens", &format!("session={s}&password={p}&ids=*"));
    assert_eq!(
        (deleted["result"].as_i64(), deleted["ids"].clone()),
        (Some(0), serde_json::json!([]))
    );
    assert_eq!(admin.tokens("bob"), before);
}

#[test]
fn a_wrong_password_changes_nothing_shares_the_cli_back_off_and_is_audited() {
    let (admin, api, s) = setup();
    let (id, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let before = admin.tokens("alice");
    let answer = api.get_from(
        "DeleteTokens",
        &format!("session={s}&password=wrong-password&ids={id}"),
        "198.51.100.7",
    );
    assert_eq!(error_code(&answer), 710, "{answer}");
    assert_eq!(answer["error"], "wrong password; nothing was changed");
    assert_eq!(admin.tokens("alice"), before);
    let entry = &admin.audit()[0];
    assert_eq!(entry["action"], "auth.failed");
    assert_eq!(entry["actor"], "api 198.51.100.7");
    assert_eq!(entry["account"], "alice");
    // The CLI waits for it: one failure in a row, whoever made it.
    let run = admin.confirmed(&[
        "generate",
        "--user",
        "alice",
        "--description",
        "d",
        "--api",
        "marketplace",
    ]);
    run.ok();
    assert!(
        run.stderr.contains("had 1 wrong password(s) in a row"),
        "{}",
        run.stderr
    );
    // And the API waits for a CLI failure.
    admin
        .confirmed_with(
            &["remove", "--user", "alice", &id.to_string()],
            "not it at all",
        )
        .fails(3);
    let started = Instant::now();
    let answer = api.get(
        "DeleteTokens",
        &format!("session={s}&password={}&ids={id}", enc(PASSWORD)),
    );
    assert_eq!(answer["result"], 0, "{answer}");
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn sign_ins_slow_down_per_account_and_address_and_unknown_logins_cost_the_same() {
    let admin = Admin::new();
    admin.user("alice");
    let api = serve_api(&admin);
    let timed = |query: &str, from: &str| {
        let started = Instant::now();
        let answer = api.get_from("Signin", query, from);
        (started.elapsed(), answer)
    };
    let good = format!("login=alice&password={}", enc(PASSWORD));
    let mut wrong = Vec::new();
    let mut unknown = Vec::new();
    for n in 0..5 {
        let (t, a) = timed(
            "login=alice&password=wrong-password",
            &format!("10.0.{n}.1"),
        );
        assert_eq!(
            (error_code(&a), a["error"].as_str()),
            (710, Some("wrong login or password"))
        );
        wrong.push(t);
        // A right password resets the account's count.
        assert_eq!(timed(&good, &format!("10.0.{n}.2")).1["result"], 0);
        let (t, a) = timed(
            &format!("login=nobody{n}&password=wrong-password"),
            &format!("10.0.{n}.3"),
        );
        assert_eq!(
            (error_code(&a), a["error"].as_str()),
            (710, Some("wrong login or password"))
        );
        unknown.push(t);
    }
    wrong.sort();
    unknown.sort();
    let (w, u) = (wrong[2].as_secs_f64(), unknown[2].as_secs_f64());
    // Loose bounds (tests run in parallel on small machines); without the dummy hash an
    // unknown login would cost a small fraction of a wrong password.
    assert!(
        u > w / 3.0 && u < w * 3.0,
        "median wrong password {w} s, unknown login {u} s"
    );

    // Per address: different logins from one address wait more and more.
    for n in 0..2 {
        timed(
            &format!("login=nobody-else{n}&password=x-wrong-x"),
            "10.9.9.9",
        );
    }
    let (t, _) = timed("login=someone&password=x-wrong-x", "10.9.9.9");
    assert!(
        t >= Duration::from_millis(500),
        "third failure from one address: {t:?}"
    );
    // Per account: one account from different addresses, likewise.
    for n in 0..2 {
        timed("login=alice&password=x-wrong-x", &format!("10.8.{n}.1"));
    }
    let (t, _) = timed("login=ALICE&password=x-wrong-x", "10.8.9.1");
    assert!(
        t >= Duration::from_millis(500),
        "third failure of one account: {t:?}"
    );
    // The same for a login that names no account.
    for n in 0..2 {
        timed("login=ghost&password=x-wrong-x", &format!("10.7.{n}.1"));
    }
    let (t, _) = timed("login=Ghost&password=x-wrong-x", "10.7.9.1");
    assert!(
        t >= Duration::from_millis(500),
        "third failure of an unknown login: {t:?}"
    );
    let failed = admin
        .audit()
        .iter()
        .filter(|e| e["action"] == "auth.failed")
        .count();
    assert_eq!(failed, 5 + 5 + 3 + 3 + 3);
}

#[test]
fn sessions_are_hashed_expire_and_end() {
    let (admin, api, s) = setup();
    assert!(s.starts_with("pats_") && s.len() == 37, "{s}");
    for (file, stored) in admin.store_files() {
        assert_eq!(
            occurrences(&stored, s.as_bytes()),
            0,
            "only the hash is stored ({})",
            file.display()
        );
    }
    let ok = |session: &str| api.get("GetTokens", &format!("session={session}"))["result"] == 0;
    assert!(ok(&s));

    // Idle: unused longer than session-idle.
    admin.run(&["config", "set", "session-idle", "2m"]).ok();
    admin
        .db()
        .execute("UPDATE sessions SET last_used_at = last_used_at - 100", [])
        .expect("age it");
    // A margin: on a loaded machine seconds pass between the update and the call.
    assert!(ok(&s), "100 s idle is within 2 minutes");
    admin
        .db()
        .execute("UPDATE sessions SET last_used_at = last_used_at - 121", [])
        .expect("age it");
    let answer = api.get("GetTokens", &format!("session={s}"));
    assert!(
        error_code(&answer) == 701 && answer["error"].as_str().expect("e").contains("expired"),
        "{answer}"
    );
    assert!(!ok(&s), "an expired session stays dead");

    // Absolute: older than session-lifetime, however busy.
    let s2 = api.sign_in("alice");
    admin.run(&["config", "set", "session-lifetime", "1h"]).ok();
    admin
        .db()
        .execute("UPDATE sessions SET created_at = created_at - 3601", [])
        .expect("age it");
    assert!(!ok(&s2));

    // Signout, and a password change, end sessions.
    let s3 = api.sign_in("alice");
    assert_eq!(api.get("Signout", &format!("session={s3}"))["result"], 0);
    assert!(!ok(&s3));
    assert_eq!(
        error_code(&api.get("Signout", &format!("session={s3}"))),
        701
    );
    let s4 = api.sign_in("alice");
    let s5 = api.sign_in("bob");
    admin
        .run_with(
            &["user", "passwd", "alice", "--password-stdin"],
            &format!("{PASSWORD}\nanother password 2\n"),
        )
        .ok();
    assert!(!ok(&s4), "a password change ends the account's sessions");
    assert!(ok(&s5), "not another account's");
    let audit = admin.audit();
    assert!(audit.iter().any(|e| e["action"] == "session.signout"));
    assert!(
        audit
            .iter()
            .any(|e| e["detail"] == "password changed; 1 login session(s) ended")
    );
}

#[test]
fn changes_publish_to_the_edges_and_say_whether_they_accepted() {
    let (admin, api, s) = setup();
    let mut edge = HangingEdge::new();
    admin.run(&["edge", "add", &edge.url()]).ok();
    admin.run(&["config", "set", "push-deadline", "2"]).ok();
    admin.run(&["config", "set", "push-timeout", "1"]).ok();
    let started = Instant::now();
    let created = api.get(
        "CreateToken",
        &format!(
            "session={s}&password={}&description=x&tokenTemplate=marketplace",
            enc(PASSWORD)
        ),
    );
    edge.accept_pending();
    assert_eq!(created["result"], 0, "committed: {created}");
    assert!(created["token"]["key"].is_string());
    let publish = &created["publish"];
    assert_eq!(publish["state"], "not_accepted", "{created}");
    assert_eq!(publish["edges"][0]["edge"], edge.url());
    assert_eq!(publish["edges"][0]["outcome"], "unreachable", "{publish}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by the deadline"
    );
    // Committed and signed: the latest snapshot has it, whatever the edge did.
    let version = publish["version"].as_u64().expect("version");
    let latest: i64 = admin
        .db()
        .query_row("SELECT max(version) FROM snapshots", [], |r| r.get(0))
        .expect("snapshot");
    assert_eq!(latest as u64, version);
    assert_eq!(admin.tokens("alice").len(), 1);
    assert!(admin.audit().iter().any(|e| {
        e["action"] == "publish"
            && e["detail"]
                .as_str()
                .is_some_and(|d| d.contains("unreachable"))
    }));
}
