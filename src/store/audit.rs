//! Queries on `audit_events`.

use uuid::Uuid;

use super::{Store, StoreResult, on_pool, writing};

/// One security event, as stored and as listed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AuditRow {
    pub id: String,
    pub at: i64,
    pub kind: String,
    pub user_id: Option<String>,
    pub actor_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
    pub detail: Option<String>,
}

/// Which events to list.
#[derive(Debug, Default)]
pub struct AuditFilter<'a> {
    pub user_id: Option<Uuid>,
    pub kind: Option<&'a str>,
    /// Only events older than this one (the keyset cursor).
    pub before: Option<Uuid>,
}

pub struct AuditPage {
    pub events: Vec<AuditRow>,
    pub next_before: Option<Uuid>,
}

impl Store {
    #[tracing::instrument(skip_all, fields(kind = %event.kind))]
    pub async fn insert_audit_event(&self, event: &AuditRow) -> StoreResult<()> {
        writing!(self, conn => {
            sqlx::query(
                "INSERT INTO gatehouse_audit_events \
                 (id, at, kind, user_id, actor_id, ip, user_agent, request_id, detail) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&event.id)
            .bind(event.at)
            .bind(&event.kind)
            .bind(&event.user_id)
            .bind(&event.actor_id)
            .bind(&event.ip)
            .bind(&event.user_agent)
            .bind(&event.request_id)
            .bind(&event.detail)
            .execute(conn)
            .await?;
        });
        Ok(())
    }

    /// Events newest first, one page at a time.
    #[tracing::instrument(skip_all)]
    pub async fn list_audit_events(
        &self,
        filter: AuditFilter<'_>,
        limit: u32,
    ) -> StoreResult<AuditPage> {
        let mut sql = String::from(
            "SELECT id, at, kind, user_id, actor_id, ip, user_agent, request_id, detail \
             FROM gatehouse_audit_events WHERE 1 = 1",
        );
        if filter.user_id.is_some() {
            sql.push_str(" AND user_id = ?");
        }
        if filter.kind.is_some() {
            sql.push_str(" AND kind = ?");
        }
        if filter.before.is_some() {
            sql.push_str(" AND id < ?");
        }
        sql.push_str(" ORDER BY id DESC LIMIT ?");
        let rows: Vec<AuditRow> = on_pool!(self, conn => {
            let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
            if let Some(user_id) = filter.user_id {
                query = query.bind(user_id.to_string());
            }
            if let Some(kind) = filter.kind {
                query = query.bind(kind);
            }
            if let Some(before) = filter.before {
                query = query.bind(before.to_string());
            }
            query.bind(i64::from(limit) + 1).fetch_all(conn).await?
        });
        let mut events = rows;
        let next_before = if events.len() > limit as usize {
            events.truncate(limit as usize);
            events.last().and_then(|e| Uuid::parse_str(&e.id).ok())
        } else {
            None
        };
        Ok(AuditPage {
            events,
            next_before,
        })
    }

    /// Deletes events recorded before `before`.
    #[tracing::instrument(skip_all)]
    pub async fn sweep_audit_events(&self, before: i64) -> StoreResult<u64> {
        let swept = on_pool!(self, conn => unbounded {
            sqlx::query("DELETE FROM gatehouse_audit_events WHERE at < ?")
                .bind(before)
                .execute(conn)
                .await?
                .rows_affected()
        });
        Ok(swept)
    }
}
