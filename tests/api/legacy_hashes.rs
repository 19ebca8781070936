//! Password hashes made by the older backends' libraries (the fixture
//! tests/fixtures/legacy_hashes.json): a login with the old password works,
//! even one today's rules refuse, and replaces the hash with argon2id.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TestApp, assert_problem};
use crate::on_both_databases;

on_both_databases!(old_hashes_log_in_once_and_are_upgraded);

/// One fixture hash per scheme, for the password `password123` (hashed at
/// a low cost, so the test stays quick).
fn one_per_scheme() -> Vec<(String, String)> {
    let rows: Vec<Value> =
        serde_json::from_str(include_str!("../fixtures/legacy_hashes.json")).unwrap();
    let mut picked: Vec<(String, String)> = Vec::new();
    for row in rows {
        let scheme = row["scheme"].as_str().unwrap().to_owned();
        if row["password"] == "password123" && !picked.iter().any(|(s, _)| *s == scheme) {
            picked.push((scheme, row["hash"].as_str().unwrap().to_owned()));
        }
    }
    picked
}

async fn old_hashes_log_in_once_and_are_upgraded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    let hashes = one_per_scheme();
    assert!(hashes.len() >= 14, "{hashes:?}");
    for (i, (scheme, hash)) in hashes.iter().enumerate() {
        let name = format!("old{i}");
        app.register(&name).await;
        app.db
            .execute(&format!(
                "UPDATE gatehouse_users SET password_hash = '{hash}' WHERE username = '{name}'"
            ))
            .await;
        // A wrong password is refused like any other.
        let wrong = app
            .post(
                "/auth/login",
                json!({"username": name, "password": "password124"}),
            )
            .await;
        assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        // The old password logs in, though today's rules would refuse it.
        let token = app.login(&name, "password123").await;
        assert_eq!(
            app.get("/me", &token).await.status(),
            StatusCode::OK,
            "{scheme}"
        );
        let stored = app
            .db
            .texts(&format!(
                "SELECT password_hash FROM gatehouse_users WHERE username = '{name}'"
            ))
            .await;
        assert!(
            stored[0].starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{scheme}: {}",
            stored[0]
        );
        // And goes on logging in with the new hash; the registration
        // password never worked again.
        app.login(&name, "password123").await;
        let original = app
            .post(
                "/auth/login",
                json!({"username": name, "password": PASSWORD}),
            )
            .await;
        assert_eq!(original.status(), StatusCode::UNAUTHORIZED);
    }
    let events: Value = app
        .get("/admin/audit?kind=password_upgraded&limit=100", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(events["events"].as_array().unwrap().len(), hashes.len());
    // A hash gatehouse cannot read fails the login, and never answers 500.
    app.register("broken").await;
    app.db
        .execute(
            "UPDATE gatehouse_users SET password_hash = 'md5$x$0123' WHERE username = 'broken'",
        )
        .await;
    let refused = app
        .post(
            "/auth/login",
            json!({"username": "broken", "password": PASSWORD}),
        )
        .await;
    assert_problem(refused, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}
