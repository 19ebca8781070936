//! What can be done with an account: register, check a login, change the
//! profile or password, delete. Shared by the HTTP handlers and the CLI, so
//! `gatehouse user create` applies exactly the rules `POST /auth/register` does.

use serde_json::json;
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::domain::{DisplayName, Email, FieldError, Password, Problems, Role, User, Username};
use crate::error::{ApiError, Result};
use crate::http::client::ClientInfo;
use crate::store::{LoginColumn, NewUser, ProfileChanges};

// A registration as received; every field is still unchecked. Fields are
// optional here so that a missing one is reported with the others, not as a
// parse failure; the schema says which are required.
/// A new account.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "alice", "password": "correct horse battery",
                          "email": "alice@example.com", "name": "Alice"}))]
pub struct Registration {
    /// 3–32 ASCII letters, digits, `.`, `_`, `-` after NFKC normalisation,
    /// starting with a letter or digit; unique ignoring case.
    #[schema(value_type = String, required = true, example = "alice")]
    pub username: Option<String>,
    /// 8 (or `PASSWORD_MIN_LENGTH`) to 128 characters; not a common
    /// password, not containing the username or the email's local part.
    #[schema(value_type = String, required = true, min_length = 8, max_length = 128,
             example = "correct horse battery")]
    pub password: Option<String>,
    /// Required when the server runs with `REQUIRE_EMAIL=true`; unique
    /// ignoring case.
    #[schema(format = "email", max_length = 254, example = "alice@example.com")]
    pub email: Option<String>,
    /// A display name.
    #[schema(max_length = 100, example = "Alice")]
    pub name: Option<String>,
    /// `user` (the default); `admin` only with an admin's bearer token.
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
}

/// Who is registering the account, which decides the roles it may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granting {
    /// An anonymous or non-admin caller: only `user`.
    UserOnly,
    /// An admin (named, for the audit log): any role.
    ByAdmin(Uuid),
    /// The operator at the command line: any role.
    Operator,
}

pub async fn register(
    app: &App,
    input: Registration,
    granting: Granting,
    client: &ClientInfo,
) -> Result<User> {
    let mut problems = Problems::default();
    let username = required(&mut problems, "username", input.username)
        .and_then(|raw| problems.check(Username::parse(&raw)));
    let email = match input.email {
        Some(raw) => problems.check(Email::parse(&raw)),
        None if app.config.require_email => {
            problems.push(FieldError::required("email"));
            None
        }
        None => None,
    };
    let name = input
        .name
        .and_then(|raw| problems.check(DisplayName::parse(&raw)));
    let role = match input.role.as_deref() {
        None => Some(Role::User),
        Some(raw) => problems.check(Role::parse(raw).ok_or_else(|| {
            FieldError::new("role", "invalid_role", "Role must be `user` or `admin`.")
        })),
    };
    let password = required(&mut problems, "password", input.password).and_then(|raw| {
        problems.check(app.password_policy.check(
            "password",
            &raw,
            username.as_ref(),
            email.as_ref(),
        ))
    });
    problems.into_result().map_err(ApiError::Validation)?;
    let (Some(username), Some(role), Some(password)) = (username, role, password) else {
        unreachable!("no problems means every required field parsed");
    };

    if role != Role::User && granting == Granting::UserOnly {
        return Err(ApiError::RoleForbidden);
    }
    let hash = app.hasher.hash(&password).await?;
    let name = name.map(DisplayName::into_inner);
    let user = app
        .store
        .insert_user(NewUser {
            username: username.as_str(),
            username_key: &username.key(),
            email: email.as_ref().map(Email::as_str),
            email_key: email.as_ref().map(Email::key).as_deref(),
            name: name.as_deref(),
            password_hash: &hash,
            role,
        })
        .await?;
    let actor = match granting {
        Granting::UserOnly => Some(user.id),
        Granting::ByAdmin(admin) => Some(admin),
        Granting::Operator => None,
    };
    let event = Event::new(Kind::Register)
        .about(user.id)
        .by(actor)
        .detail(json!({"role": role.as_str()}));
    audit::record(app, event, client).await?;
    tracing::info!(user_id = %user.id, role = role.as_str(), "user registered");
    Ok(user)
}

