//! Account lockout, the per-IP limit, client addresses behind proxies,
//! equal timing for unknown accounts, and the bounded hashing queue.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, Settings, TestApp, assert_problem};
use crate::on_both_databases;

on_both_databases!(
    an_account_locks_after_the_threshold_for_every_spelling_of_it,
    a_lock_lifts_after_its_time_and_repeated_locks_grow,
    an_unknown_account_answers_exactly_like_a_real_one,
    lockout_counters_survive_a_restart,
    the_per_ip_limit_covers_every_credential_endpoint,
    a_spoofed_forwarded_for_does_not_escape_the_limit,
    a_trusted_proxy_names_the_client,
    ipv4_clients_of_a_dual_stack_socket_are_plain_ipv4_addresses,
    a_zero_rate_limit_turns_the_per_ip_limit_off,
    failed_logins_take_the_same_time_for_unknown_and_real_accounts,
    a_full_hashing_queue_is_503_while_other_routes_stay_fast,
    the_password_rules_run_in_the_hashing_pool,
    stale_counters_and_old_audit_events_are_swept,
);

fn strict(threshold: &str, seconds: &str) -> Settings {
    Settings::new()
        .set("LOCKOUT_THRESHOLD", threshold)
        .set("LOCKOUT_SECONDS", seconds)
        .set("RATE_LIMIT_PER_MINUTE", "0")
}

async fn login(app: &TestApp, body: Value) -> reqwest::Response {
    app.post("/auth/login", body).await
}

fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn an_account_locks_after_the_threshold_for_every_spelling_of_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, strict("3", "60")).await;
    app.post(
        "/auth/register",
        json!({"username": "alice", "password": PASSWORD, "email": "alice@example.com"}),
    )
    .await;
    app.register("bob").await;
    // Failures by any spelling count against the one account.
    for body in [
        json!({"username": "alice", "password": "wrong guess 1"}),
        json!({"username": "ALICE", "password": "wrong guess 2"}),
        json!({"email": "Alice@Example.com", "password": "wrong guess 3"}),
    ] {
        assert_problem(
            login(&app, body).await,
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
        )
        .await;
    }
    for body in [
        json!({"username": "alice", "password": PASSWORD}),
        json!({"username": "ａｌｉｃｅ", "password": PASSWORD}),
        json!({"email": "alice@example.com", "password": "wrong again"}),
    ] {
        let response = login(&app, body).await;
        let wait = retry_after(&response);
        assert!((1..=60).contains(&wait), "Retry-After {wait}");
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    }
    // Another account is not affected.
    assert_eq!(
        login(&app, json!({"username": "bob", "password": PASSWORD}))
            .await
            .status(),
        StatusCode::OK
    );
}

