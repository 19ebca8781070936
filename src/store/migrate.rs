//! Schema migrations that any number of instances may run at the same
//! moment, on one server or on a multi-primary cluster (Galera).
//!
//! SQLx's own runner takes `GET_LOCK`, which a Galera cluster keeps per
//! node, and records a failed MySQL migration as "dirty, fix by hand". So
//! gatehouse runs its migrations itself:
//!
//! - **One at a time, cluster-wide.** The instance that migrates holds a
//!   lease: a row in `gatehouse_migration_lock`, taken by inserting it. Two
//!   nodes inserting the same row conflict at commit on Galera, and on one
//!   server the primary key decides, so exactly one instance wins. It renews
//!   the lease while it works; a lease left by a process that died lapses.
//!   The others wait, then find nothing left to do.
//! - **Whole or completed later.** SQLite runs a migration and its record in
//!   one transaction. MySQL commits every DDL statement on its own, so a
//!   migration is first recorded as begun, then run statement by statement,
//!   then recorded as applied. A migration found begun but not applied is run
//!   again from the start, and a statement failing because its effect is
//!   already there (a table, column or index that exists) counts as done.
//! - **Names of its own.** Tables and bookkeeping carry the `gatehouse_`
//!   prefix, so an older backend's `users` table can share the database. A
//!   database made by the first releases (unprefixed tables, bookkept in
//!   SQLx's `_sqlx_migrations`) is brought up to date by their own
//!   migrations and then renamed in place, losing nothing. SQLx's
//!   bookkeeping is kept, with one more row that no earlier release knows,
//!   so an earlier release started on the renamed database refuses to run
//!   instead of creating empty tables beside the renamed ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rand::Rng;
use sqlx::migrate::{Migration, Migrator};
use uuid::Uuid;

use super::{Dialect, Store, StoreError, StoreResult, on_pool, writing};

static MYSQL: Migrator = sqlx::migrate!("migrations/mysql");
static SQLITE: Migrator = sqlx::migrate!("migrations/sqlite");
/// The first releases' migrations, kept unchanged: a database they made is
/// brought to their last version before its tables are renamed.
static LEGACY_MYSQL: Migrator = sqlx::migrate!("migrations/legacy/mysql");
static LEGACY_SQLITE: Migrator = sqlx::migrate!("migrations/legacy/sqlite");

/// The first releases' tables, and their names since.
const RENAMED_TABLES: &[(&str, &str)] = &[
    ("users", "gatehouse_users"),
    ("signing_keys", "gatehouse_signing_keys"),
    ("sessions", "gatehouse_sessions"),
    ("spent_refresh_tokens", "gatehouse_spent_refresh_tokens"),
    ("server_secrets", "gatehouse_server_secrets"),
    ("login_attempts", "gatehouse_login_attempts"),
    ("audit_events", "gatehouse_audit_events"),
    ("admin_guard", "gatehouse_admin_guard"),
    ("password_checks", "gatehouse_password_checks"),
    ("session_changes", "gatehouse_session_changes"),
];

/// The migration whose schema a renamed first-release database has.
const BASELINE_VERSION: i64 = 1;

/// The row added to `_sqlx_migrations` of a renamed database. Earlier
/// releases meet a migration they do not have and stop at start-up.
const MOVED_VERSION: i64 = 1_000_000;
const MOVED_DESCRIPTION: &str =
    "tables renamed to gatehouse_*; migrations now in gatehouse_migrations";

/// How often a migration that lost a conflict is taken up again.
const MIGRATION_CONFLICT_RETRIES: u32 = 10;

/// How long a migrating instance's lease lasts unless renewed; an instance
/// that died holding it delays the others by at most this.
const LEASE_SECONDS: i64 = 30;

/// MySQL errors that mean a statement's effect is already there: table,
/// column, index, foreign key or check constraint exists; nothing to drop.
const ALREADY_DONE: &[u16] = &[1050, 1060, 1061, 1091, 1826, 3822];

/// One migration's state in `gatehouse_migrations`.
#[derive(sqlx::FromRow)]
struct Record {
    version: i64,
    checksum: Vec<u8>,
    applied: bool,
}