// A login as received, unchecked.
/// A username or an email, and the password.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "alice", "password": "correct horse battery"}))]
pub struct LoginAttempt {
    /// The username, in any case. Give this or `email`, not both.
    #[schema(example = "alice")]
    pub username: Option<String>,
    /// The email, in any case. Give this or `username`, not both.
    #[schema(format = "email")]
    pub email: Option<String>,
    #[schema(value_type = String, required = true, example = "correct horse battery")]
    pub password: Option<String>,
}

/// Checks a login. An unknown account and a wrong password give the same
/// error after the same work (one hash verification, one counter update,
/// one audit event), and unknown accounts are locked out just like real
/// ones, so neither answers nor timing tell whether an account exists. A
/// disabled account is revealed only to someone who knows its password.
pub async fn check_login(app: &App, attempt: LoginAttempt, client: &ClientInfo) -> Result<User> {
    let mut problems = Problems::default();
    let account = match (attempt.username, attempt.email) {
        (Some(_), Some(_)) => {
            problems.push(FieldError::new(
                "email",
                "ambiguous",
                "Give either `username` or `email`, not both.",
            ));
            None
        }
        (Some(username), None) => problems
            .check(crate::domain::reject_control_characters(
                "username", &username,
            ))
            .map(|()| (LoginColumn::Username, fold(&username))),
        (None, Some(email)) => problems
            .check(crate::domain::reject_control_characters("email", &email))
            .map(|()| (LoginColumn::Email, crate::domain::email_key(&email))),
        (None, None) => {
            problems.push(FieldError::new(
                "username",
                "required",
                "Give `username` or `email`.",
            ));
            None
        }
    };
    let password = required(&mut problems, "password", attempt.password)
        .and_then(|raw| problems.check(Password::given("password", &raw)));
    problems.into_result().map_err(ApiError::Validation)?;
    let (Some((column, key)), Some(password)) = (account, password) else {
        unreachable!("no problems means both fields parsed");
    };

    let found = app.store.credentials_by_login(column, &key).await?;
    let known_id = found.as_ref().map(|(user, _)| user.id);
    let account = lockout_key(known_id, column, &key);
    let now = crate::store::now();
    let locked_until = app.store.locked_until(&account).await?;
    if locked_until > now {
        metrics::counter!("gatehouse_logins_total", "outcome" => "locked").increment(1);
        // Even the right password waits: the lock is about the account.
        return Err(ApiError::TooManyAttempts {
            retry_after: std::time::Duration::from_secs((locked_until - now) as u64),
        });
    }
    let verified = app
        .hasher
        .verify(&password, found.as_ref().map(|(_, hash)| hash.as_str()))
        .await?;
    let user = match found {
        Some((user, _)) if verified => user,
        _ => {
            let lock = app
                .store
                .record_login_failure(&account, now, &app.lockout_policy)
                .await?;
            let mut failed = Event::new(Kind::LoginFailed).detail(json!({"by": column.as_str()}));
            failed.user_id = known_id;
            audit::record(app, failed, client).await?;
            metrics::counter!("gatehouse_logins_total", "outcome" => "failed").increment(1);
            if let Some(until) = lock {
                metrics::counter!("gatehouse_lockouts_total").increment(1);
                let mut lockout = Event::new(Kind::Lockout).detail(json!({"seconds": until - now}));
                lockout.user_id = known_id;
                audit::record(app, lockout, client).await?;
                tracing::warn!(user_id = ?known_id, seconds = until - now, "account locked after failed logins");
            }
            return Err(ApiError::InvalidCredentials);
        }
    };
    app.store.clear_login_failures(&account).await?;
    if user.disabled {
        let event =
            Event::by_self(Kind::LoginFailed, user.id).detail(json!({"reason": "disabled"}));
        audit::record(app, event, client).await?;
        metrics::counter!("gatehouse_logins_total", "outcome" => "disabled").increment(1);
        return Err(ApiError::AccountDisabled);
    }
    app.store.record_login(user.id).await?;
    audit::record(app, Event::by_self(Kind::LoginSucceeded, user.id), client).await?;
    metrics::counter!("gatehouse_logins_total", "outcome" => "succeeded").increment(1);
    Ok(user)
}

