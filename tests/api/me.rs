use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, Settings, TestApp, assert_problem, error_fields};
use crate::on_both_databases;

on_both_databases!(
    protected_greets_the_caller_on_both_paths,
    me_returns_the_caller,
    patch_me_changes_the_profile,
    patch_me_refuses_role_and_taken_names,
    patch_me_through_the_alias_behaves_the_same,
    patch_me_is_audited_and_under_the_per_client_limit,
    names_with_invisible_formatting_are_refused,
    changing_the_password_needs_the_current_one,
    deleting_the_account_needs_the_password_and_frees_the_name,
    the_last_admin_cannot_delete_itself,
);

async fn protected_greets_the_caller_on_both_paths(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.user_token("alice").await;
    for path in ["/protected", "/api/auth/protected"] {
        let response = app.get(path, &token).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"message": "Welcome, alice!", "username": "alice", "role": "user"})
        );
        assert_problem(
            app.client.get(app.url(path)).send().await.unwrap(),
            StatusCode::UNAUTHORIZED,
            "missing_token",
        )
        .await;
    }
}

async fn me_returns_the_caller(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let registered = app.register("alice").await;
    let token = app.login("alice", PASSWORD).await;
    let response = app.get("/me", &token).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), registered);
}

async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> reqwest::Response {
    app.request(Method::PATCH, path, Some(token), Some(body))
        .await
}

