//! Password checks counted against an account's lockout: logins, and the
//! current-password confirmations of `PUT /me/password` and `DELETE /me`.
//!
//! Each check is reserved in the database before the password is verified
//! and settled after, so however many guesses arrive at once, across any
//! number of instances, no more are verified than `LOCKOUT_THRESHOLD`
//! allows. Checks beyond the budget wait for those in flight to settle;
//! concurrent *correct* checks therefore all go through, one budget's worth
//! at a time.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::auth::{HashError, PasswordHasher};
use crate::config::Config;
use crate::domain::Password;
use crate::domain::lockout::{Admission, LockoutPolicy, Outcome};
use crate::error::{ApiError, Result};
use crate::store::{LoginColumn, Reservation, Store, StoreError};

const SECRET_NAME: &str = "lockout_key";

/// How often a check waiting for budget looks again when no settle on this
/// instance woke it (another instance's settle cannot).
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// How long a reservation counts beyond the longest a live check waits
/// for budget and for a hashing worker: time for the hash itself and the
/// writes. A reservation that is never settled (its process died) stops
/// counting then.
const RESERVATION_MARGIN: Duration = Duration::from_secs(10);

pub struct Lockout {
    pub policy: LockoutPolicy,
    /// Keys the counters, so the table does not reveal what was typed.
    key: Vec<u8>,
    /// Wakes the checks waiting for budget whenever one settles here.
    settled: Arc<Notify>,
    /// How long a check may wait for budget, and then for a worker.
    wait_limit: Duration,
    /// Per account, this instance's checks take turns in arrival order,
    /// at most `LOCKOUT_THRESHOLD` at a time: a crowd of logins to one
    /// account queues here instead of all asking the database at once.
    turns: Arc<Turns>,
    /// Checks whose verify-and-settle task is still running, so a shutdown
    /// can let them settle their reservations.
    running: Arc<Running>,
}

/// Each account's queue of checks on this instance.
type Turns = Mutex<HashMap<String, Arc<Semaphore>>>;

/// Forgets `account`'s queue when nobody holds or awaits a turn in it (only
/// the map's own handle is left), so made-up names leave nothing behind.
fn forget_if_idle(turns: &Turns, account: &str) {
    let Ok(mut all) = turns.lock() else {
        return;
    };
    if all
        .get(account)
        .is_some_and(|queue| Arc::strong_count(queue) == 1)
    {
        all.remove(account);
    }
}

#[derive(Default)]
struct Running {
    count: AtomicUsize,
    idle: Notify,
}

/// The counter a check is charged to. Opaque: an HMAC of the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountKey(String);

impl AccountKey {
    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a counted check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Correct,
    /// A wrong password; `lock_seconds` when this failure locked the account.
    Wrong {
        lock_seconds: Option<u64>,
    },
}

