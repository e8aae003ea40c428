//! `amanat hq`: an HQ installation — an encrypted vault enrolled with an `hq` code that pulls
//! what devices route to HQ, keeps every envelope as delivered (the evidentiary original) and
//! decrypts what the group identities it holds allow. The rules are the core's
//! (`amanat_core::sync::hq`); this module reads passphrases and files and prints.
//!
//! Files in the HQ data directory:
//!
//! ```text
//! vault/        the HQ store: a vault like a device's (sealed records, nothing in clear)
//! vault.key     the software key provider's key (the second factor beside the passphrase)
//! ```
//!
//! The passphrase opens the vault (and, at `init`, the organisation keys or the identity files):
//! first line of `--passphrase-file`, else of standard input — never an argument.

use crate::org;
use age::secrecy::{ExposeSecret, SecretString};
use amanat_core::sync::{self, hq, SyncReport};
use amanat_core::{KdfParams, Passcode, SoftwareKeyProvider, Vault};
use amanat_protocol::{DeviceRole, EnrollmentCode, RECIPIENT_GROUPS};
use amanat_transport::HttpTransport;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const NOT_HQ_CODE: &str = "the code is a field device's code, not an HQ code (device enroll --hq)";

/// Where the HQ's own vault lives inside the data directory.
pub fn vault_dir(data: &Path) -> PathBuf {
    data.join("vault")
}

/// The software key provider's key file inside the data directory.
pub fn key_file(data: &Path) -> PathBuf {
    data.join("vault.key")
}

/// How the installation gets its enrollment code and its group identities.
pub enum Keys {
    /// From the organisation directory (the org passphrase signs a fresh `hq` code and opens the
    /// named groups' identities; every group when the list is empty).
    Org {
        /// Organisation directory (`org init`).
        dir: PathBuf,
        /// Groups to hold.
        groups: Vec<String>,
    },
    /// From an `hq` code issued by `amanat device enroll --hq` and identity files written by
    /// `amanat org export-group`, all under this operator's passphrase.
    Files {
        /// File holding the enrollment code.
        code_file: PathBuf,
        /// Identity files (each opened with the passphrase).
        identities: Vec<PathBuf>,
    },
}

/// Options of `amanat hq init`.
pub struct InitOptions {
    /// HQ data directory (must not hold a vault yet).
    pub data: PathBuf,
    /// The relay URL.
    pub relay: String,
    /// Where the code and identities come from.
    pub keys: Keys,
    /// Vault passphrase (also opens the org keys or the identity files).
    pub passphrase: SecretString,
    /// Argon2 parameters of the vault (tests lower them; default otherwise).
    pub kdf: KdfParams,
}

/// What `init` set up.
#[derive(Debug)]
pub struct Installed {
    /// The installation's device id at the relay.
    pub device_id: String,
    /// Groups whose identity it holds.
    pub groups: Vec<String>,
}

fn passcode(pass: &SecretString) -> Passcode {
    Passcode::new(pass.expose_secret().to_owned())
}

/// Creates, enrolls and provisions an HQ installation. Every key is opened before anything is
/// created or sent, so a wrong passphrase leaves nothing behind and spends no code.
pub fn init(opts: &InitOptions) -> Result<Installed, String> {
    let vault_path = vault_dir(&opts.data);
    if Vault::exists(&vault_path) {
        return Err(format!("{} already holds an HQ vault", opts.data.display()));
    }
    let (code, identities) = match &opts.keys {
        Keys::Org { dir, groups } => {
            let groups: Vec<String> = if groups.is_empty() {
                RECIPIENT_GROUPS.iter().map(|g| g.to_string()).collect()
            } else {
                groups.clone()
            };
            let mut ids = Vec::new();
            for g in &groups {
                ids.push(org::group_identity(dir, &opts.passphrase, g)?);
            }
            let code = org::enroll_code_for(
                dir,
                &opts.passphrase,
                600,
                DeviceRole::Hq,
                Some(&opts.relay),
            )?;
            (
                serde_json::to_string(&code).map_err(|e| e.to_string())?,
                ids,
            )
        }
        Keys::Files {
            code_file,
            identities,
        } => {
            let code = std::fs::read_to_string(code_file)
                .map_err(|e| format!("cannot read the code file: {}", e.kind()))?;
            // A field device's code would enroll this vault as a phone: refused before anything
            // is created or the code is spent.
            match serde_json::from_str::<EnrollmentCode>(code.trim()) {
                Ok(c) if c.role == DeviceRole::Hq => {}
                Ok(_) => return Err(NOT_HQ_CODE.to_owned()),
                Err(_) => return Err("the enrollment code is malformed".to_owned()),
            }
            let mut ids = Vec::new();
            for f in identities {
                ids.push(org::read_identity_file(f, &opts.passphrase)?);
            }
            (code.trim().to_owned(), ids)
        }
    };
    std::fs::create_dir_all(&opts.data)
        .map_err(|e| format!("cannot create {}: {}", opts.data.display(), e.kind()))?;
    let provider = Arc::new(SoftwareKeyProvider::new(key_file(&opts.data)));
    let vault = Vault::create(&vault_path, &passcode(&opts.passphrase), provider, opts.kdf)
        .map_err(|e| e.to_string())?;
    let transport = HttpTransport::new(Duration::from_secs(30));
    let enrolled = sync::enroll(&vault, &code, &opts.relay, &transport).map_err(|e| e.to_string());
    let result = enrolled.and_then(|e| {
        if e.role != DeviceRole::Hq {
            return Err(NOT_HQ_CODE.to_owned());
        }
        let mut groups = Vec::new();
        for id in &identities {
            groups.push(
                hq::import_identity(&vault, id.expose_secret()).map_err(|e| {
                    format!(
                        "the installation is enrolled, but an identity was refused ({e}); add the \
                     right file with `amanat hq add-identity`"
                    )
                })?,
            );
        }
        groups.sort();
        Ok(Installed {
            device_id: e.device_id,
            groups,
        })
    });
    vault.lock();
    result
}

