//! The caller's own account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, patch, put};
use axum::{Json, Router};
use serde::Serialize;

use super::client::ClientInfo;
use super::extract::{AuthUser, StrictJson};
use super::rate_limit::CredentialRateLimit;
use super::views::UserView;
use crate::accounts::{self, DeletionConfirmation, PasswordChange, ProfileUpdate};
use crate::app::AppState;
use crate::domain::Role;
use crate::error::Result;

pub const PROTECTED_PATHS: &[&str] = &["/protected", "/api/auth/protected"];
pub const PROFILE_UPDATE_ALIAS: &str = "/user/update";

pub fn router() -> Router<AppState> {
    let mut router = Router::new()
        .route("/me", get(me).patch(update).delete(delete))
        .route("/me/password", put(change_password))
        .route(PROFILE_UPDATE_ALIAS, patch(update));
    for path in PROTECTED_PATHS {
        router = router.route(path, get(protected));
    }
    router
}

#[derive(Serialize)]
struct Welcome {
    message: String,
    username: String,
    role: Role,
}

async fn protected(AuthUser { user, .. }: AuthUser) -> Json<Welcome> {
    Json(Welcome {
        message: format!("Welcome, {}!", user.username),
        username: user.username,
        role: user.role,
    })
}

async fn me(AuthUser { user, .. }: AuthUser) -> Json<UserView> {
    Json(UserView::from(&user))
}

async fn update(
    State(state): State<AppState>,
    AuthUser { user, .. }: AuthUser,
    StrictJson(update): StrictJson<ProfileUpdate>,
) -> Result<Json<UserView>> {
    let user = accounts::update_profile(&state, &user, update).await?;
    Ok(Json(UserView::from(&user)))
}

async fn change_password(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    AuthUser { user, claims }: AuthUser,
    StrictJson(change): StrictJson<PasswordChange>,
) -> Result<StatusCode> {
    accounts::change_password(&state, &user, claims.sid, change, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(state): State<AppState>,
    client: ClientInfo,
    AuthUser { user, .. }: AuthUser,
    StrictJson(confirm): StrictJson<DeletionConfirmation>,
) -> Result<StatusCode> {
    accounts::delete_own_account(&state, &user, confirm, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
