//! Turns the bare error responses that come from the framework and from
//! tower layers (404/405 from routing, 408 from the timeout, 413 from the
//! body limit …) into the same problem+json body as every other error, so
//! clients meet one error format whatever produced the failure.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub async fn normalise_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) || is_json(&response) {
        return response;
    }
    let error = match status {
        StatusCode::NOT_FOUND => ApiError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
        StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => ApiError::unavailable(),
        s if s.is_client_error() => {
            ApiError::bad_request("bad_request", "The request is not valid.")
        }
        _ => ApiError::Internal(format!("bare {status} response")),
    };
    let (mut parts, _) = response.into_parts();
    let mut rendered = error.into_response();
    // Keep what the original said besides its body (Allow on a 405, CORS …).
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in rendered.headers_mut().drain() {
        if let Some(name) = name {
            parts.headers.insert(name, value);
        }
    }
    parts.status = rendered.status();
    Response::from_parts(parts, std::mem::take(rendered.body_mut()))
}

fn is_json(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.starts_with("application/json") || ct.starts_with("application/problem+json")
        })
}