impl Dialect {
    fn migrations(self) -> &'static Migrator {
        match self {
            Dialect::MySql => &MYSQL,
            Dialect::Sqlite => &SQLITE,
        }
    }

    /// The bookkeeping tables, by name.
    fn bookkeeping_tables(self) -> [(&'static str, &'static str); 2] {
        let [migrations, lock] = self.bookkeeping_ddl();
        [
            ("gatehouse_migrations", migrations),
            ("gatehouse_migration_lock", lock),
        ]
    }

    fn bookkeeping_ddl(self) -> [&'static str; 2] {
        match self {
            Dialect::MySql => [
                "CREATE TABLE IF NOT EXISTS gatehouse_migrations (\
                 version BIGINT NOT NULL, description VARCHAR(255) NOT NULL, \
                 checksum VARBINARY(64) NOT NULL, applied BOOLEAN NOT NULL, \
                 at BIGINT NOT NULL, PRIMARY KEY (version)) ENGINE = InnoDB",
                "CREATE TABLE IF NOT EXISTS gatehouse_migration_lock (\
                 id INT NOT NULL, holder CHAR(36) NOT NULL, expires_at BIGINT NOT NULL, \
                 PRIMARY KEY (id)) ENGINE = InnoDB",
            ],
            Dialect::Sqlite => [
                "CREATE TABLE IF NOT EXISTS gatehouse_migrations (\
                 version INTEGER NOT NULL PRIMARY KEY, description TEXT NOT NULL, \
                 checksum BLOB NOT NULL, applied INTEGER NOT NULL, at INTEGER NOT NULL) STRICT",
                "CREATE TABLE IF NOT EXISTS gatehouse_migration_lock (\
                 id INTEGER NOT NULL PRIMARY KEY, holder TEXT NOT NULL, \
                 expires_at INTEGER NOT NULL) STRICT",
            ],
        }
    }

    fn table_exists(self) -> &'static str {
        match self {
            Dialect::MySql => {
                "SELECT COUNT(*) FROM information_schema.tables \
                 WHERE table_schema = DATABASE() AND table_name = ?"
            }
            Dialect::Sqlite => {
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?"
            }
        }
    }

    /// The database server's clock in Unix seconds: leases are compared on
    /// one clock, whatever the instances' clocks say.
    fn server_now(self) -> &'static str {
        match self {
            Dialect::MySql => "UNIX_TIMESTAMP()",
            Dialect::Sqlite => "CAST(strftime('%s', 'now') AS INTEGER)",
        }
    }
}

impl Store {
    /// Applies pending migrations, or waits while another instance does.
    #[tracing::instrument(skip_all)]
    pub async fn migrate(&self) -> StoreResult<()> {
        let dialect = self.dialect();
        if self.schema_is_current(dialect).await? {
            return Ok(());
        }
        // Created only when missing: on Galera even a CREATE TABLE IF NOT
        // EXISTS is DDL that every node runs, and it aborts open writes to
        // the table, the migrating instance's among them.
        for (table, statement) in dialect.bookkeeping_tables() {
            if !self.table_exists(table).await? {
                on_pool!(self, conn => unbounded {
                    sqlx::raw_sql(statement).execute(conn).await?;
                });
            }
        }
        let lease = Lease::take(self).await?;
        let migrated = self.migrate_until_done(dialect, &lease).await;
        lease.give_back(self).await;
        migrated
    }

