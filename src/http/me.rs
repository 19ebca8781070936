//! The caller's own account.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;

use super::extract::{AuthUser, StrictJson};
use super::problem_docs::{bearer_errors, body_errors, problems, rate_limited, unavailable};
use super::rate_limit::CredentialRateLimit;
use super::routes::Routes;
use super::views::UserView;
use crate::accounts::{self, DeletionConfirmation, PasswordChange, ProfileUpdate};
use crate::app::AppState;
use crate::client::ClientInfo;
use crate::domain::Role;
use crate::error::{ApiError, Result};

pub fn routes() -> Routes {
    Routes::default()
        .get("/protected", protected)
        .also_at(&["/api/auth/protected"])
        .get("/me", me)
        .patch("/me", update)
        .also_at(&["/user/update"])
        .delete("/me", delete)
        .put("/me/password", change_password)
}

#[derive(Serialize, ToSchema)]
struct Welcome {
    #[schema(example = "Welcome, alice!")]
    message: String,
    /// `null` for an account without a username, which is greeted by its
    /// email.
    #[schema(example = "alice")]
    username: Option<String>,
    role: Role,
}

problems!(GuardedProblems: bearer_errors(), unavailable());

/// A protected route
///
/// The smallest check that a token works: who the caller is.
#[utoipa::path(
    get,
    path = "/protected",
    tag = "me",
    operation_id = "protected",
    security(("bearer" = [])),
    responses((status = 200, description = "The token is good.", body = Welcome), GuardedProblems),
)]
async fn protected(AuthUser { user, .. }: AuthUser) -> Json<Welcome> {
    Json(Welcome {
        message: format!("Welcome, {}!", user.handle()),
        username: user.username,
        role: user.role,
    })
}

/// Your profile
#[utoipa::path(
    get,
    path = "/me",
    tag = "me",
    operation_id = "get_me",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller.", body = UserView), GuardedProblems),
)]
async fn me(AuthUser { user, .. }: AuthUser) -> Json<UserView> {
    Json(UserView::from(&user))
}

problems!(UpdateProblems: body_errors(), bearer_errors(), rate_limited(), unavailable(), [
    ApiError::UsernameTaken,
    ApiError::EmailTaken,
]);

/// Change your profile
///
/// Any of `username`, `email`, `name`; `null` clears `email` or `name`; `{}`
/// changes nothing. `role` cannot be changed here (400 `unknown_field`).
/// Shares the per-client limit of the credential routes, since a 409 tells
/// whether a username or email is taken; changes are audited as
/// `profile_changed`.
#[utoipa::path(
    patch,
    path = "/me",
    tag = "me",
    operation_id = "update_me",
    request_body = ProfileUpdate,
    security(("bearer" = [])),
    responses((status = 200, description = "The updated user.", body = UserView), UpdateProblems),
)]
async fn update(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    AuthUser { user, .. }: AuthUser,
    StrictJson(update): StrictJson<ProfileUpdate>,
) -> Result<Json<UserView>> {
    let user = accounts::update_profile(&state, &user, update, &client).await?;
    Ok(Json(UserView::from(&user)))
}

problems!(PasswordChangeProblems: body_errors(), bearer_errors(), rate_limited(), unavailable(), [
    ApiError::InvalidCredentials,
]);

/// Change your password
///
/// The current password is checked. Every other session of yours ends; this
/// one stays logged in.
#[utoipa::path(
    put,
    path = "/me/password",
    tag = "me",
    operation_id = "change_password",
    request_body = PasswordChange,
    security(("bearer" = [])),
    responses((status = 204, description = "Changed."), PasswordChangeProblems),
)]
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

problems!(DeleteProblems: body_errors(), bearer_errors(), rate_limited(), unavailable(), [
    ApiError::InvalidCredentials,
    ApiError::LastAdmin,
]);

/// Delete your account
///
/// The password is checked. The account and all its sessions are gone; the
/// username and email are free again.
#[utoipa::path(
    delete,
    path = "/me",
    tag = "me",
    operation_id = "delete_me",
    request_body = DeletionConfirmation,
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted."), DeleteProblems),
)]
async fn delete(
    State(state): State<AppState>,
    _: CredentialRateLimit,
    client: ClientInfo,
    AuthUser { user, .. }: AuthUser,
    StrictJson(confirm): StrictJson<DeletionConfirmation>,
) -> Result<StatusCode> {
    accounts::delete_own_account(&state, &user, confirm, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
