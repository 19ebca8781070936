//! `gatehouse import-users` as an operator moving in runs it: the older
//! backend's table in the database gatehouse uses (or a file, or a
//! PostgreSQL table), a dry run, the import, the import again, then every
//! user logging in with the old password and the hash upgraded.

use std::process::Output;
use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::gatehouse;
use crate::harness::{Backend, Settings, TestApp, TestDatabase};
use crate::on_both_databases;

on_both_databases!(
    the_flask_table_beside_gatehouse_moves_in_and_stays_untouched,
    the_fastapi_table_imports_with_its_map_line,
    csv_and_json_lines_files_import,
    a_flask_sqlalchemy_sqlite_file_imports_and_stays_unchanged,
    an_unreadable_source_imports_nothing_and_exits_2,
    an_unreadable_or_impossible_value_rejects_only_its_row,
);

/// The password of every fixture hash imported here.
const OLD_PASSWORD: &str = "password123";

/// A bcrypt hash of cost 17, one over the limit (the digest is never
/// computed: the cost alone refuses it).
const BCRYPT_COST_17: &str = "$2b$17$abcdefghijklmnopqrstuuBf6OqJ1BvXqZwTvmI8u1a9Kl6K1SDe.";

/// A Werkzeug PBKDF2 hash of 20,000,000 iterations, twice the limit.
const GREEDY_PBKDF2: &str =
    "pbkdf2:sha256:20000000$salt$00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// One fixture hash per scheme for [`OLD_PASSWORD`], made by the real
/// libraries (tests/fixtures/make_legacy_hashes.py).
fn one_hash_per_scheme() -> Vec<(String, String)> {
    let rows: Vec<Value> =
        serde_json::from_str(include_str!("../fixtures/legacy_hashes.json")).unwrap();
    let mut picked: Vec<(String, String)> = Vec::new();
    for row in rows {
        let scheme = row["scheme"].as_str().unwrap().to_owned();
        if row["password"] == OLD_PASSWORD && !picked.iter().any(|(s, _)| *s == scheme) {
            picked.push((scheme, row["hash"].as_str().unwrap().to_owned()));
        }
    }
    assert!(picked.len() >= 14, "{picked:?}");
    picked
}

fn fixture_hash(scheme: &str) -> String {
    one_hash_per_scheme()
        .into_iter()
        .find(|(s, _)| s == scheme)
        .unwrap_or_else(|| panic!("no fixture hash for {scheme}"))
        .1
}