    /// Migrates, starting over when a write lost a conflict. On Galera the
    /// DDL another node runs (say a starting instance creating the
    /// bookkeeping tables it found missing) aborts this node's open
    /// transactions on those tables with a deadlock error; what was
    /// recorded says where to go on, as after any interruption.
    async fn migrate_until_done(&self, dialect: Dialect, lease: &Lease) -> StoreResult<()> {
        let mut conflicts = 0;
        loop {
            match self.migrate_under_lease(dialect, lease).await {
                Err(StoreError::Conflict(cause)) if conflicts < MIGRATION_CONFLICT_RETRIES => {
                    conflicts += 1;
                    tracing::info!(%cause, "a migration write lost a conflict; going on from what is recorded");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(conflicts))).await;
                }
                done => return done,
            }
        }
    }

    /// Whether every migration is applied: the start of every instance but
    /// the first, answered without a lock or any DDL.
    async fn schema_is_current(&self, dialect: Dialect) -> StoreResult<bool> {
        if !self.table_exists("gatehouse_migrations").await? {
            return Ok(false);
        }
        let records = self.migration_records().await?;
        let all_applied = dialect.migrations().iter().all(|migration| {
            records
                .iter()
                .any(|r| r.version == migration.version && r.applied)
        });
        Ok(all_applied && !self.is_first_release_database(dialect).await?)
    }

    async fn migrate_under_lease(&self, dialect: Dialect, lease: &Lease) -> StoreResult<()> {
        if self.is_first_release_database(dialect).await? {
            self.adopt_first_release_database(dialect).await?;
        }
        let records = self.migration_records().await?;
        for migration in dialect.migrations().iter() {
            let record = records.iter().find(|r| r.version == migration.version);
            match record {
                Some(r) if r.applied => continue,
                _ => {
                    lease.still_held()?;
                    tracing::info!(
                        version = migration.version,
                        description = %migration.description,
                        "applying migration"
                    );
                    match dialect {
                        Dialect::MySql => {
                            let resuming = record.is_some();
                            self.apply_statement_by_statement(migration, resuming, lease)
                                .await?
                        }
                        Dialect::Sqlite => self.apply_in_one_transaction(migration).await?,
                    }
                }
            }
        }
        Ok(())
    }

    /// Every recorded migration, checked against the ones this build has.
    async fn migration_records(&self) -> StoreResult<Vec<Record>> {
        let records: Vec<Record> = on_pool!(self, conn => {
            sqlx::query_as("SELECT version, checksum, applied FROM gatehouse_migrations")
                .fetch_all(conn)
                .await?
        });
        let known = self.dialect().migrations();
        for record in &records {
            let Some(migration) = known.iter().find(|m| m.version == record.version) else {
                return Err(StoreError::Other(format!(
                    "the database has migration {} applied, which this gatehouse does not \
                     know: it was migrated by a newer release; run that release or a newer one",
                    record.version
                )));
            };
            if record.applied && record.checksum != *migration.checksum {
                return Err(StoreError::Other(format!(
                    "migration {} ({}) differs from the one applied to this database",
                    migration.version, migration.description
                )));
            }
        }
        Ok(records)
    }

    async fn table_exists(&self, name: &str) -> StoreResult<bool> {
        let sql = self.dialect().table_exists();
        let count: i64 = on_pool!(self, conn => {
            sqlx::query_scalar(sql).bind(name).fetch_one(conn).await?
        });
        Ok(count > 0)
    }

    /// Whether this database was made by the first releases and is not
    /// renamed yet: SQLx's bookkeeping is there, its first migration is
    /// theirs, and the row that marks the move is missing.
    async fn is_first_release_database(&self, dialect: Dialect) -> StoreResult<bool> {
        if !self.table_exists("_sqlx_migrations").await? {
            return Ok(false);
        }
        let first = legacy_migrations(dialect)
            .iter()
            .next()
            .expect("a first migration");
        let (checksum, moved): (Option<Vec<u8>>, i64) = on_pool!(self, conn => {
            let checksum = sqlx::query_scalar("SELECT checksum FROM _sqlx_migrations WHERE version = ?")
                .bind(first.version)
                .fetch_optional(&mut *conn)
                .await?;
            let moved = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE version = ?")
                .bind(MOVED_VERSION)
                .fetch_one(&mut *conn)
                .await?;
            (checksum, moved)
        });
        Ok(moved == 0 && checksum.is_some_and(|c| c == *first.checksum))
    }

    /// Brings a first-release database to their last migration, renames its
    /// tables, records it as at the baseline and marks SQLx's bookkeeping as
    /// moved. Every step checks what is done, so a start cut short anywhere
    /// is completed by the next.
    async fn adopt_first_release_database(&self, dialect: Dialect) -> StoreResult<()> {
        tracing::info!("renaming the tables of a database made by an earlier release");
        let mut legacy = Migrator::with_migrations(legacy_migrations(dialect).migrations.to_vec());
        legacy.set_locking(false); // the lease is held already
        let ran = match &self.backend {
            super::Backend::MySql(pool) => legacy.run(pool).await,
            super::Backend::Sqlite(pool) => legacy.run(pool).await,
        };
        ran.map_err(|e| StoreError::Other(format!("earlier release's migrations: {e}")))?;

        let baseline = dialect
            .migrations()
            .iter()
            .find(|m| m.version == BASELINE_VERSION)
            .expect("the baseline migration exists");
        let renamed_already = self.table_exists("gatehouse_users").await?;
        on_pool!(self, conn => unbounded {
            match dialect {
                Dialect::MySql => {
                    // One RENAME TABLE statement renames all or none.
                    if !renamed_already {
                        let pairs: Vec<String> = RENAMED_TABLES
                            .iter()
                            .map(|(old, new)| format!("{old} TO {new}"))
                            .collect();
                        let sql = format!("RENAME TABLE {}", pairs.join(", "));
                        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
                    }
                    record_applied!(&mut *conn, dialect, baseline);
                    mark_moved!(&mut *conn, dialect);
                }
                Dialect::Sqlite => {
                    let mut tx = sqlx::Connection::begin_with(&mut *conn, dialect.begin_write()).await?;
                    for (old, new) in RENAMED_TABLES {
                        let sql = format!("ALTER TABLE {old} RENAME TO {new}");
                        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *tx).await?;
                    }
                    record_applied!(&mut *tx, dialect, baseline);
                    mark_moved!(&mut *tx, dialect);
                    tx.commit().await?;
                }
            }
        });
        Ok(())
    }

    /// SQLite: the migration and its record commit together or not at all.
    async fn apply_in_one_transaction(&self, migration: &Migration) -> StoreResult<()> {
        let dialect = self.dialect();
        on_pool!(self, conn => unbounded {
            // SQLite changes a column by rebuilding its table, and dropping
            // the old table would cascade to the rows that refer to it. As
            // SQLite's own procedure says, foreign keys are off for the
            // change (the pragma is ignored inside a transaction) and are
            // checked before it commits.
            sqlx::raw_sql("PRAGMA foreign_keys = OFF").execute(&mut *conn).await?;
            let applied: StoreResult<()> = async {
                let mut tx = sqlx::Connection::begin_with(&mut *conn, dialect.begin_write()).await?;
                sqlx::raw_sql(migration.sql.clone()).execute(&mut *tx).await?;
                let dangling = sqlx::query("PRAGMA foreign_key_check").fetch_all(&mut *tx).await?;
                if !dangling.is_empty() {
                    return Err(StoreError::Other(format!(
                        "migration {} would leave {} rows referring to nothing",
                        migration.version,
                        dangling.len()
                    )));
                }
                record_applied!(&mut *tx, dialect, migration);
                tx.commit().await?;
                Ok(())
            }
            .await;
            let restored = sqlx::raw_sql("PRAGMA foreign_keys = ON").execute(&mut *conn).await;
            applied?;
            restored?;
        });
        Ok(())
    }

    /// MySQL: recorded as begun, run one statement at a time, recorded as
    /// applied. `resuming` an earlier run that was cut short, statements
    /// whose effect is already there are passed over.
    async fn apply_statement_by_statement(
        &self,
        migration: &Migration,
        resuming: bool,
        lease: &Lease,
    ) -> StoreResult<()> {
        on_pool!(self, conn => unbounded {
            sqlx::query(
                "INSERT INTO gatehouse_migrations (version, description, checksum, applied, at) \
                 VALUES (?, ?, ?, FALSE, ?) ON DUPLICATE KEY UPDATE version = version",
            )
            .bind(migration.version)
            .bind(&*migration.description)
            .bind(&*migration.checksum)
            .bind(super::now())
            .execute(&mut *conn)
            .await?;
            for statement in statements(migration.sql.as_str()) {
                lease.still_held()?;
                let ran = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
                    .execute(&mut *conn)
                    .await;
                match ran {
                    Ok(_) => {}
                    Err(e) if resuming && mysql_number(&e).is_some_and(|n| ALREADY_DONE.contains(&n)) => {
                        tracing::info!(version = migration.version, error = %e, "statement had taken effect before");
                    }
                    Err(e) => {
                        tracing::error!(version = migration.version, %statement, error = %e, "migration failed");
                        return Err(e.into());
                    }
                }
            }
            // A resumed migration may have been begun by a release whose file
            // differed: what is applied now is this one.
            sqlx::query(
                "UPDATE gatehouse_migrations SET applied = TRUE, at = ?, description = ?, \
                 checksum = ? WHERE version = ?",
            )
            .bind(super::now())
            .bind(&*migration.description)
            .bind(&*migration.checksum)
            .bind(migration.version)
                .execute(&mut *conn)
                .await?;
        });
        Ok(())
    }
}

