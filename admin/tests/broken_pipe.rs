//! A reader that goes away (`pat-admin methods | head -1`) ends the command quietly: exit 0,
//! nothing on stderr, no panic.

mod support;

use std::io::Read;
use std::process::Stdio;

use support::*;

fn closed_early(admin: &Admin, args: &[&str]) -> (Option<i32>, String) {
    let mut child = admin
        .std_command()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starts");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).expect("one byte");
    drop(stdout); // like `head -c1`
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    (child.wait().expect("exits").code(), stderr)
}

#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    let admin = Admin::new();
    for args in [
        &["methods"][..],
        &["--json", "methods"],
        &["completions", "bash"],
    ] {
        let (code, stderr) = closed_early(&admin, args);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(stderr, "", "{args:?}");
    }
}
