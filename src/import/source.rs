//! Where `import-users` reads accounts from: a table in a MySQL, SQLite or
//! PostgreSQL database, a CSV file with a header row, or a JSON Lines file.
//! Whatever the source, the columns the fields are read from are read
//! whole, as text, before anything is written: a source that cannot be
//! read imports nothing, and a value that is not text rejects only its row.

use std::collections::HashSet;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use sqlx::Connection as _;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

use super::fields::{Cell, ColumnChoice, Mapping};

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

/// A source named on the command line. Not `Debug`: its options hold the
/// database password.
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

/// A source read whole: its column names, the columns the fields are read
/// from, and every row's values in column order (only the mapped columns'
/// values are read; the others are [`Cell::Missing`]).
#[derive(Debug)]
pub struct Table {
    pub columns: Vec<String>,
    pub mapping: Mapping,
    pub rows: Vec<Vec<Cell>>,
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

    /// Reads the source: its columns, the mapping `choices` settle on
    /// them, and the mapped columns of every row.
    pub async fn read(&self, choices: &[ColumnChoice]) -> Result<Table, SourceError> {
        match self {
            Source::MySql { options, table } => read_mysql(options, table, choices).await,
            Source::Postgres { options, table } => read_postgres(options, table, choices).await,
            Source::Sqlite { options, table } => read_sqlite(options, table, choices).await,
            Source::Csv(path) => read_csv(path, choices),
            Source::JsonLines(path) => read_json_lines(path, choices),
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

/// A column as the database's catalog lists it: its name, and whether it
/// holds bytes (read as they are, and held to UTF-8) rather than values
/// cast to text.
struct Described {
    name: String,
    binary: bool,
}

/// What to read from a table: the fields' mapping over its columns, the
/// columns some field is read from, and the query that reads them.
struct Plan {
    columns: Vec<Described>,
    mapping: Mapping,
    used: Vec<usize>,
    query: String,
}

impl Plan {
    /// Maps the fields onto `columns` (the catalog's list for `table`;
    /// none means there is no such table) and writes the query that reads
    /// the mapped ones, binary ones as they are and the others through
    /// `as_text`, in the order of the table's `id` column when it has one
    /// (so "the first row wins" means the oldest account).
    fn new(
        columns: Vec<Described>,
        table: &str,
        choices: &[ColumnChoice],
        quote: fn(&str) -> String,
        as_text: fn(String) -> String,
    ) -> Result<Self, SourceError> {
        if columns.is_empty() {
            return Err(unreadable(format!(
                "the source has no table {table} (name another with --table)"
            )));
        }
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        let mapping = Mapping::resolve(&names, choices).map_err(SourceError)?;
        let used = mapping.columns_used();
        let values: Vec<String> = used
            .iter()
            .map(|&i| {
                let name = quote(&columns[i].name);
                if columns[i].binary {
                    name
                } else {
                    as_text(name)
                }
            })
            .collect();
        let order = names
            .iter()
            .find(|c| c.eq_ignore_ascii_case("id"))
            .map(|id| format!(" ORDER BY {}", quote(id)))
            .unwrap_or_default();
        let query = format!("SELECT {} FROM {}{order}", values.join(", "), quote(table));
        Ok(Self {
            columns,
            mapping,
            used,
            query,
        })
    }

    fn query(&self) -> sqlx::AssertSqlSafe<&str> {
        // Safe: the names are the ones the database's catalog listed for a
        // table of that name, each quoted for its dialect.
        sqlx::AssertSqlSafe(&self.query)
    }

    /// The table, from the rows [`Plan::query`] returned.
    fn table<R>(self, rows: &[R]) -> Table
    where
        R: sqlx::Row,
        for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        for<'r> Option<Vec<u8>>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
        usize: sqlx::ColumnIndex<R>,
    {
        let rows = rows
            .iter()
            .map(|row| {
                let mut cells = vec![Cell::Missing; self.columns.len()];
                for (at, &column) in self.used.iter().enumerate() {
                    cells[column] = if self.columns[column].binary {
                        bytes_cell(row.try_get(at))
                    } else {
                        text_cell(row.try_get(at))
                    };
                }
                cells
            })
            .collect();
        Table {
            columns: self.columns.into_iter().map(|c| c.name).collect(),
            mapping: self.mapping,
            rows,
        }
    }
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

fn query_failed(e: sqlx::Error) -> SourceError {
    unreadable(format!("cannot read the source table: {e}"))
}

/// MySQL's binary string types: read as bytes, which must be UTF-8. A cast
/// to CHAR would turn bytes that are not into `?`, silently altering them.
fn is_binary(mysql_type: &str) -> bool {
    matches!(
        mysql_type.to_ascii_lowercase().as_str(),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob"
    )
}

async fn read_mysql(
    options: &MySqlConnectOptions,
    table: &str,
    choices: &[ColumnChoice],
) -> Result<Table, SourceError> {
    let mut conn: MySqlConnection = connect(MySqlConnection::connect_with(options)).await?;
    // TIMESTAMP columns are read in UTC, as every other date is taken to be.
    sqlx::query("SET SESSION time_zone = '+00:00'")
        .execute(&mut conn)
        .await
        .map_err(query_failed)?;
    let described: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(DATA_TYPE AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
    )
    .bind(table)
    .fetch_all(&mut conn)
    .await
    .map_err(query_failed)?;
    let columns = described
        .into_iter()
        .map(|(name, data_type)| Described {
            binary: is_binary(&data_type),
            name,
        })
        .collect();
    let plan = Plan::new(columns, table, choices, backticked, |name| {
        format!("CAST({name} AS CHAR)")
    })?;
    let rows = sqlx::query(plan.query())
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed)?;
    let _ = conn.close().await;
    Ok(plan.table(&rows))
}

async fn read_postgres(
    options: &PgConnectOptions,
    table: &str,
    choices: &[ColumnChoice],
) -> Result<Table, SourceError> {
    let options = options.clone().options([("TimeZone", "UTC")]);
    let mut conn: PgConnection = connect(PgConnection::connect_with(&options)).await?;
    let described: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut conn)
    .await
    .map_err(query_failed)?;
    // `bytea` is read as bytes (as text it would be written in hex).
    let columns = described
        .into_iter()
        .map(|(name, data_type)| Described {
            binary: data_type == "bytea",
            name,
        })
        .collect();
    let plan = Plan::new(columns, table, choices, double_quoted, |name| {
        format!("{name}::text")
    })?;
    let rows = sqlx::query(plan.query())
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed)?;
    let _ = conn.close().await;
    Ok(plan.table(&rows))
}

async fn read_sqlite(
    options: &SqliteConnectOptions,
    table: &str,
    choices: &[ColumnChoice],
) -> Result<Table, SourceError> {
    let mut conn: SqliteConnection = connect(SqliteConnection::connect_with(options)).await?;
    let names: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info(?)")
        .bind(table)
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed)?;
    // SQLite casts a blob to text as its bytes, which must be UTF-8.
    let columns = names
        .into_iter()
        .map(|name| Described {
            name,
            binary: false,
        })
        .collect();
    let plan = Plan::new(columns, table, choices, double_quoted, |name| {
        format!("CAST({name} AS TEXT)")
    })?;
    let rows = sqlx::query(plan.query())
        .fetch_all(&mut conn)
        .await
        .map_err(query_failed)?;
    let _ = conn.close().await;
    Ok(plan.table(&rows))
}

