use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;
use zxcvbn::Score;
use zxcvbn::feedback::Warning;
use zxcvbn::matching::patterns::MatchPattern;

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
        // Compared in the same NFKC form usernames are, so full-width or
        // other compatibility spellings of the name are caught too.
        let folded = raw.nfkc().collect::<String>().to_lowercase();
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

/// True when the password, as a whole, is one of zxcvbn's ~30,000 common
/// passwords, ignoring case and including l33t and reversed spellings
/// (`P@ssw0rd`, `drowssap`), or is nothing but a trivial run or keyboard
/// walk (`87654321`, `1qaz2wsx`), which top every such list.
///
/// zxcvbn explains a password as its cheapest sequence of matches; a single
/// match covering everything means the password is exactly that pattern.
/// Its feedback warnings are the public way to tell that a dictionary match
/// came from the password list rather than from English words or names.
fn is_common(raw: &str) -> bool {
    let entropy = zxcvbn::zxcvbn(raw, &[]);
    let [only] = entropy.sequence() else {
        return false;
    };
    match &only.pattern {
        MatchPattern::Dictionary(_) => matches!(
            entropy.feedback().and_then(|f| f.warning()),
            Some(
                Warning::ThisIsATop10Password
                    | Warning::ThisIsATop100Password
                    | Warning::ThisIsACommonPassword
                    | Warning::ThisIsSimilarToACommonlyUsedPassword
            )
        ),
        MatchPattern::Sequence(_) | MatchPattern::Spatial(_) => entropy.score() <= Score::One,
        _ => false,
    }
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
    fn ordinary_strong_passwords_pass() {
        for ok in [
            "correct horse battery staple",
            "S3cure!Passw0rd#2026",
            "tulip-marble-47-orbit",
            "Zx9#mQ2!vL",
        ] {
            assert_eq!(code(ok), "ok", "{ok}");
        }
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
        assert_eq!(code("P@ssw0rd"), "common_password");
        assert_eq!(code("passw0rd"), "common_password");
        assert_eq!(code("drowssap"), "common_password");
        assert_eq!(code("87654321"), "common_password");
        assert_eq!(code("12345678"), "common_password");
        assert_eq!(code("1qaz2wsx"), "common_password");
        assert_eq!(code("trustno1"), "common_password");
        assert_eq!(code("aaaaaaaaaaaa"), "repeated_character");
        assert_eq!(code("my-ALICE-pass-42"), "contains_username");
        assert_eq!(code("my-ａｌｉｃｅ-pass-42"), "contains_username");
        assert_eq!(code("xx-wonder.land-xx"), "contains_email");
    }
}
