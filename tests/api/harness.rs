//! Starts the real server, as the binary does, on a free port against a
//! fresh database, and talks to it over HTTP like any client.
//!
//! Every scenario runs twice through [`on_both_databases!`]: on SQLite
//! always, and on MySQL/MariaDB when `TEST_MYSQL_URL` names a server (for
//! example `mysql://root@127.0.0.1:3306`). Each test gets its own database.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse::app::AppState;
use gatehouse::config::Config;
use gatehouse::server;
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

/// The HMAC secret tests forge tokens with.
pub const TEST_SECRET: &str = "test-secret-that-is-long-enough-for-hs256-0123456789";
/// A password every policy accepts, for users whose password is not the point.
pub const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    /// Only built into tests when `TEST_MYSQL_URL` is set (see `build.rs`).
    #[cfg_attr(not(mysql_tests), allow(dead_code))]
    MySql,
}

impl Backend {
    /// The server URL for MySQL tests, or `None` when they are not wanted.
    pub fn mysql_server() -> Option<String> {
        std::env::var("TEST_MYSQL_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.trim_end_matches('/').to_owned())
    }
}

/// Generates a `sqlite` test for each named scenario, and a `mysql` test
/// when `TEST_MYSQL_URL` was set for the build (see `build.rs`). A scenario
/// is an `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$scenario($crate::harness::Backend::Sqlite).await;
            }

            #[cfg(mysql_tests)]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                super::$scenario($crate::harness::Backend::MySql).await;
            }
        }
    )*};
}

/// A database made for one test, dropped when the test ends.
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    mysql_name: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
    proxy: Option<Proxy>,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/gatehouse.db", dir.path().display());
                Self {
                    backend,
                    url,
                    mysql_name: None,
                    _dir: Some(dir),
                    proxy: None,
                }
            }
            Backend::MySql => {
                let server = Backend::mysql_server().expect("TEST_MYSQL_URL is set");
                let mut conn = sqlx::MySqlConnection::connect(&server)
                    .await
                    .unwrap_or_else(|e| panic!("TEST_MYSQL_URL={server} is unreachable: {e}"));
                drop_stale_databases(&mut conn).await;
                let secs = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let name = format!("gh_test_{secs}_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                // The server is reached through a proxy the test can cut, to
                // stand for a database that goes away.
                let target: SocketAddr = server_address(&server);
                let proxy = Proxy::start(target).await;
                let (scheme_and_user, _) = server.rsplit_once('@').expect("URL has user@host");
                let url = format!("{scheme_and_user}@{}/{name}", proxy.addr);
                Self {
                    backend,
                    url,
                    mysql_name: Some((server, name)),
                    _dir: None,
                    proxy: Some(proxy),
                }
            }
        }
    }

    /// Makes the database unavailable until [`Outage::end`]. MySQL becomes
    /// unreachable, as when its host goes down. An SQLite file cannot go
    /// away like that; what happens to it in practice is another process
    /// holding its write lock, which stops writes but (in WAL mode) not
    /// reads.
    pub async fn outage(&self) -> Outage {
        match (&self.proxy, self.backend) {
            (Some(proxy), Backend::MySql) => {
                proxy.cut();
                Outage::Proxy(proxy.up.clone())
            }
            _ => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query("BEGIN EXCLUSIVE")
                    .execute(&mut conn)
                    .await
                    .unwrap();
                Outage::SqliteLock(Some(conn))
            }
        }
    }
}

impl TestDatabase {
    /// Runs one statement directly on the test database, for arranging
    /// states the API cannot reach quickly (a session idle for a week).
    pub async fn execute(&self, statement: &str) {
        let statement = sqlx::AssertSqlSafe(statement.to_owned());
        match self.backend {
            Backend::Sqlite => {
                // Creates the file when the test arranges a database before
                // gatehouse first opens it.
                let url = format!("{}?mode=rwc", self.url);
                let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query(statement).execute(&mut conn).await.unwrap();
            }
        }
    }
}

impl TestDatabase {
    /// The values of a one-column text query, for looking inside tables.
    pub async fn texts(&self, query: &str) -> Vec<String> {
        let query = sqlx::AssertSqlSafe(query.to_owned());
        match self.backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar::<_, Option<String>>(query)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
            }
            Backend::MySql => {
                let mut conn = sqlx::MySqlConnection::connect(&self.url).await.unwrap();
                sqlx::query_scalar::<_, Option<String>>(query)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap()
            }
        }
        .into_iter()
        .flatten()
        .collect()
    }
}

