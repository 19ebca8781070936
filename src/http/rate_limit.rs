//! The per-client limit as an extractor for the routes it covers (see
//! [`crate::rate_limit`] for the limit itself).

use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::app::AppState;
use crate::client::ClientInfo;
use crate::error::ApiError;

/// An extractor that admits the request only within its client's
/// allowance; otherwise 429 `too_many_attempts` with `Retry-After`. It runs
/// before the body is read.
pub struct CredentialRateLimit;

impl FromRequestParts<AppState> for CredentialRateLimit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = ClientInfo::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|e| match e {});
        if let Some(ip) = client.ip {
            state
                .rate_limiter
                .check(ip, Instant::now())
                .map_err(|retry_after| ApiError::TooManyAttempts { retry_after })?;
        }
        Ok(Self)
    }
}