/// Opens the HQ vault in `data` with the passphrase.
pub fn open(data: &Path, pass: &SecretString) -> Result<Vault, String> {
    let vault_path = vault_dir(data);
    if !Vault::exists(&vault_path) {
        return Err(format!(
            "{} holds no HQ vault (amanat hq init)",
            data.display()
        ));
    }
    let provider = Arc::new(SoftwareKeyProvider::new(key_file(data)));
    let vault = Vault::open(&vault_path, provider).map_err(|e| e.to_string())?;
    vault.unlock(&passcode(pass)).map_err(|e| e.to_string())?;
    Ok(vault)
}

/// Adds group identities from files (`org export-group`, or a rotated group's new key) to an
/// installation; returns the groups now held. Each file is checked against the organisation's
/// `org.pub` before anything is stored; a file of another organisation stores nothing.
pub fn add_identities(
    data: &Path,
    pass: &SecretString,
    files: &[PathBuf],
) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    for f in files {
        ids.push((f, org::read_identity_file(f, pass)?));
    }
    let vault = open(data, pass)?;
    let result = ids
        .iter()
        .try_for_each(|(f, id)| {
            hq::import_identity(&vault, id.expose_secret())
                .map(|_| ())
                .map_err(|e| format!("{}: {e}", f.display()))
        })
        .and_then(|()| hq::summary(&vault).map_err(|e| e.to_string()))
        .map(|s| s.groups);
    vault.lock();
    result
}

/// What one `hq pull` did, and what the installation holds after it.
#[derive(Debug)]
pub struct Pulled {
    /// The sync run's report.
    pub report: SyncReport,
    /// Counts after the run.
    pub summary: hq::HqSummary,
}

/// Pulls everything routed to HQ until the relay has no more (one sync run).
pub fn pull(data: &Path, pass: &SecretString) -> Result<Pulled, String> {
    let vault = open(data, pass)?;
    let transport = HttpTransport::new(Duration::from_secs(60));
    let result = sync::sync_once(&vault, &transport)
        .map_err(|e| e.to_string())
        .and_then(|report| {
            let summary = hq::summary(&vault).map_err(|e| e.to_string())?;
            Ok(Pulled { report, summary })
        });
    vault.lock();
    result
}

/// `amanat hq init`: prints the device id and the groups held.
pub fn run_init(
    data: PathBuf,
    relay: String,
    keys: Keys,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let passphrase = org::read_passphrase(passphrase_file.as_deref())?;
    let i = init(&InitOptions {
        data: data.clone(),
        relay,
        keys,
        passphrase,
        kdf: KdfParams::default(),
    })?;
    println!("HQ installation enrolled in {}", data.display());
    println!("device {}", i.device_id);
    println!("holds the identities of: {}", i.groups.join(", "));
    Ok(())
}

/// `amanat hq add-identity`: prints the groups held afterwards.
pub fn run_add_identities(
    data: PathBuf,
    files: Vec<PathBuf>,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let groups = add_identities(&data, &pass, &files)?;
    println!("holds the identities of: {}", groups.join(", "));
    Ok(())
}

/// `amanat hq pull`: prints what was received, in words an operator reads.
pub fn run_pull(data: PathBuf, passphrase_file: Option<PathBuf>) -> Result<(), String> {
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let p = pull(&data, &pass)?;
    let s = &p.summary;
    println!("applied {} new envelopes", p.report.pulled);
    println!(
        "kept {} originals: {} decrypted and verified, {} kept encrypted (no identity here opens \
         them), {} refused (quarantined)",
        s.originals, s.applied, s.held, s.quarantined
    );
    println!(
        "audit entries {}, withdrawal notices {}; identities held: {}",
        s.audit_entries,
        s.withdrawals,
        s.groups.join(", ")
    );
    if let Some(why) = p.report.interrupted {
        return Err(format!(
            "stopped early ({why:?}); nothing is lost, run `amanat hq pull` again"
        ));
    }
    Ok(())
}
