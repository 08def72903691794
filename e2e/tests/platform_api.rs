//! The platform's token API (`users.Authentication`) through the real Envoy: `envoy.yaml`
//! routes it to `pat-admin serve --api-listen` (cluster `pat_api`), the filter denies access
//! tokens on it, and a real platform client, py-jelastic, drives the whole scenario
//! (`py_jelastic_scenario.py`). CLI and API changing one account at once lose nothing.

use std::process::{Command, Stdio};

use pat_e2e::{Client, PASSWORD, Stack, python, root, within};
use serde_json::Value;

fn sign_in(stack: &Stack) -> String {
    let answer = Client::new().get(
        &stack.api_url(
            "Signin",
            &format!("login=alice&password={}", PASSWORD.replace(' ', "+")),
        ),
        &[],
    );
    assert_eq!(answer.json["result"], 0, "{answer:?}");
    answer.json["session"]
        .as_str()
        .expect("session")
        .to_string()
}

#[test]
fn py_jelastic_drives_the_token_api_through_envoy() {
    let stack = Stack::start();
    let script = root().join("e2e/tests/py_jelastic_scenario.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(stack.public_base())
        .arg("alice")
        .arg(PASSWORD)
        .arg(stack.dir.path().join("store/pat-admin.db"))
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the py-jelastic scenario failed ({}):\n{stdout}\n{stderr}\norigin log:\n{}",
        out.status,
        std::fs::read_to_string(stack.dir.path().join("origin.log")).unwrap_or_default()
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");
    // The audit log names the API and the client address Envoy reported.
    let audit = stack.admin_ok(
        &["--json", "audit", "--user", "alice", "--limit", "500"],
        "",
    );
    let entries = audit.as_array().expect("entries");
    let by_api = |action: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["actor"] == "api 127.0.0.1")
            .count()
    };
    assert_eq!(by_api("token.generate"), 5, "{audit:#}");
    assert_eq!(by_api("token.edit"), 1);
    assert_eq!(by_api("token.regenerate"), 1);
    assert_eq!(by_api("token.remove"), 5);
    assert_eq!(by_api("auth.failed"), 5, "one sign-in, four changes");
    assert_eq!(by_api("session.signin"), 2, "{audit:#}");
    // No secret anywhere in the store: the scenario's values were never written.
    let db = std::fs::read(stack.dir.path().join("store/pat-admin.db")).expect("db");
    assert!(
        !db.windows(5).any(|w| w == b"pate_" || w == b"pats_"),
        "no token or session value in the store"
    );
    assert!(
        !db.windows(PASSWORD.len()).any(|w| w == PASSWORD.as_bytes()),
        "no password in the store"
    );
    let log = std::fs::read_to_string(stack.dir.path().join("origin.log")).expect("log");
    assert!(
        !log.contains("pate_") && !log.contains("pats_") && !log.contains(PASSWORD),
        "{log}"
    );
}

#[test]
fn the_routes_match_any_case_and_the_client_address_comes_from_envoy() {
    let stack = Stack::start();
    let client = Client::new();
    // Any case: the service answers (a missing session), not the platform stand-in.
    for path in [
        "/1.0/users/authentication/rest/gettokens",
        "/1.0/USERS/Authentication/REST/GetTokens",
    ] {
        let answer = client.get(&stack.url(path), &[]);
        assert_eq!(
            (
                answer.json["result"].as_i64(),
                answer.json["source"].as_str()
            ),
            (Some(701), Some("pat-admin")),
            "{path}: {answer:?}"
        );
    }
    // Everything else still goes to the platform.
    let other = client.get(&stack.url("/1.0/users/account/rest/getuserinfo"), &[]);
    assert_eq!(other.json["source"], "JEL", "{other:?}");
    // An access token never reaches the service.
    let (_, token) = stack.token(&["--api", "ide-plugins"]);
    let denied = client.get(
        &stack.api_url("GetTokens", &format!("session={token}")),
        &[],
    );
    assert!(denied.denied_with(702), "{denied:?}");
    // A client's own x-pat-client-address is overwritten by Envoy.
    let wrong = client.get(
        &stack.api_url("Signin", "login=alice&password=not-the-password"),
        &[("x-pat-client-address", "203.0.113.9")],
    );
    assert_eq!(wrong.json["result"], 710, "{wrong:?}");
    let audit = stack.admin_ok(&["--json", "audit", "--limit", "1"], "");
    assert_eq!(audit[0]["action"], "auth.failed", "{audit:#}");
    assert_eq!(audit[0]["actor"], "api 127.0.0.1", "{audit:#}");
}

