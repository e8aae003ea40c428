//! HQ operations on the organisation's keys: `org init`, `device enroll`, `device revoke`.
//!
//! Files in the organisation directory (HQ only; never on a relay or a device):
//!
//! ```text
//! org.pub                      public configuration: what `amanat serve --org-public` takes
//! org-signing.key.age          Ed25519 PKCS#8, age scrypt-encrypted under the passphrase
//! groups/<group>.key.age       age X25519 identity per recipient group, encrypted the same way
//! groups/<group>.<n>.key.age   a group's earlier identities after `org rotate-group` (n = 1, 2 …,
//!                              oldest first), kept to read what was sent to them
//! recipients-order.json        after a rotation: the org-signed `recipients` order naming every
//!                              group's key in force (public; what devices and HQ adopt)
//! ```

use age::secrecy::{ExposeSecret, SecretString};
use amanat_protocol::{DeviceRole, EnrollmentCode, OrgPublic, Revocation, RECIPIENT_GROUPS};
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) const SIGNING_KEY_FILE: &str = "org-signing.key.age";
/// File name of the public configuration inside an organisation directory.
pub const ORG_PUB_FILE: &str = "org.pub";

/// Reads the passphrase from a file (first line) or, without one, from standard input.
pub fn read_passphrase(file: Option<&Path>) -> Result<SecretString, String> {
    let text = match file {
        Some(p) => fs::read_to_string(p)
            .map_err(|e| format!("cannot read passphrase file: {}", e.kind()))?,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| format!("cannot read passphrase: {}", e.kind()))?;
            line
        }
    };
    let pass = text.lines().next().unwrap_or("").to_owned();
    if pass.chars().count() < 8 {
        return Err("passphrase must be at least 8 characters".into());
    }
    Ok(SecretString::from(pass))
}

pub(crate) fn encrypt(
    pass: &SecretString,
    plaintext: &[u8],
    log_n: Option<u8>,
) -> Result<Vec<u8>, String> {
    let mut r = age::scrypt::Recipient::new(pass.clone());
    if let Some(n) = log_n {
        r.set_work_factor(n);
    }
    age::encrypt(&r, plaintext).map_err(|e| format!("encryption failed: {e}"))
}

pub(crate) fn decrypt(pass: &SecretString, ciphertext: &[u8]) -> Result<Vec<u8>, String> {
    let id = age::scrypt::Identity::new(pass.clone());
    age::decrypt(&id, ciphertext).map_err(|_| "wrong passphrase or damaged key file".to_owned())
}

pub(crate) fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot create {}: {}", path.display(), e.kind()))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("cannot write {}: {}", path.display(), e.kind()))
}

/// Creates the organisation's keys in `dir` and returns the public configuration.
///
/// `scrypt_log_n` lowers age's passphrase work factor (tests only; the default is age's).
pub fn init(
    dir: &Path,
    pass: &SecretString,
    scrypt_log_n: Option<u8>,
) -> Result<OrgPublic, String> {
    if dir.join(ORG_PUB_FILE).exists() || dir.join(SIGNING_KEY_FILE).exists() {
        return Err(format!("{} already holds an organisation", dir.display()));
    }
    fs::create_dir_all(dir.join("groups"))
        .map_err(|e| format!("cannot create directory: {}", e.kind()))?;
    let pkcs8 = amanat_protocol::generate_ed25519_pkcs8().map_err(|e| e.to_string())?;
    let key = amanat_protocol::ed25519_from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
    let mut groups = BTreeMap::new();
    for g in RECIPIENT_GROUPS {
        let id = age::x25519::Identity::generate();
        groups.insert(g.to_owned(), id.to_public().to_string());
        let secret = id.to_string();
        let ct = encrypt(pass, secret.expose_secret().as_bytes(), scrypt_log_n)?;
        write_new(&dir.join("groups").join(format!("{g}.key.age")), &ct)?;
    }
    write_new(
        &dir.join(SIGNING_KEY_FILE),
        &encrypt(pass, &pkcs8, scrypt_log_n)?,
    )?;
    let mut org = OrgPublic {
        version: 1,
        signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
        groups,
        fingerprint: String::new(),
    };
    org.fingerprint = org.compute_fingerprint();
    let json = serde_json::to_vec_pretty(&org).map_err(|e| e.to_string())?;
    write_new(&dir.join(ORG_PUB_FILE), &json)?;
    Ok(org)
}

