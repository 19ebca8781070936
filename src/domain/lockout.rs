//! The per-account lockout rule, as a pure function of the stored counters,
//! so it can be applied inside the database transaction that updates them
//! and tested without one.

/// The counters kept per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    pub failures: u32,
    pub window_started_at: i64,
    pub locked_until: i64,
    /// Lockouts so far; each makes the next one longer.
    pub lockouts: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failed logins within `window` that lock the account.
    pub threshold: u32,
    /// How long failures keep counting towards the threshold.
    pub window: i64,
    /// The first lock's length; it doubles with each further lockout.
    pub base_lock: i64,
    pub max_lock: i64,
    /// A quiet spell this long after a lock ends forgets earlier lockouts.
    pub forget_after: i64,
}

/// Failures older than this no longer count.
pub const FAILURE_WINDOW_SECONDS: i64 = 15 * 60;
/// The longest any lock lasts, however often an account is attacked.
pub const MAX_LOCK_SECONDS: i64 = 60 * 60;
/// After a day without a lock, the next one starts short again.
pub const FORGET_LOCKOUTS_AFTER_SECONDS: i64 = 24 * 60 * 60;

impl LockoutPolicy {
    pub fn new(threshold: u32, base_lock: i64) -> Self {
        Self {
            threshold,
            window: FAILURE_WINDOW_SECONDS,
            base_lock,
            max_lock: MAX_LOCK_SECONDS,
            forget_after: FORGET_LOCKOUTS_AFTER_SECONDS,
        }
    }

    /// The counters after one more failed login at `now`, and whether that
    /// failure started a lock.
    pub fn after_failure(&self, current: Attempts, now: i64) -> (Attempts, bool) {
        let mut next = current;
        if now - current.window_started_at >= self.window {
            next.failures = 0;
            next.window_started_at = now;
        }
        if current.lockouts > 0 && now - current.locked_until >= self.forget_after {
            next.lockouts = 0;
        }
        next.failures += 1;
        if next.failures < self.threshold {
            return (next, false);
        }
        let doublings = next.lockouts.min(16);
        let length = (self.base_lock.saturating_mul(1 << doublings)).min(self.max_lock);
        next.locked_until = now + length;
        next.lockouts += 1;
        next.failures = 0;
        next.window_started_at = now;
        (next, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: LockoutPolicy = LockoutPolicy {
        threshold: 3,
        window: 900,
        base_lock: 60,
        max_lock: 3600,
        forget_after: 86_400,
    };

    fn fresh(now: i64) -> Attempts {
        Attempts {
            failures: 0,
            window_started_at: now,
            locked_until: 0,
            lockouts: 0,
        }
    }

    fn fail_times(mut a: Attempts, n: u32, now: i64) -> (Attempts, bool) {
        let mut locked = false;
        for _ in 0..n {
            (a, locked) = POLICY.after_failure(a, now);
        }
        (a, locked)
    }

    #[test]
    fn the_threshold_th_failure_locks() {
        let (a, locked) = fail_times(fresh(0), 2, 10);
        assert!(!locked);
        assert_eq!(a.locked_until, 0);
        let (a, locked) = POLICY.after_failure(a, 10);
        assert!(locked);
        assert_eq!(a.locked_until, 70);
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let (a, _) = fail_times(fresh(0), 2, 0);
        let (a, locked) = POLICY.after_failure(a, 901);
        assert!(!locked);
        assert_eq!(a.failures, 1);
    }

    #[test]
    fn repeated_lockouts_double_up_to_an_hour() {
        let mut a = fresh(0);
        let mut lengths = Vec::new();
        let mut now = 0;
        for _ in 0..8 {
            let (next, locked) = fail_times(a, 3, now);
            assert!(locked);
            lengths.push(next.locked_until - now);
            now = next.locked_until;
            a = next;
        }
        assert_eq!(lengths, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
    }

    #[test]
    fn a_quiet_day_forgets_earlier_lockouts() {
        let (a, _) = fail_times(fresh(0), 3, 0);
        let (a, _) = fail_times(a, 3, 100);
        assert_eq!(a.lockouts, 2);
        let later = a.locked_until + 86_400;
        let (a, _) = fail_times(a, 3, later);
        assert_eq!(a.locked_until - later, 60);
    }
}