/// One CreateToken by py-jelastic in its own process, tried again while another check of
/// the account's password is under way (`result` 714: one check at a time per account).
const CREATE: &str = r#"
import sys, time
from jelastic import Jelastic
from jelastic.api.exceptions import JelasticApiError
base, session, password, n = sys.argv[1:5]
for attempt in range(400):
    try:
        token = Jelastic(base, token=session).users.Authentication.CreateToken(
            description=f"api {n}", password=password, token_template="IDE Plugins")["token"]
        break
    except JelasticApiError as e:
        if "too many attempts" not in str(e):
            raise
        time.sleep(0.05)
print(token["id"], token["key"])
"#;

/// `pat-admin generate` for alice, started.
fn generate_cli(stack: &Stack, n: usize) -> std::process::Child {
    stack.spawn_admin(
        &[
            "--json",
            "generate",
            "--user",
            "alice",
            "--description",
            &format!("cli {n}"),
            "--api",
            "maven-plugin",
            "--password-stdin",
        ],
        &format!("{PASSWORD}\n"),
        Stdio::piped(),
    )
}

/// 20 API and 20 CLI changes at once: every one lands (one password check at a time per
/// account: the ones refused for that, result 714 or exit 9, are tried again, as a script
/// would).
#[test]
fn cli_and_api_changing_one_account_at_once_lose_nothing() {
    let stack = Stack::start();
    let session = sign_in(&stack);
    let mut api = Vec::new();
    let mut cli = Vec::new();
    for n in 0..20 {
        api.push(
            Command::new(python())
                .args(["-c", CREATE, &stack.public_base(), &session, PASSWORD])
                .arg(n.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("python starts"),
        );
        cli.push((n, generate_cli(&stack, n)));
    }
    let mut ids = Vec::new();
    for child in api {
        let out = child.wait_with_output().expect("python ran");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let line = String::from_utf8_lossy(&out.stdout);
        let id: i64 = line
            .split_whitespace()
            .next()
            .and_then(|id| id.parse().ok())
            .expect("an id");
        ids.push(id);
    }
    let mut tries = 0;
    while let Some((n, child)) = cli.pop() {
        let out = child.wait_with_output().expect("pat-admin ran");
        if out.status.code() == Some(9) && tries < 400 {
            // Another check of alice's password was under way: nothing was done; retry.
            tries += 1;
            std::thread::sleep(std::time::Duration::from_millis(50));
            cli.insert(0, (n, generate_cli(&stack, n)));
            continue;
        }
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reply: Value = serde_json::from_slice(&out.stdout).expect("json");
        ids.push(reply["id"].as_i64().expect("id"));
    }
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 40, "40 distinct tokens");
    let listed = Client::new().get(
        &stack.api_url("GetTokens", &format!("session={session}")),
        &[],
    );
    let mut stored: Vec<i64> = listed.json["apiTokens"]
        .as_array()
        .expect("tokens")
        .iter()
        .map(|t| t["id"].as_i64().expect("id"))
        .collect();
    stored.sort_unstable();
    assert_eq!(stored, ids, "every change is stored");
    let audit = stack.admin_ok(
        &["--json", "audit", "--user", "alice", "--limit", "500"],
        "",
    );
    let generated = audit
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "token.generate")
        .count();
    assert_eq!(generated, 40, "every change is audited");
    // The edge ends up with all 40: whichever snapshot was pushed last holds every token.
    within(std::time::Duration::from_secs(20), || {
        stack.edge_status()["tokens"] == 40
    })
    .expect("the edge holds all 40 tokens");
}
