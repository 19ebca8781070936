use super::{FieldError, reject_control_characters};

/// An optional display name, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

const MAX: usize = 100;

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        const FIELD: &str = "name";
        reject_control_characters(FIELD, raw)?;
        if raw.chars().count() > MAX {
            return Err(FieldError::new(
                FIELD,
                "too_long",
                format!("Name must be at most {MAX} characters."),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}
