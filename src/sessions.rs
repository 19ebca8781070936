//! Logins as sessions: each login gets a session, a refresh token and
//! access tokens naming it in `sid`. Refresh rotates the token; logout,
//! password changes and theft detection end sessions, which stops their
//! access tokens on the very next request.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use uuid::Uuid;

use crate::app::App;
use crate::audit::{self, Event, Kind};
use crate::client::ClientInfo;
use crate::domain::User;
use crate::error::{ApiError, Result};
use crate::store::{Liveness, LogoutScope, NewSession, Refresh, SessionRow, StoreError};

/// What login and refresh hand back.
pub struct TokenPair {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: SecretString,
    pub user: User,
}

/// How often an authenticated request records that its session is in use.
/// Idle expiry is measured in days, so a minute of slack costs nothing and
/// saves a write on almost every request.
const TOUCH_INTERVAL_SECONDS: i64 = 60;

impl App {
    /// The session limits as of now.
    pub fn liveness(&self) -> Liveness {
        let now = crate::store::now();
        Liveness {
            now,
            idle_cutoff: now - self.config.session_idle.as_secs() as i64,
        }
    }
}

/// Opens a session for a user who has just proved who they are.
pub async fn start(app: &App, user: User, client: &ClientInfo) -> Result<TokenPair> {
    let refresh_token = app.refresh_tokens.generate();
    let ip = client.ip.map(|ip| ip.to_string());
    let session = app
        .store
        .insert_session(NewSession {
            id: Uuid::now_v7(),
            user_id: user.id,
            refresh_hash: &app.refresh_tokens.hash(refresh_token.expose_secret()),
            expires_at: crate::store::now() + app.config.refresh_token_ttl.as_secs() as i64,
            user_agent: client.user_agent.as_deref(),
            ip: ip.as_deref(),
        })
        .await
        .map_err(|e| match e {
            // Deleted while logging in: as for any account that does not exist.
            StoreError::NotFound => ApiError::InvalidCredentials,
            other => other.into(),
        })?;
    Ok(pair(app, user, &session, refresh_token))
}

/// Exchanges a refresh token for a new pair.
pub async fn refresh(app: &App, presented: &str, client: &ClientInfo) -> Result<TokenPair> {
    let next = app.refresh_tokens.successor(presented);
    let outcome = app
        .store
        .refresh_session(
            &app.refresh_tokens.hash(presented),
            &app.refresh_tokens.hash(next.expose_secret()),
            app.config.refresh_reuse_grace.as_secs() as i64,
            app.liveness(),
        )
        .await?;
    let session = match outcome {
        Refresh::Rotated(session) | Refresh::Replayed(session) => session,
        Refresh::Reused {
            session_id,
            user_id,
        } => {
            tracing::warn!(%session_id, %user_id, "spent refresh token presented again; session ended");
            metrics::counter!("gatehouse_refresh_reuse_total").increment(1);
            let mut event =
                Event::new(Kind::RefreshReuse).detail(json!({"session_id": session_id}));
            event.user_id = Uuid::parse_str(&user_id).ok();
            if let Some(user_id) = event.user_id {
                app.session_cache.forget_user(user_id);
            }
            audit::record(app, event, client).await?;
            return Err(ApiError::InvalidRefreshToken);
        }
        Refresh::Invalid => return Err(ApiError::InvalidRefreshToken),
    };
    let user_id = Uuid::parse_str(&session.user_id).map_err(|_| ApiError::InvalidRefreshToken)?;
    let user = app
        .store
        .user_by_id(user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(ApiError::InvalidRefreshToken)?;
    Ok(pair(app, user, &session, next))
}

/// The access token that goes with `refresh_token`. Everything in it
/// derives from the session and the token, so issuing it twice (for a
/// replayed refresh) gives the same token.
fn pair(app: &App, user: User, session: &SessionRow, refresh_token: SecretString) -> TokenPair {
    let session_id = Uuid::parse_str(&session.id).expect("session ids are UUIDs");
    let issued = app.tokens.issue(
        &user,
        session_id,
        session.rotated_at as u64,
        app.refresh_tokens.access_token_id(&refresh_token),
    );
    TokenPair {
        access_token: issued.token,
        expires_in: issued.expires_in,
        refresh_token,
        user,
    }
}

/// The user behind a live session, or `None` when the session has ended.
pub async fn authenticate(app: &App, session_id: Uuid, user_id: Uuid) -> Result<Option<User>> {
    let liveness = app.liveness();
    let live = match app.session_cache.lookup(session_id, user_id, liveness) {
        Some(live) => live,
        None => {
            let epoch = app.session_cache.epoch();
            let Some(live) = app
                .store
                .session_user(session_id, user_id, liveness)
                .await?
            else {
                return Ok(None);
            };
            app.session_cache.remember(session_id, &live, epoch);
            live
        }
    };
    if liveness.now - live.last_used_at >= TOUCH_INTERVAL_SECONDS {
        match app.store.touch_session(session_id, liveness.now).await {
            Ok(()) => app.session_cache.touched(session_id, liveness.now),
            // Losing one "last used" update is harmless; failing the
            // request is not.
            Err(e) => tracing::warn!(cause = %e, "could not record session use"),
        }
    }
    Ok(Some(live.user))
}

pub async fn logout(
    app: &App,
    user: &User,
    current: Uuid,
    scope: LogoutScope,
    client: &ClientInfo,
) -> Result<()> {
    let ended = app.store.end_sessions(user.id, current, scope).await?;
    app.session_cache.forget_user(user.id);
    let event = Event::by_self(Kind::Logout, user.id)
        .detail(json!({"scope": scope.as_str(), "sessions_ended": ended}));
    audit::record(app, event, client).await?;
    tracing::info!(user_id = %user.id, ?scope, ended, "logged out");
    Ok(())
}

pub async fn list(app: &App, user: &User) -> Result<Vec<SessionRow>> {
    Ok(app.store.list_sessions(user.id, app.liveness()).await?)
}

pub async fn end(app: &App, user: &User, session_id: Uuid, client: &ClientInfo) -> Result<()> {
    app.store
        .end_session(user.id, session_id, app.liveness())
        .await?;
    app.session_cache.forget_user(user.id);
    let event =
        Event::by_self(Kind::SessionRevoked, user.id).detail(json!({"session_id": session_id}));
    audit::record(app, event, client).await?;
    tracing::info!(user_id = %user.id, %session_id, "session ended by its user");
    Ok(())
}
