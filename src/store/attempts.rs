//! Queries on `login_attempts`: the per-account counters of password
//! checks. They live in the database so every instance sees the same
//! counts and a restart does not reset them. Each change is one
//! transaction that locks the row and applies the pure rule of
//! [`crate::domain::lockout`] to what the lock shows.

use sqlx::Connection as _;

use super::{Store, StoreResult, on_pool};
use crate::domain::lockout::{Admission, Attempts, LockoutPolicy, Outcome};

#[derive(sqlx::FromRow)]
struct AttemptsRow {
    failures: i64,
    window_started_at: i64,
    locked_until: i64,
    lockouts: i64,
    in_flight: i64,
    in_flight_expires_at: i64,
}

impl From<AttemptsRow> for Attempts {
    fn from(row: AttemptsRow) -> Self {
        let count = |n: i64| n.clamp(0, i64::from(u32::MAX)) as u32;
        Attempts {
            failures: count(row.failures),
            window_started_at: row.window_started_at,
            locked_until: row.locked_until,
            lockouts: count(row.lockouts),
            in_flight: count(row.in_flight),
            in_flight_expires_at: row.in_flight_expires_at,
        }
    }
}

const COLUMNS: &str =
    "failures, window_started_at, locked_until, lockouts, in_flight, in_flight_expires_at";

impl Store {
    /// The counters as they are, without locking: a cheap look before the
    /// locked [`Store::admit_attempt`], for checks that are waiting.
    #[tracing::instrument(skip_all)]
    pub async fn attempts(&self, account_key: &str) -> StoreResult<Option<Attempts>> {
        let row: Option<AttemptsRow> = on_pool!(self, conn => {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM login_attempts WHERE account_key = ?"
            )))
            .bind(account_key)
            .fetch_optional(conn)
            .await?
        });
        Ok(row.map(Attempts::from))
    }

    /// Reserves a password check for `account_key` if the policy admits
    /// one now; a reservation is written only when it is granted.
    #[tracing::instrument(skip_all)]
    pub async fn admit_attempt(
        &self,
        account_key: &str,
        now: i64,
        policy: &LockoutPolicy,
    ) -> StoreResult<Admission> {
        self.update_attempts(account_key, now, |current| {
            match policy.admit(current, now) {
                Admission::Admitted(next) => (Some(next), Admission::Admitted(next)),
                refused => (None, refused),
            }
        })
        .await
    }

    /// Books how a reserved check ended; returns the end of the lock it
    /// started, if it did.
    #[tracing::instrument(skip_all)]
    pub async fn settle_attempt(
        &self,
        account_key: &str,
        now: i64,
        policy: &LockoutPolicy,
        outcome: Outcome,
    ) -> StoreResult<Option<i64>> {
        self.update_attempts(account_key, now, |current| {
            let (next, lock) = policy.settle(current, now, outcome);
            (Some(next), lock)
        })
        .await
    }

    /// Locks the counters of `account_key` (creating them if missing),
    /// lets `change` decide, and writes what it returns, all in one
    /// transaction, so concurrent checks of one account are serialised.
    async fn update_attempts<T>(
        &self,
        account_key: &str,
        now: i64,
        change: impl FnOnce(Attempts) -> (Option<Attempts>, T),
    ) -> StoreResult<T> {
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
                "SELECT {COLUMNS} FROM login_attempts WHERE account_key = ?{}",
                dialect.for_update()
            )))
            .bind(account_key)
            .fetch_one(&mut *tx)
            .await?;
            let (next, answer) = change(Attempts::from(row));
            if let Some(next) = next {
                sqlx::query(
                    "UPDATE login_attempts SET failures = ?, window_started_at = ?, \
                     locked_until = ?, lockouts = ?, in_flight = ?, in_flight_expires_at = ?, \
                     updated_at = ? WHERE account_key = ?",
                )
                .bind(i64::from(next.failures))
                .bind(next.window_started_at)
                .bind(next.locked_until)
                .bind(i64::from(next.lockouts))
                .bind(i64::from(next.in_flight))
                .bind(next.in_flight_expires_at)
                .bind(now)
                .bind(account_key)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(answer)
        })
    }

    /// Deletes counters that no longer matter, so guessing at made-up names
    /// cannot grow the table without bound: plain failures once their
    /// window has passed, lockout history once it would be forgotten anyway.
    /// A row with a check in flight is kept until that check settles.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_login_attempts(&self, now: i64, policy: &LockoutPolicy) -> StoreResult<u64> {
        let swept = on_pool!(self, conn => {
            sqlx::query(
                "DELETE FROM login_attempts WHERE locked_until < ? \
                 AND (in_flight = 0 OR in_flight_expires_at < ?) \
                 AND ((lockouts = 0 AND updated_at < ?) OR updated_at < ?)",
            )
            .bind(now)
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
