//! The JSON shapes of users in responses. Built from [`User`], which has no
//! password hash, so no response can carry one.

use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::domain::{Role, User, UserId};

#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: UserId,
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Role,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id,
            username: user.username.clone(),
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role,
            created_at: rfc3339(user.created_at),
            updated_at: rfc3339(user.updated_at),
        }
    }
}

/// What an admin sees of a user: the public view plus account state.
#[derive(Debug, Serialize)]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: UserView,
    pub disabled: bool,
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

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .expect("stored timestamps are in RFC 3339 range")
}
