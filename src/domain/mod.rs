//! The values gatehouse accepts, as types that can only hold valid data.
//! Parsing collects problems as [`FieldError`]s so a request can report all
//! of them at once.

mod email;
pub mod lockout;
mod name;
mod password;
mod user;
mod username;

pub use email::{Email, email_key};
pub use name::{DisplayName, is_invisible_formatting};
pub use password::{Password, PasswordPolicy};
pub use user::{Role, User, UserId};
pub use username::Username;

/// One problem with one input field, as listed in a problem body's `errors`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name, as sent.
    #[schema(example = "password")]
    pub field: String,
    /// Stable and machine-readable, e.g. `too_short`, `common_password`.
    #[schema(example = "common_password")]
    pub code: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            code,
            message: message.into(),
        }
    }

    /// A field that must be given was absent or `null`.
    pub fn required(field: &str) -> Self {
        Self::new(field, "required", format!("`{field}` is required."))
    }
}

/// Refuses control characters (NUL, newlines, escapes …) in any text field.
pub fn reject_control_characters(field: &str, value: &str) -> Result<(), FieldError> {
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "control_character",
            "Control characters are not allowed.",
        ));
    }
    Ok(())
}

/// Gathers the results of parsing several fields into one list of problems.
#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    /// Records the error, if any, and hands back the parsed value.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    pub fn into_result(self) -> Result<(), Vec<FieldError>> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0)
        }
    }
}
