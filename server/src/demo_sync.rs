//! The sync part of `amanat demo`: an organisation (`org init`), the relay on loopback (in this
//! process), two field devices enrolled with codes that carry the relay URL, an HQ installation,
//! an interview submitted on device A, A → relay → HQ's routing, custody verification on both
//! devices, HQ's pull, export and verify, the case referred by HQ to device B (an org-signed
//! order sealed to B) with a follow-up travelling back to A, retention, and revocation.
//!
//! Prints counts, kinds and ids only, never record content (the records are synthetic anyway).

use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::records::attachments::{self, AttachmentWriter};
use amanat_core::records::cases;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews;
use amanat_core::sync::{self, envelope, Request, Transport};
use amanat_core::{KdfParams, Passcode, SoftwareKeyProvider, Vault};
use amanat_protocol::{DeviceRole, EnrollRequest, PullResponse};
use amanat_server::relay::{self, sqlite::SqliteStorage, RelayConfig};
use amanat_server::{hq, org};
use amanat_transport::HttpTransport;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ORG_PASSPHRASE: &str = "demo organisation passphrase";
const DEVICE_PASSCODE: &str = "271828";

/// What the sync demo did, for the final summary.
pub struct SyncSummary {
    /// Envelopes device A pushed.
    pub pushed: u64,
    /// Envelopes device B pulled and applied.
    pub pulled_by_b: u64,
    /// Envelopes routed to HQ.
    pub at_hq: usize,
}

fn device(dir: &Path, name: &str) -> Result<Vault, Box<dyn Error>> {
    let provider = Arc::new(SoftwareKeyProvider::new(dir.join(format!("{name}.key"))));
    Ok(Vault::create(
        dir.join(name),
        &Passcode::from(DEVICE_PASSCODE),
        provider,
        KdfParams::default(),
    )?)
}

/// A signed request from a bare key (the HQ installation: its core side arrives with the HQ issue).
fn raw(
    http: &HttpTransport,
    url: &str,
    key: &Ed25519KeyPair,
    method: &str,
    path: &str,
    body: Vec<u8>,
) -> Result<amanat_core::sync::Response, Box<dyn Error>> {
    let h = amanat_protocol::sign_request(key, method, path, relay::now_ms(), &body)?;
    let mut headers: Vec<(String, String)> = h
        .pairs()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    headers.push(("content-type".into(), "application/json".into()));
    Ok(http.send(&Request {
        method: method.into(),
        base_url: url.into(),
        path: path.into(),
        headers,
        body,
    })?)
}

