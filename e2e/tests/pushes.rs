//! Pushes to the real control listener: forged, replayed-older and truncated snapshots are
//! rejected and change nothing.

use pat_core::keys::SigningKey;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf};
use pat_e2e::{Client, Stack, unix_now};

const STOPENV: &str = "/1.0/environment/control/rest/stopenv";

fn published(stack: &Stack, version: i64) -> Vec<u8> {
    stack
        .db()
        .query_row(
            "SELECT bytes FROM snapshots WHERE version = ?1",
            [version],
            |row| row.get(0),
        )
        .expect("a published snapshot")
}

#[test]
fn bad_pushes_are_rejected_and_change_nothing() {
    let stack = Stack::start();
    let (_, token) = stack.token(&["--api", "ide-plugins"]); // version 1
    stack.token(&["--api", "marketplace"]); // version 2
    let client = Client::new();
    let control = format!("{}/_pat/snapshot", stack.control_url());
    let status = || client.get(&control, &[]).json;
    assert_eq!(status()["version"], 2);

    let forged = SnapshotBuilder::new()
        .build(
            Stamp::lasting(99, unix_now(), 86_400),
            StateOf::Genesis,
            &SigningKey::generate().expect("rng"),
        )
        .expect("build")
        .bytes;
    let older = published(&stack, 1);
    let mut truncated = published(&stack, 2);
    truncated.truncate(truncated.len() / 2);
    for (what, body, code) in [
        ("forged", forged, 403),
        ("replayed older", older, 409),
        ("truncated", truncated, 400),
    ] {
        let answer = client.put(&control, body);
        assert_eq!(
            (answer.status, answer.json["result"].as_i64()),
            (code, Some(i64::from(code))),
            "{what}: {answer:?}"
        );
        assert_eq!(answer.json["source"], "pat-edge");
        assert_eq!(status()["version"], 2, "{what} changed nothing");
        for _ in 0..8 {
            assert!(
                client
                    .get(&stack.url(&format!("{STOPENV}?session={token}")), &[])
                    .is_ok(),
                "{what}"
            );
        }
    }
    let stats = stack.stats();
    assert!(
        stats.contains("wasmcustom.pat_edge.push.rejected: 3"),
        "{}",
        grep(&stats, "push")
    );

    // Nothing changed since version 2: publish pushes it again, which the edge already holds.
    let again = stack.admin_ok(&["--json", "publish"], "");
    assert_eq!(
        (&again["version"], &again["edges"][0]["outcome"]),
        (&2.into(), &"already_current".into()),
        "{again}"
    );
    // pat-admin reports an edge that already holds a snapshot as current on a resend.
    let resend = stack.admin_ok(&["--json", "publish", "--resend"], "");
    assert_eq!(resend["edges"][0]["outcome"], "already_current", "{resend}");
}

fn grep(text: &str, needle: &str) -> String {
    text.lines()
        .filter(|l| l.contains(needle))
        .collect::<Vec<_>>()
        .join("\n")
}
