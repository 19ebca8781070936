//! Liveness and readiness for load balancers and orchestrators.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::routes::Routes;
use crate::app::AppState;
use crate::error::UNAVAILABLE_RETRY_AFTER;

pub fn routes() -> Routes {
    Routes::default()
        .get("/health/live", live)
        .get("/health/ready", ready)
}

#[derive(Serialize, ToSchema)]
struct Health {
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// Liveness
///
/// The process is up and serving; says nothing about the database.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    operation_id = "live",
    responses((status = 200, description = "`{\"status\":\"ok\"}`", body = Health)),
)]
async fn live() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness
///
/// Ready when the database answers a query.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    operation_id = "ready",
    responses(
        (status = 200, description = "`{\"status\":\"ok\"}`", body = Health),
        (status = 503, description = "`{\"status\":\"unavailable\"}`", body = Health,
         headers(("Retry-After" = u64, description = "Seconds to wait."))),
    ),
)]
async fn ready(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => Json(Health { status: "ok" }).into_response(),
        Err(e) => {
            tracing::warn!(cause = %e, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(
                    header::RETRY_AFTER,
                    UNAVAILABLE_RETRY_AFTER.as_secs().to_string(),
                )],
                Json(Health {
                    status: "unavailable",
                }),
            )
                .into_response()
        }
    }
}
