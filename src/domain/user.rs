use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Public user ids are UUIDv7: unguessable, yet ordered by creation, which is
/// what keyset pagination walks.
pub type UserId = Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// A stored account, without its password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    /// `None` for an account registered by email alone.
    pub username: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub last_login_at: Option<OffsetDateTime>,
}

impl User {
    /// What the account is called by: its username, or its email for an
    /// account without one (every account has one or the other).
    pub fn handle(&self) -> &str {
        self.username
            .as_deref()
            .or(self.email.as_deref())
            .unwrap_or_default()
    }
}

#[cfg(test)]
impl User {
    /// An enabled user `alice` with id `id`, for unit tests.
    pub(crate) fn sample(id: UserId) -> Self {
        let now = OffsetDateTime::now_utc();
        User {
            id,
            username: Some("alice".into()),
            email: None,
            name: None,
            first_name: None,
            last_name: None,
            role: Role::User,
            disabled: false,
            created_at: now,
            updated_at: now,
            last_login_at: None,
        }
    }
}
