//! Migrations: many instances starting at once, a database made by the
//! first releases (unprefixed tables), a database shared with an older
//! backend's `users` and `user` tables, and a migration cut short.

use std::process::Command;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;
use sqlx::migrate::Migrator;

use crate::harness::{Backend, PASSWORD, Settings, TestApp, TestDatabase};
use crate::on_both_databases;

on_both_databases!(
    instances_starting_together_apply_each_migration_once,
    a_first_release_database_is_renamed_with_nothing_lost,
    a_fresh_install_lives_beside_an_older_backends_tables,
    a_migration_cut_short_is_completed_by_the_next_start,
    a_lease_left_by_a_dead_instance_lapses,
    a_database_migrated_by_a_newer_release_is_refused,
);

static LEGACY_MYSQL: Migrator = sqlx::migrate!("migrations/legacy/mysql");
static LEGACY_SQLITE: Migrator = sqlx::migrate!("migrations/legacy/sqlite");

fn gatehouse_migrate(db: &TestDatabase) -> Command {
    let mut command = crate::cli::gatehouse(db);
    command.arg("migrate");
    command
}

async fn tables(db: &TestDatabase) -> Vec<String> {
    let query = match db.backend {
        Backend::Sqlite => "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name",
        Backend::MySql => {
            "SELECT CAST(table_name AS CHAR) FROM information_schema.tables \
             WHERE table_schema = DATABASE() ORDER BY table_name"
        }
    };
    db.texts(query).await
}

async fn applied_migrations(db: &TestDatabase) -> Vec<String> {
    db.texts(
        "SELECT CAST(version AS CHAR) FROM gatehouse_migrations WHERE applied = TRUE ORDER BY version",
    )
    .await
}

async fn instances_starting_together_apply_each_migration_once(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let children: Vec<_> = (0..6)
        .map(|_| {
            gatehouse_migrate(&db)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(applied_migrations(&db).await, ["1", "2", "3", "4"]);
    let app = TestApp::spawn_on(db, Settings::new()).await;
    app.register("alice").await;
}

async fn a_first_release_database_is_renamed_with_nothing_lost(backend: Backend) {
    // A database made by the first releases, at their last migration and
    // part way through them.
    for reached in [6, 3] {
        let db = Arc::new(TestDatabase::create(backend).await);
        let legacy = match backend {
            Backend::Sqlite => &LEGACY_SQLITE,
            Backend::MySql => &LEGACY_MYSQL,
        };
        let mut first_releases = Migrator::with_migrations(
            legacy
                .migrations
                .iter()
                .filter(|m| m.version <= reached)
                .cloned()
                .collect(),
        );
        first_releases.set_locking(false);
        match backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&format!("{}?mode=rwc", db.url))
                    .await
                    .unwrap();
                first_releases.run(&pool).await.unwrap();
                pool.close().await;
            }
            Backend::MySql => {
                let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
                first_releases.run(&pool).await.unwrap();
                pool.close().await;
            }
        }
        // Alice, with a password hash and a session, as those releases
        // stored them.
        let hash = crate::harness::argon2_hash(PASSWORD);
        db.execute(&format!(
            "INSERT INTO users (id, username, username_key, email, email_key, name, \
             password_hash, role, disabled, created_at, updated_at) VALUES \
             ('0193a3e1-0000-7000-8000-000000000001', 'Alice', 'alice', 'alice@example.com', \
             'alice@example.com', 'Alice A.', '{hash}', 'user', FALSE, 1700000000, 1700000000)"
        ))
        .await;
        db.execute(
            "INSERT INTO sessions (id, user_id, refresh_hash, rotated_at, created_at, \
             last_used_at, expires_at) VALUES ('0193a3e1-0000-7000-8000-0000000000aa', \
             '0193a3e1-0000-7000-8000-000000000001', 'aaaa', 1, 1, 4000000000, 4000000000)",
        )
        .await;

        let app = TestApp::spawn_on(db.clone(), Settings::new()).await;
        let names = tables(&db).await;
        for old in ["users", "sessions", "signing_keys"] {
            assert!(!names.contains(&old.to_owned()), "{old} is gone: {names:?}");
        }
        for new in [
            "gatehouse_users",
            "gatehouse_sessions",
            "gatehouse_migrations",
        ] {
            assert!(names.contains(&new.to_owned()), "{new} exists: {names:?}");
        }
        assert_eq!(applied_migrations(&db).await, ["1", "2", "3", "4"]);
        assert_eq!(
            db.texts("SELECT id FROM gatehouse_sessions").await,
            ["0193a3e1-0000-7000-8000-0000000000aa"]
        );
        // Alice logs in with her old password, by name and by email, and
        // her profile and role came along.
        let token = app.login("alice", PASSWORD).await;
        let by_email = app
            .post(
                "/auth/login",
                json!({"email": "ALICE@example.com", "password": PASSWORD}),
            )
            .await;
        assert_eq!(by_email.status(), StatusCode::OK);
        let me: serde_json::Value = app.get("/me", &token).await.json().await.unwrap();
        assert_eq!(me["username"], "Alice");
        assert_eq!(me["name"], "Alice A.");
        assert_eq!(me["role"], "user");
        // The foreign keys followed the rename: deleting her ends her sessions.
        let deleted = app
            .request(
                reqwest::Method::DELETE,
                "/me",
                Some(&token),
                Some(json!({"password": PASSWORD})),
            )
            .await;
        assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
        assert!(
            db.texts("SELECT id FROM gatehouse_sessions")
                .await
                .is_empty()
        );

        // Starting again finds nothing to do.
        let again = gatehouse_migrate(&db).output().unwrap();
        assert!(again.status.success());

        // An earlier release started on the renamed database refuses to run,
        // instead of creating empty tables beside the renamed ones.
        let refused = match backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&db.url).await.unwrap();
                legacy.run(&pool).await
            }
            Backend::MySql => {
                let pool = sqlx::MySqlPool::connect(&db.url).await.unwrap();
                legacy.run(&pool).await
            }
        };
        assert!(
            matches!(refused, Err(sqlx::migrate::MigrateError::VersionMissing(_))),
            "{refused:?}"
        );
        assert!(!tables(&db).await.contains(&"users".to_owned()));
    }
}