pub enum Outage {
    Proxy(Arc<AtomicBool>),
    SqliteLock(Option<sqlx::SqliteConnection>),
}

impl Outage {
    /// Whether reads fail too, or only writes.
    pub fn stops_reads(&self) -> bool {
        matches!(self, Outage::Proxy(_))
    }

    pub async fn end(mut self) {
        match &mut self {
            Outage::Proxy(up) => up.store(true, Ordering::SeqCst),
            Outage::SqliteLock(conn) => {
                let mut conn = conn.take().unwrap();
                sqlx::query("ROLLBACK").execute(&mut conn).await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

fn server_address(url: &str) -> SocketAddr {
    let host_port = url.rsplit_once('@').map_or(url, |(_, h)| h);
    let host_port = host_port.split('/').next().unwrap();
    let host_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:3306")
    };
    let host_port = host_port.replace("localhost", "127.0.0.1");
    host_port
        .parse()
        .expect("TEST_MYSQL_URL host is an IP address or localhost")
}

/// Test databases left behind by killed runs are removed after an hour.
async fn drop_stale_databases(conn: &mut sqlx::MySqlConnection) {
    let names: Vec<String> = sqlx::query_scalar("SHOW DATABASES LIKE 'gh\\_test\\_%'")
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for name in names {
        let created: u64 = name
            .split('_')
            .nth(2)
            .and_then(|s| s.parse().ok())
            .unwrap_or(now);
        if now.saturating_sub(created) > 3600 {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name}"
            )))
            .execute(&mut *conn)
            .await;
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((server, name)) = self.mysql_name.take() {
            // Drop runs outside async context; a short-lived runtime on its
            // own thread does the cleanup.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = sqlx::MySqlConnection::connect(&server).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name}"
                        )))
                        .execute(&mut conn)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A TCP relay to MySQL that can refuse service on demand.
