//! Argon2id hashing, kept off the async runtime and bounded: a fixed pool of
//! `MAX_CONCURRENT_HASHES` worker threads does all of it, and a request that
//! cannot get a worker within `HASH_QUEUE_TIMEOUT_SECONDS` is turned away
//! rather than queued without end. A burst of logins therefore never stalls
//! `/me` or the health checks, which do no hashing.
//!
//! Each worker owns argon2's working memory (`ARGON2_MEMORY_KIB`, 19 MiB by
//! default) for the life of the process and hashes into it. Allocating it
//! afresh for every hash let the allocator keep what each of many blocking
//! threads had freed, and the process grew to hundreds of megabytes after a
//! burst of logins; now memory is the pool's size times one hash's memory.
//! A stored hash that needs more than a worker owns (one made under a
//! larger `ARGON2_MEMORY_KIB`) is verified in memory taken for that one
//! verification and given back at once.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use rand::rngs::OsRng;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::legacy::{self, LegacyHash};
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
    pool: Arc<Pool>,
    /// The parameters new hashes get; a stored hash with others is
    /// replaced at its next successful login.
    params: Params,
    /// Verified against when the account does not exist, so an unknown user
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
}

/// The workers and the way to them. A job is sent only with a permit of
/// `slots`, and there are as many permits as workers, so a job sent always
/// finds a worker about to be free.
struct Pool {
    slots: Arc<Semaphore>,
    jobs: Mutex<mpsc::Sender<Job>>,
    queue_timeout: Duration,
}

type Job = Box<dyn FnOnce(&mut Workspace) + Send>;

/// What one worker owns: the parameters new hashes are made with, and the
/// memory to make them in.
pub struct Workspace {
    params: Params,
    memory: Vec<Block>,
}

impl PasswordHasher {
    pub async fn new(
        settings: Argon2Settings,
        workers: usize,
        queue_timeout: Duration,
    ) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| HashError::Failed(e.to_string()))?;
        let workers = workers.max(1);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..workers {
            let receiver = receiver.clone();
            let params = params.clone();
            std::thread::Builder::new()
                .name(format!("gatehouse-hash-{index}"))
                .spawn(move || work(&receiver, params))
                .map_err(|e| HashError::Failed(format!("cannot start a hashing worker: {e}")))?;
        }
        let pool = Arc::new(Pool {
            slots: Arc::new(Semaphore::new(workers)),
            jobs: Mutex::new(sender),
            queue_timeout,
        });
        let mut random = [0u8; 32];
        OsRng.fill_bytes(&mut random);
        let dummy = Password::given("password", &base64_of(&random))
            .map_err(|e| HashError::Failed(e.message))?;
        let mut hasher = Self {
            pool,
            params: params.clone(),
            dummy_hash: Arc::from(""),
        };
        hasher.dummy_hash = hasher.hash(&dummy).await?.into();
        Ok(hasher)
    }

    /// A PHC-format argon2id hash of `password` with a fresh random salt.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = password.clone();
        self.run(move |workspace| workspace.hash(password.expose()))
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
            .run(move |workspace| workspace.verify(password.expose(), &hash))
            .await?;
        Ok(known && matches)
    }

    /// Whether `stored` is argon2id with the parameters new hashes get. Any
    /// other hash (an older backend's, or argon2 with other costs) is
    /// replaced by a current one at the next successful login.
    pub fn is_current(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let same_params = legacy::argon2_params(&parsed).is_ok_and(|params| {
            params.m_cost() == self.params.m_cost()
                && params.t_cost() == self.params.t_cost()
                && params.p_cost() == self.params.p_cost()
        });
        Algorithm::try_from(parsed.algorithm) == Ok(Algorithm::Argon2id)
            && parsed.version == Some(Version::V0x13.into())
            && same_params
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
        work: impl FnOnce(&mut Workspace) -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.slot().await?;
        let (answer, answered) = oneshot::channel();
        let job: Job = Box::new(move |workspace| {
            let result = work(workspace);
            // The slot is free once the work is done, whether or not the
            // request that asked is still there to hear the answer.
            drop(permit);
            let _ = answer.send(result);
        });
        self.pool
            .jobs
            .lock()
            .expect("hashing queue lock")
            .send(job)
            .map_err(|_| HashError::Failed("the hashing workers have stopped".into()))?;
        answered
            .await
            .map_err(|_| HashError::Failed("a hashing worker stopped mid-job".into()))
    }

    /// Waits for a free worker, at most the queue timeout.
    async fn slot(&self) -> Result<OwnedSemaphorePermit, HashError> {
        let queue = metrics::gauge!("gatehouse_hash_queue_depth");
        queue.increment(1.0);
        let waiting_since = Instant::now();
        let permit = tokio::time::timeout(
            self.pool.queue_timeout,
            self.pool.slots.clone().acquire_owned(),
        )
        .await;
        queue.decrement(1.0);
        metrics::histogram!("gatehouse_hash_wait_seconds")
            .record(waiting_since.elapsed().as_secs_f64());
        Ok(permit
            .map_err(|_| HashError::Busy {
                retry_after: self.pool.queue_timeout,
            })?
            .expect("the hashing semaphore is never closed"))
    }
}

/// One worker: takes jobs until the hasher is dropped.
fn work(jobs: &Mutex<mpsc::Receiver<Job>>, params: Params) {
    let mut workspace = Workspace {
        memory: vec![Block::default(); params.block_count()],
        params,
    };
    loop {
        let job = jobs.lock().map(|receiver| receiver.recv());
        match job {
            Ok(Ok(job)) => job(&mut workspace),
            _ => return,
        }
    }
}

