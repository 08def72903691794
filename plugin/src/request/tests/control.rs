//! The control endpoint: the status, and what it refuses.

use super::*;

#[test]
fn the_status_says_what_this_envoy_serves() {
    let vm = Vm::new();
    let config = control(&vm);
    let host = Fake::get(&vm, CONTROL);
    let run = host.run(&mut Request::new(1), &config, &[]);
    assert_eq!(run.headers, Some(Action::Pause));
    let reply = host.reply().expect("the status");
    assert_eq!((reply.status, &reply.body["loaded"]), (200, &false.into()));

    let t = Minted::new(5, "environment.Control.StopEnv");
    vm.publish_elsewhere(vm.snapshot(4, &[&t]));
    let host = Fake::new(&vm, "HEAD", CONTROL, &[]);
    host.run(&mut Request::new(2), &config, &[]);
    let body = host.reply().expect("the status").body;
    assert_eq!(body["loaded"], true);
    assert_eq!(body["version"], 4);
    assert_eq!(body["tokens"], 1);
    assert_eq!(body["key_id"], vm.key.public_key().id().to_string());
    assert!(body.get("floor").is_none(), "no origin, no floor");
    assert!(vm.events().is_empty());
}

#[test]
fn the_control_endpoint_refuses_what_it_does_not_serve() {
    let vm = Vm::new();
    let config = control(&vm);

    let mut public = Fake::get(&vm, CONTROL);
    public.destination = "203.0.113.9:10000";
    public.run(&mut Request::new(1), &config, &[]);
    assert_eq!(public.reply().expect("refused").status, 403);
    assert!(vm.logged(Level::Warn, "not on loopback"));

    let post = Fake::new(&vm, "POST", CONTROL, &[]);
    post.run(&mut Request::new(2), &config, &[b"x"]);
    let reply = post.reply().expect("refused");
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers, [("allow".into(), "GET, HEAD, PUT".into())]);

    let too_big = put(&vm, 2 * 1048576);
    let run = too_big.run(&mut Request::new(3), &config, &[b"x"]);
    assert!(run.body.is_empty(), "refused on its content-length");
    assert_eq!(too_big.reply().expect("refused").status, 413);

    let empty = Fake::new(&vm, "PUT", CONTROL, &[]);
    empty.run(&mut Request::new(4), &config, &[]);
    assert_eq!(empty.reply().expect("refused").status, 400);

    assert_eq!(
        vm.events(),
        [
            Event::Push { accepted: false },
            Event::Push { accepted: false }
        ]
    );
}