fn text_cell(value: Result<Option<String>, sqlx::Error>) -> Cell {
    match value {
        Ok(Some(text)) if !text.is_empty() => Cell::Text(text),
        Ok(_) => Cell::Missing,
        Err(_) => Cell::Unreadable("not readable as UTF-8 text".to_owned()),
    }
}

fn bytes_cell(value: Result<Option<Vec<u8>>, sqlx::Error>) -> Cell {
    match value {
        Ok(Some(bytes)) => text_cell(
            String::from_utf8(bytes)
                .map(Some)
                .map_err(|e| sqlx::Error::Decode(Box::new(e))),
        ),
        Ok(None) => Cell::Missing,
        Err(e) => text_cell(Err(e)),
    }
}

fn read_csv(path: &std::path::Path, choices: &[ColumnChoice]) -> Result<Table, SourceError> {
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
    let mapping = Mapping::resolve(&columns, choices).map_err(SourceError)?;
    let used = mapping.columns_used();
    let mut rows = Vec::new();
    // Byte records: a cell that is not UTF-8 rejects its row if a field is
    // read from it, and nothing otherwise.
    for record in reader.byte_records() {
        let record = record.map_err(cannot)?;
        let mut cells = vec![Cell::Missing; columns.len()];
        for &column in &used {
            let raw = record.get(column).unwrap_or_default();
            // CSV has no NULL: an empty cell is a value not given.
            cells[column] = match std::str::from_utf8(raw) {
                Ok("") => Cell::Missing,
                Ok(text) => Cell::Text(text.to_owned()),
                Err(_) => Cell::Unreadable("not UTF-8 text".to_owned()),
            };
        }
        rows.push(cells);
    }
    Ok(Table {
        columns,
        mapping,
        rows,
    })
}

