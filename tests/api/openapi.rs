//! The OpenAPI document against the router that serves it, and against what
//! the server does; and the docs page.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{Backend, TestApp, assert_problem};
use crate::on_both_databases;

on_both_databases!(
    the_document_lists_exactly_the_routes_the_router_serves,
    every_listed_route_is_really_served,
    aliases_are_deprecated_and_name_their_canonical_route,
    guarded_operations_say_so_and_refuse_anonymous_callers,
    every_error_response_is_a_problem_with_its_codes,
    the_docs_page_and_its_files_come_from_the_server,
);

async fn document(app: &TestApp) -> Value {
    app.public_json("/openapi.json").await
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// Every `(METHOD, path)` the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

/// Every `(METHOD, path)` the router was built with.
fn served() -> BTreeSet<(String, String)> {
    gatehouse::http::routes()
        .listed()
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect()
}

fn operation<'d>(doc: &'d Value, method: &str, path: &str) -> &'d Value {
    &doc["paths"][path][method.to_lowercase()]
}

/// A concrete path for a route template.
fn concrete(path: &str) -> String {
    path.replace("{id}", "0193a5b0-0000-7000-8000-000000000000")
        .replace("{file}", "index.css")
}

async fn the_document_lists_exactly_the_routes_the_router_serves(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    let documented = documented(&doc);
    let served = served();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not documented: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "documented but not served: {unserved:?}"
    );
    // The contract's routes, aliases included, are all there.
    for (method, path) in [
        ("POST", "/auth/register"),
        ("POST", "/register"),
        ("POST", "/signup"),
        ("POST", "/api/auth/register"),
        ("POST", "/auth/login"),
        ("POST", "/login"),
        ("POST", "/api/auth/login"),
        ("POST", "/auth/refresh"),
        ("POST", "/auth/logout"),
        ("GET", "/protected"),
        ("GET", "/api/auth/protected"),
        ("GET", "/me"),
        ("PATCH", "/me"),
        ("PATCH", "/user/update"),
        ("PUT", "/me/password"),
        ("DELETE", "/me"),
        ("GET", "/me/sessions"),
        ("DELETE", "/me/sessions/{id}"),
        ("GET", "/admin/users"),
        ("GET", "/admin/users/{id}"),
        ("PATCH", "/admin/users/{id}"),
        ("DELETE", "/admin/users/{id}"),
        ("GET", "/admin/audit"),
        ("GET", "/health/live"),
        ("GET", "/health/ready"),
        ("GET", "/metrics"),
        ("GET", "/.well-known/jwks.json"),
        ("GET", "/openapi.json"),
        ("GET", "/docs"),
    ] {
        assert!(
            documented.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} is missing"
        );
    }
}

/// The route list is what the router was built from; this checks the live
/// router against it. An unsupported method on a served path is 405 with
/// an `Allow` header naming the path's methods, while an unknown path is
/// 404: so each route answers as routed, with exactly the listed methods.
async fn every_listed_route_is_really_served(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut by_path: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for (method, path) in served() {
        by_path.entry(path).or_default().insert(method);
    }
    for (path, methods) in by_path {
        let url = app.url(&concrete(&path));
        let response = app
            .client
            .request(Method::TRACE, &url)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "TRACE {path}"
        );
        let allow: BTreeSet<String> = response.headers()["allow"]
            .to_str()
            .unwrap()
            .split(',')
            .map(|m| m.trim().to_owned())
            .filter(|m| m != "HEAD")
            .collect();
        assert_eq!(allow, methods, "methods served on {path}");
    }
    let response = app
        .client
        .request(Method::TRACE, app.url("/not/a/route"))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

