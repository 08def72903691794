//! The JSON bodies the filter answers with, written from the wire contract's types
//! ([`pat_core::protocol`]): denials and control errors in the platform's
//! `result`/`error`/`source` shape, and the control endpoint's answers.

use pat_core::protocol::ErrorReply;
use pat_core::protocol::control::{self, Accepted, Refused, Status};

/// A denial or a control-endpoint error: `{"result": code, "error": message, "source": source}`.
pub fn error_body(code: i64, message: &str, source: &str) -> String {
    serde_json::to_string(&ErrorReply::new(code, message, source)).unwrap_or_default()
}

/// A push refused as stale or not applying (`409`): the error shape plus the version the edge
/// holds, so a publisher can tell "already current" from "behind".
pub fn stale_body(message: &str, current_version: u64) -> String {
    serde_json::to_string(&Refused {
        result: 409,
        error: message.into(),
        source: control::SOURCE.into(),
        current_version,
    })
    .unwrap_or_default()
}

/// What `GET` on the control path reports.
pub fn status_body(status: &Status) -> String {
    serde_json::to_string(status).unwrap_or_default()
}

/// The answer to an accepted push.
pub fn accepted_body(version: u64, tokens: u64, issued_at: u64) -> String {
    serde_json::to_string(&Accepted {
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
    use pat_core::protocol::control::{Floor, Reply};

    #[test]
    fn bodies_are_platform_shaped_json_a_publisher_reads() {
        let body = error_body(701, "access token pate_…x \"quoted\" is not valid", "JEL");
        let parsed: serde_json::Value = serde_json::from_str(&body).expect("json");
        assert_eq!(parsed["result"], 701);
        assert_eq!(
            parsed["error"],
            "access token pate_…x \"quoted\" is not valid"
        );
        assert_eq!(parsed["source"], "JEL");
        let accepted: Reply = serde_json::from_str(&accepted_body(3, 10, 99)).expect("reply");
        assert_eq!((accepted.result, accepted.version), (0, Some(3)));
        let stale: Reply = serde_json::from_str(&stale_body("older", 7)).expect("reply");
        assert_eq!((stale.result, stale.current_version), (409, Some(7)));
        let status = Status {
            result: 0,
            loaded: false,
            version: 0,
            tokens: 0,
            issued_at: 0,
            expires_at: 0,
            key_id: None,
            floor: Some(Floor::Pending),
        };
        assert_eq!(
            status_body(&status),
            r#"{"result":0,"loaded":false,"version":0,"tokens":0,"issued_at":0,"expires_at":0,"floor":"pending"}"#
        );
    }
}
