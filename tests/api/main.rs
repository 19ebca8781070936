//! The integration suite: one binary, every scenario on SQLite and MySQL.

mod harness;

mod admin;
mod cli;
mod input;
mod login;
mod me;
mod operations;
mod register;
mod sessions;
mod signing_keys;
mod tokens;
