//! Every environment variable gatehouse reads, parsed once into a typed
//! [`Config`]. A bad value stops start-up with one line naming the variable;
//! secret values never appear in those lines.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use ipnet::IpNet;

/// Where the data lives. Chosen by the scheme of `DATABASE_URL`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sqlite://path` (created when missing).
    Sqlite(String),
    /// `mysql://user:pass@host:port/db`, also for MariaDB. Kept secret
    /// because the URL carries the password.
    MySql(MySqlUrl),
}

/// A MySQL URL whose `Debug` and `Display` never show the password.
#[derive(Clone)]
pub struct MySqlUrl(SecretString);

impl MySqlUrl {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl PartialEq for MySqlUrl {
    fn eq(&self, other: &Self) -> bool {
        self.expose() == other.expose()
    }
}
impl Eq for MySqlUrl {}

impl std::fmt::Debug for MySqlUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MySqlUrl(<redacted>)")
    }
}

impl DatabaseUrl {
    /// Where the data is, for messages: never the password.
    pub fn describe(&self) -> String {
        match self {
            DatabaseUrl::Sqlite(url) => {
                let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
                format!("SQLite file {path}")
            }
            DatabaseUrl::MySql(url) => {
                match sqlx::mysql::MySqlConnectOptions::from_str(url.expose()) {
                    Ok(options) => format!(
                        "MySQL database {} at {}:{}",
                        options.get_database().unwrap_or_default(),
                        options.get_host(),
                        options.get_port()
                    ),
                    Err(_) => "MySQL".to_owned(),
                }
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    EdDsa,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No `Access-Control-*` headers at all: browsers refuse cross-origin calls.
    None,
    Any,
    List(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub bind_addr: SocketAddr,
    /// Connections open at once; `None`: as many as the process's
    /// descriptor limit allows, up to [`CONNECTION_CEILING`].
    pub max_connections: Option<usize>,
    /// `None`: a random key is generated once and kept in the database.
    pub jwt_secret: Option<SecretString>,
    pub jwt_algorithm: JwtAlgorithm,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub refresh_reuse_grace: Duration,
    pub cors_allowed_origins: CorsOrigins,
    pub require_email: bool,
    pub password_min_length: usize,
    pub argon2: Argon2Settings,
    pub max_concurrent_hashes: usize,
    pub hash_queue_timeout: Duration,
    pub trusted_proxies: Vec<IpNet>,
    pub lockout_threshold: u32,
    pub lockout_duration: Duration,
    pub rate_limit_per_minute: u32,
    /// IPv6 clients share one allowance per network of this prefix length.
    pub rate_limit_ipv6_prefix: u8,
    pub session_idle: Duration,
    /// How long memory may vouch for a session (`SESSION_CACHE_MS`).
    pub session_cache: Duration,
    /// How long `keys rotate` publishes a key before it signs
    /// (`KEY_PUBLISH_LEAD_SECONDS`).
    pub key_publish_lead: Duration,
    pub audit_retention: Duration,
    pub log_format: LogFormat,
    pub log_filter: String,
}

/// One bad variable: printed as `NAME: problem` and nothing else.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

impl ConfigError {
    fn new(variable: &'static str, problem: impl Into<String>) -> Self {
        Self {
            variable,
            problem: problem.into(),
        }
    }
}

/// The longest any request may take before it is answered with 503. Every
/// wait inside is bounded more tightly (database acquire, hashing queue);
/// this is the backstop that guarantees no client ever hangs.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The most client connections one instance holds open at once, however
/// many descriptors the system would allow.
pub const CONNECTION_CEILING: u32 = 50_000;

/// The `.env` file read at start-up, relative to the working directory.
pub const DOTENV_FILE: &str = ".env";

/// The passwords longer than this are refused outright (API.md section 3).
pub const PASSWORD_MAX_LENGTH: usize = 128;
const MIN_SECRET_BYTES: usize = 32;
const DAY: Duration = Duration::from_secs(24 * 60 * 60);

impl Config {
    /// Reads the process environment, after loading `.env` when present in
    /// the working directory. Only there: a `.env` in some parent directory
    /// belongs to something else and must not set the signing key.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is normal; a malformed one is worth stopping for.
        match dotenvy::from_path(DOTENV_FILE) {
            Ok(_) => {}
            Err(e) if e.not_found() => {}
            Err(e) => return Err(ConfigError::new(".env", e.to_string())),
        }
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds the configuration from any source of variables; tests pass a map.
    pub fn from_map(vars: &HashMap<String, String>) -> Result<Self, ConfigError> {
        Self::from_lookup(|name| vars.get(name).cloned())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env { lookup: &lookup };
        let argon2 = Argon2Settings {
            memory_kib: env.number("ARGON2_MEMORY_KIB", 19_456, 8..=4_194_304)?,
            iterations: env.number("ARGON2_ITERATIONS", 2, 1..=64)?,
            parallelism: env.number("ARGON2_PARALLELISM", 1, 1..=255)?,
        };
        if argon2.memory_kib < 8 * argon2.parallelism {
            return Err(ConfigError::new(
                "ARGON2_MEMORY_KIB",
                "must be at least 8 × ARGON2_PARALLELISM",
            ));
        }
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());

        Ok(Self {
            database_url: database_url(&env)?,
            bind_addr: env.parsed("BIND_ADDR", "127.0.0.1:8080".parse().expect("valid"))?,
            max_connections: match env.string("MAX_CONNECTIONS") {
                None => None,
                Some(_) => Some(env.number("MAX_CONNECTIONS", 0, 1..=CONNECTION_CEILING)? as usize),
            },
            jwt_secret: jwt_secret(&env)?,
            jwt_algorithm: jwt_algorithm(&env)?,
            jwt_issuer: env.non_empty("JWT_ISSUER", "gatehouse")?,
            jwt_audience: env.non_empty("JWT_AUDIENCE", "gatehouse")?,
            access_token_ttl: minutes(env.number("ACCESS_TOKEN_EXPIRE_MINUTES", 15, 1..=1440)?),
            refresh_token_ttl: DAY * env.number("REFRESH_TOKEN_EXPIRE_DAYS", 30, 1..=365)?,
            refresh_reuse_grace: seconds(env.number("REFRESH_REUSE_GRACE_SECONDS", 5, 0..=60)?),
            cors_allowed_origins: cors_origins(&env)?,
            require_email: env.boolean("REQUIRE_EMAIL", false)?,
            password_min_length: env.number(
                "PASSWORD_MIN_LENGTH",
                8,
                8..=PASSWORD_MAX_LENGTH as u32,
            )? as usize,
            argon2,
            max_concurrent_hashes: env.number("MAX_CONCURRENT_HASHES", cpus as u32, 1..=1024)?
                as usize,
            hash_queue_timeout: seconds(env.number("HASH_QUEUE_TIMEOUT_SECONDS", 10, 1..=300)?),
            trusted_proxies: trusted_proxies(&env)?,
            lockout_threshold: env.number("LOCKOUT_THRESHOLD", 10, 1..=1000)?,
            lockout_duration: seconds(env.number("LOCKOUT_SECONDS", 60, 1..=3600)?),
            rate_limit_per_minute: env.number("RATE_LIMIT_PER_MINUTE", 300, 0..=1_000_000)?,
            rate_limit_ipv6_prefix: env.number("RATE_LIMIT_IPV6_PREFIX", 64, 1..=128)? as u8,
            session_idle: DAY * env.number("SESSION_IDLE_DAYS", 7, 1..=365)?,
            session_cache: Duration::from_millis(u64::from(env.number(
                "SESSION_CACHE_MS",
                1000,
                0..=60_000,
            )?)),
            key_publish_lead: seconds(env.number(
                "KEY_PUBLISH_LEAD_SECONDS",
                600,
                0..=7 * 86_400,
            )?),
            audit_retention: DAY * env.number("AUDIT_RETENTION_DAYS", 90, 1..=3650)?,
            log_format: log_format(&env)?,
            log_filter: env.string("RUST_LOG").unwrap_or_else(|| "info".to_owned()),
        })
    }
}

fn minutes(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 60)
}

fn seconds(n: u32) -> Duration {
    Duration::from_secs(u64::from(n))
}

/// Reads variables, treating an empty value as unset so that a `.env` line
/// like `JWT_SECRET=` means "use the default".
struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn string(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The first of `names` that is set, with the name it was found under.
    fn first_of(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names
            .iter()
            .find_map(|&name| self.string(name).map(|v| (name, v)))
    }

    fn non_empty(&self, name: &'static str, default: &str) -> Result<String, ConfigError> {
        Ok(self.string(name).unwrap_or_else(|| default.to_owned()))
    }

    fn parsed<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError> {
        match self.string(name) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| ConfigError::new(name, format!("cannot parse {v:?}"))),
        }
    }