async fn a_lock_lifts_after_its_time_and_repeated_locks_grow(backend: Backend) {
    let app = TestApp::spawn_with(backend, strict("2", "2")).await;
    app.register("alice").await;
    let wrong = json!({"username": "alice", "password": "wrong guess"});
    for _ in 0..2 {
        assert_eq!(
            login(&app, wrong.clone()).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let first = login(&app, wrong.clone()).await;
    assert_eq!(first.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!((1..=2).contains(&retry_after(&first)));
    tokio::time::sleep(Duration::from_millis(3100)).await;
    // The lock has lifted, but the account remembers it was locked: the
    // next lock is twice as long.
    for _ in 0..2 {
        assert_eq!(
            login(&app, wrong.clone()).await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let second = login(&app, wrong.clone()).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        (3..=4).contains(&retry_after(&second)),
        "{}",
        retry_after(&second)
    );
    tokio::time::sleep(Duration::from_millis(5100)).await;
    let right = login(&app, json!({"username": "alice", "password": PASSWORD})).await;
    assert_eq!(right.status(), StatusCode::OK);
}

/// Status, Retry-After and body (without the request id) of each answer.
async fn answers(
    app: &TestApp,
    username: &str,
    attempts: usize,
) -> Vec<(StatusCode, Option<u64>, Value)> {
    let mut seen = Vec::new();
    for i in 0..attempts {
        let response = login(
            app,
            json!({"username": username, "password": format!("wrong guess {i}")}),
        )
        .await;
        let status = response.status();
        let wait = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().parse().unwrap());
        let mut body: Value = response.json().await.unwrap();
        body.as_object_mut().unwrap().remove("request_id");
        seen.push((status, wait, body));
    }
    seen
}

async fn an_unknown_account_answers_exactly_like_a_real_one(backend: Backend) {
    let app = TestApp::spawn_with(backend, strict("3", "60")).await;
    app.register("alice").await;
    let real = answers(&app, "alice", 5).await;
    let unknown = answers(&app, "nobody-here", 5).await;
    let statuses: Vec<StatusCode> = real.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429].map(|s| StatusCode::from_u16(s).unwrap())
    );
    // The same answers; Retry-After counts down in whole seconds, so the
    // two runs may straddle a second boundary.
    for ((status, wait, body), (other_status, other_wait, other_body)) in real.iter().zip(&unknown)
    {
        assert_eq!((status, body), (other_status, other_body));
        assert_eq!(wait.is_some(), other_wait.is_some());
        assert!(
            wait.unwrap_or(0).abs_diff(other_wait.unwrap_or(0)) <= 1,
            "{wait:?} vs {other_wait:?}"
        );
    }
}

async fn lockout_counters_survive_a_restart(backend: Backend) {
    let first = TestApp::spawn_with(backend, strict("2", "60")).await;
    first.register("alice").await;
    for _ in 0..2 {
        login(
            &first,
            json!({"username": "alice", "password": "wrong guess"}),
        )
        .await;
    }
    let db = first.db.clone();
    first.stop().await;
    let second = TestApp::spawn_on(db, strict("2", "60")).await;
    let response = login(&second, json!({"username": "alice", "password": PASSWORD})).await;
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

async fn the_per_ip_limit_covers_every_credential_endpoint(backend: Backend) {
    let settings = Settings::new().set("RATE_LIMIT_PER_MINUTE", "3");
    // Each endpoint on its own server, so each starts with a full allowance.
    let app = TestApp::spawn_with(backend, settings).await;
    for i in 0..3 {
        let response = app
            .post(
                "/signup",
                json!({"username": format!("user{i}"), "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let response = app
        .post(
            "/auth/register",
            json!({"username": "user9", "password": PASSWORD}),
        )
        .await;
    let wait = retry_after(&response);
    assert!((1..=20).contains(&wait), "Retry-After {wait}");
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    for (method, path, body) in [
        (
            Method::POST,
            "/login",
            json!({"username": "user0", "password": PASSWORD}),
        ),
        (Method::POST, "/auth/refresh", json!({"refresh_token": "x"})),
        (
            Method::PUT,
            "/me/password",
            json!({"current_password": PASSWORD, "new_password": "another fine one"}),
        ),
    ] {
        let response = app
            .request(method, path, Some("irrelevant"), Some(body))
            .await;
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    }
    // Routes that are not about credentials are not limited.
    assert_eq!(
        app.client
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

async fn a_spoofed_forwarded_for_does_not_escape_the_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, Settings::new().set("RATE_LIMIT_PER_MINUTE", "3")).await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        let response = app
            .client
            .post(app.url("/auth/login"))
            .header("x-forwarded-for", format!("203.0.113.{i}"))
            .header("forwarded", format!("for=198.51.100.{i}"))
            .json(&json!({"username": "alice", "password": "wrong guess"}))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
}

async fn a_trusted_proxy_names_the_client(backend: Backend) {
    let settings = Settings::new()
        .set("TRUSTED_PROXIES", "127.0.0.1/32, ::1")
        .set("RATE_LIMIT_PER_MINUTE", "2");
    let app = TestApp::spawn_with(backend, settings).await;
    app.register("alice").await;
    let via = |client_ip: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/auth/login"))
                .header("x-forwarded-for", format!("{client_ip}, 127.0.0.1"))
                .json(&json!({"username": "alice", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
        }
    };
    let body: Value = via("198.51.100.7").await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let sessions: Value = app.get("/me/sessions", &token).await.json().await.unwrap();
    assert_eq!(sessions["sessions"][0]["ip"], "198.51.100.7");
    // The limit is per client behind the proxy, not per proxy.
    assert_eq!(via("198.51.100.7").await.status(), StatusCode::OK);
    assert_eq!(
        via("198.51.100.7").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(via("198.51.100.8").await.status(), StatusCode::OK);
}

/// Bound to `[::]`, the server sees IPv4 clients as `::ffff:127.0.0.1`;
/// they must still match `TRUSTED_PROXIES=127.0.0.1`, be limited per
/// client behind the proxy, and be recorded as plain IPv4.
async fn ipv4_clients_of_a_dual_stack_socket_are_plain_ipv4_addresses(backend: Backend) {
    let settings = Settings::new()
        .bind("[::]:0")
        .set("TRUSTED_PROXIES", "127.0.0.1")
        .set("RATE_LIMIT_PER_MINUTE", "2");
    let app = TestApp::spawn_with(backend, settings).await;
    app.register("alice").await;
    let login_from = |client_ip: &'static str| {
        let app = &app;
        async move {
            app.client
                .post(app.url("/auth/login"))
                .header("x-forwarded-for", client_ip)
                .json(&json!({"username": "alice", "password": PASSWORD}))
                .send()
                .await
                .unwrap()
        }
    };
    let body: Value = login_from("198.51.100.7").await.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let sessions: Value = app.get("/me/sessions", &token).await.json().await.unwrap();
    assert_eq!(sessions["sessions"][0]["ip"], "198.51.100.7");
    // Each client behind the proxy has its own allowance.
    assert_eq!(login_from("198.51.100.7").await.status(), StatusCode::OK);
    assert_eq!(
        login_from("198.51.100.7").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(login_from("198.51.100.8").await.status(), StatusCode::OK);

    // Without a proxy in between, the client is 127.0.0.1, not ::ffff:….
    let direct = TestApp::spawn_with(backend, Settings::new().bind("[::]:0")).await;
    let token = direct.user_token("bob").await;
    let sessions: Value = direct
        .get("/me/sessions", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["sessions"][0]["ip"], "127.0.0.1");
    let ips = direct
        .db
        .texts("SELECT ip FROM gatehouse_audit_events")
        .await;
    assert!(
        !ips.is_empty() && ips.iter().all(|ip| ip == "127.0.0.1"),
        "{ips:?}"
    );
}

async fn a_zero_rate_limit_turns_the_per_ip_limit_off(backend: Backend) {
    let settings = Settings::new()
        .set("RATE_LIMIT_PER_MINUTE", "0")
        .set("LOCKOUT_THRESHOLD", "1000");
    let app = TestApp::spawn_with(backend, settings).await;
    for i in 0..40 {
        let response = login(
            &app,
            json!({"username": format!("ghost{i}"), "password": "wrong guess"}),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // The account lockout is a separate setting and still applies.
    let app = TestApp::spawn_with(backend, strict("2", "60")).await;
    for expected in [401, 401, 429] {
        let response = login(
            &app,
            json!({"username": "ghost", "password": "wrong guess"}),
        )
        .await;
        assert_eq!(response.status().as_u16(), expected);
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

async fn failed_logins_take_the_same_time_for_unknown_and_real_accounts(backend: Backend) {
    // Realistic hashing cost so the comparison is about the work done, with
    // the limits out of the way.
    let settings = strict("1000", "60")
        .set("ARGON2_MEMORY_KIB", "32768")
        .set("ARGON2_ITERATIONS", "2");
    let app = TestApp::spawn_with(backend, settings).await;
    app.register("alice").await;
    let mut real = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..15 {
        for (name, samples) in [("alice", &mut real), ("nobody-at-all", &mut unknown)] {
            let started = Instant::now();
            let response = login(
                &app,
                json!({"username": name, "password": format!("wrong guess {i}")}),
            )
            .await;
            samples.push(started.elapsed());
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    let (real, unknown) = (median(real), median(unknown));
    // Hashing dominates each attempt, so an unknown user that skipped it
    // would be several times faster; a noisy machine moves medians by far
    // less than the 40% allowed here.
    let difference = real.abs_diff(unknown);
    assert!(
        difference < real.max(unknown) * 2 / 5,
        "median for a real account {real:?}, for an unknown one {unknown:?}"
    );
}

async fn a_full_hashing_queue_is_503_while_other_routes_stay_fast(backend: Backend) {
    let settings = Settings::new()
        .set("MAX_CONCURRENT_HASHES", "1")
        .set("HASH_QUEUE_TIMEOUT_SECONDS", "1")
        .set("ARGON2_MEMORY_KIB", "65536")
        .set("ARGON2_ITERATIONS", "3")
        .set("RATE_LIMIT_PER_MINUTE", "0")
        .set("LOCKOUT_THRESHOLD", "1000");
    let app = TestApp::spawn_with(backend, settings).await;
    app.register("alice").await;
    let token = app.login("alice", PASSWORD).await;
    let burst = (0..24).map(|i| {
        login(
            &app,
            json!({"username": "alice", "password": format!("wrong guess {i}")}),
        )
    });
    let probes = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut slowest = Duration::ZERO;
        for _ in 0..5 {
            let started = Instant::now();
            assert_eq!(app.get("/me", &token).await.status(), StatusCode::OK);
            assert_eq!(
                app.client
                    .get(app.url("/health/live"))
                    .send()
                    .await
                    .unwrap()
                    .status(),
                StatusCode::OK
            );
            slowest = slowest.max(started.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        slowest
    };
    let (responses, slowest) = tokio::join!(futures::future::join_all(burst), probes);
    let mut unavailable = 0;
    for response in responses {
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(retry_after(&response) >= 1);
                assert_problem(
                    response,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                )
                .await;
                unavailable += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(unavailable > 0, "the queue overflowed and was refused");
    assert!(
        slowest < Duration::from_secs(1),
        "/me and /health/live never waited on hashing: {slowest:?}"
    );
}

/// The password rules are CPU work on attacker-chosen input: they queue for
/// the bounded hashing pool like a hash does, and never run on the threads
/// that answer other requests. With the pool's one slot held, a
/// registration (even one that fails validation elsewhere) waits for it.
async fn the_password_rules_run_in_the_hashing_pool(backend: Backend) {
    let settings = Settings::new()
        .set("MAX_CONCURRENT_HASHES", "1")
        .set("HASH_QUEUE_TIMEOUT_SECONDS", "1")
        .set("RATE_LIMIT_PER_MINUTE", "0");
    let app = TestApp::spawn_with(backend, settings).await;
    let hasher = app.state.hasher.clone();
    let (held_tx, held_rx) = tokio::sync::oneshot::channel();
    let holder = tokio::spawn(async move {
        hasher
            .run_blocking(move || {
                let _ = held_tx.send(());
                std::thread::sleep(Duration::from_secs(3));
            })
            .await
    });
    held_rx.await.unwrap();
    let slow_password = "@4$5!1|0+7".repeat(12);
    let started = Instant::now();
    let response = app
        .post(
            "/auth/register",
            json!({"username": "alice", "password": slow_password, "role": "superuser"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::SERVICE_UNAVAILABLE,
        "service_unavailable",
    )
    .await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Other routes answer meanwhile.
    let live = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    holder.await.unwrap().unwrap();
    // With the slot free, the same request gets its validation errors.
    let response = app
        .post(
            "/auth/register",
            json!({"username": "alice", "password": "@4$5!1|0+7".repeat(12), "role": "superuser"}),
        )
        .await;
    assert_problem(response, StatusCode::BAD_REQUEST, "validation_failed").await;
}

async fn stale_counters_and_old_audit_events_are_swept(backend: Backend) {
    let settings = strict("1000", "60").set("AUDIT_RETENTION_DAYS", "30");
    let app = TestApp::spawn_with(backend, settings).await;
    app.register("alice").await;
    for i in 0..5 {
        let name = format!("made-up-{i}");
        login(&app, json!({"username": name, "password": "wrong guess"})).await;
    }
    login(
        &app,
        json!({"username": "alice", "password": "wrong guess"}),
    )
    .await;
    let counters = "SELECT account_key FROM gatehouse_login_attempts";
    assert_eq!(app.db.texts(counters).await.len(), 6);
    let events = "SELECT id FROM gatehouse_audit_events";
    let before = app.db.texts(events).await.len();

    // Nothing is due yet: a sweep now deletes nothing.
    gatehouse::maintenance::sweep(app.state.clone()).await;
    assert_eq!(app.db.texts(counters).await.len(), 6);
    assert_eq!(app.db.texts(events).await.len(), before);

    // Twenty minutes later the failures no longer count; 31 days later the
    // events are past retention.
    app.db.execute("UPDATE gatehouse_login_attempts SET updated_at = updated_at - 1200, window_started_at = window_started_at - 1200").await;
    app.db
        .execute(
            "UPDATE gatehouse_audit_events SET at = at - 31 * 86400 WHERE kind = 'login_failed'",
        )
        .await;
    gatehouse::maintenance::sweep(app.state.clone()).await;
    assert!(
        app.db.texts(counters).await.is_empty(),
        "old counters for made-up names are gone"
    );
    let kinds = app
        .db
        .texts("SELECT kind FROM gatehouse_audit_events")
        .await;
    assert!(
        !kinds.is_empty() && kinds.iter().all(|k| k != "login_failed"),
        "{kinds:?}"
    );
}
