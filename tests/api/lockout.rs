//! The account lockout under concurrency: guesses sent all at once, one
//! burst against the lock's length, correct logins in a crowd, the
//! current-password confirmations, and a login racing its account's
//! deletion. Each race is dozens of simultaneous requests, not a loop.

use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, PASSWORD, Settings, TestApp, assert_problem};
use crate::on_both_databases;

on_both_databases!(
    a_burst_of_wrong_passwords_checks_no_more_than_the_threshold,
    one_burst_is_one_lockout_of_the_base_length,
    a_crowd_of_correct_logins_all_succeed,
    wrong_current_passwords_count_toward_the_lockout_and_are_audited,
    concurrent_current_password_guesses_are_bounded_too,
    a_login_racing_the_deletion_of_its_account_is_never_a_500,
    lockout_counters_do_not_reveal_what_was_typed,
    reservations_left_by_a_dead_process_lapse_however_busy_the_account,
    logins_of_many_accounts_at_once_do_not_trip_over_each_other,
);

fn lockout(threshold: &str, seconds: &str) -> Settings {
    Settings::new()
        .set("LOCKOUT_THRESHOLD", threshold)
        .set("LOCKOUT_SECONDS", seconds)
        .set("RATE_LIMIT_PER_MINUTE", "0")
}

/// Sends `count` logins for `username` at once, each with the password
/// `password(i)`, and returns their responses.
async fn logins_at_once(
    app: &TestApp,
    username: &str,
    count: usize,
    password: impl Fn(usize) -> String,
) -> Vec<reqwest::Response> {
    join_all((0..count).map(|i| {
        app.post(
            "/auth/login",
            json!({"username": username, "password": password(i)}),
        )
    }))
    .await
}

fn count(responses: &[reqwest::Response], status: StatusCode) -> usize {
    responses.iter().filter(|r| r.status() == status).count()
}

async fn audit_kinds(app: &TestApp, kind: &str) -> usize {
    app.db
        .texts(&format!(
            "SELECT id FROM gatehouse_audit_events WHERE kind = '{kind}'"
        ))
        .await
        .len()
}

async fn a_burst_of_wrong_passwords_checks_no_more_than_the_threshold(backend: Backend) {
    let app = TestApp::spawn_with(backend, lockout("10", "60")).await;
    app.register("alice").await;
    let responses = logins_at_once(&app, "alice", 150, |i| format!("wrong guess {i}")).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        count(&responses, StatusCode::UNAUTHORIZED),
        10,
        "exactly the threshold's worth of guesses were checked: {statuses:?}"
    );
    assert_eq!(
        count(&responses, StatusCode::TOO_MANY_REQUESTS),
        140,
        "every other guess was refused unchecked: {statuses:?}"
    );
    assert_eq!(audit_kinds(&app, "login_failed").await, 10);
    // The right password after the burst is locked out too.
    let right = app
        .post(
            "/auth/login",
            json!({"username": "alice", "password": PASSWORD}),
        )
        .await;
    assert_problem(right, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
}

async fn one_burst_is_one_lockout_of_the_base_length(backend: Backend) {
    let app = TestApp::spawn_with(backend, lockout("10", "60")).await;
    app.register("alice").await;
    let responses = logins_at_once(&app, "alice", 70, |i| format!("wrong guess {i}")).await;
    let waits: Vec<u64> = responses
        .iter()
        .filter_map(|r| r.headers().get("retry-after"))
        .map(|v| v.to_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(waits.len(), 60);
    assert!(
        waits.iter().all(|w| (1..=60).contains(w)),
        "no wait beyond LOCKOUT_SECONDS: {waits:?}"
    );
    assert_eq!(audit_kinds(&app, "lockout").await, 1);
    let after = app
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "one more"}),
        )
        .await;
    let wait: u64 = after.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
}

async fn a_crowd_of_correct_logins_all_succeed(backend: Backend) {
    let app = TestApp::spawn_with(backend, lockout("3", "60")).await;
    app.register("alice").await;
    let responses = logins_at_once(&app, "alice", 40, |_| PASSWORD.to_owned()).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert!(
        statuses.iter().all(|s| *s == 200),
        "a budget of 3 at a time still lets all 40 in: {statuses:?}"
    );
    // The counters are left clean: three wrong guesses are still needed.
    for expected in [401, 401, 401, 429] {
        let response = app
            .post(
                "/auth/login",
                json!({"username": "alice", "password": "wrong guess"}),
            )
            .await;
        assert_eq!(response.status().as_u16(), expected);
    }
}

