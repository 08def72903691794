//! Parallel password guesses get one check at a time: at most one password check per account
//! (or login that names none) and per client address waits or runs at once, through the real
//! binary, for the API's `Signin`, the API's change confirmations (what the Access Tokens
//! page calls) and the CLI's. The others are refused at once (API `result` 714 with
//! `retryAfter`, CLI exit 9), audited, and checked nothing: with the right password among
//! them, it is not accepted unless it was the one checked.
//!
//! Each parallel round is released at once: every request is written but its last byte (every
//! CLI process started and waiting on its password), then the last bytes go together.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// The client address header [`Admin::serve_api`] trusts.
const CLIENT: &str = "x-test-client";
/// Parallel attempts per round.
const PARALLEL: usize = 20;

/// The tests of this file run one at a time: each loads the machine with 20 parallel
/// attempts (one of them 20 connections for 20 s), and their timing bounds are about one
/// round, not about the others'.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serialized() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A token API request written but its last byte.
struct Pending {
    stream: TcpStream,
    last: u8,
    sent: Option<Instant>,
}

impl Pending {
    fn get(port: u16, method: &str, query: &str, from: &str) -> Self {
        let request = format!(
            "GET /1.0/users/authentication/rest/{method}?{query} HTTP/1.1\r\nHost: x\r\n{CLIENT}: {from}\r\nConnection: close\r\n\r\n"
        );
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let (head, last) = request.as_bytes().split_at(request.len() - 1);
        stream.write_all(head).expect("send");
        Self {
            stream,
            last: last[0],
            sent: None,
        }
    }

    fn release(&mut self) {
        self.stream.write_all(&[self.last]).expect("send");
        self.sent = Some(Instant::now());
    }

    /// The JSON answer and how long it took after the release.
    fn answer(mut self) -> (Value, Duration) {
        let mut raw = Vec::new();
        self.stream.read_to_end(&mut raw).expect("an answer");
        let took = self.sent.expect("released").elapsed();
        let text = String::from_utf8_lossy(&raw);
        let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (
            serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {text}")),
            took,
        )
    }
}

/// Releases every pending request at once and collects the answers, in order.
fn release_all(mut pending: Vec<Pending>) -> Vec<(Value, Duration)> {
    for p in &mut pending {
        p.release();
    }
    let threads: Vec<_> = pending
        .into_iter()
        .map(|p| std::thread::spawn(move || p.answer()))
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("answer thread"))
        .collect()
}

/// What a round of answers were: (checked and right, checked and wrong, refused).
fn tally(answers: &[(Value, Duration)], wrong_code: i64) -> (usize, usize, usize) {
    let mut counts = (0, 0, 0);
    for (answer, _) in answers {
        match answer["result"].as_i64() {
            Some(0) => counts.0 += 1,
            Some(code) if code == wrong_code => counts.1 += 1,
            Some(714) => {
                counts.2 += 1;
                let error = answer["error"].as_str().unwrap_or_default();
                assert!(
                    error.starts_with("too many attempts") && error.contains("retry in"),
                    "{answer}"
                );
                assert!(
                    answer["retryAfter"].as_u64().is_some_and(|s| s >= 1),
                    "{answer}"
                );
                assert_eq!(answer["source"], "pat-admin", "{answer}");
            }
            _ => panic!("unexpected answer: {answer}"),
        }
    }
    counts
}

/// How many refused attempts the audit log accounts for: one entry for the first refused
/// while a check is under way, and one "N more attempt(s) refused" when it ends.
fn refusals_audited(admin: &Admin) -> usize {
    admin
        .audit()
        .iter()
        .filter(|e| e["action"] == "auth.refused")
        .map(|e| {
            let detail = e["detail"].as_str().expect("detail");
            match detail.split_once(" more attempt(s) refused") {
                Some((n, _)) => n.parse::<usize>().expect("a count"),
                None => {
                    assert!(detail.contains("not checked"), "{detail}");
                    1
                }
            }
        })
        .sum()
}

fn audited(admin: &Admin, action: &str) -> usize {
    admin
        .audit()
        .iter()
        .filter(|e| e["action"] == action)
        .count()
}

