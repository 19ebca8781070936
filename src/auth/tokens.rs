//! Access tokens: JWTs with `typ: at+jwt` and a `kid`, checked strictly:
//! the exact algorithm, issuer, audience, every claim present and typed,
//! the clock with a small leeway; nothing about a token is trusted before
//! its signature is.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, Header};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::{self, KeyRing};
use crate::config::Config;
use crate::domain::{Role, User};
use crate::store::Store;

/// Clock skew tolerated on `exp` and `nbf`. Small on purpose: instances
/// share one clock source, and the contract allows at most 30 s.
pub const LEEWAY_SECONDS: u64 = 5;

/// The claims of an access token. Every field is required: a token missing
/// any of them does not deserialise and is refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: Uuid,
    pub exp: u64,
    pub iat: u64,
    pub nbf: u64,
    pub jti: Uuid,
    pub sid: Uuid,
    pub role: Role,
    pub preferred_username: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("invalid token")]
    Invalid,
    #[error("token expired")]
    Expired,
    /// Well-formed, but signed with a key this instance does not hold (yet):
    /// worth rereading the keys once (see [`TokenService::reread_for_unknown_key`]).
    #[error("invalid token")]
    UnknownKey,
}

/// How often a token with an unknown `kid` may make an instance reread the
/// keys: at most once a second (counted from the end of the last reread),
/// however many such tokens arrive.
const REREAD_SPACING: Duration = Duration::from_secs(1);

/// When the keys were last reread from the database.
#[derive(Clone, Copy)]
struct Reread {
    started: Instant,
    ended: Instant,
}

pub struct IssuedToken {
    pub token: String,
    pub expires_in: u64,
}

pub struct TokenService {
    keys: RwLock<Arc<KeyRing>>,
    /// The last reread of the keys; held while rereading, so rereads never
    /// overlap (an older snapshot never replaces a newer one) and one
    /// reread serves every request that waited for it.
    last_reread: tokio::sync::Mutex<Option<Reread>>,
    issuer: String,
    audience: String,
    ttl: Duration,
}

impl TokenService {
    pub fn new(config: &Config, keys: KeyRing) -> Self {
        Self {
            keys: RwLock::new(Arc::new(keys)),
            last_reread: tokio::sync::Mutex::new(None),
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            ttl: config.access_token_ttl,
        }
    }

    pub fn key_ring(&self) -> Arc<KeyRing> {
        self.keys.read().expect("key ring lock").clone()
    }

    /// Rereads the keys from the database (picking up a rotation).
    pub async fn reload(&self, config: &Config, store: &Store) -> Result<(), keys::KeyError> {
        let mut last = self.last_reread.lock().await;
        self.reread(&mut last, config, store).await
    }

    /// Rereads the keys after a token came with a `kid` this instance does
    /// not know: another instance may have signed it with a key rotated in
    /// a moment ago. Waits for its turn (at most one reread a second), and
    /// returns at once when a reread began after the caller asked. `Ok`
    /// means the keys are newer than when the caller asked.
    pub async fn reread_for_unknown_key(
        &self,
        config: &Config,
        store: &Store,
    ) -> Result<(), keys::KeyError> {
        let asked_at = Instant::now();
        let mut last = self.last_reread.lock().await;
        if let Some(previous) = *last {
            if previous.started >= asked_at {
                return Ok(());
            }
            tokio::time::sleep_until((previous.ended + REREAD_SPACING).into()).await;
        }
        self.reread(&mut last, config, store).await
    }

    async fn reread(
        &self,
        last: &mut Option<Reread>,
        config: &Config,
        store: &Store,
    ) -> Result<(), keys::KeyError> {
        let started = Instant::now();
        let ring = KeyRing::load(config, store).await;
        *last = Some(Reread {
            started,
            ended: Instant::now(),
        });
        *self.keys.write().expect("key ring lock") = Arc::new(ring?);
        Ok(())
    }

