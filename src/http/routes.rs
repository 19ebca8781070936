//! A router that keeps a list of what it serves. Axum cannot list a
//! router's routes, yet the OpenAPI document must name exactly those; so
//! every route is added through [`Routes`], which registers it on the axum
//! router and writes it down in the same step. The list then drives the
//! document's aliases and the test that holds the document to the router.

use axum::Router;
use axum::handler::Handler;
use axum::http::Method;
use axum::routing::{MethodFilter, MethodRouter, on};

use crate::app::AppState;

/// One method on one path, as served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    /// For an alias kept for older clients: the canonical path it serves.
    pub alias_of: Option<&'static str>,
}

#[derive(Default)]
pub struct Routes {
    router: Router<AppState>,
    listed: Vec<Route>,
    /// The route added last, so [`Routes::also_at`] can serve it elsewhere.
    last: Option<(Method, &'static str, MethodRouter<AppState>)>,
}

impl Routes {
    pub fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, handler)
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, handler)
    }

    pub fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, path, handler)
    }

    pub fn patch<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.add(Method::PATCH, path, handler)
    }

    pub fn delete<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.add(Method::DELETE, path, handler)
    }

    /// Serves the route added last at further paths too: the aliases older
    /// Flask/FastAPI backends used, which behave exactly like it.
    pub fn also_at(mut self, aliases: &[&'static str]) -> Self {
        let (method, canonical, handler) = self
            .last
            .clone()
            .expect("also_at follows the route it is an alias of");
        for &alias in aliases {
            self.router = self.router.route(alias, handler.clone());
            self.listed.push(Route {
                method: method.clone(),
                path: alias,
                alias_of: Some(canonical),
            });
        }
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.listed.extend(other.listed);
        self.last = None;
        self
    }

    pub fn listed(&self) -> &[Route] {
        &self.listed
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }

    fn add<H: Handler<T, AppState>, T: 'static>(
        mut self,
        method: Method,
        path: &'static str,
        handler: H,
    ) -> Self {
        let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
        let handler = on(filter, handler);
        self.router = self.router.route(path, handler.clone());
        self.listed.push(Route {
            method: method.clone(),
            path,
            alias_of: None,
        });
        self.last = Some((method, path, handler));
        self
    }
}