async fn patch_me_changes_the_profile(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.user_token("alice").await;
    let response = patch(
        &app,
        "/me",
        &token,
        json!({"username": "Alicia", "email": "a@example.com", "name": "Alicia"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    let user: Value = response.json().await.unwrap();
    assert_eq!(
        (
            user["username"].as_str(),
            user["email"].as_str(),
            user["name"].as_str()
        ),
        (Some("Alicia"), Some("a@example.com"), Some("Alicia"))
    );
    // null clears an optional field; an absent key leaves it alone.
    let cleared: Value = patch(&app, "/me", &token, json!({"name": null}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cleared["name"], Value::Null);
    assert_eq!(cleared["email"], "a@example.com");
    // The new name logs in; the old one is free.
    app.login("alicia", PASSWORD).await;
    app.register("alice").await;
    // A change to one's own name in another case is no conflict.
    let recased = patch(&app, "/me", &token, json!({"username": "ALICIA"})).await;
    assert_eq!(recased.status(), StatusCode::OK);
    let invalid = patch(
        &app,
        "/me",
        &token,
        json!({"username": "x", "email": "bad", "name": null}),
    )
    .await;
    let body = assert_problem(invalid, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![
            ("username".into(), "too_short".into()),
            ("email".into(), "invalid_email".into())
        ]
    );
}

async fn patch_me_refuses_role_and_taken_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.post(
        "/auth/register",
        json!({"username": "bob", "password": PASSWORD, "email": "bob@example.com"}),
    )
    .await;
    let token = app.user_token("alice").await;
    let role = patch(&app, "/me", &token, json!({"role": "admin"})).await;
    let body = assert_problem(role, StatusCode::BAD_REQUEST, "unknown_field").await;
    assert_eq!(
        error_fields(&body),
        vec![("role".into(), "unknown_field".into())]
    );
    let me: Value = app.get("/me", &token).await.json().await.unwrap();
    assert_eq!(me["role"], "user");
    assert_problem(
        patch(&app, "/me", &token, json!({"username": "BOB"})).await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    assert_problem(
        patch(&app, "/me", &token, json!({"email": "Bob@Example.com"})).await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    // Both taken at once: the username is reported, as at registration.
    assert_problem(
        patch(
            &app,
            "/me",
            &token,
            json!({"username": "Bob", "email": "bob@example.com"}),
        )
        .await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    assert_problem(
        patch(&app, "/me", &token, json!({"username": null})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
}

async fn patch_me_through_the_alias_behaves_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("bob").await;
    let token = app.user_token("alice").await;
    let ok = patch(&app, "/user/update", &token, json!({"name": "Al"})).await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(ok.json::<Value>().await.unwrap()["name"], "Al");
    assert_problem(
        patch(&app, "/user/update", &token, json!({"username": "bob"})).await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    assert_problem(
        patch(&app, "/user/update", &token, json!({"role": "admin"})).await,
        StatusCode::BAD_REQUEST,
        "unknown_field",
    )
    .await;
    let anonymous = app
        .client
        .patch(app.url("/user/update"))
        .json(&json!({"name": "x"}))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "missing_token").await;
}

async fn changing_the_password_needs_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.user_token("alice").await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let wrong = app
        .request(
            Method::PUT,
            "/me/password",
            Some(&token),
            Some(change("not my password", "a brand new secret")),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let weak = app
        .request(
            Method::PUT,
            "/me/password",
            Some(&token),
            Some(change(PASSWORD, "password")),
        )
        .await;
    let body = assert_problem(weak, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("new_password".into(), "common_password".into())]
    );
    let ok = app
        .request(
            Method::PUT,
            "/me/password",
            Some(&token),
            Some(change(PASSWORD, "a brand new secret")),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    app.login("alice", "a brand new secret").await;
    let old = app
        .post(
            "/auth/login",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_problem(old, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

async fn deleting_the_account_needs_the_password_and_frees_the_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.post(
        "/auth/register",
        json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
    )
    .await;
    let token = app.login("alice", PASSWORD).await;
    let wrong = app
        .request(
            Method::DELETE,
            "/me",
            Some(&token),
            Some(json!({"password": "not my password"})),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let ok = app
        .request(
            Method::DELETE,
            "/me",
            Some(&token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    // The deleted user's token stops working at once.
    assert_problem(
        app.get("/me", &token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    assert_problem(
        app.get("/protected", &token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    // Name and email are free again.
    let again = app
        .post(
            "/auth/register",
            json!({"username": "ALICE", "password": PASSWORD, "email": "Alice@example.com"}),
        )
        .await;
    assert_eq!(again.status(), StatusCode::CREATED);
}

async fn the_last_admin_cannot_delete_itself(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let root = app.admin_token("root").await;
    let confirm = json!({"password": PASSWORD});
    let refused = app
        .request(Method::DELETE, "/me", Some(&root), Some(confirm.clone()))
        .await;
    assert_problem(refused, StatusCode::CONFLICT, "last_admin").await;
    assert_eq!(
        app.get("/me", &root).await.status(),
        StatusCode::OK,
        "still there"
    );
    // With a second admin, the first may go.
    let deputy = app.admin_token("deputy").await;
    let ok = app
        .request(Method::DELETE, "/me", Some(&root), Some(confirm.clone()))
        .await;
    assert_eq!(ok.status(), StatusCode::NO_CONTENT);
    let refused = app
        .request(Method::DELETE, "/me", Some(&deputy), Some(confirm))
        .await;
    assert_problem(refused, StatusCode::CONFLICT, "last_admin").await;
}

async fn patch_me_is_audited_and_under_the_per_client_limit(backend: Backend) {
    let settings = Settings::new().set("RATE_LIMIT_PER_MINUTE", "6");
    let app = TestApp::spawn_with(backend, settings).await;
    // Registering and logging in take two of the six.
    let token = app.user_token("alice").await;
    let changed = patch(&app, "/me", &token, json!({"email": "alice@example.com"})).await;
    assert_eq!(changed.status(), StatusCode::OK);
    let kinds = app
        .db
        .texts("SELECT detail FROM gatehouse_audit_events WHERE kind = 'profile_changed'")
        .await;
    assert_eq!(kinds.len(), 1);
    let detail: Value = serde_json::from_str(&kinds[0]).unwrap();
    assert_eq!(detail, json!({"fields": ["email"]}), "fields, never values");
    // Probing names through 409s uses up the allowance like a login would.
    let mut statuses = Vec::new();
    for i in 0..4 {
        let probe = patch(
            &app,
            "/me",
            &token,
            json!({"username": format!("probe{i}")}),
        )
        .await;
        statuses.push(probe.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
}

async fn names_with_invisible_formatting_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.user_token("alice").await;
    for name in [
        "admin\u{202E}nimda",
        "al\u{200B}ice",
        "\u{2066}alice\u{2069}",
        "\u{FEFF}alice",
    ] {
        let response = patch(&app, "/me", &token, json!({"name": name})).await;
        let body = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(
            error_fields(&body),
            vec![("name".into(), "invalid_characters".into())],
            "{name:?}"
        );
        let response = app
            .post(
                "/auth/register",
                json!({"username": "bob", "password": PASSWORD, "name": name}),
            )
            .await;
        let body = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(
            error_fields(&body),
            vec![("name".into(), "invalid_characters".into())]
        );
    }
    let fine = patch(&app, "/me", &token, json!({"name": "Zoë محمد 李"})).await;
    assert_eq!(fine.status(), StatusCode::OK);
}
