//! Health checks, request ids, response headers, and what clients see when
//! the database goes away.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, Settings, TestApp, assert_problem};
use crate::on_both_databases;

on_both_databases!(
    health_reports_live_and_ready,
    every_response_carries_a_request_id_and_nosniff,
    a_client_request_id_is_kept_only_when_well_formed,
    a_database_outage_is_a_quick_503_and_the_server_recovers,
    metrics_count_requests_by_route_template,
    invented_methods_cannot_grow_the_metrics,
);

async fn health_reports_live_and_ready(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/health/live", "/health/ready"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.json::<Value>().await.unwrap(),
            json!({"status": "ok"})
        );
    }
}

async fn every_response_carries_a_request_id_and_nosniff(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let responses = [
        app.client
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap(),
        app.client.get(app.url("/me")).send().await.unwrap(),
        app.client.get(app.url("/nowhere")).send().await.unwrap(),
        app.post(
            "/auth/login",
            json!({"username": "x", "password": PASSWORD}),
        )
        .await,
    ];
    for response in responses {
        let id = response.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
    }
}

async fn a_client_request_id_is_kept_only_when_well_formed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let long = "x".repeat(128);
    for (sent, kept) in [
        ("trace-1_2.3:4", true),
        (long.as_str(), true),
        ("has space", false),
        ("semi;colon", false),
    ] {
        let response = app
            .client
            .get(app.url("/me"))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let echoed = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(echoed == sent, kept, "{sent:?} → {echoed:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body["request_id"],
            echoed.as_str(),
            "the problem body names the same id"
        );
    }
    let too_long = "y".repeat(129);
    let response = app
        .client
        .get(app.url("/me"))
        .header("x-request-id", &too_long)
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], too_long.as_str());
}

async fn a_database_outage_is_a_quick_503_and_the_server_recovers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.user_token("alice").await;
    let outage = app.db.outage().await;

    let write = app
        .client
        .post(app.url("/auth/register"))
        .json(&json!({"username": "bob", "password": PASSWORD}));
    let reads = [
        app.client.get(app.url("/me")).bearer_auth(&token),
        app.client.get(app.url("/admin/users")).bearer_auth(&token),
    ];
    let mut affected = vec![write];
    if outage.stops_reads() {
        affected.extend(reads);
        affected.push(
            app.client
                .post(app.url("/auth/login"))
                .json(&json!({"username": "alice", "password": PASSWORD})),
        );
    }
    for request in affected {
        let started = Instant::now();
        let response = request.send().await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "answered in {:?}",
            started.elapsed()
        );
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=30).contains(&retry_after));
        assert_problem(
            response,
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
        )
        .await;
    }
    if outage.stops_reads() {
        let started = Instant::now();
        let ready = app
            .client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(8));
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            ready.json::<Value>().await.unwrap(),
            json!({"status": "unavailable"})
        );
    } else {
        assert_eq!(
            app.get("/me", &token).await.status(),
            StatusCode::OK,
            "reads go on"
        );
    }
    let live = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK, "the process itself is fine");

    outage.end().await;
    // The pool reconnects by itself; no restart is needed.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = app.get("/me", &token).await.status();
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "never anything but 503 while recovering"
        );
        assert!(Instant::now() < deadline, "recovered within 20 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(
        app.client
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    app.register("bob").await;
}

async fn metrics_count_requests_by_route_template(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token("root").await;
    app.post(
        "/auth/login",
        json!({"username": "root", "password": "wrong guess"}),
    )
    .await;
    let someone = uuid::Uuid::now_v7();
    app.get(&format!("/admin/users/{someone}"), &admin).await;
    app.client
        .get(app.url(&format!("/nothing/{someone}")))
        .send()
        .await
        .unwrap();

    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    for expected in [
        r#"http_requests_total{method="GET",route="/admin/users/{id}",status="404"}"#,
        r#"http_requests_total{method="POST",route="/auth/login",status="401"}"#,
        r#"route="unmatched""#,
        "http_request_duration_seconds_bucket{",
        r#"gatehouse_logins_total{outcome="failed"}"#,
        r#"gatehouse_logins_total{outcome="succeeded"}"#,
        "gatehouse_hash_wait_seconds_bucket{",
        "gatehouse_hash_queue_depth",
        r#"gatehouse_db_pool_connections{state="idle"}"#,
        "gatehouse_db_pool_wait_seconds_bucket{",
    ] {
        assert!(text.contains(expected), "{expected} missing from:\n{text}");
    }
    assert!(
        !text.contains(&someone.to_string()),
        "raw paths never become labels"
    );
}

async fn invented_methods_cannot_grow_the_metrics(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let render = || async {
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let invented = |i: usize| format!("X{i}{}", "M".repeat(4000));
    for i in 0..20 {
        let method = Method::from_bytes(invented(i).as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/health/live"))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    let text = render().await;
    assert!(!text.contains("MMMM"), "no invented method became a label");
    assert!(text.contains(r#"method="other""#), "{text}");
}

/// A file made readable by others (an older release, a copy, a restore
/// from backup) is made private again at the next start, WAL files too.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_sqlite_file_with_loose_permissions_is_tightened_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.register("alice").await;
    let db = app.db.clone();
    app.stop().await;
    let file = db.url.strip_prefix("sqlite://").unwrap().to_owned();
    let companions = [file.clone(), format!("{file}-wal"), format!("{file}-shm")];
    // The WAL files may be gone after a clean shutdown; make them exist.
    for path in &companions {
        let _ = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let restarted = TestApp::spawn_on(db, Settings::new()).await;
    restarted.login("alice", PASSWORD).await;
    for path in &companions {
        let mode = std::fs::metadata(path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{path} has mode {mode:o}");
    }
}

/// The SQLite file holds password hashes and signing keys: only its owner
/// may read it, and its WAL files likewise.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn(Backend::Sqlite).await;
    app.register("alice").await;
    let file = app.db.url.strip_prefix("sqlite://").unwrap().to_owned();
    for path in [file.clone(), format!("{file}-wal"), format!("{file}-shm")] {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{path} has mode {mode:o}");
    }
}
