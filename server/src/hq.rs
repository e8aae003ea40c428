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
    /// Its signing key (hex): what `amanat org certify-hq --key` certifies.
    pub signing_public_key: String,
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
                // Every key the group has had (after rotations), and the order naming the one
                // in force.
                ids.push(org::group_bundle(dir, &opts.passphrase, g)?);
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
        // Installed from the organisation directory: certified at once (the org key is open).
        if let Keys::Org { dir, .. } = &opts.keys {
            let (_, key) = hq::signing_public_key(&vault).map_err(|e| e.to_string())?;
            let cert = org::certify_hq(dir, &opts.passphrase, &key)?;
            hq::set_certificate(&vault, &cert).map_err(|e| e.to_string())?;
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
            signing_public_key: e.signing_public_key,
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
/// installation, then opens what was kept encrypted and these identities now open; returns the
/// groups now held and how many kept envelopes were applied. Each file is checked against the
/// organisation's `org.pub` before anything is stored; a file of another organisation stores
/// nothing.
pub fn add_identities(
    data: &Path,
    pass: &SecretString,
    files: &[PathBuf],
) -> Result<(Vec<String>, u64), String> {
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
        // What arrived before for these groups is judged again now.
        .and_then(|()| hq::reopen_held(&vault).map_err(|e| e.to_string()))
        .and_then(|reopened| {
            let s = hq::summary(&vault).map_err(|e| e.to_string())?;
            Ok((s.groups, reopened))
        });
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
    /// Devices the rotated group keys were sent to (those that had not had them).
    pub rotated_sent: u64,
}

/// Pulls everything routed to HQ until the relay has no more (one sync run).
pub fn pull(data: &Path, pass: &SecretString) -> Result<Pulled, String> {
    let vault = open(data, pass)?;
    let transport = HttpTransport::new(Duration::from_secs(60));
    let result = sync::sync_once(&vault, &transport)
        .map_err(|e| e.to_string())
        .and_then(|report| {
            // A device enrolled after a rotation starts on `org.pub`'s keys: hand it the order.
            // What was pulled is kept whatever happens here: a failed hand-on is retried by the
            // next pull (nothing is marked delivered until the relay took it).
            let rotated_sent = if report.interrupted.is_none() {
                match hq::deliver_standing(&vault, &transport) {
                    Ok(n) => n,
                    Err(e) => {
                        eprintln!("note: the rotated group keys were not sent this time ({e})");
                        0
                    }
                }
            } else {
                0
            };
            let summary = hq::summary(&vault).map_err(|e| e.to_string())?;
            Ok(Pulled {
                report,
                summary,
                rotated_sent,
            })
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
    println!("signing key {}", i.signing_public_key);
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
    let (groups, reopened) = add_identities(&data, &pass, &files)?;
    println!("holds the identities of: {}", groups.join(", "));
    println!("{reopened} envelopes kept encrypted until now were opened, verified and applied");
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
    if p.rotated_sent > 0 {
        println!(
            "sent the organisation's rotated group keys to {} devices that did not have them",
            p.rotated_sent
        );
    }
    if let Some(why) = p.report.interrupted {
        return Err(format!(
            "stopped early ({why:?}); nothing is lost, run `amanat hq pull` again"
        ));
    }
    Ok(())
}

/// `amanat hq certify`: stores the organisation's certificate of this installation (from
/// `amanat org certify-hq`), checked against the organisation and the installation's key.
pub fn run_certify(
    data: PathBuf,
    certificate: PathBuf,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let text = std::fs::read_to_string(&certificate)
        .map_err(|e| format!("cannot read {}: {}", certificate.display(), e.kind()))?;
    let cert: amanat_protocol::HqCertificate =
        serde_json::from_str(text.trim()).map_err(|_| "the certificate is malformed".to_owned())?;
    let vault = open(&data, &pass)?;
    let result = hq::set_certificate(&vault, &cert).map_err(|e| e.to_string());
    vault.lock();
    result?;
    println!("certificate stored: exports from this installation are signed for the organisation");
    Ok(())
}

/// A progress bar on standard error for long exports.
struct Bar;

impl amanat_core::hq::ExportProgress for Bar {
    fn progress(&self, done: u64, total: u64) {
        let width = 30u64;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        eprint!(
            "\rexporting [{}{}] {done}/{total}",
            "#".repeat(filled as usize),
            ".".repeat((width - filled) as usize)
        );
        if done == total {
            eprintln!();
        }
    }
}

/// Parses `--since`: a date (`YYYY-MM-DD`, UTC midnight) or milliseconds since the epoch.
pub fn parse_since(text: &str) -> Result<u64, String> {
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(ms);
    }
    let bad = || format!("--since {text:?}: expected YYYY-MM-DD or milliseconds");
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return Err(bad());
    };
    let (y, m, d): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Days from the civil date (Howard Hinnant's algorithm), proleptic Gregorian, UTC.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok((days as u64) * 86_400_000)
}

/// `amanat export`: writes the group's export and prints what it holds.
pub fn run_export(
    data: PathBuf,
    group: String,
    out: PathBuf,
    deidentified: bool,
    since: Option<String>,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let since_ms = since.as_deref().map(parse_since).transpose()?;
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let vault = open(&data, &pass)?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let opts = amanat_core::hq::ExportOptions {
        group: group.clone(),
        deidentified,
        since_ms,
        now_ms,
        case_code: None,
    };
    let result =
        amanat_core::hq::export(&vault, &out, &opts, Some(&Bar)).map_err(|e| e.to_string());
    vault.lock();
    let r = result?;
    println!(
        "exported for {group}: {} interview versions, {} attachments, {} cases into {}",
        r.interviews,
        r.attachments,
        r.cases,
        out.display()
    );
    println!(
        "{} versions held here were not exported (not shared with {group}, consent withdrawn, \
         or before --since)",
        r.not_shared
    );
    Ok(())
}

fn when(ms: Option<u64>) -> String {
    match ms {
        Some(ms) => format!("{ms} ms since 1970 (device clock)"),
        None => "—".into(),
    }
}

/// The custody report `amanat verify` prints for the export in `dir` (the review console shows
/// the same text).
pub fn verify_text(dir: &Path, report: &amanat_core::hq::VerifyReport) -> String {
    let mut o = String::new();
    macro_rules! out {
        ($($t:tt)*) => {{
            o.push_str(&format!($($t)*));
            o.push('\n');
        }};
    }
    out!("Custody report for {}", dir.display());
    out!("organisation {}", report.organisation);
    out!(
        "exported for group {}{} by installation {}",
        report.group,
        if report.deidentified {
            " (de-identified)"
        } else {
            ""
        },
        report.hq_device
    );
    out!("{} files checked", report.files);
    for i in &report.interviews {
        out!("");
        out!(
            "interview {} — case {} — {}",
            i.interview_id,
            i.case_code,
            if i.verified { "VERIFIED" } else { "FAILED" }
        );
        out!("  recorded on device {}", i.device);
        if let Some(w) = &i.worker {
            out!("  consent recorded by {w}");
        }
        out!("  template {} in {}", i.template, i.language);
        out!("  started {}", when(Some(i.started_at_ms)));
        out!("  submitted {}", when(i.submitted_at_ms));
        match &i.amends {
            None => out!("  original version"),
            Some(p) => out!(
                "  amendment {} of version {p}; changed: {}",
                i.amendment,
                if i.amended_questions.is_empty() {
                    "nothing".to_string()
                } else {
                    i.amended_questions.join(", ")
                }
            ),
        }
        out!("  attachments checked: {}", i.attachments);
    }
    out!("");
    if report.ok() {
        out!("RESULT: every signature, hash and chain holds");
    } else {
        out!("RESULT: {} problems", report.findings.len());
        for f in &report.findings {
            out!("  {}: {}", f.item, f.reason);
        }
    }
    o
}

/// `amanat verify`: prints the custody report (or JSON); fails naming every failed item.
pub fn run_verify(dir: PathBuf, json: bool, org_pub: Option<PathBuf>) -> Result<(), String> {
    let expected = org_pub.as_deref().map(org::load_public).transpose()?;
    let report =
        amanat_core::hq::verify_export(&dir, expected.as_ref()).map_err(|e| e.to_string())?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", verify_text(&dir, &report));
    }
    if report.ok() {
        Ok(())
    } else {
        Err(format!(
            "verification failed: {}",
            report
                .findings
                .iter()
                .map(|f| f.item.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// `amanat template publish`: signs a template with the organisation key and sends it to the
/// devices (every device this installation has received from, or those named). Devices install
/// it on their next sync after checking the signature; interviews in progress keep their version.
pub fn run_publish_template(
    file: PathBuf,
    org_dir: PathBuf,
    data: PathBuf,
    devices: Vec<String>,
    passphrase_file: Option<PathBuf>,
    hq_passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let json = std::fs::read_to_string(&file)
        .map_err(|e| format!("cannot read {}: {}", file.display(), e.kind()))?;
    let template = amanat_core::forms::Template::from_json(&json)
        .map_err(|e| format!("the template does not validate: {e}"))?;
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let hq_pass = match hq_passphrase_file {
        Some(f) => org::read_passphrase(Some(&f))?,
        None => pass.clone(),
    };
    let order = org::order(&org_dir, &pass, sync::orders::KIND_TEMPLATE, json)?;
    let vault = open(&data, &hq_pass)?;
    let transport = HttpTransport::new(Duration::from_secs(60));
    let result = (|| -> Result<(usize, u64), String> {
        let devices = if devices.is_empty() {
            hq::known_devices(&vault).map_err(|e| e.to_string())?
        } else {
            devices
        };
        if devices.is_empty() {
            return Err("no device to send to (none has synced with this installation yet)".into());
        }
        let sent =
            hq::send_order(&vault, &transport, &order, &devices).map_err(|e| e.to_string())?;
        Ok((devices.len(), sent))
    })();
    vault.lock();
    let (n, sent) = result?;
    println!(
        "template {} version {} signed and sent to {n} devices ({sent} envelopes); each installs \
         it on its next sync",
        template.id(),
        template.version()
    );
    Ok(())
}

/// `amanat hq refer`: refers a case to field devices (`--to`) or takes it back from them
/// (`--revoke`), with orders signed by the organisation key and sealed to each device
/// (`sync::hq::assign_case`).
pub fn run_refer(
    case: String,
    to: Vec<String>,
    revoke: Vec<String>,
    org_dir: PathBuf,
    data: PathBuf,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    if to.is_empty() && revoke.is_empty() {
        return Err("name a device with --to (refer) or --revoke (take the case back)".into());
    }
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let sign = org::order_signer(&org_dir, &pass)?;
    let vault = open(&data, &pass)?;
    let transport = HttpTransport::new(Duration::from_secs(60));
    let result =
        hq::assign_case(&vault, &transport, &case, &to, &revoke, &sign).map_err(|e| e.to_string());
    vault.lock();
    let done = result?;
    println!(
        "case {} now shared by {} devices ({}); {} devices told, {} records handed to the \
         devices joining; each obeys on its next sync",
        case.trim(),
        done.devices.len(),
        done.devices.join(", "),
        done.told.len(),
        done.records
    );
    Ok(())
}

/// `amanat org rotate-group`: a new key for `group` (a holder left); with `--data`, the HQ
/// installation adopts it, keeps the old key, holds the new one if it held the group, and sends
/// the signed order to every device it knows (later ones get it on `hq pull`).
pub fn run_rotate_group(
    group: String,
    org_dir: PathBuf,
    data: Option<PathBuf>,
    passphrase_file: Option<PathBuf>,
    scrypt_log_n: Option<u8>,
) -> Result<(), String> {
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let (order, identity) = org::rotate_group(&org_dir, &pass, &group, scrypt_log_n)?;
    println!(
        "{group}: new key in force (the old one kept in {}/groups); order signed into {}",
        org_dir.display(),
        org::RECIPIENTS_ORDER_FILE
    );
    if let Some(data) = data {
        let vault = open(&data, &pass)?;
        let transport = HttpTransport::new(Duration::from_secs(60));
        let result = (|| -> Result<(bool, u64), String> {
            hq::adopt_order(&vault, &order).map_err(|e| e.to_string())?;
            let held = hq::summary(&vault)
                .map_err(|e| e.to_string())?
                .groups
                .contains(&group);
            if held {
                hq::import_group_identity(&vault, &group, identity.expose_secret())
                    .map_err(|e| e.to_string())?;
            }
            let sent = hq::deliver_standing(&vault, &transport).map_err(|e| e.to_string())?;
            Ok((held, sent))
        })();
        vault.lock();
        let (held, sent) = result?;
        println!(
            "installation {}: {}; order sent to {sent} devices (each switches on its next sync; \
             devices heard from later get it on `amanat hq pull`)",
            data.display(),
            if held {
                "holds the new key beside the old one"
            } else {
                "does not hold this group"
            }
        );
    }
    println!(
        "give the remaining holders of {group} a new file: amanat org export-group {group} \
         (it holds the old keys too, to read what was sent before)"
    );
    Ok(())
}

/// `amanat hq devices`: the field devices this installation has heard from, and whether it
/// holds the profile a referral is sealed to.
pub fn run_devices(data: PathBuf, passphrase_file: Option<PathBuf>) -> Result<(), String> {
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let vault = open(&data, &pass)?;
    let result = hq::devices(&vault).map_err(|e| e.to_string());
    vault.lock();
    for d in result? {
        let state = if d.profile {
            "can receive referrals"
        } else {
            "no profile yet"
        };
        println!("{}  {state}", d.device_id);
    }
    Ok(())
}

/// `amanat hq ack`: sends each device a signed receipt for what this installation holds of it.
pub fn run_ack(data: PathBuf, passphrase_file: Option<PathBuf>) -> Result<(), String> {
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let vault = open(&data, &pass)?;
    let transport = HttpTransport::new(Duration::from_secs(60));
    let result = hq::send_receipts(&vault, &transport).map_err(|e| e.to_string());
    vault.lock();
    let n = result?;
    println!("acknowledged {n} records to the devices that sent them");
    Ok(())
}

/// `amanat hq retention`: signs a retention period with the organisation key and sends it to
/// the devices this installation knows.
pub fn run_retention(
    days: u64,
    org_dir: PathBuf,
    data: PathBuf,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    if !(1..=3650).contains(&days) {
        return Err("--days must be between 1 and 3650".into());
    }
    let pass = org::read_passphrase(passphrase_file.as_deref())?;
    let order = org::order(
        &org_dir,
        &pass,
        sync::orders::KIND_RETENTION,
        format!("{{\"days\":{days}}}"),
    )?;
    let vault = open(&data, &pass)?;
    let transport = HttpTransport::new(Duration::from_secs(60));
    let result = (|| -> Result<usize, String> {
        let devices = hq::known_devices(&vault).map_err(|e| e.to_string())?;
        hq::send_order(&vault, &transport, &order, &devices).map_err(|e| e.to_string())?;
        Ok(devices.len())
    })();
    vault.lock();
    let n = result?;
    println!(
        "retention of {days} days signed and sent to {n} devices: each deletes what HQ \
         acknowledged once that long has passed since the receipt arrived"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_since;

    #[test]
    fn since_reads_utc_dates_and_milliseconds_and_refuses_the_rest() {
        assert_eq!(parse_since("1970-01-01").unwrap(), 0);
        assert_eq!(parse_since("2000-02-29").unwrap(), 951_782_400_000);
        assert_eq!(parse_since("2000-03-01").unwrap(), 951_868_800_000);
        assert_eq!(parse_since("2026-11-29").unwrap(), 1_795_910_400_000);
        assert_eq!(parse_since("1795910400000").unwrap(), 1_795_910_400_000);
        for bad in [
            "",
            "2026-13-01",
            "2026-00-10",
            "1969-12-31",
            "2026-11",
            "yesterday",
            "-5",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