fn legacy_migrations(dialect: Dialect) -> &'static Migrator {
    match dialect {
        Dialect::MySql => &LEGACY_MYSQL,
        Dialect::Sqlite => &LEGACY_SQLITE,
    }
}

/// Records `$migration` as applied on `$conn` (a connection or a
/// transaction), keeping a record already there. A macro, as it runs on
/// whichever database's connection.
macro_rules! record_applied {
    ($conn:expr, $dialect:expr, $migration:expr) => {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO gatehouse_migrations (version, description, checksum, applied, at) \
             VALUES (?, ?, ?, TRUE, ?){}",
            $dialect.keep_existing_row("version")
        )))
        .bind($migration.version)
        .bind(&*$migration.description)
        .bind(&*$migration.checksum)
        .bind(super::now())
        .execute($conn)
        .await?
    };
}
use record_applied;

/// Adds the row that stops earlier releases to SQLx's bookkeeping on
/// `$conn`, keeping one already there.
macro_rules! mark_moved {
    ($conn:expr, $dialect:expr) => {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (?, ?, TRUE, ?, 0){}",
            $dialect.keep_existing_row("version")
        )))
        .bind(MOVED_VERSION)
        .bind(MOVED_DESCRIPTION)
        .bind(&[0u8][..])
        .execute($conn)
        .await?
    };
}
use mark_moved;

