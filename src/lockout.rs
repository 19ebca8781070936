//! Password checks counted against an account's lockout: logins, and the
//! current-password confirmations of `PUT /me/password` and `DELETE /me`.
//!
//! Each check is reserved in the database before the password is verified
//! and settled after, so however many guesses arrive at once, across any
//! number of instances, no more are verified than `LOCKOUT_THRESHOLD`
//! allows. Checks beyond the budget wait for those in flight to settle;
//! concurrent *correct* checks therefore all go through, one budget's worth
//! at a time.

use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use tokio::sync::Notify;
use uuid::Uuid;

use crate::auth::{HashError, PasswordHasher};
use crate::config::Config;
use crate::domain::Password;
use crate::domain::lockout::{Admission, LockoutPolicy, Outcome};
use crate::error::{ApiError, Result};
use crate::store::{LoginColumn, Store, StoreError};

const SECRET_NAME: &str = "lockout_key";

/// How often a waiting check looks again when no settle on this instance
/// woke it (another instance's settle cannot).
const POLL_INTERVAL: Duration = Duration::from_millis(50);

pub struct Lockout {
    pub policy: LockoutPolicy,
    /// Keys the counters, so the table does not reveal what was typed.
    key: Vec<u8>,
    /// Wakes the checks waiting for budget whenever one settles here.
    settled: Arc<Notify>,
    wait_limit: Duration,
}

/// The counter a check is charged to. Opaque: an HMAC of the account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountKey(String);

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
        // A reservation outlives any live check: the hashing queue's wait,
        // then the request's whole budget for the hash and the writes.
        let lease = config.hash_queue_timeout + crate::config::REQUEST_TIMEOUT;
        Ok(Self {
            policy: LockoutPolicy::new(
                config.lockout_threshold,
                config.lockout_duration.as_secs() as i64,
                lease.as_secs() as i64,
            ),
            key,
            settled: Arc::new(Notify::new()),
            wait_limit: config.hash_queue_timeout,
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
}

impl Lockout {
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
        self.admit(store, account).await?;
        // Verifying and settling run as their own task: a client that hangs
        // up drops this request's future, and an unsettled reservation would
        // hold part of the account's budget until its lease ran out.
        let store = store.clone();
        let hasher = hasher.clone();
        let policy = self.policy;
        let settled = self.settled.clone();
        let account = account.clone();
        let password = password.clone();
        let task = tokio::spawn(async move {
            let verified = hasher.verify(&password, stored.as_deref()).await;
            let outcome = match verified {
                Ok(true) => Outcome::Correct,
                Ok(false) => Outcome::Wrong,
                Err(_) => Outcome::Abandoned,
            };
            let now = crate::store::now();
            let lock = store
                .settle_attempt(&account.0, now, &policy, outcome)
                .await;
            settled.notify_waiters();
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

    /// Reserves a check, waiting while the checks in flight hold the budget.
    async fn admit(&self, store: &Store, account: &AccountKey) -> Result<()> {
        let deadline = Instant::now() + self.wait_limit;
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
                || match store.attempts(&account.0).await? {
                    None => true,
                    Some(current) => !matches!(self.policy.admit(current, now), Admission::Wait),
                };
            first = false;
            if looks_free {
                match store.admit_attempt(&account.0, now, &self.policy).await? {
                    Admission::Admitted(_) => return Ok(()),
                    Admission::Locked { until } => {
                        return Err(ApiError::TooManyAttempts {
                            retry_after: Duration::from_secs((until - now).max(1) as u64),
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
