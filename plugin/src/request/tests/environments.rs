//! Tokens limited to some environments: allowed only on a method that acts on one
//! environment and only for the request's one `envName` in the list (query, form, multipart,
//! any case of the value); everything else a denial with its own reason and `result` 704;
//! tokens without a list untouched by any of it.

use super::*;

const GETENVS: &str = "/1.0/environment/control/rest/getenvs";

/// A token for StopEnv and GetEnvs limited to `prod` and `staging`, and one without a list.
fn tokens(vm: &Vm) -> (Minted, Minted) {
    let limited = Minted::new(5, "environment.Control.StopEnv")
        .and(&["environment.Control.GetEnvs"])
        .in_envs(&["prod", "Staging"]);
    let open = Minted::new(6, "environment.Control.StopEnv").and(&["environment.Control.GetEnvs"]);
    vm.publish_elsewhere(vm.snapshot(1, &[&limited, &open]));
    (limited, open)
}

/// The `result` of a GET of `path?query` (0: forwarded), and what was counted.
fn get(vm: &Vm, config: &Config, path: &str, query: &str) -> (i64, Vec<Event>) {
    let host = Fake::get(vm, &format!("{path}?{query}"));
    host.run(&mut Request::new(1), config, &[]);
    let result = host
        .reply()
        .map_or(0, |r| r.body["result"].as_i64().unwrap_or(-1));
    (result, vm.take_events())
}

fn denied(reason: Reason) -> (i64, Vec<Event>) {
    (704, vec![Event::Denied(reason)])
}

#[test]
fn only_the_listed_environments_on_methods_that_act_on_one() {
    let vm = Vm::new();
    let config = vm.config("");
    let (limited, open) = tokens(&vm);
    let (l, o) = (limited.value(), open.value());
    let allowed = || (0, vec![Event::Allowed]);
    for (path, query, expected) in [
        (STOPENV, format!("envName=prod&session={l}"), allowed()),
        (STOPENV, format!("session={l}&envName=STAGING"), allowed()),
        (STOPENV, format!("envName=pr%6Fd&session={l}"), allowed()),
        (
            STOPENV,
            format!("envName=prod&envName=prod&session={l}"),
            allowed(),
        ),
        (
            STOPENV,
            format!("envName=dev&session={l}"),
            denied(Reason::EnvironmentNotAllowed),
        ),
        (
            STOPENV,
            format!("envName=prod-2&session={l}"),
            denied(Reason::EnvironmentNotAllowed),
        ),
        (
            STOPENV,
            format!("envName=prod,dev&session={l}"),
            denied(Reason::EnvironmentNotAllowed),
        ),
        (
            STOPENV,
            format!("envName=&session={l}"),
            denied(Reason::EnvironmentNotAllowed),
        ),
        (
            STOPENV,
            format!("session={l}"),
            denied(Reason::EnvironmentNotAllowed),
        ),
        (
            STOPENV,
            format!("envName=prod&session={l}&envName=dev"),
            denied(Reason::AmbiguousEnvironment),
        ),
        (
            STOPENV,
            format!("envName=prod&session={l}&envname=dev"),
            denied(Reason::AmbiguousEnvironment),
        ),
        (
            STOPENV,
            format!("envName=prod&session={l}&ENVNAME=prod"),
            denied(Reason::AmbiguousEnvironment),
        ),
        // `envNam%65` decodes to `envName` itself: a second, different value.
        (
            STOPENV,
            format!("envName=prod&session={l}&envNam%65=dev"),
            denied(Reason::AmbiguousEnvironment),
        ),
        // `envNam%45` decodes to `envNamE`: the name in another case.
        (
            STOPENV,
            format!("envName=prod&session={l}&envNam%45=prod"),
            denied(Reason::AmbiguousEnvironment),
        ),
        (
            STOPENV,
            format!("envNam%65=prod&session={l}&envName=prod"),
            (0, vec![Event::Allowed]),
        ),
        (
            GETENVS,
            format!("session={l}"),
            denied(Reason::NotAnEnvironmentMethod),
        ),
        (
            GETENVS,
            format!("envName=prod&session={l}"),
            denied(Reason::NotAnEnvironmentMethod),
        ),
        // Without a list: none of it matters.
        (STOPENV, format!("envName=dev&session={o}"), allowed()),
        (
            STOPENV,
            format!("envName=a&envname=b&session={o}"),
            allowed(),
        ),
        (GETENVS, format!("session={o}"), allowed()),
    ] {
        assert_eq!(get(&vm, &config, path, &query), expected, "{path}?{query}");
    }
    // Out of scope stays out of scope (702), before any environment rule.
    let start = "/1.0/environment/control/rest/startenv";
    assert_eq!(
        get(&vm, &config, start, &format!("envName=prod&session={l}")),
        (702, vec![Event::Denied(Reason::OutOfScope)])
    );
}

#[test]
fn denials_say_which_environment_and_never_the_token() {
    let vm = Vm::new();
    let config = vm.config("");
    let (limited, _) = tokens(&vm);
    let host = Fake::get(
        &vm,
        &format!("{STOPENV}?envName=%3Cdev%3E&session={}", limited.value()),
    );
    host.run(&mut Request::new(1), &config, &[]);
    let reply = host.reply().expect("denied");
    let error = reply.body["error"].as_str().expect("text");
    assert!(
        error.contains("may not act on environment <dev>"),
        "{error}"
    );
    assert!(!error.contains(limited.value()), "{error}");
    assert_eq!(reply.body["source"], "JEL");
    let host = Fake::get(&vm, &format!("{GETENVS}?session={}", limited.value()));
    host.run(&mut Request::new(2), &config, &[]);
    let error = host.reply().expect("denied").body["error"].to_string();
    assert!(error.contains("environment.control.getenvs"), "{error}");
}

