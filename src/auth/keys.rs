//! Signing keys. With `JWT_SECRET` set, that secret is the one HS256 key.
//! Otherwise keys are generated once and kept in the database, so restarts
//! and every instance on the same database sign and verify alike.
//!
//! A rotation adds a key that is published at once and signs from a moment
//! kept with it (`KEY_PUBLISH_LEAD_SECONDS` later), so every instance
//! switches at the same moment and a client caching the JWKS has seen the
//! key before it meets a token signed with it. The newest key whose moment
//! has come signs; an older one keeps verifying until the tokens it could
//! have signed have expired, unless the rotation dropped it at once.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::config::{Config, JwtAlgorithm};
use crate::store::{Store, StoreError, StoredKey};

/// How often every instance rereads the keys: a rotation made elsewhere is
/// published, and a key dropped at once stops verifying, within 5 s.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(3);

/// How long an old key verifies after its successor began to sign, beyond
/// the access token lifetime: the clock leeway the contract allows.
const RETIREMENT_MARGIN_SECONDS: i64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored signing key {kid} is unreadable")]
    Corrupt { kid: String },
    #[error(
        "JWT_SECRET is configured, so there is no stored key to rotate; change the secret instead"
    )]
    ConfiguredSecret,
}

struct RingKey {
    kid: String,
    signing: EncodingKey,
    verifying: DecodingKey,
    /// Unix time from which this key signs.
    signs_from: i64,
    /// Unix time from which this key verifies nothing; `None` while no
    /// successor has been scheduled.
    retires_at: Option<i64>,
    /// The public half, published in the JWKS (EdDSA only).
    jwk: Option<Value>,
}

impl RingKey {
    fn verifies_at(&self, now: i64) -> bool {
        self.retires_at.is_none_or(|t| now < t)
    }
}

pub struct KeyRing {
    algorithm: Algorithm,
    /// Newest generation first.
    keys: Vec<RingKey>,
}

impl KeyRing {
    /// Loads the keys for the configured algorithm, creating the first one
    /// when the database has none.
    pub async fn load(config: &Config, store: &Store) -> Result<Self, KeyError> {
        if config.jwt_algorithm == JwtAlgorithm::Hs256
            && let Some(secret) = &config.jwt_secret
        {
            return Ok(Self::from_secret(secret.expose_secret().as_bytes()));
        }
        let algorithm = algorithm_name(config.jwt_algorithm);
        let mut stored = store.signing_keys(algorithm).await?;
        if stored.is_empty() {
            // Several instances may start together: the generation's unique
            // index picks one winner and everyone reads it back.
            let first = generate(config.jwt_algorithm, 1, crate::store::now());
            store.add_signing_key(&first, None).await?;
            stored = store.signing_keys(algorithm).await?;
        }
        Self::from_stored(config, &stored)
    }

    pub(crate) fn from_secret(secret: &[u8]) -> Self {
        // The kid names the secret without revealing it: a digest prefix.
        let digest = Sha256::digest(secret);
        let kid = format!("hs256-{}", &URL_SAFE_NO_PAD.encode(digest)[..16]);
        Self {
            algorithm: Algorithm::HS256,
            keys: vec![RingKey {
                kid,
                signing: EncodingKey::from_secret(secret),
                verifying: DecodingKey::from_secret(secret),
                signs_from: 0,
                retires_at: None,
                jwk: None,
            }],
        }
    }

