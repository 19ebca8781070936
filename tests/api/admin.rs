use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, TestApp, assert_problem, error_fields};
use crate::on_both_databases;

on_both_databases!(
    admins_list_users_across_pages_with_a_cursor,
    the_listing_filters_by_a_case_insensitive_prefix,
    bad_paging_parameters_are_400,
    only_admins_may_list_users,
    an_admin_reads_a_user_with_account_state,
    disabling_ends_sessions_and_enabling_allows_login_again,
    a_role_change_ends_sessions_and_takes_effect,
    an_admin_deletes_a_user,
    bad_admin_changes_are_refused,
    the_last_enabled_admin_cannot_be_demoted_disabled_or_deleted,
    two_admins_demoting_each_other_at_once_leave_one_admin,
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

async fn user_id_of(app: &TestApp, admin: &str, username: &str) -> String {
    let page = list(app, admin, &format!("?q={username}")).await;
    page["users"][0]["id"].as_str().unwrap().to_owned()
}

async fn patch_user(app: &TestApp, admin: &str, id: &str, body: Value) -> reqwest::Response {
    app.request(
        Method::PATCH,
        &format!("/admin/users/{id}"),
        Some(admin),
        Some(body),
    )
    .await
}

async fn an_admin_reads_a_user_with_account_state(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    let user = app.user_token("alice").await;
    let id = user_id_of(&app, &admin, "alice").await;
    let response = app.get(&format!("/admin/users/{id}"), &admin).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["username"], "alice");
    assert_eq!(body["disabled"], false);
    assert!(
        body["last_login_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(!body.to_string().contains("argon2"));
    let unknown = uuid::Uuid::now_v7();
    assert_problem(
        app.get(&format!("/admin/users/{unknown}"), &admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/admin/users/not-an-id", &admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"disabled": true}))),
        (Method::DELETE, None),
    ] {
        let response = app
            .request(method, &format!("/admin/users/{id}"), Some(&user), body)
            .await;
        assert_problem(response, StatusCode::FORBIDDEN, "insufficient_role").await;
    }
}

async fn disabling_ends_sessions_and_enabling_allows_login_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    app.register("alice").await;
    let pair = app.login_pair("alice", PASSWORD).await;
    let id = user_id_of(&app, &admin, "alice").await;
    let response = patch_user(&app, &admin, &id, json!({"disabled": true})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["disabled"], true);
    assert_problem(
        app.get("/me", &pair.access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    )
    .await;
    let refreshed = app
        .post("/auth/refresh", json!({"refresh_token": pair.refresh}))
        .await;
    assert_problem(refreshed, StatusCode::UNAUTHORIZED, "invalid_refresh_token").await;
    // Disabled is revealed only to someone with the right password.
    let wrong = app
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "wrong guess"}),
        )
        .await;
    assert_problem(wrong, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    let right = app
        .post(
            "/auth/login",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_problem(right, StatusCode::FORBIDDEN, "account_disabled").await;
    assert_eq!(
        patch_user(&app, &admin, &id, json!({"disabled": false}))
            .await
            .status(),
        StatusCode::OK
    );
    app.login("alice", PASSWORD).await;
}

async fn a_role_change_ends_sessions_and_takes_effect(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    app.register("alice").await;
    let pair = app.login_pair("alice", PASSWORD).await;
    let id = user_id_of(&app, &admin, "alice").await;
    let response = patch_user(&app, &admin, &id, json!({"role": "admin"})).await;
    assert_eq!(response.json::<Value>().await.unwrap()["role"], "admin");
    assert_eq!(
        app.get("/me", &pair.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_problem(
        app.post("/auth/refresh", json!({"refresh_token": pair.refresh}))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    let promoted = app.login("alice", PASSWORD).await;
    assert_eq!(
        app.get("/admin/users", &promoted).await.status(),
        StatusCode::OK
    );
    // Setting what is already set changes nothing and ends nothing.
    assert_eq!(
        patch_user(
            &app,
            &admin,
            &id,
            json!({"role": "admin", "disabled": false})
        )
        .await
        .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/admin/users", &promoted).await.status(),
        StatusCode::OK
    );
}

async fn an_admin_deletes_a_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    let token = app.user_token("alice").await;
    let id = user_id_of(&app, &admin, "alice").await;
    let path = format!("/admin/users/{id}");
    assert_eq!(
        app.request(Method::DELETE, &path, Some(&admin), None)
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.get("/me", &token).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_problem(
        app.get(&path, &admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.request(Method::DELETE, &path, Some(&admin), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.register("alice").await;
}

async fn bad_admin_changes_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    app.register("alice").await;
    let id = user_id_of(&app, &admin, "alice").await;
    let body = assert_problem(
        patch_user(&app, &admin, &id, json!({"role": "boss"})).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
    )
    .await;
    assert_eq!(
        error_fields(&body),
        vec![("role".into(), "invalid_role".into())]
    );
    assert_problem(
        patch_user(&app, &admin, &id, json!({"disabled": "yes"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_type",
    )
    .await;
    assert_problem(
        patch_user(&app, &admin, &id, json!({"username": "mallory"})).await,
        StatusCode::BAD_REQUEST,
        "unknown_field",
    )
    .await;
    let unknown = uuid::Uuid::now_v7();
    assert_problem(
        patch_user(
            &app,
            &admin,
            &unknown.to_string(),
            json!({"disabled": true}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn the_last_enabled_admin_cannot_be_demoted_disabled_or_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    let id = user_id_of(&app, &admin, "root").await;
    for change in [json!({"role": "user"}), json!({"disabled": true})] {
        assert_problem(
            patch_user(&app, &admin, &id, change).await,
            StatusCode::CONFLICT,
            "last_admin",
        )
        .await;
    }
    let path = format!("/admin/users/{id}");
    assert_problem(
        app.request(Method::DELETE, &path, Some(&admin), None).await,
        StatusCode::CONFLICT,
        "last_admin",
    )
    .await;
    // A disabled admin does not count: with one, the enabled one is still last.
    let deputy = app.admin_token("deputy").await;
    let deputy_id = user_id_of(&app, &admin, "deputy").await;
    assert_eq!(
        patch_user(&app, &admin, &deputy_id, json!({"disabled": true}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_problem(
        patch_user(&app, &admin, &id, json!({"role": "user"})).await,
        StatusCode::CONFLICT,
        "last_admin",
    )
    .await;
    assert_eq!(
        app.get("/me", &deputy).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get("/me", &admin).await.status(), StatusCode::OK);
}

async fn two_admins_demoting_each_other_at_once_leave_one_admin(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for round in 0..5 {
        let (a, b) = (format!("left{round}"), format!("right{round}"));
        let token_a = app.admin_token(&a).await;
        let token_b = app.admin_token(&b).await;
        let (id_a, id_b) = (
            user_id_of(&app, &token_a, &a).await,
            user_id_of(&app, &token_a, &b).await,
        );
        // Everyone else steps down first, so these two are the only admins.
        let admins: Value = list(&app, &token_a, "?limit=100").await;
        for user in admins["users"].as_array().unwrap() {
            let id = user["id"].as_str().unwrap();
            if user["role"] == "admin" && id != id_a && id != id_b {
                assert_eq!(
                    patch_user(&app, &token_a, id, json!({"role": "user"}))
                        .await
                        .status(),
                    StatusCode::OK
                );
            }
        }
        let (left, right) = tokio::join!(
            patch_user(&app, &token_a, &id_b, json!({"role": "user"})),
            patch_user(&app, &token_b, &id_a, json!({"role": "user"})),
        );
        let mut statuses = [left.status().as_u16(), right.status().as_u16()];
        let bodies = [left.text().await.unwrap(), right.text().await.unwrap()];
        statuses.sort();
        // One wins; the other is refused (409), finds its own role gone
        // before it acts (401/403), or, on a machine too loaded to hand out
        // a database connection in time, is told to retry (503). Never both.
        assert_eq!(statuses[0], 200, "round {round}: {statuses:?} {bodies:?}");
        assert!(
            [401, 403, 409, 503].contains(&statuses[1]),
            "round {round}: {statuses:?} {bodies:?}"
        );
        let remaining = app
            .state
            .store
            .list_users(None, 100, None)
            .await
            .unwrap()
            .users;
        let enabled_admins = remaining
            .iter()
            .filter(|u| u.role == gatehouse::domain::Role::Admin && !u.disabled)
            .count();
        assert_eq!(enabled_admins, 1, "round {round}");
    }
}
