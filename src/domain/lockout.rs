//! The per-account lockout rule, as pure functions of the stored counters,
//! so it can be applied inside the database transactions that update them
//! and tested without one.
//!
//! A password check is counted *before* it runs: [`LockoutPolicy::admit`]
//! decides whether it may start (the caller records a reservation), and
//! [`LockoutPolicy::settle`] books its outcome once the reservation is gone. Counting
//! reservations as well as failures is what bounds a burst: however many
//! guesses arrive at once, no more are checked than the threshold allows.

/// The counters kept per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attempts {
    pub failures: u32,
    pub window_started_at: i64,
    pub locked_until: i64,
    /// Lockouts so far; each makes the next one longer.
    pub lockouts: u32,
    /// Checks admitted and not yet settled (their reservations are kept
    /// beside the counters, each with its own expiry).
    pub in_flight: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failed checks within `window` that lock the account.
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

/// What a new password check may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go ahead (record the reservation); the counters to store.
    Admitted(Attempts),
    /// The account is locked until then.
    Locked { until: i64 },
    /// The checks in flight could use up what is left before the lock:
    /// wait for them to settle.
    Wait,
}

/// How a reserved check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Correct,
    Wrong,
    /// The check never ran (the hashing queue was full): it counts for
    /// nothing.
    Abandoned,
}

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

    /// Whether one more password check may start at `now`: recent failures
    /// plus checks in flight stay below the threshold, so even if every one
    /// of them fails the lock starts with the last and no further password
    /// is tried.
    pub fn admit(&self, current: Attempts, now: i64) -> Admission {
        if current.locked_until > now {
            return Admission::Locked {
                until: current.locked_until,
            };
        }
        let next = self.current(current, now);
        if next.failures.saturating_add(next.in_flight) >= self.threshold {
            return Admission::Wait;
        }
        Admission::Admitted(Attempts {
            in_flight: next.in_flight + 1,
            ..next
        })
    }

    /// The counters after a reserved check ended at `now`, and the end of
    /// the lock it started, if it started one. `current.in_flight` no
    /// longer counts this check.
    pub fn settle(&self, current: Attempts, now: i64, outcome: Outcome) -> (Attempts, Option<i64>) {
        let mut next = self.current(current, now);
        match outcome {
            Outcome::Abandoned => (next, None),
            Outcome::Correct => {
                next.failures = 0;
                next.lockouts = 0;
                next.window_started_at = now;
                (next, None)
            }
            // A failure that was in flight when a lock started belongs to
            // the burst that caused it: one burst is one lockout.
            Outcome::Wrong if next.locked_until > now => (next, None),
            Outcome::Wrong => self.after_failure(next, now),
        }
    }

    /// The counters with expired parts forgotten: failures outside the
    /// window, and lockout history after a quiet day.
    fn current(&self, current: Attempts, now: i64) -> Attempts {
        let mut next = current;
        if now - current.window_started_at >= self.window {
            next.failures = 0;
            next.window_started_at = now;
        }
        if current.lockouts > 0 && now - current.locked_until >= self.forget_after {
            next.lockouts = 0;
        }
        next
    }

    fn after_failure(&self, current: Attempts, now: i64) -> (Attempts, Option<i64>) {
        let mut next = current;
        next.failures += 1;
        if next.failures < self.threshold {
            return (next, None);
        }
        let doublings = next.lockouts.min(16);
        let length = (self.base_lock.saturating_mul(1 << doublings)).min(self.max_lock);
        next.locked_until = now + length;
        next.lockouts += 1;
        next.failures = 0;
        next.window_started_at = now;
        (next, Some(next.locked_until))
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
            window_started_at: now,
            ..Attempts::default()
        }
    }

    fn admitted(a: Attempts, now: i64) -> Attempts {
        match POLICY.admit(a, now) {
            Admission::Admitted(next) => next,
            other => panic!("expected admission, got {other:?}"),
        }
    }

    /// Settles one check in flight: its reservation goes.
    fn settled(a: Attempts, now: i64, outcome: Outcome) -> (Attempts, Option<i64>) {
        let done = Attempts {
            in_flight: a.in_flight - 1,
            ..a
        };
        POLICY.settle(done, now, outcome)
    }

    /// `n` checks, one after another, each reserved then failed.
    fn fail_times(mut a: Attempts, n: u32, now: i64) -> (Attempts, Option<i64>) {
        let mut lock = None;
        for _ in 0..n {
            (a, lock) = settled(admitted(a, now), now, Outcome::Wrong);
        }
        (a, lock)
    }

    #[test]
    fn the_threshold_th_failure_locks() {
        let (a, lock) = fail_times(fresh(0), 2, 10);
        assert_eq!(lock, None);
        assert_eq!(a.locked_until, 0);
        let (a, lock) = settled(admitted(a, 10), 10, Outcome::Wrong);
        assert_eq!(lock, Some(70));
        assert_eq!(POLICY.admit(a, 11), Admission::Locked { until: 70 });
    }

    #[test]
    fn no_more_checks_run_at_once_than_the_budget_allows() {
        let mut a = fresh(0);
        for _ in 0..3 {
            a = admitted(a, 0);
        }
        assert_eq!(POLICY.admit(a, 0), Admission::Wait);
        // One failure settles: the budget left is two failures away from
        // the lock, and two checks are still in flight.
        let (a, _) = settled(a, 0, Outcome::Wrong);
        assert_eq!(POLICY.admit(a, 0), Admission::Wait);
        // A correct one settles and clears the failures: room again.
        let (a, _) = settled(a, 0, Outcome::Correct);
        assert!(matches!(POLICY.admit(a, 0), Admission::Admitted(_)));
    }

    #[test]
    fn a_burst_of_failures_is_one_lockout() {
        let mut a = fresh(0);
        for _ in 0..3 {
            a = admitted(a, 0);
        }
        let mut locks = Vec::new();
        for _ in 0..3 {
            let (next, lock) = settled(a, 1, Outcome::Wrong);
            locks.extend(lock);
            a = next;
        }
        assert_eq!(locks, [61]);
        assert_eq!(a.lockouts, 1);
        assert_eq!(a.in_flight, 0);
    }

    #[test]
    fn failures_settling_during_a_lock_do_not_lengthen_it() {
        let (locked, _) = fail_times(fresh(0), 3, 0);
        // A straggler admitted before the lock settles after it began.
        let straggler = Attempts {
            in_flight: 1,
            ..locked
        };
        let (after, lock) = settled(straggler, 5, Outcome::Wrong);
        assert_eq!(lock, None);
        assert_eq!(after.locked_until, locked.locked_until);
        assert_eq!(after.lockouts, 1);
        assert_eq!(after.failures, 0);
    }

    #[test]
    fn abandoned_checks_count_for_nothing() {
        let a = admitted(fresh(0), 0);
        let (a, lock) = settled(a, 0, Outcome::Abandoned);
        assert_eq!(lock, None);
        assert_eq!((a.failures, a.in_flight), (0, 0));
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let (a, _) = fail_times(fresh(0), 2, 0);
        let (a, lock) = fail_times(a, 1, 901);
        assert_eq!(lock, None);
        assert_eq!(a.failures, 1);
    }

    #[test]
    fn only_a_lock_after_an_expired_one_doubles_up_to_an_hour() {
        let mut a = fresh(0);
        let mut lengths = Vec::new();
        let mut now = 0;
        for _ in 0..8 {
            let (next, lock) = fail_times(a, 3, now);
            let until = lock.expect("the third failure locks");
            lengths.push(until - now);
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
