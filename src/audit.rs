//! The audit log: every security event, written before the response that
//! caused it is sent. Events name users by id and carry the client's IP,
//! user agent and the request id; never a password, hash or token.

use serde_json::Value;
use uuid::Uuid;

use crate::app::App;
use crate::client::ClientInfo;
use crate::error::Result;
use crate::store::AuditRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Register,
    LoginSucceeded,
    LoginFailed,
    Lockout,
    RefreshReuse,
    Logout,
    SessionRevoked,
    PasswordChanged,
    RoleChanged,
    UserDisabled,
    UserEnabled,
    UserDeleted,
    KeyRotated,
    ReauthFailed,
    ProfileChanged,
    PasswordUpgraded,
    UsersImported,
}

impl Kind {
    pub const ALL: [Kind; 17] = [
        Kind::Register,
        Kind::LoginSucceeded,
        Kind::LoginFailed,
        Kind::Lockout,
        Kind::RefreshReuse,
        Kind::Logout,
        Kind::SessionRevoked,
        Kind::PasswordChanged,
        Kind::RoleChanged,
        Kind::UserDisabled,
        Kind::UserEnabled,
        Kind::UserDeleted,
        Kind::KeyRotated,
        Kind::ReauthFailed,
        Kind::ProfileChanged,
        Kind::PasswordUpgraded,
        Kind::UsersImported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Register => "register",
            Kind::LoginSucceeded => "login_succeeded",
            Kind::LoginFailed => "login_failed",
            Kind::Lockout => "lockout",
            Kind::RefreshReuse => "refresh_reuse",
            Kind::Logout => "logout",
            Kind::SessionRevoked => "session_revoked",
            Kind::PasswordChanged => "password_changed",
            Kind::RoleChanged => "role_changed",
            Kind::UserDisabled => "user_disabled",
            Kind::UserEnabled => "user_enabled",
            Kind::UserDeleted => "user_deleted",
            Kind::KeyRotated => "key_rotated",
            Kind::ReauthFailed => "reauth_failed",
            Kind::ProfileChanged => "profile_changed",
            Kind::PasswordUpgraded => "password_upgraded",
            Kind::UsersImported => "users_imported",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }
}

/// An event about to be recorded.
pub struct Event {
    pub kind: Kind,
    /// The user the event is about.
    pub user_id: Option<Uuid>,
    /// Who did it: the user themselves, an admin, or nobody known.
    pub actor_id: Option<Uuid>,
    /// Extra facts (a logout's scope, a role change's old and new role).
    pub detail: Option<Value>,
}

impl Event {
    pub fn new(kind: Kind) -> Self {
        Self {
            kind,
            user_id: None,
            actor_id: None,
            detail: None,
        }
    }

    /// An event a user caused about their own account.
    pub fn by_self(kind: Kind, user_id: Uuid) -> Self {
        Self {
            kind,
            user_id: Some(user_id),
            actor_id: Some(user_id),
            detail: None,
        }
    }

    pub fn about(mut self, user_id: Uuid) -> Self {
        self.user_id = Some(user_id);
        self
    }

    pub fn by(mut self, actor_id: Option<Uuid>) -> Self {
        self.actor_id = actor_id;
        self
    }

    pub fn detail(mut self, detail: Value) -> Self {
        self.detail = Some(detail);
        self
    }
}

/// Records `event` with the caller's address, user agent and request id.
pub async fn record(app: &App, event: Event, client: &ClientInfo) -> Result<()> {
    let row = AuditRow {
        id: Uuid::now_v7().to_string(),
        at: crate::store::now(),
        kind: event.kind.as_str().to_owned(),
        user_id: event.user_id.map(|id| id.to_string()),
        actor_id: event.actor_id.map(|id| id.to_string()),
        ip: client.ip.map(|ip| ip.to_string()),
        user_agent: client.user_agent.clone(),
        request_id: client.request_id.clone(),
        detail: event.detail.map(|d| d.to_string()),
    };
    app.store.insert_audit_event(&row).await?;
    Ok(())
}
