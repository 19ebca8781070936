//! The application's shared state: what every handler, use case and
//! background job reads. How it is assembled and served is in
//! [`crate::server`].

use std::ops::Deref;
use std::sync::Arc;

use crate::auth::{PasswordHasher, RefreshTokens, TokenService};
use crate::config::Config;
use crate::domain::PasswordPolicy;
use crate::lockout::Lockout;
use crate::rate_limit::RateLimiter;
use crate::session_cache::SessionCache;
use crate::store::Store;

pub struct App {
    pub config: Config,
    pub store: Store,
    pub hasher: PasswordHasher,
    pub tokens: TokenService,
    pub refresh_tokens: RefreshTokens,
    pub password_policy: PasswordPolicy,
    pub lockout: Lockout,
    pub rate_limiter: RateLimiter,
    pub session_cache: SessionCache,
}

/// Cheap to clone; every handler gets one.
#[derive(Clone)]
pub struct AppState(Arc<App>);

impl AppState {
    pub fn new(app: App) -> Self {
        Self(Arc::new(app))
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
