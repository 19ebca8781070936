//! Queries on `login_attempts`: the per-account failed-login counters. They
//! live in the database so every instance sees the same counts and a
//! restart does not reset them.

use sqlx::Connection as _;

use super::{Store, StoreResult, on_pool};
use crate::domain::lockout::{Attempts, LockoutPolicy};

#[derive(sqlx::FromRow)]
struct AttemptsRow {
    failures: i64,
    window_started_at: i64,
    locked_until: i64,
    lockouts: i64,
}

impl Store {
    /// Until when `account_key` is locked (0 or a past time: not locked).
    #[tracing::instrument(skip_all)]
    pub async fn locked_until(&self, account_key: &str) -> StoreResult<i64> {
        let until: Option<i64> = on_pool!(self, conn => {
            sqlx::query_scalar("SELECT locked_until FROM login_attempts WHERE account_key = ?")
                .bind(account_key)
                .fetch_optional(conn)
                .await?
        });
        Ok(until.unwrap_or(0))
    }

    /// Counts one failed login; returns the lock it started, if it did.
    /// The row is created if missing, then locked, so concurrent failures
    /// for one account are all counted.
    #[tracing::instrument(skip_all)]
    pub async fn record_login_failure(
        &self,
        account_key: &str,
        now: i64,
        policy: &LockoutPolicy,
    ) -> StoreResult<Option<i64>> {
        let dialect = self.dialect();
        on_pool!(self, conn => {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO login_attempts \
                 (account_key, failures, window_started_at, locked_until, lockouts, updated_at) \
                 VALUES (?, 0, ?, 0, 0, ?){}",
                dialect.keep_existing_row("account_key")
            )))
            .bind(account_key)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let row: AttemptsRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT failures, window_started_at, locked_until, lockouts \
                 FROM login_attempts WHERE account_key = ?{}",
                dialect.for_update()
            )))
            .bind(account_key)
            .fetch_one(&mut *tx)
            .await?;
            let current = Attempts {
                failures: row.failures.clamp(0, i64::from(u32::MAX)) as u32,
                window_started_at: row.window_started_at,
                locked_until: row.locked_until,
                lockouts: row.lockouts.clamp(0, i64::from(u32::MAX)) as u32,
            };
            let (next, locked) = policy.after_failure(current, now);
            sqlx::query(
                "UPDATE login_attempts SET failures = ?, window_started_at = ?, locked_until = ?, \
                 lockouts = ?, updated_at = ? WHERE account_key = ?",
            )
            .bind(i64::from(next.failures))
            .bind(next.window_started_at)
            .bind(next.locked_until)
            .bind(i64::from(next.lockouts))
            .bind(now)
            .bind(account_key)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(locked.then_some(next.locked_until))
        })
    }

    /// Forgets the failures of an account that just logged in.
    #[tracing::instrument(skip_all)]
    pub async fn clear_login_failures(&self, account_key: &str) -> StoreResult<()> {
        on_pool!(self, conn => {
            sqlx::query("DELETE FROM login_attempts WHERE account_key = ?")
                .bind(account_key)
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Deletes counters that no longer matter, so guessing at made-up names
    /// cannot grow the table without bound: plain failures once their
    /// window has passed, lockout history once it would be forgotten anyway.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_login_attempts(&self, now: i64, policy: &LockoutPolicy) -> StoreResult<u64> {
        let swept = on_pool!(self, conn => {
            sqlx::query(
                "DELETE FROM login_attempts WHERE locked_until < ? \
                 AND ((lockouts = 0 AND updated_at < ?) OR updated_at < ?)",
            )
            .bind(now)
            .bind(now - policy.window)
            .bind(now - policy.forget_after)
            .execute(conn)
            .await?
            .rows_affected()
        });
        Ok(swept)
    }
}
