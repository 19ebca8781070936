//! The per-client limit on credential endpoints (register, login and
//! their aliases, refresh, password change, account deletion, profile
//! changes): `RATE_LIMIT_PER_MINUTE`
//! requests a minute, as a token bucket so short bursts pass and sustained
//! floods do not. It is kept in memory, per instance; the per-account
//! lockout is the separate, database-backed defence that every instance
//! shares.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Beyond this many tracked clients, idle ones are dropped first.
const MAX_TRACKED_CLIENTS: usize = 100_000;

pub struct RateLimiter {
    per_minute: u32,
    ipv6_prefix: u8,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Clone, Copy)]
struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

impl RateLimiter {
    /// `per_minute == 0` turns the limit off. IPv6 clients are counted per
    /// network of `ipv6_prefix` bits: one subscriber usually holds a whole
    /// /64, and counting its addresses apart would give it billions of
    /// allowances.
    pub fn new(per_minute: u32, ipv6_prefix: u8) -> Self {
        Self {
            per_minute,
            ipv6_prefix: ipv6_prefix.clamp(1, 128),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The allowance `ip` draws on: its own for IPv4, its network's for IPv6.
    fn bucket_of(&self, ip: IpAddr) -> IpAddr {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let mask = u128::MAX << (128 - u32::from(self.ipv6_prefix));
                IpAddr::V6((u128::from(v6) & mask).into())
            }
            v4 => v4,
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
        let ip = self.bucket_of(ip);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_burst_up_to_the_limit_passes_then_waits() {
        let limiter = RateLimiter::new(60, 64);
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
    fn ipv6_clients_share_their_network_s_allowance() {
        let limiter = RateLimiter::new(2, 64);
        let t0 = Instant::now();
        let host = |h: &str| -> IpAddr { format!("2001:db8:1:2::{h}").parse().unwrap() };
        assert!(limiter.check(host("1"), t0).is_ok());
        assert!(limiter.check(host("ffff:1"), t0).is_ok());
        assert!(limiter.check(host("2"), t0).is_err());
        let next_network: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(limiter.check(next_network, t0).is_ok());

        let per_host = RateLimiter::new(1, 128);
        assert!(per_host.check(host("1"), t0).is_ok());
        assert!(per_host.check(host("2"), t0).is_ok());
        assert!(per_host.check(host("1"), t0).is_err());
    }

    #[test]
    fn an_ipv4_mapped_client_is_its_ipv4_address() {
        let limiter = RateLimiter::new(1, 64);
        let t0 = Instant::now();
        assert!(limiter.check(ip(7), t0).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert!(limiter.check(mapped, t0).is_err());
    }

    #[test]
    fn zero_means_no_limit() {
        let limiter = RateLimiter::new(0, 64);
        let t0 = Instant::now();
        assert!((0..10_000).all(|_| limiter.check(ip(1), t0).is_ok()));
    }

    #[test]
    fn idle_clients_are_forgotten() {
        let limiter = RateLimiter::new(60, 64);
        let t0 = Instant::now();
        limiter.check(ip(1), t0).unwrap();
        limiter.forget_idle_clients(t0 + Duration::from_secs(61));
        assert!(limiter.buckets.lock().unwrap().is_empty());
    }
}
