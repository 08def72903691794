//! Parameter pollution through real Envoy (`strip_token` on, as `envoy.yaml` runs it): two
//! different sessions, `session` in another case beside a token, or a token anywhere but
//! the decisive `session`, are refused, and the platform never receives a token value;
//! client headers with underscores are dropped, and a client's identity headers (of either
//! form) never reach the platform.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use pat_e2e::{Client, LEGACY_SESSION, Stack};
use serde_json::json;

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";
const UPLOAD: &str = "/1.0/storage/uploader/rest/upload";
const FORM: &str = "application/x-www-form-urlencoded";
const BOUNDARY: &str = "----pat-e2e-pollution";

fn field(name: &str, value: &str) -> String {
    format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n")
}

fn file_head() -> String {
    format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"app.war\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
}

/// How many token values the stand-in has received so far, by its log.
fn token_values_received(stack: &Stack) -> usize {
    let log = std::fs::read_to_string(stack.dir.path().join("standin.log")).unwrap_or_default();
    log.lines()
        .filter_map(|l| {
            l.split(", ")
                .nth(1)?
                .split(' ')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .sum()
}

/// How many requests the platform stand-in has answered, by its log.
fn platform_requests(stack: &Stack) -> usize {
    let log = std::fs::read_to_string(stack.dir.path().join("standin.log")).unwrap_or_default();
    log.lines()
        .filter(|l| l.starts_with("platform-standin: ") && l.contains(" -> result "))
        .count()
}

#[test]
fn polluted_requests_are_refused_and_no_token_reaches_the_platform() {
    let stack = Stack::start();
    let scope = [
        "--method",
        "environment.Control.StopEnv,storage.Uploader.Upload",
    ];
    let (_, t1) = stack.token(&scope);
    let (_, t2) = stack.token(&scope);
    let client = Client::new();
    let invalid = |answer: pat_e2e::Answer, what: &str| {
        assert!(answer.denied_with(703), "{what}: {answer:?}");
    };

    // The query names t1, the body t2.
    invalid(
        client.post(
            &stack.url(&format!("{STOPENV}?session={t1}")),
            FORM,
            format!("envName=x&session={t2}").into_bytes(),
        ),
        "query and form",
    );
    invalid(
        client.post(
            &stack.url(&format!("{UPLOAD}?session={t1}")),
            &format!("multipart/form-data; boundary={BOUNDARY}"),
            [
                field("session", &t2),
                file_head(),
                "BIN\r\n".into(),
                format!("--{BOUNDARY}--\r\n"),
            ]
            .concat()
            .into_bytes(),
        ),
        "query and multipart",
    );
    // Tokens where no token belongs.
    for path in [
        format!("{STOPENV}?Session={t1}"),
        format!("{STOPENV}?SESSION={t1}"),
        format!("{STOPENV}?session[]={t1}"),
        format!("{STOPENV};session={t1}"),
        format!("{STOPENV}?session=%20{t1}"),
        format!("{STOPENV}?session=+{t1}"),
        format!("{STOPENV}?x=1?session={t1}"),
    ] {
        invalid(client.get(&stack.url(&path), &[]), &path);
    }
    for body in [format!("Session={t1}"), format!("note={t1}&session={t1}")] {
        invalid(
            client.post(&stack.url(STOPENV), FORM, body.clone().into_bytes()),
            &body,
        );
    }
    assert_eq!(
        token_values_received(&stack),
        0,
        "a token reached the platform"
    );

    // The same token twice is one session: allowed, and stripped from both places.
    let answer = client.post(
        &stack.url(&format!("{STOPENV}?session={t1}")),
        FORM,
        format!("session={t1}&envName=x").into_bytes(),
    );
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(answer.json["token_values_seen"], 0);
    assert_eq!(token_values_received(&stack), 0);
}

#[test]
fn a_token_after_the_file_of_a_streaming_upload_ends_it() {
    let stack = Stack::start();
    let scope = ["--method", "storage.Uploader.Upload"];
    let (_, t1) = stack.token(&scope);
    let (_, t2) = stack.token(&scope);
    // 4 MB of file, larger than any buffer: the head is decided and forwarded first.
    let file = vec![b'z'; 4 << 20];
    let body = |late: &str| {
        let mut body = [field("session", &t1), file_head()].concat().into_bytes();
        body.extend_from_slice(&file);
        body.extend_from_slice(
            format!("\r\n{}--{BOUNDARY}--\r\n", field("comment", late)).as_bytes(),
        );
        body
    };
    let send = |body: Vec<u8>| -> (String, usize) {
        let mut tcp = TcpStream::connect(("127.0.0.1", stack.ports.public)).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let head = format!(
            "POST {UPLOAD} HTTP/1.1\r\nhost: edge\r\ncontent-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        tcp.write_all(head.as_bytes()).expect("head");
        // Sent in 64 KiB writes, as an upload client would; the edge may end it early.
        let mut sent = 0;
        for chunk in body.chunks(64 * 1024) {
            if tcp.write_all(chunk).is_err() {
                break;
            }
            sent += chunk.len();
        }
        let mut reply = Vec::new();
        let _ = tcp.read_to_end(&mut reply);
        (String::from_utf8_lossy(&reply).into_owned(), sent)
    };

    let (reply, _) = send(body("fine"));
    assert!(reply.contains("\"result\":0"), "{reply}");
    assert!(
        reply.contains("\"token_values_seen\":0"),
        "stripped: {reply}"
    );

    let (reply, sent) = send(body(&t2));
    assert!(reply.contains("\"result\":703"), "{reply}");
    println!("denied after {sent} of {} bytes", file.len());
    assert_eq!(
        token_values_received(&stack),
        0,
        "the late token reached the platform"
    );
}

#[test]
fn client_headers_with_underscores_never_reach_the_platform() {
    let stack = Stack::start();
    let (_, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let answer = client.get(
        &stack.url(&format!("{STOPENV}?session={token}")),
        &[("x_pat_user", "root"), ("x_pat_token_id", "1")],
    );
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(answer.json["user"], "alice");
    assert_eq!(
        answer.json["underscore_headers"],
        serde_json::json!([]),
        "{answer:?}"
    );
    // Without a token: nothing for the platform to mistake for an identity.
    let answer = client.get(
        &stack.url(STOPENV),
        &[("x_pat_user", "root"), ("x_pat_token_id", "1")],
    );
    assert_eq!(answer.json["result"], 701, "{answer:?}");
    assert!(answer.json.get("user").is_none(), "{answer:?}");
    let answer = client.get(
        &stack.url(&format!("{STOPENV}?session=legacy-session-0123456789")),
        &[("x_pat_user", "root")],
    );
    assert_eq!(answer.json["user"], "legacy-user", "{answer:?}");
    assert_eq!(
        answer.json["underscore_headers"],
        serde_json::json!([]),
        "{answer:?}"
    );
}

#[test]
fn session_in_another_case_beside_a_token_is_refused() {
    let stack = Stack::start();
    let scope = [
        "--method",
        "environment.Control.StopEnv,storage.Uploader.Upload",
    ];
    let (_, t) = stack.token(&scope);
    let client = Client::new();
    let answer = client.get(&stack.url(&format!("{STOPENV}?envName=x&session={t}")), &[]);
    assert!(answer.is_ok(), "the token alone: {answer:?}");
    let answered = platform_requests(&stack);
    let conflicting = |answer: pat_e2e::Answer, what: &str| {
        assert!(answer.denied_with(703), "{what}: {answer:?}");
        assert!(
            answer.json["error"]
                .as_str()
                .is_some_and(|e| e.contains("several different session values")),
            "{what}: {answer:?}"
        );
    };

    // The query, whatever the other value (a login session, nothing, anything).
    for query in [
        format!("session={t}&Session={LEGACY_SESSION}"),
        format!("session={t}&SESSION=x"),
        format!("SESSION=&session={t}"),
        format!("session={t}&sess%49on=x"),
    ] {
        conflicting(
            client.get(&stack.url(&format!("{STOPENV}?{query}")), &[]),
            &query,
        );
    }
    // A form body, alone and merged with the query.
    for (query, body) in [
        (format!("?session={t}"), "envName=x&SESSION=x".to_string()),
        (String::new(), format!("session={t}&Session=x")),
        ("?Session=x".to_string(), format!("envName=x&session={t}")),
    ] {
        conflicting(
            client.post(
                &stack.url(&format!("{STOPENV}{query}")),
                FORM,
                body.clone().into_bytes(),
            ),
            &format!("{query} / {body}"),
        );
    }
    // Multipart: before the file, and after 256 KiB of it (the head already forwarded).
    let file = "z".repeat(256 << 10);
    let upload = |parts: &[String]| {
        let mut body = parts.concat();
        body.push_str(&format!("--{BOUNDARY}--\r\n"));
        body.into_bytes()
    };
    let multipart = format!("multipart/form-data; boundary={BOUNDARY}");
    for (what, path, parts) in [
        (
            "before the file",
            format!("{UPLOAD}?session={t}"),
            vec![field("Session", "x"), file_head(), "BIN\r\n".into()],
        ),
        (
            "after the file",
            UPLOAD.to_string(),
            vec![
                field("session", &t),
                file_head(),
                format!("{file}\r\n"),
                field("SESSION", "x"),
            ],
        ),
    ] {
        conflicting(
            client.post(&stack.url(&path), &multipart, upload(&parts)),
            what,
        );
    }
    assert_eq!(
        platform_requests(&stack),
        answered,
        "a refused request reached the platform"
    );
    assert_eq!(token_values_received(&stack), 0);

    // Without a token the request is the platform's: both names reach it.
    let answer = client.get(
        &stack.url(&format!("{STOPENV}?session={LEGACY_SESSION}&Session=x")),
        &[],
    );
    assert_eq!(answer.json["user"], "legacy-user", "{answer:?}");
    assert_eq!(answer.json["params"], json!(["session", "Session"]));
}

#[test]
fn a_clients_identity_headers_never_reach_the_platform() {
    // envoy.yaml's configuration: the two identity headers, the combined one off.
    let stack = Stack::start();
    let (id, token) = stack.token(&["--api", "ide-plugins"]);
    let client = Client::new();
    let forged = [
        ("x-pat-identity", "id=1, user=\"root\""),
        ("x-pat-user", "root"),
        ("x-pat-token-id", "1"),
    ];
    let answer = client.get(&stack.url(&format!("{STOPENV}?session={token}")), &forged);
    assert!(answer.is_ok(), "{answer:?}");
    assert_eq!(
        answer.json["identity_headers"],
        json!({"x-pat-user": ["alice"], "x-pat-token-id": [id.to_string()]}),
        "only the edge's identity, in the configured form: {answer:?}"
    );
    // Passed through (an ordinary session, no session): none at all.
    for path in [
        format!("{STOPENV}?session={LEGACY_SESSION}"),
        STOPENV.to_string(),
    ] {
        let answer = client.get(&stack.url(&path), &forged);
        assert!(answer.json.get("token_id").is_none(), "{answer:?}");
        assert_eq!(answer.json["identity_headers"], json!({}), "{answer:?}");
    }
}
