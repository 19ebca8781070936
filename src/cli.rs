//! The command line: `serve` (the default), `migrate`, `user create`,
//! `keys rotate` and `health`. Every command but `health`, which only asks
//! a running server, applies pending migrations first.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::accounts::{self, Granting, Registration};
use crate::audit::{self, Event, Kind};
use crate::auth::keys;
use crate::client::ClientInfo;
use crate::config::Config;
use crate::error::ApiError;
use crate::server;

#[derive(Debug, Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "User-authentication API server",
    after_help = "Configuration comes from environment variables (and a .env file in the \
                  working directory): DATABASE_URL, BIND_ADDR, JWT_SECRET and the others \
                  listed in .env.example and docs/configuration.md. Every command uses the same \
                  configuration, so run `user create` with the server's DATABASE_URL."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Exit 0 if the server at BIND_ADDR is ready (GET /health/ready), 1 if
    /// not: a health check for containers. Does not open the database.
    Health,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account. The password is read from GATEHOUSE_PASSWORD, or
    /// asked for at the terminal.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// `user` or `admin`.
        #[arg(long, default_value = "user")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Add a new signing key: published at once, signing on every instance
    /// KEY_PUBLISH_LEAD_SECONDS later. The old key keeps verifying until the
    /// tokens it signed have expired.
    Rotate {
        /// For a key that leaked: sign with the new key now and drop the old
        /// ones now (their tokens stop working within 5 s everywhere).
        #[arg(long)]
        now: bool,
    },
}

pub async fn run() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(format_args!("configuration error: {e}")),
    };
    if let Err(e) = crate::telemetry::init(config.log_format, &config.log_filter) {
        return fail(format_args!("configuration error: {e}"));
    }
    let outcome = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config).await,
        Command::Migrate => server::open_store(&config)
            .await
            .map(|_| {
                println!(
                    "migrations applied to the {}",
                    config.database_url.describe()
                )
            })
            .map_err(|e| e.to_string()),
        Command::User(UserCommand::Create {
            username,
            email,
            name,
            role,
        }) => create_user(config, username, email, name, role).await,
        Command::Keys(KeysCommand::Rotate { now }) => rotate_keys(config, now).await,
        Command::Health => crate::healthcheck::probe(config.bind_addr).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(format_args!("{message}")),
    }
}

fn fail(message: std::fmt::Arguments) -> ExitCode {
    eprintln!("gatehouse: {message}");
    ExitCode::FAILURE
}

async fn serve(config: Config) -> Result<(), String> {
    let listener = server::listen(&config).await.map_err(|e| e.to_string())?;
    let state = server::build(config).await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let database = state.config.database_url.describe();
    tracing::info!(%addr, %database, "gatehouse listening");
    server::serve(state, listener, server::shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

async fn create_user(
    config: Config,
    username: String,
    email: Option<String>,
    name: Option<String>,
    role: String,
) -> Result<(), String> {
    let password = match std::env::var("GATEHOUSE_PASSWORD") {
        Ok(password) if !password.is_empty() => password,
        _ => prompt_password()?,
    };
    let state = server::build(config).await.map_err(|e| e.to_string())?;
    let registration = Registration {
        username: Some(username),
        password: Some(password),
        email,
        name,
        role: Some(role),
        ..Registration::default()
    };
    match accounts::register(
        &state,
        registration,
        Granting::Operator,
        &ClientInfo::default(),
    )
    .await
    {
        Ok(user) => {
            println!(
                "created {} ({}) with role {} in the {}",
                user.handle(),
                user.id,
                user.role.as_str(),
                state.config.database_url.describe()
            );
            Ok(())
        }
        Err(ApiError::Validation(errors)) => Err(errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ")),
        Err(e @ (ApiError::UsernameTaken | ApiError::EmailTaken)) => Err(e.to_string()),
        Err(e) => Err(format!("could not create the user: {e}")),
    }
}

fn prompt_password() -> Result<String, String> {
    let first = rpassword::prompt_password("Password: ")
        .map_err(|e| format!("cannot read a password (set GATEHOUSE_PASSWORD instead): {e}"))?;
    let second = rpassword::prompt_password("Repeat password: ")
        .map_err(|e| format!("cannot read a password: {e}"))?;
    if first != second {
        return Err("the passwords do not match".into());
    }
    Ok(first)
}

async fn rotate_keys(config: Config, at_once: bool) -> Result<(), String> {
    let state = server::build(config).await.map_err(|e| e.to_string())?;
    let rotation = keys::rotate(&state.config, &state.store, at_once)
        .await
        .map_err(|e| e.to_string())?;
    let event = Event::new(Kind::KeyRotated).detail(serde_json::json!({
        "kid": rotation.kid,
        "signs_from": rotation.signs_from,
        "dropped_older": rotation.dropped_older,
    }));
    audit::record(&state, event, &ClientInfo::default())
        .await
        .map_err(|e| e.to_string())?;
    let place = state.config.database_url.describe();
    let kid = &rotation.kid;
    if rotation.dropped_older {
        println!(
            "new signing key {kid} in the {place} signs now; the previous keys are dropped, \
             and their tokens stop working on every instance within 5 s"
        );
    } else {
        let lead = state.config.key_publish_lead.as_secs();
        println!(
            "new signing key {kid} in the {place} is published now and signs in {lead} s \
             (at {}); the previous key verifies until its tokens expire",
            format_unix(rotation.signs_from)
        );
    }
    Ok(())
}

fn format_unix(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}
