//! Account names as they travel to the platform in an identity header.
//!
//! A user name ends up in an HTTP header value, in logs and in JSON, so it is restricted to
//! characters that are safe in all three: ASCII letters, digits and `. _ @ + -` (enough for
//! logins and e-mail addresses), 1 to 128 of them.

/// Longest accepted user name.
pub const MAX_USER_LEN: usize = 128;

/// Why a user name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserNameError {
    /// Empty.
    #[error("the user name is empty")]
    Empty,
    /// Longer than [`MAX_USER_LEN`].
    #[error("the user name is longer than {MAX_USER_LEN} characters")]
    TooLong,
    /// A character outside the allowed set.
    #[error("the user name may only contain ASCII letters, digits and . _ @ + -")]
    Characters,
}

/// Checks a user name against the rules above.
pub fn validate_user_name(name: &str) -> Result<(), UserNameError> {
    if name.is_empty() {
        return Err(UserNameError::Empty);
    }
    if name.len() > MAX_USER_LEN {
        return Err(UserNameError::TooLong);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'+' | b'-'))
    {
        return Err(UserNameError::Characters);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names() {
        assert_eq!(validate_user_name("alice@example.com"), Ok(()));
        assert_eq!(validate_user_name("bob_2+ci-x"), Ok(()));
        assert_eq!(validate_user_name(""), Err(UserNameError::Empty));
        assert_eq!(
            validate_user_name(&"a".repeat(129)),
            Err(UserNameError::TooLong)
        );
        for bad in ["a b", "a\r\nx-pat-user: root", "é", "a\"b", "a,b", "a\0"] {
            assert_eq!(
                validate_user_name(bad),
                Err(UserNameError::Characters),
                "{bad:?}"
            );
        }
    }
}
