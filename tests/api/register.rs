use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, Settings, TestApp, assert_problem, error_fields};
use crate::on_both_databases;

on_both_databases!(
    registration_returns_201_and_the_user_without_secrets,
    every_register_alias_behaves_like_the_canonical_route,
    a_taken_username_is_409_in_any_case_or_width,
    a_taken_email_is_409_ignoring_case,
    registering_as_admin_is_403_unless_an_admin_asks,
    an_unknown_role_is_400,
    twenty_concurrent_registrations_of_one_name_give_one_201,
    username_length_limits_are_inclusive,
    password_rules_are_enforced_at_their_boundaries,
    the_minimum_password_length_can_be_raised,
    email_and_name_limits_are_inclusive,
    every_problem_is_listed_at_once,
    an_email_that_grows_under_normalisation_is_400_not_500,
    l33t_and_sequence_spellings_of_common_passwords_are_refused,
    email_is_required_when_configured,
    an_account_may_be_registered_by_email_alone,
    first_and_last_names_are_kept_and_checked,
);

async fn register(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/auth/register", body).await
}

async fn registration_returns_201_and_the_user_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = register(
        &app,
        json!({"username": "Alice", "password": PASSWORD, "email": "Alice@Example.com", "name": "Alice A."}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["message"], "User registered successfully");
    let user = &body["user"];
    assert_eq!(user["username"], "Alice");
    assert_eq!(user["email"], "Alice@Example.com");
    assert_eq!(user["name"], "Alice A.");
    assert_eq!(user["role"], "user");
    let id = uuid::Uuid::parse_str(user["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    assert!(user["created_at"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&String> = user.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        9,
        "exactly the contract's user fields: {keys:?}"
    );
    assert_eq!(user["first_name"], Value::Null);
    assert_eq!(user["last_name"], Value::Null);
    let text = body.to_string();
    assert!(!text.contains(PASSWORD) && !text.contains("argon2"));
}

async fn every_register_alias_behaves_like_the_canonical_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (i, path) in [
        "/auth/register",
        "/register",
        "/signup",
        "/api/auth/register",
    ]
    .iter()
    .enumerate()
    {
        let name = format!("alias{i}");
        let created = app
            .post(path, json!({"username": name, "password": PASSWORD}))
            .await;
        assert_eq!(created.status(), StatusCode::CREATED, "{path}");
        let again = app
            .post(path, json!({"username": name, "password": PASSWORD}))
            .await;
        assert_problem(again, StatusCode::CONFLICT, "username_taken").await;
        let bad = app.post(path, json!({"username": "x"})).await;
        assert_problem(bad, StatusCode::BAD_REQUEST, "validation_failed").await;
    }
}

async fn a_taken_username_is_409_in_any_case_or_width(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.register("alice").await;
    for variant in ["alice", "Alice", "ALICE", "ａｌｉｃｅ"] {
        let response = register(&app, json!({"username": variant, "password": PASSWORD})).await;
        let body = assert_problem(response, StatusCode::CONFLICT, "username_taken").await;
        assert_eq!(body["title"], "Conflict");
    }
    // A longer name sharing the prefix is a different name.
    assert_eq!(
        register(&app, json!({"username": "alice2", "password": PASSWORD}))
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn a_taken_email_is_409_ignoring_case(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = register(
        &app,
        json!({"username": "one", "password": PASSWORD, "email": "same@example.com"}),
    )
    .await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let second = register(
        &app,
        json!({"username": "two", "password": PASSWORD, "email": "SAME@example.COM"}),
    )
    .await;
    assert_problem(second, StatusCode::CONFLICT, "email_taken").await;
    // The refused registration left nothing behind: the name is still free.
    let third = register(&app, json!({"username": "two", "password": PASSWORD})).await;
    assert_eq!(third.status(), StatusCode::CREATED);
    // Both taken at once: the username is reported, on every database.
    let both = register(
        &app,
        json!({"username": "ONE", "password": PASSWORD, "email": "same@example.com"}),
    )
    .await;
    assert_problem(both, StatusCode::CONFLICT, "username_taken").await;
}

async fn registering_as_admin_is_403_unless_an_admin_asks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let anonymous = register(
        &app,
        json!({"username": "mallory", "password": PASSWORD, "role": "admin"}),
    )
    .await;
    assert_problem(anonymous, StatusCode::FORBIDDEN, "role_forbidden").await;

    let user_token = app.user_token("eve").await;
    let as_user = app
        .request(
            reqwest::Method::POST,
            "/auth/register",
            Some(&user_token),
            Some(json!({"username": "mallory", "password": PASSWORD, "role": "admin"})),
        )
        .await;
    assert_problem(as_user, StatusCode::FORBIDDEN, "role_forbidden").await;

    let admin_token = app.admin_token("root").await;
    let as_admin = app
        .request(
            reqwest::Method::POST,
            "/auth/register",
            Some(&admin_token),
            Some(json!({"username": "deputy", "password": PASSWORD, "role": "admin"})),
        )
        .await;
    assert_eq!(as_admin.status(), StatusCode::CREATED);
    assert_eq!(
        as_admin.json::<Value>().await.unwrap()["user"]["role"],
        "admin"
    );

    let explicit_user = register(
        &app,
        json!({"username": "plain", "password": PASSWORD, "role": "user"}),
    )
    .await;
    assert_eq!(explicit_user.status(), StatusCode::CREATED);
}

async fn an_unknown_role_is_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = register(
        &app,
        json!({"username": "bob", "password": PASSWORD, "role": "superuser"}),
    )
    .await;
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("role".into(), "invalid_role".into())]
    );
}

