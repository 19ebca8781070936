//! The integration suite: one binary, every scenario on SQLite and MySQL.

mod harness;

mod admin;
mod audit;
mod cli;
mod connections;
mod forms;
mod import;
mod input;
mod legacy_hashes;
mod lockout;
mod login;
mod me;
mod migrations;
mod openapi;
mod operations;
mod protection;
mod register;
mod seeds;
mod session_cache;
mod sessions;
mod signing_keys;
mod tokens;
