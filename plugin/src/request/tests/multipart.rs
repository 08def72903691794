//! Multipart bodies: the head decides, the tail streams, a late token ends the upload.

use super::*;

#[test]
fn a_multipart_head_decides_and_the_tail_streams() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let t = Minted::new(6, "storage.Uploader.Upload");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let file = vec![b'F'; 10_000];
    let body = multipart(
        &[("envName", "x"), ("session", t.value())],
        &file,
        &[("comment", "fine")],
    );
    let host = Fake::new(
        &vm,
        "POST",
        UPLOAD,
        &[
            ("content-type", &multipart_type()),
            ("content-length", &body.len().to_string()),
        ],
    );
    let chunks: Vec<&[u8]> = body.chunks(100).collect();
    let run = host.run(&mut Request::new(1), &config, &chunks);
    assert_eq!(run.headers, Some(Action::Pause));
    // Held until the file part's headers, then released chunk by chunk.
    let first_continue = run
        .body
        .iter()
        .position(|a| *a == Action::Continue)
        .expect("released");
    assert!(first_continue < 5, "{:?}", run.body);
    assert!(
        run.body[first_continue..]
            .iter()
            .all(|a| *a == Action::Continue)
    );
    assert_eq!(run.body.len(), chunks.len());
    // The session part is gone from what was forwarded, and content-length says so.
    let forwarded = String::from_utf8_lossy(&run.forwarded);
    assert!(!forwarded.contains(t.value()), "stripped");
    assert!(forwarded.contains("name=\"envName\"") && forwarded.contains("name=\"comment\""));
    assert_eq!(
        host.header_text("content-length"),
        Some(run.forwarded.len().to_string())
    );
    assert_eq!(host.header_text("x-pat-user").as_deref(), Some("alice"));
    assert_eq!(vm.events(), [Event::Allowed]);
}

#[test]
fn a_late_token_in_the_tail_ends_the_upload() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(6, "storage.Uploader.Upload");
    let other = Minted::new(7, "storage.Uploader.Upload");
    vm.publish_elsewhere(vm.snapshot(1, &[&t, &other]));
    let file = vec![b'F'; 10_000];
    for (late, reason) in [
        (("session", other.value()), Reason::StrayToken),
        (("comment", other.value()), Reason::StrayToken),
        (("session", "legacy-login"), Reason::ConflictingSessions),
    ] {
        let body = multipart(&[("session", t.value())], &file, &[late]);
        let host = Fake::new(&vm, "POST", UPLOAD, &[("content-type", &multipart_type())]);
        let chunks: Vec<&[u8]> = body.chunks(1000).collect();
        let run = host.run(&mut Request::new(1), &config, &chunks);
        // The head went on; the chunk with the late part was refused, not forwarded.
        assert_eq!(run.body.first(), Some(&Action::Continue));
        assert_eq!(run.body.last(), Some(&Action::Pause));
        assert!(run.forwarded.len() < body.len() - 100);
        assert_eq!(host.reply().expect("a denial").body["result"], 703);
        assert_eq!(
            vm.take_events(),
            [Event::Allowed, Event::Denied(reason)],
            "{late:?}"
        );
        assert!(vm.logged(Level::Info, "after its head was forwarded"));
    }
}

#[test]
fn a_multipart_head_that_does_not_end_within_the_cap_is_too_large() {
    let vm = Vm::new();
    let config = vm.config(r#""max_body_bytes":1024"#);
    let field = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"big\"\r\n\r\n{}",
        "x".repeat(3000)
    );
    let host = Fake::new(&vm, "POST", UPLOAD, &[("content-type", &multipart_type())]);
    let chunks: Vec<&[u8]> = field.as_bytes().chunks(500).collect();
    let run = host.run(&mut Request::new(1), &config, &chunks);
    assert_eq!(
        run.body,
        [Action::Pause, Action::Pause, Action::Pause],
        "refused once 1024 bytes were read without a decision"
    );
    assert_eq!(vm.events(), [Event::Denied(Reason::BodyTooLarge)]);

    // A multipart content type without a boundary cannot be read at all.
    let host = Fake::new(
        &vm,
        "POST",
        UPLOAD,
        &[("content-type", "multipart/form-data")],
    );
    let run = host.run(&mut Request::new(2), &config, &[b"x"]);
    assert_eq!(run.headers, Some(Action::Pause));
    assert!(run.body.is_empty());
    assert_eq!(
        vm.take_events().last(),
        Some(&Event::Denied(Reason::UnparseableBody))
    );
}
