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
                "Name must not contain invisible characters (zero-width, bidirectional \
                 or other formatting characters).",
            ));
        }
        if !raw.is_empty() && !raw.chars().any(is_visible) {
            return Err(FieldError::new(
                field,
                "blank",
                "Name must have a visible character; use null for no name.",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Whether `c` shows as something: not white space, not a mark that only
/// decorates the character before it, not a character drawn blank.
fn is_visible(c: char) -> bool {
    !c.is_whitespace()
        && !unicode_normalization::char::is_combining_mark(c)
        && !is_invisible_formatting(c)
        && !matches!(c, '\u{2800}' | '\u{FFFC}' | '\u{1D159}')
}

/// Characters that change how a name is displayed without being seen, or
/// are not displayed at all: Unicode's default-ignorable code points
/// (zero-width characters, joiners, bidirectional marks, embeddings,
/// overrides and isolates, variation selectors, Hangul fillers, tags), the
/// other format characters (general category Cf), and the line and
/// paragraph separators. With them, a name can read "admin" but be stored
/// reversed, or two different names can look the same.
pub fn is_invisible_formatting(c: char) -> bool {
    matches!(c,
        // Default_Ignorable_Code_Point (Unicode 15.1, DerivedCoreProperties).
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}'..='\u{1160}'
        | '\u{17B4}'..='\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
        | '\u{1BCA0}'..='\u{1BCA3}' | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}'
        // The rest of category Cf.
        | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{0890}'..='\u{0891}'
        | '\u{08E2}' | '\u{FFF9}'..='\u{FFFB}' | '\u{110BD}' | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        // Line and paragraph separators (Zl, Zp).
        | '\u{2028}'..='\u{2029}'
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
            "Ali\u{00AD}ce",
            "\u{3164}",
            "alice\u{E0041}",
            "ali\u{FE0F}ce",
            "ali\u{2028}ce",
            "\u{1D173}x",
            "a\u{2065}b",
        ] {
            assert_eq!(code(bad), "invalid_characters", "{bad:?}");
        }
        let err = DisplayName::parse_field("first_name", "x\u{202D}").unwrap_err();
        assert_eq!(err.field, "first_name");
    }

    #[test]
    fn a_name_that_shows_nothing_is_refused() {
        for blank in [
            "   ",
            "\u{00A0}\u{00A0}",
            "\u{3000}",
            "\u{2800}\u{2800}",
            "\u{0301}\u{0301}",
            "\u{FFFC}",
        ] {
            assert_eq!(code(blank), "blank", "{blank:?}");
        }
        assert_eq!(code("Zoë"), "ok");
        assert_eq!(code(" Al "), "ok");
    }

    #[test]
    fn length_is_counted_in_characters() {
        assert_eq!(code(&"é".repeat(100)), "ok");
        assert_eq!(code(&"é".repeat(101)), "too_long");
    }
}