    fn number(
        &self,
        name: &'static str,
        default: u32,
        range: std::ops::RangeInclusive<u32>,
    ) -> Result<u32, ConfigError> {
        let Some(raw) = self.string(name) else {
            return Ok(default);
        };
        let value: u32 = raw
            .trim()
            .parse()
            .map_err(|_| ConfigError::new(name, format!("expected a whole number, got {raw:?}")))?;
        if !range.contains(&value) {
            return Err(ConfigError::new(
                name,
                format!(
                    "must be between {} and {}, got {value}",
                    range.start(),
                    range.end()
                ),
            ));
        }
        Ok(value)
    }

    fn boolean(&self, name: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.string(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    name,
                    format!("expected true or false, got {v:?}"),
                )),
            },
        }
    }
}

fn database_url(env: &Env) -> Result<DatabaseUrl, ConfigError> {
    if let Some(url) = env.string("DATABASE_URL") {
        return parse_database_url("DATABASE_URL", url.trim());
    }
    // The older Python backends were configured with separate parts.
    let Some(host) = env.string("DATABASE_HOST") else {
        return Ok(DatabaseUrl::Sqlite("sqlite://gatehouse.db".to_owned()));
    };
    let port: u16 = env.parsed("DATABASE_PORT", 3306)?;
    let name = env
        .string("DATABASE_NAME")
        .ok_or_else(|| ConfigError::new("DATABASE_NAME", "required when DATABASE_HOST is set"))?;
    let user = env
        .string("DATABASE_USER")
        .unwrap_or_else(|| "root".to_owned());
    let password = (env.lookup)("DATABASE_PASSWORD").unwrap_or_default();
    let credentials = if password.is_empty() {
        percent_encode(&user)
    } else {
        format!("{}:{}", percent_encode(&user), percent_encode(&password))
    };
    let url = format!(
        "mysql://{credentials}@{}:{port}/{}",
        host.trim(),
        percent_encode(&name)
    );
    parse_database_url("DATABASE_HOST", &url)
}

