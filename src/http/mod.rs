//! The HTTP surface: one module per resource, each with its own `router()`,
//! assembled here with every cross-cutting layer in one place.

pub mod admin;
pub mod auth;
pub mod client;
pub mod connections;
pub mod docs;
pub mod extract;
pub mod health;
pub mod me;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod problem_docs;
pub mod rate_limit;
pub mod request_id;
pub mod routes;
pub mod sessions;
pub mod views;

use std::time::Duration;

use axum::Router;
use axum::http::header::{self, HeaderValue};
use axum::http::{Method, Request, StatusCode};
use axum::middleware::{from_fn, from_fn_with_state};
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::app::AppState;
use crate::config::{CorsOrigins, REQUEST_TIMEOUT};
use crate::error::ApiError;
use request_id::{MakeUuidV7, X_REQUEST_ID};

/// Every route gatehouse serves; the OpenAPI document lists the same.
pub fn routes() -> routes::Routes {
    routes::Routes::default()
        .merge(auth::routes())
        .merge(sessions::routes())
        .merge(me::routes())
        .merge(admin::routes())
        .merge(health::routes())
        .merge(openapi::routes())
        .merge(docs::routes())
        .get("/metrics", metrics::render)
}

pub fn router(state: AppState) -> Router {
    let cors = cors_layer(&state.config.cors_allowed_origins);
    metrics::install();
    // Layers are listed innermost first: each `.layer` wraps all above it.
    let mut router = routes()
        .into_router()
        .fallback(|| async { ApiError::NotFound })
        .with_state(state.clone())
        .layer(RequestBodyLimitLayer::new(extract::DRAIN_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            REQUEST_TIMEOUT,
        ))
        .layer(from_fn(problem::normalise_errors))
        .layer(from_fn(request_id::scope))
        .layer(from_fn(metrics::track));
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    router
        // Responses carry tokens and personal data; nothing should cache them.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        // For HTTP/1.0 caches, which know no Cache-Control (RFC 6749 §5.1
        // asks for both on token responses).
        .layer(SetResponseHeaderLayer::if_not_present(
            header::PRAGMA,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            html_policy,
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(from_fn_with_state(state, client::identify))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(X_REQUEST_ID.clone(), MakeUuidV7))
        .layer(from_fn(request_id::discard_unacceptable))
}

/// The span every log line of a request is recorded in. Only the path is
/// logged, never the query string, which a careless client may fill with
/// secrets.
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let client = request
        .extensions()
        .get::<crate::client::ClientInfo>()
        .and_then(|c| c.ip)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        request_id = %id,
        client = %client,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

/// The Content-Security-Policy for a response that is an HTML page, on
/// whatever route it came from; nothing for other responses.
fn html_policy<B>(response: &axum::http::Response<B>) -> Option<HeaderValue> {
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    is_html.then(|| HeaderValue::from_static(docs::HTML_POLICY))
}

fn cors_layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow_origin = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .map(|o| HeaderValue::from_str(o).expect("origins are validated at start-up")),
        ),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow_origin)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                X_REQUEST_ID.clone(),
            ])
            .expose_headers([
                X_REQUEST_ID.clone(),
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}
