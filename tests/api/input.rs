//! Section 1 of the contract: how bodies are read and errors rendered.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TestApp, assert_problem, error_fields};
use crate::on_both_databases;

on_both_databases!(
    a_body_without_json_content_type_is_415,
    a_charset_parameter_is_accepted,
    a_body_over_64_kib_is_413,
    a_huge_password_is_refused_quickly_without_hashing,
    malformed_json_is_400,
    an_unknown_field_is_400_naming_it,
    a_wrong_json_type_is_400_naming_the_field_without_echoing_it,
    a_repeated_key_is_400,
    a_body_that_is_not_an_object_is_400,
    a_nul_in_any_string_is_400,
    unknown_paths_and_methods_are_problems_too,
);

async fn raw(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).body(body);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    request.send().await.unwrap()
}

fn registration() -> String {
    json!({"username": "alice", "password": PASSWORD}).to_string()
}

async fn a_body_without_json_content_type_is_415(backend: Backend) {
    // (The credential routes also read form bodies: see `forms`.)
    let app = TestApp::spawn(backend).await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("multipart/form-data; boundary=x"),
        Some("application/jsonp"),
    ] {
        let response = raw(&app, "/auth/register", content_type, registration()).await;
        assert_problem(
            response,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
        )
        .await;
    }
}

async fn a_charset_parameter_is_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = raw(
        &app,
        "/auth/register",
        Some("Application/JSON; charset=utf-8"),
        registration(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
}

async fn a_body_over_64_kib_is_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let padding = "x".repeat(64 * 1024);
    let body = json!({"username": "alice", "password": PASSWORD, "name": padding}).to_string();
    let response = raw(&app, "/auth/register", Some("application/json"), body).await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;

    // Streamed without a Content-Length, the limit still holds.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..80).map(|_| Ok(vec![b' '; 1024])).collect();
    let stream = reqwest::Body::wrap_stream(futures::stream::iter(chunks));
    let response = raw(&app, "/auth/register", Some("application/json"), stream).await;
    assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

async fn a_huge_password_is_refused_quickly_without_hashing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let started = Instant::now();
    // Larger than any body may be: refused by its declared size before a
    // byte of it is read. The server answers 413 and closes the connection;
    // a client still busy sending may see the close before the answer.
    let mib = json!({"username": "alice", "password": "p".repeat(1024 * 1024)}).to_string();
    let sent = app
        .client
        .post(app.url("/auth/register"))
        .header("content-type", "application/json")
        .body(mib)
        .send()
        .await;
    match sent {
        Ok(response) => {
            assert_problem(response, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
        }
        Err(e) => assert!(
            e.is_request() || e.is_body(),
            "only the connection closed early: {e}"
        ),
    }
    // Within the body limit but far over the password limit: refused by rule.
    let big = json!({"username": "alice", "password": "p".repeat(60 * 1024)}).to_string();
    let response = raw(&app, "/auth/login", Some("application/json"), big.clone()).await;
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("password".into(), "too_long".into())]
    );
    let response = raw(&app, "/auth/register", Some("application/json"), big).await;
    assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    // A generous bound: this is about never hashing, not about speed.
    assert!(started.elapsed() < Duration::from_secs(10));
}

async fn malformed_json_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for body in [
        r#"{"username": "alice""#,
        "",
        "{'username': 'a'}",
        r#"{"username":"a"} trailing"#,
        "\u{feff}{}",
    ] {
        let response = raw(
            &app,
            "/auth/register",
            Some("application/json"),
            body.to_owned(),
        )
        .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "malformed_json").await;
    }
}

async fn an_unknown_field_is_400_naming_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post(
            "/auth/register",
            json!({"username": "alice", "password": PASSWORD, "is_admin": true}),
        )
        .await;
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "unknown_field").await;
    assert_eq!(
        error_fields(&body),
        vec![("is_admin".into(), "unknown_field".into())]
    );
    // Nothing was created by the refused request.
    assert_eq!(
        app.post(
            "/auth/login",
            json!({"username": "alice", "password": PASSWORD})
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn a_wrong_json_type_is_400_naming_the_field_without_echoing_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post(
            "/auth/register",
            json!({"username": "alice", "password": 31415926535_u64}),
        )
        .await;
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "invalid_type").await;
    assert_eq!(
        error_fields(&body),
        vec![("password".into(), "invalid_type".into())]
    );
    assert!(!body.to_string().contains("31415926535"));

    let response = app
        .post(
            "/auth/login",
            json!({"username": ["alice"], "password": PASSWORD}),
        )
        .await;
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "invalid_type").await;
    assert_eq!(
        error_fields(&body),
        vec![("username".into(), "invalid_type".into())]
    );
}

async fn a_repeated_key_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = format!(r#"{{"username":"alice","username":"admin","password":"{PASSWORD}"}}"#);
    let response = raw(&app, "/auth/register", Some("application/json"), body).await;
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "duplicate_field").await;
    assert_eq!(
        error_fields(&body),
        vec![("username".into(), "duplicate_field".into())]
    );
}

async fn a_body_that_is_not_an_object_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for body in ["[]", "\"alice\"", "42", "null"] {
        let response = raw(
            &app,
            "/auth/login",
            Some("application/json"),
            body.to_owned(),
        )
        .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "not_an_object").await;
    }
}

async fn a_nul_in_any_string_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (field, value) in [
        ("username", "al\u{0}ice"),
        ("password", "pass\u{0}word-long"),
        ("email", "a\u{0}@b.co"),
        ("name", "A\u{0}"),
    ] {
        let mut body = json!({"username": "alice", "password": PASSWORD});
        body[field] = Value::from(value);
        let response = app.post("/auth/register", body).await;
        let problem = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(
            error_fields(&problem),
            vec![(field.into(), "control_character".into())],
            "{field}"
        );
    }
}

async fn unknown_paths_and_methods_are_problems_too(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .client
        .get(app.url("/no/such/thing"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app
        .client
        .delete(app.url("/auth/login"))
        .send()
        .await
        .unwrap();
    assert!(response.headers().contains_key("allow"));
    assert_problem(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
}
