//! Test plumbing shared by the relay's integration tests: whether to run the PostgreSQL variants,
//! and a fresh database per test.
//!
//! Plain `cargo test` needs no PostgreSQL: without `AMANAT_TEST_DATABASE_URL` the PostgreSQL
//! variants print a notice and pass as skipped. `AMANAT_REQUIRE_POSTGRES=1` (set by
//! scripts/test-all.sh, scripts/test-relay.sh and so CI) makes a missing URL a failure.

#![allow(dead_code)]

/// True if the PostgreSQL variant should be skipped (no URL and not required); panics if a URL
/// is required but missing.
pub fn skip_postgres() -> bool {
    if std::env::var("AMANAT_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        return false;
    }
    if std::env::var("AMANAT_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!(
            "AMANAT_REQUIRE_POSTGRES=1 but AMANAT_TEST_DATABASE_URL is not set: run \
             scripts/test-relay.sh (starts a throwaway PostgreSQL) or \
             `eval \"$(bash scripts/start-postgres.sh)\"` first"
        );
    }
    // Straight to stderr (not eprintln!, which the test harness captures), once per test binary.
    static NOTICE: std::sync::Once = std::sync::Once::new();
    NOTICE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: PostgreSQL variants skipped (AMANAT_TEST_DATABASE_URL not set; \
             scripts/test-relay.sh runs them, AMANAT_REQUIRE_POSTGRES=1 makes them mandatory)"
        );
    });
    true
}

/// Creates a fresh database next to the one in AMANAT_TEST_DATABASE_URL and returns its URL.
pub async fn fresh_pg_database() -> String {
    let url = std::env::var("AMANAT_TEST_DATABASE_URL").unwrap();
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let name = format!("amanat_t_{}", &amanat_protocol::new_nonce().unwrap()[..16]);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, _) = url.rsplit_once('/').unwrap();
    let (_, query) = url
        .split_once('?')
        .map(|(a, q)| (a, format!("?{q}")))
        .unwrap_or((&url, String::new()));
    format!("{base}/{name}{query}")
}

/// Connects a plain client to `url` (for tests that prepare or inspect a database directly).
pub async fn pg_client(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}
