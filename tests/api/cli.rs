//! The binary as an operator uses it.

use std::process::Command;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{Backend, PASSWORD, Settings, TestApp, TestDatabase};
use crate::on_both_databases;

on_both_databases!(
    user_create_makes_an_admin_who_can_list_users,
    migrate_prepares_the_database_and_exits,
    health_exits_0_for_a_ready_server_and_1_for_none,
    only_the_working_directory_s_env_file_is_read,
);

/// The gatehouse binary, configured for `db` as an operator would run it.
pub fn gatehouse(db: &TestDatabase) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &db.url)
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .env("RUST_LOG", "warn")
        .current_dir(std::env::temp_dir());
    command
}

async fn user_create_makes_an_admin_who_can_list_users(backend: Backend) {
    let db = std::sync::Arc::new(TestDatabase::create(backend).await);
    let output = gatehouse(&db)
        .args([
            "user",
            "create",
            "--username",
            "root",
            "--email",
            "root@example.com",
            "--role",
            "admin",
        ])
        .env("GATEHOUSE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(printed.contains("root") && !printed.contains(PASSWORD));
    let database = match backend {
        Backend::Sqlite => " in the SQLite file ",
        Backend::MySql => " in the MySQL database ",
    };
    assert!(printed.contains(database), "{printed}");

    let again = gatehouse(&db)
        .args(["user", "create", "--username", "ROOT"])
        .env("GATEHOUSE_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("username taken"));

    let weak = gatehouse(&db)
        .args(["user", "create", "--username", "weakling"])
        .env("GATEHOUSE_PASSWORD", "password")
        .output()
        .unwrap();
    assert!(!weak.status.success());

    let app = TestApp::spawn_on(db, Settings::new()).await;
    let token = app.login("root", PASSWORD).await;
    let response = app.get("/admin/users", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page: serde_json::Value = response.json().await.unwrap();
    assert_eq!(page["users"][0]["role"], "admin");
    assert_eq!(
        page["users"].as_array().unwrap().len(),
        1,
        "the weak password created nothing"
    );
}

async fn migrate_prepares_the_database_and_exits(backend: Backend) {
    let db = std::sync::Arc::new(TestDatabase::create(backend).await);
    for _ in 0..2 {
        let output = gatehouse(&db).arg("migrate").output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let app = TestApp::spawn_on(db, Settings::new()).await;
    let created = app
        .post(
            "/auth/register",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
}

async fn health_exits_0_for_a_ready_server_and_1_for_none(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let db = app.db.clone();
    let health = |addr: String| {
        gatehouse(&db)
            .arg("health")
            .env("BIND_ADDR", addr)
            .output()
            .unwrap()
    };
    let ready = health(app.addr.to_string());
    assert!(
        ready.status.success(),
        "{}",
        String::from_utf8_lossy(&ready.stderr)
    );
    // A port nothing listens on: the one the server had, once stopped.
    let addr = app.addr.to_string();
    app.stop().await;
    let gone = health(addr.clone());
    assert_eq!(gone.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert!(stderr.contains(&addr), "{stderr}");
}

#[test]
fn a_short_secret_stops_start_up_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["JWT_SECRET", "SECRET_KEY", "JWT_SECRET_KEY"] {
        let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .env_clear()
            .env(name, "too-short-secret")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/x.db", dir.path().display()),
            )
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(name), "{stderr}");
        assert!(
            !stderr.contains("too-short-secret"),
            "the secret is not printed"
        );
    }
}

#[test]
fn a_bad_setting_names_its_variable() {
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .env_clear()
        .env("ACCESS_TOKEN_EXPIRE_MINUTES", "soon")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1);
    assert!(stderr.contains("ACCESS_TOKEN_EXPIRE_MINUTES"));
}

#[test]
fn help_lists_every_command() {
    let output = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for command in ["serve", "migrate", "user", "keys", "health"] {
        assert!(help.contains(command), "{help}");
    }
}

async fn only_the_working_directory_s_env_file_is_read(backend: Backend) {
    let db = TestDatabase::create(backend).await;
    let root = tempfile::tempdir().unwrap();
    let nested = root.path().join("deploy").join("gatehouse");
    std::fs::create_dir_all(&nested).unwrap();
    // A short secret is refused at start-up, so whether a `.env` was read
    // shows in the exit status.
    std::fs::write(root.path().join(".env"), "JWT_SECRET=read-from-a-parent\n").unwrap();
    let output = gatehouse(&db)
        .arg("migrate")
        .current_dir(&nested)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "a .env two levels up was read: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(nested.join(".env"), "JWT_SECRET=read-from-here\n").unwrap();
    let output = gatehouse(&db)
        .arg("migrate")
        .current_dir(&nested)
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "the working directory's .env is read"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("JWT_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("read-from-here"),
        "the secret is not echoed"
    );
}
