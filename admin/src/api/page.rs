//! The Access Tokens page: the platform's dashboard flow for account holders, served at
//! `/tokens/` by `pat-admin serve --api-listen` (and, through a route in `envoy.yaml`, at
//! `/tokens/` on Envoy's public listener).
//!
//! Plain HTML, CSS and JavaScript (`admin/assets/tokens/`), embedded in the binary: no
//! build step, no CDN, no remote font, so it works on an air-gapped network. The page calls
//! only the public token methods any client calls (`../1.0/users/authentication/rest/…`,
//! relative, so it works on both listeners), by POST with form bodies; the login session
//! stays in a JavaScript variable (never a URL, a cookie or storage).
//!
//! Every answer here carries a strict Content-Security-Policy ([`CSP`]: no inline script,
//! `frame-ancestors 'none'`), `X-Content-Type-Options: nosniff`, `Referrer-Policy:
//! no-referrer`; the HTML is `Cache-Control: no-store`.

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// Where the page lives.
pub const PATH: &str = "/tokens/";

/// The Content-Security-Policy of the page and its assets.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// The page.
pub const INDEX_HTML: &str = include_str!("../../assets/tokens/index.html");
/// Its script.
pub const APP_JS: &str = include_str!("../../assets/tokens/app.js");
/// Its style sheet.
pub const APP_CSS: &str = include_str!("../../assets/tokens/app.css");

/// The page's routes, to merge into the API's router.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/tokens", get(redirect))
        .route(PATH, get(index))
        .route("/tokens/index.html", get(index))
        .route("/tokens/app.js", get(script))
        .route("/tokens/app.css", get(style))
        .route("/tokens/{*rest}", get(not_found))
}

/// `body` as `content_type` with the page's security headers; `no-store` when `html`, else
/// `no-cache` (assets change with the binary).
fn asset(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
    html: bool,
) -> Response {
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(if html { "no-store" } else { "no-cache" }),
    );
    response
}

async fn index() -> Response {
    asset(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML, true)
}

async fn script() -> Response {
    asset(
        StatusCode::OK,
        "text/javascript; charset=utf-8",
        APP_JS,
        false,
    )
}

async fn style() -> Response {
    asset(StatusCode::OK, "text/css; charset=utf-8", APP_CSS, false)
}

async fn not_found() -> Response {
    asset(
        StatusCode::NOT_FOUND,
        "text/plain; charset=utf-8",
        "not found: the Access Tokens page is at /tokens/\n",
        true,
    )
}

async fn redirect() -> Response {
    let mut response = asset(
        StatusCode::PERMANENT_REDIRECT,
        "text/plain; charset=utf-8",
        "the Access Tokens page is at /tokens/\n",
        true,
    );
    // Relative, so it stays right behind a proxy that adds a prefix.
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("tokens/"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_no_inline_script_or_style_and_no_remote_resource() {
        assert!(INDEX_HTML.contains(r#"<script src="app.js" defer></script>"#));
        assert!(!INDEX_HTML.contains("<script>"), "no inline script");
        assert!(!INDEX_HTML.contains(" style="), "no inline style");
        assert!(!INDEX_HTML.contains("<style"), "no inline style sheet");
        let handler = INDEX_HTML.match_indices(" on").any(|(i, _)| {
            let rest = &INDEX_HTML[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        });
        assert!(!handler, "no inline event handlers");
        for text in [INDEX_HTML, APP_JS, APP_CSS] {
            assert!(!text.contains("http://"), "no remote resource");
            assert!(!text.contains("//cdn"), "no CDN");
        }
        // Data is rendered with textContent and DOM APIs only.
        assert!(!APP_JS.contains("innerHTML"), "no innerHTML");
        assert!(!APP_JS.contains("insertAdjacentHTML"));
        assert!(!APP_JS.contains("document.write"));
        assert!(!APP_JS.contains("eval("));
        // A token value or session is never stored.
        assert!(!APP_JS.contains("localStorage"));
        assert!(!APP_JS.contains("sessionStorage"));
        assert!(!APP_JS.contains("document.cookie"));
        assert!(!APP_JS.contains("console."), "no console-only errors");
    }
}