async fn aliases_are_deprecated_and_name_their_canonical_route(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    let routes = gatehouse::http::routes();
    let aliases: Vec<_> = routes
        .listed()
        .iter()
        .filter(|r| r.alias_of.is_some())
        .collect();
    assert_eq!(aliases.len(), 7, "the contract names seven aliases");
    for route in routes.listed() {
        let method = route.method.as_str();
        let operation = operation(&doc, method, route.path);
        match route.alias_of {
            Some(canonical) => {
                assert_eq!(operation["deprecated"], true, "{method} {}", route.path);
                assert_eq!(operation["x-alias-of"], format!("{method} {canonical}"));
                let original = self::operation(&doc, method, canonical);
                assert!(
                    original["deprecated"].is_null(),
                    "{canonical} is not deprecated"
                );
                // Same request and responses as the route it stands for.
                assert_eq!(operation["requestBody"], original["requestBody"]);
                assert_eq!(operation["responses"], original["responses"]);
                assert_ne!(operation["operationId"], original["operationId"]);
            }
            None => assert!(operation["deprecated"].is_null(), "{method} {}", route.path),
        }
    }
}

/// What the document says about credentials is what the server does: an
/// operation that requires a bearer token refuses a call without one with
/// 401 `missing_token`, documented; one that does not, never does.
async fn guarded_operations_say_so_and_refuse_anonymous_callers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "An access token from `POST /auth/login` or `POST /auth/refresh`."})
    );
    let mut guarded = 0;
    for (method, path) in documented(&doc) {
        let operation = operation(&doc, &method, &path);
        let security = operation["security"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let required = !security.is_empty() && !security.contains(&json!({}));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let body = operation.get("requestBody").map(|_| json!({}));
        let response = app
            .request(method.clone(), &concrete(&path), None, body)
            .await;
        if required {
            guarded += 1;
            assert!(security.contains(&json!({"bearer": []})), "{method} {path}");
            assert!(
                operation["responses"]["401"].is_object(),
                "{method} {path} documents 401"
            );
            assert_problem(response, StatusCode::UNAUTHORIZED, "missing_token").await;
        } else {
            assert_ne!(
                response.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path}"
            );
        }
    }
    assert_eq!(
        guarded, 15,
        "the routes marked 🔒 in the contract, and the two aliases"
    );
}

async fn every_error_response_is_a_problem_with_its_codes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    for (method, path) in documented(&doc) {
        let responses = operation(&doc, &method, &path)["responses"]
            .as_object()
            .unwrap();
        for (status, response) in responses {
            let status: u16 = status.parse().expect("numeric status");
            if status < 400 || path == "/health/ready" {
                continue;
            }
            let content = &response["content"]["application/problem+json"];
            let codes = content["schema"]["allOf"][1]["properties"]["code"]["enum"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} {status} lists its codes"));
            assert!(!codes.is_empty());
            for code in codes {
                let examples = content["examples"].as_object().unwrap();
                assert!(
                    examples
                        .values()
                        .any(|e| e["value"]["code"] == *code && e["value"]["status"] == status),
                    "{method} {path} {status} has an example of {code}"
                );
            }
        }
    }
    // A sample of the contract's codes, where it puts them.
    for (method, path, status, code) in [
        ("POST", "/auth/register", "409", "username_taken"),
        ("POST", "/auth/register", "409", "email_taken"),
        ("POST", "/auth/register", "403", "role_forbidden"),
        ("POST", "/auth/login", "401", "invalid_credentials"),
        ("POST", "/auth/login", "403", "account_disabled"),
        ("POST", "/auth/login", "429", "too_many_attempts"),
        ("POST", "/auth/refresh", "401", "invalid_refresh_token"),
        ("GET", "/me", "401", "token_expired"),
        ("GET", "/admin/users", "403", "insufficient_role"),
        ("GET", "/admin/users", "400", "invalid_cursor"),
        ("DELETE", "/me", "409", "last_admin"),
        ("PATCH", "/admin/users/{id}", "404", "not_found"),
        ("GET", "/me", "503", "service_unavailable"),
        ("PATCH", "/me", "415", "unsupported_media_type"),
        ("PATCH", "/me", "413", "payload_too_large"),
    ] {
        let codes = &operation(&doc, method, path)["responses"][status]["content"]["application/problem+json"]
            ["schema"]["allOf"][1]["properties"]["code"]["enum"];
        assert!(
            codes.as_array().is_some_and(|c| c.contains(&json!(code))),
            "{method} {path} {status} lists {code}: {codes}"
        );
    }
}

