//! The documented flows of the five backends gatehouse replaces (their
//! READMEs are in the project's seeds), replayed with the request bodies
//! their clients send, as JSON and as forms. Where gatehouse deliberately
//! answers otherwise (a common password refused, no self-made admins, 401
//! where a seed said 403, `access_token` where a client read `token`, 409
//! where a seed said 400 for a taken name), the test asserts the contract.

use reqwest::header::CONTENT_TYPE;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, assert_problem, error_fields};
use crate::on_both_databases;

on_both_databases!(
    flask_register_with_email_and_login,
    flask_api_auth_with_roles_and_a_protected_route,
    flask_mysql_signup_and_login,
    fastapi_email_accounts_with_first_and_last_names,
    flask_jwt_register_login_protected,
);

/// How a client encodes a body: the seeds' READMEs show JSON, and some of
/// their client code posts HTML forms.
#[derive(Clone, Copy, Debug)]
enum Encoding {
    Json,
    Form,
}

const BOTH: [Encoding; 2] = [Encoding::Json, Encoding::Form];

/// Posts `fields` to `path`, encoded as `encoding`.
async fn send(app: &TestApp, encoding: Encoding, path: &str, fields: Value) -> Response {
    let request = app.client.post(app.url(path));
    let request = match encoding {
        Encoding::Json => request.json(&fields),
        Encoding::Form => {
            let pairs: Vec<String> = fields
                .as_object()
                .unwrap()
                .iter()
                .map(|(key, value)| {
                    let value = value.as_str().unwrap();
                    format!("{}={}", encode(key), encode(value))
                })
                .collect();
            request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(pairs.join("&"))
        }
    };
    request.send().await.unwrap()
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// A name for this run's account, unique per encoding.
fn name(base: &str, encoding: Encoding) -> String {
    format!("{base}{}", format!("{encoding:?}").to_lowercase())
}

async fn json_of(response: Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.unwrap()
}

/// A password the contract refuses at registration, with that reason.
async fn refused_as_common(response: Response) {
    let problem = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&problem),
        vec![("password".to_owned(), "common_password".to_owned())]
    );
}