/// Runs `gatehouse import-users` on `db` with `args`.
fn import(db: &TestDatabase, args: &[&str]) -> Output {
    gatehouse(db)
        .arg("import-users")
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The report's line `label: N`, as a number.
fn count(output: &Output, label: &str) -> usize {
    let printed = stdout(output);
    let prefix = format!("{label}: ");
    printed
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{label}` in the report:\n{printed}"))
}

fn assert_exit(output: &Output, status: i32) {
    assert_eq!(
        output.status.code(),
        Some(status),
        "stdout:\n{}\nstderr:\n{}",
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn account_count(db: &TestDatabase) -> usize {
    db.texts("SELECT CAST(COUNT(*) AS CHAR) FROM gatehouse_users")
        .await
        .first()
        .map_or(0, |n| n.parse().unwrap())
}

async fn stored_hash(db: &TestDatabase, column: &str, value: &str) -> String {
    db.texts(&format!(
        "SELECT password_hash FROM gatehouse_users WHERE {column} = '{value}'"
    ))
    .await
    .pop()
    .unwrap_or_else(|| panic!("no account with {column} {value}"))
}

/// Logs in with `body`, expecting 200, and returns the user object.
async fn logs_in(app: &TestApp, body: Value) -> Value {
    let response = app.post("/auth/login", body.clone()).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let answer: Value = response.json().await.unwrap();
    answer["user"].clone()
}

async fn the_flask_table_beside_gatehouse_moves_in_and_stays_untouched(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    // The Flask backend's own table, in the database gatehouse is given.
    db.execute(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, username VARCHAR(100) NOT NULL, \
         password VARCHAR(255) NOT NULL, role VARCHAR(20), created_at DATETIME)",
    )
    .await;
    let hashes = one_hash_per_scheme();
    let mut values: Vec<String> = hashes
        .iter()
        .enumerate()
        .map(|(i, (_, hash))| {
            format!(
                "({}, 'flask{i}', '{hash}', 'user', '2024-05-01 12:30:00')",
                i + 1
            )
        })
        .collect();
    let good = values.len();
    let bcrypt = fixture_hash("bcrypt-2b");
    for (username, hash) in [
        ("FLASK0", bcrypt.as_str()), // a case variant
        ("costly", BCRYPT_COST_17),  // over the cost limit
        ("plain", "hunter22"),       // not a hash
        ("x", bcrypt.as_str()),      // breaks the username rule
        ("greedy", GREEDY_PBKDF2),   // over the cost limit
    ] {
        values.push(format!(
            "({}, '{username}', '{hash}', NULL, NULL)",
            values.len() + 1
        ));
    }
    db.execute(&format!("INSERT INTO users VALUES {}", values.join(", ")))
        .await;
    let untouched = "SELECT CONCAT(id, username, password) FROM users ORDER BY id";
    let before = db.texts(untouched).await;

    let dry = import(&db, &[&db.url, "--dry-run"]);
    assert_exit(&dry, 1);
    let into = match backend {
        Backend::Sqlite => "into: the SQLite file ",
        Backend::MySql => "into: the MySQL database ",
    };
    assert!(stdout(&dry).starts_with(into), "{}", stdout(&dry));
    assert!(stdout(&dry).contains("\ndry run: nothing is written\n"));
    assert_eq!(count(&dry, "rows read"), good + 5);
    assert_eq!(count(&dry, "would be imported"), good);
    assert_eq!(count(&dry, "already present"), 0);
    assert_eq!(count(&dry, "rejected"), 5);
    assert_eq!(account_count(&db).await, 0, "a dry run writes nothing");

    let first = import(&db, &[&db.url]);
    assert_exit(&first, 1);
    let report = stdout(&first);
    assert_eq!(count(&first, "imported"), good, "{report}");
    assert_eq!(count(&first, "rejected"), 5, "{report}");
    for expected in [
        format!(
            "row {} (FLASK0): duplicate of row 1: the same username",
            good + 1
        ),
        format!(
            "row {} (costly): password hash: bcrypt hash costs more",
            good + 2
        ),
        format!(
            "row {} (plain): password hash: not a password hash format",
            good + 3
        ),
        format!(
            "row {} (x): username: Username must be at least 3",
            good + 4
        ),
        format!(
            "row {} (greedy): password hash: werkzeug-pbkdf2 hash costs more",
            good + 5
        ),
    ] {
        assert!(report.contains(&expected), "{expected}\n{report}");
    }
    assert!(report.contains("hash schemes: "), "{report}");
    assert!(!report.contains(&bcrypt) && !report.contains("hunter22"));
    assert_eq!(account_count(&db).await, good);

    // Again: nothing added, every account already present.
    let again = import(&db, &[&db.url]);
    assert_exit(&again, 1);
    assert_eq!(count(&again, "imported"), 0);
    assert_eq!(count(&again, "already present"), good);
    assert_eq!(account_count(&db).await, good);

    let app = TestApp::spawn_on(db.clone(), Settings::new()).await;
    for (i, (scheme, _)) in hashes.iter().enumerate() {
        let username = format!("flask{i}");
        let user = logs_in(
            &app,
            json!({"username": username, "password": OLD_PASSWORD}),
        )
        .await;
        assert_eq!(user["created_at"], "2024-05-01T12:30:00Z", "{scheme}");
        let upgraded = stored_hash(&db, "username", &username).await;
        assert!(
            upgraded.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{scheme}: {upgraded}"
        );
    }
    // An upgraded account is still "already present", hash and all.
    let after_upgrade = import(&db, &[&db.url]);
    assert_eq!(count(&after_upgrade, "already present"), good);
    assert!(
        stored_hash(&db, "username", "flask0")
            .await
            .starts_with("$argon2id$")
    );
    assert_eq!(
        db.texts(untouched).await,
        before,
        "the old table is untouched"
    );

    // An imported account deleted since is not brought back by another run,
    // nor one renamed since under its old name.
    let gone = app.login("flask1", OLD_PASSWORD).await;
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            "/me",
            Some(&gone),
            Some(json!({"password": OLD_PASSWORD})),
        )
        .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let renamed = app.login("flask2", OLD_PASSWORD).await;
    let patched = app
        .request(
            reqwest::Method::PATCH,
            "/me",
            Some(&renamed),
            Some(json!({"username": "flask2-renamed"})),
        )
        .await;
    assert_eq!(patched.status(), StatusCode::OK);
    let after_changes = import(&db, &[&db.url]);
    assert_eq!(count(&after_changes, "imported"), 0);
    assert_eq!(count(&after_changes, "already present"), good);
    assert_eq!(account_count(&db).await, good - 1);

    let admin = app.admin_token("root").await;
    let events: Value = app
        .get("/admin/audit?kind=users_imported", &admin)
        .await
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 4, "one per real run, none for the dry run");
    let detail = &events[3]["detail"];
    assert_eq!(detail["imported"], good);
    assert_eq!(detail["rejected"], 5);
    assert_eq!(detail["source"], backend_kind(backend));
    assert_eq!(detail["completed"], true);
}

fn backend_kind(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::MySql => "mysql",
    }
}

async fn the_fastapi_table_imports_with_its_map_line(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    // The FastAPI backend's table (its real name is `users` too): the
    // first name in `name`, the last name in `username`, login by email.
    // On MySQL its email column is binary here: read as bytes, which must
    // be UTF-8 (a cast to text would turn other bytes into `?`).
    let email_type = match backend {
        Backend::Sqlite => "VARCHAR(255)",
        Backend::MySql => "VARBINARY(255)",
    };
    db.execute(&format!(
        "CREATE TABLE fastapi_users (id INTEGER PRIMARY KEY, name VARCHAR(100), \
         username VARCHAR(100), email {email_type} NOT NULL, hashed_password VARCHAR(255))"
    ))
    .await;
    let rows = [
        (
            "Ada",
            "Lovelace",
            "ada@example.com",
            fixture_hash("bcrypt-2b"),
        ),
        (
            "Grace",
            "Hopper",
            "grace@example.com",
            fixture_hash("argon2id"),
        ),
        ("Ada", "Again", "ADA@Example.com", fixture_hash("bcrypt-2b")),
    ];
    let values: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (first, last, email, hash))| {
            format!("({}, '{first}', '{last}', '{email}', '{hash}')", i + 1)
        })
        .collect();
    db.execute(&format!(
        "INSERT INTO fastapi_users VALUES {}",
        values.join(", ")
    ))
    .await;
    // `caf\xe9@example.com`: Latin-1, not UTF-8.
    db.execute(&format!(
        "INSERT INTO fastapi_users VALUES (4, 'Léa', 'Café', \
         X'636166e9406578616d706c652e636f6d', '{}')",
        fixture_hash("bcrypt-2b")
    ))
    .await;
    let map_line = [
        "--table",
        "fastapi_users",
        "--map",
        "first_name=name",
        "--map",
        "last_name=username",
        "--map",
        "username=",
        "--map",
        "name=",
    ];
    let mut args = vec![db.url.as_str()];
    args.extend(map_line);
    let imported = import(&db, &args);
    assert_exit(&imported, 1);
    assert_eq!(count(&imported, "imported"), 2);
    assert_eq!(count(&imported, "rejected"), 2);
    for expected in [
        "row 3 (ADA@Example.com): duplicate of row 1: the same email, ignoring case",
        "row 4: email: not readable as UTF-8 text",
    ] {
        let report = stdout(&imported);
        assert!(report.contains(expected), "{expected}\n{report}");
    }

    let app = TestApp::spawn_on(db.clone(), Settings::new()).await;
    // The FastAPI client's own login body.
    let user = logs_in(
        &app,
        json!({"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace",
               "password": OLD_PASSWORD}),
    )
    .await;
    assert_eq!(user["first_name"], "Ada");
    assert_eq!(user["last_name"], "Lovelace");
    assert_eq!(user["username"], Value::Null);
    assert_eq!(user["name"], Value::Null);
    let grace = logs_in(
        &app,
        json!({"email": "Grace@example.com", "password": OLD_PASSWORD}),
    )
    .await;
    assert_eq!(grace["first_name"], "Grace");
    for email in ["ada@example.com", "grace@example.com"] {
        let hash = stored_hash(&db, "email", email).await;
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
    }
}

async fn csv_and_json_lines_files_import(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("users.csv");
    let django = fixture_hash("django-pbkdf2-sha256");
    let passlib = fixture_hash("passlib-pbkdf2-sha256");
    std::fs::write(
        &csv,
        format!(
            "username,email,password_hash,name,role,created_at\n\
             carol,carol@example.com,{django},\"Carol, the first\",admin,1714566600\n\
             dave,,{passlib},,,\n"
        ),
    )
    .unwrap();
    let csv_path = csv.to_str().unwrap();
    assert_exit(&import(&db, &[csv_path, "--dry-run"]), 0);
    let imported = import(&db, &[csv_path]);
    assert_exit(&imported, 0);
    assert_eq!(count(&imported, "imported"), 2);
    assert!(
        stdout(&imported).contains("imported: 2 (1 with the admin role)\n  admin: row 1 (carol)\n")
    );
    // Importing twice adds nothing, and still exits 0.
    let again = import(&db, &[csv_path]);
    assert_exit(&again, 0);
    assert_eq!(count(&again, "already present"), 2);

    let jsonl = dir.path().join("users.jsonl");
    let werkzeug = fixture_hash("werkzeug-scrypt");
    std::fs::write(
        &jsonl,
        format!(
            "{{\"id\": 1, \"username\": \"erin\", \"password\": \"{werkzeug}\", \"email\": null}}\n\
             \n\
             {{\"id\": 2, \"email\": \"frank@example.com\", \"password\": \"{werkzeug}\"}}\n"
        ),
    )
    .unwrap();
    let imported = import(&db, &[jsonl.to_str().unwrap()]);
    assert_exit(&imported, 0);
    assert_eq!(count(&imported, "imported"), 2);

    let app = TestApp::spawn_on(db.clone(), Settings::new()).await;
    let carol = logs_in(&app, json!({"username": "carol", "password": OLD_PASSWORD})).await;
    assert_eq!(carol["name"], "Carol, the first");
    assert_eq!(carol["role"], "admin");
    assert_eq!(carol["created_at"], "2024-05-01T12:30:00Z");
    let dave = logs_in(&app, json!({"username": "dave", "password": OLD_PASSWORD})).await;
    assert_eq!(dave["role"], "user");
    assert_eq!(dave["email"], Value::Null);
    logs_in(&app, json!({"username": "erin", "password": OLD_PASSWORD})).await;
    logs_in(
        &app,
        json!({"email": "frank@example.com", "password": OLD_PASSWORD}),
    )
    .await;
}

async fn a_flask_sqlalchemy_sqlite_file_imports_and_stays_unchanged(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site.db");
    {
        use sqlx::Connection as _;
        let url = format!("sqlite://{}?mode=rwc", site.display());
        let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
        // Flask-SQLAlchemy's table name, and the text SQLAlchemy stores
        // for a DATETIME on SQLite.
        sqlx::raw_sql(
            "CREATE TABLE user (id INTEGER PRIMARY KEY, username VARCHAR(80) UNIQUE NOT NULL, \
             email VARCHAR(120), password_hash VARCHAR(128), created_at DATETIME)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for (id, username, scheme) in [(1, "ivy", "werkzeug-scrypt"), (2, "jack", "bcrypt-2y")] {
            sqlx::query("INSERT INTO user VALUES (?, ?, NULL, ?, '2024-05-01 12:30:00.123456')")
                .bind(id)
                .bind(username)
                .bind(fixture_hash(scheme))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        conn.close().await.unwrap();
    }
    let before = std::fs::read(&site).unwrap();
    let source = format!("sqlite://{}", site.display());
    let imported = import(&db, &[&source, "--table", "user"]);
    assert_exit(&imported, 0);
    assert_eq!(count(&imported, "imported"), 2);
    assert_eq!(
        std::fs::read(&site).unwrap(),
        before,
        "the source is only read"
    );

    let app = TestApp::spawn_on(db.clone(), Settings::new()).await;
    for username in ["ivy", "jack"] {
        let user = logs_in(
            &app,
            json!({"username": username, "password": OLD_PASSWORD}),
        )
        .await;
        assert_eq!(user["created_at"], "2024-05-01T12:30:00Z");
    }
}

async fn an_unreadable_source_imports_nothing_and_exits_2(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let dir = tempfile::tempdir().unwrap();
    let no_hash = dir.path().join("no_hash.csv");
    std::fs::write(&no_hash, "username,pw\nzoe,secret\n").unwrap();
    let no_identity = dir.path().join("no_identity.csv");
    std::fs::write(&no_identity, "id,password\n1,secret\n").unwrap();
    let ragged = dir.path().join("ragged.csv");
    let hash = fixture_hash("bcrypt-2b");
    std::fs::write(&ragged, format!("username,password\nzoe,{hash}\nyan\n")).unwrap();
    let broken = dir.path().join("broken.jsonl");
    std::fs::write(
        &broken,
        format!("{{\"username\":\"zoe\",\"password\":\"{hash}\"}}\n{{not json\n"),
    )
    .unwrap();
    let twice = dir.path().join("twice.jsonl");
    std::fs::write(
        &twice,
        format!("{{\"username\":\"kim\",\"username\":\"admin\",\"password\":\"{hash}\"}}\n"),
    )
    .unwrap();
    let missing = dir.path().join("missing.csv");
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec![path(&missing)], "cannot read"),
        (vec![path(&no_hash)], "no password hash column"),
        (vec![path(&no_identity)], "neither a username nor an email"),
        (vec![path(&ragged)], "cannot read"),
        (vec![path(&broken)], "line 2: not a JSON object"),
        (
            vec![path(&twice)],
            "line 1: not a JSON object: the key \"username\" is given twice",
        ),
        (
            vec![path(&no_hash), "--table".into(), "users".into()],
            "--table",
        ),
        (
            vec![
                path(&no_hash),
                "--map".into(),
                "password_hash=secret".into(),
            ],
            "no column secret",
        ),
        (
            vec![db.url.clone(), "--table".into(), "nothing_here".into()],
            "no table nothing_here",
        ),
        (
            vec![format!(
                "sqlite://{}",
                dir.path().join("absent.db").display()
            )],
            "no SQLite file",
        ),
        (vec!["users.xlsx".into()], "SOURCE must be"),
        (
            vec![path(&no_hash), "--map".into(), "nickname=pw".into()],
            "unknown field",
        ),
    ];
    for (args, message) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let output = import(&db, &args);
        assert_exit(&output, 2);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    assert!(!dir.path().join("absent.db").exists());
    assert_eq!(account_count(&db).await, 0);
}

/// A PostgreSQL source: Flask-SQLAlchemy's table `user` (a keyword there),
/// imported into each database gatehouse runs on.
#[cfg(postgres_tests)]
mod from_postgres {
    use super::*;
    use sqlx::Connection as _;

    on_both_databases!(the_flask_sqlalchemy_user_table_imports);

    async fn the_flask_sqlalchemy_user_table_imports(backend: Backend) {
        let server = std::env::var("TEST_POSTGRES_URL").unwrap();
        let server = server.trim_end_matches('/');
        let name = format!("gh_import_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&format!("{server}/postgres"))
            .await
            .unwrap_or_else(|e| panic!("TEST_POSTGRES_URL={server} is unreachable: {e}"));
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let source = format!("{server}/{name}");
        let mut conn = sqlx::PgConnection::connect(&source).await.unwrap();
        sqlx::raw_sql(
            "CREATE TABLE \"user\" (id SERIAL PRIMARY KEY, username VARCHAR(80) UNIQUE NOT NULL, \
             email VARCHAR(120), password_hash VARCHAR(255), created_at TIMESTAMPTZ, \
             hash_bytes BYTEA)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for (username, email, scheme) in [
            ("gina", "gina@example.com", "werkzeug-pbkdf2-sha256"),
            ("hal", "hal@example.com", "werkzeug-scrypt"),
            ("Gina", "other@example.com", "bcrypt-2b"),
        ] {
            sqlx::query(
                "INSERT INTO \"user\" (username, email, password_hash, created_at, hash_bytes) \
                 VALUES ($1, $2, $3, '2024-05-01 14:30:00+02', convert_to($3, 'UTF8'))",
            )
            .bind(username)
            .bind(email)
            .bind(fixture_hash(scheme))
            .execute(&mut conn)
            .await
            .unwrap();
        }
        conn.close().await.unwrap();

        let db = Arc::new(TestDatabase::create(backend).await);
        let imported = import(&db, &[&source, "--table", "user"]);
        assert_exit(&imported, 1);
        assert_eq!(count(&imported, "imported"), 2);
        assert!(
            stdout(&imported).contains("row 3 (Gina): duplicate of row 1: the same username"),
            "{}",
            stdout(&imported)
        );
        assert!(stdout(&imported).contains("table user of the PostgreSQL database"));
        let again = import(&db, &[&source, "--table", "user"]);
        assert_eq!(count(&again, "already present"), 2);
        // A bytea column is read as the bytes it holds.
        let other = TestDatabase::create(backend).await;
        let from_bytes = import(
            &other,
            &[
                &source,
                "--table",
                "user",
                "--map",
                "password_hash=hash_bytes",
            ],
        );
        assert_eq!(count(&from_bytes, "imported"), 2, "{}", stdout(&from_bytes));

        let app = TestApp::spawn_on(db.clone(), Settings::new()).await;
        for username in ["gina", "hal"] {
            let user = logs_in(
                &app,
                json!({"username": username, "password": OLD_PASSWORD}),
            )
            .await;
            assert_eq!(user["created_at"], "2024-05-01T12:30:00Z");
            assert!(
                stored_hash(&db, "username", username)
                    .await
                    .starts_with("$argon2id$")
            );
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE {name} WITH (FORCE)"
        )))
        .execute(&mut admin)
        .await
        .unwrap();
    }
}

async fn an_unreadable_or_impossible_value_rejects_only_its_row(backend: Backend) {
    let db = Arc::new(TestDatabase::create(backend).await);
    let dir = tempfile::tempdir().unwrap();
    let hash = fixture_hash("bcrypt-2b");
    let csv = dir.path().join("awkward.csv");
    let mut bytes = b"username,password,avatar,created_at\n".to_vec();
    // A column no field is read from may hold anything.
    bytes.extend(format!("kim,{hash},").as_bytes());
    bytes.extend(b"\x89PNG\xff\x00,2024-05-01\n");
    // A field's column that is not UTF-8 rejects that row only.
    bytes.extend(b"l\xe9o,");
    bytes.extend(format!("{hash},,\n").as_bytes());
    // Dates an account cannot have been made on.
    bytes.extend(format!("old,{hash},,-100000000000\n").as_bytes());
    bytes.extend(format!("future,{hash},,99999-01-01\n").as_bytes());
    // Hashes that parse but could never verify.
    bytes.extend(format!("badscrypt,scrypt:65536:1:1$salt${},,\n", "00".repeat(64)).as_bytes());
    bytes.extend(format!("badbcrypt,$2b$06${},,\n", "!".repeat(53)).as_bytes());
    bytes.extend(
        b"hugep,\"$argon2id$v=19$m=65536,t=1,p=536870912$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\",,\n",
    );
    std::fs::write(&csv, bytes).unwrap();
    let output = import(&db, &[csv.to_str().unwrap()]);
    assert_exit(&output, 1);
    let report = stdout(&output);
    assert_eq!(count(&output, "imported"), 1, "{report}");
    for expected in [
        "row 2: username: not UTF-8 text",
        "row 3 (old): created_at: \"-100000000000\" is not a date from 1970 to 9999",
        "row 4 (future): created_at:",
        "row 5 (badscrypt): password hash: malformed werkzeug-scrypt hash",
        "row 6 (badbcrypt): password hash: malformed bcrypt hash",
        "row 7 (hugep): password hash: argon2 hash costs more than one login may spend (p=536870912)",
    ] {
        assert!(report.contains(expected), "{expected}\n{report}");
    }
    // The hash column may not feed another field: it would print hashes.
    let crossed = import(&db, &[csv.to_str().unwrap(), "--map", "name=password"]);
    assert_exit(&crossed, 2);
}
