//! `ext_authz` over gRPC: `envoy.service.auth.v3.Authorization/Check`, written as the code
//! tonic generates for a unary method, over the hand-written messages.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::server::{Grpc, NamedService, UnaryService};

use crate::check::{Tokens, Verdict, denial_body};
use crate::proto::{
    CheckRequest, CheckResponse, DeniedHttpResponse, HeaderValue, HeaderValueOption, HttpResponse,
    HttpStatus, OVERWRITE_IF_EXISTS_OR_ADD, OkHttpResponse, Status,
};

/// Serves until the process ends.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    tokens: Arc<Tokens>,
) -> std::io::Result<()> {
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tonic::transport::Server::builder()
        .add_service(Authorization { tokens })
        .serve_with_incoming(incoming)
        .await
        .map_err(std::io::Error::other)
}

/// The `Authorization` service.
#[derive(Clone)]
struct Authorization {
    tokens: Arc<Tokens>,
}

impl NamedService for Authorization {
    const NAME: &'static str = "envoy.service.auth.v3.Authorization";
}

/// A header Envoy sets on the upstream request, replacing any the client sent.
fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_string(),
            value: value.to_string(),
        }),
        append_action: OVERWRITE_IF_EXISTS_OR_ADD,
    }
}

impl Authorization {
    fn answer(&self, request: &CheckRequest) -> CheckResponse {
        let path = request
            .attributes
            .as_ref()
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref())
            .map_or("", |h| h.path.as_str());
        let ok = |headers| CheckResponse {
            status: Some(Status::default()),
            http_response: Some(HttpResponse::Ok(OkHttpResponse { headers })),
        };
        match self.tokens.check(path) {
            Verdict::Pass => ok(Vec::new()),
            Verdict::Allow(entry) => ok(vec![
                header("x-pat-token-id", &entry.id),
                header("x-pat-user", &entry.user),
            ]),
            Verdict::Deny(code, message) => CheckResponse {
                // PERMISSION_DENIED
                status: Some(Status {
                    code: 7,
                    message: message.to_string(),
                }),
                http_response: Some(HttpResponse::Denied(DeniedHttpResponse {
                    status: Some(HttpStatus { code: 403 }),
                    headers: vec![header("content-type", "application/json")],
                    body: denial_body(code, message),
                })),
            },
        }
    }
}

struct Check(Arc<Authorization>);

impl UnaryService<CheckRequest> for Check {
    type Response = CheckResponse;
    type Future = BoxFuture<tonic::Response<CheckResponse>, tonic::Status>;

    fn call(&mut self, request: tonic::Request<CheckRequest>) -> Self::Future {
        let answer = self.0.answer(request.get_ref());
        Box::pin(async move { Ok(tonic::Response::new(answer)) })
    }
}

impl<B> Service<http::Request<B>> for Authorization
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let service = Arc::new(self.clone());
        if request.uri().path() == "/envoy.service.auth.v3.Authorization/Check" {
            Box::pin(async move {
                let codec = tonic_prost::ProstCodec::default();
                let mut grpc = Grpc::new(codec);
                Ok(grpc.unary(Check(service), request).await)
            })
        } else {
            Box::pin(async move { Ok(tonic::Status::unimplemented("").into_http()) })
        }
    }
}
