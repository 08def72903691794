//! Colour on a terminal only: plain when piped, off with `NO_COLOR`, forced with
//! `CLICOLOR_FORCE` (the tests' pipes are not terminals).

mod support;
use support::*;

#[test]
fn piped_output_is_plain_and_colour_can_be_forced_or_refused() {
    let admin = Admin::new();
    admin.user("alice");
    let (id, _) = admin.token("alice", &["--api", "marketplace"]);
    admin.expire(id);
    let plain = admin.run(&["list", "--user", "alice"]);
    assert!(!plain.ok().contains('\u{1b}'), "piped: no escape codes");

    let forced = Run::from_output(
        admin
            .command()
            .env("CLICOLOR_FORCE", "1")
            .env_remove("NO_COLOR")
            .args(["list", "--user", "alice"])
            .output()
            .expect("runs"),
    );
    assert!(
        forced.ok().contains("\u{1b}["),
        "forced colour: {:?}",
        forced.stdout
    );
    // Aligned the same with or without colour.
    let strip = |s: &str| {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                for c in chars.by_ref() {
                    if c == 'm' {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    };
    assert_eq!(strip(&forced.stdout), plain.stdout);

    let refused = Run::from_output(
        admin
            .command()
            .env("CLICOLOR_FORCE", "1")
            .env("NO_COLOR", "1")
            .args(["list", "--user", "alice"])
            .output()
            .expect("runs"),
    );
    assert!(!refused.ok().contains('\u{1b}'), "NO_COLOR wins");
}
