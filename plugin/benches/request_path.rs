//! The filter's own work per request, natively: the request state machine (`pat_plugin::request`)
//! over a host whose calls cost next to nothing, at 1,000,000 tokens. Wall time per request
//! for each kind of request; under callgrind (`valgrind --tool=callgrind`, see
//! `scripts/bench-notes.md`) the same run is a profile of where the filter's instructions go.
//! What Envoy's host calls cost is measured in real Envoy by `scripts/bench` instead.
//!
//! `cargo bench -p pat-plugin --features test-support --bench request_path` (`PAT_BENCH_REQUESTS`, default 200,000
//! per kind; `PAT_BENCH_KIND`: only the kinds whose label starts so, or with a trailing `$`
//! only the kind labelled exactly so).
//!
//! The snapshot declares `StopEnv` an environment method and holds, besides the plain token,
//! one limited to 3 environments and one limited to 1,000,000/s (the host's clock stands
//! still, so its burst of 1,000,000 is what it may spend: keep `PAT_BENCH_REQUESTS` below).

use std::time::Instant;

use pat_core::env::EnvList;
use pat_core::method::MethodName;
use pat_core::snapshot::{SnapshotBuilder, Stamp, StateOf, TokenSpec};
use pat_core::token::{Token, TokenHash};
use pat_plugin::config::Config;
use pat_plugin::header_map::HeaderMap;
use pat_plugin::replica::Clock;
use pat_plugin::request::{Action, Request};
use pat_plugin::test_support::{QuietRequest, START, Vm};

const TOKENS: u64 = 1_000_000;

/// The headers of a request as Envoy passes them to the filter (a typical client's).
fn headers(method: &str, path: &str, extra: &[(&str, &str)]) -> HeaderMap {
    let mut headers = vec![
        (":authority", "api.paas.example.com"),
        (":path", path),
        (":method", method),
        (":scheme", "http"),
        ("user-agent", "python-requests/2.32.3"),
        ("accept-encoding", "gzip, deflate"),
        ("accept", "*/*"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "6d1c3f0e-7a5b-4c2d-9e8f-0a1b2c3d4e5f"),
    ];
    headers.extend_from_slice(extra);
    HeaderMap::serialize(headers.iter().map(|(k, v)| (*k, v.as_bytes())))
}

/// A kind of request to time.
struct Kind {
    label: &'static str,
    method: &'static str,
    path: String,
    extra: &'static [(&'static str, &'static str)],
    /// The filter's configuration.
    config: Cfg,
}

/// The configurations requests are timed with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Cfg {
    /// The defaults.
    Plain,
    /// With `strip_token` (as `envoy.yaml` ships it).
    Strip,
    /// With rate-limit budgets per worker (one worker).
    PerWorker,
}

