//! Plugins: several root contexts in one VM, their configuration, properties,
//! and configurations the guest rejects.

mod common;

use pat_testbed::{Error, Plugin, Request};

#[test]
fn two_plugins_share_one_vm() {
    let tb = common::fixture()
        .vm_id("edge")
        .plugin(Plugin::new("public").configuration("label=pub"))
        .plugin(
            Plugin::new("control")
                .name("control-filter")
                .configuration("label=ctl"),
        )
        .build()
        .unwrap();
    let property = || Request::get("/p?q=1").header("x-fixture-op", "property");

    let public = tb.vm(0).send(property());
    let control = tb.vm(0).send_to("control", property());

    let p = public.forwarded().unwrap();
    assert_eq!(p.header("x-fixture-root-id"), Some("public"));
    assert_eq!(p.header("x-fixture-plugin-name"), Some("public"));
    assert_eq!(p.header("x-fixture-vm-id"), Some("edge"));
    let c = control.forwarded().unwrap();
    assert_eq!(c.header("x-fixture-root-id"), Some("control"));
    assert_eq!(c.header("x-fixture-plugin-name"), Some("control-filter"));
    assert_eq!(public.plugin(), "public");
    assert_eq!(control.plugin(), "control");
    // Root contexts get ids 1 and 2; streams follow.
    assert_eq!((public.context_id(), control.context_id()), (3, 4));
    assert_eq!(
        tb.logs_containing("configured"),
        vec!["configured pub", "configured ctl"]
    );
}

#[test]
fn a_rejected_configuration_fails_the_build() {
    let err = common::fixture()
        .plugin(Plugin::new("bad").configuration("reject=1"))
        .build()
        .unwrap_err();

    match err {
        Error::Rejected {
            vm,
            plugin,
            callback,
            logs,
        } => {
            assert_eq!(
                (vm, plugin.as_str(), callback),
                (0, "bad", "proxy_on_configure")
            );
            assert!(logs.iter().any(|l| l.message == "configured fixture"));
        }
        other => panic!("unexpected error: {other}"),
    }
}

#[test]
fn a_rejected_vm_configuration_fails_on_vm_start() {
    let err = common::fixture()
        .vm_configuration("reject-vm")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Rejected {
                callback: "proxy_on_vm_start",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn build_allow_failure_records_rejections() {
    let tb = common::fixture()
        .workers(2)
        .plugin(Plugin::new("good"))
        .plugin(Plugin::new("bad").configuration("reject=1"))
        .build_allow_failure()
        .unwrap();

    let failures = tb.startup_failures();
    assert_eq!(failures.len(), 2);
    assert!(
        failures
            .iter()
            .all(|f| f.plugin == "bad" && f.callback == "proxy_on_configure")
    );
    assert!(tb.vm(1).send(Request::get("/")).is_forwarded());
}

#[test]
#[should_panic(expected = "no plugin with root_id `nope`")]
fn sending_to_an_unknown_plugin_panics() {
    let tb = common::fixture().build().unwrap();
    tb.vm(0).send_to("nope", Request::get("/"));
}
