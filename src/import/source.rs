//! Where `import-users` reads accounts from: a table in a MySQL, SQLite or
//! PostgreSQL database, a CSV file with a header row, or a JSON Lines file.
//! Whatever the source, it is read whole, as text, before anything is
//! written: a source that cannot be read imports nothing.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

/// How long a database source may take to answer the connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The table read when `--table` is not given.
pub const DEFAULT_TABLE: &str = "users";

/// Why a source could not be read (exit status 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

fn unreadable(what: impl std::fmt::Display) -> SourceError {
    SourceError(what.to_string())
}

/// A source named on the command line.
#[derive(Debug, Clone)]
pub enum Source {
    MySql {
        options: MySqlConnectOptions,
        table: String,
    },
    Postgres {
        options: PgConnectOptions,
        table: String,
    },
    Sqlite {
        options: SqliteConnectOptions,
        table: String,
    },
    Csv(PathBuf),
    JsonLines(PathBuf),
}

/// A source read whole: its column names, and every row's values in the
/// same order (`None` for SQL NULL, a missing JSON key or an empty CSV cell).
#[derive(Debug, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Source {
    /// Reads `SOURCE` and `--table` as the command line gave them.
    pub fn parse(raw: &str, table: Option<&str>) -> Result<Self, SourceError> {
        let table_name = || table.unwrap_or(DEFAULT_TABLE).to_owned();
        let bad_url = |kind: &str| unreadable(format!("SOURCE is not a valid {kind} URL"));
        if raw.starts_with("mysql://") || raw.starts_with("mariadb://") {
            let url = raw.replacen("mariadb://", "mysql://", 1);
            let options = MySqlConnectOptions::from_str(&url).map_err(|_| bad_url("MySQL"))?;
            if options.get_database().is_none() {
                return Err(unreadable(
                    "SOURCE names no database: mysql://user:password@host:port/DATABASE",
                ));
            }
            return Ok(Source::MySql {
                options,
                table: table_name(),
            });
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(raw).map_err(|_| bad_url("PostgreSQL"))?;
            return Ok(Source::Postgres {
                options,
                table: table_name(),
            });
        }
        if raw.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(raw)
                .map_err(|_| bad_url("SQLite"))?
                // An import reads the old database and never changes it.
                .read_only(true)
                .create_if_missing(false);
            if !options.get_filename().is_file() {
                return Err(unreadable(format!(
                    "no SQLite file at {}",
                    options.get_filename().display()
                )));
            }
            return Ok(Source::Sqlite {
                options,
                table: table_name(),
            });
        }
        let path = PathBuf::from(raw);
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let file = match extension.as_deref() {
            Some("csv") => Source::Csv(path),
            Some("jsonl" | "ndjson") => Source::JsonLines(path),
            _ => {
                return Err(unreadable(
                    "SOURCE must be a mysql://, postgres:// or sqlite:// URL, \
                     or a file ending in .csv or .jsonl",
                ));
            }
        };
        if table.is_some() {
            return Err(unreadable(
                "--table names a table in a database; a file source has none",
            ));
        }
        Ok(file)
    }

    /// Names the source for the report, without any password.
    pub fn describe(&self) -> String {
        match self {
            Source::MySql { options, table } => format!(
                "table {table} of the MySQL database {} at {}:{}",
                options.get_database().unwrap_or_default(),
                options.get_host(),
                options.get_port()
            ),
            Source::Postgres { options, table } => format!(
                "table {table} of the PostgreSQL database {} at {}:{}",
                options.get_database().unwrap_or("(default)"),
                options.get_host(),
                options.get_port()
            ),
            Source::Sqlite { options, table } => format!(
                "table {table} of the SQLite file {}",
                options.get_filename().display()
            ),
            Source::Csv(path) => format!("CSV file {}", path.display()),
            Source::JsonLines(path) => format!("JSON Lines file {}", path.display()),
        }
    }

    /// The kind of source, for the audit event (which never holds a URL).
    pub fn kind(&self) -> &'static str {
        match self {
            Source::MySql { .. } => "mysql",
            Source::Postgres { .. } => "postgres",
            Source::Sqlite { .. } => "sqlite",
            Source::Csv(_) => "csv",
            Source::JsonLines(_) => "jsonl",
        }
    }

    pub async fn read(&self) -> Result<Table, SourceError> {
        match self {
            Source::MySql { options, table } => read_mysql(options, table).await,
            Source::Postgres { options, table } => read_postgres(options, table).await,
            Source::Sqlite { options, table } => read_sqlite(options, table).await,
            Source::Csv(path) => read_csv(path),
            Source::JsonLines(path) => read_json_lines(path),
        }
    }
}

