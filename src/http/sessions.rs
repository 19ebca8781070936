//! Refresh, logout, the caller's sessions, and the public signing keys.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::TokenResponse;
use super::extract::{AuthUser, CredentialBody, OptionalCredentialBody, PathId};
use super::problem_docs::{
    bearer_errors, credential_body_errors, problems, rate_limited, unavailable,
};
use super::rate_limit::CredentialRateLimit;
use super::routes::Routes;
use super::views::SessionView;
use crate::app::AppState;
use crate::client::ClientInfo;
use crate::domain::{FieldError, reject_control_characters};
use crate::error::{ApiError, Result};
use crate::sessions;
use crate::store::LogoutScope;

pub fn routes() -> Routes {
    Routes::default()
        .post("/auth/refresh", refresh)
        .post("/auth/logout", logout)
        .get("/me/sessions", list)
        .delete("/me/sessions/{id}", end)
        .get("/.well-known/jwks.json", jwks)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    #[schema(value_type = String, required = true)]
    refresh_token: Option<String>,
    /// OAuth 2 refresh grant: must be `refresh_token` when given.
    #[schema(example = "refresh_token")]
    grant_type: Option<String>,
    /// OAuth 2: accepted and ignored.
    #[allow(dead_code)] // declared so that it is allowed, and documented
    client_id: Option<String>,
    /// OAuth 2: accepted and ignored.
    #[allow(dead_code)] // declared so that it is allowed, and documented
    scope: Option<String>,
}

/// Refresh tokens are 43 characters; anything far longer is not one.
const REFRESH_TOKEN_MAX: usize = 256;

problems!(RefreshProblems: credential_body_errors(), rate_limited(), unavailable(), [
    crate::accounts::unsupported_grant_type("refresh_token"),
    ApiError::InvalidRefreshToken,
]);

/// Refresh the tokens
///
/// Spends the refresh token and returns a new pair, shaped like a login's.
/// A spent token presented again ends its whole session, except within
/// `REFRESH_REUSE_GRACE_SECONDS` of its use, when the same new pair is
/// returned again.
#[utoipa::path(
    post,
    path = "/auth/refresh",
    tag = "auth",
    operation_id = "refresh",
    request_body(content(
        (RefreshRequest = "application/json"),
        (RefreshRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "A new pair.", body = TokenResponse,
         headers(
             ("Cache-Control" = String, description = "`no-store`"),
             ("Pragma" = String, description = "`no-cache`"))),
        RefreshProblems,
    ),
)]
async fn refresh(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    CredentialBody(request): CredentialBody<RefreshRequest>,
) -> Result<Json<TokenResponse>> {
    crate::accounts::require_grant_type(request.grant_type.as_deref(), "refresh_token")?;
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

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct LogoutRequest {
    /// `local` (the default): this session; `others`: every other one;
    /// `global`: all of them.
    #[schema(value_type = Option<Scope>)]
    scope: Option<String>,
}

/// The sessions a logout ends; only for the document, the handler parses
/// the text itself to report a bad value as a field error.
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)]
enum Scope {
    Local,
    Others,
    Global,
}

problems!(LogoutProblems: credential_body_errors(), bearer_errors(), unavailable());

/// Log out
///
/// The body is optional. The ended sessions' access and refresh tokens stop
/// working at once.
#[utoipa::path(
    post,
    path = "/auth/logout",
    tag = "auth",
    operation_id = "logout",
    request_body(
        description = "Optional; no body means `local`.",
        content(
            (Option<LogoutRequest> = "application/json"),
            (Option<LogoutRequest> = "application/x-www-form-urlencoded"),
        ),
    ),
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out."), LogoutProblems),
)]
async fn logout(
    State(state): State<AppState>,
    client: ClientInfo,
    AuthUser { user, claims }: AuthUser,
    OptionalCredentialBody(request): OptionalCredentialBody<LogoutRequest>,
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

#[derive(Serialize, ToSchema)]
struct SessionList {
    /// Newest first.
    sessions: Vec<SessionView>,
}

problems!(GuardedProblems: bearer_errors(), unavailable());

/// Your sessions
///
/// Every login is a session; `current` marks the one that asked.
#[utoipa::path(
    get,
    path = "/me/sessions",
    tag = "me",
    operation_id = "list_sessions",
    security(("bearer" = [])),
    responses((status = 200, description = "Live sessions.", body = SessionList), GuardedProblems),
)]
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

problems!(EndProblems: bearer_errors(), unavailable(), [ApiError::NotFound]);

/// End one of your sessions
///
/// Its tokens stop working at once. Another user's session, one already
/// ended, and an id that is not a UUID are all 404.
#[utoipa::path(
    delete,
    path = "/me/sessions/{id}",
    tag = "me",
    operation_id = "end_session",
    params(("id" = String, Path, description = "A session id from `GET /me/sessions`.")),
    security(("bearer" = [])),
    responses((status = 204, description = "Ended."), EndProblems),
)]
async fn end(
    State(state): State<AppState>,
    client: ClientInfo,
    AuthUser { user, .. }: AuthUser,
    PathId(id): PathId,
) -> Result<StatusCode> {
    sessions::end(&state, &user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The public keys that verify access tokens, as a JWK Set.
#[derive(ToSchema)]
#[allow(dead_code)]
struct JwkSet {
    /// Empty with HS256: an HMAC key is never published.
    keys: Vec<Jwk>,
}

/// An Ed25519 public key.
#[derive(ToSchema)]
#[allow(dead_code)]
struct Jwk {
    #[schema(example = "OKP")]
    kty: String,
    #[schema(example = "Ed25519")]
    crv: String,
    /// The public key, base64url.
    x: String,
    /// Matches the `kid` in access-token headers.
    kid: String,
    #[schema(example = "EdDSA")]
    alg: String,
    #[schema(example = "sig")]
    r#use: String,
}

/// Signing keys (JWKS)
///
/// With `JWT_ALGORITHM=EdDSA`, the keys any service can verify access
/// tokens with. A key stays listed until the tokens it signed have expired.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "operations",
    operation_id = "jwks",
    responses((status = 200, description = "The JWK Set.", body = JwkSet)),
)]
async fn jwks(State(state): State<AppState>) -> Json<serde_json::Value> {
    Json(state.tokens.key_ring().jwks(crate::store::now()))
}
