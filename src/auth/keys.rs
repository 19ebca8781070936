//! Signing keys. With `JWT_SECRET` set, that secret is the one HS256 key.
//! Otherwise keys are generated once and kept in the database, so restarts
//! and every instance on the same database sign and verify alike. The newest
//! generation signs; an older one keeps verifying until the tokens it could
//! have signed have expired.

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

/// How often every instance rereads the keys, so a rotation made elsewhere
/// is picked up. Old keys stay valid this much longer to cover the lag.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(60);

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

struct VerifyingKey {
    kid: String,
    key: DecodingKey,
    /// Unix time after which this key verifies nothing; `None` while current.
    retires_at: Option<i64>,
    /// The public half, published in the JWKS (EdDSA only).
    jwk: Option<Value>,
}

pub struct KeyRing {
    algorithm: Algorithm,
    signing_kid: String,
    signing_key: EncodingKey,
    verifying: Vec<VerifyingKey>,
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
            store
                .add_signing_key(&generate(config.jwt_algorithm, 1))
                .await?;
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
            signing_kid: kid.clone(),
            signing_key: EncodingKey::from_secret(secret),
            verifying: vec![VerifyingKey {
                kid,
                key: DecodingKey::from_secret(secret),
                retires_at: None,
                jwk: None,
            }],
        }
    }

    fn from_stored(config: &Config, stored: &[StoredKey]) -> Result<Self, KeyError> {
        let newest = stored.first().expect("at least one key was stored");
        let algorithm = match config.jwt_algorithm {
            JwtAlgorithm::Hs256 => Algorithm::HS256,
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
        };
        let mut verifying = Vec::with_capacity(stored.len());
        for (i, key) in stored.iter().enumerate() {
            // A key stops verifying once every token it could have signed
            // before its successor appeared (and was noticed) has expired.
            let retires_at = i.checked_sub(1).map(|successor| {
                stored[successor].created_at
                    + (config.access_token_ttl + RELOAD_INTERVAL).as_secs() as i64
            });
            verifying.push(decode_verifying(key, retires_at)?);
        }
        Ok(Self {
            algorithm,
            signing_kid: newest.kid.clone(),
            signing_key: decode_signing(newest)?,
            verifying,
        })
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    pub fn signing(&self) -> (&str, &EncodingKey) {
        (&self.signing_kid, &self.signing_key)
    }

    /// The key for `kid`, if it exists and still verifies at `now`.
    pub fn verifying_key(&self, kid: &str, now: i64) -> Option<&DecodingKey> {
        self.verifying
            .iter()
            .find(|k| k.kid == kid && k.retires_at.is_none_or(|t| now < t))
            .map(|k| &k.key)
    }

    /// The JWKS document: the public keys that still verify. Empty for HMAC,
    /// whose key must never be published.
    pub fn jwks(&self, now: i64) -> Value {
        let keys: Vec<&Value> = self
            .verifying
            .iter()
            .filter(|k| k.retires_at.is_none_or(|t| now < t))
            .filter_map(|k| k.jwk.as_ref())
            .collect();
        json!({ "keys": keys })
    }
}

/// Adds a new signing key generation; the old ones keep verifying.
pub async fn rotate(config: &Config, store: &Store) -> Result<String, KeyError> {
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
        let key = generate(config.jwt_algorithm, newest + 1);
        if store.add_signing_key(&key).await? {
            return Ok(key.kid);
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

fn generate(algorithm: JwtAlgorithm, generation: i64) -> StoredKey {
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
    }
}

/// RFC 8410's fixed PKCS#8 prefix for an Ed25519 private key; the 32-byte
/// seed follows it. jsonwebtoken takes Ed25519 signing keys only as PKCS#8.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

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

fn decode_verifying(key: &StoredKey, retires_at: Option<i64>) -> Result<VerifyingKey, KeyError> {
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
    Ok(VerifyingKey {
        kid: key.kid.clone(),
        key: decoding,
        retires_at,
        jwk,
    })
}
