//! Request ids. Every response carries `x-request-id`: the client's own when
//! it is 1–128 characters of letters, digits and `-_.:`, else a fresh one.
//! The id is set by tower-http's request-id layers; this module vets the
//! incoming header before they run and makes the id available to code that
//! renders problem bodies, through a task-local.

use axum::extract::Request;
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use tower_http::request_id::{MakeRequestId, RequestId};
use uuid::Uuid;

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

fn acceptable(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// Drops a client-sent id that breaks the rules, so a fresh one replaces it.
pub async fn discard_unacceptable(mut request: Request, next: Next) -> Response {
    let headers = request.headers_mut();
    let ids: Vec<_> = headers.get_all(&X_REQUEST_ID).iter().collect();
    if ids.len() != 1 || !acceptable(ids[0].as_bytes()) {
        headers.remove(&X_REQUEST_ID);
    }
    next.run(request).await
}

/// Runs the rest of the request with its id in the task-local.
pub async fn scope(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    CURRENT.scope(id, next.run(request)).await
}

/// Fresh ids are UUIDv7, like every other id gatehouse hands out.
#[derive(Clone, Copy, Default)]
pub struct MakeUuidV7;

impl MakeRequestId for MakeUuidV7 {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        Uuid::now_v7().to_string().parse().ok().map(RequestId::new)
    }
}

#[cfg(test)]
mod tests {
    use super::acceptable;

    #[test]
    fn the_id_rules_hold_at_their_edges() {
        assert!(acceptable(b"a"));
        assert!(acceptable(b"trace-1_2.3:4"));
        assert!(acceptable("x".repeat(128).as_bytes()));
        assert!(!acceptable(b""));
        assert!(!acceptable("x".repeat(129).as_bytes()));
        assert!(!acceptable(b"has space"));
        assert!(!acceptable(b"semi;colon"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Accepted ids are exactly 1–128 bytes of the allowed set.
            #[test]
            fn only_well_formed_ids_are_kept(id in proptest::collection::vec(any::<u8>(), 0..160)) {
                let expected = (1..=128).contains(&id.len())
                    && id.iter().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(b));
                prop_assert_eq!(acceptable(&id), expected);
            }
        }
    }
}
