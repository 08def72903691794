//! Logs: `proxy_log` and WASI stdout/stderr are captured with VM, level and source.

mod common;

use pat_testbed::{LogLevel, LogSource, Request};

fn log_request() -> Request {
    Request::get("/")
        .header("x-fixture-op", "log")
        .header("x-fixture-message", "hello")
}

#[test]
fn proxy_log_and_stdio_are_captured() {
    let tb = common::fixture().workers(2).build().unwrap();
    tb.vm(1).send(log_request());

    let logs = tb.logs();
    let find = |text: &str| {
        logs.iter()
            .find(|l| l.message == text)
            .unwrap_or_else(|| panic!("no log {text:?} in {logs:#?}"))
    };
    let proxy = find("fixture log: hello");
    assert_eq!(
        (proxy.vm, proxy.level, proxy.source),
        (1, LogLevel::Info, LogSource::ProxyLog)
    );
    assert_ne!(proxy.context_id, 0);
    let stdout = find("stdout: hello");
    assert_eq!(
        (stdout.level, stdout.source),
        (LogLevel::Info, LogSource::Stdout)
    );
    let stderr = find("stderr: hello");
    assert_eq!(
        (stderr.level, stderr.source),
        (LogLevel::Error, LogSource::Stderr)
    );
}

#[test]
fn the_host_log_level_filters() {
    let tb = common::fixture().log_level(LogLevel::Warn).build().unwrap();
    tb.vm(0).send(log_request());

    assert!(tb.logs_containing("fixture log").is_empty());
    assert!(tb.logs_containing("stdout").is_empty());
    assert_eq!(tb.logs_containing("stderr"), vec!["stderr: hello"]);
}

#[test]
fn startup_logs_are_kept() {
    let tb = common::fixture().vm_configuration("cfg").build().unwrap();
    assert_eq!(
        tb.logs_containing("vm start"),
        vec!["vm start: config=\"cfg\""]
    );
    assert_eq!(tb.logs_containing("configured"), vec!["configured fixture"]);
}
