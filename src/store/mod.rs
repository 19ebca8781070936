//! Persistence. [`Store`] is the only place SQL lives; handlers call its
//! methods and never see a query, and it never sees HTTP.
//!
//! It wraps one of two pools. Both databases speak `?` placeholders and most
//! statements are the same text, so each method is written once and run on
//! whichever pool is configured (see [`on_pool!`]); where the dialects part
//! (transaction start, row locks, DDL), the difference is spelled out in
//! [`Dialect`] or in the per-database migrations. Two copies of every query
//! would drift apart; this keeps one.

mod attempts;
mod audit;
mod changes;
mod keys;
mod migrate;
mod sessions;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlPool, MySqlPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub use attempts::Reservation;
pub use audit::{AuditFilter, AuditPage, AuditRow};
pub use changes::{FeedStart, SessionChange};
pub use keys::StoredKey;
pub use sessions::{LiveSession, Liveness, LogoutScope, NewSession, Refresh, SessionRow};
pub use users::{LoginColumn, NewUser, ProfileChanges, UserPage};

use crate::config::DatabaseUrl;

/// How long a request waits for a database connection before it is told
/// 503. SQLx's default of 30 s would look like a hang to every client; a
/// server that went away (refusing connections) is told within this.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an SQLite statement waits for another connection's write lock.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone, Debug)]
enum Backend {
    MySql(MySqlPool),
    Sqlite(SqlitePool),
}

/// The statements that differ between the two databases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    MySql,
    Sqlite,
}

impl Dialect {
    /// Opens a transaction that will write. SQLite must take its write lock
    /// up front: a deferred transaction that reads and then writes can fail
    /// to upgrade when another writer got in between.
    fn begin_write(self) -> &'static str {
        match self {
            Dialect::MySql => "BEGIN",
            Dialect::Sqlite => "BEGIN IMMEDIATE",
        }
    }

    /// Turns an INSERT into "insert unless a row with this key exists".
    fn keep_existing_row(self, key_column: &str) -> String {
        match self {
            Dialect::MySql => format!(" ON DUPLICATE KEY UPDATE {key_column} = {key_column}"),
            Dialect::Sqlite => format!(" ON CONFLICT ({key_column}) DO NOTHING"),
        }
    }

    /// Row locking for read-then-write checks. SQLite has no row locks; its
    /// `BEGIN IMMEDIATE` already serialises writers.
    fn for_update(self) -> &'static str {
        match self {
            Dialect::MySql => " FOR UPDATE",
            Dialect::Sqlite => "",
        }
    }
}

/// Runs `$body` with `$conn` bound to a connection from whichever pool the
/// store holds (see [`acquire`]). The body is compiled once per database,
/// so each gets its own type checking.
///
/// The whole of it (waiting for a connection, the statements, the commit)
/// must finish within [`QUERY_DEADLINE`], or the caller gets
/// [`StoreError::Unavailable`]: a database that stopped answering (paused,
/// cut off without a reset) must not hold requests forever. Three forms:
///
/// - `on_pool!(store, conn => body)`: `body` yields a value, and `?` in it
///   ends the operation with that error.
/// - `on_pool!(store, conn => result body)`: `body` yields a `StoreResult`
///   (and may `return` one).
/// - `on_pool!(store, conn => unbounded body)`: no deadline, for work that
///   may rightly take long (migrations, sweeps of many rows) and runs in the
///   background or before serving.
macro_rules! on_pool {
    ($store:expr, $conn:ident => result $body:expr) => {
        $crate::store::within_deadline(async {
            $crate::store::on_pool!(@run $store, $conn => $body)
        })
        .await
    };
    ($store:expr, $conn:ident => unbounded $body:expr) => {
        $crate::store::on_pool!(@run $store, $conn => $body)
    };
    (@run $store:expr, $conn:ident => $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::MySql(pool) => {
                let mut connection = $crate::store::acquire(pool).await?;
                let $conn = &mut *connection;
                $body
            }
            $crate::store::Backend::Sqlite(pool) => {
                let mut connection = $crate::store::acquire(pool).await?;
                let $conn = &mut *connection;
                $body
            }
        }
    };
    ($store:expr, $conn:ident => $body:expr) => {
        $crate::store::within_deadline(async {
            Ok::<_, $crate::store::StoreError>($crate::store::on_pool!(@run $store, $conn => $body))
        })
        .await?
    };
}
pub(crate) use on_pool;

/// [`on_pool!`] for a write whose body yields a value: the body runs again
/// when its transaction loses a race for locks (see [`retry_conflicts`]).
/// The body must decide everything from what it reads, and it captures
/// copies (ids, references), as it may run more than once.
macro_rules! writing {
    ($store:expr, $conn:ident => $body:expr) => {
        $crate::store::retry_conflicts(|| async move {
            Ok::<_, $crate::store::StoreError>($crate::store::on_pool!($store, $conn => $body))
        })
        .await?
    };
}
pub(crate) use writing;

