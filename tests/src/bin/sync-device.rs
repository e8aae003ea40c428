//! Test helper: a field device that writes cases and syncs them, as its own process, so a test
//! can SIGKILL it at any point (mid-write, mid-prepare, mid-push, mid-pull) and start it again.
//!
//! Usage: `sync-device VAULT_DIR KEY_FILE TOTAL PEER_SIGNING_KEY PEER_AGE_RECIPIENT`. The vault
//! exists and is enrolled (the test did it). Each start re-shares every case with the peer (a
//! kill between creating a case and sharing it must not leave it unshared), then, until the vault
//! holds `TOTAL` cases, writes a few (each: create, share, set `status`) and runs one sync with
//! the real HTTP transport, printing `sync <pushed> <duplicates> <pending>` after each run. Once
//! every case is written and the outbox is empty it prints `drained` and exits.

use amanat_core::records::cases;
use amanat_core::sync;
use amanat_core::{Passcode, SoftwareKeyProvider, Vault};
use amanat_tests::PASSCODE;
use amanat_transport::HttpTransport;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

/// Cases written between two sync runs.
const WRITES_PER_RUN: usize = 4;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(key), Some(total), Some(peer_key), Some(peer_age)) = (
        args.get(1),
        args.get(2),
        args.get(3),
        args.get(4),
        args.get(5),
    ) else {
        return Err("usage: sync-device VAULT_DIR KEY_FILE TOTAL PEER_KEY PEER_AGE".into());
    };
    let total: usize = total.parse()?;
    let vault = Vault::open(dir, Arc::new(SoftwareKeyProvider::new(key)))?;
    vault.unlock(&Passcode::from(PASSCODE))?;
    let transport = HttpTransport::new(Duration::from_secs(5));
    for case in cases::list_cases(&vault)? {
        sync::share_case(&vault, case.id, peer_key, peer_age)?;
    }
    let mut out = std::io::stdout().lock();
    loop {
        let mut n = cases::list_cases(&vault)?.len();
        for _ in 0..WRITES_PER_RUN {
            if n >= total {
                break;
            }
            let case = cases::create_case(&vault)?;
            sync::share_case(&vault, case.id, peer_key, peer_age)?;
            cases::set_field(&vault, case.id, "status", &format!("s{n}"))?;
            n += 1;
        }
        let report = sync::sync_once(&vault, &transport)?;
        writeln!(
            out,
            "sync {} {} {}",
            report.pushed, report.duplicates, report.pending
        )?;
        out.flush()?;
        if n >= total && report.pending == 0 && report.interrupted.is_none() {
            writeln!(out, "drained")?;
            out.flush()?;
            return Ok(());
        }
    }
}