async fn connect<C, F>(connecting: F) -> Result<C, SourceError>
where
    F: std::future::Future<Output = Result<C, sqlx::Error>>,
{
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(unreadable(format!("cannot connect to the source: {e}"))),
        Err(_) => Err(unreadable(format!(
            "the source did not answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
    }
}

/// The query that reads every column of `table` as text, in the order of
/// its `id` column when it has one (so "the first row wins" means the
/// oldest account), quoting each name for the dialect.
fn select_as_text(
    columns: &[String],
    table: &str,
    quote: fn(&str) -> String,
    as_text: fn(String) -> String,
) -> sqlx::AssertSqlSafe<String> {
    let values: Vec<String> = columns.iter().map(|c| as_text(quote(c))).collect();
    let order = columns
        .iter()
        .find(|c| c.eq_ignore_ascii_case("id"))
        .map(|id| format!(" ORDER BY {}", quote(id)))
        .unwrap_or_default();
    // Safe: the names are the ones the database's catalog listed for a
    // table of that name, each quoted for its dialect.
    sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM {}{order}",
        values.join(", "),
        quote(table)
    ))
}

/// MySQL quotes names with backticks, doubled inside.
fn backticked(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// SQLite and PostgreSQL quote names with double quotes, doubled inside:
/// a PostgreSQL table named `user` is that table, not the keyword.
fn double_quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn no_table(table: &str) -> SourceError {
    unreadable(format!(
        "the source has no table {table} (name another with --table)"
    ))
}

fn query_failed(e: sqlx::Error) -> SourceError {
    unreadable(format!("cannot read the source table: {e}"))
}

async fn read_mysql(options: &MySqlConnectOptions, table: &str) -> Result<Table, SourceError> {
    let mut conn: MySqlConnection = connect(MySqlConnection::connect_with(options)).await?;
    // TIMESTAMP columns are read in UTC, as every other date is taken to be.
    sqlx::query("SET SESSION time_zone = '+00:00'")
        .execute(&mut conn)
        .await
        .map_err(query_failed)?;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(&mut conn)
    .await
    .map_err(query_failed)?;
    if columns.is_empty() {
        return Err(no_table(table));
    }
    let query = select_as_text(&columns, table, backticked, |c| {
        format!("CAST({c} AS CHAR)")
    });
    let rows = sqlx::query(query)
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed)?;
    let _ = conn.close().await;
    texts(columns, &rows)
}

async fn read_postgres(options: &PgConnectOptions, table: &str) -> Result<Table, SourceError> {
    let options = options.clone().options([("TimeZone", "UTC")]);
    let mut conn: PgConnection = connect(PgConnection::connect_with(&options)).await?;
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut conn)
    .await
    .map_err(query_failed)?;
    if columns.is_empty() {
        return Err(no_table(table));
    }
    let query = select_as_text(&columns, table, double_quoted, |c| format!("{c}::text"));
    let rows = sqlx::query(query)
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed)?;
    let _ = conn.close().await;
    texts(columns, &rows)
}

async fn read_sqlite(options: &SqliteConnectOptions, table: &str) -> Result<Table, SourceError> {
    let mut conn: SqliteConnection = connect(SqliteConnection::connect_with(options)).await?;
    let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
        .bind(table)
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed)?;
    if columns.is_empty() {
        return Err(no_table(table));
    }
    let query = select_as_text(&columns, table, double_quoted, |c| {
        format!("CAST({c} AS TEXT)")
    });
    let rows = sqlx::query(query)
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed)?;
    let _ = conn.close().await;
    texts(columns, &rows)
}

/// Decodes rows whose every column was cast to text.
fn texts<R>(columns: Vec<String>, rows: &[R]) -> Result<Table, SourceError>
where
    R: sqlx::Row,
    for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    usize: sqlx::ColumnIndex<R>,
{
    let rows = rows
        .iter()
        .enumerate()
        .map(|(n, row)| {
            (0..columns.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i).map_err(|e| {
                        unreadable(format!(
                            "row {}, column {}: not readable as text: {e}",
                            n + 1,
                            columns[i]
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Table { columns, rows })
}

fn read_csv(path: &std::path::Path) -> Result<Table, SourceError> {
    let cannot = |e: csv::Error| unreadable(format!("cannot read {}: {e}", path.display()));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(cannot)?;
    let columns: Vec<String> = reader
        .headers()
        .map_err(cannot)?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(cannot)?;
        // CSV has no NULL: an empty cell is a value not given.
        rows.push(
            record
                .iter()
                .map(|cell| (!cell.is_empty()).then(|| cell.to_owned()))
                .collect(),
        );
    }
    Ok(Table { columns, rows })
}

fn read_json_lines(path: &std::path::Path) -> Result<Table, SourceError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| unreadable(format!("cannot read {}: {e}", path.display())))?;
    let mut columns: Vec<String> = Vec::new();
    let mut objects = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), n + 1);
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| unreadable(format!("{}: not JSON: {e}", at())))?;
        let serde_json::Value::Object(object) = value else {
            return Err(unreadable(format!("{}: not a JSON object", at())));
        };
        for key in object.keys() {
            if !columns.contains(key) {
                columns.push(key.clone());
            }
        }
        objects.push((at(), object));
    }
    let rows = objects
        .into_iter()
        .map(|(at, object)| {
            columns
                .iter()
                .map(|column| match object.get(column) {
                    None | Some(serde_json::Value::Null) => Ok(None),
                    Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        Ok(Some(v.to_string()))
                    }
                    Some(_) => Err(unreadable(format!(
                        "{at}: {column} is an array or object, not a value"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Table { columns, rows })
}
