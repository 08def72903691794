//! Ambiguity is a denial: stray tokens, and `session` in another case beside a token.

use super::*;

#[test]
fn stray_tokens_in_the_path_or_query_are_refused_before_any_body() {
    let vm = Vm::new();
    let config = vm.config("");
    let t = Minted::new(5, "environment.Control.StopEnv");
    let host = Fake::new(
        &vm,
        "POST",
        &format!("{STOPENV}?Session={}", t.value()),
        &[("content-type", FORM)],
    );
    let run = host.run(&mut Request::new(1), &config, &[b"envName=x"]);
    assert_eq!(run.headers, Some(Action::Pause));
    assert!(run.body.is_empty(), "answered on the headers");
    assert_eq!(host.reply().expect("a denial").body["result"], 703);
    assert_eq!(vm.events(), [Event::Denied(Reason::StrayToken)]);
}

#[test]
fn session_in_another_case_beside_a_token_is_refused_in_the_query() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&t]));
    let t = t.value();
    for path in [
        format!("{STOPENV}?session={t}&Session=x"),
        format!("{STOPENV}?SESSION=x&envName=e&session={t}"),
        format!("{STOPENV}?session={t}&sess%49on=legacy"),
        format!("{STOPENV}?session={t}&Session="),
    ] {
        let host = Fake::get(&vm, &path);
        let run = host.run(&mut Request::new(1), &config, &[]);
        assert_eq!(run.headers, Some(Action::Pause), "{path}");
        let reply = host.reply().expect("a denial");
        assert_eq!(reply.body["result"], 703, "{path}");
        assert_eq!(
            vm.take_events(),
            [Event::Denied(Reason::ConflictingSessions)],
            "{path}"
        );
        assert_eq!(host.header_count("x-pat-user"), 0);
    }
    // Without a token the request is the platform's, untouched.
    for path in [
        format!("{STOPENV}?session=legacy&Session=x"),
        format!("{STOPENV}?Session=x"),
        format!("{STOPENV}?SESSION=x&session=legacy"),
    ] {
        let host = Fake::get(&vm, &path);
        let run = host.run(&mut Request::new(1), &config, &[]);
        assert_eq!(run.headers, Some(Action::Continue), "{path}");
        assert!(host.reply().is_none(), "{path}");
        assert_eq!(host.header_text(":path"), Some(path.clone()));
        assert_eq!(vm.take_events(), [Event::PassedThrough], "{path}");
    }
}

#[test]
fn session_in_another_case_beside_a_token_is_refused_in_bodies() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let up = Minted::new(6, "storage.Uploader.Upload");
    let stop = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(1, &[&up, &stop]));
    let (u, s) = (up.value(), stop.value());
    let refused = |host: &Fake, run: &Run, what: &str| {
        assert_eq!(
            host.reply().expect("a denial").body["result"],
            703,
            "{what}"
        );
        assert_eq!(
            vm.take_events().last(),
            Some(&Event::Denied(Reason::ConflictingSessions)),
            "{what}"
        );
        let forwarded = String::from_utf8_lossy(&run.forwarded);
        assert!(!forwarded.contains("=\"Session\""), "{what}: {forwarded}");
        assert!(!forwarded.contains("SESSION"), "{what}: {forwarded}");
    };

    // Form bodies: in the body beside a token, or merged with the query.
    for (query, body) in [
        (String::new(), format!("session={s}&SESSION=x")),
        (format!("?session={s}"), "envName=e&SESSION=x".to_string()),
        ("?Session=x".to_string(), format!("session={s}")),
        (format!("?session={s}"), "sess%49on=legacy".to_string()),
    ] {
        let host = Fake::new(
            &vm,
            "POST",
            &format!("{STOPENV}{query}"),
            &[("content-type", FORM)],
        );
        let run = host.run(&mut Request::new(1), &config, &[body.as_bytes()]);
        refused(&host, &run, &format!("{query} {body}"));
        assert!(run.forwarded.is_empty());
        assert_eq!(host.header_count("x-pat-user"), 0);
    }

    // Multipart: before and after the file part, with the token in the head or the query.
    let file = vec![b'F'; 10_000];
    for (query, head, late) in [
        ("", vec![("session", u), ("Session", "x")], vec![]),
        ("", vec![("SESSION", ""), ("session", u)], vec![]),
        ("", vec![("session", u)], vec![("Session", "x")]),
        ("?session=", vec![("Session", "x")], vec![]),
        ("?session=", vec![], vec![("SESSION", "x")]),
        // The exact name after the file, beside the query's token: as ambiguous.
        ("?session=", vec![], vec![("session", "legacy")]),
    ] {
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("{query}{u}")
        };
        let body = multipart(&head, &file, &late);
        let host = Fake::new(
            &vm,
            "POST",
            &format!("{UPLOAD}{query}"),
            &[("content-type", &multipart_type())],
        );
        let chunks: Vec<&[u8]> = body.chunks(1000).collect();
        let run = host.run(&mut Request::new(1), &config, &chunks);
        refused(&host, &run, &format!("{query} {head:?} {late:?}"));
        assert!(run.forwarded.len() < body.len() - 100);
    }

    // Without a token: forwarded untouched.
    let body = b"session=legacy&Session=x";
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
    let run = host.run(&mut Request::new(1), &config, &[body]);
    assert_eq!(run.forwarded, body);
    let body = multipart(&[("Session", "x")], &file, &[("SESSION", "y")]);
    let host = Fake::new(&vm, "POST", UPLOAD, &[("content-type", &multipart_type())]);
    let run = host.run(&mut Request::new(1), &config, &[&body]);
    assert_eq!(run.forwarded, body);
    assert_eq!(
        vm.take_events(),
        [Event::PassedThrough, Event::PassedThrough]
    );
}
