//! Queries on `session_changes`: the feed every instance reads to keep its
//! in-memory view of sessions current (see [`crate::session_cache`]). Rows
//! are written by the transactions that make the changes, with
//! `note_user_change!`.

use super::{Store, StoreResult, on_pool};

/// Records in the transaction `$tx` that what is cached for user `$user_id`
/// (text) may be wrong as of `$at`, so the change and its note commit
/// together. A macro, as the statement runs on whichever database's
/// transaction.
macro_rules! note_user_change {
    ($tx:expr, $user_id:expr, $at:expr) => {
        sqlx::query("INSERT INTO gatehouse_session_changes (user_id, at) VALUES (?, ?)")
            .bind($user_id)
            .bind($at)
            .execute(&mut *$tx)
            .await?
    };
}
pub(super) use note_user_change;

/// One row of the feed.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionChange {
    pub seq: i64,
    pub user_id: String,
}

/// Where a fresh reader of the feed starts: after the newest change, and
/// watching the numbers missing among the last [`START_LOOKBACK`] below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedStart {
    pub newest: i64,
    pub missing: Vec<i64>,
}

/// How many change numbers below the newest a starting reader checks for
/// ones not committed yet: far more than the changes in flight at once.
const START_LOOKBACK: i64 = 1000;

impl Store {
    /// Where a fresh reader starts (see [`FeedStart`]).
    #[tracing::instrument(skip_all)]
    pub async fn feed_start(&self) -> StoreResult<FeedStart> {
        let newest = self.latest_session_change().await?;
        let floor = (newest - START_LOOKBACK).max(0);
        let present: Vec<i64> = on_pool!(self, conn => {
            sqlx::query_scalar("SELECT seq FROM gatehouse_session_changes WHERE seq > ? AND seq <= ?")
                .bind(floor)
                .bind(newest)
                .fetch_all(conn)
                .await?
        });
        let present: std::collections::BTreeSet<i64> = present.into_iter().collect();
        let missing = (floor + 1..=newest)
            .filter(|seq| !present.contains(seq))
            .collect();
        Ok(FeedStart { newest, missing })
    }

    /// The newest change number, or 0.
    #[tracing::instrument(skip_all)]
    pub async fn latest_session_change(&self) -> StoreResult<i64> {
        let latest: Option<i64> = on_pool!(self, conn => {
            sqlx::query_scalar("SELECT MAX(seq) FROM gatehouse_session_changes")
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
            sqlx::query_as("SELECT seq, user_id FROM gatehouse_session_changes WHERE seq > ? ORDER BY seq LIMIT ?")
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
        let swept = on_pool!(self, conn => unbounded {
            sqlx::query("DELETE FROM gatehouse_session_changes WHERE at < ?")
                .bind(before)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(swept)
    }
}
