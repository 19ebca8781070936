//! Queries on `login_attempts` (the per-account counters of password
//! checks) and `password_checks` (the checks in flight, one row each with
//! its own expiry). They live in the database so every instance sees the
//! same counts and a restart does not reset them. Each change is one
//! transaction that locks the account's counter row and applies the pure
//! rule of [`crate::domain::lockout`] to what the lock shows.

use sqlx::Connection as _;

use super::{Store, StoreResult, on_pool, retry_conflicts};
use crate::domain::lockout::{Admission, Attempts, LockoutPolicy, Outcome};

#[derive(sqlx::FromRow)]
struct AttemptsRow {
    failures: i64,
    window_started_at: i64,
    locked_until: i64,
    lockouts: i64,
}

impl AttemptsRow {
    fn with_in_flight(self, in_flight: i64) -> Attempts {
        let count = |n: i64| n.clamp(0, i64::from(u32::MAX)) as u32;
        Attempts {
            failures: count(self.failures),
            window_started_at: self.window_started_at,
            locked_until: self.locked_until,
            lockouts: count(self.lockouts),
            in_flight: count(in_flight),
        }
    }
}

const COLUMNS: &str = "failures, window_started_at, locked_until, lockouts";

/// One password check in flight: which account, its id, and when it stops
/// counting if it is never settled.
pub struct Reservation<'a> {
    pub account_key: &'a str,
    pub id: &'a str,
    pub expires_at: i64,
}

/// How many of the account's checks are in flight at `$now`: its
/// reservations that have not lapsed (on `$conn`, a connection or a
/// transaction of either database).
macro_rules! count_in_flight {
    ($conn:expr, $account_key:expr, $now:expr) => {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM gatehouse_password_checks WHERE account_key = ? AND expires_at > ?",
        )
        .bind($account_key)
        .bind($now)
        .fetch_one(&mut *$conn)
        .await?
    };
}

/// The account's counter row, locked for the rest of the transaction `$tx`
/// (a macro, as the statements run on whichever database's transaction).
macro_rules! lock_counters {
    ($tx:expr, $dialect:expr, $account_key:expr) => {
        sqlx::query_as::<_, AttemptsRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM gatehouse_login_attempts WHERE account_key = ?{}",
            $dialect.for_update()
        )))
        .bind($account_key)
        .fetch_optional(&mut *$tx)
        .await?
    };
}

/// Writes `$next` as the account's counters, in the transaction `$tx`.
macro_rules! write_counters {
    ($tx:expr, $account_key:expr, $next:expr, $now:expr) => {
        sqlx::query(
            "UPDATE gatehouse_login_attempts SET failures = ?, window_started_at = ?, \
             locked_until = ?, lockouts = ?, updated_at = ? WHERE account_key = ?",
        )
        .bind(i64::from($next.failures))
        .bind($next.window_started_at)
        .bind($next.locked_until)
        .bind(i64::from($next.lockouts))
        .bind($now)
        .bind($account_key)
        .execute(&mut *$tx)
        .await?
    };
}

