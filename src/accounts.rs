//! What can be done with an account: register, check a login, change the
//! profile or password, delete. Shared by the HTTP handlers and the CLI, so
//! `gatehouse user create` applies exactly the rules `POST /auth/register` does.

use serde_json::json;
use unicode_normalization::UnicodeNormalization;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::client::ClientInfo;
use crate::domain::{DisplayName, Email, FieldError, Password, Problems, Role, User, Username};
use crate::error::{ApiError, Result};
use crate::lockout::Verdict;
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
    /// starting with a letter or digit; unique ignoring case. Required
    /// unless `email` is given: an account has a username, an email, or both.
    #[schema(example = "alice")]
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
    #[schema(max_length = 100, example = "Alice")]
    pub first_name: Option<String>,
    #[schema(max_length = 100, example = "Liddell")]
    pub last_name: Option<String>,
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
    if input.username.is_none() && input.email.is_none() {
        problems.push(FieldError::new(
            "username",
            "required",
            "Give `username`, `email`, or both.",
        ));
    }
    let username = input
        .username
        .and_then(|raw| problems.check(Username::parse(&raw)));
    let email = match input.email {
        Some(raw) => problems.check(Email::parse(&raw)),
        None if app.config.require_email => {
            problems.push(FieldError::required("email"));
            None
        }
        None => None,
    };
    let [name, first_name, last_name] = [
        ("name", input.name),
        ("first_name", input.first_name),
        ("last_name", input.last_name),
    ]
    .map(|(field, raw)| {
        raw.and_then(|raw| problems.check(DisplayName::parse_field(field, &raw)))
            .map(DisplayName::into_inner)
    });
    let role = match input.role.as_deref() {
        None => Some(Role::User),
        Some(raw) => problems.check(Role::parse(raw).ok_or_else(|| {
            FieldError::new("role", "invalid_role", "Role must be `user` or `admin`.")
        })),
    };
    let password = match required(&mut problems, "password", input.password) {
        Some(raw) => problems.check(
            check_new_password(app, "password", raw, username.clone(), email.clone()).await?,
        ),
        None => None,
    };
    problems.into_result().map_err(ApiError::Validation)?;
    let (Some(role), Some(password)) = (role, password) else {
        unreachable!("no problems means every required field parsed");
    };

    if role != Role::User && granting == Granting::UserOnly {
        return Err(ApiError::RoleForbidden);
    }
    let hash = app.hasher.hash(&password).await?;
    let user = app
        .store
        .insert_user(NewUser {
            username: username.as_ref().map(Username::as_str),
            username_key: username.as_ref().map(Username::key).as_deref(),
            email: email.as_ref().map(Email::as_str),
            email_key: email.as_ref().map(Email::key).as_deref(),
            name: name.as_deref(),
            first_name: first_name.as_deref(),
            last_name: last_name.as_deref(),
            password_hash: &hash,
            role,
            created_at: None,
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
    /// Accepted and ignored (the FastAPI backend's client sends it).
    pub first_name: Option<String>,
    /// Accepted and ignored (the FastAPI backend's client sends it).
    pub last_name: Option<String>,
    /// OAuth 2 password grant: must be `password` when given.
    #[schema(example = "password")]
    pub grant_type: Option<String>,
    /// OAuth 2 password grant: accepted and ignored.
    pub client_id: Option<String>,
    /// OAuth 2 password grant: accepted and ignored.
    pub scope: Option<String>,
}

/// OAuth 2 clients say which grant they use (RFC 6749 §4.3, §6); a route
/// serves one, and any other is refused as the RFC's
/// `unsupported_grant_type`. Clients that send no `grant_type` are fine.
pub fn require_grant_type(given: Option<&str>, served: &'static str) -> Result<()> {
    match given {
        None => Ok(()),
        Some(grant) if grant == served => Ok(()),
        Some(_) => Err(unsupported_grant_type(served)),
    }
}

/// The error for a `grant_type` other than the one a route serves.
pub fn unsupported_grant_type(served: &str) -> ApiError {
    ApiError::bad_field(
        "unsupported_grant_type",
        "grant_type",
        format!("This route serves `grant_type={served}` only."),
    )
}

/// Checks a login. An unknown account and a wrong password give the same
/// error after the same work (one counted hash verification, see
/// [`crate::lockout`], and one audit event), and unknown accounts are locked
/// out just like real ones, so neither answers nor timing tell whether an account exists. A
/// disabled account is revealed only to someone who knows its password.
pub async fn check_login(app: &App, attempt: LoginAttempt, client: &ClientInfo) -> Result<User> {
    require_grant_type(attempt.grant_type.as_deref(), "password")?;
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
        // OAuth 2's password grant has only `username`, so its clients send
        // an email there; no username can contain `@`.
        (Some(username), None) if username.contains('@') => problems
            .check(crate::domain::reject_control_characters(
                "username", &username,
            ))
            .map(|()| (LoginColumn::Email, crate::domain::email_key(&username))),
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
    let (known, stored) = match found {
        Some((user, hash)) => (Some(user), Some(hash)),
        None => (None, None),
    };
    let known_id = known.as_ref().map(|user| user.id);
    let account = match known_id {
        Some(id) => app.lockout.account(id),
        None => app.lockout.unknown(column, &key),
    };
    let stored_hash = stored.clone();
    let checked = app
        .lockout
        .check(&app.store, &app.hasher, &account, &password, stored)
        .await;
    let verdict = match checked {
        Err(locked @ ApiError::TooManyAttempts { .. }) => {
            // Even the right password waits: the lock is about the account.
            metrics::counter!("gatehouse_logins_total", "outcome" => "locked").increment(1);
            return Err(locked);
        }
        other => other?,
    };
    let user = match (known, verdict) {
        (Some(user), Verdict::Correct) => user,
        (_, verdict) => {
            let mut failed = Event::new(Kind::LoginFailed).detail(json!({"by": column.as_str()}));
            failed.user_id = known_id;
            audit::record(app, failed, client).await?;
            metrics::counter!("gatehouse_logins_total", "outcome" => "failed").increment(1);
            record_lockout(app, known_id, verdict, client).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    if user.disabled {
        let event =
            Event::by_self(Kind::LoginFailed, user.id).detail(json!({"reason": "disabled"}));
        audit::record(app, event, client).await?;
        metrics::counter!("gatehouse_logins_total", "outcome" => "disabled").increment(1);
        return Err(ApiError::AccountDisabled);
    }
    if let Some(stored) = stored_hash.filter(|stored| !app.hasher.is_current(stored)) {
        upgrade_hash(app, &user, &stored, &password, client).await?;
    }
    app.store.record_login(user.id).await?;
    audit::record(app, Event::by_self(Kind::LoginSucceeded, user.id), client).await?;
    metrics::counter!("gatehouse_logins_total", "outcome" => "succeeded").increment(1);
    Ok(user)
}

/// Replaces `stored`, a hash an older backend made or an argon2 hash with
/// other costs, by an argon2id hash with today's parameters, now that the
/// password is known. Only if it is still the stored hash: a password
/// changed meanwhile is not overwritten.
async fn upgrade_hash(
    app: &App,
    user: &User,
    stored: &str,
    password: &Password,
    client: &ClientInfo,
) -> Result<()> {
    let current = app.hasher.hash(password).await?;
    if !app
        .store
        .replace_password_hash(user.id, stored, &current)
        .await?
    {
        return Ok(());
    }
    let scheme =
        crate::auth::legacy::LegacyHash::parse(stored).map_or("argon2", |legacy| legacy.scheme());
    let event = Event::by_self(Kind::PasswordUpgraded, user.id).detail(json!({"from": scheme}));
    audit::record(app, event, client).await?;
    Ok(())
}

/// Audits the lock a wrong password started, if it started one.
async fn record_lockout(
    app: &App,
    user_id: Option<Uuid>,
    verdict: Verdict,
    client: &ClientInfo,
) -> Result<()> {
    let Verdict::Wrong {
        lock_seconds: Some(seconds),
    } = verdict
    else {
        return Ok(());
    };
    metrics::counter!("gatehouse_lockouts_total").increment(1);
    let mut lockout = Event::new(Kind::Lockout).detail(json!({"seconds": seconds}));
    lockout.user_id = user_id;
    audit::record(app, lockout, client).await?;
    tracing::warn!(
        ?user_id,
        seconds,
        "account locked after failed password checks"
    );
    Ok(())
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
    /// A new first name, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required = false, max_length = 100)]
    pub first_name: Option<Option<String>>,
    /// A new last name, or `null` to remove it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, required = false, max_length = 100)]
    pub last_name: Option<Option<String>>,
}

/// Maps a key that is present (even as `null`) to `Some`.
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// Applies a profile change and audits it as `profile_changed`, naming the
/// fields that changed (not their values).
pub async fn update_profile(
    app: &App,
    user: &User,
    update: ProfileUpdate,
    client: &ClientInfo,
) -> Result<User> {
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
        // An account without a username keeps its email: it is the only
        // name the account has.
        Some(None) if user.username.is_none() && changes.username.is_none() => {
            problems.push(FieldError::new(
                "email",
                "required",
                "An account without a username cannot remove its email.",
            ))
        }
        Some(None) => changes.email = Some(None),
        Some(Some(raw)) => {
            changes.email = problems
                .check(Email::parse(&raw))
                .map(|e| Some((e.as_str().to_owned(), e.key())));
        }
    }
    for (field, given, change) in [
        ("name", update.name, &mut changes.name),
        ("first_name", update.first_name, &mut changes.first_name),
        ("last_name", update.last_name, &mut changes.last_name),
    ] {
        match given {
            None => {}
            Some(None) => *change = Some(None),
            Some(Some(raw)) => {
                *change = problems
                    .check(DisplayName::parse_field(field, &raw))
                    .map(|n| Some(n.into_inner()));
            }
        }
    }
    problems.into_result().map_err(ApiError::Validation)?;
    let fields: Vec<&str> = [
        ("username", changes.username.is_some()),
        ("email", changes.email.is_some()),
        ("name", changes.name.is_some()),
        ("first_name", changes.first_name.is_some()),
        ("last_name", changes.last_name.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, given)| given.then_some(field))
    .collect();
    if fields.is_empty() {
        return Ok(user.clone());
    }
    let updated = app
        .store
        .update_profile(user.id, changes)
        .await
        .map_err(deleted_meanwhile)?;
    app.session_cache.forget_user(user.id);
    let event = Event::by_self(Kind::ProfileChanged, user.id).detail(json!({"fields": fields}));
    audit::record(app, event, client).await?;
    Ok(updated)
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
    let username = user
        .username
        .as_deref()
        .and_then(|u| Username::parse(u).ok());
    let email = user.email.as_deref().and_then(|e| Email::parse(e).ok());
    let new = match required(&mut problems, "new_password", change.new_password) {
        Some(raw) => {
            problems.check(check_new_password(app, "new_password", raw, username, email).await?)
        }
        None => None,
    };
    problems.into_result().map_err(ApiError::Validation)?;
    let (Some(current), Some(new)) = (current, new) else {
        unreachable!("no problems means both fields parsed");
    };
    verify_own_password(app, user, &current, client).await?;
    let hash = app.hasher.hash(&new).await?;
    app.store
        .set_password_hash(user.id, &hash)
        .await
        .map_err(deleted_meanwhile)?;
    let ended = app
        .store
        .end_sessions(user.id, current_session, crate::store::LogoutScope::Others)
        .await?;
    app.session_cache.forget_user(user.id);
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
    verify_own_password(app, user, &password, client).await?;
    app.store
        .delete_user(user.id)
        .await
        .map_err(deleted_meanwhile)?;
    app.session_cache.forget_user(user.id);
    audit::record(app, Event::by_self(Kind::UserDeleted, user.id), client).await?;
    tracing::info!(user_id = %user.id, "account deleted");
    Ok(())
}

/// Confirms the signed-in user's own password before a change that needs
/// it. The check counts toward the account's lockout like a login, so a
/// stolen access token is no way to guess the password; a wrong one is
/// audited as `reauth_failed`.
async fn verify_own_password(
    app: &App,
    user: &User,
    password: &Password,
    client: &ClientInfo,
) -> Result<()> {
    let hash = app
        .store
        .password_hash(user.id)
        .await?
        .ok_or(ApiError::InvalidToken)?;
    let account = app.lockout.account(user.id);
    match app
        .lockout
        .check(&app.store, &app.hasher, &account, password, Some(hash))
        .await?
    {
        Verdict::Correct => Ok(()),
        verdict => {
            audit::record(app, Event::by_self(Kind::ReauthFailed, user.id), client).await?;
            record_lockout(app, Some(user.id), verdict, client).await?;
            Err(ApiError::InvalidCredentials)
        }
    }
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
    app.session_cache.forget_user(target);
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
    app.session_cache.forget_user(target);
    let event = Event::new(Kind::UserDeleted)
        .about(target)
        .by(Some(admin.id));
    audit::record(app, event, client).await?;
    tracing::info!(user_id = %target, admin_id = %admin.id, "account deleted by an admin");
    Ok(())
}

/// Applies the password rules to a newly chosen password. The check runs
/// in the bounded hashing pool, never on the async workers: its cost is
/// small and capped, but it is CPU work on attacker-chosen input.
async fn check_new_password(
    app: &App,
    field: &'static str,
    raw: String,
    username: Option<Username>,
    email: Option<Email>,
) -> Result<std::result::Result<Password, FieldError>> {
    let policy = app.password_policy;
    Ok(app
        .hasher
        .run_blocking(move || policy.check(field, &raw, username.as_ref(), email.as_ref()))
        .await?)
}

/// For a change to the caller's own account: an account deleted between
/// the token check and the change is a token that no longer speaks for
/// anyone (401), not a missing resource.
fn deleted_meanwhile(e: crate::store::StoreError) -> ApiError {
    match e {
        crate::store::StoreError::NotFound => ApiError::InvalidToken,
        other => other.into(),
    }
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