fn read_json_lines(path: &std::path::Path, choices: &[ColumnChoice]) -> Result<Table, SourceError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| unreadable(format!("cannot read {}: {e}", path.display())))?;
    let mut columns: Vec<String> = Vec::new();
    let mut known: HashSet<String> = HashSet::new();
    let mut objects = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{} line {}", path.display(), n + 1);
        let object = json_object(line).map_err(|why| unreadable(format!("{}: {why}", at())))?;
        for (key, _) in &object {
            if known.insert(key.clone()) {
                columns.push(key.clone());
            }
        }
        objects.push(object);
    }
    let mapping = Mapping::resolve(&columns, choices).map_err(SourceError)?;
    let used = mapping.columns_used();
    let rows = objects
        .into_iter()
        .map(|object| {
            let mut cells = vec![Cell::Missing; columns.len()];
            for &column in &used {
                let value = object.iter().find(|(key, _)| *key == columns[column]);
                cells[column] = match value.map(|(_, v)| v) {
                    None | Some(serde_json::Value::Null) => Cell::Missing,
                    Some(serde_json::Value::String(s)) if s.is_empty() => Cell::Missing,
                    Some(serde_json::Value::String(s)) => Cell::Text(s.clone()),
                    Some(v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => {
                        Cell::Text(v.to_string())
                    }
                    Some(_) => Cell::Unreadable("an array or object, not a value".to_owned()),
                };
            }
            cells
        })
        .collect();
    Ok(Table {
        columns,
        mapping,
        rows,
    })
}

/// One JSON Lines line as its keys and values in order, refusing anything
/// but an object, and a key given twice (which of the two is meant cannot
/// be known, as in a request body).
fn json_object(line: &str) -> Result<Vec<(String, serde_json::Value)>, String> {
    use serde::de::{Deserializer, Error, MapAccess, Visitor};

    struct Pairs;
    impl<'de> Visitor<'de> for Pairs {
        type Value = Vec<(String, serde_json::Value)>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut pairs: Vec<(String, serde_json::Value)> = Vec::new();
            let mut seen: HashSet<String> = HashSet::new();
            while let Some((key, value)) = map.next_entry::<String, serde_json::Value>()? {
                if !seen.insert(key.clone()) {
                    return Err(M::Error::custom(format!("the key {key:?} is given twice")));
                }
                pairs.push((key, value));
            }
            Ok(pairs)
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(line);
    let pairs = deserializer
        .deserialize_map(Pairs)
        .map_err(|e| format!("not a JSON object: {e}"))?;
    deserializer
        .end()
        .map_err(|e| format!("not a JSON object: {e}"))?;
    Ok(pairs)
}