/// The statements of a migration file: each ends with `;` at the end of a
/// line; lines that start with `--` are comments. gatehouse's migration
/// files are written to that rule (no line inside a statement ends in `;`).
fn statements(sql: &str) -> Vec<String> {
    let mut statements = Vec::new();
    let mut current = String::new();
    for line in sql.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("--") || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        current.push_str(line);
        current.push('\n');
        if trimmed.ends_with(';') {
            statements.push(current.trim().trim_end_matches(';').to_owned());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        statements.push(current.trim().to_owned());
    }
    statements
}

/// Whether taking the lease failed because someone else holds it or took
/// it at the same moment: a duplicate key, a conflict at commit (Galera),
/// a busy SQLite file.
fn lost_the_race(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(db) = error else {
        return false;
    };
    db.is_unique_violation()
        || mysql_number(error).is_some_and(|n| super::MYSQL_CONFLICT.contains(&n))
        || super::is_sqlite_busy(db.as_ref())
}

fn mysql_number(error: &sqlx::Error) -> Option<u16> {
    match error {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
            .map(|e| e.number()),
        _ => None,
    }
}

/// The right to migrate, held by one instance at a time (see the module).
struct Lease {
    holder: String,
    renewal: tokio::task::JoinHandle<()>,
    /// Set by the renewal once the lease cannot be vouched for any more:
    /// another instance may take it, so this one must stop migrating.
    lost: Arc<AtomicBool>,
}

