//! The JSON shapes of users in responses. Built from [`User`], which has no
//! password hash, so no response can carry one.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::domain::{Role, User, UserId};
use crate::store::{AuditRow, SessionRow};

#[derive(Debug, Serialize, ToSchema)]
#[schema(as = User)]
pub struct UserView {
    #[schema(value_type = uuid::Uuid, example = "0193a5b0-7c1e-7d2a-9f3b-2c4d5e6f7a8b")]
    pub id: UserId,
    /// As the user spelled it; `null` for an account registered by email
    /// alone.
    #[schema(example = "alice")]
    pub username: Option<String>,
    #[schema(example = "alice@example.com")]
    pub email: Option<String>,
    #[schema(example = "Alice")]
    pub name: Option<String>,
    #[schema(example = "Alice")]
    pub first_name: Option<String>,
    #[schema(example = "Liddell")]
    pub last_name: Option<String>,
    pub role: Role,
    #[schema(format = DateTime, example = "2026-11-22T10:00:00Z")]
    pub created_at: String,
    #[schema(format = DateTime, example = "2026-11-22T10:00:00Z")]
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            first_name: user.first_name.clone(),
            last_name: user.last_name.clone(),
            role: user.role,
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}

/// What an admin sees of a user: the public view plus account state.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AdminUser)]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: UserView,
    pub disabled: bool,
    #[schema(format = DateTime)]
    pub last_login_at: Option<String>,
}

impl From<&User> for AdminUserView {
    fn from(user: &User) -> Self {
        Self {
            user: UserView::from(user),
            disabled: user.disabled,
            last_login_at: user.last_login_at.map(rfc3339),
        }
    }
}

/// A security event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = DateTime)]
    pub at: String,
    /// One of `register`, `login_succeeded`, `login_failed`, `lockout`,
    /// `refresh_reuse`, `logout`, `session_revoked`, `password_changed`,
    /// `role_changed`, `user_disabled`, `user_enabled`, `user_deleted`,
    /// `key_rotated`, `reauth_failed`, `profile_changed`, `password_upgraded`,
    /// `users_imported`.
    #[schema(example = "login_succeeded")]
    pub kind: String,
    /// The user the event is about.
    #[schema(format = Uuid)]
    pub user_id: Option<String>,
    /// Who acted: the user, an admin, or `null` for the command line and
    /// anonymous attempts.
    #[schema(format = Uuid)]
    pub actor_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    /// A small object whose keys depend on `kind`.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
}

impl From<AuditRow> for AuditEventView {
    fn from(row: AuditRow) -> Self {
        Self {
            at: rfc3339_seconds(row.at),
            detail: row.detail.and_then(|d| serde_json::from_str(&d).ok()),
            id: row.id,
            kind: row.kind,
            user_id: row.user_id,
            actor_id: row.actor_id,
            ip: row.ip,
            user_agent: row.user_agent,
            request_id: row.request_id,
        }
    }
}

/// A session as its user sees it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    #[schema(format = Uuid)]
    pub id: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Updated at most once a minute.
    #[schema(format = DateTime)]
    pub last_used_at: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    /// Whether this is the session of the token that asked.
    pub current: bool,
}

impl SessionView {
    pub fn new(session: SessionRow, current: &str) -> Self {
        Self {
            current: session.id == current,
            created_at: rfc3339_seconds(session.created_at),
            last_used_at: rfc3339_seconds(session.last_used_at),
            id: session.id,
            user_agent: session.user_agent,
            ip: session.ip,
        }
    }
}

/// Stored Unix seconds as RFC 3339; out-of-range values (which gatehouse
/// never writes) show as the epoch rather than failing the response.
fn rfc3339_seconds(seconds: i64) -> String {
    rfc3339(OffsetDateTime::from_unix_timestamp(seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH))
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .expect("stored timestamps are in RFC 3339 range")
}
