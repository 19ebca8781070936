//! The OpenAPI 3.1 document served at `GET /openapi.json`. Operations and
//! schemas come from the handlers' `#[utoipa::path]` annotations and the
//! request and response types; aliases come from the route list, so every
//! path the router serves is documented; and every error response is built
//! from [`ApiError`] itself, so each status, `code` and example body shown
//! is what the server really sends.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, Deprecated, OpenApi as Document, PathItem, Ref, RefOr, Response,
    ResponseBuilder,
};
use utoipa::{Modify, OpenApi};

use super::routes::Route;
use super::{admin, auth, docs, extract, health, me, metrics, sessions};
use crate::domain::FieldError;
use crate::error::{ApiError, Problem, UNAVAILABLE_RETRY_AFTER};

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
        docs::openapi_json,
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

/// One response per status among `errors`: a problem document whose `code`
/// is one of theirs, with each error's body as a named example, and the
/// `WWW-Authenticate` or `Retry-After` header the status comes with.
pub fn problem_responses(errors: &[ApiError]) -> BTreeMap<String, RefOr<Response>> {
    let mut by_status: BTreeMap<u16, Vec<&ApiError>> = BTreeMap::new();
    for error in errors {
        by_status
            .entry(error.status().as_u16())
            .or_default()
            .push(error);
    }
    by_status
        .into_iter()
        .map(|(status, errors)| (status.to_string(), problem_response(&errors).into()))
        .collect()
}

fn problem_response(errors: &[&ApiError]) -> Response {
    // The first error of each code stands for it in the description.
    let mut firsts: Vec<&ApiError> = Vec::new();
    for &error in errors {
        if !firsts.iter().any(|e| e.code() == error.code()) {
            firsts.push(error);
        }
    }
    let codes: Vec<&str> = firsts.iter().map(|e| e.code()).collect();
    let schema = AllOfBuilder::new()
        .item(Ref::from_schema_name("Problem"))
        .item(
            ObjectBuilder::new()
                .property(
                    "code",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(codes)),
                )
                .property(
                    "status",
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .enum_values(Some([errors[0].status().as_u16()])),
                ),
        )
        .build();
    let examples = errors.iter().enumerate().map(|(i, error)| {
        // Several examples may share a code (`malformed_json` has two).
        let name = match errors[..i]
            .iter()
            .filter(|e| e.code() == error.code())
            .count()
        {
            0 => error.code().to_owned(),
            n => format!("{}_{}", error.code(), n + 1),
        };
        let example = ExampleBuilder::new()
            .value(Some(error.example_body()))
            .build();
        (name, example)
    });
    let content = ContentBuilder::new()
        .schema(Some(Schema::AllOf(schema)))
        .examples_from_iter(examples)
        .build();
    let mut response = ResponseBuilder::new()
        .description(describe(&firsts))
        .content("application/problem+json", content);
    if errors.iter().any(|e| e.has_challenge()) {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(
                    "`Bearer realm=\"gatehouse\"`, with `error=\"invalid_token\"` or \
                     `error=\"insufficient_scope\"` when a token was sent.",
                ))
                .build(),
        );
    }
    if errors.iter().any(|e| e.has_retry_after()) {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(Type::Integer)))
                .description(Some("Seconds to wait before trying again."))
                .build(),
        );
    }
    response.build()
}

/// A line for each error: its code and what the server says with it.
fn describe(errors: &[&ApiError]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|error| {
            let body = error.example_body();
            let detail = body["detail"].as_str().unwrap_or_default();
            format!("- `{}`: {detail}", error.code())
        })
        .collect();
    lines.join("\n")
}

// The errors shared by many operations, for `problems!` lists.

/// A JSON body that cannot be read as the operation's object.
pub fn body_errors() -> Vec<ApiError> {
    vec![
        ApiError::Validation(vec![FieldError::required("username")]),
        extract::malformed(),
        extract::empty_body(),
        extract::not_an_object(),
        extract::unknown_field("role".into(), "role"),
        extract::duplicate_field("username".into(), "username"),
        extract::invalid_type("password".into()),
        ApiError::RequestTimeout,
        ApiError::PayloadTooLarge,
        ApiError::UnsupportedMediaType,
    ]
}

/// A missing or bad bearer token.
pub fn bearer_errors() -> Vec<ApiError> {
    vec![
        ApiError::MissingToken,
        ApiError::InvalidToken,
        ApiError::TokenExpired,
    ]
}

/// A token that is fine but is not an admin's.
pub fn admin_errors() -> Vec<ApiError> {
    let mut errors = bearer_errors();
    errors.push(ApiError::InsufficientRole);
    errors
}

/// The per-client limit on credential endpoints, and account lockout.
pub fn rate_limited() -> Vec<ApiError> {
    vec![ApiError::TooManyAttempts {
        retry_after: std::time::Duration::from_secs(60),
    }]
}

/// The database, or the hashing pool, cannot take the request now.
pub fn unavailable() -> Vec<ApiError> {
    vec![ApiError::ServiceUnavailable {
        retry_after: UNAVAILABLE_RETRY_AFTER,
    }]
}

/// Declares a type listing an operation's error responses, for use in
/// `#[utoipa::path(responses(...))]`. Each argument is a collection of
/// [`ApiError`]s: the groups above, or a list of the operation's own.
macro_rules! problems {
    ($(#[$doc:meta])* $name:ident: $($errors:expr),+ $(,)?) => {
        $(#[$doc])*
        pub struct $name;

        impl utoipa::IntoResponses for $name {
            fn responses() -> std::collections::BTreeMap<
                String,
                utoipa::openapi::RefOr<utoipa::openapi::response::Response>,
            > {
                let mut errors: Vec<$crate::error::ApiError> = Vec::new();
                $(errors.extend($errors);)+
                $crate::http::openapi::problem_responses(&errors)
            }
        }
    };
}
pub(crate) use problems;
