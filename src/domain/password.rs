use secrecy::{ExposeSecret, SecretString};
use zxcvbn::feedback::Warning;

use super::{Email, FieldError, Username, reject_control_characters};
use crate::config::PASSWORD_MAX_LENGTH;

/// A password as received. It never prints, and it is bounded in length
/// before anything expensive (hashing, the common-password check) sees it.
#[derive(Clone)]
pub struct Password(SecretString);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    /// Accepts any password a stored account could have; used where a
    /// password is checked against a hash rather than chosen.
    pub fn given(field: &str, raw: &str) -> Result<Self, FieldError> {
        reject_control_characters(field, raw)?;
        if raw.is_empty() {
            return Err(FieldError::new(field, "required", "Password is required."));
        }
        if raw.chars().count() > PASSWORD_MAX_LENGTH {
            return Err(too_long(field));
        }
        Ok(Self(raw.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

fn too_long(field: &str) -> FieldError {
    FieldError::new(
        field,
        "too_long",
        format!("Password must be at most {PASSWORD_MAX_LENGTH} characters."),
    )
}

/// The rules a newly chosen password must meet (API.md section 3). There are
/// no composition rules: length and not being guessable are what matter.
#[derive(Clone, Copy, Debug)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

/// A local part this short would forbid nearly every password.
const MIN_LOCAL_PART_CHECKED: usize = 3;

impl PasswordPolicy {
    pub fn check(
        &self,
        field: &str,
        raw: &str,
        username: Option<&Username>,
        email: Option<&Email>,
    ) -> Result<Password, FieldError> {
        reject_control_characters(field, raw)?;
        let length = raw.chars().count();
        if length > PASSWORD_MAX_LENGTH {
            return Err(too_long(field));
        }
        if length < self.min_length {
            return Err(FieldError::new(
                field,
                "too_short",
                format!("Password must be at least {} characters.", self.min_length),
            ));
        }
        let mut chars = raw.chars();
        let first = chars.next();
        if chars.all(|c| Some(c) == first) {
            return Err(FieldError::new(
                field,
                "repeated_character",
                "Password must not be one character repeated.",
            ));
        }
        let folded = raw.to_lowercase();
        if username.is_some_and(|u| folded.contains(&u.key())) {
            return Err(FieldError::new(
                field,
                "contains_username",
                "Password must not contain the username.",
            ));
        }
        if let Some(local) = email.map(|e| e.local_part().to_lowercase())
            && local.chars().count() >= MIN_LOCAL_PART_CHECKED
            && folded.contains(&local)
        {
            return Err(FieldError::new(
                field,
                "contains_email",
                "Password must not contain the email address.",
            ));
        }
        if is_common(raw) {
            return Err(FieldError::new(
                field,
                "common_password",
                "Password is too common; choose one that is harder to guess.",
            ));
        }
        Ok(Password(raw.into()))
    }
}

/// True when the whole password, ignoring case, is on zxcvbn's list of about
/// 30,000 common passwords. zxcvbn reports that through its feedback
/// warnings, which it gives only when the list entry is the sole match.
fn is_common(raw: &str) -> bool {
    let warning = zxcvbn::zxcvbn(raw, &[])
        .feedback()
        .and_then(|f| f.warning());
    matches!(
        warning,
        Some(Warning::ThisIsATop10Password)
            | Some(Warning::ThisIsATop100Password)
            | Some(Warning::ThisIsACommonPassword)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: PasswordPolicy = PasswordPolicy { min_length: 8 };

    fn code(raw: &str) -> &'static str {
        let user = Username::parse("alice").unwrap();
        let email = Email::parse("wonder.land@example.com").unwrap();
        POLICY
            .check("password", raw, Some(&user), Some(&email))
            .map(|_| "ok")
            .unwrap_or_else(|e| e.code)
    }

    #[test]
    fn length_limits_are_inclusive() {
        assert_eq!(code("xk4!qz9"), "too_short");
        assert_eq!(code("xk4!qz9#"), "ok");
        assert_eq!(code(&"xk4!qz9#".repeat(16)), "ok");
        assert_eq!(code(&format!("{}y", "xk4!qz9#".repeat(16))), "too_long");
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        assert_eq!(code("ñøþæ€ßðŧ"), "ok");
        assert_eq!(code("ñøþæ€ßð"), "too_short");
    }

    #[test]
    fn spaces_are_allowed_and_control_characters_are_not() {
        assert_eq!(code("correct horse battery"), "ok");
        assert_eq!(code("correct\0horse battery"), "control_character");
    }

    #[test]
    fn guessable_passwords_are_refused() {
        assert_eq!(code("password"), "common_password");
        assert_eq!(code("PassWord"), "common_password");
        assert_eq!(code("iloveyou"), "common_password");
        assert_eq!(code("qwerty123"), "common_password");
        assert_eq!(code("aaaaaaaaaaaa"), "repeated_character");
        assert_eq!(code("my-ALICE-pass-42"), "contains_username");
        assert_eq!(code("xx-wonder.land-xx"), "contains_email");
    }
}