/// The first seed: Flask, `/register` with an email, `/login`; its page
/// shows `result.error`, which gatehouse's problem body carries as `detail`.
async fn flask_register_with_email_and_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for encoding in BOTH {
        let username = name("user123", encoding);
        let email = format!("{username}@example.com");
        // The README's own example password is a common one: refused.
        let example = json!({"username": username, "password": "password123", "email": email});
        refused_as_common(send(&app, encoding, "/register", example).await).await;
        let body =
            json!({"username": username, "password": "a long walk in spring", "email": email});
        let created = json_of(
            send(&app, encoding, "/register", body.clone()).await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(created["message"], "User registered successfully");
        assert_eq!(created["user"]["email"], email.as_str());
        // The seed said 400 for "user already exists": a conflict is 409.
        let again = assert_problem(
            send(&app, encoding, "/register", body).await,
            StatusCode::CONFLICT,
            "username_taken",
        )
        .await;
        assert!(again["detail"].as_str().is_some_and(|d| !d.is_empty()));
        let bad_email = json!({"username": name("other", encoding), "password": "a long walk in spring", "email": "not-an-email"});
        let problem = assert_problem(
            send(&app, encoding, "/register", bad_email).await,
            StatusCode::BAD_REQUEST,
            "validation_failed",
        )
        .await;
        assert_eq!(error_fields(&problem)[0].1, "invalid_email");

        let login = json!({"username": username, "password": "a long walk in spring"});
        let tokens = json_of(send(&app, encoding, "/login", login).await, StatusCode::OK).await;
        assert!(tokens["access_token"].is_string());
        let wrong = json!({"username": username, "password": "a long walk in autumn"});
        assert_problem(
            send(&app, encoding, "/login", wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
}

/// The second seed: Flask with `/api/auth/…`, a `role` at registration, a
/// client that reads `token` and expects 403 without one.
async fn flask_api_auth_with_roles_and_a_protected_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for encoding in BOTH {
        let username = name("editor", encoding);
        let password = "a long walk in spring";
        // Nobody makes themselves an admin.
        let as_admin = json!({"username": username, "password": password, "role": "admin"});
        assert_problem(
            send(&app, encoding, "/api/auth/register", as_admin).await,
            StatusCode::FORBIDDEN,
            "role_forbidden",
        )
        .await;
        let as_user = json!({"username": username, "password": password, "role": "user"});
        let created = json_of(
            send(&app, encoding, "/api/auth/register", as_user.clone()).await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(created["user"]["role"], "user");
        assert_problem(
            send(&app, encoding, "/api/auth/register", as_user).await,
            StatusCode::CONFLICT,
            "username_taken",
        )
        .await;

        let login = json!({"username": username, "password": password});
        let tokens = json_of(
            send(&app, encoding, "/api/auth/login", login).await,
            StatusCode::OK,
        )
        .await;
        // The seed's client read `token`; the contract's name is `access_token`.
        assert!(tokens.get("token").is_none());
        let token = tokens["access_token"].as_str().unwrap();
        let welcome = json_of(app.get("/api/auth/protected", token).await, StatusCode::OK).await;
        assert_eq!(welcome["message"], format!("Welcome, {username}!"));
        assert_eq!(welcome["username"], username.as_str());
        assert_eq!(welcome["role"], "user");
    }
    // The seed answered 403 for a missing, invalid or expired token: that
    // is 401 with a challenge.
    let missing = app
        .client
        .get(app.url("/api/auth/protected"))
        .send()
        .await
        .unwrap();
    assert_problem(missing, StatusCode::UNAUTHORIZED, "missing_token").await;
    assert_problem(
        app.get("/api/auth/protected", "not.a.token").await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
}

/// The third seed: Flask and a MySQL `users(id, username, password)` table,
/// `/signup` and `/login` with a username and password.
async fn flask_mysql_signup_and_login(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for encoding in BOTH {
        let username = name("user123", encoding);
        let example = json!({"username": username, "password": "mypassword"});
        refused_as_common(send(&app, encoding, "/signup", example).await).await;
        // "Username and password are required": 400, naming the field.
        let missing = assert_problem(
            send(&app, encoding, "/signup", json!({"username": username})).await,
            StatusCode::BAD_REQUEST,
            "validation_failed",
        )
        .await;
        assert_eq!(
            error_fields(&missing),
            vec![("password".to_owned(), "required".to_owned())]
        );
        let body = json!({"username": username, "password": "my password is long"});
        json_of(
            send(&app, encoding, "/signup", body.clone()).await,
            StatusCode::CREATED,
        )
        .await;
        assert_problem(
            send(&app, encoding, "/signup", body.clone()).await,
            StatusCode::CONFLICT,
            "username_taken",
        )
        .await;
        let tokens = json_of(send(&app, encoding, "/login", body).await, StatusCode::OK).await;
        assert_eq!(tokens["token_type"], "Bearer");
        assert_problem(
            send(&app, encoding, "/login", json!({"username": username})).await,
            StatusCode::BAD_REQUEST,
            "validation_failed",
        )
        .await;
        let wrong = json!({"username": username, "password": "not my password"});
        assert_problem(
            send(&app, encoding, "/login", wrong).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
}

/// The fourth seed: FastAPI, accounts by email with first and last names,
/// `/auth/register`, `/auth/login`, `GET /me`, `PATCH /user/update`.
async fn fastapi_email_accounts_with_first_and_last_names(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for encoding in BOTH {
        let email = format!("{}@example.com", name("ada", encoding));
        let body = json!({"email": email, "first_name": "Ada", "last_name": "Lovelace",
                          "password": "analytical engine notes"});
        let created = json_of(
            send(&app, encoding, "/auth/register", body.clone()).await,
            StatusCode::CREATED,
        )
        .await;
        assert_eq!(created["user"]["username"], Value::Null);
        assert_eq!(created["user"]["first_name"], "Ada");
        // Its client logs in with the very same body.
        let tokens = json_of(
            send(&app, encoding, "/auth/login", body).await,
            StatusCode::OK,
        )
        .await;
        let token = tokens["access_token"].as_str().unwrap();
        let me = json_of(app.get("/me", token).await, StatusCode::OK).await;
        assert_eq!(me["email"], email.as_str());
        assert_eq!(me["last_name"], "Lovelace");
        // Profile updates are JSON, as its client sends them.
        let updated = app
            .request(
                reqwest::Method::PATCH,
                "/user/update",
                Some(token),
                Some(json!({"first_name": "Augusta Ada", "last_name": "King"})),
            )
            .await;
        let updated = json_of(updated, StatusCode::OK).await;
        assert_eq!(updated["first_name"], "Augusta Ada");
        assert_eq!(updated["last_name"], "King");
        let greeting = json_of(app.get("/protected", token).await, StatusCode::OK).await;
        assert_eq!(greeting["message"], format!("Welcome, {email}!"));
        assert_eq!(greeting["username"], Value::Null);
    }
}

/// The fifth seed: Flask-JWT-Extended, `/register`, `/login` answering
/// `access_token`, `/protected`; its code posts forms to `/signup` and
/// `/login`.
async fn flask_jwt_register_login_protected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for encoding in BOTH {
        for register in ["/register", "/signup"] {
            let username = name(&format!("example_user{}", register.len()), encoding);
            let body = json!({"username": username, "password": "securepassword"});
            json_of(
                send(&app, encoding, register, body.clone()).await,
                StatusCode::CREATED,
            )
            .await;
            let tokens = json_of(send(&app, encoding, "/login", body).await, StatusCode::OK).await;
            let token = tokens["access_token"].as_str().unwrap();
            let welcome = json_of(app.get("/protected", token).await, StatusCode::OK).await;
            assert_eq!(welcome["username"], username.as_str());
        }
    }
}
