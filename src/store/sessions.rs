//! Queries on `sessions`, `spent_refresh_tokens` and `server_secrets`.

use uuid::Uuid;

use super::users::{USER_COLUMNS_OF_U, UserRow};
use sqlx::Connection as _;

use super::changes::note_user_change;
use super::{Store, StoreError, StoreResult, now, on_pool, retry_conflicts, writing};
use crate::domain::{User, UserId};

/// A live login as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub rotated_at: i64,
    pub created_at: i64,
    pub last_used_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
}

const SESSION_COLUMNS: &str =
    "id, user_id, rotated_at, created_at, last_used_at, expires_at, user_agent, ip";

/// The columns a refresh decides on, read under the session's row lock.
#[derive(sqlx::FromRow)]
struct LockedSession {
    #[sqlx(flatten)]
    session: SessionRow,
    refresh_hash: String,
    previous_hash: Option<String>,
}

pub struct NewSession<'a> {
    pub id: Uuid,
    pub user_id: UserId,
    pub refresh_hash: &'a str,
    pub expires_at: i64,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// What presenting a refresh token came to.
#[derive(Debug)]
pub enum Refresh {
    /// The live token: it is now spent and `next_hash` is live.
    Rotated(SessionRow),
    /// The token spent moments ago, within the grace window: the caller
    /// gets the pair that replaced it, again.
    Replayed(SessionRow),
    /// A spent token outside the grace window: presumed stolen, and the
    /// whole session has been ended.
    Reused { session_id: String, user_id: String },
    /// Unknown, or its session has ended.
    Invalid,
}

/// When sessions end. Both limits are checked on every use.
#[derive(Clone, Copy, Debug)]
pub struct Liveness {
    pub now: i64,
    /// Sessions last used at or before this are idle-expired.
    pub idle_cutoff: i64,
}

impl Liveness {
    fn is_live(&self, session: &SessionRow) -> bool {
        session.expires_at > self.now && session.last_used_at > self.idle_cutoff
    }
}

/// Which of a user's sessions a logout ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogoutScope {
    Local,
    Others,
    Global,
}

impl LogoutScope {
    pub fn as_str(self) -> &'static str {
        match self {
            LogoutScope::Local => "local",
            LogoutScope::Others => "others",
            LogoutScope::Global => "global",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::Local, Self::Others, Self::Global]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A live session's user and limits, as an authenticated request needs them.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub user: User,
    pub last_used_at: i64,
    pub expires_at: i64,
}

impl Store {
    /// Opens a session; [`StoreError::NotFound`] when its user no longer
    /// exists.
    #[tracing::instrument(skip_all, fields(user_id = %new.user_id))]
    pub async fn insert_session(&self, new: NewSession<'_>) -> StoreResult<SessionRow> {
        let at = now();
        let row = SessionRow {
            id: new.id.to_string(),
            user_id: new.user_id.to_string(),
            rotated_at: at,
            created_at: at,
            last_used_at: at,
            expires_at: new.expires_at,
            user_agent: new.user_agent.map(str::to_owned),
            ip: new.ip.map(str::to_owned),
        };
        let stored = &row;
        writing!(self, conn => {
            sqlx::query(
                "INSERT INTO gatehouse_sessions (id, user_id, refresh_hash, previous_hash, rotated_at, \
                 created_at, last_used_at, expires_at, user_agent, ip) \
                 VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&stored.id)
            .bind(&stored.user_id)
            .bind(new.refresh_hash)
            .bind(stored.rotated_at)
            .bind(stored.created_at)
            .bind(stored.last_used_at)
            .bind(stored.expires_at)
            .bind(&stored.user_agent)
            .bind(&stored.ip)
            .execute(conn)
            .await
            .map_err(|e| match &e {
                // The user was deleted between the password check and now.
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                    StoreError::NotFound
                }
                _ => StoreError::from(e),
            })?;
        });
        Ok(row)
    }

