//! Platform mode through the real Envoy (`envoy-platform.yaml`): the platform (the stand-in)
//! signs its users in, and `pat-admin serve --platform-url` learns whose a session is from
//! its `GetUserInfo` and has it confirm every change's password (its `Signin`, then
//! `Signout`). A real platform client, py-jelastic, drives the account holder's side
//! (`py_jelastic_platform_mode.py`); these tests add what it cannot see: no platform session
//! or password anywhere in pat-edge's store, logs or audit; a platform that is down, slow or
//! answers garbage; what the platform receives as the identity; routing; `user disable`.

use std::process::Command;
use std::time::{Duration, Instant};

use pat_e2e::{
    Client, PASSWORD, PLATFORM_ACCOUNTS, PLATFORM_PASSWORD, Stack, python, root, within,
};
use serde_json::Value;

const STOPENV: &str = "/1.0/environment/control/rest/stopenv?envName=e2e";

/// Signs in to the platform through Envoy (routed to the platform in this mode): the session.
fn platform_sign_in(stack: &Stack, email: &str) -> String {
    let answer = Client::new().post(
        &stack.api_url("Signin", ""),
        "application/x-www-form-urlencoded",
        format!(
            "login={}&password={}",
            email.replace('@', "%40"),
            PLATFORM_PASSWORD.replace(' ', "+")
        )
        .into_bytes(),
    );
    assert_eq!(answer.json["result"], 0, "{answer:?}");
    answer.json["session"]
        .as_str()
        .expect("session")
        .to_string()
}

/// A token method through Envoy with a form body: the JSON answer and how long it took.
fn call(stack: &Stack, method: &str, form: &str) -> (Value, Duration) {
    let started = Instant::now();
    let answer = Client::new().post(
        &stack.api_url(method, ""),
        "application/x-www-form-urlencoded",
        form.as_bytes().to_vec(),
    );
    (answer.json, started.elapsed())
}

fn create(stack: &Stack, session: &str, description: &str) -> Value {
    let (answer, _) = call(
        stack,
        "CreateToken",
        &format!(
            "session={session}&password={}&description={description}&apiList=env.control.StopEnv",
            PLATFORM_PASSWORD.replace(' ', "+")
        ),
    );
    answer
}

/// Every file pat-edge wrote: the store (database, WAL, keys) and the logs of pat-admin serve
/// and Envoy (the stand-in's own log is the platform's, not pat-edge's).
fn pat_edge_files(stack: &Stack) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut dirs = vec![stack.dir.path().to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.ends_with("standin.log") {
                files.push((
                    path.display().to_string(),
                    std::fs::read(&path).unwrap_or_default(),
                ));
            }
        }
    }
    files
}

fn assert_nowhere(stack: &Stack, secrets: &[&str]) {
    for (name, bytes) in pat_edge_files(stack) {
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "a secret ({}…) is in {name}",
                &secret[..6.min(secret.len())]
            );
        }
    }
}

#[test]
fn py_jelastic_manages_tokens_with_the_platform_account_it_already_has() {
    let stack = Stack::start_platform();
    let script = root().join("e2e/tests/py_jelastic_platform_mode.py");
    let out = Command::new(python())
        .arg(&script)
        .arg(stack.public_base())
        .arg(stack.platform_base())
        .arg(PLATFORM_ACCOUNTS[0].1)
        .arg(PLATFORM_ACCOUNTS[1].1)
        .arg(PLATFORM_PASSWORD)
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the py-jelastic platform-mode scenario failed ({}):\n{stdout}\n{stderr}\norigin log:\n{}",
        out.status,
        stack.origin_log()
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");
    // Accounts are the platform's: keyed by uid, with their email; no password here.
    let users = stack.admin_ok(&["--json", "user", "list"], "");
    let users = users.as_array().expect("users");
    assert_eq!(users.len(), 2, "{users:?}");
    assert_eq!(users[0]["name"], "uid:1001");
    assert_eq!(users[0]["email"], "alice@example.com");
    assert_eq!(users[0]["identity"], "1001");
    assert_eq!(users[1]["name"], "uid:1002");
    // The audit log names the API and the client address, wrong passwords among them.
    let audit = stack.admin_ok(
        &["--json", "audit", "--user", "uid:1001", "--limit", "500"],
        "",
    );
    let entries = audit.as_array().expect("entries");
    let count = |action: &str| entries.iter().filter(|e| e["action"] == action).count();
    assert_eq!(count("auth.failed"), 4, "{audit:#}");
    assert!(
        entries
            .iter()
            .filter(|e| e["action"] == "auth.failed")
            .all(|e| e["actor"] == "api 127.0.0.1")
    );
    assert_eq!(count("user.email"), 2, "the change and the change back");
    assert_eq!(count("token.generate"), 1);
    assert_eq!(count("token.regenerate"), 1);
    // No platform session, password or token value in pat-edge's store, logs or audit.
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("secrets: "))
        .expect("the secrets line");
    let secrets: Vec<String> = serde_json::from_str(line).expect("a JSON list");
    assert!(secrets.len() >= 7, "{secrets:?}");
    assert_nowhere(
        &stack,
        &secrets.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // (The password has a space: look for it as sent, too.)
    assert_nowhere(
        &stack,
        &[PLATFORM_PASSWORD, &PLATFORM_PASSWORD.replace(' ', "+")],
    );
}