impl Store {
    /// The counters as they are at `now`, without locking: a cheap look
    /// before the locked [`Store::admit_attempt`], for checks that wait.
    #[tracing::instrument(skip_all)]
    pub async fn attempts(&self, account_key: &str, now: i64) -> StoreResult<Attempts> {
        let found = on_pool!(self, conn => {
            let row: Option<AttemptsRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM gatehouse_login_attempts WHERE account_key = ?"
            )))
            .bind(account_key)
            .fetch_optional(&mut *conn)
            .await?;
            let in_flight = count_in_flight!(conn, account_key, now);
            (row, in_flight)
        });
        let (row, in_flight) = found;
        // No counters yet: nothing has failed.
        let row = row.unwrap_or(AttemptsRow {
            failures: 0,
            window_started_at: now,
            locked_until: 0,
            lockouts: 0,
        });
        Ok(row.with_in_flight(in_flight))
    }

    /// Records `check` if the policy admits one more check of its account
    /// at `now`; nothing is written otherwise.
    #[tracing::instrument(skip_all)]
    pub async fn admit_attempt(
        &self,
        check: &Reservation<'_>,
        now: i64,
        policy: &LockoutPolicy,
    ) -> StoreResult<Admission> {
        retry_conflicts(|| {
            self.update_attempts(check.account_key, now, |current| {
                match policy.admit(current, now) {
                    Admission::Admitted(next) => {
                        (Some(next), Some(check), Admission::Admitted(next))
                    }
                    refused => (None, None, refused),
                }
            })
        })
        .await
    }

    /// Removes the reservation `check_id` of `account_key` and books how
    /// its check ended; returns the end of the lock it started, if it did.
    #[tracing::instrument(skip_all)]
    pub async fn settle_attempt(
        &self,
        account_key: &str,
        check_id: &str,
        now: i64,
        policy: &LockoutPolicy,
        outcome: Outcome,
    ) -> StoreResult<Option<i64>> {
        retry_conflicts(|| self.settle_once(account_key, check_id, now, policy, outcome)).await
    }

    async fn settle_once(
        &self,
        account_key: &str,
        check_id: &str,
        now: i64,
        policy: &LockoutPolicy,
        outcome: Outcome,
    ) -> StoreResult<Option<i64>> {
        let dialect = self.dialect();
        on_pool!(self, conn => result {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            let Some(row) = lock_counters!(tx, dialect, account_key) else {
                // Swept while the check ran: nothing left to book it on.
                tx.commit().await?;
                return Ok(None);
            };
            sqlx::query("DELETE FROM gatehouse_password_checks WHERE account_key = ? AND id = ?")
                .bind(account_key)
                .bind(check_id)
                .execute(&mut *tx)
                .await?;
            let in_flight = count_in_flight!(tx, account_key, now);
            let (next, lock) = policy.settle(row.with_in_flight(in_flight), now, outcome);
            write_counters!(tx, account_key, next, now);
            tx.commit().await?;
            Ok(lock)
        })
    }

    /// Locks the counters of `account_key` (creating them if missing),
    /// lets `decide` look at them with the checks in flight, and writes
    /// what it returns (new counters, a reservation to record), all in one
    /// transaction, so concurrent checks of one account are serialised.
    async fn update_attempts<'r, T>(
        &self,
        account_key: &str,
        now: i64,
        decide: impl FnOnce(Attempts) -> (Option<Attempts>, Option<&'r Reservation<'r>>, T),
    ) -> StoreResult<T> {
        let dialect = self.dialect();
        on_pool!(self, conn => result {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO gatehouse_login_attempts \
                 (account_key, failures, window_started_at, locked_until, lockouts, updated_at) \
                 VALUES (?, 0, ?, 0, 0, ?){}",
                dialect.keep_existing_row("account_key")
            )))
            .bind(account_key)
            .bind(now)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let row = lock_counters!(tx, dialect, account_key).expect("the row was just ensured");
            // Only live reservations count; lapsed ones are left to the
            // sweep, as deleting a range here would take gap locks that make
            // concurrent checks of neighbouring accounts deadlock on MySQL.
            let in_flight = count_in_flight!(tx, account_key, now);
            let (next, reservation, answer) = decide(row.with_in_flight(in_flight));
            if let Some(next) = next {
                write_counters!(tx, account_key, next, now);
            }
            if let Some(reservation) = reservation {
                sqlx::query("INSERT INTO gatehouse_password_checks (account_key, id, expires_at) VALUES (?, ?, ?)")
                    .bind(reservation.account_key)
                    .bind(reservation.id)
                    .bind(reservation.expires_at)
                    .execute(&mut *tx)
                    .await?;
                // Writes the counter row even when the counters stay as they
                // were: on a multi-primary cluster only transactions that
                // wrote the same row conflict, and two admissions of one
                // account on two nodes must not both count the same checks
                // in flight.
                sqlx::query(
                    "UPDATE gatehouse_login_attempts SET admissions = admissions + 1 WHERE account_key = ?",
                )
                .bind(account_key)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(answer)
        })
    }

    /// Deletes what no longer matters, so guessing at made-up names cannot
    /// grow the tables without bound: plain failures once their window has
    /// passed, lockout history once it would be forgotten anyway, and
    /// reservations past their expiry.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_login_attempts(&self, now: i64, policy: &LockoutPolicy) -> StoreResult<u64> {
        let swept = on_pool!(self, conn => unbounded {
            let counters = sqlx::query(
                "DELETE FROM gatehouse_login_attempts WHERE locked_until < ? \
                 AND ((lockouts = 0 AND updated_at < ?) OR updated_at < ?)",
            )
            .bind(now)
            .bind(now - policy.window)
            .bind(now - policy.forget_after)
            .execute(&mut *conn)
            .await?
            .rows_affected();
            let checks = sqlx::query("DELETE FROM gatehouse_password_checks WHERE expires_at <= ?")
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected();
            counters + checks
        });
        Ok(swept)
    }
}