/// `n` wrong sign-ins of `login`, one after another (the back-off grows: 0, 250, 500, 1000
/// ms ...), from addresses used nowhere else.
fn grow_back_off(server: &Server, login: &str, n: usize) {
    for i in 0..n {
        let reply = http_request(
            server.api_port.expect("api"),
            "GET",
            &format!("/1.0/users/authentication/rest/Signin?login={login}&password=grow-{i}"),
            &format!("{CLIENT}: 10.99.{i}.1\r\n"),
            &[],
        );
        assert_eq!(reply.json()["result"], 710);
    }
}

/// The back-off before the check that follows `failures` consecutive wrong passwords.
fn delay_after(failures: u32) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => Duration::from_millis(250u64 << (n - 1).min(6)),
    }
}

/// The most wrong passwords that can be checked one at a time within `window`: each waits
/// the back-off of the failures before it, and a right password (`resets` of them) starts
/// the count again. Checking in parallel exceeds it at once: 20 checks at zero back-off.
fn one_at_a_time_admits(window: Duration, resets: usize) -> usize {
    // The back-off before n wrong checks in a row: 0, 0.25, 0.75, 1.75 ... s.
    let cost = |n: u32| (0..n).map(delay_after).sum::<Duration>();
    let runs = resets + 1;
    let mut best = 0;
    // Split the checks into `runs` runs (at most two here), each starting its count at 0.
    for a in 0u32..=30 {
        for b in 0u32..=if runs > 1 { 30 } else { 0 } {
            if cost(a) + cost(b) <= window {
                best = best.max((a + b) as usize);
            }
        }
    }
    best
}

fn sign_in_query(login: &str, password: &str) -> String {
    format!("login={login}&password={}", enc(password))
}

#[test]
fn parallel_sign_ins_at_zero_back_off_get_one_check_at_a_time() {
    let _serial = serialized();
    let admin = Admin::new();
    admin.user("alice");
    let server = admin.serve_api();
    let port = server.api_port.expect("api");
    // 19 wrong passwords and the right one, from 20 addresses: only the account is shared.
    let pending: Vec<Pending> = (0..PARALLEL)
        .map(|i| {
            let password = if i == PARALLEL / 2 {
                PASSWORD.to_string()
            } else {
                format!("guess-{i}")
            };
            Pending::get(
                port,
                "Signin",
                &sign_in_query("alice", &password),
                &format!("10.1.{i}.1"),
            )
        })
        .collect();
    let answers = release_all(pending);
    let (right, wrong, refused) = tally(&answers, 710);
    let round = answers
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    assert!(
        right <= 1 && wrong <= one_at_a_time_admits(round, right),
        "{right} right, {wrong} wrong, {refused} refused of {PARALLEL} parallel sign-ins in {round:?}: {answers:?}"
    );
    assert_eq!(audited(&admin, "auth.failed"), wrong);
    assert_eq!(refusals_audited(&admin), refused);
    assert!(audited(&admin, "auth.refused") <= 2 * (right + wrong));
    // Refused at once: not after a back-off or a check of their own.
    for (answer, took) in &answers {
        if answer["result"] == 714 {
            assert!(*took < Duration::from_secs(5), "{took:?}: {answer}");
        }
    }
}

#[test]
fn parallel_sign_ins_at_a_grown_back_off_check_one_and_refuse_the_right_password() {
    let _serial = serialized();
    let admin = Admin::new();
    admin.user("alice");
    let server = admin.serve_api();
    let port = server.api_port.expect("api");
    // Four failures: the next check waits 2 s.
    grow_back_off(&server, "alice", 4);
    let mut wrong: Vec<Pending> = (0..PARALLEL - 1)
        .map(|i| {
            Pending::get(
                port,
                "Signin",
                &sign_in_query("alice", &format!("guess-{i}")),
                &format!("10.2.{i}.1"),
            )
        })
        .collect();
    let mut right = Pending::get(
        port,
        "Signin",
        &sign_in_query("alice", PASSWORD),
        "10.2.99.1",
    );
    let started = Instant::now();
    for p in &mut wrong {
        p.release();
    }
    // The right password comes while the first check waits its 2 s.
    std::thread::sleep(Duration::from_millis(300));
    right.release();
    let (right_answer, right_took) = right.answer();
    let answers: Vec<_> = wrong.into_iter().map(Pending::answer).collect();
    let elapsed = started.elapsed();
    assert_eq!(right_answer["result"], 714, "{right_answer}");
    assert!(right_took < Duration::from_millis(1500), "{right_took:?}");
    let (ok, failed, refused) = tally(&answers, 710);
    assert_eq!((ok, failed, refused), (0, 1, PARALLEL - 2), "{answers:?}");
    assert!(elapsed >= Duration::from_secs(2), "{elapsed:?}");
    // Exactly one guess was checked: four before, one now; no session was made.
    assert_eq!(audited(&admin, "auth.failed"), 5);
    assert_eq!(refusals_audited(&admin), PARALLEL - 1);
    assert_eq!(
        audited(&admin, "auth.refused"),
        2,
        "the first, then the rest in one entry"
    );
    let sessions: i64 = admin
        .db()
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .expect("count");
    assert_eq!(sessions, 0);
    // Once the check is over, the right password signs in (after the back-off).
    let reply = http_request(
        port,
        "GET",
        &format!(
            "/1.0/users/authentication/rest/Signin?{}",
            sign_in_query("alice", PASSWORD)
        ),
        &format!("{CLIENT}: 10.2.99.1\r\n"),
        &[],
    );
    assert_eq!(reply.json()["result"], 0, "{:?}", reply.json());
}