#[test]
fn signin_and_signout_stay_with_the_platform_and_only_token_methods_reach_pat_admin() {
    let stack = Stack::start_platform();
    let session = platform_sign_in(&stack, "alice@example.com");
    assert_eq!(stack.standin("/_standin/calls")["Signin"], 1);
    // Any case reaches pat-admin for the token methods...
    let (answer, _) = call(&stack, "GETTOKENTEMPLATES", &format!("session={session}"));
    assert_eq!(answer["result"], 0, "{answer}");
    let answer = Client::new().get(
        &stack.url(&format!(
            "/1.0/Users/Authentication/REST/GetTokens?session={session}"
        )),
        &[],
    );
    assert_eq!(answer.json["result"], 0, "{answer:?}");
    assert!(answer.json.get("apiTokens").is_some(), "{answer:?}");
    // ...every other users.Authentication method goes to the platform (the stand-in echoes
    // the method it got).
    let other = Client::new().get(
        &stack.url(&format!(
            "/1.0/users/authentication/rest/getsessions?session={session}"
        )),
        &[],
    );
    assert_eq!(
        other.json["method"], "users.authentication.getsessions",
        "{other:?}"
    );
    // Signout is the platform's: the session ends there, and pat-admin then refuses it (once
    // its cached answer is a second old).
    let out = Client::new().get(
        &stack.url(&format!(
            "/1.0/users/authentication/rest/signout?session={session}"
        )),
        &[],
    );
    assert_eq!(out.json["result"], 0, "{out:?}");
    assert_eq!(stack.standin("/_standin/calls")["Signout"], 1);
    std::thread::sleep(Duration::from_millis(1200));
    let (answer, _) = call(&stack, "GetTokens", &format!("session={session}"));
    assert_eq!(answer["result"], 701, "{answer}");
    assert_eq!(answer["source"], "pat-admin");
    // pat-admin does not serve Signin in this mode, even when reached directly.
    let direct = Client::new().get(
        &format!(
            "http://127.0.0.1:{}/1.0/users/authentication/rest/signin?login=a&password=b",
            stack.ports.api
        ),
        &[],
    );
    assert_eq!(direct.json["result"], 713, "{direct:?}");
    assert!(
        direct.json["error"]
            .as_str()
            .unwrap_or_default()
            .contains("the platform's own"),
        "{direct:?}"
    );
    // The session cache: several calls within a second ask the platform once.
    let session = platform_sign_in(&stack, "bob@example.com");
    let before = stack.standin("/_standin/calls")["GetUserInfo"]
        .as_u64()
        .unwrap_or(0);
    for _ in 0..5 {
        let (answer, _) = call(&stack, "GetTokens", &format!("session={session}"));
        assert_eq!(answer["result"], 0, "{answer}");
    }
    let after = stack.standin("/_standin/calls")["GetUserInfo"]
        .as_u64()
        .unwrap_or(0);
    assert!(after - before <= 2, "{before} -> {after}");
}