async fn a_fresh_install_lives_beside_an_older_backends_tables(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    // The Flask and FastAPI backends' own tables, with a row each.
    db.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(80) NOT NULL, \
         email VARCHAR(120), password_hash VARCHAR(255))",
    )
    .await;
    db.execute("INSERT INTO users VALUES (1, 'legacy', 'legacy@example.com', 'pbkdf2:sha256$x')")
        .await;
    let user_table = match backend {
        Backend::Sqlite => "\"user\"",
        Backend::MySql => "`user`",
    };
    db.execute(&format!(
        "CREATE TABLE {user_table} (id INTEGER PRIMARY KEY, name VARCHAR(80))"
    ))
    .await;
    db.execute(&format!("INSERT INTO {user_table} VALUES (7, 'old')"))
        .await;

    let app = TestApp::spawn_on(db.clone(), Settings::new()).await;
    app.register("alice").await;
    app.login("alice", PASSWORD).await;
    assert_eq!(
        db.texts("SELECT username FROM users").await,
        ["legacy"],
        "the older backend's table is untouched"
    );
    assert_eq!(
        db.texts(&format!("SELECT name FROM {user_table}")).await,
        ["old"]
    );
    assert_eq!(
        db.texts("SELECT username FROM gatehouse_users").await,
        ["alice"]
    );
}

async fn a_migration_cut_short_is_completed_by_the_next_start(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let first = gatehouse_migrate(&db).output().unwrap();
    assert!(first.status.success());
    undo_part_of_migration_2(&db).await;
    let app = TestApp::spawn_on(db.clone(), Settings::new().unset("JWT_SECRET")).await;
    assert_eq!(applied_migrations(&db).await, ["1", "2", "3", "4"]);
    app.register("alice").await;
    let token = app.login("alice", PASSWORD).await;
    assert_eq!(app.get("/me", &token).await.status(), StatusCode::OK);
    assert_eq!(
        db.texts("SELECT CAST(signs_from AS CHAR) FROM gatehouse_signing_keys")
            .await
            .len(),
        1
    );
}

async fn a_lease_left_by_a_dead_instance_lapses(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let first = gatehouse_migrate(&db).output().unwrap();
    assert!(first.status.success());
    // A migration is pending and an instance died holding the lease, which
    // lapses two seconds from now.
    undo_part_of_migration_2(&db).await;
    let soon = gatehouse_now() + 2;
    db.execute(&format!(
        "INSERT INTO gatehouse_migration_lock (id, holder, expires_at) VALUES (1, 'dead', {soon})"
    ))
    .await;
    let started = std::time::Instant::now();
    let output = gatehouse_migrate(&db).output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(900),
        "it waited for the lease"
    );
    assert_eq!(applied_migrations(&db).await, ["1", "2", "3", "4"]);
    assert!(
        db.texts("SELECT holder FROM gatehouse_migration_lock")
            .await
            .is_empty(),
        "the lease was given back"
    );
}

async fn a_database_migrated_by_a_newer_release_is_refused(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    assert!(gatehouse_migrate(&db).output().unwrap().status.success());
    db.execute(
        "INSERT INTO gatehouse_migrations (version, description, checksum, applied, at) \
         VALUES (99, 'from the future', X'00', TRUE, 0)",
    )
    .await;
    let output = gatehouse_migrate(&db).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("migration 99"), "{stderr}");
    assert!(stderr.contains("newer release"), "{stderr}");
}

/// Puts the database back to where a start that died inside migration 2
/// leaves it. On MySQL its first statements took effect and the last did
/// not, and the migration is recorded as begun; on SQLite a migration is one
/// transaction, so nothing of it is there and nothing is recorded.
async fn undo_part_of_migration_2(db: &TestDatabase) {
    match db.backend {
        Backend::MySql => {
            db.execute("UPDATE gatehouse_migrations SET applied = FALSE WHERE version = 2")
                .await;
            db.execute(
                "ALTER TABLE gatehouse_signing_keys DROP COLUMN signs_from, DROP COLUMN retired_at",
            )
            .await;
        }
        Backend::Sqlite => {
            db.execute("DELETE FROM gatehouse_migrations WHERE version = 2")
                .await;
            for column in ["signs_from", "retired_at"] {
                db.execute(&format!(
                    "ALTER TABLE gatehouse_signing_keys DROP COLUMN {column}"
                ))
                .await;
            }
            db.execute("ALTER TABLE gatehouse_admin_guard DROP COLUMN changes")
                .await;
            db.execute("ALTER TABLE gatehouse_login_attempts DROP COLUMN admissions")
                .await;
        }
    }
}

fn gatehouse_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}
