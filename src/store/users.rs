//! Queries on the `users` table.

use uuid::Uuid;

use sqlx::Connection as _;

use super::changes::note_user_change;
use super::{Store, StoreError, StoreResult, now, on_pool, retry_conflicts, to_datetime, writing};
use crate::domain::{Role, User, UserId};

/// The columns every user query returns, in the shape both drivers decode.
#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: String,
    username: Option<String>,
    email: Option<String>,
    name: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    role: String,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
    last_login_at: Option<i64>,
}

const USER_COLUMNS: &str = "id, username, email, name, first_name, last_name, role, disabled, \
     created_at, updated_at, last_login_at";

/// [`USER_COLUMNS`] qualified by the alias `u`, for joins.
pub(super) const USER_COLUMNS_OF_U: &str = "u.id, u.username, u.email, u.name, \
     u.first_name, u.last_name, u.role, u.disabled, u.created_at, u.updated_at, u.last_login_at";

impl TryFrom<UserRow> for User {
    type Error = StoreError;

    fn try_from(row: UserRow) -> StoreResult<User> {
        Ok(User {
            id: Uuid::parse_str(&row.id).map_err(|_| {
                StoreError::Other(format!("stored user id is not a UUID: {}", row.id))
            })?,
            role: Role::parse(&row.role).ok_or_else(|| {
                StoreError::Other(format!("stored role is unknown: {}", row.role))
            })?,
            username: row.username,
            email: row.email,
            name: row.name,
            first_name: row.first_name,
            last_name: row.last_name,
            disabled: row.disabled,
            created_at: to_datetime(row.created_at)?,
            updated_at: to_datetime(row.updated_at)?,
            last_login_at: row.last_login_at.map(to_datetime).transpose()?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_hash: String,
}

/// A user to insert; every field is already validated.
pub struct NewUser<'a> {
    pub username: Option<&'a str>,
    pub username_key: Option<&'a str>,
    pub email: Option<&'a str>,
    pub email_key: Option<&'a str>,
    pub name: Option<&'a str>,
    pub first_name: Option<&'a str>,
    pub last_name: Option<&'a str>,
    pub password_hash: &'a str,
    pub role: Role,
    /// When the account was made, for one brought over from an older
    /// backend; `None` is now.
    pub created_at: Option<i64>,
}

/// A partial profile update. `None` leaves a column alone; `Some(None)`
/// clears a nullable one.
#[derive(Default)]
pub struct ProfileChanges {
    pub username: Option<(String, String)>,
    pub email: Option<Option<(String, String)>>,
    pub name: Option<Option<String>>,
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
}

pub struct UserPage {
    pub users: Vec<User>,
    /// The id to continue after, when more rows may follow.
    pub next_after: Option<UserId>,
}

/// A change [`Store::guarded_change`] applies.
#[derive(Clone, Copy)]
enum GuardedChange {
    Delete,
    Access {
        role: Option<Role>,
        disabled: Option<bool>,
    },
}

fn lock_user(dialect: super::Dialect) -> String {
    format!(
        "SELECT {USER_COLUMNS} FROM gatehouse_users WHERE id = ?{}",
        dialect.for_update()
    )
}

/// Whether changing `id` leaves no enabled admin, given the enabled admins
/// before the change and whether `id` is one afterwards (`None`: deleted).
fn leaves_no_admin(enabled_admins: &[String], id: &str, still_admin: Option<bool>) -> bool {
    let removed = enabled_admins.iter().any(|a| a == id) && still_admin != Some(true);
    removed && enabled_admins.len() == 1
}

/// What `gatehouse_imported_keys` keeps of an imported account's username
/// and email: SHA-256 digests of the keys, so the table holds no address or
/// name in the clear once the account is gone.
fn import_digests(username_key: Option<&str>, email_key: Option<&str>) -> Vec<String> {
    use sha2::{Digest, Sha256};
    let digest = |kind: &str, key: &str| {
        let hash = Sha256::digest(format!("{kind}:{key}").as_bytes());
        hash.iter().map(|b| format!("{b:02x}")).collect::<String>()
    };
    username_key
        .map(|key| digest("username", key))
        .into_iter()
        .chain(email_key.map(|key| digest("email", key)))
        .collect()
}

/// Escapes LIKE wildcards so a search for `a_b` matches only `a_b…`.
fn like_prefix(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '!' | '%' | '_') {
            pattern.push('!');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

impl Store {
    #[tracing::instrument(skip_all)]
    pub async fn insert_user(&self, new: NewUser<'_>) -> StoreResult<User> {
        self.insert_reporting_name_first(&new, &[]).await
    }

    /// Which of a taken username and a taken email to report when the
    /// database said the email: both unique keys can be violated at once,
    /// and the databases report whichever they checked first (SQLite the
    /// email, MariaDB the username). The username is reported first, on
    /// every database.
    async fn name_or_email_taken(
        &self,
        username_key: Option<&str>,
        except: Option<UserId>,
    ) -> StoreError {
        let Some(username_key) = username_key else {
            return StoreError::EmailTaken;
        };
        let except = except.map(|id| id.to_string()).unwrap_or_default();
        let taken: StoreResult<i64> = async {
            Ok(on_pool!(self, conn => {
                sqlx::query_scalar("SELECT COUNT(*) FROM gatehouse_users WHERE username_key = ? AND id <> ?")
                    .bind(username_key)
                    .bind(&except)
                    .fetch_one(conn)
                    .await?
            }))
        }
        .await;
        match taken {
            Ok(0) => StoreError::EmailTaken,
            Ok(_) => StoreError::UsernameTaken,
            Err(e) => e,
        }
    }

    /// Inserts a user brought in by `import-users`, and remembers its
    /// username and email as imported, in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn insert_imported_user(&self, new: NewUser<'_>) -> StoreResult<User> {
        let digests = import_digests(new.username_key, new.email_key);
        self.insert_reporting_name_first(&new, &digests).await
    }

    /// [`Store::insert_user_row`], reporting a taken username before a
    /// taken email (see [`Store::name_or_email_taken`]).
    async fn insert_reporting_name_first(
        &self,
        new: &NewUser<'_>,
        imported: &[String],
    ) -> StoreResult<User> {
        match self.insert_user_row(new, imported).await {
            Err(StoreError::EmailTaken) => {
                Err(self.name_or_email_taken(new.username_key, None).await)
            }
            inserted => inserted,
        }
    }

    /// Inserts the user and records `imported` digests (see
    /// [`import_digests`]) in one transaction.
    async fn insert_user_row(&self, new: &NewUser<'_>, imported: &[String]) -> StoreResult<User> {
        let dialect = self.dialect();
        let id = Uuid::now_v7();
        let at = now();
        let created_at = new.created_at.unwrap_or(at);
        let id_text = id.to_string();
        let id_text = id_text.as_str();
        let remember = format!(
            "INSERT INTO gatehouse_imported_keys (digest, imported_at) VALUES (?, ?){}",
            dialect.keep_existing_row("digest")
        );
        let remember = remember.as_str();
        writing!(self, conn => {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            sqlx::query(
                "INSERT INTO gatehouse_users (id, username, username_key, email, email_key, name, \
                 first_name, last_name, password_hash, role, disabled, created_at, updated_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, FALSE, ?, ?)",
            )
            .bind(id_text)
            .bind(new.username)
            .bind(new.username_key)
            .bind(new.email)
            .bind(new.email_key)
            .bind(new.name)
            .bind(new.first_name)
            .bind(new.last_name)
            .bind(new.password_hash)
            .bind(new.role.as_str())
            .bind(created_at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            for digest in imported {
                sqlx::query(sqlx::AssertSqlSafe(remember))
                    .bind(digest)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        self.user_by_id(id).await?.ok_or(StoreError::NotFound)
    }

    /// Whether an account has this username or this email (given as the
    /// case-folded keys uniqueness is decided on), or an earlier import
    /// brought one of them in: its account may since have been deleted or
    /// renamed, and importing it again would bring it back.
    #[tracing::instrument(skip_all)]
    pub async fn holds_or_imported(
        &self,
        username_key: Option<&str>,
        email_key: Option<&str>,
    ) -> StoreResult<bool> {
        let digests = import_digests(username_key, email_key);
        let (first, second) = (digests.first(), digests.get(1));
        let held: i64 = on_pool!(self, conn => {
            sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM gatehouse_users WHERE username_key = ? OR email_key = ?) \
                      + (SELECT COUNT(*) FROM gatehouse_imported_keys WHERE digest = ? OR digest = ?)",
            )
            .bind(username_key)
            .bind(email_key)
            .bind(first)
            .bind(second)
            .fetch_one(conn)
            .await?
        });
        Ok(held > 0)
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let row: Option<UserRow> = on_pool!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS} FROM gatehouse_users WHERE id = ?"
            )))
            .bind(id.to_string())
            .fetch_optional(conn)
            .await?
        });
        row.map(User::try_from).transpose()
    }

    /// The user and password hash for a login by username or email key.
    #[tracing::instrument(skip_all)]
    pub async fn credentials_by_login(
        &self,
        column: LoginColumn,
        key: &str,
    ) -> StoreResult<Option<(User, String)>> {
        let sql = format!(
            "SELECT {USER_COLUMNS}, password_hash FROM gatehouse_users WHERE {} = ?",
            column.as_sql()
        );
        let row: Option<CredentialRow> = on_pool!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                .bind(key)
                .fetch_optional(conn)
                .await?
        });
        row.map(|r| Ok((User::try_from(r.user)?, r.password_hash)))
            .transpose()
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>> {
        let hash: Option<String> = on_pool!(self, conn => {
            sqlx::query_scalar("SELECT password_hash FROM gatehouse_users WHERE id = ?")
                .bind(id.to_string())
                .fetch_optional(conn)
                .await?
        });
        Ok(hash)
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn record_login(&self, id: UserId) -> StoreResult<()> {
        writing!(self, conn => {
            sqlx::query("UPDATE gatehouse_users SET last_login_at = ? WHERE id = ?")
                .bind(now())
                .bind(id.to_string())
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn update_profile(&self, id: UserId, changes: ProfileChanges) -> StoreResult<User> {
        let username_key = changes.username.as_ref().map(|(_, key)| key.clone());
        match self.update_profile_row(id, changes).await {
            Err(StoreError::EmailTaken) => Err(self
                .name_or_email_taken(username_key.as_deref(), Some(id))
                .await),
            updated => updated,
        }
    }

    async fn update_profile_row(&self, id: UserId, changes: ProfileChanges) -> StoreResult<User> {
        let mut sets = vec!["updated_at = ?"];
        if changes.username.is_some() {
            sets.push("username = ?");
            sets.push("username_key = ?");
        }
        if changes.email.is_some() {
            sets.push("email = ?");
            sets.push("email_key = ?");
        }
        if changes.name.is_some() {
            sets.push("name = ?");
        }
        if changes.first_name.is_some() {
            sets.push("first_name = ?");
        }
        if changes.last_name.is_some() {
            sets.push("last_name = ?");
        }
        let sql = format!(
            "UPDATE gatehouse_users SET {} WHERE id = ?",
            sets.join(", ")
        );
        let dialect = self.dialect();
        let at = now();
        let (sql, changes) = (&sql, &changes);
        let updated = writing!(self, conn => {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(at);
            if let Some((display, key)) = &changes.username {
                query = query.bind(display.clone()).bind(key.clone());
            }
            if let Some(email) = &changes.email {
                let (display, key) = email.clone().unzip();
                query = query.bind(display).bind(key);
            }
            for text in [&changes.name, &changes.first_name, &changes.last_name]
                .into_iter()
                .flatten()
            {
                query = query.bind(text.clone());
            }
            let updated = query.bind(id.to_string()).execute(&mut *tx).await?.rows_affected();
            // `GET /me` on other instances may answer from memory.
            note_user_change!(tx, id.to_string(), at);
            tx.commit().await?;
            updated
        });
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        self.user_by_id(id).await?.ok_or(StoreError::NotFound)
    }

    /// Replaces the password hash `old` of user `id` by `new`, the same
    /// password hashed again; returns whether `old` was still the stored
    /// hash. Not a password change: sessions and `updated_at` stay.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn replace_password_hash(
        &self,
        id: UserId,
        old: &str,
        new: &str,
    ) -> StoreResult<bool> {
        let replaced = writing!(self, conn => {
            sqlx::query("UPDATE gatehouse_users SET password_hash = ? WHERE id = ? AND password_hash = ?")
                .bind(new)
                .bind(id.to_string())
                .bind(old)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(replaced == 1)
    }

    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<()> {
        let dialect = self.dialect();
        let at = now();
        let updated = writing!(self, conn => {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            let updated = sqlx::query("UPDATE gatehouse_users SET password_hash = ?, updated_at = ? WHERE id = ?")
                .bind(hash)
                .bind(at)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            // The user's `updated_at` changed: `GET /me` elsewhere may hold it.
            note_user_change!(tx, id.to_string(), at);
            tx.commit().await?;
            updated
        });
        if updated == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Deletes a user unless that would leave no enabled admin. Sessions and
    /// spent tokens go with the user (foreign-key cascade). Returns the user
    /// as it was.
    pub async fn delete_user(&self, id: UserId) -> StoreResult<User> {
        let (before, _) = self.guarded_change(id, GuardedChange::Delete).await?;
        Ok(before)
    }

    /// Changes a user's role and/or disabled flag, refusing a change that
    /// would leave no enabled admin. A role change or disabling also ends
    /// every session of the user, in the same transaction. Returns the user
    /// before and after.
    pub async fn update_user_access(
        &self,
        id: UserId,
        role: Option<Role>,
        disabled: Option<bool>,
    ) -> StoreResult<(User, User)> {
        let (before, after) = self
            .guarded_change(id, GuardedChange::Access { role, disabled })
            .await?;
        Ok((before, after.expect("an access change keeps the user")))
    }

    /// The one transaction shape for every change that could remove the
    /// last enabled admin: lock the guard row, read the enabled admins, lock
    /// the target's row, check, apply, commit. Two admins acting at once
    /// therefore run one after the other, and the second sees the first's
    /// result.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    async fn guarded_change(
        &self,
        id: UserId,
        change: GuardedChange,
    ) -> StoreResult<(User, Option<User>)> {
        let dialect = self.dialect();
        let id_text = id.to_string();
        let id_text = id_text.as_str();
        retry_conflicts(|| async move { on_pool!(self, conn => result {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            // Take the guard first, by writing it: from here on no other
            // such change runs on this server, so the admins read next are
            // current and stay so until commit. On a multi-primary cluster
            // a lock holds only on its own node, but two transactions that
            // both wrote the guard conflict at commit, and the loser runs
            // again (see `retry_conflicts`) and then sees the winner's change.
            sqlx::query("UPDATE gatehouse_admin_guard SET changes = changes + 1 WHERE id = 1")
                .execute(&mut *tx)
                .await?;
            let admins: Vec<String> = sqlx::query_scalar(
                "SELECT id FROM gatehouse_users WHERE role = 'admin' AND disabled = FALSE",
            )
            .fetch_all(&mut *tx)
            .await?;
            let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(lock_user(dialect)))
                .bind(id_text)
                .fetch_optional(&mut *tx)
                .await?;
            let before = User::try_from(row.ok_or(StoreError::NotFound)?)?;
            let after = match change {
                GuardedChange::Delete => None,
                GuardedChange::Access { role, disabled } => {
                    let mut after = before.clone();
                    after.role = role.unwrap_or(before.role);
                    after.disabled = disabled.unwrap_or(before.disabled);
                    Some(after)
                }
            };
            let still_admin = after.as_ref().map(|a| a.role == Role::Admin && !a.disabled);
            if leaves_no_admin(&admins, id_text, still_admin) {
                return Err(StoreError::LastAdmin);
            }
            let Some(mut after) = after else {
                sqlx::query("DELETE FROM gatehouse_users WHERE id = ?")
                    .bind(id_text)
                    .execute(&mut *tx)
                    .await?;
                note_user_change!(tx, id_text, now());
                tx.commit().await?;
                return Ok((before, None));
            };
            if after.role == before.role && after.disabled == before.disabled {
                return Ok((before, Some(after)));
            }
            let at = now();
            sqlx::query("UPDATE gatehouse_users SET role = ?, disabled = ?, updated_at = ? WHERE id = ?")
                .bind(after.role.as_str())
                .bind(after.disabled)
                .bind(at)
                .bind(id_text)
                .execute(&mut *tx)
                .await?;
            if after.role != before.role || (after.disabled && !before.disabled) {
                sqlx::query("DELETE FROM gatehouse_sessions WHERE user_id = ?")
                    .bind(id_text)
                    .execute(&mut *tx)
                    .await?;
            }
            note_user_change!(tx, id_text, at);
            tx.commit().await?;
            after.updated_at = to_datetime(at)?;
            Ok((before, Some(after)))
        })})
        .await
    }

    /// One page of users in creation order, optionally only those whose
    /// username or email starts with `prefix` (already case-folded).
    #[tracing::instrument(skip_all)]
    pub async fn list_users(
        &self,
        after: Option<UserId>,
        limit: u32,
        prefix: Option<&str>,
    ) -> StoreResult<UserPage> {
        let mut sql = format!("SELECT {USER_COLUMNS} FROM gatehouse_users WHERE id > ?");
        if prefix.is_some() {
            sql.push_str(" AND (username_key LIKE ? ESCAPE '!' OR email_key LIKE ? ESCAPE '!')");
        }
        sql.push_str(" ORDER BY id LIMIT ?");
        // One row more than asked tells whether another page exists.
        let fetch = i64::from(limit) + 1;
        let after = after.map(|id| id.to_string()).unwrap_or_default();
        let rows: Vec<UserRow> = on_pool!(self, conn => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(after.clone());
            if let Some(prefix) = prefix {
                let pattern = like_prefix(prefix);
                query = query.bind(pattern.clone()).bind(pattern);
            }
            query.bind(fetch).fetch_all(conn).await?
        });
        let mut users = rows
            .into_iter()
            .map(User::try_from)
            .collect::<StoreResult<Vec<_>>>()?;
        let next_after = if users.len() > limit as usize {
            users.truncate(limit as usize);
            users.last().map(|u| u.id)
        } else {
            None
        };
        Ok(UserPage { users, next_after })
    }
}

/// Which canonical key a login names the account by.
#[derive(Clone, Copy, Debug)]
pub enum LoginColumn {
    Username,
    Email,
}

impl LoginColumn {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginColumn::Username => "username",
            LoginColumn::Email => "email",
        }
    }

    fn as_sql(self) -> &'static str {
        match self {
            LoginColumn::Username => "username_key",
            LoginColumn::Email => "email_key",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::like_prefix;

    #[test]
    fn only_removing_the_sole_enabled_admin_is_refused() {
        use super::leaves_no_admin;
        let one = ["a".to_owned()];
        let two = ["a".to_owned(), "b".to_owned()];
        assert!(leaves_no_admin(&one, "a", None));
        assert!(leaves_no_admin(&one, "a", Some(false)));
        assert!(!leaves_no_admin(&one, "a", Some(true)));
        assert!(!leaves_no_admin(&one, "x", None));
        assert!(!leaves_no_admin(&two, "a", None));
    }

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_prefix("a_b%c!"), "a!_b!%c!!%");
    }
}
