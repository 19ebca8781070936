//! The per-client-IP limit on credential endpoints (register, login and
//! their aliases, refresh, password change): `RATE_LIMIT_PER_MINUTE`
//! requests a minute, as a token bucket so short bursts pass and sustained
//! floods do not. It is kept in memory, per instance; the per-account
//! lockout is the separate, database-backed defence that every instance
//! shares.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::client::ClientInfo;
use crate::app::AppState;
use crate::error::ApiError;

/// Beyond this many tracked clients, idle ones are dropped first.
const MAX_TRACKED_CLIENTS: usize = 100_000;

pub struct RateLimiter {
    per_minute: u32,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    /// `per_minute == 0` turns the limit off.
    pub fn new(per_minute: u32) -> Self {
        Self {
            per_minute,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn capacity(&self) -> f64 {
        f64::from(self.per_minute)
    }

    fn per_second(&self) -> f64 {
        self.capacity() / 60.0
    }

    /// Takes one request from `ip`'s allowance, or says how long to wait.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() >= MAX_TRACKED_CLIENTS && !buckets.contains_key(&ip) {
            self.forget_idle(&mut buckets, now);
        }
        let bucket = buckets.entry(ip).or_insert(Bucket {
            tokens: self.capacity(),
            refilled_at: now,
        });
        let elapsed = now
            .saturating_duration_since(bucket.refilled_at)
            .as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second()).min(self.capacity());
        bucket.refilled_at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second(),
            ))
        }
    }

    /// Drops clients whose allowance has refilled completely: forgetting
    /// them changes nothing. Called periodically and when the map is full.
    pub fn forget_idle_clients(&self, now: Instant) {
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        self.forget_idle(&mut buckets, now);
    }

    fn forget_idle(&self, buckets: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        buckets.retain(|_, b| {
            let refill =
                now.saturating_duration_since(b.refilled_at).as_secs_f64() * self.per_second();
            b.tokens + refill < self.capacity()
        });
    }
}

/// An extractor that admits the request only within its client's
/// allowance; otherwise 429 `too_many_attempts` with `Retry-After`. It runs
/// before the body is read.
pub struct CredentialRateLimit;

impl FromRequestParts<AppState> for CredentialRateLimit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let client = ClientInfo::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|e| match e {});
        if let Some(ip) = client.ip {
            state
                .rate_limiter
                .check(ip, Instant::now())
                .map_err(|retry_after| ApiError::TooManyAttempts { retry_after })?;
        }
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_burst_up_to_the_limit_passes_then_waits() {
        let limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        for _ in 0..60 {
            assert!(limiter.check(ip(1), t0).is_ok());
        }
        let wait = limiter.check(ip(1), t0).unwrap_err();
        assert!(wait > Duration::from_millis(900) && wait <= Duration::from_secs(1));
        // Other clients have their own allowance.
        assert!(limiter.check(ip(2), t0).is_ok());
        // One token a second comes back.
        assert!(limiter.check(ip(1), t0 + Duration::from_secs(1)).is_ok());
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = RateLimiter::new(0);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| limiter.check(ip(1), t0).is_ok()));
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let limiter = RateLimiter::new(60);
        let t0 = Instant::now();
        limiter.check(ip(1), t0).unwrap();
        limiter.forget_idle_clients(t0 + Duration::from_secs(61));
        assert!(limiter.buckets.lock().unwrap().is_empty());
    }
}
