//! `amanat device join`: the device side of enrollment, from the command line.
//!
//! For the demo, tests and operators who script a device (a laptop used as a field device in a
//! pilot). Phones enroll through the FFI (`enroll(code)`); both run the same core
//! (`amanat_core::sync::enroll*`), so the checks are identical: the org-signed code, proof of
//! possession, the `org.pub` fingerprint, and the relay URL signed into the code.
//!
//! Secrets never come from the command line (visible in `ps` and shell history): the passcode is
//! read from the environment variable [`PASSCODE_ENV`] or else the first line of standard input;
//! the code from `--code-file` or else the next line of standard input.

use amanat_core::sync::{self, Enrollment};
use amanat_core::{KdfParams, Passcode, SoftwareKeyProvider, Vault};
use amanat_transport::HttpTransport;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Environment variable holding the vault passcode for `device join`.
pub const PASSCODE_ENV: &str = "AMANAT_PASSCODE";

/// Options of `amanat device join`.
pub struct JoinOptions {
    /// The device's vault directory (created if it holds no vault).
    pub vault: PathBuf,
    /// File holding the software key provider's device key (default: `<vault>.device-key`).
    pub key_file: Option<PathBuf>,
    /// File holding the enrollment code (default: read from standard input).
    pub code_file: Option<PathBuf>,
    /// Relay URL, when the code does not carry one (must equal it when it does).
    pub relay: Option<String>,
}

fn read_line(lines: &mut impl Iterator<Item = std::io::Result<String>>) -> Result<String, String> {
    match lines.next() {
        Some(Ok(l)) => Ok(l.trim_end_matches(['\r', '\n']).to_owned()),
        Some(Err(e)) => Err(format!("cannot read standard input: {}", e.kind())),
        None => Err("standard input ended early".into()),
    }
}

/// Opens (or creates) the vault at `dir` with the software key provider at `key_file`, unlocked.
pub fn open_or_create(dir: &Path, key_file: &Path, passcode: &Passcode) -> Result<Vault, String> {
    let provider = Arc::new(SoftwareKeyProvider::new(key_file));
    if Vault::exists(dir) {
        let vault = Vault::open(dir, provider).map_err(|e| e.to_string())?;
        vault.unlock(passcode).map_err(|e| e.to_string())?;
        Ok(vault)
    } else {
        Vault::create(dir, passcode, provider, KdfParams::default()).map_err(|e| e.to_string())
    }
}

/// Enrolls the vault's device; returns what the relay and the organisation confirmed.
pub fn join(opts: &JoinOptions) -> Result<Enrollment, String> {
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let passcode = match std::env::var(PASSCODE_ENV) {
        Ok(p) if !p.is_empty() => Passcode::new(p),
        _ => Passcode::new(read_line(&mut lines)?),
    };
    let code = match &opts.code_file {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read the code file: {}", e.kind()))?,
        None => read_line(&mut lines)?,
    };
    let key_file = opts.key_file.clone().unwrap_or_else(|| {
        let mut name = opts.vault.as_os_str().to_owned();
        name.push(".device-key");
        PathBuf::from(name)
    });
    let vault = open_or_create(&opts.vault, &key_file, &passcode)?;
    let transport = HttpTransport::new(Duration::from_secs(30));
    let result = match &opts.relay {
        Some(url) => sync::enroll(&vault, &code, url, &transport),
        None => sync::enroll_with_code(&vault, &code, &transport),
    };
    vault.lock();
    result.map_err(|e| e.to_string())
}

/// `amanat device join`: prints the device id, role, relay and organisation fingerprint.
pub fn run_join(opts: JoinOptions) -> Result<(), String> {
    let e = join(&opts)?;
    println!("enrolled device {}", e.device_id);
    println!("role {}", e.role.as_str());
    println!("relay {}", e.relay_url);
    println!("organisation {}", e.org_fingerprint);
    Ok(())
}