/// Loads and checks `org.pub`.
pub fn load_public(path: &Path) -> Result<OrgPublic, String> {
    let bytes =
        fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    OrgPublic::from_json(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn load_signing(dir: &Path, pass: &SecretString) -> Result<(OrgPublic, Ed25519KeyPair), String> {
    let org = load_public(&dir.join(ORG_PUB_FILE))?;
    let ct = fs::read(dir.join(SIGNING_KEY_FILE))
        .map_err(|e| format!("cannot read signing key: {}", e.kind()))?;
    let pkcs8 = decrypt(pass, &ct)?;
    let key = amanat_protocol::ed25519_from_pkcs8(&pkcs8).map_err(|e| e.to_string())?;
    if amanat_protocol::to_hex(key.public_key().as_ref()) != org.signing_public_key {
        return Err("signing key does not match org.pub".into());
    }
    Ok((org, key))
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Issues a one-time enrollment code valid for `expires_in` seconds.
pub fn enroll_code(
    dir: &Path,
    pass: &SecretString,
    expires_in: u64,
    role: DeviceRole,
) -> Result<EnrollmentCode, String> {
    enroll_code_for(dir, pass, expires_in, role, None)
}

/// Issues a one-time enrollment code; with `relay`, the relay URL is signed into it.
pub fn enroll_code_for(
    dir: &Path,
    pass: &SecretString,
    expires_in: u64,
    role: DeviceRole,
    relay: Option<&str>,
) -> Result<EnrollmentCode, String> {
    let (org, key) = load_signing(dir, pass)?;
    let expires_at = now_s().saturating_add(expires_in);
    match relay {
        None => EnrollmentCode::issue(&key, &org.fingerprint, expires_at, role),
        Some(url) => EnrollmentCode::issue_for_relay(&key, &org.fingerprint, expires_at, role, url),
    }
    .map_err(|e| match e {
        amanat_protocol::WireError::Malformed("relay_url") => {
            "the relay URL must be http(s)://host[:port] (12–256 characters, no spaces)".to_owned()
        }
        e => e.to_string(),
    })
}

/// The identity of recipient group `group`, decrypted with the organisation passphrase.
pub fn group_identity(
    dir: &Path,
    pass: &SecretString,
    group: &str,
) -> Result<SecretString, String> {
    if !RECIPIENT_GROUPS.contains(&group) {
        return Err(format!(
            "unknown group {group:?} (one of: {})",
            RECIPIENT_GROUPS.join(", ")
        ));
    }
    let ct = fs::read(dir.join("groups").join(format!("{group}.key.age")))
        .map_err(|e| format!("cannot read the {group} identity: {}", e.kind()))?;
    let plain = zeroize::Zeroizing::new(decrypt(pass, &ct)?);
    let text = std::str::from_utf8(&plain).map_err(|_| "damaged identity file".to_owned())?;
    Ok(SecretString::from(text.trim().to_owned()))
}

/// File (in an organisation directory) of the latest signed `recipients` order.
pub const RECIPIENTS_ORDER_FILE: &str = "recipients-order.json";

/// The earlier identity files of `group`, oldest first.
fn archived_files(dir: &Path, group: &str) -> Vec<PathBuf> {
    (1..)
        .map(|n| dir.join("groups").join(format!("{group}.{n}.key.age")))
        .take_while(|p| p.exists())
        .collect()
}

/// The latest `recipients` order of the organisation in `dir`, if a group was ever rotated.
pub fn recipients_order(dir: &Path) -> Result<Option<amanat_protocol::OrgOrder>, String> {
    match fs::read(dir.join(RECIPIENTS_ORDER_FILE)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|_| format!("{RECIPIENTS_ORDER_FILE} is damaged")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {RECIPIENTS_ORDER_FILE}: {}", e.kind())),
    }
}

/// The earlier identities of `group` (after rotations), oldest first.
pub(crate) fn archived_identities(
    dir: &Path,
    pass: &SecretString,
    group: &str,
) -> Result<Vec<SecretString>, String> {
    let mut out = Vec::new();
    for f in archived_files(dir, group) {
        out.push(read_identity_file(&f, pass)?);
    }
    Ok(out)
}

/// The path of `group`'s `n`-th earlier identity.
pub(crate) fn archived_path(dir: &Path, group: &str, n: usize) -> PathBuf {
    dir.join("groups").join(format!("{group}.{n}.key.age"))
}

/// Every identity `group` has had (earlier ones first, the one in force last) and, after a
/// rotation, the signed `recipients` order, as the lines of one text: what `org export-group`
/// hands to a holder and `hq init --org` installs (`sync::hq::import_identity` reads it).
pub fn group_bundle(dir: &Path, pass: &SecretString, group: &str) -> Result<SecretString, String> {
    let current = group_identity(dir, pass, group)?;
    let mut text = String::new();
    for id in archived_identities(dir, pass, group)? {
        text.push_str(id.expose_secret());
        text.push('\n');
    }
    text.push_str(current.expose_secret());
    text.push('\n');
    if let Some(order) = recipients_order(dir)? {
        text.push_str(amanat_core::sync::hq::BUNDLE_ORDER_PREFIX);
        text.push_str(&serde_json::to_string(&order).map_err(|e| e.to_string())?);
        text.push('\n');
    }
    let out = SecretString::from(text.clone());
    zeroize::Zeroize::zeroize(&mut text);
    Ok(out)
}

/// `amanat org rotate-group`: gives `group` a new identity (the one in force is kept as
/// `groups/<group>.<n>.key.age`) and signs a `recipients` order naming every group's key in
/// force, written to [`RECIPIENTS_ORDER_FILE`]. Returns the order and the new identity.
pub fn rotate_group(
    dir: &Path,
    pass: &SecretString,
    group: &str,
    scrypt_log_n: Option<u8>,
) -> Result<(amanat_protocol::OrgOrder, SecretString), String> {
    let (org, key) = load_signing(dir, pass)?;
    // Opens the key in force first: a wrong passphrase or damaged file changes nothing.
    group_identity(dir, pass, group)?;
    let mut groups = org.groups.clone();
    let mut serial = 0;
    if let Some(prev) = recipients_order(dir)? {
        let body: amanat_core::sync::orders::RecipientsBody = serde_json::from_str(&prev.body)
            .map_err(|_| format!("{RECIPIENTS_ORDER_FILE} is damaged"))?;
        groups.extend(body.groups);
        serial = body.serial;
    }
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let new = age::x25519::Identity::generate();
    groups.insert(group.to_owned(), new.to_public().to_string());
    let body = amanat_core::sync::orders::RecipientsBody {
        serial: now_ms.max(serial + 1),
        groups,
    };
    let order = amanat_protocol::OrgOrder::issue(
        &key,
        &org.fingerprint,
        now_s(),
        amanat_core::sync::orders::KIND_RECIPIENTS,
        serde_json::to_string(&body).map_err(|e| e.to_string())?,
    );
    let secret = new.to_string();
    let ct = encrypt(pass, secret.expose_secret().as_bytes(), scrypt_log_n)?;
    // New key beside the old, then the old one archived, then the new one in force, then the
    // order: each step a whole file, none overwritten.
    let current = dir.join("groups").join(format!("{group}.key.age"));
    let staged = dir.join("groups").join(format!("{group}.key.age.new"));
    let archived = archived_path(dir, group, archived_files(dir, group).len() + 1);
    write_new(&staged, &ct)?;
    fs::rename(&current, &archived)
        .and_then(|()| fs::rename(&staged, &current))
        .map_err(|e| format!("cannot replace the {group} key: {}", e.kind()))?;
    let order_json = serde_json::to_vec_pretty(&order).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("{RECIPIENTS_ORDER_FILE}.new"));
    let _ = fs::remove_file(&tmp);
    write_new(&tmp, &order_json)?;
    fs::rename(&tmp, dir.join(RECIPIENTS_ORDER_FILE))
        .map_err(|e| format!("cannot write {RECIPIENTS_ORDER_FILE}: {}", e.kind()))?;
    Ok((order, SecretString::from(secret.expose_secret().to_owned())))
}

/// Decrypts an identity file written by [`export_group`] (or a `groups/*.key.age` of `org init`)
/// with its holder's passphrase.
pub fn read_identity_file(path: &Path, pass: &SecretString) -> Result<SecretString, String> {
    let ct = fs::read(path).map_err(|e| format!("cannot read {}: {}", path.display(), e.kind()))?;
    let plain = zeroize::Zeroizing::new(decrypt(pass, &ct)?);
    let text = std::str::from_utf8(&plain).map_err(|_| "damaged identity file".to_owned())?;
    Ok(SecretString::from(text.trim().to_owned()))
}

/// `amanat org export-group`: writes group `group`'s identity to `to`, encrypted under the
/// holder's own passphrase (`to_pass`), so it can be handed to that holder alone (separation of
/// duties: docs/HQ.md). Refuses to overwrite a file.
pub fn export_group(
    dir: &Path,
    pass: &SecretString,
    group: &str,
    to: &Path,
    to_pass: &SecretString,
    scrypt_log_n: Option<u8>,
) -> Result<(), String> {
    // Every key the group has had, and the order naming the one in force.
    let bundle = group_bundle(dir, pass, group)?;
    let ct = encrypt(to_pass, bundle.expose_secret().as_bytes(), scrypt_log_n)?;
    write_new(to, &ct)
}

/// `amanat org export-group`: the organisation passphrase is the first line of
/// `passphrase_file` (or stdin), the holder's the first line of `to_passphrase_file` (or the next
/// stdin line).
pub fn run_export_group(
    dir: PathBuf,
    group: String,
    to: PathBuf,
    passphrase_file: Option<PathBuf>,
    to_passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let pass = read_passphrase(passphrase_file.as_deref())?;
    let to_pass = read_passphrase(to_passphrase_file.as_deref())?;
    export_group(&dir, &pass, &group, &to, &to_pass, None)?;
    println!(
        "the {group} identity is in {}, encrypted under its holder's passphrase",
        to.display()
    );
    Ok(())
}

/// Certifies an HQ installation's signing key (hex) as the organisation's: what its exports'
/// signatures rest on (`amanat verify`).
pub fn certify_hq(
    dir: &Path,
    pass: &SecretString,
    signing_public_key: &str,
) -> Result<amanat_protocol::HqCertificate, String> {
    let (org, key) = load_signing(dir, pass)?;
    amanat_protocol::HqCertificate::issue(&key, &org.fingerprint, signing_public_key, now_s())
        .map_err(|_| "the installation key must be 64 hex characters".to_owned())
}

/// `amanat org certify-hq`: prints the certificate as one line of JSON.
pub fn run_certify_hq(
    dir: PathBuf,
    key: String,
    passphrase_file: Option<PathBuf>,
) -> Result<(), String> {
    let pass = read_passphrase(passphrase_file.as_deref())?;
    let cert = certify_hq(&dir, &pass, key.trim())?;
    println!(
        "{}",
        serde_json::to_string(&cert).map_err(|e| e.to_string())?
    );
    Ok(())
}

/// Signs an organisation order of `kind` over `body` (a template's JSON source, …).
pub fn order(
    dir: &Path,
    pass: &SecretString,
    kind: &str,
    body: String,
) -> Result<amanat_protocol::OrgOrder, String> {
    let (org, key) = load_signing(dir, pass)?;
    Ok(amanat_protocol::OrgOrder::issue(
        &key,
        &org.fingerprint,
        now_s(),
        kind,
        body,
    ))
}

/// Opens the organisation key once and returns a signer of orders (`sync::hq::assign_case`
/// signs one per device).
pub fn order_signer(
    dir: &Path,
    pass: &SecretString,
) -> Result<impl Fn(&str, String) -> amanat_protocol::OrgOrder, String> {
    let (org, key) = load_signing(dir, pass)?;
    Ok(move |kind: &str, body: String| {
        amanat_protocol::OrgOrder::issue(&key, &org.fingerprint, now_s(), kind, body)
    })
}

/// Issues an org-signed revocation of `device_id`.
pub fn revoke(dir: &Path, pass: &SecretString, device_id: &str) -> Result<Revocation, String> {
    let (org, key) = load_signing(dir, pass)?;
    Ok(Revocation::issue(
        &key,
        &org.fingerprint,
        device_id,
        now_s(),
    ))
}

/// `amanat org init DIR`: prints the fingerprint.
pub fn run_init(
    dir: PathBuf,
    passphrase_file: Option<PathBuf>,
    scrypt_log_n: Option<u8>,
) -> Result<(), String> {
    let pass = read_passphrase(passphrase_file.as_deref())?;
    let org = init(&dir, &pass, scrypt_log_n)?;
    println!("organisation created in {}", dir.display());
    println!("fingerprint {}", org.fingerprint);
    Ok(())
}

/// `amanat device enroll`: prints the code as one line of JSON.
pub fn run_enroll(
    dir: PathBuf,
    passphrase_file: Option<PathBuf>,
    expires_in: u64,
    hq: bool,
    relay: Option<String>,
    qr: bool,
) -> Result<(), String> {
    let pass = read_passphrase(passphrase_file.as_deref())?;
    let role = if hq {
        DeviceRole::Hq
    } else {
        DeviceRole::Field
    };
    let code = enroll_code_for(&dir, &pass, expires_in, role, relay.as_deref())?;
    let json = serde_json::to_string(&code).map_err(|e| e.to_string())?;
    println!("{json}");
    if qr {
        // On standard error: standard output stays the one line of JSON scripts read.
        eprintln!("{}", code_qr(&json)?);
    }
    Ok(())
}

/// The enrollment code as a QR code drawn with Unicode half blocks (two modules per character,
/// quiet zone included), for a phone's camera to scan off the terminal.
pub fn code_qr(json: &str) -> Result<String, String> {
    let code = qrcode::QrCode::with_error_correction_level(json.as_bytes(), qrcode::EcLevel::L)
        .map_err(|e| format!("cannot draw the QR code: {e}"))?;
    Ok(code
        .render::<qrcode::render::unicode::Dense1x2>()
        .quiet_zone(true)
        .build())
}

/// `amanat device revoke`: prints the revocation as one line of JSON (POST it to the relay).
pub fn run_revoke(
    dir: PathBuf,
    passphrase_file: Option<PathBuf>,
    device_id: String,
) -> Result<(), String> {
    let pass = read_passphrase(passphrase_file.as_deref())?;
    let rev = revoke(&dir, &pass, &device_id)?;
    println!(
        "{}",
        serde_json::to_string(&rev).map_err(|e| e.to_string())?
    );
    Ok(())
}
