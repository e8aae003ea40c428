//! `amanat serve`: opens the chosen backend, serves until SIGTERM or ctrl-c, then drains in-flight
//! requests (whose commits complete before their acknowledgements go out) and exits.

use crate::org;
use crate::relay::{self, postgres::PgStorage, sqlite::SqliteStorage, RelayConfig};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Options of `amanat serve` (see `main.rs` for the flags).
pub struct ServeOptions {
    /// Data directory (SQLite database and blobs; with PostgreSQL, unused but created).
    pub data: PathBuf,
    /// The organisation's `org.pub`.
    pub org_public: PathBuf,
    /// Address to bind; loopback by default (TLS terminates in front of the relay).
    pub listen: SocketAddr,
    /// `postgres://…` to use the PostgreSQL backend.
    pub database_url: Option<String>,
    /// Limits and rate limits.
    pub config: RelayConfig,
    /// Log level (error, warn, info, debug).
    pub log_level: tracing::Level,
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs the relay until a shutdown signal.
pub fn run(opts: ServeOptions) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_max_level(opts.log_level)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .init();
    let org = org::load_public(&opts.org_public)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start runtime: {e}"))?;
    rt.block_on(async move {
        let running = match &opts.database_url {
            Some(url) => {
                let store = PgStorage::connect(url, 16)
                    .await
                    .map_err(|e| e.to_string())?;
                relay::start(opts.listen, org.clone(), opts.config, store).await
            }
            None => {
                let store = SqliteStorage::open(&opts.data).map_err(|e| e.to_string())?;
                relay::start(opts.listen, org.clone(), opts.config, store).await
            }
        }
        .map_err(|e| format!("cannot listen on {}: {e}", opts.listen))?;
        let backend = if opts.database_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        };
        tracing::info!(addr = %running.addr, backend, org = %org.fingerprint, "relay listening");
        // One machine-readable line on stdout, so scripts and tests learn the port when it is 0.
        println!("listening on {}", running.addr);
        shutdown_signal().await;
        tracing::info!("shutting down");
        running.stop().await.map_err(|e| e.to_string())?;
        tracing::info!("stopped");
        Ok(())
    })
}
