//! Administration of users; every route needs the `admin` role.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use utoipa::ToSchema;
use uuid::Uuid;

use super::extract::{AdminUser, PathId, StrictJson};
use super::problem_docs::{admin_errors, body_errors, problems, unavailable};
use super::routes::Routes;
use super::views::{AdminUserView, AuditEventView, UserView};
use crate::accounts::{self, AccessChange};
use crate::app::AppState;
use crate::audit::Kind;
use crate::client::ClientInfo;
use crate::domain::{FieldError, reject_control_characters};
use crate::error::{ApiError, Result};
use crate::store::AuditFilter;

pub fn routes() -> Routes {
    Routes::default()
        .get("/admin/users", list_users)
        .get("/admin/users/{id}", show_user)
        .patch("/admin/users/{id}", change_user)
        .delete("/admin/users/{id}", delete_user)
        .get("/admin/audit", list_audit)
}

problems!(ShowProblems: admin_errors(), unavailable(), [ApiError::NotFound]);

/// One user
#[utoipa::path(
    get,
    path = "/admin/users/{id}",
    tag = "admin",
    operation_id = "get_user",
    params(("id" = String, Path, description = "The user's id; anything else is 404.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user, with account state.", body = AdminUserView),
        ShowProblems,
    ),
)]
async fn show_user(
    State(state): State<AppState>,
    _admin: AdminUser,
    PathId(id): PathId,
) -> Result<Json<AdminUserView>> {
    let user = state
        .store
        .user_by_id(id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(AdminUserView::from(&user)))
}

problems!(ChangeProblems: body_errors(), admin_errors(), unavailable(), [
    ApiError::NotFound,
    ApiError::LastAdmin,
]);

/// Change a user's role or disable them
///
/// A role change or disabling ends all of that user's sessions at once. A
/// change that would leave no enabled admin is 409.
#[utoipa::path(
    patch,
    path = "/admin/users/{id}",
    tag = "admin",
    operation_id = "update_user",
    params(("id" = String, Path, description = "The user's id; anything else is 404.")),
    request_body = AccessChange,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The user as changed.", body = AdminUserView),
        ChangeProblems,
    ),
)]
async fn change_user(
    State(state): State<AppState>,
    client: ClientInfo,
    AdminUser(admin): AdminUser,
    PathId(id): PathId,
    StrictJson(change): StrictJson<AccessChange>,
) -> Result<Json<AdminUserView>> {
    let user = accounts::change_access(&state, &admin.user, id, change, &client).await?;
    Ok(Json(AdminUserView::from(&user)))
}

problems!(DeleteProblems: admin_errors(), unavailable(), [
    ApiError::NotFound,
    ApiError::LastAdmin,
]);

/// Delete a user
#[utoipa::path(
    delete,
    path = "/admin/users/{id}",
    tag = "admin",
    operation_id = "delete_user",
    params(("id" = String, Path, description = "The user's id; anything else is 404.")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted, with their sessions."), DeleteProblems),
)]
async fn delete_user(
    State(state): State<AppState>,
    client: ClientInfo,
    AdminUser(admin): AdminUser,
    PathId(id): PathId,
) -> Result<StatusCode> {
    accounts::delete_by_admin(&state, &admin.user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct AuditList {
    /// Newest first.
    events: Vec<AuditEventView>,
    /// For the next page's `cursor`; `null` on the last page.
    next_cursor: Option<String>,
}

problems!(AuditProblems: admin_errors(), unavailable(), page_errors(), [
    invalid_user_id(),
    invalid_kind(),
]);

/// The audit log
///
/// Security events, newest first, filtered by `user_id` and/or `kind`.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "admin",
    operation_id = "list_audit_events",
    params(
        ("user_id" = Option<uuid::Uuid>, Query, description = "Only events about this user."),
        ("kind" = Option<String>, Query, description = "Only events of this kind."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size; 50 by default."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page."),
    ),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of events.", body = AuditList), AuditProblems),
)]
async fn list_audit(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<AuditList>> {
    let page = PageRequest::parse(&params, &["limit", "cursor", "user_id", "kind"])?;
    let value = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let user_id = value("user_id")
        .map(|raw| Uuid::parse_str(raw).map_err(|_| invalid_user_id()))
        .transpose()?;
    let kind = value("kind")
        .map(|raw| Kind::parse(raw).ok_or_else(invalid_kind))
        .transpose()?;
    let filter = AuditFilter {
        user_id,
        kind: kind.map(Kind::as_str),
        before: page.after,
    };
    let found = state.store.list_audit_events(filter, page.limit).await?;
    Ok(Json(AuditList {
        events: found.events.into_iter().map(AuditEventView::from).collect(),
        next_cursor: found.next_before.map(encode_cursor),
    }))
}

/// Page sizes callers may ask for, and the one they get by default.
const LIMITS: std::ops::RangeInclusive<u32> = 1..=100;
const DEFAULT_LIMIT: u32 = 50;

fn invalid_user_id() -> ApiError {
    ApiError::bad_field("invalid_user_id", "user_id", "user_id must be a user's id.")
}

fn invalid_kind() -> ApiError {
    ApiError::bad_field("invalid_kind", "kind", "kind is not an audit event kind.")
}

#[derive(Serialize, ToSchema)]
struct UserList {
    /// In order of creation.
    users: Vec<UserView>,
    /// For the next page's `cursor`; `null` on the last page.
    next_cursor: Option<String>,
}

problems!(ListProblems: admin_errors(), unavailable(), page_errors(), [
    bad_prefix(reject_control_characters("q", "\0").unwrap_err()),
]);

/// List users
///
/// Keyset-paginated: pass `next_cursor` back as `cursor` for the next page.
#[utoipa::path(
    get,
    path = "/admin/users",
    tag = "admin",
    operation_id = "list_users",
    params(
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Page size; 50 by default."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page."),
        ("q" = Option<String>, Query, description = "A case-insensitive prefix of the username or email."),
    ),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of users.", body = UserList), ListProblems),
)]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<UserList>> {
    let page = PageRequest::parse(&params, &["limit", "cursor", "q"])?;
    let prefix = params
        .iter()
        .find(|(k, _)| k == "q")
        .map(|(_, q)| {
            reject_control_characters("q", q).map_err(bad_prefix)?;
            Ok::<_, ApiError>(q.nfkc().collect::<String>().to_lowercase())
        })
        .transpose()?
        .filter(|q| !q.is_empty());
    let found = state
        .store
        .list_users(page.after, page.limit, prefix.as_deref())
        .await?;
    Ok(Json(UserList {
        users: found.users.iter().map(UserView::from).collect(),
        next_cursor: found.next_after.map(encode_cursor),
    }))
}

