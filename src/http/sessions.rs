//! Refresh, logout, the caller's sessions, and the public signing keys.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::auth::TokenResponse;
use super::client::ClientInfo;
use super::extract::{AuthUser, OptionalJson, PathId, StrictJson};
use super::rate_limit::CredentialRateLimit;
use super::views::SessionView;
use crate::app::AppState;
use crate::domain::{FieldError, reject_control_characters};
use crate::error::{ApiError, Result};
use crate::sessions;
use crate::store::LogoutScope;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/auth/refresh", post(refresh))
        .route("/auth/logout", post(logout))
        .route("/me/sessions", get(list))
        .route("/me/sessions/{id}", delete(end))
        .route("/.well-known/jwks.json", get(jwks))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: Option<String>,
}

/// Refresh tokens are 43 characters; anything far longer is not one.
const REFRESH_TOKEN_MAX: usize = 256;

async fn refresh(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    StrictJson(request): StrictJson<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    let Some(token) = request.refresh_token else {
        return Err(ApiError::Validation(vec![FieldError::required(
            "refresh_token",
        )]));
    };
    reject_control_characters("refresh_token", &token)
        .map_err(|e| ApiError::Validation(vec![e]))?;
    if token.is_empty() || token.len() > REFRESH_TOKEN_MAX {
        return Err(ApiError::InvalidRefreshToken);
    }
    let pair = sessions::refresh(&state, &token, &client).await?;
    Ok(Json(pair.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutRequest {
    scope: Option<String>,
}

async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    AuthUser { user, claims }: AuthUser,
    OptionalJson(request): OptionalJson<LogoutRequest>,
) -> Result<StatusCode> {
    let scope = match request.and_then(|r| r.scope) {
        None => LogoutScope::Local,
        Some(raw) => LogoutScope::parse(&raw).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "scope",
                "invalid_scope",
                "scope must be `local`, `others` or `global`.",
            )])
        })?,
    };
    sessions::logout(&state, &user, claims.sid, scope, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct SessionList {
    sessions: Vec<SessionView>,
}

async fn list(
    State(state): State<AppState>,
    AuthUser { user, claims }: AuthUser,
) -> Result<Json<SessionList>> {
    let current = claims.sid.to_string();
    let sessions = sessions::list(&state, &user)
        .await?
        .into_iter()
        .map(|s| SessionView::new(s, &current))
        .collect();
    Ok(Json(SessionList { sessions }))
}

async fn end(
    State(state): State<AppState>,
    client: ClientInfo,
    AuthUser { user, .. }: AuthUser,
    PathId(id): PathId,
) -> Result<StatusCode> {
    sessions::end(&state, &user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.tokens.key_ring().jwks(crate::store::now()))
}
