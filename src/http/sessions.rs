//! Refresh, logout, the caller's sessions, and the public signing keys.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::auth::TokenResponse;
use super::extract::{AuthUser, OptionalJson, StrictJson};
use crate::app::AppState;
use crate::domain::{FieldError, reject_control_characters};
use crate::error::{ApiError, Result};
use crate::sessions;
use crate::store::{LogoutScope, SessionRow};

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
    StrictJson(request): StrictJson<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    let Some(token) = request.refresh_token else {
        return Err(ApiError::Validation(vec![FieldError::new(
            "refresh_token",
            "required",
            "`refresh_token` is required.",
        )]));
    };
    reject_control_characters("refresh_token", &token)
        .map_err(|e| ApiError::Validation(vec![e]))?;
    if token.is_empty() || token.len() > REFRESH_TOKEN_MAX {
        return Err(ApiError::InvalidRefreshToken);
    }
    let pair = sessions::refresh(&state, &token).await?;
    Ok(Json(pair.into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogoutRequest {
    scope: Option<String>,
}

async fn logout(
    State(state): State<AppState>,
    AuthUser { user, claims }: AuthUser,
    OptionalJson(request): OptionalJson<LogoutRequest>,
) -> Result<StatusCode> {
    let scope = match request.and_then(|r| r.scope).as_deref() {
        None | Some("local") => LogoutScope::Local,
        Some("others") => LogoutScope::Others,
        Some("global") => LogoutScope::Global,
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "scope",
                "invalid_scope",
                "scope must be `local`, `others` or `global`.",
            )]));
        }
    };
    sessions::logout(&state, &user, claims.sid, scope).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct SessionView {
    id: String,
    created_at: String,
    last_used_at: String,
    user_agent: Option<String>,
    ip: Option<String>,
    current: bool,
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
        .map(|s: SessionRow| SessionView {
            current: s.id == current,
            created_at: rfc3339(s.created_at),
            last_used_at: rfc3339(s.last_used_at),
            id: s.id,
            user_agent: s.user_agent,
            ip: s.ip,
        })
        .collect();
    Ok(Json(SessionList { sessions }))
}

fn rfc3339(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

async fn end(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    // An id that is not even a UUID names no session: 404 like any other.
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::NotFound)?;
    sessions::end(&state, &user, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.tokens.key_ring().jwks(crate::store::now()))
}