/// A `q` that cannot be searched for (it has control characters).
fn bad_prefix(error: FieldError) -> ApiError {
    ApiError::bad_field(error.code, "q", error.message)
}

/// `limit` and `cursor`, as every keyset-paginated list takes them.
pub struct PageRequest {
    pub limit: u32,
    pub after: Option<Uuid>,
}

impl PageRequest {
    /// Reads `limit` and `cursor`, refusing any of `known` given twice:
    /// honouring one copy and dropping the other would hide a client's
    /// mistake.
    pub fn parse(params: &[(String, String)], known: &[&str]) -> Result<Self> {
        for &name in known {
            if params.iter().filter(|(k, _)| k == name).count() > 1 {
                return Err(duplicate_parameter(name));
            }
        }
        let value = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let limit = match value("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => raw
                .parse()
                .ok()
                .filter(|n| LIMITS.contains(n))
                .ok_or_else(invalid_limit)?,
        };
        let after = value("cursor")
            .map(|raw| decode_cursor(raw).ok_or_else(invalid_cursor))
            .transpose()?;
        Ok(Self { limit, after })
    }
}

fn duplicate_parameter(name: &str) -> ApiError {
    ApiError::bad_field(
        "duplicate_parameter",
        name,
        format!("{name} is given more than once."),
    )
}

fn invalid_limit() -> ApiError {
    ApiError::bad_field(
        "invalid_limit",
        "limit",
        format!(
            "limit must be a whole number from {} to {}.",
            LIMITS.start(),
            LIMITS.end()
        ),
    )
}

fn invalid_cursor() -> ApiError {
    ApiError::bad_field(
        "invalid_cursor",
        "cursor",
        "cursor is not one this server issued.",
    )
}

/// What a bad `limit` or `cursor` of a paginated list gets.
fn page_errors() -> Vec<ApiError> {
    vec![
        invalid_limit(),
        invalid_cursor(),
        duplicate_parameter("limit"),
    ]
}

/// Cursors are opaque to clients: the last id of a page, encoded.
fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(raw: &str) -> Option<Uuid> {
    let bytes = URL_SAFE_NO_PAD.decode(raw).ok()?;
    Uuid::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
        assert_eq!(decode_cursor("not a cursor"), None);
        assert_eq!(decode_cursor("AAAA"), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn any_cursor_text_decodes_to_an_id_or_nothing(raw in "\\PC{0,64}") {
                if let Some(id) = decode_cursor(&raw) {
                    prop_assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
                }
            }

            #[test]
            fn every_id_round_trips(bytes in any::<[u8; 16]>()) {
                let id = Uuid::from_bytes(bytes);
                prop_assert_eq!(decode_cursor(&encode_cursor(id)), Some(id));
            }
        }
    }
}
