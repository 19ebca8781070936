//! What can be done with an account: register, check a login, change the
//! profile or password, delete. Shared by the HTTP handlers and the CLI, so
//! `gatehouse user create` applies exactly the rules `POST /auth/register` does.

use unicode_normalization::UnicodeNormalization;

use crate::app::App;
use crate::domain::{DisplayName, Email, FieldError, Password, Problems, Role, User, Username};
use crate::error::{ApiError, Result};
use crate::store::{LoginColumn, NewUser, ProfileChanges};

/// A registration as received; every field is still unchecked.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    pub username: Option<String>,
    pub password: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
}

/// Who may grant which role when registering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granting {
    /// An anonymous or non-admin caller: only `user`.
    UserOnly,
    /// An admin, or the operator at the command line.
    AnyRole,
}

pub async fn register(app: &App, input: Registration, granting: Granting) -> Result<User> {
    let mut problems = Problems::default();
    let username = required(&mut problems, "username", input.username)
        .and_then(|raw| problems.check(Username::parse(&raw)));
    let email = match input.email {
        Some(raw) => problems.check(Email::parse(&raw)),
        None if app.config.require_email => {
            problems.push(missing("email"));
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

    if role != Role::User && granting != Granting::AnyRole {
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
    tracing::info!(user_id = %user.id, role = role.as_str(), "user registered");
    Ok(user)
}

/// A login as received: a username or an email, and a password.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginAttempt {
    pub username: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

/// Checks a login. An unknown account and a wrong password give the same
/// error after the same amount of hashing work; a disabled account is
/// revealed only to someone who knows its password.
pub async fn check_login(app: &App, attempt: LoginAttempt) -> Result<User> {
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
    let verified = app
        .hasher
        .verify(&password, found.as_ref().map(|(_, hash)| hash.as_str()))
        .await?;
    let user = match found {
        Some((user, _)) if verified => user,
        _ => return Err(ApiError::InvalidCredentials),
    };
    if user.disabled {
        return Err(ApiError::AccountDisabled);
    }
    app.store.record_login(user.id).await?;
    Ok(user)
}

/// The lookup form of a username: NFKC, lower-cased. Applied to whatever was
/// typed, valid or not, so a malformed name simply matches no account.
fn fold(raw: &str) -> String {
    raw.nfkc().collect::<String>().to_ascii_lowercase()
}

/// A profile change as received. For `email` and `name`, `null` clears the
/// value while an absent key leaves it alone, hence the double `Option`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    #[serde(default, deserialize_with = "present")]
    pub username: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
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

/// A password change as received.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: Option<String>,
    pub new_password: Option<String>,
}

/// Sets a new password and ends every other session of the user; the
/// caller's own session (`current`) stays logged in.
pub async fn change_password(
    app: &App,
    user: &User,
    current_session: uuid::Uuid,
    change: PasswordChange,
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
    app.store
        .end_sessions(user.id, current_session, crate::store::LogoutScope::Others)
        .await?;
    tracing::info!(user_id = %user.id, "password changed; other sessions ended");
    Ok(())
}

/// An account deletion as received: the password, to confirm.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeletionConfirmation {
    pub password: Option<String>,
}

pub async fn delete_own_account(
    app: &App,
    user: &User,
    confirm: DeletionConfirmation,
) -> Result<()> {
    let mut problems = Problems::default();
    let password = required(&mut problems, "password", confirm.password)
        .and_then(|raw| problems.check(Password::given("password", &raw)));
    problems.into_result().map_err(ApiError::Validation)?;
    let password = password.expect("no problems means the password parsed");
    verify_own_password(app, user, &password).await?;
    app.store.delete_user(user.id).await?;
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

fn required(problems: &mut Problems, field: &str, value: Option<String>) -> Option<String> {
    if value.is_none() {
        problems.push(missing(field));
    }
    value
}

fn missing(field: &str) -> FieldError {
    FieldError::new(field, "required", format!("`{field}` is required."))
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