#[test]
fn form_and_multipart_bodies_name_the_environment_too() {
    let vm = Vm::new();
    let config = vm.config(r#""strip_token":true"#);
    let (limited, open) = tokens(&vm);
    let l = limited.value();
    let form = |body: String| {
        let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", FORM)]);
        host.run(&mut Request::new(1), &config, &[body.as_bytes()]);
        (
            host.reply()
                .map_or(0, |r| r.body["result"].as_i64().unwrap_or(-1)),
            vm.take_events(),
        )
    };
    assert_eq!(
        form(format!("envName=prod&session={l}")),
        (0, vec![Event::Allowed])
    );
    assert_eq!(
        form(format!("envName=dev&session={l}")),
        denied(Reason::EnvironmentNotAllowed)
    );
    assert_eq!(
        form(format!("envName=prod&session={l}&envName=dev")),
        denied(Reason::AmbiguousEnvironment)
    );
    // The query and the body together: two different values.
    let host = Fake::new(
        &vm,
        "POST",
        &format!("{STOPENV}?envName=dev"),
        &[("content-type", FORM)],
    );
    host.run(
        &mut Request::new(2),
        &config,
        &[format!("envName=prod&session={l}").as_bytes()],
    );
    assert_eq!(host.reply().expect("denied").body["result"], 704);
    assert_eq!(
        vm.take_events(),
        [Event::Denied(Reason::AmbiguousEnvironment)]
    );

    // Multipart: the environment in the head.
    let upload = |fields: &[(&str, &str)], late: &[(&str, &str)]| {
        let body = multipart(fields, b"file bytes", late);
        let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", &multipart_type())]);
        let run = host.run(&mut Request::new(3), &config, &[&body]);
        (
            host.reply().map(|r| r.body["result"].clone()),
            run,
            vm.take_events(),
        )
    };
    let (reply, _, events) = upload(&[("envName", "prod"), ("session", l)], &[]);
    assert_eq!((reply, events), (None, vec![Event::Allowed]));
    let (reply, _, events) = upload(&[("envName", "dev"), ("session", l)], &[]);
    assert_eq!(
        (reply, events),
        (
            Some(704.into()),
            vec![Event::Denied(Reason::EnvironmentNotAllowed)]
        )
    );
    // A later part, after the file, that names another environment: refused before the
    // headers go on when it arrived with the head...
    let (reply, _, events) = upload(
        &[("envName", "prod"), ("session", l)],
        &[("envName", "dev")],
    );
    assert_eq!(reply, Some(704.into()), "{events:?}");
    assert_eq!(events, [Event::Denied(Reason::AmbiguousEnvironment)]);
    // ...and the request ended when it arrives after the head was forwarded.
    let body = multipart(
        &[("envName", "prod"), ("session", l)],
        b"file bytes",
        &[("envName", "dev")],
    );
    let split = body
        .windows(10)
        .position(|w| w == b"file bytes")
        .expect("file")
        + 10;
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", &multipart_type())]);
    host.run(
        &mut Request::new(4),
        &config,
        &[&body[..split], &body[split..]],
    );
    assert_eq!(host.reply().expect("ended").body["result"], 704);
    assert_eq!(
        vm.take_events(),
        [Event::Allowed, Event::Denied(Reason::AmbiguousEnvironment)]
    );
    assert!(vm.logged(
        Level::Info,
        "a later multipart part names its environment again"
    ));
    // A token without a list is not ended for it.
    let body = multipart(
        &[("envName", "prod"), ("session", open.value())],
        b"file bytes",
        &[("envName", "dev")],
    );
    let host = Fake::new(&vm, "POST", STOPENV, &[("content-type", &multipart_type())]);
    host.run(
        &mut Request::new(5),
        &config,
        &[&body[..split], &body[split..]],
    );
    assert!(host.reply().is_none());
    assert_eq!(vm.take_events(), [Event::Allowed]);
    // The same name again changes nothing.
    let (reply, _, events) = upload(
        &[("envName", "prod"), ("session", l)],
        &[("envName", "prod")],
    );
    assert_eq!((reply, events), (None, vec![Event::Allowed]));
}

#[test]
fn a_limited_token_added_by_a_delta_is_judged_the_same() {
    let vm = Vm::new();
    let config = vm.config("");
    let open = Minted::new(6, "environment.Control.StopEnv");
    let full = vm.snapshot(1, &[&open]);
    vm.publish_elsewhere(full.clone());
    let limited = Minted::new(7, "environment.Control.StopEnv")
        .and(&["environment.Control.GetEnvs"])
        .in_envs(&["prod"]);
    vm.publish_elsewhere(vm.delta(&full, 2, &[&limited], 2));
    assert_eq!(
        vm.version(),
        None,
        "not loaded yet: the first request loads it"
    );
    let l = limited.value();
    assert_eq!(
        get(&vm, &config, STOPENV, &format!("envName=prod&session={l}")).0,
        0
    );
    assert_eq!(
        get(&vm, &config, STOPENV, &format!("envName=dev&session={l}")),
        denied(Reason::EnvironmentNotAllowed)
    );
    assert_eq!(
        get(&vm, &config, GETENVS, &format!("session={l}")),
        denied(Reason::NotAnEnvironmentMethod)
    );
}
