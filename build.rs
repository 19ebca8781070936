//! The MySQL variants of the integration tests exist only when
//! `TEST_MYSQL_URL` is set at build time, and the PostgreSQL ones only when
//! `TEST_POSTGRES_URL` is, so a plain `cargo test` never reports database
//! tests as passed that did not run. CI sets both; with one set, an
//! unreachable server fails those tests.
fn main() {
    for (variable, cfg) in [
        ("TEST_MYSQL_URL", "mysql_tests"),
        ("TEST_POSTGRES_URL", "postgres_tests"),
    ] {
        println!("cargo::rerun-if-env-changed={variable}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var_os(variable).is_some_and(|url| !url.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