async fn twenty_concurrent_registrations_of_one_name_give_one_201(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempts = (0..20).map(|i| {
        let app = &app;
        async move {
            let name = if i % 2 == 0 { "racer" } else { "RACER" };
            register(app, json!({"username": name, "password": PASSWORD}))
                .await
                .status()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    let created = statuses
        .iter()
        .filter(|s| **s == StatusCode::CREATED)
        .count();
    let conflicts = statuses
        .iter()
        .filter(|s| **s == StatusCode::CONFLICT)
        .count();
    assert_eq!((created, conflicts), (1, 19), "{statuses:?}");
    // The winner really exists and can log in.
    app.login("racer", PASSWORD).await;
}

async fn username_length_limits_are_inclusive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        ("ab".to_owned(), Some("too_short")),
        ("abc".to_owned(), None),
        ("u".repeat(32), None),
        ("v".repeat(33), Some("too_long")),
        ("_leading".to_owned(), Some("invalid_start")),
        ("with space".to_owned(), Some("invalid_characters")),
        ("ünïcode".to_owned(), Some("invalid_characters")),
        ("nul\u{0}byte".to_owned(), Some("control_character")),
    ];
    for (username, expected) in cases {
        let response = register(&app, json!({"username": username, "password": PASSWORD})).await;
        match expected {
            None => assert_eq!(response.status(), StatusCode::CREATED, "{username:?}"),
            Some(code) => {
                let body =
                    assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
                assert_eq!(
                    error_fields(&body),
                    vec![("username".into(), code.into())],
                    "{username:?}"
                );
            }
        }
    }
}

async fn password_rules_are_enforced_at_their_boundaries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        ("xk4!qz9".to_owned(), Some("too_short")),
        ("xk4!qz9#".to_owned(), None),
        ("xk4!qz9#".repeat(16), None),
        (format!("{}y", "xk4!qz9#".repeat(16)), Some("too_long")),
        ("password".to_owned(), Some("common_password")),
        ("Password1".to_owned(), Some("common_password")),
        ("zzzzzzzzzzzz".to_owned(), Some("repeated_character")),
        ("my-CAROL-secret-9".to_owned(), Some("contains_username")),
        ("my-carol.mail-secret".to_owned(), Some("contains_email")),
        ("tab\tinside password".to_owned(), Some("control_character")),
        ("spaces are fine here".to_owned(), None),
    ];
    for (i, (password, expected)) in cases.into_iter().enumerate() {
        let username = match expected {
            Some("contains_username") => "carol".to_owned(),
            _ => format!("user{i}"),
        };
        let email = match expected {
            Some("contains_email") => "carol.mail@example.com".to_owned(),
            _ => format!("person{i}@example.com"),
        };
        let response = register(
            &app,
            json!({"username": username, "password": password, "email": email}),
        )
        .await;
        match expected {
            None => assert_eq!(response.status(), StatusCode::CREATED, "{password:?}"),
            Some(code) => {
                let body =
                    assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
                assert_eq!(
                    error_fields(&body),
                    vec![("password".into(), code.into())],
                    "{password:?}"
                );
                let echoed = body["detail"].to_string() + &body["errors"][0]["message"].to_string();
                assert!(!echoed.contains(&password), "the password is not echoed");
            }
        }
    }
}