struct Proxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut_links: Arc<tokio::sync::Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let cut_links = Arc::new(tokio::sync::Notify::new());
        let task = {
            let up = up.clone();
            let cut_links = cut_links.clone();
            tokio::spawn(async move {
                let mut links = JoinSet::new();
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let Ok((mut client, _)) = accepted else { continue };
                            if !up.load(Ordering::SeqCst) {
                                drop(client);
                                continue;
                            }
                            links.spawn(async move {
                                if let Ok(mut server) = TcpStream::connect(target).await {
                                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                                }
                            });
                        }
                        () = cut_links.notified() => links.abort_all(),
                    }
                }
            })
        };
        Self {
            addr,
            up,
            cut_links,
            task,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut_links.notify_one();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A running gatehouse with a client pointed at it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub state: AppState,
    pub db: Arc<TestDatabase>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

#[derive(Clone)]
pub struct Settings {
    vars: HashMap<String, String>,
    bind: SocketAddr,
}

impl Settings {
    /// Test defaults: a known secret, and cheap hashing so the suite is fast.
    pub fn new() -> Self {
        let mut vars = HashMap::new();
        for (k, v) in [
            ("JWT_SECRET", TEST_SECRET),
            ("ARGON2_MEMORY_KIB", "1024"),
            ("ARGON2_ITERATIONS", "1"),
            ("RUST_LOG", "warn"),
        ] {
            vars.insert(k.to_owned(), v.to_owned());
        }
        Self {
            vars,
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        }
    }

    /// Listens on `addr` instead of 127.0.0.1 (a port of 0 picks a free one).
    pub fn bind(mut self, addr: &str) -> Self {
        self.bind = addr.parse().expect("a socket address");
        self
    }

    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.vars.insert(key.to_owned(), value.to_owned());
        self
    }

    pub fn unset(mut self, key: &str) -> Self {
        self.vars.remove(key);
        self
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Settings::new()).await
    }

    pub async fn spawn_with(backend: Backend, settings: Settings) -> Self {
        let db = Arc::new(TestDatabase::create(backend).await);
        Self::spawn_on(db, settings).await
    }

    /// Starts another server on an existing test database, as a second
    /// instance or a restart would.
    pub async fn spawn_on(db: Arc<TestDatabase>, settings: Settings) -> Self {
        let mut vars = settings.vars.clone();
        vars.insert("DATABASE_URL".into(), db.url.clone());
        let config = Config::from_map(&vars).expect("test configuration is valid");
        let _ = gatehouse::telemetry::init(config.log_format, &config.log_filter);
        let listener = TcpListener::bind(settings.bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A wildcard address is reached over IPv4 loopback.
        let addr = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        let state = server::build(config).await.expect("app builds");
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(server::serve(state.clone(), listener, async {
            let _ = rx.await;
        }));
        Self {
            addr,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            state,
            db,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request reaches the server")
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    /// A public JSON document (the JWKS, the OpenAPI document), asserting
    /// it is served as 200 `application/json`.
    pub async fn public_json(&self, path: &str) -> Value {
        let response = self.request(Method::GET, path, None, None).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        assert_eq!(response.headers()["content-type"], "application/json");
        response.json().await.unwrap()
    }

    /// Registers `username` with [`PASSWORD`] and returns the user object.
    pub async fn register(&self, username: &str) -> Value {
        let response = self
            .post(
                "/auth/register",
                json!({"username": username, "password": PASSWORD}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registering {username}"
        );
        response.json::<Value>().await.unwrap()["user"].clone()
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, username: &str, password: &str) -> String {
        self.login_pair(username, password).await.access
    }

    /// Logs in and returns both tokens.
    pub async fn login_pair(&self, username: &str, password: &str) -> Pair {
        let response = self
            .post(
                "/auth/login",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "logging in as {username}"
        );
        Pair::from_body(&response.json::<Value>().await.unwrap())
    }

    /// Registers and logs in a user; returns its token.
    pub async fn user_token(&self, username: &str) -> String {
        self.register(username).await;
        self.login(username, PASSWORD).await
    }

    /// Creates an admin the way `gatehouse user create --role admin` does,
    /// and returns its token.
    pub async fn admin_token(&self, username: &str) -> String {
        let registration = gatehouse::accounts::Registration {
            username: Some(username.to_owned()),
            password: Some(PASSWORD.to_owned()),
            role: Some("admin".to_owned()),
            ..Default::default()
        };
        gatehouse::accounts::register(
            &self.state,
            registration,
            gatehouse::accounts::Granting::Operator,
            &Default::default(),
        )
        .await
        .expect("admin created");
        self.login(username, PASSWORD).await
    }

    /// Stops the server, letting in-flight requests finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// An access token and the refresh token that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pair {
    pub access: String,
    pub refresh: String,
}

impl Pair {
    pub fn from_body(body: &Value) -> Self {
        Self {
            access: body["access_token"]
                .as_str()
                .expect("access_token")
                .to_owned(),
            refresh: body["refresh_token"]
                .as_str()
                .expect("refresh_token")
                .to_owned(),
        }
    }
}

/// The decoded JSON of a JWT's header (segment 0) or claims (segment 1),
/// read without verifying anything: for looking at what the server issued.
fn jwt_segment(token: &str, index: usize) -> Value {
    use base64::Engine;
    let segment = token
        .split('.')
        .nth(index)
        .expect("a JWT has three segments");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(segment)
        .expect("base64url segment");
    serde_json::from_slice(&bytes).expect("JSON segment")
}

pub fn jwt_header(token: &str) -> Value {
    jwt_segment(token, 0)
}

pub fn jwt_claims(token: &str) -> Value {
    jwt_segment(token, 1)
}

/// Asserts an error response: status, problem+json, the `code`; returns
/// the body for further checks.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "status for expected code {code}");
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    if status == StatusCode::UNAUTHORIZED {
        // RFC 9110: every 401 carries a challenge, whatever the route.
        let challenge = response.headers()[reqwest::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(
            challenge.starts_with(r#"Bearer realm="gatehouse""#),
            "{code}: {challenge}"
        );
    }
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "body: {body}");
    assert_eq!(body["status"], status.as_u16());
    assert_eq!(body["type"], "about:blank");
    assert_eq!(body["request_id"], request_id.as_str());
    body
}

/// The field names listed in a problem's `errors`.
pub fn error_fields(problem: &Value) -> Vec<(String, String)> {
    problem["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap().to_owned(),
                        e["code"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// An argon2id hash of `password` with the test settings' parameters, as
/// gatehouse stores it.
pub fn argon2_hash(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let params = argon2::Params::new(1024, 1, 1, None).unwrap();
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .unwrap()
        .to_string()
}
