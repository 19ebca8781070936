//! Administration of users; every route needs the `admin` role.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use super::client::ClientInfo;
use super::extract::{AdminUser, PathId, StrictJson};
use super::views::{AdminUserView, AuditEventView, UserView};
use crate::accounts::{self, AccessChange};
use crate::app::AppState;
use crate::audit::Kind;
use crate::domain::reject_control_characters;
use crate::error::{ApiError, Result};
use crate::store::AuditFilter;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin/users", get(list_users))
        .route(
            "/admin/users/{id}",
            get(show_user).patch(change_user).delete(delete_user),
        )
        .route("/admin/audit", get(list_audit))
}

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

async fn delete_user(
    State(state): State<AppState>,
    client: ClientInfo,
    AdminUser(admin): AdminUser,
    PathId(id): PathId,
) -> Result<StatusCode> {
    accounts::delete_by_admin(&state, &admin.user, id, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct AuditList {
    events: Vec<AuditEventView>,
    next_cursor: Option<String>,
}

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
        .map(|raw| {
            Uuid::parse_str(raw).map_err(|_| {
                ApiError::bad_field("invalid_user_id", "user_id", "user_id must be a user's id.")
            })
        })
        .transpose()?;
    let kind = value("kind")
        .map(|raw| {
            Kind::parse(raw).ok_or_else(|| {
                ApiError::bad_field("invalid_kind", "kind", "kind is not an audit event kind.")
            })
        })
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

#[derive(Serialize)]
struct UserList {
    users: Vec<UserView>,
    next_cursor: Option<String>,
}

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
            reject_control_characters("q", q)
                .map_err(|e| ApiError::bad_field(e.code, "q", e.message))?;
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
                return Err(ApiError::bad_field(
                    "duplicate_parameter",
                    name,
                    format!("{name} is given more than once."),
                ));
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
                .ok_or_else(|| {
                    ApiError::bad_field(
                        "invalid_limit",
                        "limit",
                        format!(
                            "limit must be a whole number from {} to {}.",
                            LIMITS.start(),
                            LIMITS.end()
                        ),
                    )
                })?,
        };
        let after = value("cursor")
            .map(|raw| {
                decode_cursor(raw).ok_or_else(|| {
                    ApiError::bad_field(
                        "invalid_cursor",
                        "cursor",
                        "cursor is not one this server issued.",
                    )
                })
            })
            .transpose()?;
        Ok(Self { limit, after })
    }
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
}