async fn the_minimum_password_length_can_be_raised(backend: Backend) {
    let app = TestApp::spawn_with(backend, Settings::new().set("PASSWORD_MIN_LENGTH", "12")).await;
    let short = register(&app, json!({"username": "dave", "password": "xk4!qz9#abc"})).await;
    let body = assert_problem(short, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("password".into(), "too_short".into())]
    );
    let ok = register(
        &app,
        json!({"username": "dave", "password": "xk4!qz9#abcd"}),
    )
    .await;
    assert_eq!(ok.status(), StatusCode::CREATED);
}

/// An address of exactly `total` characters with DNS-valid labels.
fn email_of_length(total: usize) -> String {
    let mut domain = format!("{}.{}.", "b".repeat(60), "c".repeat(60));
    let last = total - 64 - 1 - domain.len() - 4;
    domain.push_str(&"d".repeat(last));
    format!("{}@{domain}.com", "a".repeat(64))
}

async fn email_and_name_limits_are_inclusive(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let at_limit = register(
        &app,
        json!({"username": "edge1", "password": PASSWORD, "email": email_of_length(254), "name": "n".repeat(100)}),
    )
    .await;
    assert_eq!(at_limit.status(), StatusCode::CREATED);
    let stored: Value = at_limit.json().await.unwrap();
    assert_eq!(
        stored["user"]["email"].as_str().unwrap().len(),
        254,
        "nothing truncated"
    );
    assert_eq!(
        stored["user"]["name"].as_str().unwrap().chars().count(),
        100
    );

    let over = register(
        &app,
        json!({"username": "edge2", "password": PASSWORD, "email": email_of_length(255), "name": "n".repeat(101)}),
    )
    .await;
    let body = assert_problem(over, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![
            ("email".into(), "too_long".into()),
            ("name".into(), "too_long".into())
        ]
    );
    let invalid = register(
        &app,
        json!({"username": "edge3", "password": PASSWORD, "email": "no-at-sign"}),
    )
    .await;
    let body = assert_problem(invalid, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("email".into(), "invalid_email".into())]
    );
}

async fn every_problem_is_listed_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = register(
        &app,
        json!({"username": "x", "password": "short", "email": "nope", "role": "boss"}),
    )
    .await;
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    let mut fields: Vec<String> = error_fields(&body).into_iter().map(|(f, _)| f).collect();
    fields.sort();
    assert_eq!(fields, ["email", "password", "role", "username"]);

    let empty = register(&app, json!({})).await;
    let body = assert_problem(empty, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![
            ("username".into(), "required".into()),
            ("password".into(), "required".into())
        ]
    );
}

async fn email_is_required_when_configured(backend: Backend) {
    let app = TestApp::spawn_with(backend, Settings::new().set("REQUIRE_EMAIL", "true")).await;
    let without = register(&app, json!({"username": "frank", "password": PASSWORD})).await;
    let body = assert_problem(without, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("email".into(), "required".into())]
    );
    let with = register(
        &app,
        json!({"username": "frank", "password": PASSWORD, "email": "f@example.com"}),
    )
    .await;
    assert_eq!(with.status(), StatusCode::CREATED);
}

async fn an_email_that_grows_under_normalisation_is_400_not_500(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // 137 characters as sent; NFKC turns each ㍿ into four letters.
    let email = format!("a@{}.com", vec!["㍿".repeat(10); 12].join("."));
    let response = register(
        &app,
        json!({"username": "idn", "password": PASSWORD, "email": email}),
    )
    .await;
    let body = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("email".into(), "too_long".into())]
    );
    let token = app.user_token("idn").await;
    let patch = app
        .request(
            reqwest::Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"email": email})),
        )
        .await;
    assert_problem(patch, StatusCode::BAD_REQUEST, "validation_failed").await;
}