/// How long one database operation may take (see [`on_pool!`]), its
/// reruns after conflicts included. Generous: a Galera cluster holds
/// commits while it decides that a silent node is gone (up to its 15 s
/// inactive timeout), and those commits then succeed; cutting one off would
/// answer 503 for a change that was made.
pub const QUERY_DEADLINE: Duration = Duration::from_secs(20);

/// Runs `operation`, giving up with [`StoreError::Unavailable`] after
/// [`QUERY_DEADLINE`]. Dropping it midway rolls an open transaction back.
pub(crate) async fn within_deadline<T>(
    operation: impl std::future::Future<Output = StoreResult<T>>,
) -> StoreResult<T> {
    tokio::time::timeout(QUERY_DEADLINE, operation)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(format!(
                "the database did not answer within {} s",
                QUERY_DEADLINE.as_secs()
            )))
        })
}

/// Takes a connection from `pool`, recording how long that took: when every
/// connection is busy, requests queue here, and the metric shows it.
pub(crate) async fn acquire<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<sqlx::pool::PoolConnection<DB>, sqlx::Error> {
    let started = std::time::Instant::now();
    let connection = pool.acquire().await;
    metrics::histogram!("gatehouse_db_pool_wait_seconds").record(started.elapsed().as_secs_f64());
    connection
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or is too busy: worth retrying.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The transaction lost a race for locks (a deadlock, a lock wait that
    /// timed out) and was rolled back: running it again is the remedy.
    #[error("transaction conflict: {0}")]
    Conflict(String),
    #[error("username taken")]
    UsernameTaken,
    #[error("email taken")]
    EmailTaken,
    #[error("would leave no enabled admin")]
    LastAdmin,
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Other(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// MySQL/MariaDB error numbers that mean "try again", not "your statement
/// is wrong": too many connections, server shutdown, a Galera node that is
/// not part of the cluster's primary component (1047), lost connection.
const MYSQL_TRANSIENT: &[u16] = &[1040, 1047, 1053, 2006, 2013];

/// On a Galera node, makes every read, update, delete and insert of this
/// connection wait until the node has applied everything the cluster had
/// committed when it was sent, so a user who registered through one node can
/// log in through another a moment later. Galera applies other nodes'
/// writes asynchronously otherwise. MySQL has no such variable (error 1193)
/// and a single server needs none; MariaDB without Galera ignores it.
async fn ask_for_causal_reads(conn: &mut sqlx::MySqlConnection) -> Result<(), sqlx::Error> {
    // 1 reads, 2 updates and deletes, 4 inserts and replaces.
    let asked = sqlx::query("SET SESSION wsrep_sync_wait = 7")
        .execute(conn)
        .await;
    match asked {
        Err(sqlx::Error::Database(db))
            if db
                .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                .is_some_and(|e| e.number() == 1193) =>
        {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// MySQL/MariaDB error numbers of a transaction that lost a race for locks
/// and was rolled back: lock wait timeout, deadlock.
const MYSQL_CONFLICT: &[u16] = &[1205, 1213];

/// How often a transaction that lost a race for locks is run again.
const CONFLICT_RETRIES: u32 = 4;

/// Runs `transaction` again, after a short random pause, while it fails
/// with a [`StoreError::Conflict`], a bounded number of times, all within
/// one [`QUERY_DEADLINE`]. Only for transactions that decide everything
/// from what they read under their own locks, so a rerun is a fresh,
/// correct decision.
pub(crate) async fn retry_conflicts<T, F, Fut>(mut transaction: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = StoreResult<T>>,
{
    within_deadline(async {
        let mut attempt = 0;
        loop {
            match transaction().await {
                Err(StoreError::Conflict(cause)) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    let pause =
                        rand::Rng::gen_range(&mut rand::thread_rng(), 2..20) * u64::from(attempt);
                    tracing::debug!(%cause, attempt, "transaction conflict; running it again");
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                other => return other,
            }
        }
    })
    .await
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        use sqlx::Error::*;
        match &e {
            PoolTimedOut | PoolClosed | Io(_) | Tls(_) | Protocol(_) | WorkerCrashed => {
                StoreError::Unavailable(e.to_string())
            }
            Database(db) if db.is_unique_violation() => {
                let index = violated_index(db.message());
                if index.contains("email_key") {
                    StoreError::EmailTaken
                } else if index.contains("username_key") {
                    StoreError::UsernameTaken
                } else {
                    StoreError::Other(e.to_string())
                }
            }
            Database(db) => {
                let sqlite_busy = is_sqlite_busy(db.as_ref());
                // `code()` is the SQLSTATE on MySQL; the error number says more.
                let mysql_number = db
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .map(|e| e.number());
                if mysql_number.is_some_and(|n| MYSQL_CONFLICT.contains(&n)) {
                    return StoreError::Conflict(e.to_string());
                }
                let mysql_transient = mysql_number.is_some_and(|n| MYSQL_TRANSIENT.contains(&n));
                if sqlite_busy || mysql_transient {
                    StoreError::Unavailable(e.to_string())
                } else {
                    StoreError::Other(e.to_string())
                }
            }
            _ => StoreError::Other(e.to_string()),
        }
    }
}

/// SQLITE_BUSY (5) and SQLITE_LOCKED (6), with their extended codes:
/// another connection holds the lock.
fn is_sqlite_busy(db: &dyn sqlx::error::DatabaseError) -> bool {
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
        && db
            .code()
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6))
}

/// The index named in a unique-violation message. MySQL says "Duplicate
/// entry '<value>' for key 'users_email_key'", SQLite "UNIQUE constraint
/// failed: users.email_key". The value comes first and may itself contain
/// "email_key", so only the text after the last marker is trusted.
fn violated_index(message: &str) -> &str {
    message
        .rsplit_once("for key ")
        .or_else(|| message.rsplit_once("failed: "))
        .map_or(message, |(_, index)| index)
}

impl Store {
    /// Opens a pool for `url` without touching the database yet; the first
    /// query (normally [`Store::migrate`]) connects.
    pub fn open(url: &DatabaseUrl) -> Result<Self, StoreError> {
        let backend = match url {
            DatabaseUrl::Sqlite(url) => {
                let options = SqliteConnectOptions::from_str(url)
                    .map_err(|e| StoreError::Other(format!("bad sqlite URL: {e}")))?;
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                if !in_memory {
                    create_private_file(options.get_filename())?;
                    make_private(options.get_filename())?;
                }
                let options = options
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .foreign_keys(true)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT);
                Backend::Sqlite(
                    SqlitePoolOptions::new()
                        .max_connections(8)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .connect_lazy_with(options),
                )
            }
            DatabaseUrl::MySql(url) => {
                let options = MySqlConnectOptions::from_str(url.expose())
                    .map_err(|_| StoreError::Other("bad mysql URL".into()))?;
                Backend::MySql(
                    MySqlPoolOptions::new()
                        .max_connections(16)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        .after_connect(|conn, _meta| {
                            Box::pin(async move {
                                // Strict mode turns would-be truncation into an
                                // error; input is validated first, so hitting
                                // it means a bug, not lost data.
                                sqlx::query(
                                    "SET SESSION sql_mode = 'STRICT_ALL_TABLES,\
                                     NO_ENGINE_SUBSTITUTION,ERROR_FOR_DIVISION_BY_ZERO,\
                                     NO_ZERO_DATE,NO_ZERO_IN_DATE', time_zone = '+00:00'",
                                )
                                .execute(&mut *conn)
                                .await?;
                                ask_for_causal_reads(conn).await
                            })
                        })
                        .connect_lazy_with(options),
                )
            }
        };
        Ok(Self { backend })
    }

    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::MySql(_) => Dialect::MySql,
            Backend::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// A round trip through a table gatehouse owns; used by `/health/ready`.
    #[tracing::instrument(skip_all)]
    pub async fn ping(&self) -> StoreResult<()> {
        on_pool!(self, conn => {
            sqlx::query("SELECT COUNT(*) FROM gatehouse_signing_keys WHERE generation < 0")
                .execute(conn)
                .await?;
        });
        Ok(())
    }

    /// Connections open in the pool, and how many of them are idle.
    pub fn pool_usage(&self) -> (u32, usize) {
        match &self.backend {
            Backend::MySql(pool) => (pool.size(), pool.num_idle()),
            Backend::Sqlite(pool) => (pool.size(), pool.num_idle()),
        }
    }

    pub async fn close(&self) {
        match &self.backend {
            Backend::MySql(pool) => pool.close().await,
            Backend::Sqlite(pool) => pool.close().await,
        }
    }
}

/// Creates the SQLite file, if it is missing, readable and writable by its
/// owner only: it holds password hashes and the signing keys. SQLite gives
/// the `-wal` and `-shm` files beside it the same permissions.
fn create_private_file(path: &std::path::Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Other(format!(
            "cannot create the SQLite file {}: {e}",
            path.display()
        ))),
    }
}

/// Takes every permission but the owner's away from the SQLite file and
/// its `-wal` and `-shm` companions, at every start: a file created by an
/// older release, copied, or restored from a backup may be readable by
/// others, and it holds password hashes and signing keys.
fn make_private(path: &std::path::Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mut companions = vec![path.to_path_buf()];
        for suffix in ["-wal", "-shm"] {
            let mut name = path.as_os_str().to_owned();
            name.push(suffix);
            companions.push(name.into());
        }
        for file in companions {
            let Ok(metadata) = std::fs::metadata(&file) else {
                continue;
            };
            let mode = metadata.permissions().mode() & 0o777;
            if mode & 0o077 == 0 {
                continue;
            }
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode & 0o700))
                .map_err(|e| {
                    StoreError::Other(format!(
                        "cannot restrict the permissions of {}: {e}",
                        file.display()
                    ))
                })?;
            tracing::warn!(
                file = %file.display(),
                from = format!("{mode:o}"),
                to = format!("{:o}", mode & 0o700),
                "the SQLite file was readable by others; its permissions are now the owner's only"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Seconds since the Unix epoch: the one time format in both schemas.
/// Integers sort, compare and round-trip identically on MySQL and SQLite,
/// with no time-zone conversion anywhere.
pub(crate) fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

pub(crate) fn to_datetime(seconds: i64) -> StoreResult<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .map_err(|_| StoreError::Other(format!("timestamp out of range: {seconds}")))
}
