//! The one error type at the HTTP edge. Every failure a client can see is a
//! variant here, rendered as `application/problem+json` (RFC 9457) with a
//! stable `code`. Nothing internal (SQL, driver messages, secrets) is ever
//! put in a body: unexpected errors are logged with the request id and shown
//! as a generic 500.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::domain::FieldError;
use crate::http::request_id;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

const REALM: &str = r#"Bearer realm="gatehouse""#;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `validation_failed`: input parsed as JSON but broke the input rules;
    /// every problem is listed.
    #[error("validation failed")]
    Validation(Vec<FieldError>),

    /// 400 with a specific code: the body or query could not be read as the
    /// expected shape (`malformed_json`, `unknown_field`, `invalid_type` …).
    #[error("bad request: {code}")]
    BadRequest {
        code: &'static str,
        detail: String,
        errors: Vec<FieldError>,
    },

    /// 401 `missing_token`, with a bare `Bearer` challenge.
    #[error("missing token")]
    MissingToken,

    /// 401 `invalid_token`: anything wrong with a presented token.
    #[error("invalid token")]
    InvalidToken,

    /// 401 `token_expired`: a genuine token whose `exp` has passed.
    #[error("token expired")]
    TokenExpired,

    /// 401 `invalid_credentials`: unknown user and wrong password alike.
    #[error("invalid credentials")]
    InvalidCredentials,

    /// 401 `invalid_refresh_token`: unknown, spent, expired or revoked.
    #[error("invalid refresh token")]
    InvalidRefreshToken,

    /// 403 `insufficient_role`: a valid token without the needed role.
    #[error("insufficient role")]
    InsufficientRole,

    /// 403 `role_forbidden`: registering with a role only an admin may grant.
    #[error("role forbidden")]
    RoleForbidden,

    /// 403 `account_disabled`, only ever after a correct password.
    #[error("account disabled")]
    AccountDisabled,

    /// 404 `not_found`.
    #[error("not found")]
    NotFound,

    /// 405 `method_not_allowed`.
    #[error("method not allowed")]
    MethodNotAllowed,

    /// 409 `username_taken`.
    #[error("username taken")]
    UsernameTaken,

    /// 409 `email_taken`.
    #[error("email taken")]
    EmailTaken,

    /// 409 `last_admin`: the change would leave no enabled admin.
    #[error("last admin")]
    LastAdmin,

    /// 408 `request_timeout`: the client did not finish sending its body.
    #[error("request timeout")]
    RequestTimeout,

    /// 413 `payload_too_large`.
    #[error("payload too large")]
    PayloadTooLarge,

    /// 415 `unsupported_media_type`.
    #[error("unsupported media type")]
    UnsupportedMediaType,

    /// 429 `too_many_attempts`, with `Retry-After`.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: Duration },

    /// 503 `service_unavailable`, with `Retry-After`: the database or the
    /// hashing pool cannot take the request now; trying again later may work.
    #[error("service unavailable")]
    ServiceUnavailable { retry_after: Duration },

    /// 500 `internal_error`. The cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

/// How long clients are asked to wait when the database is away.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(5);

impl ApiError {
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    pub fn bad_field(
        code: &'static str,
        field: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        let detail = detail.into();
        Self::BadRequest {
            code,
            errors: vec![FieldError::new(field, code, detail.clone())],
            detail,
        }
    }

    pub fn unavailable() -> Self {
        Self::ServiceUnavailable {
            retry_after: UNAVAILABLE_RETRY_AFTER,
        }
    }

    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            Validation(_) | BadRequest { .. } => StatusCode::BAD_REQUEST,
            MissingToken | InvalidToken | TokenExpired | InvalidCredentials
            | InvalidRefreshToken => StatusCode::UNAUTHORIZED,
            InsufficientRole | RoleForbidden | AccountDisabled => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            UsernameTaken | EmailTaken | LastAdmin => StatusCode::CONFLICT,
            RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ServiceUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        use ApiError::*;
        match self {
            Validation(_) => "validation_failed",
            BadRequest { code, .. } => code,
            MissingToken => "missing_token",
            InvalidToken => "invalid_token",
            TokenExpired => "token_expired",
            InvalidCredentials => "invalid_credentials",
            InvalidRefreshToken => "invalid_refresh_token",
            InsufficientRole => "insufficient_role",
            RoleForbidden => "role_forbidden",
            AccountDisabled => "account_disabled",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            UsernameTaken => "username_taken",
            EmailTaken => "email_taken",
            LastAdmin => "last_admin",
            RequestTimeout => "request_timeout",
            PayloadTooLarge => "payload_too_large",
            UnsupportedMediaType => "unsupported_media_type",
            TooManyAttempts { .. } => "too_many_attempts",
            ServiceUnavailable { .. } => "service_unavailable",
            Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
        use ApiError::*;
        match self {
            Validation(_) => "The request has invalid fields; see errors.",
            BadRequest { detail, .. } => detail,
            MissingToken => "This endpoint needs an Authorization: Bearer token.",
            InvalidToken => "The access token is not valid.",
            TokenExpired => "The access token has expired.",
            InvalidCredentials => "The credentials are not valid.",
            InvalidRefreshToken => "The refresh token is not valid; log in again.",
            InsufficientRole => "Your role does not allow this.",
            RoleForbidden => "Only an admin may register a user with that role.",
            AccountDisabled => "This account is disabled.",
            NotFound => "Nothing is here.",
            MethodNotAllowed => "This method is not allowed on this path.",
            UsernameTaken => "That username is already registered.",
            EmailTaken => "That email is already registered.",
            LastAdmin => "This would leave no enabled admin.",
            RequestTimeout => "The request body did not arrive in time.",
            PayloadTooLarge => "The request body is larger than 64 KiB.",
            UnsupportedMediaType => {
                "The request body must be sent as Content-Type: application/json \
                 (the credential routes also take application/x-www-form-urlencoded)."
            }
            TooManyAttempts { .. } => "Too many attempts; try again later.",
            ServiceUnavailable { .. } => {
                "The service is temporarily unavailable; try again shortly."
            }
            Internal(_) => "An unexpected error occurred.",
        }
        .to_owned()
    }