/// SQLAlchemy reads `sqlite:///site.db` as `./site.db`; SQLx, and so
/// gatehouse, as `/site.db`. Keeping SQLx's meaning keeps an existing
/// `sqlite:///var/lib/…` where it is, but a URL that would create a new file
/// directly in `/` is almost surely the other reading, and is refused with
/// the way to say "here". `path` is what follows `sqlite:`.
fn refuse_new_file_in_root(variable: &'static str, path: &str) -> Result<(), ConfigError> {
    let file = path.strip_prefix("//").unwrap_or(path);
    let file = file.split('?').next().unwrap_or(file);
    let file = std::path::Path::new(file);
    let in_root = file.is_absolute() && file.parent() == Some(std::path::Path::new("/"));
    if in_root && !file.exists() {
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        return Err(ConfigError::new(
            variable,
            format!(
                "would create {} at the filesystem root (three slashes make an absolute \
                 path, as in SQLx); for a file in the working directory write \
                 sqlite://{name}, or give the absolute path you mean",
                file.display()
            ),
        ));
    }
    Ok(())
}

fn parse_database_url(variable: &'static str, url: &str) -> Result<DatabaseUrl, ConfigError> {
    if let Some(path) = url.strip_prefix("sqlite:") {
        if path.trim_start_matches('/').is_empty() {
            return Err(ConfigError::new(variable, "sqlite URL needs a file path"));
        }
        refuse_new_file_in_root(variable, path)?;
        return Ok(DatabaseUrl::Sqlite(url.to_owned()));
    }
    if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        let url = url.replacen("mariadb://", "mysql://", 1);
        let options = sqlx::mysql::MySqlConnectOptions::from_str(&url)
            .map_err(|_| ConfigError::new(variable, "not a valid mysql:// URL"))?;
        if options.get_database().is_none() {
            return Err(ConfigError::new(
                variable,
                "the MySQL URL must name a database",
            ));
        }
        return Ok(DatabaseUrl::MySql(MySqlUrl(url.into())));
    }
    Err(ConfigError::new(
        variable,
        "must start with sqlite: or mysql:// (also accepted: mariadb://)",
    ))
}