impl Lease {
    /// Waits until this instance holds the lease.
    async fn take(store: &Store) -> StoreResult<Self> {
        let holder = Uuid::new_v4().to_string();
        let started = tokio::time::Instant::now();
        let mut last_said = started;
        while !try_take(store, &holder).await? {
            if last_said.elapsed() >= Duration::from_secs(10) {
                tracing::info!(
                    waited_seconds = started.elapsed().as_secs(),
                    "another instance is migrating the database; waiting"
                );
                last_said = tokio::time::Instant::now();
            }
            let pause = rand::thread_rng().gen_range(150..400);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewal = tokio::spawn(renew_while_held(
            store.clone(),
            holder.clone(),
            lost.clone(),
        ));
        Ok(Self {
            holder,
            renewal,
            lost,
        })
    }

    /// Fails once the lease may have passed to another instance.
    fn still_held(&self) -> StoreResult<()> {
        if self.lost.load(Ordering::SeqCst) {
            return Err(StoreError::Other(
                "lost the migration lease (the database did not let it be renewed); \
                 the next start completes the migrations"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn give_back(self, store: &Store) {
        self.renewal.abort();
        let holder = self.holder.as_str();
        let released = async {
            writing!(store, conn => {
                sqlx::query("DELETE FROM gatehouse_migration_lock WHERE id = 1 AND holder = ?")
                    .bind(holder)
                    .execute(conn)
                    .await?;
            });
            Ok::<_, StoreError>(())
        };
        if let Err(e) = released.await {
            // The lease lapses on its own; the others wait that long.
            tracing::warn!(error = %e, "could not give the migration lease back");
        }
    }
}

/// Takes the lease if it is free or has lapsed. A lost race shows as a
/// duplicate key (one server) or a conflict at commit (Galera): not taken.
async fn try_take(store: &Store, holder: &str) -> StoreResult<bool> {
    let now = store.dialect().server_now();
    let insert = format!(
        "INSERT INTO gatehouse_migration_lock (id, holder, expires_at) VALUES (1, ?, {now} + {LEASE_SECONDS})"
    );
    let take_over = format!(
        "UPDATE gatehouse_migration_lock SET holder = ?, expires_at = {now} + {LEASE_SECONDS} \
         WHERE id = 1 AND expires_at < {now}"
    );
    on_pool!(store, conn => result {
        match sqlx::query(sqlx::AssertSqlSafe(insert)).bind(holder).execute(&mut *conn).await {
            Ok(_) => return Ok(true),
            Err(e) if lost_the_race(&e) => {}
            Err(e) => return Err(e.into()),
        }
        match sqlx::query(sqlx::AssertSqlSafe(take_over)).bind(holder).execute(&mut *conn).await {
            Ok(done) => Ok(done.rows_affected() == 1),
            Err(e) if lost_the_race(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    })
}

/// Renews the lease every third of its term while this instance migrates.
/// A renewal that finds the lease taken, or no successful renewal for two
/// thirds of the term, marks it `lost`.
async fn renew_while_held(store: Store, holder: String, lost: Arc<AtomicBool>) {
    let renew = format!(
        "UPDATE gatehouse_migration_lock SET expires_at = {} + {LEASE_SECONDS} \
         WHERE id = 1 AND holder = ?",
        store.dialect().server_now()
    );
    let term = Duration::from_secs(LEASE_SECONDS as u64);
    let mut renewed_at = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(term / 3).await;
        let renewed = async {
            Ok::<_, StoreError>(on_pool!(store, conn => {
                sqlx::query(sqlx::AssertSqlSafe(renew.clone()))
                    .bind(&holder)
                    .execute(conn)
                    .await?
                    .rows_affected()
            }))
        };
        match renewed.await {
            Ok(1) => renewed_at = tokio::time::Instant::now(),
            Ok(_) => {
                tracing::error!("the migration lease was taken by another instance");
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not renew the migration lease");
                if renewed_at.elapsed() >= term * 2 / 3 {
                    lost.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_split_at_semicolons_that_end_lines_and_skip_comments() {
        let sql = "-- a comment; with a semicolon;\n\
                   CREATE TABLE a (\n  x INT\n);\n\n\
                   -- another\n\
                   INSERT INTO a VALUES (1);\n\
                   ALTER TABLE a ADD COLUMN y INT";
        assert_eq!(
            statements(sql),
            vec![
                "CREATE TABLE a (\n  x INT\n)".to_owned(),
                "INSERT INTO a VALUES (1)".to_owned(),
                "ALTER TABLE a ADD COLUMN y INT".to_owned(),
            ]
        );
    }

    #[test]
    fn every_mysql_migration_splits_into_whole_statements() {
        for migration in MYSQL.iter() {
            for statement in statements(migration.sql.as_str()) {
                assert!(!statement.contains(';'), "{statement}");
                let first = statement.split_whitespace().next().unwrap();
                assert!(
                    ["CREATE", "ALTER", "INSERT", "DROP", "DELETE", "UPDATE"].contains(&first),
                    "migration {}: {statement}",
                    migration.version
                );
            }
        }
    }

    #[test]
    fn both_databases_have_the_same_migrations() {
        let versions = |m: &Migrator| m.iter().map(|m| m.version).collect::<Vec<_>>();
        assert_eq!(versions(&MYSQL), versions(&SQLITE));
        assert!(versions(&MYSQL).contains(&BASELINE_VERSION));
    }
}
