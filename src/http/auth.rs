//! Registration and login, with the paths older Flask/FastAPI backends used.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use secrecy::ExposeSecret;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{CredentialBody, MaybeAuthUser};
use super::problem_docs::{
    bearer_errors, credential_body_errors, problems, rate_limited, unavailable,
};
use super::rate_limit::CredentialRateLimit;
use super::routes::Routes;
use super::views::UserView;
use crate::accounts::{self, Granting, LoginAttempt, Registration};
use crate::app::AppState;
use crate::client::ClientInfo;
use crate::domain::Role;
use crate::error::{ApiError, Result};
use crate::sessions::{self, TokenPair};

/// The canonical paths, and the aliases older Flask/FastAPI backends used.
pub fn routes() -> Routes {
    Routes::default()
        .post("/auth/register", register)
        .also_at(&["/register", "/signup", "/api/auth/register"])
        .post("/auth/login", login)
        .also_at(&["/login", "/api/auth/login"])
}

#[derive(Serialize, ToSchema)]
struct Registered {
    #[schema(example = "User registered successfully")]
    message: &'static str,
    user: UserView,
}

problems!(RegisterProblems: credential_body_errors(), bearer_errors(), rate_limited(), unavailable(), [
    ApiError::RoleForbidden,
    ApiError::UsernameTaken,
    ApiError::EmailTaken,
]);

/// Register an account
///
/// Anyone may register with role `user`. Only a caller who sends an admin's
/// bearer token may give `role: "admin"`; a token that is sent must be
/// valid, or the request is refused with 401.
#[utoipa::path(
    post,
    path = "/auth/register",
    tag = "auth",
    operation_id = "register",
    request_body(content(
        (Registration = "application/json"),
        (Registration = "application/x-www-form-urlencoded"),
    )),
    security((), ("bearer" = [])),
    responses(
        (status = 201, description = "Registered.", body = Registered),
        RegisterProblems,
    ),
)]
async fn register(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    MaybeAuthUser(caller): MaybeAuthUser,
    CredentialBody(registration): CredentialBody<Registration>,
) -> Result<(StatusCode, Json<Registered>)> {
    let granting = match caller {
        Some(caller) if caller.user.role == Role::Admin => Granting::ByAdmin(caller.user.id),
        _ => Granting::UserOnly,
    };
    let user = accounts::register(&state, registration, granting, &client).await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            message: "User registered successfully",
            user: UserView::from(&user),
        }),
    ))
}

/// The body of login and refresh responses.
#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// A JWT for `Authorization: Bearer`.
    access_token: String,
    #[schema(example = "Bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    expires_in: u64,
    /// Opaque; spent by `POST /auth/refresh`, which returns a new one.
    refresh_token: String,
    user: UserView,
}

impl From<TokenPair> for TokenResponse {
    fn from(pair: TokenPair) -> Self {
        Self {
            access_token: pair.access_token,
            token_type: "Bearer",
            expires_in: pair.expires_in,
            refresh_token: pair.refresh_token.expose_secret().to_owned(),
            user: UserView::from(&pair.user),
        }
    }
}

problems!(LoginProblems: credential_body_errors(), rate_limited(), unavailable(), [
    crate::accounts::unsupported_grant_type("password"),
    ApiError::InvalidCredentials,
    ApiError::AccountDisabled,
]);

/// Log in
///
/// Give `username` or `email` (either ignores case), and `password`. An
/// unknown account and a wrong password get the same 401. Each login is a
/// new session.
#[utoipa::path(
    post,
    path = "/auth/login",
    tag = "auth",
    operation_id = "login",
    request_body(content(
        (LoginAttempt = "application/json"),
        (LoginAttempt = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "Logged in.", body = TokenResponse,
         headers(
             ("Cache-Control" = String, description = "`no-store`"),
             ("Pragma" = String, description = "`no-cache`"))),
        LoginProblems,
    ),
)]
async fn login(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    CredentialBody(attempt): CredentialBody<LoginAttempt>,
) -> Result<Json<TokenResponse>> {
    let user = accounts::check_login(&state, attempt, &client).await?;
    let pair = sessions::start(&state, user, &client).await?;
    Ok(Json(pair.into()))
}
