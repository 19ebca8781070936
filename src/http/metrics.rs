//! `GET /metrics` in Prometheus text format, and the request metrics every
//! route records. Routes are labelled by their template (`/admin/users/{id}`),
//! never the raw path, so label values stay few and carry no ids.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::app::AppState;

/// The process-wide recorder. Metrics macros report to one global recorder,
/// so every server in the process (tests start many) shares it.
fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let seconds = &[
            0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), seconds)
            .expect("bucket list is not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed")
    })
}

/// Installs the recorder; called when the router is built.
pub fn install() {
    handle();
}

/// Counts every request by method, route template and status, and times it.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label: one of the standard methods, or `other`. HTTP
/// lets a client invent any token as a method; labelling by it verbatim
/// would let requests create series without bound.
fn method_label(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD
        .into_iter()
        .find(|known| *known == method.as_str())
        .unwrap_or("other")
}

/// Metrics
///
/// Prometheus text format: requests by route template, method and status,
/// latency, login outcomes, lockouts, refresh-token reuse, the hashing
/// queue and the database pool.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text exposition format.",
               content_type = "text/plain", body = String)),
)]
pub async fn render(State(state): State<AppState>) -> impl IntoResponse {
    let (size, idle) = state.store.pool_usage();
    metrics::gauge!("gatehouse_db_pool_connections", "state" => "idle").set(idle as f64);
    metrics::gauge!("gatehouse_db_pool_connections", "state" => "in_use")
        .set((size as usize).saturating_sub(idle) as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle().render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let invented = Method::from_bytes(&[b'X'; 16_000]).unwrap();
        assert_eq!(method_label(&invented), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
