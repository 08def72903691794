//! Which request bodies can carry a `session` field.

/// The kinds of body the filter inspects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/x-www-form-urlencoded`.
    Form,
    /// `multipart/form-data` with its boundary.
    Multipart {
        /// The boundary parameter, unquoted.
        boundary: String,
    },
    /// Anything else: never inspected.
    Opaque,
}

/// Classifies a `content-type` header value. A `multipart/form-data` without a usable
/// boundary is an error: the body could not be parsed, so it cannot be authorized.
pub fn classify(content_type: Option<&str>) -> Result<BodyKind, &'static str> {
    let Some(value) = content_type else {
        return Ok(BodyKind::Opaque);
    };
    let mut parts = value.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Ok(BodyKind::Form);
    }
    if !essence.eq_ignore_ascii_case("multipart/form-data") {
        return Ok(BodyKind::Opaque);
    }
    let mut boundary = None;
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("boundary") {
            if boundary.is_some() {
                return Err("multipart content type with two boundaries");
            }
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(value);
            boundary = Some(value);
        }
    }
    match boundary {
        // RFC 2046: 1 to 70 characters, no trailing space.
        Some(b)
            if (1..=70).contains(&b.len())
                && !b.ends_with(' ')
                && b.bytes().all(|c| (0x20..0x7f).contains(&c)) =>
        {
            Ok(BodyKind::Multipart {
                boundary: b.to_string(),
            })
        }
        _ => Err("multipart content type without a valid boundary"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_content_types() {
        assert_eq!(classify(None), Ok(BodyKind::Opaque));
        assert_eq!(classify(Some("application/json")), Ok(BodyKind::Opaque));
        assert_eq!(
            classify(Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8")),
            Ok(BodyKind::Form)
        );
        assert_eq!(
            classify(Some("multipart/form-data; boundary=----abc")),
            Ok(BodyKind::Multipart {
                boundary: "----abc".into()
            })
        );
        assert_eq!(
            classify(Some(
                r#"multipart/form-data; charset=utf-8; boundary="a b:c""#
            )),
            Ok(BodyKind::Multipart {
                boundary: "a b:c".into()
            })
        );
        assert!(classify(Some("multipart/form-data")).is_err());
        assert!(classify(Some("multipart/form-data; boundary=")).is_err());
        assert!(classify(Some("multipart/form-data; boundary=a; boundary=b")).is_err());
        assert!(
            classify(Some(&format!(
                "multipart/form-data; boundary={}",
                "x".repeat(71)
            )))
            .is_err()
        );
        assert_eq!(
            classify(Some("multipart/mixed; boundary=x")),
            Ok(BodyKind::Opaque)
        );
    }
}