#[test]
fn one_check_at_a_time_per_client_address_and_per_unknown_login() {
    let _serial = serialized();
    let admin = Admin::new();
    admin.user("alice");
    let server = admin.serve_api();
    let port = server.api_port.expect("api");
    // One address trying 20 logins (most of them unknown) at a grown back-off of that address.
    for i in 0..4 {
        let reply = http_request(
            port,
            "GET",
            &format!("/1.0/users/authentication/rest/Signin?login=ghost{i}&password=x"),
            &format!("{CLIENT}: 10.3.0.1\r\n"),
            &[],
        );
        assert_eq!(reply.json()["result"], 710);
    }
    let pending: Vec<Pending> = (0..PARALLEL)
        .map(|i| {
            let login = if i == 0 {
                "alice".to_string()
            } else {
                format!("nobody{i}")
            };
            Pending::get(port, "Signin", &sign_in_query(&login, "guess"), "10.3.0.1")
        })
        .collect();
    let (_, wrong, refused) = tally(&release_all(pending), 710);
    assert_eq!((wrong, refused), (1, PARALLEL - 1));
    // One unknown login from 20 addresses: its slot is shared like an account's.
    grow_back_off(&server, "ghost", 4);
    let pending: Vec<Pending> = (0..PARALLEL)
        .map(|i| {
            Pending::get(
                port,
                "Signin",
                &sign_in_query("Ghost", "guess"),
                &format!("10.4.{i}.1"),
            )
        })
        .collect();
    let (_, wrong, refused) = tally(&release_all(pending), 710);
    assert_eq!((wrong, refused), (1, PARALLEL - 1));
}

/// An account with a token and a signed-in session: (admin, server, session, token id).
fn with_token() -> (Admin, Server, String, i64) {
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token("alice", &["--api", "ide-plugins"]);
    let server = admin.serve_api();
    let session = server.sign_in("alice");
    (admin, server, session, id)
}

fn edit_query(session: &str, id: i64, password: &str, description: &str) -> String {
    format!(
        "session={session}&id={id}&password={}&description={}",
        enc(password),
        enc(description)
    )
}

