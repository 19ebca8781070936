use super::{FieldError, reject_control_characters};

/// An optional display name (`name`, and the first and last names), at most
/// 100 characters, with nothing that hides or reorders what is shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

const MAX: usize = 100;

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        Self::parse_field("name", raw)
    }

    /// Parses the value of `field`, which errors are reported under.
    pub fn parse_field(field: &str, raw: &str) -> Result<Self, FieldError> {
        reject_control_characters(field, raw)?;
        if raw.chars().count() > MAX {
            return Err(FieldError::new(
                field,
                "too_long",
                format!("Name must be at most {MAX} characters."),
            ));
        }
        if raw.chars().any(is_invisible_formatting) {
            return Err(FieldError::new(
                field,
                "invalid_characters",
                "Name must not contain bidirectional-override or zero-width characters.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Characters that change how a name is displayed without being seen:
/// bidirectional marks, embeddings, overrides and isolates (a name that
/// reads "admin" but is stored reversed), and zero-width characters (two
/// names that look the same).
fn is_invisible_formatting(c: char) -> bool {
    matches!(c,
        '\u{061C}'                  // Arabic letter mark
        | '\u{200B}'..='\u{200F}'   // zero-width space, non-joiner, joiner; LRM, RLM
        | '\u{202A}'..='\u{202E}'   // embeddings and overrides
        | '\u{2060}'..='\u{2064}'   // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'   // isolates
        | '\u{180E}'                // Mongolian vowel separator
        | '\u{FEFF}'                // zero-width no-break space
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> &'static str {
        DisplayName::parse(raw).map_or_else(|e| e.code, |_| "ok")
    }

    #[test]
    fn ordinary_names_in_any_script_pass() {
        for ok in ["Alice Liddell", "Zoë O'Neil", "محمد", "李小龍", "🚀 Rocket"] {
            assert_eq!(code(ok), "ok", "{ok:?}");
        }
    }

    #[test]
    fn invisible_formatting_is_refused() {
        for bad in [
            "admin\u{202E}nimda",
            "al\u{200B}ice",
            "\u{2066}alice\u{2069}",
            "alice\u{200F}",
            "\u{FEFF}alice",
            "a\u{200D}b",
        ] {
            assert_eq!(code(bad), "invalid_characters", "{bad:?}");
        }
        let err = DisplayName::parse_field("first_name", "x\u{202D}").unwrap_err();
        assert_eq!(err.field, "first_name");
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert_eq!(code(&"é".repeat(100)), "ok");
        assert_eq!(code(&"é".repeat(101)), "too_long");
    }
}
