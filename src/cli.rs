//! The command line: `serve` (the default), `migrate`, `user create`,
//! `keys rotate`, `import-users` and `health`. Every command but `health`, which only asks
//! a running server, applies pending migrations first.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::accounts::{self, Granting, Registration};
use crate::audit::{self, Event, Kind};
use crate::auth::keys;
use crate::client::ClientInfo;
use crate::config::Config;
use crate::error::ApiError;
use crate::import;
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
    /// Import accounts with their password hashes from an older backend's
    /// table or a file. Exits 0 when every row was imported or already
    /// present, 1 when some rows were rejected (each is listed), 2 when the
    /// source could not be read or the import could not run.
    ImportUsers {
        /// mysql://…/DATABASE, postgres://…/DATABASE, sqlite://FILE, FILE.csv
        /// (with a header row) or FILE.jsonl.
        source: String,
        /// The table to read from a database source (default: users).
        #[arg(long)]
        table: Option<String>,
        /// Read FIELD from COLUMN (`FIELD=` reads it from no column). FIELD is
        /// username, email, password_hash, first_name, last_name, name, role
        /// or created_at. Repeatable.
        #[arg(long = "map", value_name = "FIELD=COLUMN")]
        map: Vec<import::ColumnChoice>,
        /// Check every row and print the report without writing anything.
        #[arg(long)]
        dry_run: bool,
    },
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
    let command = cli.command.unwrap_or(Command::Serve);
    // An import's exit status tells rejected rows (1) from an import that
    // could not run (2).
    let failure = match command {
        Command::ImportUsers { .. } => ExitCode::from(IMPORT_FAILED),
        _ => ExitCode::FAILURE,
    };
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(failure, format_args!("configuration error: {e}")),
    };
    if let Err(e) = crate::telemetry::init(config.log_format, &config.log_filter) {
        return fail(failure, format_args!("configuration error: {e}"));
    }
    let outcome = match command {
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
        Command::ImportUsers {
            source,
            table,
            map,
            dry_run,
        } => return import_users(config, &source, table.as_deref(), map, dry_run).await,
        Command::Health => crate::healthcheck::probe(config.bind_addr).await,
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(failure, format_args!("{message}")),
    }
}

/// The exit status of an import that could not run.
const IMPORT_FAILED: u8 = 2;
/// The exit status of an import that rejected rows.
const IMPORT_REJECTED_ROWS: u8 = 1;

fn fail(status: ExitCode, message: std::fmt::Arguments) -> ExitCode {
    eprintln!("gatehouse: {message}");
    status
}

async fn import_users(
    config: Config,
    source: &str,
    table: Option<&str>,
    choices: Vec<import::ColumnChoice>,
    dry_run: bool,
) -> ExitCode {
    let failed = |message: &dyn std::fmt::Display| {
        // Messages may quote column names from the source: printable only.
        fail(
            ExitCode::from(IMPORT_FAILED),
            format_args!("{}", import::printable(&message.to_string())),
        )
    };
    // The source is checked before the server's database is opened, so a
    // mistyped SOURCE costs nothing.
    let source = match import::Source::parse(source, table) {
        Ok(source) => source,
        Err(e) => return failed(&e),
    };
    let source_kind = source.kind();
    let destination = config.database_url.describe();
    let options = import::Options {
        source,
        choices,
        dry_run,
        require_email: config.require_email,
    };
    if dry_run {
        // A dry run needs only the accounts, not keys or secrets.
        let store = match server::open_store(&config).await {
            Ok(store) => store,
            Err(e) => return failed(&e),
        };
        return match import::run(&store, options).await {
            Ok(report) => print_report(&report, &destination),
            Err(e) => failed(&e),
        };
    }
    let state = match server::build(config).await {
        Ok(state) => state,
        Err(e) => return failed(&e),
    };
    let outcome = import::run(&state.store, options).await;
    // A run that stopped part way imported rows too: both are audited.
    let report: &import::Report = match &outcome {
        Ok(report) => report,
        Err(import::ImportError::Stopped { report, .. }) => report,
        Err(e) => return failed(e),
    };
    let event =
        Event::new(Kind::UsersImported).detail(report.audit_detail(source_kind, outcome.is_ok()));
    let audited = audit::record(&state, event, &ClientInfo::default()).await;
    match (outcome, audited) {
        (Err(stopped), _) => {
            // What was done before the stop, rejections included.
            if let import::ImportError::Stopped { report, .. } = &stopped {
                print_report(report, &destination);
            }
            failed(&stopped)
        }
        (Ok(report), Err(e)) => failed(&format_args!(
            "{} rows were imported, but the users_imported audit event was not written: {e}",
            report.imported
        )),
        (Ok(report), Ok(())) => print_report(&report, &destination),
    }
}

/// Prints the report and gives the import's exit status: 0 when every row
/// was imported or already present, 1 when some were rejected.
fn print_report(report: &import::Report, destination: &str) -> ExitCode {
    use std::io::Write as _;
    // A closed stdout (`| head`) does not change what was done.
    let _ = write!(std::io::stdout(), "into: the {destination}\n{report}");
    if report.rejected.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(IMPORT_REJECTED_ROWS)
    }
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
