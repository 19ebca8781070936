//! Assembling the application from its configuration, and serving it
//! until told to stop. This sits above the shared state ([`crate::app`]):
//! it builds the state, the router and the listener; nothing below it
//! needs to know how.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::app::{App, AppState};
use crate::auth::keys::{KeyError, KeyRing};
use crate::auth::{HashError, PasswordHasher, RefreshTokens, TokenService};
use crate::config::Config;
use crate::domain::PasswordPolicy;
use crate::http::connections;
use crate::lockout::Lockout;
use crate::rate_limit::RateLimiter;
use crate::session_cache::SessionCache;
use crate::store::{Store, StoreError};

/// How long a stopping server waits for password checks still running.
const SETTLE_AT_SHUTDOWN: std::time::Duration = std::time::Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    #[error("password hashing: {0}")]
    Hashing(#[from] HashError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the database and applies pending migrations; every command starts
/// here.
pub async fn open_store(config: &Config) -> Result<Store, StartupError> {
    let store = Store::open(&config.database_url)?;
    store.migrate().await?;
    Ok(store)
}

pub async fn build(config: Config) -> Result<AppState, StartupError> {
    let store = open_store(&config).await?;
    let keys = KeyRing::load(&config, &store).await?;
    let refresh_tokens = RefreshTokens::load(&store).await?;
    let lockout = Lockout::load(&config, &store).await?;
    let session_cache = SessionCache::new(config.session_cache, store.feed_start().await?);
    let hasher = PasswordHasher::new(
        config.argon2,
        config.max_concurrent_hashes,
        config.hash_queue_timeout,
    )
    .await?;
    Ok(AppState::new(App {
        tokens: TokenService::new(&config, keys),
        refresh_tokens,
        password_policy: PasswordPolicy {
            min_length: config.password_min_length,
        },
        lockout,
        session_cache,
        rate_limiter: RateLimiter::new(config.rate_limit_per_minute, config.rate_limit_ipv6_prefix),
        hasher,
        store,
        config,
    }))
}

/// Binds the configured address.
pub async fn listen(config: &Config) -> Result<TcpListener, StartupError> {
    TcpListener::bind(config.bind_addr)
        .await
        .map_err(|source| StartupError::Listen {
            addr: config.bind_addr,
            source,
        })
}

/// Serves on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish. Taking the listener and the signal as arguments lets
/// tests run the real server on port 0 and stop it at will.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let maintenance = crate::maintenance::start(&state);
    let router = crate::http::router(state.clone());
    let max_connections = state
        .config
        .max_connections
        .unwrap_or_else(connections::default_max_connections);
    tracing::info!(max_connections, "accepting connections");
    let limits = connections::Limits::with_max_connections(max_connections);
    let result = connections::serve(listener, router, limits, shutdown).await;
    // Password checks whose clients hung up may still be running: let them
    // release their reservations rather than leave them to lapse.
    state.lockout.settle_running(SETTLE_AT_SHUTDOWN).await;
    maintenance.iter().for_each(|task| task.abort());
    state.store.close().await;
    result
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down; finishing requests in flight");
}
