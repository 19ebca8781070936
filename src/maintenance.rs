//! Background upkeep while the server runs: picking up rotated signing keys
//! and deleting what has expired (sessions, login counters, old audit
//! events, idle rate-limit entries), so no table grows without bound.

use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::app::AppState;
use crate::auth::keys;

/// How often expired rows are deleted.
const SWEEP_INTERVAL: Duration = Duration::from_secs(600);
/// How often the in-memory rate limiter forgets clients that went quiet.
const FORGET_IDLE_CLIENTS_INTERVAL: Duration = Duration::from_secs(60);

/// How long the session change feed keeps a row: far longer than any
/// instance goes between polls (one that does forgets all it holds).
const SESSION_CHANGES_KEPT_SECONDS: i64 = 3600;

/// Starts the upkeep tasks; the caller aborts them at shutdown.
pub fn start(state: &AppState) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![
        tokio::spawn(every(keys::RELOAD_INTERVAL, state.clone(), reload_keys)),
        tokio::spawn(every(SWEEP_INTERVAL, state.clone(), sweep)),
        tokio::spawn(every(
            FORGET_IDLE_CLIENTS_INTERVAL,
            state.clone(),
            forget_idle_clients,
        )),
    ];
    if state.session_cache.enabled() {
        tasks.push(tokio::spawn(poll_session_changes(state.clone())));
    }
    tasks
}

/// Keeps the in-memory session view current with every instance's changes.
/// The first poll runs at once: until it succeeds, nothing is served from
/// memory.
async fn poll_session_changes(state: AppState) {
    let mut tick = tokio::time::interval(state.session_cache.poll_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match state.session_cache.poll(&state.store).await {
            Ok(()) if failing => {
                tracing::info!("session changes are readable again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!(cause = %e, "cannot read session changes; asking the database on every request");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

async fn every<F, Fut>(period: Duration, state: AppState, job: F)
where
    F: Fn(AppState) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    // The first round waits a whole period: at start-up the keys were just
    // loaded, and deleting expired rows can wait one interval.
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        job(state.clone()).await;
    }
}

/// Picks up keys rotated by `gatehouse keys rotate` or another instance.
async fn reload_keys(state: AppState) {
    if let Err(e) = state.tokens.reload(&state.config, &state.store).await {
        tracing::warn!(cause = %e, "could not reload signing keys; keeping the current ones");
    }
}

/// Deletes ended sessions, stale login counters and audit events past
/// `AUDIT_RETENTION_DAYS`.
pub async fn sweep(state: AppState) {
    let liveness = state.liveness();
    let results = [
        ("sessions", state.store.sweep_sessions(liveness).await),
        (
            "login counters",
            state
                .store
                .sweep_login_attempts(liveness.now, &state.lockout.policy)
                .await,
        ),
        (
            "audit events",
            state
                .store
                .sweep_audit_events(liveness.now - state.config.audit_retention.as_secs() as i64)
                .await,
        ),
        (
            "session changes",
            state
                .store
                .sweep_session_changes(liveness.now - SESSION_CHANGES_KEPT_SECONDS)
                .await,
        ),
    ];
    for (what, result) in results {
        match result {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "expired {what} deleted"),
            Err(e) => tracing::warn!(cause = %e, "could not delete expired {what}"),
        }
    }
}

async fn forget_idle_clients(state: AppState) {
    state.rate_limiter.forget_idle_clients(Instant::now());
}
