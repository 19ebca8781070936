//! Queries on `session_changes`: the feed every instance reads to keep its
//! in-memory view of sessions current (see [`crate::session_cache`]). Rows
//! are written by the transactions that make the changes, with
//! [`NOTE_USER_CHANGE`].

use super::{Store, StoreResult, on_pool};

/// Records that what is cached for a user may be wrong now. Run inside the
/// transaction that makes the change, so the change and its note commit
/// together. Binds: the user id, the time.
pub(super) const NOTE_USER_CHANGE: &str = "INSERT INTO session_changes (user_id, at) VALUES (?, ?)";

/// One row of the feed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionChange {
    pub seq: i64,
    pub user_id: String,
}

impl Store {
    /// The newest change number, or 0: where a fresh reader starts.
    #[tracing::instrument(skip_all)]
    pub async fn latest_session_change(&self) -> StoreResult<i64> {
        let latest: Option<i64> = on_pool!(self, conn => {
            sqlx::query_scalar("SELECT MAX(seq) FROM session_changes")
                .fetch_one(conn)
                .await?
        });
        Ok(latest.unwrap_or(0))
    }

    /// Changes numbered above `after`, oldest first, at most `limit`. One
    /// range scan of the primary key.
    #[tracing::instrument(skip_all)]
    pub async fn session_changes_after(
        &self,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<SessionChange>> {
        let rows = on_pool!(self, conn => {
            sqlx::query_as("SELECT seq, user_id FROM session_changes WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(after)
                .bind(limit)
                .fetch_all(conn)
                .await?
        });
        Ok(rows)
    }

    /// Deletes changes older than `before` (Unix seconds): every instance
    /// has read them long since.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_session_changes(&self, before: i64) -> StoreResult<u64> {
        let swept = on_pool!(self, conn => {
            sqlx::query("DELETE FROM session_changes WHERE at < ?")
                .bind(before)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(swept)
    }
}