#[test]
fn a_platform_that_is_down_slow_or_answers_garbage_is_a_clear_error_and_changes_nothing() {
    let mut stack = Stack::start_platform();
    stack.admin_ok(&["config", "set", "platform-timeout", "2s"], "");
    stack.kill_origin();
    stack.start_origin();
    stack.wait_for_origin(stack.ports.api);
    let session = platform_sign_in(&stack, "alice@example.com");
    let created = create(&stack, &session, "kept");
    assert_eq!(created["result"], 0, "{created}");
    let tokens = || {
        let (answer, _) = call(&stack, "GetTokens", &format!("session={session}"));
        answer
    };
    let before = tokens();
    std::thread::sleep(Duration::from_millis(1200));
    for (mode, expected) in [("garbage", "not JSON"), ("slow&secs=20", "timed out")] {
        stack.standin(&format!("/_standin/mode?mode={mode}"));
        let (answer, took) = call(&stack, "GetTokens", &format!("session={session}"));
        assert_eq!(answer["result"], 716, "{mode}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(
            error.starts_with("the platform did not answer") && error.contains(expected),
            "{mode}: {error}"
        );
        assert!(
            took < Duration::from_secs(8),
            "{mode}: bounded, took {took:?}"
        );
        // A change: the session's answer is fresh (cached), but the password check fails.
        let (answer, took) = call(
            &stack,
            "EditToken",
            &format!(
                "session={session}&password={}&id={}&description=changed",
                PLATFORM_PASSWORD.replace(' ', "+"),
                created["token"]["id"]
            ),
        );
        assert!(
            answer["result"] == 716 || answer["result"] == 0,
            "{mode}: {answer}"
        );
        assert!(
            took < Duration::from_secs(12),
            "{mode}: bounded, took {took:?}"
        );
        stack.standin("/_standin/mode?mode=normal");
        std::thread::sleep(Duration::from_millis(1200));
        let now = tokens();
        assert_eq!(now["result"], 0, "{now}");
        assert_eq!(
            now["apiTokens"][0]["description"], before["apiTokens"][0]["description"],
            "{mode}: nothing changed"
        );
        // Nothing counted against the password either: the next change waits no back-off.
        let audit = stack.admin_ok(&["--json", "audit", "--limit", "100"], "");
        assert!(
            !audit
                .as_array()
                .expect("audit")
                .iter()
                .any(|e| e["action"] == "auth.failed"),
            "{mode}: {audit:#}"
        );
        // The next round must ask the platform again, not the cache.
        std::thread::sleep(Duration::from_millis(1200));
    }
    // Down: the platform is not there at all.
    stack.kill_standin();
    let (answer, took) = call(&stack, "GetTokens", "session=0123456789abcdef0123");
    assert_eq!(answer["result"], 716, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot connect"),
        "{answer}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[test]
fn the_platform_receives_the_uid_or_the_email_as_the_identity() {
    let stack = Stack::start_platform();
    let session = platform_sign_in(&stack, "alice@example.com");
    let created = create(&stack, &session, "identity");
    assert_eq!(created["result"], 0, "{created}");
    let key = created["token"]["key"].as_str().expect("key").to_string();
    let seen = |expected: &str| {
        within(Duration::from_secs(10), || {
            let answer = Client::new().get(&stack.url(&format!("{STOPENV}&session={key}")), &[]);
            answer.json["identity_headers"]["x-pat-user"][0] == expected
        })
        .is_some()
    };
    assert!(seen("1001"), "the uid by default");
    // The operator switches to the email: every platform account's tokens are re-signed.
    stack.admin_ok(&["config", "set", "platform-identity", "email"], "");
    assert!(seen("alice@example.com"), "the email after the switch");
    // An email change reaches the edges with the next look at the session.
    stack.standin("/_standin/account?uid=1001&email=alice%40new.example.com");
    std::thread::sleep(Duration::from_millis(1200));
    let (answer, _) = call(&stack, "GetTokens", &format!("session={session}"));
    assert_eq!(answer["result"], 0, "{answer}");
    assert!(seen("alice@new.example.com"), "the new email");
}

/// `user disable` takes every token of an account off the edges in one signed delta and
/// `user enable` brings them back, in both modes; a disabled account may not change tokens.
fn disable_and_enable(stack: &Stack, account: &str, session: &str, password: &str) {
    let make = |n: usize| {
        let (answer, _) = call(
            stack,
            "CreateToken",
            &format!(
                "session={session}&password={}&description=t{n}&apiList=env.control.StopEnv",
                password.replace(' ', "+")
            ),
        );
        assert_eq!(answer["result"], 0, "{answer}");
        answer["token"]["key"].as_str().expect("key").to_string()
    };
    let keys: Vec<String> = (0..3).map(make).collect();
    let works = |key: &str| {
        Client::new()
            .get(&stack.url(&format!("{STOPENV}&session={key}")), &[])
            .is_ok()
    };
    assert!(within(Duration::from_secs(10), || keys.iter().all(|k| works(k))).is_some());
    let version = stack.edge_status()["version"].as_u64().expect("version");
    let disabled = stack.admin_ok(
        &[
            "--json",
            "user",
            "disable",
            account,
            "--reason",
            "unpaid invoice",
        ],
        "",
    );
    assert_eq!(disabled["tokens"], 3, "{disabled}");
    assert_eq!(disabled["publish"]["state"], "published", "{disabled}");
    // One delta, pushed: enforced at once.
    assert_eq!(disabled["publish"]["version"], version + 1, "{disabled}");
    // Every worker within its refresh interval.
    assert!(
        within(Duration::from_secs(2), || keys.iter().all(|k| !works(k))).is_some(),
        "off the edges"
    );
    let users = stack.admin_ok(&["--json", "user", "list"], "");
    let row = users
        .as_array()
        .expect("users")
        .iter()
        .find(|u| {
            [&u["name"], &u["email"]]
                .iter()
                .any(|v| v.as_str().is_some_and(|n| n.eq_ignore_ascii_case(account)))
        })
        .expect("the account")
        .clone();
    assert_eq!(row["disabled"]["reason"], "unpaid invoice", "{row}");
    // A disabled account may not change tokens (715) and nothing changes.
    let (answer, _) = call(
        stack,
        "CreateToken",
        &format!(
            "session={session}&password={}&description=x&apiList=env.control.StopEnv",
            password.replace(' ', "+")
        ),
    );
    assert!(
        answer["result"] == 715 || answer["result"] == 701,
        "{answer}"
    );
    let enabled = stack.admin_ok(&["--json", "user", "enable", account], "");
    assert_eq!(enabled["tokens"], 3, "{enabled}");
    assert!(
        within(Duration::from_secs(2), || keys.iter().all(|k| works(k))).is_some(),
        "back on the edges"
    );
}

#[test]
fn user_disable_and_enable_in_standalone_mode() {
    let stack = Stack::start();
    let answer = Client::new().post(
        &stack.api_url("Signin", ""),
        "application/x-www-form-urlencoded",
        format!("login=alice&password={}", PASSWORD.replace(' ', "+")).into_bytes(),
    );
    let session = answer.json["session"]
        .as_str()
        .expect("session")
        .to_string();
    disable_and_enable(&stack, "alice", &session, PASSWORD);
}

#[test]
fn user_disable_and_enable_in_platform_mode_and_a_suspension_seen_by_the_service() {
    let stack = Stack::start_platform();
    let session = platform_sign_in(&stack, "alice@example.com");
    disable_and_enable(&stack, "alice@example.com", &session, PLATFORM_PASSWORD);
    // An operator's disable is not undone by the platform saying the account is enabled.
    stack.admin_ok(&["user", "disable", "uid:1001"], "");
    std::thread::sleep(Duration::from_millis(1200));
    let (answer, _) = call(&stack, "GetTokens", &format!("session={session}"));
    assert_eq!(answer["result"], 0, "reading is fine: {answer}");
    let (answer, _) = call(
        &stack,
        "DeleteTokens",
        &format!(
            "session={session}&password={}&ids=*",
            PLATFORM_PASSWORD.replace(' ', "+")
        ),
    );
    assert_eq!(answer["result"], 715, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or_default()
            .contains("pat-admin user enable uid:1001"),
        "{answer}"
    );
}

/// The CLI acting for a platform account: its password is the platform's, checked by the
/// platform named in the store (`config set platform-url`), with the same back-off.
#[test]
fn the_cli_confirms_a_platform_accounts_password_with_the_platform() {
    let stack = Stack::start_platform();
    // The account exists once it used the token API.
    let session = platform_sign_in(&stack, "alice@example.com");
    let (answer, _) = call(&stack, "GetTokens", &format!("session={session}"));
    assert_eq!(answer["result"], 0, "{answer}");
    let generate = |password: &str| {
        stack.admin(
            &[
                "--json",
                "generate",
                "--user",
                "alice@example.com",
                "--description",
                "from the CLI",
                "--api",
                "ide-plugins",
                "--password-stdin",
            ],
            &format!("{password}\n"),
        )
    };
    // No platform in the store's settings (serve got it as a flag): refused, nothing asked.
    let out = generate(PLATFORM_PASSWORD);
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("pat-admin config set platform-url"),
        "{stderr}"
    );
    stack.admin_ok(
        &["config", "set", "platform-url", &stack.platform_base()],
        "",
    );
    let signins = stack.standin("/_standin/calls")["Signin"]
        .as_u64()
        .unwrap_or(0);
    let out = generate("not the password");
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let out = generate(PLATFORM_PASSWORD);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let created: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(created["user"], "uid:1001");
    assert_eq!(created["email"], "alice@example.com");
    assert_eq!(
        stack.standin("/_standin/calls")["Signin"]
            .as_u64()
            .unwrap_or(0),
        signins + 2,
        "both passwords were the platform's to check"
    );
    let listed = stack.admin_ok(&["list", "--user", "uid:1001"], "");
    assert!(listed.is_null(), "a table, not JSON");
    let human = String::from_utf8_lossy(&stack.admin(&["list"], "").stdout).to_string();
    assert!(human.contains("uid:1001 (alice@example.com)"), "{human}");
}
