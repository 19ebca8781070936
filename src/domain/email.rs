use unicode_normalization::UnicodeNormalization;
use validator::ValidateEmail;

use super::{FieldError, reject_control_characters};

/// An email address with valid syntax, at most 254 characters. Uniqueness and
/// login ignore case, through [`Email::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

const MAX: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "email";
        reject_control_characters(FIELD, raw)?;
        if raw.chars().count() > MAX {
            return Err(FieldError::new(
                FIELD,
                "too_long",
                format!("Email must be at most {MAX} characters."),
            ));
        }
        // The canonical form is what the database stores and compares, and
        // NFKC can lengthen text (one `㍿` becomes four letters): the limit
        // holds for both forms, so nothing reaches a column it overflows.
        if email_key(raw).chars().count() > MAX {
            return Err(FieldError::new(
                FIELD,
                "too_long",
                format!("Email must be at most {MAX} characters."),
            ));
        }
        if !raw.validate_email() {
            return Err(FieldError::new(
                FIELD,
                "invalid_email",
                "Email is not a valid address.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn key(&self) -> String {
        email_key(&self.0)
    }

    /// The part before the `@`, which a password must not contain.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

/// The case-folded form of an address, for lookups of possibly invalid input.
pub fn email_key(raw: &str) -> String {
    raw.nfkc().collect::<String>().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_variants_share_a_key() {
        let a = Email::parse("Alice@Example.COM").unwrap();
        assert_eq!(a.key(), "alice@example.com");
        assert_eq!(a.as_str(), "Alice@Example.COM");
        assert_eq!(a.local_part(), "Alice");
    }

    #[test]
    fn the_limit_holds_after_normalisation_too() {
        let expanding = format!("a@{}.com", vec!["㍿".repeat(10); 12].join("."));
        assert!(expanding.chars().count() < MAX);
        assert_eq!(Email::parse(&expanding).unwrap_err().code, "too_long");
    }

    #[test]
    fn bad_syntax_and_length_are_refused() {
        assert_eq!(
            Email::parse("not-an-email").unwrap_err().code,
            "invalid_email"
        );
        assert_eq!(Email::parse(" a@b.co").unwrap_err().code, "invalid_email");
        // Labels stay under DNS's 63-character limit; only the total varies.
        let address = |total: usize| {
            let mut domain = format!("{}.{}.", "b".repeat(60), "c".repeat(60));
            let last = total - 64 - 1 - domain.len() - 4;
            domain.push_str(&"d".repeat(last));
            format!("{}@{domain}.com", "a".repeat(64))
        };
        assert_eq!(address(MAX).len(), MAX);
        assert!(Email::parse(&address(MAX)).is_ok());
        assert_eq!(
            Email::parse(&address(MAX + 1)).unwrap_err().code,
            "too_long"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any text: an address or a field error, never a panic. An
            /// accepted address and its lookup key both fit the 254
            /// characters the database holds, however NFKC stretches them.
            #[test]
            fn any_text_parses_or_is_refused(raw in "\\PC{0,300}|[^@]{1,40}@[\\PC]{1,250}") {
                if let Ok(email) = Email::parse(&raw) {
                    prop_assert!(email.as_str().chars().count() <= 254);
                    prop_assert!(email.key().chars().count() <= 254);
                    prop_assert_eq!(email.as_str(), raw.as_str(), "stored as given");
                }
            }

            /// Addresses that differ only in case share a key.
            #[test]
            fn case_does_not_matter(local in "[a-zA-Z0-9.]{1,20}", domain in "[a-zA-Z]{1,20}") {
                let raw = format!("{local}@{domain}.example");
                if let Ok(email) = Email::parse(&raw) {
                    let upper = Email::parse(&raw.to_uppercase()).unwrap();
                    prop_assert_eq!(email.key(), upper.key());
                }
            }
        }
    }
}