    fn challenge(&self) -> Option<&'static str> {
        match self {
            ApiError::MissingToken => Some(REALM),
            ApiError::InvalidToken | ApiError::TokenExpired => {
                Some(r#"Bearer realm="gatehouse", error="invalid_token""#)
            }
            ApiError::InsufficientRole => {
                Some(r#"Bearer realm="gatehouse", error="insufficient_scope""#)
            }
            // RFC 9110 §11.6.1: every 401 carries a challenge, a failed login
            // or refresh (no token involved) included.
            _ if self.status() == StatusCode::UNAUTHORIZED => Some(REALM),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            ApiError::TooManyAttempts { retry_after }
            | ApiError::ServiceUnavailable { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// An error as clients receive it: RFC 9457 problem details plus `code`,
/// the request id, and for input errors every problem found.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct Problem<'a> {
    /// Always `about:blank`: `code` is what identifies the problem.
    #[schema(example = "about:blank")]
    r#type: &'static str,
    /// The HTTP status's reason phrase.
    #[schema(example = "Conflict")]
    title: &'a str,
    #[schema(example = 409)]
    status: u16,
    /// Stable and machine-readable; branch on this, not on `detail`.
    #[schema(example = "username_taken")]
    code: &'a str,
    /// For people; the wording may change.
    detail: String,
    /// The request's `x-request-id`, also in the server's logs.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    request_id: Option<String>,
    /// Every problem with the input, for `400` input errors.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    #[schema(required = false)]
    errors: &'a [FieldError],
}

impl ApiError {
    fn problem(&self, request_id: Option<String>) -> Problem<'_> {
        let status = self.status();
        let errors: &[FieldError] = match self {
            ApiError::Validation(errors) | ApiError::BadRequest { errors, .. } => errors,
            _ => &[],
        };
        Problem {
            r#type: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            code: self.code(),
            detail: self.detail(),
            request_id,
            errors,
        }
    }

    /// The body this error is sent with, minus the request id: what the
    /// OpenAPI document shows as its example.
    pub fn example_body(&self) -> serde_json::Value {
        serde_json::to_value(self.problem(None)).expect("problem serialises")
    }

    /// Whether this error is sent with `Retry-After`.
    pub fn has_retry_after(&self) -> bool {
        self.retry_after().is_some()
    }

    /// Whether this error is sent with a `WWW-Authenticate` challenge.
    pub fn has_challenge(&self) -> bool {
        self.challenge().is_some()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(cause) = &self {
            tracing::error!(%cause, "request failed unexpectedly");
        }
        let problem = self.problem(request_id::current());
        let body = serde_json::to_vec(&problem).expect("problem serialises");
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(challenge) = self.challenge() {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        if matches!(self, ApiError::PayloadTooLarge | ApiError::RequestTimeout) {
            // The body may be left unread on the connection; say that it
            // closes, so clients do not send their next request down it.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let Some(wait) = self.retry_after() {
            // Retry-After is whole seconds; never advertise zero.
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Unavailable(cause) | StoreError::Conflict(cause) => {
                tracing::warn!(%cause, "database unavailable");
                ApiError::unavailable()
            }
            StoreError::UsernameTaken => ApiError::UsernameTaken,
            StoreError::EmailTaken => ApiError::EmailTaken,
            StoreError::LastAdmin => ApiError::LastAdmin,
            StoreError::NotFound => ApiError::NotFound,
            StoreError::Other(cause) => ApiError::Internal(cause),
        }
    }
}