/// Runs the sync story in `base/sync` (removed first if a previous demo left it).
pub fn run(base: &Path) -> Result<SyncSummary, Box<dyn Error>> {
    let dir = base.join("sync");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let t = Instant::now();
    let pass = age::secrecy::SecretString::from(ORG_PASSPHRASE.to_string());
    // A low scrypt work factor keeps the demo fast; real organisations keep age's default.
    let org_dir = dir.join("org");
    let org_public = org::init(&org_dir, &pass, Some(12))?;
    println!(
        "    organisation created (org init): fingerprint {}…",
        org_public.fingerprint.get(..16).unwrap_or("")
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    std::fs::create_dir_all(dir.join("relay"))?;
    let storage = SqliteStorage::open(&dir.join("relay"))?;
    let running = rt.block_on(relay::start(
        "127.0.0.1:0".parse()?,
        org_public,
        RelayConfig::default(),
        storage,
    ))?;
    let url = format!("http://{}", running.addr);
    println!("    relay listening on {url} (loopback only)");
    let result = story(&dir, &org_dir, &pass, &url);
    let _ = rt.block_on(running.stop());
    let summary = result?;
    println!("    sync story done in {} ms", t.elapsed().as_millis());
    Ok(summary)
}

fn story(
    dir: &Path,
    org_dir: &Path,
    pass: &age::secrecy::SecretString,
    url: &str,
) -> Result<SyncSummary, Box<dyn Error>> {
    let http = HttpTransport::new(Duration::from_secs(20));
    // Two field devices, each enrolled with a code that carries the relay URL (org-signed).
    let a = device(dir, "device-a")?;
    let b = device(dir, "device-b")?;
    let mut enrolled = Vec::new();
    for v in [&a, &b] {
        let code = org::enroll_code_for(org_dir, pass, 600, DeviceRole::Field, Some(url))?;
        let e = sync::enroll_with_code(v, &serde_json::to_string(&code)?, &http)?;
        enrolled.push(e);
    }
    let (ea, eb) = (&enrolled[0], &enrolled[1]);
    println!(
        "    devices enrolled: A {}…, B {}… (org.pub fingerprint checked against the code)",
        ea.device_id.get(..8).unwrap_or(""),
        eb.device_id.get(..8).unwrap_or("")
    );
    // HQ's installation: an org-signed `hq` code; it pulls what is routed to `hq`.
    let hq_key = amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8()?)?;
    let code = org::enroll_code_for(org_dir, pass, 600, DeviceRole::Hq, Some(url))?;
    let body = serde_json::to_vec(&EnrollRequest {
        code,
        signing_public_key: amanat_protocol::to_hex(hq_key.public_key().as_ref()),
        age_recipient: age::x25519::Identity::generate().to_public().to_string(),
    })?;
    if raw(&http, url, &hq_key, "POST", "/v1/enroll", body)?.status != 200 {
        return Err("HQ enrollment refused".into());
    }

    // One case on A, offline: consent for interview, audio and caseworkers (B gets the case
    // later, by HQ's referral); an interview in Uzbek with a recorded clip, one in Russian.
    let case = cases::create_case(&a)?;
    consent::record_consent(
        &a,
        case.id,
        "demo-worker",
        "uz",
        &[Scope::Interview, Scope::Audio, Scope::ShareCaseworkers],
    )?;
    let batch: Answers = [
        ("interpreter_used", AnswerValue::YesNo(false)),
        ("first_contact", AnswerValue::Choice("messaging_app".into())),
        ("hours_per_day", AnswerValue::Integer(12)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let i = interviews::start(&a, case.id, "trafficking_screening", 1, "uz")?;
    interviews::save_answers(&a, &i.id, &batch)?;
    let clip = crate::demo::synthetic_audio();
    let mut w = AttachmentWriter::open(
        &a,
        &i.id,
        "narrative_audio",
        "audio/wav",
        attachments::DEFAULT_MAX_BYTES,
    )?;
    for frame in clip.chunks(640) {
        w.write(frame)?;
    }
    let audio = w.finish()?;
    let submitted = interviews::submit(&a, &i.id)?;
    let ru = interviews::start(&a, case.id, "trafficking_screening", 1, "ru")?;
    interviews::save_answers(&a, &ru.id, &batch)?;
    interviews::submit(&a, &ru.id)?;
    println!(
        "    device A, offline: case opened, consent recorded, interviews submitted in Uzbek (with \
         a {} KiB audio clip, encrypted as it was recorded) and Russian",
        audio.size / 1024
    );

    let ra = sync::sync_once(&a, &http)?;
    println!(
        "    sync A: pushed {} envelopes ({} bytes up), {} pending",
        ra.pushed, ra.bytes_up, ra.pending
    );
    let rb = sync::sync_once(&b, &http)?;
    println!(
        "    sync B: pulled {} (the case is not B's), told HQ its keys for later referrals",
        rb.pulled
    );

    // HQ's routing: what reached `hq`, by kind, opened with the caseworkers group key.
    let resp = raw(
        &http,
        url,
        &hq_key,
        "GET",
        "/v1/envelopes?after=0&limit=1000",
        Vec::new(),
    )?;
    let page: PullResponse = serde_json::from_slice(&resp.body)?;
    let ct = std::fs::read(org_dir.join("groups").join("caseworkers.key.age"))?;
    let plain = age::decrypt(&age::scrypt::Identity::new(pass.clone()), &ct)?;
    let caseworkers: age::x25519::Identity = std::str::from_utf8(&plain)?
        .parse()
        .map_err(|_| "bad group identity")?;
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for env in &page.envelopes {
        let bytes = base64::engine::general_purpose::STANDARD.decode(&env.payload)?;
        let kind = match envelope::open(&bytes, &caseworkers) {
            Ok(r) if envelope::verify(&r).is_ok() => r.kind,
            Ok(_) => "bad signature".into(),
            Err(_) => "not for caseworkers".into(),
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let list: Vec<String> = kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "    HQ routing: {} envelopes for hq, verified and opened by the caseworkers group: {}",
        page.envelopes.len(),
        list.join(", ")
    );
    for (name, v) in [("A", &a), ("B", &b)] {
        let report = sync::verify_custody(v)?;
        println!(
            "    custody on {name}: {} audit entries, {} interviews, {} applied envelopes, {} failures",
            report.audit_entries,
            report.interviews,
            report.applied_envelopes,
            report.failures.len()
        );
        if !report.is_clean() {
            return Err("custody verification failed".into());
        }
    }
    let hq_dir = hq_story(dir, org_dir, pass, url)?;
    let pulled_by_b = referral_story(&a, &b, eb, &hq_dir, org_dir, pass, &http, &case, &submitted)?;
    retention_story(&a, &hq_dir, org_dir, pass, &http)?;
    // The organisation revokes device B (lost, say): on its next contact it wipes itself.
    let revocation = org::revoke(org_dir, pass, &eb.device_id)?;
    let resp = http.send(&Request {
        method: "POST".into(),
        base_url: url.to_string(),
        path: "/v1/revocations".into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: serde_json::to_vec(&revocation)?,
    })?;
    if resp.status != 200 {
        return Err("the relay refused the revocation".into());
    }
    let wiped = matches!(sync::sync_once(&b, &http), Err(sync::SyncError::Revoked))
        && !dir
            .join("device-b")
            .join("vault")
            .join("keyslots.json")
            .exists();
    println!(
        "    device B revoked by the organisation: on its next contact it wiped itself: {}",
        if wiped { "yes" } else { "NO" }
    );
    if !wiped {
        return Err("the revoked device did not wipe".into());
    }
    a.lock();
    b.lock();
    Ok(SyncSummary {
        pushed: ra.pushed,
        pulled_by_b,
        at_hq: page.envelopes.len(),
    })
}

/// HQ's side (docs/HQ.md): an installation holding the caseworkers key pulls, keeps every
/// original, decrypts what consent shared with caseworkers, exports it and verifies the export;
/// one holding only the research key (no research consent here) decrypts nothing.
fn hq_story(
    dir: &Path,
    org_dir: &Path,
    pass: &age::secrecy::SecretString,
    url: &str,
) -> Result<std::path::PathBuf, Box<dyn Error>> {
    let install = |name: &str, group: &str| {
        let data = dir.join(name);
        hq::init(&hq::InitOptions {
            data: data.clone(),
            relay: url.to_string(),
            keys: hq::Keys::Org {
                dir: org_dir.to_path_buf(),
                groups: vec![group.to_string()],
            },
            passphrase: pass.clone(),
            kdf: KdfParams::default(),
        })
        .map(|_| data)
    };
    let caseworkers = install("hq-caseworkers", "caseworkers")?;
    let p = hq::pull(&caseworkers, pass)?;
    println!(
        "    HQ (caseworkers key): pulled {}, kept {} originals: {} decrypted and verified, {} kept \
         encrypted",
        p.report.pulled, p.summary.originals, p.summary.applied, p.summary.held
    );
    let vault = hq::open(&caseworkers, pass)?;
    let out = dir.join("export-caseworkers");
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let exported = amanat_core::hq::export(
        &vault,
        &out,
        &amanat_core::hq::ExportOptions {
            group: "caseworkers".into(),
            deidentified: false,
            since_ms: None,
            now_ms,
            case_code: None,
        },
        None,
    );
    vault.lock();
    let exported = exported?;
    println!(
        "    HQ export for caseworkers: {} interviews, {} case, {} audio clip decrypted, signed \
         manifest",
        exported.interviews, exported.cases, exported.attachments
    );
    let org_public = org::load_public(&org_dir.join(org::ORG_PUB_FILE))?;
    let report = amanat_core::hq::verify_export(&out, Some(&org_public))?;
    println!(
        "    amanat verify: {} files, {} interviews, {}",
        report.files,
        report.interviews.len(),
        if report.ok() {
            "every signature, hash and chain holds".to_string()
        } else {
            format!("{} problems", report.findings.len())
        }
    );
    if !report.ok() {
        return Err("export verification failed".into());
    }
    let research = install("hq-research", "research")?;
    let r = hq::pull(&research, pass)?;
    println!(
        "    HQ (research key only, no research consent): {} decrypted, {} kept encrypted",
        r.summary.applied, r.summary.held
    );
    Ok(caseworkers)
}

/// HQ refers the case to device B for a follow-up (docs/HQ.md, "Referring a case"): B receives it
/// whole inside an order sealed to it, adds a note, and the note reaches A. Returns how many
/// records B applied.
#[allow(clippy::too_many_arguments)]
fn referral_story(
    a: &Vault,
    b: &Vault,
    eb: &sync::Enrollment,
    hq_dir: &Path,
    org_dir: &Path,
    pass: &age::secrecy::SecretString,
    http: &HttpTransport,
    case: &cases::Case,
    submitted: &interviews::Interview,
) -> Result<u64, Box<dyn Error>> {
    let vault = hq::open(hq_dir, pass)?;
    let referred = (|| -> Result<_, Box<dyn Error>> {
        let sign = org::order_signer(org_dir, pass)?;
        Ok(sync::hq::assign_case(
            &vault,
            http,
            case.code.as_str(),
            std::slice::from_ref(&eb.device_id),
            &[],
            &sign,
        )?)
    })();
    vault.lock();
    let referred = referred?;
    sync::sync_once(a, http)?;
    let rb = sync::sync_once(b, http)?;
    let on_b = interviews::get(b, &submitted.id)?;
    println!(
        "    HQ referred the case to device B (order signed by the organisation, sealed to B): \
         B received {} records, quarantined {}; interview on B has A's hash: {}",
        referred.records,
        rb.quarantined,
        if on_b.hash == submitted.hash {
            "yes"
        } else {
            "NO"
        }
    );
    cases::set_field(b, case.id, "follow_up", "visited")?;
    sync::sync_once(b, http)?;
    sync::sync_once(a, http)?;
    let back = cases::get_case(a, case.id)?
        .fields
        .get("follow_up")
        .and_then(|f| f.current().map(str::to_string));
    println!(
        "    device B's follow-up note reached device A: {}",
        if back.as_deref() == Some("visited") {
            "yes"
        } else {
            "NO"
        }
    );
    if on_b.hash != submitted.hash || back.as_deref() != Some("visited") {
        return Err("the referral did not carry the case both ways".into());
    }
    Ok(referred.records)
}

/// HQ acknowledges what it holds and the organisation sets a 30-day retention; device A, its
/// clock moved 31 days on, deletes its acknowledged copy (docs/HQ.md, "Letting phones forget").
fn retention_story(
    a: &Vault,
    hq_dir: &Path,
    org_dir: &Path,
    pass: &age::secrecy::SecretString,
    http: &HttpTransport,
) -> Result<(), Box<dyn Error>> {
    let vault = hq::open(hq_dir, pass)?;
    let sent = (|| -> Result<u64, Box<dyn Error>> {
        let order = org::order(
            org_dir,
            pass,
            sync::orders::KIND_RETENTION,
            r#"{"days":30}"#.into(),
        )?;
        let devices = sync::hq::known_devices(&vault)?;
        sync::hq::send_order(&vault, http, &order, &devices)?;
        Ok(sync::hq::send_receipts(&vault, http)?)
    })();
    vault.lock();
    let sent = sent?;
    sync::sync_once(a, http)?;
    let later = a.clock().now_ms() + 31 * 86_400_000;
    let purged = sync::retention::purge_due(a, later)?;
    println!(
        "    HQ acknowledged {sent} records, retention 30 days: device A, 31 days on, deleted {} \
         acknowledged interviews and {} recordings (drafts and unacknowledged records stay)",
        purged.interviews, purged.attachments
    );
    if !sync::verify_custody(a)?.is_clean() {
        return Err("custody failed after the purge".into());
    }
    Ok(())
}