    /// Signs an access token for `user` in session `session_id`, issued at
    /// `issued_at` (Unix seconds) with id `jti`. The same inputs give the
    /// same token, which is what lets a replayed refresh return it again.
    pub fn issue(&self, user: &User, session_id: Uuid, issued_at: u64, jti: Uuid) -> IssuedToken {
        let ring = self.key_ring();
        let (kid, key) = ring.signing(issued_at as i64);
        let now = issued_at;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.id,
            exp: now + self.ttl.as_secs(),
            iat: now,
            nbf: now,
            jti,
            sid: session_id,
            role: user.role,
            preferred_username: user.handle().to_owned(),
        };
        let mut header = Header::new(ring.algorithm());
        header.typ = Some("at+jwt".to_owned());
        header.kid = Some(kid.to_owned());
        let token = jsonwebtoken::encode(&header, &claims, key).expect("signing with a loaded key");
        // The full lifetime even for a replayed pair, so both answers to
        // concurrent refreshes are identical; the overstatement is at most
        // the grace window, and `exp` is what verification uses.
        IssuedToken {
            token,
            expires_in: self.ttl.as_secs(),
        }
    }

    /// Checks the header (`alg` the configured one, `typ`, a known `kid`,
    /// no `crit`), then the signature, then the claims (`iss`, `aud`,
    /// `exp`, `nbf`, `iat` against the clock, with the leeway), and returns
    /// the claims of a genuine, current access token. Nothing in the claims
    /// is read before the signature is checked.
    ///
    /// Every guarded request comes through here, so each part of the token
    /// is decoded and parsed once, with jsonwebtoken doing the signature.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        use base64::Engine;
        let base64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Invalid);
        };
        let header = base64.decode(header).map_err(|_| TokenError::Invalid)?;
        let header: JoseHeader<'_> =
            serde_json::from_slice(&header).map_err(|_| TokenError::Invalid)?;
        let ring = self.key_ring();
        if header.crit.is_some()
            || header.alg.parse::<Algorithm>().ok() != Some(ring.algorithm())
            || !is_access_token_type(header.typ)
        {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let now = jsonwebtoken::get_current_timestamp();
        let key = ring
            .verifying_key(kid, now as i64)
            .ok_or(if ring.knows(kid) {
                TokenError::Invalid // retired
            } else {
                TokenError::UnknownKey
            })?;
        let signed = &token[..token.len() - signature.len() - 1];
        let genuine =
            jsonwebtoken::crypto::verify(signature, signed.as_bytes(), key, ring.algorithm())
                .unwrap_or(false);
        if !genuine {
            return Err(TokenError::Invalid);
        }
        let claims: AccessClaims = base64
            .decode(payload)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(TokenError::Invalid)?;
        if claims.iss != self.issuer || claims.aud != self.audience {
            return Err(TokenError::Invalid);
        }
        // A token claiming to be valid only later, or to be issued in the
        // future, was not issued by us as it is now.
        if claims.nbf > now + LEEWAY_SECONDS || claims.iat > now + LEEWAY_SECONDS {
            return Err(TokenError::Invalid);
        }
        if claims.exp.saturating_add(LEEWAY_SECONDS) < now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// The JOSE header members gatehouse reads; others are ignored, except
/// `crit`: RFC 7515 §4.1.11 makes a token with critical extensions the
/// verifier does not understand invalid, and gatehouse understands none.
/// A member given twice makes the header unreadable.
/// Borrowed from the decoded bytes: a member written with JSON escapes
/// makes the header unreadable, which no token gatehouse signs has.
#[derive(Deserialize)]
struct JoseHeader<'a> {
    alg: &'a str,
    #[serde(default)]
    typ: Option<&'a str>,
    #[serde(default)]
    kid: Option<&'a str>,
    /// Present in any form, `null` included.
    #[serde(default, deserialize_with = "present")]
    crit: Option<serde::de::IgnoredAny>,
}

fn present<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde::de::IgnoredAny>, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(Some)
}

/// RFC 9068: access tokens say `at+jwt`; the full media type is allowed too.
/// Refresh tokens are opaque, and any other JWT type is refused here.
fn is_access_token_type(typ: Option<&str>) -> bool {
    typ.is_some_and(|t| {
        t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

    fn service() -> TokenService {
        let vars = HashMap::from([("JWT_SECRET".to_owned(), SECRET.to_owned())]);
        let config = Config::from_map(&vars).unwrap();
        TokenService::new(&config, KeyRing::from_secret(SECRET.as_bytes()))
    }

    fn genuine(service: &TokenService) -> String {
        let now = jsonwebtoken::get_current_timestamp();
        service
            .issue(
                &User::sample(Uuid::now_v7()),
                Uuid::now_v7(),
                now,
                Uuid::now_v7(),
            )
            .token
    }

    #[test]
    fn a_genuine_token_verifies() {
        let service = service();
        assert!(service.verify(&genuine(&service)).is_ok());
    }

    proptest! {
        /// Any text as a token: refused, never a panic.
        #[test]
        fn any_text_is_refused(raw in "\\PC{0,200}|[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}") {
            prop_assert!(service().verify(&raw).is_err());
        }

        /// A genuine token with any one character changed is refused,
        /// unless the change leaves it the same token.
        #[test]
        fn any_single_change_to_a_genuine_token_is_refused(
            position in any::<prop::sample::Index>(),
            replacement in "[A-Za-z0-9_.=+/-]",
        ) {
            let service = service();
            let token = genuine(&service);
            let index = position.index(token.len());
            let mut changed = token.clone();
            changed.replace_range(index..index + 1, &replacement);
            if changed != token {
                // base64url's last character can carry unused bits: a change
                // there may decode to the same bytes, and then it is the same
                // token to any verifier.
                let same_bytes = {
                    use base64::Engine;
                    let decode = |t: &str| -> Vec<Vec<u8>> {
                        t.split('.')
                            .map(|part| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap_or_default())
                            .collect()
                    };
                    decode(&changed) == decode(&token) && changed.split('.').count() == 3
                };
                prop_assert_eq!(service.verify(&changed).is_ok(), same_bytes, "{}", changed);
            }
        }
    }
}
