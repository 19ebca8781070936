//! Registration and login, with the paths older Flask/FastAPI backends used.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use uuid::Uuid;

use super::extract::{MaybeAuthUser, StrictJson};
use super::views::UserView;
use crate::accounts::{self, Granting, LoginAttempt, Registration};
use crate::app::AppState;
use crate::domain::Role;
use crate::error::Result;

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
    MaybeAuthUser(caller): MaybeAuthUser,
    StrictJson(registration): StrictJson<Registration>,
) -> Result<(StatusCode, Json<Registered>)> {
    let granting = match caller {
        Some(caller) if caller.user.role == Role::Admin => Granting::AnyRole,
        _ => Granting::UserOnly,
    };
    let user = accounts::register(&state, registration, granting).await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            message: "User registered successfully",
            user: UserView::from(&user),
        }),
    ))
}

#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    user: UserView,
}

async fn login(
    State(state): State<AppState>,
    StrictJson(attempt): StrictJson<LoginAttempt>,
) -> Result<Json<TokenResponse>> {
    let user = accounts::check_login(&state, attempt).await?;
    // Each login is its own session; `sid` names it in every access token.
    let issued = state.tokens.issue(&user, Uuid::now_v7());
    Ok(Json(TokenResponse {
        access_token: issued.token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        user: UserView::from(&user),
    }))
}
