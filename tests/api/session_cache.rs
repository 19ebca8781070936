//! Guarded requests answered from memory (`SESSION_CACHE_MS`), and the
//! promises that hold all the same: a revocation is refused on the next
//! request of the instance that made it and within the window on every
//! other instance; a profile change shows in `GET /me` as fast; memory
//! holds only sessions the database vouched for; and when the database
//! cannot be asked, nothing stale is served.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{
    Backend, PASSWORD, Settings, TEST_SECRET, TestApp, assert_problem, jwt_claims, jwt_header,
};
use crate::on_both_databases;

on_both_databases!(
    a_revocation_holds_at_once_here_and_within_the_window_elsewhere,
    a_profile_change_shows_on_other_instances_within_the_window,
    a_role_change_elsewhere_refuses_the_old_token_within_the_window,
    forged_session_ids_do_not_fill_the_memory,
    a_zero_window_asks_the_database_every_time,
);

#[cfg(mysql_tests)]
mod mysql_only {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_that_commits_late_is_not_missed() {
        super::a_revocation_that_commits_late_is_not_missed(crate::harness::Backend::MySql).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_that_cannot_read_the_feed_answers_503_not_a_stale_yes() {
        super::an_instance_that_cannot_read_the_feed_answers_503_not_a_stale_yes(
            crate::harness::Backend::MySql,
        )
        .await;
    }
}

/// The window these tests run with, and how long a change may take to
/// show: the window, plus room for a loaded machine.
const WINDOW_MS: u64 = 1000;
const SHOWS_WITHIN: Duration = Duration::from_millis(2 * WINDOW_MS + 500);

fn window() -> Settings {
    Settings::new().set("SESSION_CACHE_MS", &WINDOW_MS.to_string())
}

/// Two instances on one database.
async fn two_instances(backend: Backend) -> (TestApp, TestApp) {
    let a = TestApp::spawn_with(backend, window()).await;
    let b = TestApp::spawn_on(a.db.clone(), window()).await;
    (a, b)
}

/// Asks `GET /me` on `app` until `done` says the answer is the expected
/// one; returns how long that took, or panics after `SHOWS_WITHIN`.
async fn until(app: &TestApp, token: &str, done: impl Fn(StatusCode, &Value) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        let response = app.get("/me", token).await;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if done(status, &body) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < SHOWS_WITHIN,
            "still {status} {body} after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Lets an instance's first read of the change feed happen, after which it
/// answers from memory.
async fn warmed(app: &TestApp, token: &str) {
    for _ in 0..3 {
        assert_eq!(app.get("/me", token).await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(WINDOW_MS / 4)).await;
    }
}

async fn a_revocation_holds_at_once_here_and_within_the_window_elsewhere(backend: Backend) {
    let (a, b) = two_instances(backend).await;
    a.register("alice").await;
    let token = a.login("alice", PASSWORD).await;
    warmed(&a, &token).await;
    warmed(&b, &token).await;
    assert!(!b.state.session_cache.is_empty(), "b answers from memory");
    let response = a
        .request(
            Method::POST,
            "/auth/logout",
            Some(&token),
            Some(json!({"scope": "global"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // The instance that revoked refuses the very next request.
    assert_problem(
        a.get("/me", &token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // The other, within the window.
    until(&b, &token, |status, _| status == StatusCode::UNAUTHORIZED).await;
}

async fn a_profile_change_shows_on_other_instances_within_the_window(backend: Backend) {
    let (a, b) = two_instances(backend).await;
    a.register("alice").await;
    let token = a.login("alice", PASSWORD).await;
    warmed(&b, &token).await;
    let response = a
        .request(
            Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"name": "Alice Liddell"})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let here: Value = a.get("/me", &token).await.json().await.unwrap();
    assert_eq!(here["name"], "Alice Liddell", "at once where it was made");
    until(&b, &token, |status, body| {
        status == StatusCode::OK && body["name"] == "Alice Liddell"
    })
    .await;
    // A password change moves `updated_at`, on a session it leaves alive.
    let before: Value = b.get("/me", &token).await.json().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = a
        .request(
            Method::PUT,
            "/me/password",
            Some(&token),
            Some(
                json!({"current_password": PASSWORD, "new_password": "a brand new secret phrase"}),
            ),
        )
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    until(&b, &token, |status, body| {
        status == StatusCode::OK && body["updated_at"] != before["updated_at"]
    })
    .await;
}

async fn a_role_change_elsewhere_refuses_the_old_token_within_the_window(backend: Backend) {
    let (a, b) = two_instances(backend).await;
    let admin = a.admin_token("root").await;
    let bob = a.register("bob").await;
    let token = a.login("bob", PASSWORD).await;
    warmed(&b, &token).await;
    let response = a
        .request(
            Method::PATCH,
            &format!("/admin/users/{}", bob["id"].as_str().unwrap()),
            Some(&admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    until(&b, &token, |status, _| status == StatusCode::UNAUTHORIZED).await;
}

/// Tokens signed with the real secret but naming sessions that do not
/// exist: every one is refused by the database, and none is remembered.
async fn forged_session_ids_do_not_fill_the_memory(backend: Backend) {
    let app = TestApp::spawn_with(backend, window()).await;
    app.register("alice").await;
    let token = app.login("alice", PASSWORD).await;
    warmed(&app, &token).await;
    let held = app.state.session_cache.len();
    let header = jwt_header(&token);
    let claims = jwt_claims(&token);
    for _ in 0..200 {
        let mut forged = claims.clone();
        forged["sid"] = json!(uuid::Uuid::now_v7());
        forged["jti"] = json!(uuid::Uuid::now_v7());
        let mut jwt_header = Header::new(Algorithm::HS256);
        jwt_header.typ = header["typ"].as_str().map(str::to_owned);
        jwt_header.kid = header["kid"].as_str().map(str::to_owned);
        let forged = jsonwebtoken::encode(
            &jwt_header,
            &forged,
            &EncodingKey::from_secret(TEST_SECRET.as_bytes()),
        )
        .unwrap();
        assert_problem(
            app.get("/me", &forged).await,
            StatusCode::UNAUTHORIZED,
            "invalid_token",
        )
        .await;
    }
    assert_eq!(app.state.session_cache.len(), held);
}

async fn a_zero_window_asks_the_database_every_time(backend: Backend) {
    let settings = Settings::new().set("SESSION_CACHE_MS", "0");
    let a = TestApp::spawn_with(backend, settings).await;
    let b = TestApp::spawn_on(a.db.clone(), Settings::new().set("SESSION_CACHE_MS", "0")).await;
    a.register("alice").await;
    let token = a.login("alice", PASSWORD).await;
    assert_eq!(b.get("/me", &token).await.status(), StatusCode::OK);
    assert!(b.state.session_cache.is_empty());
    let response = a
        .request(Method::POST, "/auth/logout", Some(&token), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // No window at all: refused on the very next request everywhere.
    assert_problem(
        b.get("/me", &token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

/// A revocation whose transaction took its change number first but
/// committed after a later change: the other instance has already read
/// past that number, and must still see it once it commits. MySQL only:
/// SQLite lets one writer at a time, so no transaction commits late there.
#[cfg_attr(not(mysql_tests), allow(dead_code))]
async fn a_revocation_that_commits_late_is_not_missed(backend: Backend) {
    use sqlx::{Connection, Executor};
    let (a, b) = two_instances(backend).await;
    a.register("alice").await;
    a.register("bob").await;
    let alice = a.login("alice", PASSWORD).await;
    let bob = a.login("bob", PASSWORD).await;
    warmed(&b, &alice).await;
    warmed(&b, &bob).await;
    let alice_sid = jwt_claims(&alice)["sid"].as_str().unwrap().to_owned();
    let alice_id = jwt_claims(&alice)["sub"].as_str().unwrap().to_owned();

    // Alice's session ends in a transaction that takes its change number
    // now and commits later.
    let mut slow = sqlx::MySqlConnection::connect(&a.db.url).await.unwrap();
    slow.execute("BEGIN").await.unwrap();
    sqlx::query("DELETE FROM gatehouse_sessions WHERE id = ?")
        .bind(&alice_sid)
        .execute(&mut slow)
        .await
        .unwrap();
    sqlx::query("INSERT INTO gatehouse_session_changes (user_id, at) VALUES (?, UNIX_TIMESTAMP())")
        .bind(&alice_id)
        .execute(&mut slow)
        .await
        .unwrap();
    // A later change (bob's logout) commits first, and b reads past it.
    let response = a
        .request(Method::POST, "/auth/logout", Some(&bob), None)
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    until(&b, &bob, |status, _| status == StatusCode::UNAUTHORIZED).await;
    assert_eq!(
        b.get("/me", &alice).await.status(),
        StatusCode::OK,
        "not committed yet"
    );
    slow.execute("COMMIT").await.unwrap();
    until(&b, &alice, |status, _| status == StatusCode::UNAUTHORIZED).await;
}

/// MySQL only: the test's SQLite outage holds the write lock, which stops
/// writes but not the reads this is about.
#[cfg_attr(not(mysql_tests), allow(dead_code))]
async fn an_instance_that_cannot_read_the_feed_answers_503_not_a_stale_yes(backend: Backend) {
    let app = TestApp::spawn_with(backend, window()).await;
    app.register("alice").await;
    let token = app.login("alice", PASSWORD).await;
    warmed(&app, &token).await;
    let outage = app.db.outage().await;
    // Memory may vouch for at most the window; after it, the database is
    // asked, and it is away.
    tokio::time::sleep(Duration::from_millis(WINDOW_MS + 200)).await;
    let response = app.get("/me", &token).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
    outage.end().await;
    until(&app, &token, |status, _| status == StatusCode::OK).await;
}