/// `/docs` is served from the binary: its page loads only files from this
/// server, and its configuration points at this server's document.
async fn the_docs_page_and_its_files_come_from_the_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.starts_with("default-src 'self';") && csp.contains("frame-ancestors 'none'"));
    let page = response.text().await.unwrap();
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "{page}"
    );
    // Every file the page loads is one of this server's, by absolute path.
    let files = page
        .split('"')
        .filter(|s| [".css", ".js", ".png"].iter().any(|e| s.ends_with(e)));
    for file in files {
        assert!(file.starts_with("/docs/"), "{file} in {page}");
    }
    for file in [
        "swagger-ui.css",
        "swagger-ui-bundle.js",
        "swagger-ui-standalone-preset.js",
    ] {
        assert!(page.contains(file), "the page loads {file}");
        let response = app
            .client
            .get(app.url(&format!("/docs/{file}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{file}");
    }
    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "{initializer}"
    );
    assert!(
        initializer.contains(r#""validatorUrl": "none""#),
        "{initializer}"
    );
    for missing in ["/docs/nothing.js", "/docs/..%2fCargo.toml", "/docs/%FF"] {
        let response = app.client.get(app.url(missing)).send().await.unwrap();
        assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    }
    // Every HTML page carries the policy, on whichever path it is served,
    // so none can be framed; other files need none.
    for html in ["/docs/index.html", "/docs/oauth2-redirect.html"] {
        let response = app.client.get(app.url(html)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{html}");
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{html}"
        );
        assert_eq!(
            response.headers()["content-security-policy"],
            csp.as_str(),
            "{html}"
        );
    }
    let script = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert!(!script.headers().contains_key("content-security-policy"));
}

/// The Postman collection at the top of the repository calls every route
/// (aliases included), and nothing that is not one.
#[test]
fn the_postman_collection_calls_every_route() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/postman_collection.json");
    let collection: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(
        collection["info"]["schema"],
        "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
    );
    let mut called = BTreeSet::new();
    collect_requests(&collection["item"], &mut called);
    let routes = served();
    let matches = |(method, path): &(String, String),
                   (route_method, template): &(String, String)| {
        let segments: Vec<&str> = path.split('/').collect();
        let pattern: Vec<&str> = template.split('/').collect();
        method == route_method
            && segments.len() == pattern.len()
            && segments
                .iter()
                .zip(&pattern)
                .all(|(s, p)| s == p || (p.starts_with('{') && !s.is_empty()))
    };
    for route in &routes {
        assert!(
            called.iter().any(|c| matches(c, route)),
            "the collection never calls {} {}",
            route.0,
            route.1
        );
    }
    for call in &called {
        assert!(
            routes.iter().any(|r| matches(call, r)),
            "the collection calls {} {}, which is no route",
            call.0,
            call.1
        );
    }
}

/// Every request's method and path (variables standing for ids are left
/// in; they match a `{…}` segment).
fn collect_requests(items: &Value, into: &mut BTreeSet<(String, String)>) {
    for item in items.as_array().expect("items") {
        if item.get("item").is_some() {
            collect_requests(&item["item"], into);
            continue;
        }
        let request = &item["request"];
        let raw = request["url"]["raw"].as_str().expect("url.raw");
        let path = raw
            .strip_prefix("{{baseUrl}}")
            .unwrap_or_else(|| panic!("{raw} starts with {{{{baseUrl}}}}"));
        let path = path.split('?').next().unwrap().to_owned();
        // Postman and newman send the structured URL, not `raw`: both must
        // name the same path.
        let segments: Vec<&str> = request["url"]["path"]
            .as_array()
            .expect("url.path")
            .iter()
            .map(|s| s.as_str().expect("a path segment"))
            .collect();
        assert_eq!(format!("/{}", segments.join("/")), path, "{raw}");
        into.insert((request["method"].as_str().unwrap().to_owned(), path));
    }
}