    /// Exchanges the refresh token hashed as `presented` for `next`.
    ///
    /// The session is found without locks, then its row is locked by primary
    /// key and every decision is made on what the lock shows, so concurrent
    /// refreshes of one token serialise: the first rotates, the others see
    /// the token as just spent and replay (within `grace`) or end the
    /// session (after it).
    #[tracing::instrument(skip_all)]
    pub async fn refresh_session(
        &self,
        presented: &str,
        next: &str,
        grace_seconds: i64,
        liveness: Liveness,
    ) -> StoreResult<Refresh> {
        let dialect = self.dialect();
        retry_conflicts(|| async move { on_pool!(self, conn => result {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            let mut session_id: Option<String> =
                sqlx::query_scalar("SELECT id FROM gatehouse_sessions WHERE refresh_hash = ?")
                    .bind(presented)
                    .fetch_optional(&mut *tx)
                    .await?;
            if session_id.is_none() {
                session_id = sqlx::query_scalar(
                    "SELECT session_id FROM gatehouse_spent_refresh_tokens WHERE token_hash = ?",
                )
                .bind(presented)
                .fetch_optional(&mut *tx)
                .await?;
            }
            let Some(session_id) = session_id else {
                return Ok(Refresh::Invalid);
            };
            let locked: Option<LockedSession> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SESSION_COLUMNS}, refresh_hash, previous_hash FROM gatehouse_sessions WHERE id = ?{}",
                dialect.for_update()
            )))
            .bind(&session_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(locked) = locked else {
                return Ok(Refresh::Invalid);
            };
            let mut session = locked.session;
            let end_session = "DELETE FROM gatehouse_sessions WHERE id = ?";
            if !liveness.is_live(&session) {
                sqlx::query(end_session).bind(&session.id).execute(&mut *tx).await?;
                tx.commit().await?;
                return Ok(Refresh::Invalid);
            }
            let outcome = if locked.refresh_hash == presented {
                sqlx::query(
                    "UPDATE gatehouse_sessions SET previous_hash = refresh_hash, refresh_hash = ?, \
                     rotated_at = ?, last_used_at = ? WHERE id = ?",
                )
                .bind(next)
                .bind(liveness.now)
                .bind(liveness.now)
                .bind(&session.id)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO gatehouse_spent_refresh_tokens (token_hash, session_id, spent_at) VALUES (?, ?, ?)",
                )
                .bind(presented)
                .bind(&session.id)
                .bind(liveness.now)
                .execute(&mut *tx)
                .await?;
                session.rotated_at = liveness.now;
                session.last_used_at = liveness.now;
                Refresh::Rotated(session)
            } else if locked.previous_hash.as_deref() == Some(presented)
                && liveness.now - session.rotated_at <= grace_seconds
            {
                Refresh::Replayed(session)
            } else {
                sqlx::query(end_session).bind(&session.id).execute(&mut *tx).await?;
                note_user_change!(tx, &session.user_id, liveness.now);
                Refresh::Reused { session_id: session.id, user_id: session.user_id }
            };
            tx.commit().await?;
            Ok(outcome)
        })})
        .await
    }

    /// The user behind a live session, checked on every authenticated
    /// request: one primary-key lookup joined to the user.
    #[tracing::instrument(skip_all)]
    pub async fn session_user(
        &self,
        session_id: Uuid,
        user_id: UserId,
        liveness: Liveness,
    ) -> StoreResult<Option<LiveSession>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRow,
            session_last_used_at: i64,
            session_expires_at: i64,
        }
        let row: Option<Row> = on_pool!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {USER_COLUMNS_OF_U}, s.last_used_at AS session_last_used_at, \
                 s.expires_at AS session_expires_at \
                 FROM gatehouse_sessions s JOIN gatehouse_users u ON u.id = s.user_id \
                 WHERE s.id = ? AND s.user_id = ? AND s.expires_at > ? AND s.last_used_at > ?"
            )))
            .bind(session_id.to_string())
            .bind(user_id.to_string())
            .bind(liveness.now)
            .bind(liveness.idle_cutoff)
            .fetch_optional(conn)
            .await?
        });
        row.map(|r| {
            Ok(LiveSession {
                user: User::try_from(r.user)?,
                last_used_at: r.session_last_used_at,
                expires_at: r.session_expires_at,
            })
        })
        .transpose()
    }

    /// Records use of a session (bounds how often callers write this).
    #[tracing::instrument(skip_all)]
    pub async fn touch_session(&self, session_id: Uuid, at: i64) -> StoreResult<()> {
        writing!(self, conn => {
            sqlx::query("UPDATE gatehouse_sessions SET last_used_at = ? WHERE id = ? AND last_used_at < ?")
                .bind(at)
                .bind(session_id.to_string())
                .bind(at)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// A user's live sessions, newest first.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn list_sessions(
        &self,
        user_id: UserId,
        liveness: Liveness,
    ) -> StoreResult<Vec<SessionRow>> {
        let rows = on_pool!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SESSION_COLUMNS} FROM gatehouse_sessions \
                 WHERE user_id = ? AND expires_at > ? AND last_used_at > ? ORDER BY id DESC"
            )))
            .bind(user_id.to_string())
            .bind(liveness.now)
            .bind(liveness.idle_cutoff)
            .fetch_all(conn)
            .await?
        });
        Ok(rows)
    }

    /// Ends one live session of `user_id`; `NotFound` when there is none
    /// (including another user's, or one that already ended).
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn end_session(
        &self,
        user_id: UserId,
        session_id: Uuid,
        liveness: Liveness,
    ) -> StoreResult<()> {
        let dialect = self.dialect();
        let deleted = writing!(self, conn => {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            let deleted = sqlx::query(
                "DELETE FROM gatehouse_sessions WHERE id = ? AND user_id = ? AND expires_at > ? AND last_used_at > ?",
            )
            .bind(session_id.to_string())
            .bind(user_id.to_string())
            .bind(liveness.now)
            .bind(liveness.idle_cutoff)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if deleted > 0 {
                note_user_change!(tx, user_id.to_string(), liveness.now);
            }
            tx.commit().await?;
            deleted
        });
        if deleted == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Ends the sessions a logout names; returns how many ended.
    #[tracing::instrument(skip_all, fields(user_id = %user_id, ?scope))]
    pub async fn end_sessions(
        &self,
        user_id: UserId,
        current: Uuid,
        scope: LogoutScope,
    ) -> StoreResult<u64> {
        let (sql, current) = match scope {
            LogoutScope::Local => (
                "DELETE FROM gatehouse_sessions WHERE user_id = ? AND id = ?",
                Some(current),
            ),
            LogoutScope::Others => (
                "DELETE FROM gatehouse_sessions WHERE user_id = ? AND id <> ?",
                Some(current),
            ),
            LogoutScope::Global => ("DELETE FROM gatehouse_sessions WHERE user_id = ?", None),
        };
        let dialect = self.dialect();
        let ended = writing!(self, conn => {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            let mut query = sqlx::query(sql).bind(user_id.to_string());
            if let Some(current) = current {
                query = query.bind(current.to_string());
            }
            let ended = query.execute(&mut *tx).await?.rows_affected();
            if ended > 0 {
                note_user_change!(tx, user_id.to_string(), now());
            }
            tx.commit().await?;
            ended
        });
        Ok(ended)
    }

    /// Deletes sessions past either limit (their spent tokens go with them).
    #[tracing::instrument(skip_all)]
    pub async fn sweep_sessions(&self, liveness: Liveness) -> StoreResult<u64> {
        let swept = on_pool!(self, conn => unbounded {
            sqlx::query("DELETE FROM gatehouse_sessions WHERE expires_at <= ? OR last_used_at <= ?")
                .bind(liveness.now)
                .bind(liveness.idle_cutoff)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(swept)
    }

    /// The server secret called `name`, created from `generate` on first
    /// use. Instances racing to create it all end up with the winner's.
    #[tracing::instrument(skip_all, fields(name))]
    pub async fn server_secret(
        &self,
        name: &str,
        generate: impl FnOnce() -> String,
    ) -> StoreResult<String> {
        let existing = self.read_server_secret(name).await?;
        if let Some(value) = existing {
            return Ok(value);
        }
        let value = generate();
        let candidate = value.as_str();
        // Two instances inserting at once: one gets a duplicate key on one
        // server, a conflict at commit on a cluster (then runs again and
        // meets the duplicate key).
        let inserted = writing!(self, conn => {
            let insert = sqlx::query("INSERT INTO gatehouse_server_secrets (name, value) VALUES (?, ?)")
                .bind(name)
                .bind(candidate)
                .execute(conn)
                .await;
            match insert {
                Ok(_) => true,
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => false,
                Err(e) => return Err(e.into()),
            }
        });
        if inserted {
            return Ok(value);
        }
        self.read_server_secret(name)
            .await?
            .ok_or_else(|| StoreError::Other(format!("server secret {name} vanished")))
    }

    async fn read_server_secret(&self, name: &str) -> StoreResult<Option<String>> {
        let value = on_pool!(self, conn => {
            sqlx::query_scalar("SELECT value FROM gatehouse_server_secrets WHERE name = ?")
                .bind(name)
                .fetch_optional(conn)
                .await?
        });
        Ok(value)
    }
}