/// The counter a login attempt is charged to: the account when one
/// matched, however it was named (any case or width of the username, or
/// the email), else what was typed. Hashed, so attempted names are not
/// stored.
fn lockout_key(user: Option<Uuid>, column: LoginColumn, key: &str) -> String {
    let subject = match user {
        Some(id) => format!("user:{id}"),
        None => format!("{}:{key}", column.as_str()),
    };
    Sha256::digest(subject.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The lookup form of a username: NFKC, lower-cased. Applied to whatever was
/// typed, valid or not, so a malformed name simply matches no account.
fn fold(raw: &str) -> String {
    raw.nfkc().collect::<String>().to_ascii_lowercase()
}

// A profile change as received. For `email` and `name`, `null` clears the
// value while an absent key leaves it alone, hence the double `Option`.
/// The fields to change; absent ones stay as they are.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Alice Liddell"}))]
pub struct ProfileUpdate {
    /// A new username, under the same rules as at registration.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = false, example = "alice")]
    pub username: Option<Option<String>>,
    /// A new email, or `null` to remove it (unless `REQUIRE_EMAIL=true`).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required = false, format = "email", max_length = 254)]
    pub email: Option<Option<String>>,
    /// A new display name, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required = false, max_length = 100)]
    pub name: Option<Option<String>>,
}

/// Maps a key that is present (even as `null`) to `Some`.
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

pub async fn update_profile(app: &App, user: &User, update: ProfileUpdate) -> Result<User> {
    let mut problems = Problems::default();
    let mut changes = ProfileChanges::default();
    match update.username {
        None => {}
        Some(None) => problems.push(FieldError::new(
            "username",
            "required",
            "Username cannot be removed.",
        )),
        Some(Some(raw)) => {
            changes.username = problems
                .check(Username::parse(&raw))
                .map(|u| (u.as_str().to_owned(), u.key()));
        }
    }
    match update.email {
        None => {}
        Some(None) if app.config.require_email => problems.push(FieldError::new(
            "email",
            "required",
            "An email is required on this server.",
        )),
        Some(None) => changes.email = Some(None),
        Some(Some(raw)) => {
            changes.email = problems
                .check(Email::parse(&raw))
                .map(|e| Some((e.as_str().to_owned(), e.key())));
        }
    }
    match update.name {
        None => {}
        Some(None) => changes.name = Some(None),
        Some(Some(raw)) => {
            changes.name = problems
                .check(DisplayName::parse(&raw))
                .map(|n| Some(n.into_inner()));
        }
    }
    problems.into_result().map_err(ApiError::Validation)?;
    if changes.username.is_none() && changes.email.is_none() && changes.name.is_none() {
        return Ok(user.clone());
    }
    Ok(app.store.update_profile(user.id, changes).await?)
}

/// The current password, and the new one.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[schema(value_type = String, required = true)]
    pub current_password: Option<String>,
    /// Under the same rules as at registration.
    #[schema(value_type = String, required = true, min_length = 8, max_length = 128)]
    pub new_password: Option<String>,
}

/// Sets a new password and ends every other session of the user; the
/// caller's own session (`current`) stays logged in.
pub async fn change_password(
    app: &App,
    user: &User,
    current_session: Uuid,
    change: PasswordChange,
    client: &ClientInfo,
) -> Result<()> {
    let mut problems = Problems::default();
    let current = required(&mut problems, "current_password", change.current_password)
        .and_then(|raw| problems.check(Password::given("current_password", &raw)));
    let username = Username::parse(&user.username).ok();
    let email = user.email.as_deref().and_then(|e| Email::parse(e).ok());
    let new = required(&mut problems, "new_password", change.new_password).and_then(|raw| {
        problems.check(app.password_policy.check(
            "new_password",
            &raw,
            username.as_ref(),
            email.as_ref(),
        ))
    });
    problems.into_result().map_err(ApiError::Validation)?;
    let (Some(current), Some(new)) = (current, new) else {
        unreachable!("no problems means both fields parsed");
    };
    verify_own_password(app, user, &current).await?;
    let hash = app.hasher.hash(&new).await?;
    app.store.set_password_hash(user.id, &hash).await?;
    let ended = app
        .store
        .end_sessions(user.id, current_session, crate::store::LogoutScope::Others)
        .await?;
    let event =
        Event::by_self(Kind::PasswordChanged, user.id).detail(json!({"sessions_ended": ended}));
    audit::record(app, event, client).await?;
    tracing::info!(user_id = %user.id, "password changed; other sessions ended");
    Ok(())
}

/// The account's password, to confirm the deletion.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeletionConfirmation {
    #[schema(value_type = String, required = true)]
    pub password: Option<String>,
}

