//! gatehouse: a user-authentication API server. The binary is a thin shell
//! around this library so the integration tests drive exactly what ships.

pub mod accounts;
pub mod app;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod domain;
pub mod error;
pub mod healthcheck;
pub mod http;
pub mod import;
pub mod lockout;
pub mod maintenance;
pub mod rate_limit;
pub mod server;
pub mod session_cache;
pub mod sessions;
pub mod store;
pub mod telemetry;