/// Enough of RFC 3986 to carry arbitrary user names and passwords in a URL.
fn percent_encode(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn jwt_secret(env: &Env) -> Result<Option<SecretString>, ConfigError> {
    let Some((name, secret)) = env.first_of(&["JWT_SECRET", "SECRET_KEY", "JWT_SECRET_KEY"]) else {
        return Ok(None);
    };
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::new(
            name,
            format!(
                "must be at least {MIN_SECRET_BYTES} bytes, got {}; \
                 generate one with `openssl rand -base64 48`, or leave it unset \
                 to have gatehouse keep a random key in the database",
                secret.len()
            ),
        ));
    }
    Ok(Some(secret.into()))
}

fn jwt_algorithm(env: &Env) -> Result<JwtAlgorithm, ConfigError> {
    match env.first_of(&["JWT_ALGORITHM", "ALGORITHM"]) {
        None => Ok(JwtAlgorithm::Hs256),
        Some((name, value)) => match value.trim() {
            "HS256" => Ok(JwtAlgorithm::Hs256),
            "EdDSA" => Ok(JwtAlgorithm::EdDsa),
            other => Err(ConfigError::new(
                name,
                format!("must be HS256 or EdDSA, got {other:?}"),
            )),
        },
    }
}

fn cors_origins(env: &Env) -> Result<CorsOrigins, ConfigError> {
    let Some(raw) = env.string("CORS_ALLOWED_ORIGINS") else {
        return Ok(CorsOrigins::None);
    };
    if raw.trim() == "*" {
        return Ok(CorsOrigins::Any);
    }
    let mut origins = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let well_formed = (origin.starts_with("http://") || origin.starts_with("https://"))
            && !origin.trim_end_matches('/').contains(['?', '#'])
            && origin
                .split("://")
                .nth(1)
                .is_some_and(|h| !h.is_empty() && !h.contains('/'));
        if !well_formed {
            return Err(ConfigError::new(
                "CORS_ALLOWED_ORIGINS",
                format!("{origin:?} is not an origin like https://app.example.com"),
            ));
        }
        origins.push(origin.to_owned());
    }
    Ok(CorsOrigins::List(origins))
}

fn trusted_proxies(env: &Env) -> Result<Vec<IpNet>, ConfigError> {
    let Some(raw) = env.string("TRUSTED_PROXIES") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<IpNet>()
                .or_else(|_| p.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    ConfigError::new(
                        "TRUSTED_PROXIES",
                        format!("{p:?} is not an IP address or CIDR range"),
                    )
                })
        })
        .collect()
}

fn log_format(env: &Env) -> Result<LogFormat, ConfigError> {
    match env
        .string("LOG_FORMAT")
        .map(|v| v.trim().to_ascii_lowercase())
    {
        None => Ok(LogFormat::Text),
        Some(v) if v == "text" => Ok(LogFormat::Text),
        Some(v) if v == "json" => Ok(LogFormat::Json),
        Some(v) => Err(ConfigError::new(
            "LOG_FORMAT",
            format!("must be text or json, got {v:?}"),
        )),
    }
}

impl Config {
    /// Whether `peer` may tell us the client address in forwarding headers.
    pub fn is_trusted_proxy(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.trusted_proxies.iter().any(|net| net.contains(&peer))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_map(&map)
    }

