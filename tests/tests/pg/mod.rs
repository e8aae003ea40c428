//! PostgreSQL variants of the end-to-end sync tests (the relay's second backend), as the relay's
//! own tests do it (server/tests/support): without `AMANAT_TEST_DATABASE_URL` they print a
//! notice and pass as skipped; `AMANAT_REQUIRE_POSTGRES=1` (scripts/test-all.sh, which also starts
//! a throwaway PostgreSQL) makes a missing URL a failure. Each test gets a fresh database.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::cell::Cell;

/// The relay's storage in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

thread_local! {
    /// The backend the test running on this thread asked for (each test has its own thread):
    /// a PostgreSQL variant sets it, then runs the very same test body.
    static BACKEND: Cell<Backend> = const { Cell::new(Backend::Sqlite) };
}

/// The backend of the test on this thread.
pub fn backend() -> Backend {
    BACKEND.with(Cell::get)
}

/// Runs `body` (an ordinary SQLite test) with the relay on a fresh PostgreSQL database, or skips.
pub fn on_postgres(body: fn()) {
    if skip_postgres() {
        return;
    }
    BACKEND.with(|b| b.set(Backend::Postgres));
    body();
}

/// True if the PostgreSQL variant should be skipped (no URL and not required); panics if a URL
/// is required but missing.
pub fn skip_postgres() -> bool {
    if std::env::var("AMANAT_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        return false;
    }
    if std::env::var("AMANAT_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!(
            "AMANAT_REQUIRE_POSTGRES=1 but AMANAT_TEST_DATABASE_URL is not set: run \
             `eval \"$(bash scripts/start-postgres.sh)\"` first"
        );
    }
    static NOTICE: std::sync::Once = std::sync::Once::new();
    NOTICE.call_once(|| {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "NOTICE: PostgreSQL variants of the sync tests skipped (AMANAT_TEST_DATABASE_URL not set)"
        );
    });
    true
}

/// Creates a fresh database next to the one in AMANAT_TEST_DATABASE_URL and returns its URL.
pub fn fresh_database() -> String {
    let url = std::env::var("AMANAT_TEST_DATABASE_URL").unwrap();
    let name = format!("amanat_s_{}", &amanat_protocol::new_nonce().unwrap()[..16]);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        drop(client);
        let _ = conn.await;
    });
    let (base, _) = url.rsplit_once('/').unwrap();
    let query = url
        .split_once('?')
        .map(|(_, q)| format!("?{q}"))
        .unwrap_or_default();
    format!("{base}/{name}{query}")
}

/// `postgres` twins of the named tests of the enclosing file, in a module of that name:
/// `cargo test postgres::` runs them.
#[macro_export]
macro_rules! postgres_variants {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::pg::on_postgres(super::$name);
                }
            )*
        }
    };
}
