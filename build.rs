//! The MySQL variants of the integration tests exist only when
//! `TEST_MYSQL_URL` is set at build time, so a plain `cargo test` never
//! reports MySQL tests as passed that did not run. CI sets the variable;
//! with it set, an unreachable server fails those tests.
fn main() {
    println!("cargo::rerun-if-env-changed=TEST_MYSQL_URL");
    println!("cargo::rustc-check-cfg=cfg(mysql_tests)");
    if std::env::var_os("TEST_MYSQL_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=mysql_tests");
    }
}