fn description(admin: &Admin, id: i64) -> String {
    admin
        .db()
        .query_row("SELECT description FROM tokens WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .expect("token")
}

#[test]
fn parallel_change_confirmations_get_one_check_at_a_time() {
    let _serial = serialized();
    let (admin, server, session, id) = with_token();
    let port = server.api_port.expect("api");
    // At zero back-off: 19 wrong, the right one in the middle.
    let pending: Vec<Pending> = (0..PARALLEL)
        .map(|i| {
            let password = if i == PARALLEL / 2 {
                PASSWORD.to_string()
            } else {
                format!("guess-{i}")
            };
            Pending::get(
                port,
                "EditToken",
                &edit_query(&session, id, &password, &format!("edited {i}")),
                &format!("10.5.{i}.1"),
            )
        })
        .collect();
    let answers = release_all(pending);
    let (right, wrong, refused) = tally(&answers, 710);
    let round = answers
        .iter()
        .map(|(_, took)| *took)
        .max()
        .unwrap_or_default();
    assert!(
        right <= 1 && wrong <= one_at_a_time_admits(round, right),
        "{right} right, {wrong} wrong, {refused} refused in {round:?}: {answers:?}"
    );
    if right == 0 {
        assert_eq!(description(&admin, id), "test token");
    }

    // At a grown back-off (four more failures: the next check waits at least 2 s), the right
    // password arriving while a wrong one waits is refused and changes nothing.
    for i in 0..4 {
        let reply = http_request(
            port,
            "GET",
            &format!(
                "/1.0/users/authentication/rest/EditToken?{}",
                edit_query(&session, id, &format!("grow-{i}"), "x")
            ),
            &format!("{CLIENT}: 10.6.{i}.1\r\n"),
            &[],
        );
        assert_eq!(reply.json()["result"], 710);
    }
    let before = description(&admin, id);
    let failed_before = audited(&admin, "auth.failed");
    let mut wrong: Vec<Pending> = (0..PARALLEL - 1)
        .map(|i| {
            Pending::get(
                port,
                "EditToken",
                &edit_query(&session, id, &format!("guess-{i}"), "attacker"),
                &format!("10.7.{i}.1"),
            )
        })
        .collect();
    let mut right = Pending::get(
        port,
        "EditToken",
        &edit_query(&session, id, PASSWORD, "right password"),
        "10.7.99.1",
    );
    for p in &mut wrong {
        p.release();
    }
    std::thread::sleep(Duration::from_millis(300));
    right.release();
    let (right_answer, _) = right.answer();
    let answers: Vec<_> = wrong.into_iter().map(Pending::answer).collect();
    assert_eq!(right_answer["result"], 714, "{right_answer}");
    let (ok, failed, refused) = tally(&answers, 710);
    assert_eq!((ok, failed, refused), (0, 1, PARALLEL - 2), "{answers:?}");
    assert_eq!(audited(&admin, "auth.failed"), failed_before + 1);
    assert_eq!(description(&admin, id), before);
}

/// Starts `pat-admin edit` for token `id`, which then waits for its password on stdin.
fn cli_edit(admin: &Admin, id: i64, description: &str) -> Child {
    admin
        .std_command()
        .args([
            "edit",
            "--user",
            "alice",
            &id.to_string(),
            "--description",
            description,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pat-admin starts")
}

/// Waits until the process blocks reading its standard input (Linux: `/proc/PID/syscall`
/// names `read` (0 on x86-64, 63 on aarch64) on descriptor 0).
fn wait_reading_stdin(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let syscall =
            std::fs::read_to_string(format!("/proc/{}/syscall", child.id())).unwrap_or_default();
        let mut fields = syscall.split_whitespace();
        let number = fields.next().unwrap_or_default();
        let fd = fields.next().unwrap_or_default();
        if (number == "0" || number == "63") && fd == "0x0" {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut err) = child.stderr.take() {
                let _ = err.read_to_string(&mut stderr);
            }
            panic!("pat-admin exited ({status}) before it read its password: {stderr}");
        }
        assert!(
            Instant::now() < deadline,
            "pat-admin never read its password: /proc says {syscall:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `n` edits (round `round`: descriptions no earlier round gave, so none is an edit
/// to the values the token already has, which needs no password), waits until all wait for
/// their passwords, gives them `password(i)` at once; their exit codes and stderr, and how
/// long the round took from then.
fn parallel_cli_edits(
    admin: &Admin,
    id: i64,
    round: usize,
    n: usize,
    password: impl Fn(usize) -> String,
) -> (Vec<(i32, String)>, Duration) {
    let mut children: Vec<Child> = (0..n)
        .map(|i| cli_edit(admin, id, &format!("cli edit {round}.{i}")))
        .collect();
    for child in &mut children {
        wait_reading_stdin(child);
    }
    let released = Instant::now();
    for (i, child) in children.iter_mut().enumerate() {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(format!("{}\n", password(i)).as_bytes())
            .expect("password written");
    }
    let runs = children
        .into_iter()
        .map(|child| {
            let run = Run::from_output(child.wait_with_output().expect("pat-admin ends"));
            (run.code, run.stderr)
        })
        .collect();
    (runs, released.elapsed())
}

#[test]
fn parallel_cli_confirmations_get_one_check_at_a_time() {
    let _serial = serialized();
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token("alice", &["--api", "ide-plugins"]);
    // Zero back-off: 19 wrong, the right one in the middle.
    let (runs, round) = parallel_cli_edits(&admin, id, 1, PARALLEL, |i| {
        if i == PARALLEL / 2 {
            PASSWORD.to_string()
        } else {
            format!("guess-{i}")
        }
    });
    let count = |code: i32| runs.iter().filter(|(c, _)| *c == code).count();
    let (right, wrong, refused) = (count(0), count(3), count(9));
    assert_eq!(right + wrong + refused, PARALLEL, "{runs:?}");
    assert!(
        right <= 1 && wrong <= one_at_a_time_admits(round, right),
        "{right} right, {wrong} wrong, {refused} refused in {round:?}: {runs:?}"
    );
    for (code, stderr) in &runs {
        if *code == 9 {
            assert!(
                stderr.contains("too many attempts") && stderr.contains("retry in"),
                "{stderr}"
            );
        }
    }

    // Grown back-off: four more failures, then 20 at once: one waits and checks, 19 are
    // refused at once (the right password among them).
    for i in 0..4 {
        admin
            .confirmed_with(
                &[
                    "edit",
                    "--user",
                    "alice",
                    &id.to_string(),
                    "--description",
                    "g",
                ],
                &format!("grow-{i}"),
            )
            .fails(3);
    }
    let before = description(&admin, id);
    let (runs, _) = parallel_cli_edits(&admin, id, 2, PARALLEL, |i| {
        if i == PARALLEL - 1 {
            PASSWORD.to_string()
        } else {
            format!("guess-{i}")
        }
    });
    let count = |code: i32| runs.iter().filter(|(c, _)| *c == code).count();
    assert_eq!(
        (count(0), count(3), count(9)),
        (0, 1, PARALLEL - 1),
        "{runs:?}"
    );
    assert_eq!(description(&admin, id), before);
    assert!(refusals_audited(&admin) >= PARALLEL - 1);
}

/// The figure the issue asks for: how many passwords an attacker with 20 parallel
/// connections gets checked against one account in a window (`PAT_ATTEMPTS_WINDOW` seconds,
/// default 20), every connection guessing again as soon as it is answered (the last ones
/// admitted are answered after the window). One check at a time after the back-off (0, 0.25,
/// 0.5, 1, 2, 4, 8, 16 s) admits 8 in the first 20 s, then one every 16 s; without it, every
/// connection waited out the back-off on its own: 20 at once, then 20 every 16 s.
#[test]
fn guesses_per_window_with_20_parallel_connections() {
    let _serial = serialized();
    let window = std::env::var("PAT_ATTEMPTS_WINDOW")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(20);
    let admin = Admin::new();
    admin.user("alice");
    let server = admin.serve_api();
    let port = server.api_port.expect("api");
    let end = Instant::now() + Duration::from_secs(window);
    let workers: Vec<_> = (0..PARALLEL)
        .map(|w| {
            std::thread::spawn(move || {
                let (mut checked, mut refused, mut n) = (0u64, 0u64, 0u64);
                while Instant::now() < end {
                    let pending = Pending::get(
                        port,
                        "Signin",
                        &sign_in_query("alice", &format!("guess-{w}-{n}")),
                        &format!("10.{w}.{}.1", n % 250),
                    );
                    n += 1;
                    let mut p = pending;
                    p.release();
                    let (answer, _) = p.answer();
                    match answer["result"].as_i64() {
                        Some(710) => checked += 1,
                        Some(714) => refused += 1,
                        _ => panic!("unexpected: {answer}"),
                    }
                }
                (checked, refused)
            })
        })
        .collect();
    let (checked, refused) = workers
        .into_iter()
        .map(|w| w.join().expect("worker"))
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let per_minute = checked as f64 * 60.0 / window as f64;
    let entries = admin.audit().len();
    println!(
        "{PARALLEL} parallel connections, {window} s: {checked} passwords checked ({per_minute:.1} per minute), {refused} attempts refused, {entries} audit entries"
    );
    // Refusals are audited in sum: the log grows with the checks, not with the flood.
    assert_eq!(refusals_audited(&admin) as u64, refused);
    assert!(entries as u64 <= 1 + 3 * checked, "{entries} audit entries");
    // One at a time: a check takes the slot when the one before ends, then waits its
    // back-off; those that took it within the window are all that may have been checked.
    let mut admitted = 0;
    let mut starts_at = Duration::ZERO;
    for failures in 0u32.. {
        if starts_at >= Duration::from_secs(window) {
            break;
        }
        admitted += 1;
        starts_at += delay_after(failures);
    }
    assert!(
        checked <= admitted,
        "{checked} passwords checked in {window} s, one at a time admits {admitted}"
    );
}
