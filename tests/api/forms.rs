//! Form bodies on the credential routes, as HTML forms, Flask-style
//! clients and OAuth 2 client libraries send them, and the extra fields
//! those clients add to a login or refresh.

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TestApp, assert_problem, error_fields};
use crate::on_both_databases;

on_both_databases!(
    the_whole_flow_works_with_form_bodies,
    a_form_is_held_to_the_json_rules,
    oauth2_and_fastapi_login_fields_are_accepted,
    another_grant_type_is_unsupported,
);

const FORM: &str = "application/x-www-form-urlencoded";

/// Posts `body` (already encoded) as a form, with an optional bearer token.
async fn post_form(
    app: &TestApp,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(path))
        .header(CONTENT_TYPE, FORM)
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

async fn the_whole_flow_works_with_form_bodies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let password = encode(PASSWORD);
    // The Flask-SQLAlchemy backend's client: /signup and /login.
    let signed_up = post_form(
        &app,
        "/signup",
        None,
        &format!("username=alice&email=alice%40example.com&password={password}"),
    )
    .await;
    assert_eq!(signed_up.status(), StatusCode::CREATED);
    let user: Value = signed_up.json().await.unwrap();
    assert_eq!(user["user"]["email"], "alice@example.com");

    let logged_in = post_form(
        &app,
        "/login",
        None,
        &format!("username=alice&password={password}"),
    )
    .await;
    assert_eq!(logged_in.status(), StatusCode::OK);
    assert_eq!(logged_in.headers()["cache-control"], "no-store");
    assert_eq!(logged_in.headers()["pragma"], "no-cache");
    let pair: Value = logged_in.json().await.unwrap();
    let access = pair["access_token"].as_str().unwrap();
    assert_eq!(app.get("/me", access).await.status(), StatusCode::OK);

    let refreshed = post_form(
        &app,
        "/auth/refresh",
        None,
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            encode(pair["refresh_token"].as_str().unwrap())
        ),
    )
    .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    let pair: Value = refreshed.json().await.unwrap();
    let access = pair["access_token"].as_str().unwrap();

    let out = post_form(&app, "/auth/logout", Some(access), "scope=global").await;
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert_problem(
        app.get("/me", access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;

    // A wrong password in a form is the same 401, with its challenge.
    let wrong = post_form(
        &app,
        "/auth/login",
        None,
        "username=alice&password=not+it+at+all",
    )
    .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
}

async fn a_form_is_held_to_the_json_rules(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let unknown = post_form(
        &app,
        "/auth/register",
        None,
        "username=bob&password=x&role=admin&is_admin=1",
    )
    .await;
    let body = assert_problem(unknown, StatusCode::BAD_REQUEST, "unknown_field").await;
    assert_eq!(error_fields(&body)[0].0, "is_admin");
    let twice = post_form(
        &app,
        "/auth/login",
        None,
        "username=a&username=b&password=x",
    )
    .await;
    let body = assert_problem(twice, StatusCode::BAD_REQUEST, "duplicate_field").await;
    assert_eq!(
        error_fields(&body),
        vec![("username".into(), "duplicate_field".into())]
    );
    let bytes = post_form(&app, "/auth/login", None, "username=%FF&password=x").await;
    assert_problem(bytes, StatusCode::BAD_REQUEST, "malformed_form").await;
    // Validation is the same as for JSON: a short password is listed.
    let weak = post_form(&app, "/auth/register", None, "username=bob&password=short").await;
    let body = assert_problem(weak, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(error_fields(&body)[0].0, "password");
    // Forms are for the credential routes only; elsewhere JSON is required.
    let token = app.user_token("carol").await;
    let patched = app
        .client
        .patch(app.url("/me"))
        .bearer_auth(&token)
        .header(CONTENT_TYPE, FORM)
        .body("name=Carol")
        .send()
        .await
        .unwrap();
    assert_problem(
        patched,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let plain = app
        .client
        .post(app.url("/auth/login"))
        .header(CONTENT_TYPE, "text/plain")
        .body("username=a&password=b")
        .send()
        .await
        .unwrap();
    assert_problem(
        plain,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
}

async fn oauth2_and_fastapi_login_fields_are_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.post(
        "/auth/register",
        json!({"username": "dora", "email": "dora@example.com", "password": PASSWORD}),
    )
    .await;
    // An OAuth 2 password grant, as requests-oauthlib sends it.
    let oauth = post_form(
        &app,
        "/auth/login",
        None,
        &format!(
            "grant_type=password&username=dora&password={}&client_id=web&scope=",
            encode(PASSWORD)
        ),
    )
    .await;
    assert_eq!(oauth.status(), StatusCode::OK);
    // The FastAPI backend's client sends its names with the login.
    let fastapi = app
        .post(
            "/auth/login",
            json!({"email": "dora@example.com", "password": PASSWORD,
                   "first_name": "Dora", "last_name": "Explorer"}),
        )
        .await;
    assert_eq!(fastapi.status(), StatusCode::OK);
    // FastAPI's OAuth2PasswordRequestForm has only `username`: an email
    // there logs in by email. An HTML form's empty inputs are not given.
    let by_email = post_form(
        &app,
        "/auth/login",
        None,
        &format!(
            "username=Dora%40Example.com&password={}&grant_type=password",
            encode(PASSWORD)
        ),
    )
    .await;
    assert_eq!(by_email.status(), StatusCode::OK);
    let blanks = post_form(
        &app,
        "/login",
        None,
        &format!(
            "username=dora&email=&password={}&first_name=",
            encode(PASSWORD)
        ),
    )
    .await;
    assert_eq!(blanks.status(), StatusCode::OK);
    let email_only = post_form(
        &app,
        "/signup",
        None,
        &format!(
            "username=&email=gil%40example.com&password={}",
            encode(PASSWORD)
        ),
    )
    .await;
    assert_eq!(email_only.status(), StatusCode::CREATED);
}

async fn another_grant_type_is_unsupported(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("erin").await;
    let login = app
        .post(
            "/auth/login",
            json!({"username": "erin", "password": PASSWORD, "grant_type": "client_credentials"}),
        )
        .await;
    let body = assert_problem(login, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    assert_eq!(error_fields(&body)[0].0, "grant_type");
    let pair = app.login_pair("erin", PASSWORD).await;
    let refresh = post_form(
        &app,
        "/auth/refresh",
        None,
        &format!(
            "grant_type=password&refresh_token={}",
            encode(&pair.refresh)
        ),
    )
    .await;
    assert_problem(refresh, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    // The refused refresh spent nothing: the token still works.
    let again = app
        .post("/auth/refresh", json!({"refresh_token": pair.refresh}))
        .await;
    assert_eq!(again.status(), StatusCode::OK);
}
