//! The OpenAPI 3.1 document served at `GET /openapi.json`. Operations and
//! schemas come from the handlers' `#[utoipa::path]` annotations and the
//! request and response types; aliases come from the route list, so every
//! path the router serves is documented; and every error response is built
//! from `ApiError` itself (see [`super::problem_docs`]), so each status,
//! `code` and example body shown is what the server really sends.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response as HttpResponse};
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Deprecated, OpenApi as Document, PathItem};
use utoipa::{Modify, OpenApi};

use super::routes::{Route, Routes};
use super::{admin, auth, docs, health, me, metrics, sessions};
use crate::domain::FieldError;
use crate::error::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "gatehouse",
        description = "User authentication: register, log in, JWT access tokens with rotating \
                       refresh tokens, sessions, roles and administration. Every error is \
                       `application/problem+json` with a stable `code`.",
    ),
    paths(
        auth::register,
        auth::login,
        sessions::refresh,
        sessions::logout,
        me::protected,
        me::me,
        me::update,
        me::change_password,
        me::delete,
        sessions::list,
        sessions::end,
        admin::list_users,
        admin::show_user,
        admin::change_user,
        admin::delete_user,
        admin::list_audit,
        health::live,
        health::ready,
        metrics::render,
        sessions::jwks,
        openapi_json,
        docs::page,
        docs::to_page,
        docs::asset,
    ),
    components(schemas(Problem, FieldError)),
    modifiers(&BearerScheme),
    tags(
        (name = "auth", description = "Registration, login, refresh and logout."),
        (name = "me", description = "The caller's own account and sessions."),
        (name = "admin", description = "User administration and the audit log; role `admin`."),
        (name = "operations", description = "Health, metrics, signing keys and these docs."),
        (name = "aliases", description = "Deprecated paths that older Flask/FastAPI auth backends \
                                           used; each behaves exactly like the route it names."),
    )
)]
struct ApiDoc;

/// The security scheme guarded operations name in `security(("bearer" = []))`.
pub const BEARER: &str = "bearer";

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, doc: &mut Document) {
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .description(Some(
                "An access token from `POST /auth/login` or `POST /auth/refresh`.",
            ))
            .build();
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(BEARER, SecurityScheme::Http(scheme));
    }
}

/// The document for the routes the router serves, built once.
pub fn json() -> &'static [u8] {
    static JSON: OnceLock<Vec<u8>> = OnceLock::new();
    JSON.get_or_init(|| {
        let doc = document(super::routes().listed());
        serde_json::to_vec(&doc).expect("the document serialises")
    })
}

/// The annotated operations, plus each alias in `routes` as a deprecated
/// copy of the operation it stands for.
pub fn document(routes: &[Route]) -> Document {
    let mut doc = ApiDoc::openapi();
    for route in routes {
        let Some(canonical) = route.alias_of else {
            continue;
        };
        let method = route.method.as_str();
        let mut operation = operation(&doc, method, canonical)
            .unwrap_or_else(|| panic!("{method} {canonical} is documented"))
            .clone();
        mark_as_alias(&mut operation, method, canonical, route.path);
        let item = doc.paths.paths.entry(route.path.to_owned()).or_default();
        *slot(item, method).expect("aliases use standard methods") = Some(operation);
    }
    doc
}

fn mark_as_alias(operation: &mut Operation, method: &str, canonical: &str, alias: &str) {
    operation.deprecated = Some(Deprecated::True);
    operation.tags = Some(vec!["aliases".to_owned()]);
    operation.summary = Some(format!("Alias of {method} {canonical}"));
    operation.operation_id = operation.operation_id.take().map(|id| {
        let slug: String = alias
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("{id}_alias{slug}")
    });
    let original = operation.description.take().unwrap_or_default();
    operation.description = Some(format!(
        "Deprecated alias of `{method} {canonical}`, kept so clients written for older \
         Flask/FastAPI auth backends work unchanged. It behaves exactly like the canonical \
         route, status codes included; new clients should call `{canonical}`.\n\n{original}"
    ));
    let pointer = ExtensionsBuilder::new()
        .add("x-alias-of", format!("{method} {canonical}"))
        .build();
    operation
        .extensions
        .get_or_insert_with(Default::default)
        .merge(pointer);
}

/// The operation documented for `method` on `path`.
fn operation<'d>(doc: &'d Document, method: &str, path: &str) -> Option<&'d Operation> {
    let item = doc.paths.paths.get(path)?;
    match method {
        "GET" => item.get.as_ref(),
        "POST" => item.post.as_ref(),
        "PUT" => item.put.as_ref(),
        "PATCH" => item.patch.as_ref(),
        "DELETE" => item.delete.as_ref(),
        _ => None,
    }
}

fn slot<'i>(item: &'i mut PathItem, method: &str) -> Option<&'i mut Option<Operation>> {
    match method {
        "GET" => Some(&mut item.get),
        "POST" => Some(&mut item.post),
        "PUT" => Some(&mut item.put),
        "PATCH" => Some(&mut item.patch),
        "DELETE" => Some(&mut item.delete),
        _ => None,
    }
}

/// `GET /openapi.json`.
pub fn routes() -> Routes {
    Routes::default().get(docs::DOCUMENT_PATH, openapi_json)
}

/// The OpenAPI document
///
/// This document: every route, its schemas and its error codes.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    operation_id = "openapi",
    responses((status = 200, description = "OpenAPI 3.1.", content_type = "application/json",
               body = Object)),
)]
async fn openapi_json() -> HttpResponse {
    ([(header::CONTENT_TYPE, "application/json")], json()).into_response()
}
