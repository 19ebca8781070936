//! Refresh tokens: opaque, 256 random bits, stored only as keyed hashes.
//!
//! A rotation's new token is not random but derived from the old one with a
//! server key: `next = HMAC(chain_key, old)`. That lets a second refresh of
//! the same token inside the grace window be answered with exactly the pair
//! the first one got, without keeping any token in the database. Knowing an
//! old token does not reveal the next without the key.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use uuid::Uuid;

use crate::store::{Store, StoreError};

const SECRET_NAME: &str = "refresh_token_key";

pub struct RefreshTokens {
    key: SecretBytes,
}

/// Key material that never prints.
struct SecretBytes(Vec<u8>);

impl RefreshTokens {
    /// Loads the server's refresh-token key, creating it on first start.
    pub async fn load(store: &Store) -> Result<Self, StoreError> {
        let encoded = store
            .server_secret(SECRET_NAME, || STANDARD.encode(random_bytes()))
            .await?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| StoreError::Other(format!("server secret {SECRET_NAME} is unreadable")))?;
        Ok(Self {
            key: SecretBytes(key),
        })
    }

    /// A fresh token for a new session.
    pub fn generate(&self) -> SecretString {
        URL_SAFE_NO_PAD.encode(random_bytes()).into()
    }

    /// What the database stores and looks tokens up by.
    pub fn hash(&self, token: &str) -> String {
        hex(&self.mac(b"hash", token))
    }

    /// The token that replaces `token` when it is spent.
    pub fn successor(&self, token: &str) -> SecretString {
        URL_SAFE_NO_PAD.encode(self.mac(b"next", token)).into()
    }

    /// The `jti` of the access token issued alongside `token`, so that a
    /// replayed pair is identical to the original.
    pub fn access_token_id(&self, token: &SecretString) -> Uuid {
        let mac = self.mac(b"jti", token.expose_secret());
        let bytes: [u8; 16] = mac[..16].try_into().expect("a SHA-256 MAC has 32 bytes");
        uuid::Builder::from_random_bytes(bytes).into_uuid()
    }

    /// Domain-separated HMAC-SHA256 under the server key.
    fn mac(&self, purpose: &[u8], token: &str) -> [u8; 32] {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.key.0).expect("HMAC takes any key length");
        mac.update(purpose);
        mac.update(b"\0");
        mac.update(token.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

fn random_bytes() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> RefreshTokens {
        RefreshTokens {
            key: SecretBytes(vec![7; 32]),
        }
    }

    #[test]
    fn generated_tokens_carry_256_bits() {
        let t = tokens();
        let a = t.generate();
        assert_eq!(URL_SAFE_NO_PAD.decode(a.expose_secret()).unwrap().len(), 32);
        assert_ne!(a.expose_secret(), t.generate().expose_secret());
    }

    #[test]
    fn successors_and_hashes_are_deterministic_and_distinct() {
        let t = tokens();
        let next = t.successor("abc");
        assert_eq!(next.expose_secret(), t.successor("abc").expose_secret());
        assert_ne!(next.expose_secret(), "abc");
        assert_eq!(t.hash("abc"), t.hash("abc"));
        assert_ne!(t.hash("abc"), t.hash(next.expose_secret()));
        assert_eq!(t.hash("abc").len(), 64);
    }

    #[test]
    fn another_key_gives_other_hashes() {
        let other = RefreshTokens {
            key: SecretBytes(vec![8; 32]),
        };
        assert_ne!(tokens().hash("abc"), other.hash("abc"));
    }
}
