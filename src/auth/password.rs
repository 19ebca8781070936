//! Argon2id hashing, kept off the async runtime and bounded: at most
//! `MAX_CONCURRENT_HASHES` run at once on blocking threads, and a request
//! that cannot get a slot within `HASH_QUEUE_TIMEOUT_SECONDS` is turned away
//! rather than queued without end. A burst of logins therefore never stalls
//! `/me` or the health checks, which do no hashing.

use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use rand::rngs::OsRng;
use tokio::sync::Semaphore;

use crate::config::Argon2Settings;
use crate::domain::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Every hashing slot stayed busy for the whole queue timeout.
    #[error("no hashing slot became free in time")]
    Busy { retry_after: Duration },
    #[error("hashing failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    slots: Arc<Semaphore>,
    queue_timeout: Duration,
    /// Verified against when the account does not exist, so an unknown user
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub async fn new(
        settings: Argon2Settings,
        max_concurrent: usize,
        queue_timeout: Duration,
    ) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| HashError::Failed(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let mut random = [0u8; 32];
        OsRng.fill_bytes(&mut random);
        let dummy_password = base64_of(&random);
        let dummy_hash = {
            let argon2 = argon2.clone();
            tokio::task::spawn_blocking(move || hash_with(&argon2, &dummy_password))
                .await
                .map_err(|e| HashError::Failed(e.to_string()))??
        };
        Ok(Self {
            argon2,
            slots: Arc::new(Semaphore::new(max_concurrent)),
            queue_timeout,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// A PHC-format argon2id hash of `password` with a fresh random salt.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.clone();
        self.run(move |argon2| hash_with(argon2, password.expose()))
            .await?
    }

    /// Whether `password` matches `stored`. With no stored hash the dummy
    /// hash is checked instead and the answer is always `false`.
    pub async fn verify(
        &self,
        password: &Password,
        stored: Option<&str>,
    ) -> Result<bool, HashError> {
        let known = stored.is_some();
        let hash: Arc<str> = stored.map_or_else(|| self.dummy_hash.clone(), Arc::from);
        let password = password.clone();
        let matches = self
            .run(move |argon2| {
                PasswordHash::new(&hash)
                    .map(|parsed| {
                        argon2
                            .verify_password(password.expose().as_bytes(), &parsed)
                            .is_ok()
                    })
                    .unwrap_or(false)
            })
            .await?;
        Ok(known && matches)
    }

    /// Runs other CPU-bound work on passwords (the strength check) in the
    /// same bounded pool, so no input can make it compete with the async
    /// workers that answer every other request.
    pub async fn run_blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        self.run(move |_| work()).await
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Argon2<'static>) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let queue = metrics::gauge!("gatehouse_hash_queue_depth");
        queue.increment(1.0);
        let waiting_since = std::time::Instant::now();
        let permit =
            tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await;
        queue.decrement(1.0);
        metrics::histogram!("gatehouse_hash_wait_seconds")
            .record(waiting_since.elapsed().as_secs_f64());
        let permit = permit
            .map_err(|_| HashError::Busy {
                retry_after: self.queue_timeout,
            })?
            .expect("the hashing semaphore is never closed");
        let argon2 = self.argon2.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&argon2);
            drop(permit);
            result
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))
    }
}

fn hash_with(argon2: &Argon2<'static>, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Argon2Settings {
        Argon2Settings {
            memory_kib: 64,
            iterations: 1,
            parallelism: 1,
        }
    }

    fn password(raw: &str) -> Password {
        Password::given("password", raw).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let hasher = PasswordHasher::new(settings(), 2, Duration::from_secs(5))
            .await
            .unwrap();
        let hash = hasher.hash(&password("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify(&password("correct horse"), Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&password("wrong horse"), Some(&hash))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = PasswordHasher::new(settings(), 2, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(!hasher.verify(&password("anything"), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_after_the_timeout() {
        let hasher = PasswordHasher::new(settings(), 1, Duration::from_millis(50))
            .await
            .unwrap();
        let _held = hasher.slots.clone().acquire_owned().await.unwrap();
        let err = hasher.hash(&password("correct horse")).await.unwrap_err();
        assert!(matches!(err, HashError::Busy { .. }));
    }
}