fn main() {
    let requests: u32 = std::env::var("PAT_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let vm = Vm::new();
    let token = Token::generate().expect("rng");
    let stopenv = [MethodName::parse("environment.Control.StopEnv").expect("method")];
    let envs = EnvList::parse(&["api-gateway", "my-project", "web-frontend"])
        .expect("names")
        .expect("a list");
    let env_token = Token::generate().expect("rng");
    let rate_token = Token::generate().expect("rng");
    let mut builder = SnapshotBuilder::new();
    builder.env_methods(stopenv.iter().cloned());
    for (token, id, envs, rate_limit) in [
        (&env_token, 2_000_001, Some(&envs), None),
        (
            &rate_token,
            2_000_002,
            None,
            Some("1000000/s".parse().expect("a rate limit")),
        ),
    ] {
        builder
            .add(TokenSpec {
                hash: token.hash(),
                id,
                user: "carol@example.com",
                expires_at: None,
                scope: &stopenv,
                networks: &[],
                envs,
                rate_limit,
            })
            .expect("token");
    }
    builder
        .add(TokenSpec {
            hash: token.hash(),
            id: 1,
            user: "alice@example.com",
            expires_at: None,
            scope: &stopenv,
            networks: &[],
            envs: None,
            rate_limit: None,
        })
        .expect("token");
    for id in 2..=TOKENS {
        builder
            .add(TokenSpec {
                hash: TokenHash(*blake3::hash(&id.to_le_bytes()).as_bytes()),
                id,
                user: "bob@example.com",
                expires_at: None,
                scope: &stopenv,
                networks: &[],
                envs: None,
                rate_limit: None,
            })
            .expect("token");
    }
    let bytes = builder
        .build(
            Stamp::lasting(1, START, 7 * 86_400),
            StateOf::Genesis,
            &vm.key,
        )
        .expect("build")
        .bytes;
    let clock = Clock {
        now_ms: vm.now_ms.get(),
        max_age_ms: 86_400_000,
    };
    vm.replica
        .borrow_mut()
        .accept(&vm.store, &vm.keys, bytes, clock, true)
        .expect("accepted");
    let plain = vm.config("");
    let stripping = vm.config(r#""strip_token":true"#);
    let per_worker = vm.config(r#""rate_limits":{"budget":"per_worker","workers":1}"#);
    let value = token.expose();
    let unknown = Token::generate().expect("rng");
    let stopenv = "/1.0/environment/control/rest/stopenv";
    let get = |label, path: String| Kind {
        label,
        method: "GET",
        path,
        extra: &[],
        config: Cfg::Plain,
    };
    let kinds = [
        get(
            "allowed GET",
            format!("{stopenv}?envName=my-project&session={value}"),
        ),
        get(
            "allowed GET, no envName",
            format!("{stopenv}?session={value}"),
        ),
        Kind {
            config: Cfg::Strip,
            ..get(
                "allowed GET, token stripped",
                format!("{stopenv}?envName=my-project&session={value}"),
            )
        },
        get(
            "allowed GET, token limited to 3 environments",
            format!(
                "{stopenv}?envName=my-project&session={}",
                env_token.expose()
            ),
        ),
        get(
            "allowed GET, rate-limited token, shared budget",
            format!(
                "{stopenv}?envName=my-project&session={}",
                rate_token.expose()
            ),
        ),
        Kind {
            config: Cfg::PerWorker,
            ..get(
                "allowed GET, rate-limited token, per-worker budget",
                format!(
                    "{stopenv}?envName=my-project&session={}",
                    rate_token.expose()
                ),
            )
        },
        get(
            "denied GET: unknown token",
            format!("{stopenv}?envName=my-project&session={}", unknown.expose()),
        ),
        get(
            "denied GET: wrong scope",
            format!("/1.0/environment/control/rest/deleteenv?envName=my-project&session={value}"),
        ),
        get(
            "passed through GET: no token",
            format!("{stopenv}?envName=my-project"),
        ),
        Kind {
            label: "allowed POST form",
            method: "POST",
            path: stopenv.to_string(),
            extra: &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("content-length", "71"),
            ],
            config: Cfg::Plain,
        },
    ];
    println!("| request (1,000,000 tokens) | ns/request |");
    println!("| --- | ---: |");
    let form = format!("envName=my-project&session={value}");
    let only = std::env::var("PAT_BENCH_KIND").unwrap_or_default();
    for Kind {
        label,
        method,
        path,
        extra,
        config,
    } in kinds.iter().filter(|k| match only.strip_suffix('$') {
        Some(exact) => k.label == exact,
        None => k.label.starts_with(&only),
    }) {
        let config = match config {
            Cfg::Plain => &plain,
            Cfg::Strip => &stripping,
            Cfg::PerWorker => &per_worker,
        };
        let map = headers(method, path, extra);
        let started = Instant::now();
        let mut outcome = (0, 0);
        for i in 0..requests {
            let host = QuietRequest::new(&vm, &map, form.as_bytes());
            one_request(&host, config, i, *method == "GET");
            outcome = (host.written.get(), host.replies.get());
        }
        let ns = started.elapsed().as_nanos() as f64 / f64::from(requests);
        println!("| {label} | {ns:.0} |");
        eprintln!(
            "  {label}: header writes {}, replies {}",
            outcome.0, outcome.1
        );
    }
}

/// One request's callbacks, as the filter's glue makes them (kept out of line: a profile
/// collects exactly this).
#[inline(never)]
fn one_request(host: &QuietRequest, config: &Config, context_id: u32, end_of_stream: bool) {
    let mut request = Request::new(context_id);
    if request.on_headers(host, config, end_of_stream) == Action::Pause {
        request.on_body(host, config, host.body.len(), true);
    }
    request.on_done(host);
}
