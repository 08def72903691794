//! `man --dir DIR` writes man pages generated from the clap definitions.

mod support;
use support::*;

#[test]
fn man_pages_are_written_for_every_command() {
    let admin = Admin::new();
    let dir = admin.dir.path().join("man1");
    let run = admin.run(&["--json", "man", "--dir", dir.to_str().expect("utf-8")]);
    run.ok();
    let pages: Vec<String> = run.json()["pages"]
        .as_array()
        .expect("pages")
        .iter()
        .map(|p| p.as_str().expect("name").to_string())
        .collect();
    for page in [
        "pat-admin.1",
        "pat-admin-generate.1",
        "pat-admin-key-generate.1",
        "pat-admin-revoke-leaked.1",
    ] {
        assert!(pages.iter().any(|p| p == page), "{page} in {pages:?}");
        assert!(dir.join(page).is_file(), "{page}");
    }
    let top = std::fs::read_to_string(dir.join("pat-admin.1")).expect("page");
    assert!(
        top.starts_with(".ie") || top.contains(".TH"),
        "roff: {}",
        &top[..80]
    );
    assert!(top.contains("revoke\\-leaked"), "lists the commands");
    let generate = std::fs::read_to_string(dir.join("pat-admin-key-generate.1")).expect("page");
    assert!(generate.contains("\\-\\-inactive"), "its flags");
    assert!(
        generate.contains("pat\\-admin key generate"),
        "how it is typed"
    );
    // The token parameters of issue 14: allowed networks and grace windows.
    for (page, flags) in [
        ("pat-admin-generate.1", &["\\-\\-allow\\-ip"][..]),
        (
            "pat-admin-edit.1",
            &["\\-\\-allow\\-ip", "\\-\\-no\\-ip\\-limit"],
        ),
        ("pat-admin-regenerate.1", &["\\-\\-grace", "max\\-grace"]),
    ] {
        let text = std::fs::read_to_string(dir.join(page)).expect(page);
        for flag in flags {
            assert!(text.contains(flag), "{flag} in {page}");
        }
    }
    assert!(!admin.store().exists(), "needs no store");
}
