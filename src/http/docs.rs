//! Swagger UI, to read and try the OpenAPI document at `/docs`. The UI's
//! files are compiled into the binary, so the page works with no
//! network beyond this server: no CDN, no online validator.

use std::sync::{Arc, OnceLock};

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_swagger_ui::Config;

use super::problem_docs::problems;
use super::routes::Routes;
use crate::error::ApiError;

/// Where the OpenAPI document is served (see [`super::openapi`]).
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// The Content-Security-Policy of every HTML response (see
/// [`super::html_policy`]): only this server's files; Swagger UI styles
/// itself inline and draws icons from data: URLs. No other site may frame
/// a page.
pub const HTML_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

pub fn routes() -> Routes {
    Routes::default()
        .get("/docs", page)
        .get("/docs/", to_page)
        .get("/docs/{file}", asset)
}

/// Interactive documentation
///
/// Swagger UI for this document. "Authorize" takes an access token, which
/// "Try it out" then sends as `Authorization: Bearer`.
#[utoipa::path(
    get,
    path = "/docs",
    tag = "operations",
    operation_id = "docs",
    responses((status = 200, description = "The page.", content_type = "text/html", body = String)),
)]
async fn page() -> Response {
    static PAGE: OnceLock<String> = OnceLock::new();
    let page = PAGE.get_or_init(|| {
        let index = swagger_file("index.html").expect("Swagger UI has an index page");
        // The page is served at /docs, not /docs/, so its relative links to
        // its files are made absolute. (A <base> would do it too, but would
        // also move Swagger UI's deep links to /docs/#….)
        String::from_utf8_lossy(&index.bytes)
            .replace("=\"./", "=\"/docs/")
            .replace("href=\"index.css\"", "href=\"/docs/index.css\"")
            .replacen(
                "<title>Swagger UI</title>",
                "<title>gatehouse API</title>",
                1,
            )
    });
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.as_str(),
    )
        .into_response()
}

/// The docs page, with a trailing slash
///
/// Redirects to `/docs`, so `/docs/` in a bookmark or typed by hand works.
#[utoipa::path(
    get,
    path = "/docs/",
    tag = "operations",
    operation_id = "docs_with_slash",
    responses((status = 308, description = "To `/docs`.",
               headers(("Location" = String, description = "`/docs`")))),
)]
async fn to_page() -> Redirect {
    Redirect::permanent("/docs")
}

problems!(AssetProblems: [ApiError::NotFound]);

/// A file of the documentation page
///
/// The scripts, styles and icons `/docs` loads.
#[utoipa::path(
    get,
    path = "/docs/{file}",
    tag = "operations",
    operation_id = "docs_asset",
    params(("file" = String, Path, example = "swagger-ui.css", description = "A file of Swagger UI.")),
    responses(
        (status = 200, description = "The file.", content(
            ("text/css"), ("text/javascript"), ("text/html"), ("image/png"))),
        AssetProblems,
    ),
)]
async fn asset(file: Result<Path<String>, PathRejection>) -> Result<Response, ApiError> {
    // A name that is not even UTF-8 names no file either.
    let Ok(Path(file)) = file else {
        return Err(ApiError::NotFound);
    };
    let found = swagger_file(&file).ok_or(ApiError::NotFound)?;
    Ok((
        [
            (header::CONTENT_TYPE, found.content_type),
            // The files change only with the binary; an hour of caching
            // spares reloading 1.5 MB of script on every visit.
            (header::CACHE_CONTROL, "public, max-age=3600".to_owned()),
        ],
        axum::body::Body::from(found.bytes),
    )
        .into_response())
}

fn swagger_file(file: &str) -> Option<utoipa_swagger_ui::SwaggerFile<'static>> {
    utoipa_swagger_ui::serve(file, config()).ok().flatten()
}

fn config() -> Arc<Config<'static>> {
    static CONFIG: OnceLock<Arc<Config<'static>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            Arc::new(
                Config::new([DOCUMENT_PATH])
                    // No top bar, whose box would load any other document.
                    .use_base_layout()
                    // The default sends the document to validator.swagger.io.
                    .validator_url("none")
                    // Tokens typed into "Authorize" stay in the page's memory,
                    // not in the browser's storage.
                    .persist_authorization(false)
                    .try_it_out_enabled(true)
                    .display_request_duration(true),
            )
        })
        .clone()
}
