//! Registration and login, with the paths older Flask/FastAPI backends used.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use secrecy::ExposeSecret;
use serde::Serialize;

use super::client::ClientInfo;
use super::extract::{MaybeAuthUser, StrictJson};
use super::rate_limit::CredentialRateLimit;
use super::views::UserView;
use crate::accounts::{self, Granting, LoginAttempt, Registration};
use crate::app::AppState;
use crate::domain::Role;
use crate::error::Result;
use crate::sessions::{self, TokenPair};

/// Canonical paths first; the rest are aliases that behave identically.
pub const REGISTER_PATHS: &[&str] = &[
    "/auth/register",
    "/register",
    "/signup",
    "/api/auth/register",
];
pub const LOGIN_PATHS: &[&str] = &["/auth/login", "/login", "/api/auth/login"];

pub fn router() -> Router<AppState> {
    let mut router = Router::new();
    for path in REGISTER_PATHS {
        router = router.route(path, post(register));
    }
    for path in LOGIN_PATHS {
        router = router.route(path, post(login));
    }
    router
}

#[derive(Serialize)]
struct Registered {
    message: &'static str,
    user: UserView,
}

async fn register(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    MaybeAuthUser(caller): MaybeAuthUser,
    StrictJson(registration): StrictJson<Registration>,
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
#[derive(Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
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

async fn login(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    StrictJson(attempt): StrictJson<LoginAttempt>,
) -> Result<Json<TokenResponse>> {
    let user = accounts::check_login(&state, attempt, &client).await?;
    let pair = sessions::start(&state, user, &client).await?;
    Ok(Json(pair.into()))
}