async fn l33t_and_sequence_spellings_of_common_passwords_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (i, password) in [
        "P@ssw0rd",
        "passw0rd",
        "87654321",
        "12345678",
        "qwertyuiop",
        "1qaz2wsx",
    ]
    .iter()
    .enumerate()
    {
        let response = register(
            &app,
            json!({"username": format!("user{i}"), "password": password}),
        )
        .await;
        let body = assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
        assert_eq!(
            error_fields(&body),
            vec![("password".into(), "common_password".into())],
            "{password}"
        );
    }
}

async fn an_account_may_be_registered_by_email_alone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The FastAPI backend's client: email, names and password, no username.
    let created = register(
        &app,
        json!({"email": "Fay@Example.com", "first_name": "Fay", "last_name": "Wray",
               "password": PASSWORD}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let user = created.json::<Value>().await.unwrap()["user"].clone();
    assert_eq!(user["username"], Value::Null);
    assert_eq!(user["email"], "Fay@Example.com");
    let login = app
        .post(
            "/auth/login",
            json!({"email": "fay@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let token = login.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Greeted, and named in the token, by the email.
    let welcome: Value = app.get("/protected", &token).await.json().await.unwrap();
    assert_eq!(welcome["message"], "Welcome, Fay@Example.com!");
    assert_eq!(welcome["username"], Value::Null);
    assert_eq!(
        crate::harness::jwt_claims(&token)["preferred_username"],
        "Fay@Example.com"
    );
    // The email is all the account is called by: it cannot be removed,
    // unless a username comes with it.
    let removed = app
        .request(
            reqwest::Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"email": null})),
        )
        .await;
    let body = assert_problem(removed, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("email".into(), "required".into())]
    );
    let named = app
        .request(
            reqwest::Method::PATCH,
            "/me",
            Some(&token),
            Some(json!({"username": "fay", "email": null})),
        )
        .await;
    assert_eq!(named.status(), StatusCode::OK);
    let me: Value = named.json().await.unwrap();
    assert_eq!(
        (me["username"].as_str(), me["email"].as_str()),
        (Some("fay"), None)
    );

    // Neither a username nor an email: 400 naming the username.
    let neither = register(&app, json!({"password": PASSWORD, "first_name": "No"})).await;
    let body = assert_problem(neither, StatusCode::BAD_REQUEST, "validation_failed").await;
    assert_eq!(
        error_fields(&body),
        vec![("username".into(), "required".into())]
    );
    // Two email-only accounts do not collide on their missing usernames.
    let second = register(
        &app,
        json!({"email": "gus@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(second.status(), StatusCode::CREATED);
    let third = register(
        &app,
        json!({"email": "hal@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(third.status(), StatusCode::CREATED);
}

async fn first_and_last_names_are_kept_and_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = register(
        &app,
        json!({"username": "ida", "password": PASSWORD, "first_name": "Ida", "last_name": "Lupino"}),
    )
    .await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let token = app.login("ida", PASSWORD).await;
    let me: Value = app.get("/me", &token).await.json().await.unwrap();
    assert_eq!(
        (me["first_name"].as_str(), me["last_name"].as_str()),
        (Some("Ida"), Some("Lupino"))
    );
    // PATCH /user/update, as the FastAPI backend's client sends it.
    let changed = app
        .request(
            reqwest::Method::PATCH,
            "/user/update",
            Some(&token),
            Some(json!({"first_name": "Idá", "last_name": null})),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let me: Value = changed.json().await.unwrap();
    assert_eq!(
        (me["first_name"].as_str(), me["last_name"].as_str()),
        (Some("Idá"), None)
    );
    // The name rule holds for both.
    let long = "x".repeat(101);
    let refused = register(
        &app,
        json!({"username": "jo", "password": PASSWORD, "first_name": long, "last_name": "a\u{202e}b"}),
    )
    .await;
    let body = assert_problem(refused, StatusCode::BAD_REQUEST, "validation_failed").await;
    let fields: Vec<String> = error_fields(&body).into_iter().map(|(f, _)| f).collect();
    assert!(
        fields.contains(&"first_name".to_owned()) && fields.contains(&"last_name".to_owned()),
        "{fields:?}"
    );
}