pub async fn delete_own_account(
    app: &App,
    user: &User,
    confirm: DeletionConfirmation,
    client: &ClientInfo,
) -> Result<()> {
    let mut problems = Problems::default();
    let password = required(&mut problems, "password", confirm.password)
        .and_then(|raw| problems.check(Password::given("password", &raw)));
    problems.into_result().map_err(ApiError::Validation)?;
    let password = password.expect("no problems means the password parsed");
    verify_own_password(app, user, &password).await?;
    app.store.delete_user(user.id).await?;
    audit::record(app, Event::by_self(Kind::UserDeleted, user.id), client).await?;
    tracing::info!(user_id = %user.id, "account deleted");
    Ok(())
}

async fn verify_own_password(app: &App, user: &User, password: &Password) -> Result<()> {
    let hash = app.store.password_hash(user.id).await?;
    if !app.hasher.verify(password, hash.as_deref()).await? {
        return Err(ApiError::InvalidCredentials);
    }
    Ok(())
}

/// What an admin may change about an account; absent fields stay as they are.
#[derive(Debug, Default, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessChange {
    /// Either change ends all of the user's sessions.
    #[schema(value_type = Option<Role>)]
    pub role: Option<String>,
    pub disabled: Option<bool>,
}

/// Changes a user's role or disabled flag. Either change ends all of the
/// user's sessions at once; refusing to leave no enabled admin holds even
/// when two admins act at the same moment.
pub async fn change_access(
    app: &App,
    admin: &User,
    target: Uuid,
    change: AccessChange,
    client: &ClientInfo,
) -> Result<User> {
    let role = match change.role.as_deref() {
        None => None,
        Some(raw) => Some(Role::parse(raw).ok_or_else(|| {
            ApiError::Validation(vec![FieldError::new(
                "role",
                "invalid_role",
                "Role must be `user` or `admin`.",
            )])
        })?),
    };
    let (before, after) = app
        .store
        .update_user_access(target, role, change.disabled)
        .await?;
    if before.role != after.role {
        let event = Event::new(Kind::RoleChanged)
            .about(target)
            .by(Some(admin.id))
            .detail(json!({"from": before.role.as_str(), "to": after.role.as_str()}));
        audit::record(app, event, client).await?;
    }
    if before.disabled != after.disabled {
        let kind = if after.disabled {
            Kind::UserDisabled
        } else {
            Kind::UserEnabled
        };
        audit::record(
            app,
            Event::new(kind).about(target).by(Some(admin.id)),
            client,
        )
        .await?;
    }
    Ok(after)
}

/// Deletes an account on an admin's word (their own too, with the same
/// last-admin guard).
pub async fn delete_by_admin(
    app: &App,
    admin: &User,
    target: Uuid,
    client: &ClientInfo,
) -> Result<()> {
    app.store.delete_user(target).await?;
    let event = Event::new(Kind::UserDeleted)
        .about(target)
        .by(Some(admin.id));
    audit::record(app, event, client).await?;
    tracing::info!(user_id = %target, admin_id = %admin.id, "account deleted by an admin");
    Ok(())
}

fn required(problems: &mut Problems, field: &str, value: Option<String>) -> Option<String> {
    if value.is_none() {
        problems.push(FieldError::required(field));
    }
    value
}

impl From<crate::auth::HashError> for ApiError {
    fn from(e: crate::auth::HashError) -> Self {
        match e {
            crate::auth::HashError::Busy { retry_after } => {
                tracing::warn!("password hashing queue is full");
                ApiError::ServiceUnavailable { retry_after }
            }
            crate::auth::HashError::Failed(cause) => ApiError::Internal(cause),
        }
    }
}
