//! Queries on the `signing_keys` table.

use super::{Store, StoreError, StoreResult, on_pool};

/// A token signing key as stored. The private half is base64 text that only
/// `auth::keys` decodes; `Debug` never shows it.
#[derive(Clone, sqlx::FromRow)]
pub struct StoredKey {
    pub kid: String,
    pub algorithm: String,
    pub generation: i64,
    pub private_key: String,
    pub public_key: Option<String>,
    pub created_at: i64,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("generation", &self.generation)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Every key for `algorithm`, newest generation first.
    #[tracing::instrument(skip_all, fields(algorithm))]
    pub async fn signing_keys(&self, algorithm: &str) -> StoreResult<Vec<StoredKey>> {
        let keys = on_pool!(self, conn => {
            sqlx::query_as(
                "SELECT kid, algorithm, generation, private_key, public_key, created_at \
                 FROM signing_keys WHERE algorithm = ? ORDER BY generation DESC",
            )
            .bind(algorithm)
            .fetch_all(conn)
            .await?
        });
        Ok(keys)
    }

    /// Inserts `key` unless its generation is already taken. Returns whether
    /// it was inserted: `false` means another instance got there first, and
    /// its key is the one to use.
    #[tracing::instrument(skip_all, fields(kid = %key.kid))]
    pub async fn add_signing_key(&self, key: &StoredKey) -> StoreResult<bool> {
        let result = on_pool!(self, conn => {
            sqlx::query(
                "INSERT INTO signing_keys \
                 (kid, algorithm, generation, private_key, public_key, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(key.generation)
            .bind(&key.private_key)
            .bind(&key.public_key)
            .bind(key.created_at)
            .execute(conn)
            .await
            .map(|_| ())
        });
        match result {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(StoreError::from(e)),
        }
    }
}