    #[test]
    fn defaults_need_no_variables() {
        let c = config(&[]).unwrap();
        assert_eq!(
            c.database_url,
            DatabaseUrl::Sqlite("sqlite://gatehouse.db".into())
        );
        assert_eq!(c.bind_addr.to_string(), "127.0.0.1:8080");
        assert!(c.jwt_secret.is_none());
        assert_eq!(c.access_token_ttl, Duration::from_secs(900));
        assert_eq!(c.password_min_length, 8);
        assert_eq!(c.cors_allowed_origins, CorsOrigins::None);
        assert_eq!(
            c.argon2,
            Argon2Settings {
                memory_kib: 19_456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    #[test]
    fn a_short_secret_is_refused_without_echoing_it() {
        let err = config(&[("JWT_SECRET", "hunter2-but-short")]).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET");
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn the_python_secret_names_are_accepted() {
        let secret = "k".repeat(32);
        assert!(
            config(&[("SECRET_KEY", &secret)])
                .unwrap()
                .jwt_secret
                .is_some()
        );
        let err = config(&[("JWT_SECRET_KEY", "short")]).unwrap_err();
        assert_eq!(err.variable, "JWT_SECRET_KEY");
    }

    #[test]
    fn database_parts_build_a_mysql_url_with_escaped_password() {
        let c = config(&[
            ("DATABASE_HOST", "db.internal"),
            ("DATABASE_NAME", "auth"),
            ("DATABASE_USER", "app"),
            ("DATABASE_PASSWORD", "p@ss:w/rd"),
        ])
        .unwrap();
        let DatabaseUrl::MySql(url) = c.database_url else {
            panic!("not mysql")
        };
        assert_eq!(
            url.expose(),
            "mysql://app:p%40ss%3Aw%2Frd@db.internal:3306/auth"
        );
        assert!(!format!("{url:?}").contains("p%40ss"));
    }

    #[test]
    fn databases_are_described_without_passwords() {
        let c = config(&[("DATABASE_URL", "mysql://app:s3cret@db:3307/auth")]).unwrap();
        assert_eq!(c.database_url.describe(), "MySQL database auth at db:3307");
        assert_eq!(
            config(&[]).unwrap().database_url.describe(),
            "SQLite file gatehouse.db"
        );
    }

    #[test]
    fn a_new_sqlite_file_in_the_root_is_refused_with_the_relative_form() {
        let err = config(&[("DATABASE_URL", "sqlite:///gatehouse-no-such-file.db")]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        assert!(
            err.to_string()
                .contains("sqlite://gatehouse-no-such-file.db"),
            "{err}"
        );
        // Deeper absolute paths and relative ones keep SQLx's meaning.
        for url in [
            "sqlite:///var/lib/gatehouse/auth.db",
            "sqlite://site.db",
            "sqlite:site.db",
        ] {
            assert!(config(&[("DATABASE_URL", url)]).is_ok(), "{url}");
        }
    }

    #[test]
    fn bad_values_name_their_variable() {
        for (name, value) in [
            ("BIND_ADDR", "nowhere"),
            ("ACCESS_TOKEN_EXPIRE_MINUTES", "0"),
            ("PASSWORD_MIN_LENGTH", "4"),
            ("JWT_ALGORITHM", "RS256"),
            ("REQUIRE_EMAIL", "perhaps"),
            ("CORS_ALLOWED_ORIGINS", "example.com"),
            ("TRUSTED_PROXIES", "10.0.0.0/99"),
            ("LOG_FORMAT", "xml"),
            ("DATABASE_URL", "postgres://x/y"),
            ("RATE_LIMIT_PER_MINUTE", "-1"),
            ("RATE_LIMIT_IPV6_PREFIX", "129"),
            ("MAX_CONNECTIONS", "0"),
            ("SESSION_CACHE_MS", "60001"),
            ("RATE_LIMIT_IPV6_PREFIX", "0"),
        ] {
            let err = config(&[(name, value)]).unwrap_err();
            assert_eq!(err.variable, name, "{name}={value}");
        }
    }

    #[test]
    fn cors_accepts_a_list_or_a_star() {
        let c = config(&[(
            "CORS_ALLOWED_ORIGINS",
            "http://localhost:3000, https://app.example",
        )])
        .unwrap();
        assert_eq!(
            c.cors_allowed_origins,
            CorsOrigins::List(vec![
                "http://localhost:3000".into(),
                "https://app.example".into()
            ])
        );
        let c = config(&[("CORS_ALLOWED_ORIGINS", "*")]).unwrap();
        assert_eq!(c.cors_allowed_origins, CorsOrigins::Any);
    }
}