impl Workspace {
    fn hash(&mut self, password: &str) -> Result<String, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt
            .decode_b64(&mut salt_bytes)
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone());
        let mut output = [0u8; Params::DEFAULT_OUTPUT_LEN];
        argon2
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut output,
                &mut self.memory,
            )
            .map_err(|e| HashError::Failed(e.to_string()))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params)
                .map_err(|e| HashError::Failed(e.to_string()))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&output).map_err(|e| HashError::Failed(e.to_string()))?),
        };
        Ok(phc.to_string())
    }

    /// Whether `password` matches the PHC string `stored`, with the
    /// parameters `stored` names. A string that is not a well-formed argon2
    /// hash matches nothing.
    fn verify(&mut self, password: &str, stored: &str) -> bool {
        if !stored.starts_with("$argon2") {
            // A hash an older backend made, checked by its own scheme.
            return LegacyHash::parse(stored).is_ok_and(|legacy| legacy.verify(password));
        }
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        // A stored hash may not make a login spend more than the limits.
        let (Ok(algorithm), Ok(params), Ok(version), Some(salt), Some(expected)) = (
            Algorithm::try_from(parsed.algorithm),
            legacy::argon2_params(&parsed),
            legacy::argon2_version(&parsed),
            parsed.salt,
            parsed.hash,
        ) else {
            return false;
        };
        let mut salt_bytes = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
            return false;
        };
        let mut output = vec![0u8; expected.len()];
        let needed = params.block_count();
        let argon2 = Argon2::new(algorithm, version, params);
        let computed = if needed <= self.memory.len() {
            argon2.hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut output,
                &mut self.memory,
            )
        } else {
            // More than this worker owns: taken for this verification only.
            let mut memory = vec![Block::default(); needed];
            argon2.hash_password_into_with_memory(
                password.as_bytes(),
                salt_bytes,
                &mut output,
                &mut memory,
            )
        };
        computed.is_ok() && Output::new(&output).is_ok_and(|output| output == expected)
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

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

    async fn hasher(workers: usize, timeout: Duration) -> PasswordHasher {
        PasswordHasher::new(settings(), workers, timeout)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_only_its_own_password() {
        let hasher = hasher(2, Duration::from_secs(5)).await;
        let hash = hasher.hash(&password("correct horse")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
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
    async fn a_hash_without_a_version_is_read_as_version_0x10() {
        // Verified as true by libargon2 (argon2-cffi) and passlib, which read
        // a string without `v=` as the first version.
        let stored =
            "$argon2i$m=4096,t=2,p=1$c2FsdHNhbHRzYWx0$8hNPFHj2gtHa04Od7ICs8mO0jsMU+apeTYvP2wJNpLM";
        let hasher = hasher(1, Duration::from_secs(5)).await;
        assert!(
            hasher
                .verify(&password("Correct horse 1"), Some(stored))
                .await
                .unwrap()
        );
        let with_v19 = stored.replace("$m=", "$v=19$m=");
        assert!(
            !hasher
                .verify(&password("Correct horse 1"), Some(&with_v19))
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn hashes_are_standard_argon2id_both_ways() {
        let hasher = hasher(1, Duration::from_secs(5)).await;
        // Ours verify with the argon2 crate's own verifier …
        let ours = hasher.hash(&password("correct horse")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", &parsed)
                .is_ok()
        );
        // … and its hashes, with other parameters (more memory than a
        // worker owns, another variant), verify with ours.
        for (algorithm, memory) in [(Algorithm::Argon2id, 256), (Algorithm::Argon2i, 32)] {
            let params = Params::new(memory, 2, 1, None).unwrap();
            let theirs = Argon2::new(algorithm, Version::V0x13, params)
                .hash_password(b"correct horse", &SaltString::generate(&mut OsRng))
                .unwrap()
                .to_string();
            assert!(
                hasher
                    .verify(&password("correct horse"), Some(&theirs))
                    .await
                    .unwrap(),
                "{theirs}"
            );
            assert!(
                !hasher
                    .verify(&password("wrong horse"), Some(&theirs))
                    .await
                    .unwrap()
            );
        }
    }

    #[tokio::test]
    async fn malformed_hashes_match_nothing() {
        let hasher = hasher(1, Duration::from_secs(5)).await;
        let good = hasher.hash(&password("correct horse")).await.unwrap();
        for bad in [
            "",
            "plain text",
            "$argon2id$",
            &good[..good.len() - 5],
            &good.replace("m=64", "m=1"),
        ] {
            assert!(
                !hasher
                    .verify(&password("correct horse"), Some(bad))
                    .await
                    .unwrap(),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn an_unknown_user_never_verifies() {
        let hasher = hasher(2, Duration::from_secs(5)).await;
        assert!(!hasher.verify(&password("anything"), None).await.unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_is_refused_after_the_timeout() {
        let hasher = hasher(1, Duration::from_millis(50)).await;
        let _held = hasher.pool.slots.clone().acquire_owned().await.unwrap();
        let err = hasher.hash(&password("correct horse")).await.unwrap_err();
        assert!(matches!(err, HashError::Busy { .. }));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_pool_s_size_run_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hasher = hasher(3, Duration::from_secs(30)).await;
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let jobs = (0..24).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            hasher.run_blocking(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(20));
                running.fetch_sub(1, Ordering::SeqCst);
            })
        });
        for result in futures::future::join_all(jobs).await {
            result.unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 3);
    }
}
