//! An external authorization service for the benchmark (`scripts/bench`): pat-edge's check
//! on the same tokens, served the two ways an Envoy operator would wire one in with
//! `ext_authz` — HTTP (each request's path is checked, identity headers come back on a `200`)
//! and gRPC (`envoy.service.auth.v3.Authorization/Check`). One thread; keep-alive on both.
//!
//! `authz-service TOKENS_FILE HTTP_PORT GRPC_PORT`: the tokens file has one token a line,
//! `<sha256 hex>\t<id>\t<user>\t<method,method>`. It prints `ready N` once the tokens are
//! loaded and both ports listen.
//!
//! # Layout
//! - `check`: the tokens and the check.
//! - `proto`: the gRPC messages (`proto/ext_authz_subset.proto`, from Envoy's API).
//! - `grpc`: the `Authorization` service.
//! - `http`: the HTTP service.

mod check;
mod grpc;
mod http;
mod proto;

use std::sync::Arc;

use check::Tokens;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, tokens, http_port, grpc_port] = args.as_slice() else {
        eprintln!("usage: authz-service TOKENS_FILE HTTP_PORT GRPC_PORT");
        std::process::exit(2);
    };
    let tokens = match Tokens::load(tokens) {
        Ok(tokens) => Arc::new(tokens),
        Err(e) => {
            eprintln!("authz-service: {tokens}: {e}");
            std::process::exit(1);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("authz-service: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        let http = tokio::net::TcpListener::bind(format!("127.0.0.1:{http_port}")).await?;
        let grpc: std::net::SocketAddr = format!("127.0.0.1:{grpc_port}")
            .parse()
            .map_err(std::io::Error::other)?;
        let grpc_listener = tokio::net::TcpListener::bind(grpc).await?;
        println!("ready {}", tokens.len());
        let http_server = http::serve(http, tokens.clone());
        let grpc_server = grpc::serve(grpc_listener, tokens);
        tokio::try_join!(http_server, grpc_server).map(|_| ())
    });
    if let Err(e) = result {
        eprintln!("authz-service: {e}");
        std::process::exit(1);
    }
}
