//! The request's `envName`: found by the same pass as its `session` in the query, a form
//! body and a multipart body (head and tail), merged, and kept for the verdict
//! ([`Request::env`]). Nothing about it changes a verdict yet.

use super::*;
use crate::env_name::{EnvFinding, EnvName};

fn env(value: &str) -> EnvFinding {
    EnvFinding::Found(EnvName::new(value))
}

/// Runs a request and returns its env finding and the events it counted.
fn run(vm: &Vm, host: &Fake<'_>, chunks: &[&[u8]]) -> (EnvFinding, Vec<Event>) {
    let config = vm.config(r#""strip_token":true"#);
    let mut request = Request::new(1);
    host.run(&mut request, &config, chunks);
    (request.env().clone(), vm.take_events())
}

fn stopenv_token(vm: &Vm) -> Minted {
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    t
}

#[test]
fn the_query_decides_a_get() {
    let vm = Vm::new();
    let t = stopenv_token(&vm);
    for (query, expected) in [
        (
            format!("envName=my-project&session={}", t.value()),
            env("my-project"),
        ),
        (format!("session={}&env%4Eame=a%2Db", t.value()), env("a-b")),
        (format!("session={}", t.value()), EnvFinding::Absent),
        (
            format!("envName=a&session={}&envName=b", t.value()),
            EnvFinding::Conflicting,
        ),
        (
            format!("envName=a&session={}&ENVNAME=a", t.value()),
            EnvFinding::Ambiguous,
        ),
    ] {
        let host = Fake::get(&vm, &format!("{STOPENV}?{query}"));
        // A token without a list of environments is allowed whatever the finding.
        assert_eq!(
            run(&vm, &host, &[]),
            (expected, vec![Event::Allowed]),
            "{query}"
        );
    }
    // Without a token too (passed through).
    let host = Fake::get(&vm, &format!("{STOPENV}?envName=x"));
    assert_eq!(run(&vm, &host, &[]).0, env("x"));
}

#[test]
fn a_form_body_is_merged_with_the_query() {
    let vm = Vm::new();
    let t = stopenv_token(&vm);
    for (query, body, expected) in [
        ("", format!("envName=e&session={}", t.value()), env("e")),
        ("?envName=e", format!("session={}", t.value()), env("e")),
        (
            "?envName=e",
            format!("envName=e&session={}", t.value()),
            env("e"),
        ),
        (
            "?envName=e",
            format!("envName=f&session={}", t.value()),
            EnvFinding::Conflicting,
        ),
        (
            "?envName=e",
            format!("session={}&envname=e", t.value()),
            EnvFinding::Ambiguous,
        ),
        (
            "?EnvName=e",
            format!("envName=e&session={}", t.value()),
            EnvFinding::Ambiguous,
        ),
    ] {
        let host = Fake::new(
            &vm,
            "POST",
            &format!("{STOPENV}{query}"),
            &[("content-type", FORM)],
        );
        assert_eq!(
            run(&vm, &host, &[body.as_bytes()]),
            (expected, vec![Event::Allowed]),
            "{query} {body}"
        );
    }
}

#[test]
fn a_multipart_body_is_merged_with_the_query_head_and_tail() {
    let vm = Vm::new();
    let t = Minted::new(6, "storage.Uploader.Upload");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let file = vec![b'F'; 5_000];
    for (query, head, late, expected) in [
        ("", &[("envName", "e")][..], &[][..], env("e")),
        ("?envName=e", &[][..], &[("envName", "e")][..], env("e")),
        (
            "?envName=e",
            &[("envName", "f")][..],
            &[][..],
            EnvFinding::Conflicting,
        ),
        // After the file, where the headers were released already: the request's finding
        // still changes (the verdict for a token with a list is the lead's to apply).
        (
            "?envName=e",
            &[][..],
            &[("envName", "f")][..],
            EnvFinding::Conflicting,
        ),
        (
            "",
            &[("envName", "e")][..],
            &[("ENVNAME", "e")][..],
            EnvFinding::Ambiguous,
        ),
    ] {
        let mut fields = vec![("session", t.value())];
        fields.extend_from_slice(head);
        let body = multipart(&fields, &file, late);
        let host = Fake::new(
            &vm,
            "POST",
            &format!("{UPLOAD}{query}"),
            &[("content-type", &multipart_type())],
        );
        let chunks: Vec<&[u8]> = body.chunks(300).collect();
        assert_eq!(
            run(&vm, &host, &chunks),
            (expected.clone(), vec![Event::Allowed]),
            "{query} {head:?} {late:?}"
        );
        // However the body is cut.
        let host = Fake::new(
            &vm,
            "POST",
            &format!("{UPLOAD}{query}"),
            &[("content-type", &multipart_type())],
        );
        assert_eq!(run(&vm, &host, &[&body]).0, expected);
    }
}
