//! Sessions and the token lifecycle: refresh rotation, reuse detection,
//! expiry, logout scopes and session management.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{
    Backend, PASSWORD, Pair, Settings, TestApp, assert_problem, error_fields, jwt_claims,
};
use crate::on_both_databases;

on_both_databases!(
    login_returns_a_refresh_token_that_rotates,
    a_spent_refresh_token_presented_again_ends_the_session,
    concurrent_refreshes_within_the_grace_window_get_one_pair,
    an_idle_session_ends,
    a_session_past_its_absolute_lifetime_ends,
    logout_ends_the_sessions_its_scope_names,
    changing_the_password_ends_every_other_session,
    deleting_the_account_ends_its_sessions,
    sessions_are_listed_with_the_current_one_marked,
    a_user_can_end_only_their_own_live_sessions,
    bad_refresh_requests_are_refused,
);

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post("/auth/refresh", json!({"refresh_token": token}))
        .await
}

async fn refreshed(app: &TestApp, token: &str) -> Pair {
    let response = refresh(app, token).await;
    assert_eq!(response.status(), StatusCode::OK);
    Pair::from_body(&response.json::<Value>().await.unwrap())
}

async fn me_status(app: &TestApp, access: &str) -> StatusCode {
    app.get("/me", access).await.status()
}

