//! JSON bodies the filter answers with, in the platform's `result`/`error` shape.

use serde::Serialize;

/// A denial or a control-endpoint error: `{"result": code, "error": message, "source": source}`.
pub fn error_body(code: i64, message: &str, source: &str) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        result: i64,
        error: &'a str,
        source: &'a str,
    }
    serde_json::to_string(&Body {
        result: code,
        error: message,
        source,
    })
    .unwrap_or_default()
}

/// A push refused as stale: the error shape plus the version the edge holds, so a publisher
/// can tell "already current" from "older than what the edge has".
pub fn stale_body(message: &str, source: &str, current_version: u64) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        result: i64,
        error: &'a str,
        source: &'a str,
        current_version: u64,
    }
    serde_json::to_string(&Body {
        result: 409,
        error: message,
        source,
        current_version,
    })
    .unwrap_or_default()
}

/// What `GET` on the control path reports about the snapshot this VM serves from.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Status {
    /// Always 0.
    pub result: i64,
    /// Whether a snapshot is loaded.
    pub loaded: bool,
    /// Its version (0 when none).
    pub version: u64,
    /// Its token count.
    pub tokens: u64,
    /// When it was issued, Unix seconds (0 when none).
    pub issued_at: u64,
    /// Its signed expiry, Unix seconds (0 when none).
    pub expires_at: u64,
    /// Id of the key that signed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The version floor learnt from the origin: a version, `"pending"` until the origin
    /// answers after a start, absent without an origin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub floor: Option<serde_json::Value>,
}

impl Status {
    /// Serializes the status.
    pub fn body(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The answer to an accepted push.
pub fn accepted_body(version: u64, tokens: u64, issued_at: u64) -> String {
    #[derive(Serialize)]
    struct Body {
        result: i64,
        version: u64,
        tokens: u64,
        issued_at: u64,
    }
    serde_json::to_string(&Body {
        result: 0,
        version,
        tokens,
        issued_at,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_platform_shaped_json() {
        let body = error_body(701, "access token pate_…x \"quoted\" is not valid", "JEL");
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(parsed["result"], 701);
        assert_eq!(
            parsed["error"],
            "access token pate_…x \"quoted\" is not valid"
        );
        assert_eq!(parsed["source"], "JEL");
        assert_eq!(
            accepted_body(3, 10, 99),
            r#"{"result":0,"version":3,"tokens":10,"issued_at":99}"#
        );
        let status = Status {
            result: 0,
            loaded: false,
            version: 0,
            tokens: 0,
            issued_at: 0,
            expires_at: 0,
            key_id: None,
            floor: Some(serde_json::json!("pending")),
        };
        assert_eq!(
            status.body(),
            r#"{"result":0,"loaded":false,"version":0,"tokens":0,"issued_at":0,"expires_at":0,"floor":"pending"}"#
        );
    }
}
