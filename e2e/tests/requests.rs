//! Real requests through Envoy: tokens in the query, a form body and a multipart upload are
//! allowed for their scope; wrong scope, expired, unknown and mistyped tokens are denied in the
//! platform's shape; ordinary sessions and requests without one reach the platform untouched;
//! client-sent identity headers never do.

use pat_e2e::{Client, LEGACY_SESSION, Stack};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";

#[test]
fn tokens_in_query_form_and_multipart_are_allowed_for_their_scope() {
    let stack = Stack::start();
    let (id, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();

    let get = client.get(
        &stack.url(&format!("{STOPENV}?envName=my-project&session={token}")),
        &[],
    );
    assert!(get.is_ok(), "{get:?}");
    assert_eq!(get.json["user"], "alice");
    assert_eq!(get.json["token_id"], id.to_string());
    assert_eq!(get.json["method"], "environment.control.stopenv");
    // strip_token is on in envoy.yaml: the platform never sees the value.
    assert_eq!(get.json["session_received"], false);
    assert_eq!(get.json["params"], serde_json::json!(["envName"]));

    let form = client.post(
        &stack.url("/1.0/environment/control/rest/startenv"),
        "application/x-www-form-urlencoded",
        format!("envName=my-project&session={token}").into_bytes(),
    );
    assert!(form.is_ok(), "{form:?}");
    assert_eq!(
        (
            form.json["via"].as_str(),
            form.json["session_received"].as_bool()
        ),
        (Some("token"), Some(false))
    );

    // An upload: the session field comes before a 3 MiB file (beyond the 1 MiB buffer
    // limit: the filter decides on the head of the body and the rest streams through).
    let boundary = "----e2e-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"session\"\r\n\r\n{token}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.war\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend((0..3 * 1024 * 1024).map(|i| (i % 251) as u8));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let sent = body.len();
    let upload = client.post(
        &stack.url("/1.0/storage/uploader/rest/upload"),
        &format!("multipart/form-data; boundary={boundary}"),
        body,
    );
    assert!(upload.is_ok(), "{upload:?}");
    assert_eq!(
        upload.json["session_received"], false,
        "the session part was cut out"
    );
    let received = upload.json["body_bytes"].as_u64().expect("size") as usize;
    assert!(
        sent - received < 200 && received > 3 * 1024 * 1024,
        "the file arrived whole: {received} of {sent}"
    );
}

#[test]
fn denials_speak_the_platform_shape() {
    let stack = Stack::start();
    let (_, stop_only) = stack.token(&["--method", "environment.Control.StopEnv"]);
    let (expired_id, expired) = stack.token(&["--method", "environment.Control.StopEnv"]);
    // Make it expire two seconds after this publish (the CLI rightly refuses such dates):
    // the edge holds it and must refuse it on its own clock. (Tokens already expired at
    // publish time are left out of the snapshot altogether, so they read as unknown.)
    let soon = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 2;
    // A change through the store counts in its state serial, as the CLI's changes do, so
    // publish signs the new state instead of pushing the snapshot it already has.
    stack
        .db()
        .execute_batch(&format!(
            "UPDATE tokens SET expires_at = {soon} WHERE id = {expired_id};
             UPDATE meta SET value = CAST(value + 1 AS TEXT) WHERE key = 'state_serial';"
        ))
        .expect("expire");
    let published = stack.admin_ok(&["--json", "publish"], "");
    assert_eq!(published["built"], true, "{published}");
    std::thread::sleep(std::time::Duration::from_secs(3));
    let client = Client::new();
    let mut mistyped = stop_only.clone();
    mistyped.replace_range(10..11, if &stop_only[10..11] == "A" { "B" } else { "A" });

    let cases = [
        (
            format!("/1.0/environment/control/rest/deleteenv?session={stop_only}"),
            702,
            "not allowed to call",
        ),
        (format!("{STOPENV}?session={expired}"), 701, "has expired"),
        (
            format!("{STOPENV}?session=pate_{}", "x".repeat(36)),
            701,
            "checksum",
        ),
        (format!("{STOPENV}?session={mistyped}"), 701, "checksum"),
        (
            format!("/1.0/users/authentication/rest/signin?session={stop_only}"),
            702,
            "cannot call",
        ),
    ];
    for (path, code, words) in cases {
        let answer = client.get(&stack.url(&path), &[]);
        assert!(answer.denied_with(code), "{path}: {answer:?}");
        let error = answer.json["error"].as_str().expect("error text");
        assert!(error.contains(words), "{path}: {error}");
        assert!(
            !error.contains(&stop_only) && !error.contains(&expired),
            "the token is never echoed: {error}"
        );
    }
    // Unknown: well formed, never issued.
    let unknown = pat_core::token::Token::generate()
        .expect("rng")
        .expose()
        .to_string();
    let answer = client.get(&stack.url(&format!("{STOPENV}?session={unknown}")), &[]);
    assert!(answer.denied_with(701), "{answer:?}");
    assert!(
        answer.json["error"]
            .as_str()
            .expect("text")
            .contains("not valid")
    );
}

#[test]
fn ordinary_sessions_and_sessionless_requests_pass_untouched() {
    let stack = Stack::start();
    let client = Client::new();
    let ordinary = client.get(
        &stack.url(&format!("{STOPENV}?envName=x&session={LEGACY_SESSION}")),
        &[],
    );
    assert!(ordinary.is_ok(), "{ordinary:?}");
    assert_eq!(
        (
            ordinary.json["via"].as_str(),
            ordinary.json["user"].as_str()
        ),
        (Some("session"), Some("legacy-user"))
    );
    assert_eq!(
        ordinary.json["session_received"], true,
        "ordinary sessions are not stripped"
    );

    // The platform's own error for a session it does not know, not the edge's.
    let unknown = client.get(
        &stack.url(&format!("{STOPENV}?session=somebody-elses-session")),
        &[],
    );
    assert_eq!(unknown.json["result"], 701);
    assert!(
        unknown.json["error"]
            .as_str()
            .expect("text")
            .contains("session ["),
        "{unknown:?}"
    );

    let none = client.get(&stack.url(STOPENV), &[]);
    assert_eq!(
        none.json["error"],
        "authentication required: pass a session"
    );
}

#[test]
fn client_sent_identity_headers_are_stripped() {
    let stack = Stack::start();
    let (id, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let forged = [("x-pat-user", "root"), ("x-pat-token-id", "1")];

    // With an ordinary session: the forged identity would make the stand-in answer as root.
    let answer = client.get(
        &stack.url(&format!("{STOPENV}?session={LEGACY_SESSION}")),
        &forged,
    );
    assert_eq!(answer.json["user"], "legacy-user", "{answer:?}");
    let answer = client.get(&stack.url(STOPENV), &forged);
    assert_eq!(
        answer.json["result"], 701,
        "no session, no identity: {answer:?}"
    );
    // With a token: replaced by the token's identity.
    let answer = client.get(&stack.url(&format!("{STOPENV}?session={token}")), &forged);
    assert_eq!(
        (
            answer.json["user"].as_str(),
            answer.json["token_id"].as_str()
        ),
        (Some("alice"), Some(id.to_string().as_str()))
    );
}