    /// `stored` is newest generation first.
    fn from_stored(config: &Config, stored: &[StoredKey]) -> Result<Self, KeyError> {
        let algorithm = match config.jwt_algorithm {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
        };
        let mut keys = Vec::with_capacity(stored.len());
        for (i, key) in stored.iter().enumerate() {
            // A key stops verifying once every token it could have signed
            // before its successor began to sign has expired, or at once
            // when a rotation dropped it.
            let superseded = i.checked_sub(1).map(|successor| {
                signs_from(&stored[successor])
                    + config.access_token_ttl.as_secs() as i64
                    + RETIREMENT_MARGIN_SECONDS
            });
            let retires_at = match (superseded, key.retired_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            keys.push(decode(key, retires_at)?);
        }
        Ok(Self { algorithm, keys })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The key that signs at `now`: the newest whose moment has come. (Only
    /// a clock behind the one that rotated can find none; then the newest.)
    pub fn signing(&self, now: i64) -> (&str, &EncodingKey) {
        let key = self
            .keys
            .iter()
            .find(|k| k.signs_from <= now && k.verifies_at(now))
            .unwrap_or(&self.keys[0]);
        (&key.kid, &key.signing)
    }

    /// The key for `kid`, if it exists and still verifies at `now`.
    pub fn verifying_key(&self, kid: &str, now: i64) -> Option<&DecodingKey> {
        self.keys
            .iter()
            .find(|k| k.kid == kid && k.verifies_at(now))
            .map(|k| &k.verifying)
    }

    /// Whether `kid` names a key of this ring, retired or not.
    pub fn knows(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid == kid)
    }

    /// The JWKS document: the public keys that still verify, including one
    /// that will sign soon. Empty for HMAC, whose key must never be
    /// published.
    pub fn jwks(&self, now: i64) -> Value {
        let keys: Vec<&Value> = self
            .keys
            .iter()
            .filter(|k| k.verifies_at(now))
            .filter_map(|k| k.jwk.as_ref())
            .collect();
        json!({ "keys": keys })
    }
}

/// When `key` began or begins to sign; keys from before rotations were
/// scheduled say 0 and signed from their creation.
fn signs_from(key: &StoredKey) -> i64 {
    if key.signs_from == 0 {
        key.created_at
    } else {
        key.signs_from
    }
}

/// A new signing key: when it signs, and whether the older keys were
/// dropped with it.
#[derive(Debug)]
pub struct Rotation {
    pub kid: String,
    pub signs_from: i64,
    pub dropped_older: bool,
}

/// Adds a new signing key generation, published now. It signs from
/// `KEY_PUBLISH_LEAD_SECONDS` on, and the old ones keep verifying until
/// their tokens expire; `at_once` (a key that leaked) makes it sign now and
/// drops the older keys now.
pub async fn rotate(config: &Config, store: &Store, at_once: bool) -> Result<Rotation, KeyError> {
    if config.jwt_algorithm == JwtAlgorithm::Hs256 && config.jwt_secret.is_some() {
        return Err(KeyError::ConfiguredSecret);
    }
    let algorithm = algorithm_name(config.jwt_algorithm);
    loop {
        let newest = store
            .signing_keys(algorithm)
            .await?
            .first()
            .map_or(0, |k| k.generation);
        let now = crate::store::now();
        let lead = if at_once {
            0
        } else {
            config.key_publish_lead.as_secs() as i64
        };
        let key = generate(config.jwt_algorithm, newest + 1, now + lead);
        if store.add_signing_key(&key, at_once.then_some(now)).await? {
            return Ok(Rotation {
                kid: key.kid,
                signs_from: key.signs_from,
                dropped_older: at_once,
            });
        }
        // Another instance rotated at the same moment; go one further.
    }
}

fn algorithm_name(algorithm: JwtAlgorithm) -> &'static str {
    match algorithm {
        JwtAlgorithm::Hs256 => "HS256",
        JwtAlgorithm::EdDsa => "EdDSA",
    }
}

fn generate(algorithm: JwtAlgorithm, generation: i64, signs_from: i64) -> StoredKey {
    let (private_key, public_key) = match algorithm {
        JwtAlgorithm::Hs256 => {
            let mut secret = [0u8; 64];
            OsRng.fill_bytes(&mut secret);
            (STANDARD.encode(secret), None)
        }
        JwtAlgorithm::EdDsa => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let public = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
            (
                STANDARD.encode(seed),
                Some(URL_SAFE_NO_PAD.encode(public.as_bytes())),
            )
        }
    };
    let prefix = algorithm_name(algorithm).to_ascii_lowercase();
    StoredKey {
        kid: format!("{prefix}-{}", Uuid::now_v7().simple()),
        algorithm: algorithm_name(algorithm).to_owned(),
        generation,
        private_key,
        public_key,
        created_at: crate::store::now(),
        signs_from,
        retired_at: None,
    }
}

/// RFC 8410's fixed PKCS#8 prefix for an Ed25519 private key; the 32-byte
/// seed follows it. jsonwebtoken takes Ed25519 signing keys only as PKCS#8.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

fn decode(key: &StoredKey, retires_at: Option<i64>) -> Result<RingKey, KeyError> {
    let (verifying, jwk) = decode_verifying(key)?;
    Ok(RingKey {
        kid: key.kid.clone(),
        signing: decode_signing(key)?,
        verifying,
        signs_from: signs_from(key),
        retires_at,
        jwk,
    })
}

fn decode_signing(key: &StoredKey) -> Result<EncodingKey, KeyError> {
    let corrupt = || KeyError::Corrupt {
        kid: key.kid.clone(),
    };
    let private = STANDARD.decode(&key.private_key).map_err(|_| corrupt())?;
    match key.algorithm.as_str() {
        "HS256" => Ok(EncodingKey::from_secret(&private)),
        "EdDSA" if private.len() == 32 => {
            let mut der = ED25519_PKCS8_PREFIX.to_vec();
            der.extend_from_slice(&private);
            Ok(EncodingKey::from_ed_der(&der))
        }
        _ => Err(corrupt()),
    }
}

fn decode_verifying(key: &StoredKey) -> Result<(DecodingKey, Option<Value>), KeyError> {
    let corrupt = || KeyError::Corrupt {
        kid: key.kid.clone(),
    };
    let (decoding, jwk) = match key.algorithm.as_str() {
        "HS256" => {
            let secret = STANDARD.decode(&key.private_key).map_err(|_| corrupt())?;
            (DecodingKey::from_secret(&secret), None)
        }
        "EdDSA" => {
            let x = key.public_key.as_deref().ok_or_else(corrupt)?;
            let decoding = DecodingKey::from_ed_components(x).map_err(|_| corrupt())?;
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519", "x": x,
                "kid": key.kid, "alg": "EdDSA", "use": "sig",
            });
            (decoding, Some(jwk))
        }
        _ => return Err(corrupt()),
    };
    Ok((decoding, jwk))
}
