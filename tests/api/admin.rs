use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TestApp, assert_problem, error_fields};
use crate::on_both_databases;

on_both_databases!(
    admins_list_users_across_pages_with_a_cursor,
    the_listing_filters_by_a_case_insensitive_prefix,
    bad_paging_parameters_are_400,
    only_admins_may_list_users,
);

async fn list(app: &TestApp, token: &str, query: &str) -> Value {
    let response = app.get(&format!("/admin/users{query}"), token).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

fn names(page: &Value) -> Vec<String> {
    page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

async fn admins_list_users_across_pages_with_a_cursor(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.admin_token("root").await;
    for name in ["usr1", "usr2", "usr3", "usr4"] {
        app.register(name).await;
    }
    let first = list(&app, &token, "?limit=3").await;
    assert_eq!(names(&first), ["root", "usr1", "usr2"]);
    let cursor = first["next_cursor"].as_str().expect("a second page exists");
    let second = list(&app, &token, &format!("?limit=3&cursor={cursor}")).await;
    assert_eq!(names(&second), ["usr3", "usr4"]);
    assert_eq!(second["next_cursor"], Value::Null);
    // An exact fit has no further page.
    let all = list(&app, &token, "?limit=5").await;
    assert_eq!(all["next_cursor"], Value::Null);
    // The default page holds them all; users carry no secrets.
    let default = list(&app, &token, "").await;
    assert_eq!(names(&default).len(), 5);
    assert!(!default.to_string().contains("argon2") && !default.to_string().contains(PASSWORD));
}

async fn the_listing_filters_by_a_case_insensitive_prefix(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.admin_token("root").await;
    app.post(
        "/auth/register",
        json!({"username": "Alice", "password": PASSWORD, "email": "wonder@example.com"}),
    )
    .await;
    app.register("alfred").await;
    app.register("bob").await;
    app.register("a_b").await;
    app.register("axb").await;
    assert_eq!(
        names(&list(&app, &token, "?q=AL").await),
        ["Alice", "alfred"]
    );
    assert_eq!(names(&list(&app, &token, "?q=WONDER").await), ["Alice"]);
    // LIKE wildcards in q are literal characters.
    assert_eq!(names(&list(&app, &token, "?q=a_").await), ["a_b"]);
    assert_eq!(
        names(&list(&app, &token, "?q=%25").await),
        Vec::<String>::new()
    );
}

async fn bad_paging_parameters_are_400(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.admin_token("root").await;
    for (query, field, code) in [
        ("?limit=0", "limit", "invalid_limit"),
        ("?limit=101", "limit", "invalid_limit"),
        ("?limit=ten", "limit", "invalid_limit"),
        ("?cursor=garbage", "cursor", "invalid_cursor"),
    ] {
        let response = app.get(&format!("/admin/users{query}"), &token).await;
        let body = assert_problem(response, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(error_fields(&body), vec![(field.into(), code.into())]);
    }
    assert_eq!(names(&list(&app, &token, "?limit=1").await).len(), 1);
    assert_eq!(names(&list(&app, &token, "?limit=100").await).len(), 1);
}

async fn only_admins_may_list_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let user = app.user_token("alice").await;
    assert_problem(
        app.get("/admin/users", &user).await,
        StatusCode::FORBIDDEN,
        "insufficient_role",
    )
    .await;
    let anonymous = app
        .client
        .get(app.url("/admin/users"))
        .send()
        .await
        .unwrap();
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "missing_token").await;
}
