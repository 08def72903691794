//! Form bodies: read across chunks with the headers held, the token stripped, the size capped; trailers end a body.

use super::*;

#[test]
fn a_form_body_is_read_across_chunks_with_the_headers_held() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let body = format!("envName=my-project&session={}&x=1", t.value());
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(7).collect();
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
    let run = host.run(&mut Request::new(1), &config, &chunks);
    assert_eq!(run.headers, Some(Action::Pause), "headers held");
    let (last, before) = run.body.split_last().expect("body callbacks");
    assert!(before.iter().all(|a| *a == Action::Pause), "{:?}", run.body);
    assert_eq!(*last, Action::Continue);
    assert_eq!(run.forwarded, body.as_bytes(), "forwarded intact");
    assert_eq!(host.header_text("x-pat-token-id").as_deref(), Some("5"));
    assert_eq!(vm.events(), [Event::Allowed]);
}

#[test]
fn the_token_is_stripped_from_the_query_and_a_form_body() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));

    let host = Fake::get(&vm, &format!("{STOPENV}?session={}&envName=x", t.value()));
    host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(
        host.header_text(":path"),
        Some(format!("{STOPENV}?envName=x"))
    );

    let body = format!("envName=x&session={}", t.value());
    let host = Fake::new(
        &vm,
        "POST",
        STOPENV,
        &[
            ("content-type", FORM),
            ("content-length", &body.len().to_string()),
        ],
    );
    let run = host.run(&mut Request::new(2), &config, &[body.as_bytes()]);
    assert_eq!(run.forwarded, b"envName=x");
    assert_eq!(host.header_text("content-length").as_deref(), Some("9"));
    assert_eq!(vm.events(), [Event::Allowed, Event::Allowed]);
}

#[test]
fn an_oversized_form_body_is_refused_when_it_passes_the_cap() {
    let vm = Vm::new();
    let config = vm.config(r#""max_body_bytes":1024"#);
    let chunk = [b'a'; 400];
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
    let run = host.run(
        &mut Request::new(1),
        &config,
        &[&chunk, &chunk, &chunk, &chunk],
    );
    assert_eq!(
        run.body,
        [Action::Pause, Action::Pause, Action::Pause],
        "refused on the third chunk (1200 bytes), the fourth never delivered"
    );
    assert_eq!(host.reply().expect("a denial").body["result"], 703);
    assert_eq!(vm.events(), [Event::Denied(Reason::BodyTooLarge)]);
    assert!(run.forwarded.is_empty());
}

#[test]
fn trailers_end_the_body() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let body = format!("session={}", t.value());
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
    let mut request = Request::new(1);
    let mut run = host.deliver(&mut request, &config, &[], false);
    host.body_chunks(&mut request, &config, &[body.as_bytes()], false, &mut run);
    assert_eq!(run.body, [Action::Pause], "waiting for the end of the body");
    assert_eq!(request.on_trailers(&host, &config), Action::Continue);
    assert_eq!(vm.events(), [Event::Allowed]);
}