/// Asserts that a login's session has ended: its access token is refused
/// on the next request and its refresh token can no longer be exchanged.
async fn assert_session_ended(app: &TestApp, pair: &Pair) {
    assert_problem(
        app.get("/me", &pair.access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_problem(
        refresh(app, &pair.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}

async fn login_returns_a_refresh_token_that_rotates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    let first = app.login_pair("alice", PASSWORD).await;
    assert!(first.refresh.len() >= 22, "at least 128 bits");
    let response = refresh(&app, &first.refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["username"], "alice");
    let second = Pair::from_body(&body);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(
        jwt_claims(&second.access)["sid"],
        jwt_claims(&first.access)["sid"],
        "same session"
    );
    assert_eq!(me_status(&app, &second.access).await, StatusCode::OK);
    // The rotated token keeps rotating.
    let third = refreshed(&app, &second.refresh).await;
    assert_eq!(me_status(&app, &third.access).await, StatusCode::OK);
}

async fn a_spent_refresh_token_presented_again_ends_the_session(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings::new().set("REFRESH_REUSE_GRACE_SECONDS", "1"),
    )
    .await;
    app.register("alice").await;
    let other = app.login_pair("alice", PASSWORD).await;
    let first = app.login_pair("alice", PASSWORD).await;
    let second = refreshed(&app, &first.refresh).await;
    let third = refreshed(&app, &second.refresh).await;
    // Past the grace window, the token spent first comes back: theft.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(
        refresh(&app, &first.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    // The whole session is gone: its live tokens stop working at once.
    assert_session_ended(&app, &third).await;
    // Another login of the same user is untouched.
    assert_eq!(me_status(&app, &other.access).await, StatusCode::OK);

    // The token spent just before the live one is reuse too, after the window.
    let fresh = app.login_pair("alice", PASSWORD).await;
    let next = refreshed(&app, &fresh.refresh).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_problem(
        refresh(&app, &fresh.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        app.get("/me", &next.access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

async fn concurrent_refreshes_within_the_grace_window_get_one_pair(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    let first = app.login_pair("alice", PASSWORD).await;
    let attempts = (0..6).map(|_| refresh(&app, &first.refresh));
    let mut pairs = Vec::new();
    for response in futures::future::join_all(attempts).await {
        assert_eq!(response.status(), StatusCode::OK);
        pairs.push(Pair::from_body(&response.json::<Value>().await.unwrap()));
    }
    assert!(
        pairs.windows(2).all(|w| w[0] == w[1]),
        "one identical pair: {pairs:?}"
    );
    // A retry a moment later, still inside the window, gets it again.
    assert_eq!(refreshed(&app, &first.refresh).await, pairs[0]);
    // And the pair works: the session was not revoked.
    assert_eq!(me_status(&app, &pairs[0].access).await, StatusCode::OK);
    let next = refreshed(&app, &pairs[0].refresh).await;
    assert_eq!(me_status(&app, &next.access).await, StatusCode::OK);
}

async fn an_idle_session_ends(backend: Backend) {
    // Days pass here by editing rows behind the server's back, which no
    // instance hears of: every request asks the database.
    let settings = Settings::new()
        .set("SESSION_IDLE_DAYS", "7")
        .set("SESSION_CACHE_MS", "0");
    let app = TestApp::spawn_with(backend, settings).await;
    app.register("alice").await;
    let pair = app.login_pair("alice", PASSWORD).await;
    let kept = app.login_pair("alice", PASSWORD).await;
    let sid = jwt_claims(&pair.access)["sid"].as_str().unwrap().to_owned();
    let idle_for = |days: i64| {
        format!(
            "UPDATE gatehouse_sessions SET last_used_at = last_used_at - {days} * 86400 - 60 WHERE id = '{sid}'"
        )
    };
    // Six days of silence is fine, and using the session restarts the
    // clock, so another six days later it still lives.
    app.db.execute(&idle_for(6)).await;
    assert_eq!(me_status(&app, &pair.access).await, StatusCode::OK);
    app.db.execute(&idle_for(6)).await;
    assert_eq!(me_status(&app, &pair.access).await, StatusCode::OK);
    // Eight days unused is past SESSION_IDLE_DAYS.
    app.db.execute(&idle_for(8)).await;
    assert_session_ended(&app, &pair).await;
    assert_eq!(me_status(&app, &kept.access).await, StatusCode::OK);
}

async fn a_session_past_its_absolute_lifetime_ends(backend: Backend) {
    let app = TestApp::spawn_with(
        backend,
        Settings::new().set("REFRESH_TOKEN_EXPIRE_DAYS", "1"),
    )
    .await;
    app.register("alice").await;
    let pair = app.login_pair("alice", PASSWORD).await;
    let kept = app.login_pair("alice", PASSWORD).await;
    let sid = jwt_claims(&pair.access)["sid"].as_str().unwrap().to_owned();
    // Rotation does not extend the absolute limit: a day after the login,
    // however recently refreshed, the session is over.
    let rotated = refreshed(&app, &pair.refresh).await;
    app.db
        .execute(&format!(
            "UPDATE gatehouse_sessions SET expires_at = expires_at - 86400 WHERE id = '{sid}'"
        ))
        .await;
    assert_session_ended(&app, &rotated).await;
    assert_eq!(me_status(&app, &kept.access).await, StatusCode::OK);
    // Ended sessions are swept from the table; live ones stay.
    let other = app.login_pair("alice", PASSWORD).await;
    let other_sid = jwt_claims(&other.access)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    app.db
        .execute(&format!(
            "UPDATE gatehouse_sessions SET expires_at = 1 WHERE id = '{other_sid}'"
        ))
        .await;
    let swept = app
        .state
        .store
        .sweep_sessions(app.state.liveness())
        .await
        .unwrap();
    assert_eq!(swept, 1, "only the expired session");
    assert_eq!(me_status(&app, &kept.access).await, StatusCode::OK);
}

async fn logout(app: &TestApp, access: &str, body: Option<Value>) -> reqwest::Response {
    app.request(Method::POST, "/auth/logout", Some(access), body)
        .await
}

async fn logout_ends_the_sessions_its_scope_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    let bob = app.user_token("bob").await;
    let [a, b, c, d] = [
        app.login_pair("alice", PASSWORD).await,
        app.login_pair("alice", PASSWORD).await,
        app.login_pair("alice", PASSWORD).await,
        app.login_pair("alice", PASSWORD).await,
    ];
    // local, the default, with no body at all: only the caller's session.
    assert_eq!(
        logout(&app, &a.access, None).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(me_status(&app, &a.access).await, StatusCode::UNAUTHORIZED);
    assert_problem(
        refresh(&app, &a.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(me_status(&app, &b.access).await, StatusCode::OK);
    // others: every session but the caller's.
    assert_eq!(
        logout(&app, &b.access, Some(json!({"scope": "others"})))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(me_status(&app, &b.access).await, StatusCode::OK);
    assert_eq!(me_status(&app, &c.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &d.access).await, StatusCode::UNAUTHORIZED);
    assert_problem(
        refresh(&app, &c.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    // global: all of them, the caller's too; other users are untouched.
    let e = app.login_pair("alice", PASSWORD).await;
    assert_eq!(
        logout(&app, &e.access, Some(json!({"scope": "global"})))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(me_status(&app, &b.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &e.access).await, StatusCode::UNAUTHORIZED);
    assert_eq!(me_status(&app, &bob).await, StatusCode::OK);
    // Explicit local, and the errors.
    let f = app.login_pair("alice", PASSWORD).await;
    let bad = logout(&app, &f.access, Some(json!({"scope": "everywhere"}))).await;
    let body = assert_problem(bad, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("scope".into(), "invalid_scope".into())]
    );
    assert_eq!(
        logout(&app, &f.access, Some(json!({"scope": "local"})))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(
        logout(&app, &f.access, None).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let anonymous = app
        .client
        .post(app.url("/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "missing_token").await;
}

async fn changing_the_password_ends_every_other_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    let caller = app.login_pair("alice", PASSWORD).await;
    let other = app.login_pair("alice", PASSWORD).await;
    let change =
        json!({"current_password": "wrong guess here", "new_password": "a brand new secret"});
    let wrong = app
        .request(
            Method::PUT,
            "/me/password",
            Some(&caller.access),
            Some(change),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    assert_eq!(
        me_status(&app, &other.access).await,
        StatusCode::OK,
        "a failed change ends nothing"
    );
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
    let ok = app
        .request(
            Method::PUT,
            "/me/password",
            Some(&caller.access),
            Some(change),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    assert_eq!(me_status(&app, &caller.access).await, StatusCode::OK);
    assert_eq!(
        refresh(&app, &caller.refresh).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        me_status(&app, &other.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_problem(
        refresh(&app, &other.refresh).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}

async fn deleting_the_account_ends_its_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    let caller = app.login_pair("alice", PASSWORD).await;
    let other = app.login_pair("alice", PASSWORD).await;
    let ok = app
        .request(
            Method::DELETE,
            "/me",
            Some(&caller.access),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    for pair in [&caller, &other] {
        assert_session_ended(&app, pair).await;
    }
}

async fn sessions_are_listed_with_the_current_one_marked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    app.login_pair("alice", PASSWORD).await;
    let caller = app.login_pair("alice", PASSWORD).await;
    let response = app
        .client
        .get(app.url("/me/sessions"))
        .bearer_auth(&caller.access)
        .header("user-agent", "gatehouse-test/1.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let sessions = body["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<&Value> = sessions.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["id"], jwt_claims(&caller.access)["sid"]);
    for session in sessions {
        for key in [
            "id",
            "created_at",
            "last_used_at",
            "user_agent",
            "ip",
            "current",
        ] {
            assert!(session.get(key).is_some(), "{key} in {session}");
        }
        assert_eq!(session["ip"], "127.0.0.1");
        assert!(!session.to_string().contains(&caller.refresh));
    }
}

async fn a_user_can_end_only_their_own_live_sessions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    let caller = app.login_pair("alice", PASSWORD).await;
    let other = app.login_pair("alice", PASSWORD).await;
    let bob = app.user_token("bob").await;
    let other_sid = jwt_claims(&other.access)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let bob_sid = jwt_claims(&bob)["sid"].as_str().unwrap().to_owned();
    let end = |sid: String, token: String| {
        let app = &app;
        async move {
            app.request(
                Method::DELETE,
                &format!("/me/sessions/{sid}"),
                Some(&token),
                None,
            )
            .await
        }
    };
    assert_problem(
        end(bob_sid.clone(), caller.access.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        me_status(&app, &bob).await,
        StatusCode::OK,
        "bob's session survives"
    );
    assert_eq!(
        end(other_sid.clone(), caller.access.clone()).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        me_status(&app, &other.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_problem(
        end(other_sid, caller.access.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        end("not-a-uuid".into(), caller.access.clone()).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(me_status(&app, &caller.access).await, StatusCode::OK);
}

async fn bad_refresh_requests_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_problem(
        refresh(&app, "not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_problem(
        refresh(&app, "").await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    let missing = app.post("/auth/refresh", json!({})).await;
    let body = assert_problem(missing, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("refresh_token".into(), "required".into())]
    );
    let unknown = app
        .post(
            "/auth/refresh",
            json!({"refresh_token": "x", "device": "phone"}),
        )
        .await;
    assert_problem(unknown, StatusCode::BAD_REQUEST, "unknown_field").await;
    // An access token is not a refresh token.
    let access = app.user_token("alice").await;
    assert_problem(
        refresh(&app, &access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
}
