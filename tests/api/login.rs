use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TestApp, assert_problem, error_fields};
use crate::on_both_databases;

on_both_databases!(
    login_returns_a_bearer_token_and_the_user,
    login_works_by_email_and_any_case_of_the_name,
    every_login_alias_behaves_like_the_canonical_route,
    an_unknown_user_and_a_wrong_password_get_identical_answers,
    login_needs_exactly_one_of_username_and_email,
);

async fn login_returns_a_bearer_token_and_the_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    let response = app
        .post(
            "/auth/login",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["username"], "alice");
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
    assert!(!body.to_string().contains(PASSWORD));
}

async fn login_works_by_email_and_any_case_of_the_name(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .post(
            "/auth/register",
            json!({"username": "Alice", "password": PASSWORD, "email": "Alice@Example.com"}),
        )
        .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    for body in [
        json!({"username": "alice", "password": PASSWORD}),
        json!({"username": "ALICE", "password": PASSWORD}),
        json!({"username": "ａｌｉｃｅ", "password": PASSWORD}),
        json!({"email": "alice@example.com", "password": PASSWORD}),
        json!({"email": "ALICE@EXAMPLE.COM", "password": PASSWORD}),
    ] {
        let response = app.post("/auth/login", body.clone()).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        let user = &response.json::<Value>().await.unwrap()["user"];
        assert_eq!(user["username"], "Alice", "the chosen spelling is kept");
    }
}

async fn every_login_alias_behaves_like_the_canonical_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    for path in ["/auth/login", "/login", "/api/auth/login"] {
        let ok = app
            .post(path, json!({"username": "alice", "password": PASSWORD}))
            .await;
        assert_eq!(ok.status(), StatusCode::OK, "{path}");
        assert_eq!(ok.headers()["cache-control"], "no-store");
        assert_eq!(ok.headers()["pragma"], "no-cache");
        let wrong = app
            .post(
                path,
                json!({"username": "alice", "password": "not the password"}),
            )
            .await;
        assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
}

async fn an_unknown_user_and_a_wrong_password_get_identical_answers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    let wrong_password = app
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "wrong password!"}),
        )
        .await;
    let unknown_user = app
        .post(
            "/auth/login",
            json!({"username": "nobody", "password": "wrong password!"}),
        )
        .await;
    let unknown_email = app
        .post(
            "/auth/login",
            json!({"email": "no@example.com", "password": "wrong password!"}),
        )
        .await;
    let mut bodies = Vec::new();
    for response in [wrong_password, unknown_user, unknown_email] {
        let mut body =
            assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    assert_eq!(bodies[0], bodies[2]);
}

async fn login_needs_exactly_one_of_username_and_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let neither = app.post("/auth/login", json!({"password": PASSWORD})).await;
    let body = assert_problem(neither, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("username".into(), "required".into())]
    );
    let both = app
        .post(
            "/auth/login",
            json!({"username": "a", "email": "a@example.com", "password": PASSWORD}),
        )
        .await;
    let body = assert_problem(both, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("email".into(), "ambiguous".into())]
    );
    let no_password = app.post("/auth/login", json!({"username": "alice"})).await;
    let body = assert_problem(no_password, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("password".into(), "required".into())]
    );
}
