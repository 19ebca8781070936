//! Queries on the `signing_keys` table.

use sqlx::Connection as _;

use super::{Store, StoreResult, on_pool, writing};

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
    /// When this key starts signing (Unix seconds; 0: from the start). A
    /// rotated key is published before then, so JWKS caches have it.
    pub signs_from: i64,
    /// When this key stopped verifying, if a rotation dropped it at once.
    pub retired_at: Option<i64>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("algorithm", &self.algorithm)
            .field("generation", &self.generation)
            .field("created_at", &self.created_at)
            .field("signs_from", &self.signs_from)
            .field("retired_at", &self.retired_at)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Every key for `algorithm`, newest generation first.
    #[tracing::instrument(skip_all, fields(algorithm))]
    pub async fn signing_keys(&self, algorithm: &str) -> StoreResult<Vec<StoredKey>> {
        let keys = on_pool!(self, conn => {
            sqlx::query_as(
                "SELECT kid, algorithm, generation, private_key, public_key, created_at, \
                 signs_from, retired_at FROM gatehouse_signing_keys WHERE algorithm = ? ORDER BY generation DESC",
            )
            .bind(algorithm)
            .fetch_all(conn)
            .await?
        });
        Ok(keys)
    }

    /// Inserts `key` unless its generation is already taken, and with
    /// `retire_older_at`, ends every older key of its algorithm then, in the
    /// same transaction. Returns whether it was inserted: `false` means
    /// another instance got there first, and its key is the one to use.
    #[tracing::instrument(skip_all, fields(kid = %key.kid))]
    pub async fn add_signing_key(
        &self,
        key: &StoredKey,
        retire_older_at: Option<i64>,
    ) -> StoreResult<bool> {
        let dialect = self.dialect();
        let inserted = writing!(self, conn => {
            let mut tx = conn.begin_with(dialect.begin_write()).await?;
            let insert = sqlx::query(
                "INSERT INTO gatehouse_signing_keys (kid, algorithm, generation, private_key, \
                 public_key, created_at, signs_from) VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(key.generation)
            .bind(&key.private_key)
            .bind(&key.public_key)
            .bind(key.created_at)
            .bind(key.signs_from)
            .execute(&mut *tx)
            .await;
            match insert {
                Ok(_) => {}
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(false),
                Err(e) => return Err(e.into()),
            }
            if let Some(at) = retire_older_at {
                sqlx::query(
                    "UPDATE gatehouse_signing_keys SET retired_at = ? \
                     WHERE algorithm = ? AND generation < ? AND retired_at IS NULL",
                )
                .bind(at)
                .bind(&key.algorithm)
                .bind(key.generation)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            true
        });
        Ok(inserted)
    }
}
