//! The error responses of each operation in the OpenAPI document, built
//! from [`ApiError`] itself, so each status, `code` and example body shown
//! is what the server really sends. Handlers name theirs with
//! [`problems!`].

use std::collections::BTreeMap;

use utoipa::openapi::example::ExampleBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{AllOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

use super::extract;
use crate::domain::FieldError;
use crate::error::{ApiError, UNAVAILABLE_RETRY_AFTER};

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

/// A credential route's body (JSON or a form) that cannot be read.
pub fn credential_body_errors() -> Vec<ApiError> {
    let mut errors = body_errors();
    errors.push(extract::malformed_form());
    errors
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
                $crate::http::problem_docs::problem_responses(&errors)
            }
        }
    };
}
pub(crate) use problems;
