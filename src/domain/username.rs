use unicode_normalization::UnicodeNormalization;

use super::{FieldError, reject_control_characters};

/// A username after NFKC normalisation: 3–32 ASCII letters, digits, `.`, `_`
/// or `-`, starting with a letter or digit. The display spelling keeps the
/// user's case; [`Username::key`] is what uniqueness is decided on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

const MIN: usize = 3;
const MAX: usize = 32;

impl Username {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "username";
        reject_control_characters(FIELD, raw)?;
        // NFKC folds compatibility forms (full-width letters, ligatures) so
        // that `ａｌｉｃｅ` and `alice` are one name.
        let normalized: String = raw.nfkc().collect();
        let length = normalized.chars().count();
        if length < MIN {
            return Err(FieldError::new(
                FIELD,
                "too_short",
                format!("Username must be at least {MIN} characters."),
            ));
        }
        if length > MAX {
            return Err(FieldError::new(
                FIELD,
                "too_long",
                format!("Username must be at most {MAX} characters."),
            ));
        }
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if !normalized.chars().all(allowed) {
            return Err(FieldError::new(
                FIELD,
                "invalid_characters",
                "Username may contain only ASCII letters, digits, '.', '_' and '-'.",
            ));
        }
        if !normalized.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(FieldError::new(
                FIELD,
                "invalid_start",
                "Username must start with a letter or a digit.",
            ));
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form stored under a unique index.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nfkc_and_case_variants_share_a_key() {
        let plain = Username::parse("alice").unwrap();
        let upper = Username::parse("Alice").unwrap();
        let wide = Username::parse("ａｌｉｃｅ").unwrap();
        assert_eq!(plain.key(), upper.key());
        assert_eq!(plain.key(), wide.key());
        assert_eq!(upper.as_str(), "Alice");
        assert_eq!(wide.as_str(), "alice");
    }

    #[test]
    fn length_limits_are_inclusive() {
        assert_eq!(Username::parse("ab").unwrap_err().code, "too_short");
        assert!(Username::parse("abc").is_ok());
        assert!(Username::parse(&"a".repeat(32)).is_ok());
        assert_eq!(
            Username::parse(&"a".repeat(33)).unwrap_err().code,
            "too_long"
        );
    }

    #[test]
    fn only_the_allowed_characters_pass() {
        assert!(Username::parse("a.b_c-d9").is_ok());
        assert_eq!(Username::parse("_abc").unwrap_err().code, "invalid_start");
        assert_eq!(
            Username::parse("al ice").unwrap_err().code,
            "invalid_characters"
        );
        assert_eq!(
            Username::parse("alicé").unwrap_err().code,
            "invalid_characters"
        );
        assert_eq!(
            Username::parse("ali\0ce").unwrap_err().code,
            "control_character"
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any text: a username or a field error, never a panic. What is
            /// accepted is already in its final form and parses to itself.
            #[test]
            fn any_text_parses_or_is_refused(raw in "\\PC{0,40}|[\\x00-\\u{FFFF}]{0,40}") {
                if let Ok(name) = Username::parse(&raw) {
                    let length = name.as_str().chars().count();
                    prop_assert!((3..=32).contains(&length));
                    prop_assert!(name.as_str().is_ascii());
                    prop_assert_eq!(Username::parse(name.as_str()).ok(), Some(name.clone()));
                    prop_assert_eq!(name.key(), name.as_str().to_ascii_lowercase());
                }
            }

            /// Full-width spellings are the same name as the ASCII ones.
            #[test]
            fn full_width_spellings_share_the_key(raw in "[a-z][a-z0-9]{2,20}") {
                let wide: String = raw
                    .chars()
                    .map(|c| char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap())
                    .collect();
                let plain = Username::parse(&raw).unwrap();
                prop_assert_eq!(Username::parse(&wide).unwrap().key(), plain.key());
            }
        }
    }
}