async fn wrong_current_passwords_count_toward_the_lockout_and_are_audited(backend: Backend) {
    let app = TestApp::spawn_with(backend, lockout("3", "60")).await;
    let token = app.user_token("alice").await;
    let change = |current: &str| json!({"current_password": current, "new_password": "a brand new secret phrase"});
    let attempts = [
        (Method::PUT, "/me/password", change("wrong guess 1")),
        (Method::DELETE, "/me", json!({"password": "wrong guess 2"})),
    ];
    for (method, path, body) in attempts {
        let response = app.request(method, path, Some(&token), Some(body)).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "invalid_credentials").await;
    }
    assert_eq!(audit_kinds(&app, "reauth_failed").await, 2);
    // A failed login counts toward the same lock as the confirmations.
    let response = app
        .post(
            "/auth/login",
            json!({"username": "alice", "password": "wrong guess 3"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // Locked now: even the right current password is refused, unchecked.
    let response = app
        .request(
            Method::PUT,
            "/me/password",
            Some(&token),
            Some(change(PASSWORD)),
        )
        .await;
    assert!(response.headers().contains_key("retry-after"));
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    let response = app
        .request(
            Method::DELETE,
            "/me",
            Some(&token),
            Some(json!({"password": PASSWORD})),
        )
        .await;
    assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "too_many_attempts").await;
    assert_eq!(audit_kinds(&app, "lockout").await, 1);
    // The account is intact and the session still works.
    assert_eq!(app.get("/me", &token).await.status(), StatusCode::OK);
}

async fn concurrent_current_password_guesses_are_bounded_too(backend: Backend) {
    let app = TestApp::spawn_with(backend, lockout("5", "60")).await;
    let token = app.user_token("alice").await;
    let guesses = (0..40).map(|i| {
        app.request(
            Method::PUT,
            "/me/password",
            Some(&token),
            Some(json!({
                "current_password": format!("wrong guess {i}"),
                "new_password": "a brand new secret phrase",
            })),
        )
    });
    let responses = join_all(guesses).await;
    assert_eq!(count(&responses, StatusCode::UNAUTHORIZED), 5);
    assert_eq!(count(&responses, StatusCode::TOO_MANY_REQUESTS), 35);
    assert_eq!(audit_kinds(&app, "reauth_failed").await, 5);
}

async fn a_login_racing_the_deletion_of_its_account_is_never_a_500(backend: Backend) {
    let app = TestApp::spawn_with(backend, lockout("1000", "60")).await;
    for round in 0..3 {
        let name = format!("doomed{round}");
        let token = app.user_token(&name).await;
        let logins = logins_at_once(&app, &name, 24, |_| PASSWORD.to_owned());
        let deletion = async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            app.request(
                Method::DELETE,
                "/me",
                Some(&token),
                Some(json!({"password": PASSWORD})),
            )
            .await
        };
        // Changes to the account with its token, racing the deletion too.
        let changes = join_all((0..8).map(|i| {
            app.request(
                Method::PATCH,
                "/me",
                Some(&token),
                Some(json!({"name": format!("try {i}")})),
            )
        }));
        let (logins, deletion, changes) = tokio::join!(logins, deletion, changes);
        assert_eq!(deletion.status(), StatusCode::NO_CONTENT);
        for change in changes {
            let status = change.status();
            let body: Value = change.json().await.unwrap();
            assert!(
                status == StatusCode::OK
                    || (status == StatusCode::UNAUTHORIZED && body["code"] == "invalid_token"),
                "round {round}: PATCH /me racing the deletion: {status} {body}"
            );
        }
        for response in logins {
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            match status {
                StatusCode::OK => {}
                StatusCode::UNAUTHORIZED => assert_eq!(body["code"], "invalid_credentials"),
                other => panic!("round {round}: {other} {body}"),
            }
        }
    }
}

async fn lockout_counters_do_not_reveal_what_was_typed(backend: Backend) {
    use sha2::{Digest, Sha256};
    let app = TestApp::spawn_with(backend, lockout("10", "60")).await;
    let typed = "mallory.typed.this";
    let response = app
        .post(
            "/auth/login",
            json!({"username": typed, "password": "wrong guess"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let keys = app
        .db
        .texts("SELECT account_key FROM gatehouse_login_attempts")
        .await;
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert!(key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()));
    // Not a bare hash of the name, which a dictionary would reverse.
    let bare: String = Sha256::digest(format!("username:{typed}"))
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_ne!(key, &bare);
    assert!(!key.contains(typed));
}

/// A process that dies mid-check never settles its reservations. Each one
/// lapses at its own time, and checks admitted meanwhile do not prolong
/// them: once they lapse, the account's whole budget is back.
async fn reservations_left_by_a_dead_process_lapse_however_busy_the_account(backend: Backend) {
    use gatehouse::store::Reservation;
    let app = TestApp::spawn_with(backend, lockout("10", "60")).await;
    let alice = app.register("alice").await;
    let id = uuid::Uuid::parse_str(alice["id"].as_str().unwrap()).unwrap();
    let account = app.state.lockout.account(id);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // Four checks of a process that then died, lapsing in three seconds.
    for _ in 0..4 {
        let id = uuid::Uuid::now_v7().to_string();
        let leaked = Reservation {
            account_key: account.as_str(),
            id: &id,
            expires_at: now + 3,
        };
        let admitted = app
            .state
            .store
            .admit_attempt(&leaked, now, &app.state.lockout.policy)
            .await
            .unwrap();
        assert!(matches!(
            admitted,
            gatehouse::domain::lockout::Admission::Admitted(_)
        ));
    }
    // The account stays busy with correct logins past the lapse.
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(5) {
        app.login("alice", PASSWORD).await;
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // The whole budget is back: ten guesses at once are all checked.
    let responses = logins_at_once(&app, "alice", 10, |i| format!("wrong guess {i}")).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        count(&responses, StatusCode::UNAUTHORIZED),
        10,
        "{statuses:?}"
    );
}

/// Every login reserves and settles its check under the account's counter
/// lock: logins of different accounts at the same moment must not
/// deadlock each other into 503s (MySQL's gap locks once did).
async fn logins_of_many_accounts_at_once_do_not_trip_over_each_other(backend: Backend) {
    let app = TestApp::spawn_with(backend, lockout("10", "60")).await;
    let names: Vec<String> = (0..150).map(|i| format!("crowd{i:03}")).collect();
    for name in &names {
        app.register(name).await;
    }
    let attempts = names.iter().flat_map(|name| {
        [
            app.post(
                "/auth/login",
                json!({"username": name, "password": PASSWORD}),
            ),
            app.post(
                "/auth/login",
                json!({"username": name, "password": "wrong guess"}),
            ),
        ]
    });
    let responses = join_all(attempts).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(count(&responses, StatusCode::OK), 150, "{statuses:?}");
    assert_eq!(
        count(&responses, StatusCode::UNAUTHORIZED),
        150,
        "{statuses:?}"
    );
}
