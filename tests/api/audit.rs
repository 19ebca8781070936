//! The audit log: every kind of event is recorded with who, from where and
//! in which request, and nothing secret ever goes into it.

use std::collections::HashSet;
use std::process::Command;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{
    Backend, PASSWORD, Settings, TestApp, assert_problem, error_fields, jwt_claims,
};
use crate::on_both_databases;

on_both_databases!(
    every_security_event_is_recorded_without_secrets,
    events_name_the_client_and_the_request,
    the_audit_list_filters_and_pages_newest_first,
    only_admins_read_the_audit_log,
);

async fn events(app: &TestApp, admin: &str, query: &str) -> Value {
    let response = app.get(&format!("/admin/audit{query}"), admin).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

fn kinds(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect()
}

async fn every_security_event_is_recorded_without_secrets(backend: Backend) {
    let settings = Settings::new()
        .unset("JWT_SECRET")
        .set("LOCKOUT_THRESHOLD", "2")
        .set("REFRESH_REUSE_GRACE_SECONDS", "0");
    let app = TestApp::spawn_with(backend, settings).await;
    let admin = app.admin_token("root").await;
    let mut secrets = vec![PASSWORD.to_owned(), admin.clone()];

    app.register("alice").await;
    let pair = app.login_pair("alice", PASSWORD).await;
    let other = app.login_pair("alice", PASSWORD).await;
    secrets.extend([
        pair.access.clone(),
        pair.refresh.clone(),
        other.access.clone(),
        other.refresh.clone(),
    ]);
    for guess in ["wrong guess one", "wrong guess two"] {
        app.post(
            "/auth/login",
            json!({"username": "alice", "password": guess}),
        )
        .await;
        secrets.push(guess.to_owned());
    }
    let next = app
        .post("/auth/refresh", json!({"refresh_token": other.refresh}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    secrets.push(next["refresh_token"].as_str().unwrap().to_owned());
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    app.post("/auth/refresh", json!({"refresh_token": other.refresh}))
        .await;

    let third = app.login_pair("root", PASSWORD).await;
    let sid = jwt_claims(&third.access)["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    app.request(
        Method::DELETE,
        &format!("/me/sessions/{sid}"),
        Some(&admin),
        None,
    )
    .await;
    app.request(
        Method::POST,
        "/auth/logout",
        Some(&admin),
        Some(json!({"scope": "others"})),
    )
    .await;

    let bob = app.user_token("bob").await;
    let change = json!({"current_password": PASSWORD, "new_password": "a brand new secret"});
    app.request(Method::PUT, "/me/password", Some(&bob), Some(change))
        .await;
    secrets.push("a brand new secret".to_owned());

    let page: Value = app
        .get("/admin/users?q=bob", &admin)
        .await
        .json()
        .await
        .unwrap();
    let bob_id = page["users"][0]["id"].as_str().unwrap().to_owned();
    let path = format!("/admin/users/{bob_id}");
    app.request(
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"role": "admin"})),
    )
    .await;
    app.request(
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"disabled": true})),
    )
    .await;
    app.request(
        Method::PATCH,
        &path,
        Some(&admin),
        Some(json!({"disabled": false})),
    )
    .await;
    app.request(Method::DELETE, &path, Some(&admin), None).await;

    let rotated = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["keys", "rotate"])
        .env_clear()
        .env("DATABASE_URL", &app.db.url)
        .env("ARGON2_MEMORY_KIB", "1024")
        .env("ARGON2_ITERATIONS", "1")
        .output()
        .unwrap();
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );

    let all = events(&app, &admin, "?limit=100").await;
    let recorded: HashSet<String> = kinds(&all).into_iter().collect();
    for kind in [
        "register",
        "login_succeeded",
        "login_failed",
        "lockout",
        "refresh_reuse",
        "logout",
        "session_revoked",
        "password_changed",
        "role_changed",
        "user_disabled",
        "user_enabled",
        "user_deleted",
        "key_rotated",
    ] {
        assert!(recorded.contains(kind), "{kind} missing from {recorded:?}");
    }
    let logout = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "logout")
        .unwrap();
    assert_eq!(logout["detail"]["scope"], "others");
    let role = all["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "role_changed")
        .unwrap();
    assert_eq!(
        (
            role["detail"]["from"].as_str(),
            role["detail"]["to"].as_str()
        ),
        (Some("user"), Some("admin"))
    );
    assert_eq!(role["user_id"], bob_id.as_str());

    // Nothing secret in what the API shows, nor anywhere in the table.
    let mut stored = app
        .db
        .texts("SELECT detail FROM gatehouse_audit_events")
        .await;
    for column in [
        "kind",
        "user_id",
        "actor_id",
        "ip",
        "user_agent",
        "request_id",
    ] {
        stored.extend(
            app.db
                .texts(&format!("SELECT {column} FROM gatehouse_audit_events"))
                .await,
        );
    }
    let haystack = format!("{all}\n{}", stored.join("\n"));
    for secret in &secrets {
        assert!(
            !haystack.contains(secret.as_str()),
            "a secret leaked into the audit log"
        );
    }
    assert!(!haystack.contains("argon2"), "no hash in the audit log");
}

async fn events_name_the_client_and_the_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    let response = app
        .client
        .post(app.url("/auth/register"))
        .header("user-agent", "audit-test/2.0")
        .header("x-request-id", "audit-trace-42")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let user_id = response.json::<Value>().await.unwrap()["user"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let page = events(&app, &admin, &format!("?kind=register&user_id={user_id}")).await;
    let event = &page["events"][0];
    assert_eq!(event["user_id"], user_id.as_str());
    assert_eq!(event["actor_id"], user_id.as_str());
    assert_eq!(event["ip"], "127.0.0.1");
    assert_eq!(event["user_agent"], "audit-test/2.0");
    assert_eq!(event["request_id"], "audit-trace-42");
    assert!(event["at"].as_str().unwrap().ends_with('Z'));
    assert!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).is_ok());
}

async fn the_audit_list_filters_and_pages_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    for name in ["user1", "user2", "user3"] {
        app.register(name).await;
    }
    let first = events(&app, &admin, "?kind=register&limit=2").await;
    assert_eq!(first["events"].as_array().unwrap().len(), 2);
    let ids: Vec<String> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids[0] > ids[1], "newest first");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = events(
        &app,
        &admin,
        &format!("?kind=register&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(
        second["events"].as_array().unwrap().len(),
        2,
        "three users and root registered"
    );
    assert_eq!(second["next_cursor"], Value::Null);
    assert!(second["events"][0]["id"].as_str().unwrap() < ids[1].as_str());
    assert_eq!(
        kinds(&events(&app, &admin, "?kind=login_succeeded").await),
        ["login_succeeded"]
    );

    for (query, field, code) in [
        ("?kind=coffee", "kind", "invalid_kind"),
        ("?user_id=bob", "user_id", "invalid_user_id"),
        ("?limit=0", "limit", "invalid_limit"),
        ("?cursor=%%%", "cursor", "invalid_cursor"),
    ] {
        let body = assert_problem(
            app.get(&format!("/admin/audit{query}"), &admin).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        assert_eq!(error_fields(&body), vec![(field.into(), code.into())]);
    }
}

async fn only_admins_read_the_audit_log(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user_token("alice").await;
    assert_problem(
        app.get("/admin/audit", &user).await,
        StatusCode::FORBIDDEN,
        "insufficient_role",
    )
    .await;
    let anonymous = app
        .client
        .get(app.url("/admin/audit"))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "missing_token").await;
}
