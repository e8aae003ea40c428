//! Test helper: the real relay (SQLite backend) as its own process, so a test can SIGKILL it
//! mid-sync and start it again on the same database.
//!
//! Usage: `test-relay ORG_PUB DB`, where `DB` is a folder (SQLite) or a `postgres://` URL. Listens on 127.0.0.1 (a free port), prints
//! `listening <addr>` once ready, and serves until killed. Rate limits are lifted (the tests
//! hammer it on purpose).

use amanat_server::org;
use amanat_server::relay::{self, postgres::PgStorage, sqlite::SqliteStorage, RelayConfig};
use std::io::Write;
use std::path::Path;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(org_pub), Some(db)) = (args.get(1), args.get(2)) else {
        return Err("usage: test-relay ORG_PUB DB".into());
    };
    let org = org::load_public(Path::new(org_pub))?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let config = RelayConfig {
        rate_per_sec: 100_000.0,
        rate_burst: 100_000.0,
        ..RelayConfig::default()
    };
    let listen = "127.0.0.1:0".parse()?;
    rt.block_on(async {
        let running = if db.starts_with("postgres://") {
            let storage = PgStorage::connect(db, 8).await?;
            relay::start(listen, org, config, storage).await?
        } else {
            let storage = SqliteStorage::open(Path::new(db))?;
            relay::start(listen, org, config, storage).await?
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {}", running.addr)?;
        out.flush()?;
        drop(out);
        std::future::pending::<()>().await;
        Ok::<_, Box<dyn std::error::Error>>(())
    })
}