impl Lockout {
    /// Loads the server's counter key, creating it on first start.
    pub async fn load(config: &Config, store: &Store) -> Result<Self, StoreError> {
        let encoded = store
            .server_secret(SECRET_NAME, || {
                let mut key = [0u8; 32];
                OsRng.fill_bytes(&mut key);
                STANDARD.encode(key)
            })
            .await?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| StoreError::Other(format!("server secret {SECRET_NAME} is unreadable")))?;
        Ok(Self {
            policy: LockoutPolicy::new(
                config.lockout_threshold,
                config.lockout_duration.as_secs() as i64,
            ),
            key,
            settled: Arc::new(Notify::new()),
            wait_limit: config.hash_queue_timeout,
            turns: Arc::default(),
            running: Arc::new(Running::default()),
        })
    }

    /// The counter of an existing account, however it was named.
    pub fn account(&self, user: Uuid) -> AccountKey {
        self.keyed(&format!("user:{user}"))
    }

    /// The counter for a name or address that matched no account, so
    /// guesses at it lock like a real account's.
    pub fn unknown(&self, column: LoginColumn, typed_key: &str) -> AccountKey {
        self.keyed(&format!("{}:{typed_key}", column.as_str()))
    }

    fn keyed(&self, subject: &str) -> AccountKey {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key size");
        mac.update(subject.as_bytes());
        let digest = mac.finalize().into_bytes();
        AccountKey(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Waits, up to `limit`, for the checks still running to settle; called
    /// at shutdown, so reservations are released rather than left to lapse.
    pub async fn settle_running(&self, limit: Duration) {
        let all_settled = async {
            loop {
                // Registered before looking, so the last settle cannot slip
                // between the look and the wait.
                let mut idle = pin!(self.running.idle.notified());
                idle.as_mut().enable();
                if self.running.count.load(Ordering::SeqCst) == 0 {
                    return;
                }
                idle.await;
            }
        };
        let _ = tokio::time::timeout(limit, all_settled).await;
    }

    /// Verifies `password` against `stored` (the dummy hash when `None`, so
    /// an unknown account costs the same) as one counted check on `account`.
    ///
    /// 429 `too_many_attempts` when the account is locked, before or after
    /// waiting for budget; 503 when no budget frees up within
    /// `HASH_QUEUE_TIMEOUT_SECONDS`, as for a full hashing queue.
    pub async fn check(
        &self,
        store: &Store,
        hasher: &PasswordHasher,
        account: &AccountKey,
        password: &Password,
        stored: Option<String>,
    ) -> Result<Verdict> {
        let deadline = Instant::now() + self.wait_limit;
        let _queue = QueueMembership {
            lockout: self,
            account,
        };
        let turn = self.take_turn(account, deadline).await;
        let id = Uuid::now_v7().to_string();
        let lease = (self.wait_limit * 2 + RESERVATION_MARGIN).as_secs() as i64;
        self.admit(store, account, &id, lease, deadline).await?;
        // Verifying and settling run as their own task: a client that hangs
        // up drops this request's future, and an unsettled reservation would
        // hold part of the account's budget until it lapsed.
        let store = store.clone();
        let hasher = hasher.clone();
        let policy = self.policy;
        let settled = self.settled.clone();
        let running = self.running.clone();
        let turns = self.turns.clone();
        let account_key = account.0.clone();
        let password = password.clone();
        running.count.fetch_add(1, Ordering::SeqCst);
        let task = tokio::spawn(async move {
            let verified = hasher.verify(&password, stored.as_deref()).await;
            let outcome = match verified {
                Ok(true) => Outcome::Correct,
                Ok(false) => Outcome::Wrong,
                Err(_) => Outcome::Abandoned,
            };
            let now = crate::store::now();
            let lock = store
                .settle_attempt(&account_key, &id, now, &policy, outcome)
                .await;
            drop(turn);
            forget_if_idle(&turns, &account_key);
            settled.notify_waiters();
            if running.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                running.idle.notify_waiters();
            }
            let lock_seconds = lock.map(|until| until.map(|until| (until - now).max(1) as u64));
            (verified, lock_seconds)
        });
        let (verified, lock_seconds) = task
            .await
            .map_err(|e| ApiError::Internal(format!("password check task: {e}")))?;
        let lock_seconds = lock_seconds?;
        match verified {
            Ok(true) => Ok(Verdict::Correct),
            Ok(false) => Ok(Verdict::Wrong { lock_seconds }),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits for this instance's turn at `account` (arrival order, at most
    /// `LOCKOUT_THRESHOLD` at once), or until `deadline`, after which the
    /// check goes on and the database's budget decides.
    async fn take_turn(
        &self,
        account: &AccountKey,
        deadline: Instant,
    ) -> Option<OwnedSemaphorePermit> {
        let turns = {
            let mut all = self.turns.lock().expect("lockout turns lock");
            all.entry(account.0.clone())
                .or_insert_with(|| Arc::new(Semaphore::new(self.policy.threshold as usize)))
                .clone()
        };
        tokio::time::timeout_at(deadline.into(), turns.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
    }

    /// Records a reservation for the check `id`, waiting while the checks in
    /// flight hold the account's budget.
    async fn admit(
        &self,
        store: &Store,
        account: &AccountKey,
        id: &str,
        lease: i64,
        deadline: Instant,
    ) -> Result<()> {
        let mut first = true;
        loop {
            // Registered before looking, so a settle between the look and
            // the wait still wakes this check.
            let mut settled = pin!(self.settled.notified());
            settled.as_mut().enable();
            let now = crate::store::now();
            // A waiting check first looks without locking: only when the
            // budget seems free does it contend for the row.
            let looks_free = first
                || !matches!(
                    self.policy
                        .admit(store.attempts(&account.0, now).await?, now),
                    Admission::Wait
                );
            first = false;
            if looks_free {
                let check = Reservation {
                    account_key: &account.0,
                    id,
                    expires_at: now + lease,
                };
                match store.admit_attempt(&check, now, &self.policy).await? {
                    Admission::Admitted(_) => return Ok(()),
                    Admission::Locked { until } => {
                        // Measured after the write: the lock may have begun
                        // while this request waited for the database.
                        let left = until - crate::store::now();
                        return Err(ApiError::TooManyAttempts {
                            retry_after: Duration::from_secs(
                                left.clamp(1, self.policy.max_lock) as u64
                            ),
                        });
                    }
                    Admission::Wait => {}
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!("password checks of one account stayed busy for the whole wait");
                return Err(HashError::Busy {
                    retry_after: self.wait_limit,
                }
                .into());
            }
            let _ = tokio::time::timeout(POLL_INTERVAL.min(left), settled).await;
        }
    }
}

/// A check's place among its account's checks on this instance: however
/// the check ends (answered, or dropped with its request), its account's
/// queue is forgotten once empty.
struct QueueMembership<'a> {
    lockout: &'a Lockout,
    account: &'a AccountKey,
}

impl Drop for QueueMembership<'_> {
    fn drop(&mut self) {
        forget_if_idle(&self.lockout.turns, &self.account.0);
    }
}
