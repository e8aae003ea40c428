//! `amanat demo`: the field-to-HQ story, told on the embedded default with synthetic data.
//!
//! At this stage: create a vault, store, lock, reopen, a wrong passcode refused, the right one
//! accepted, a blind-index lookup; a case with consent and a screening interview in Uzbek
//! (validation error caught, consent gate, submit, amendment chain, audit log); a scan proving no
//! plaintext reached the disk; sync through a relay on loopback between two enrolled devices and
//! HQ's routing (`demo_sync`); a duress unlock. Everything printed is synthetic demo data.

use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::journal::audit;
use amanat_core::records::attachments::{self, AttachmentReader, AttachmentWriter};
use amanat_core::records::cases;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews;
use amanat_core::store::StoreError;
use amanat_core::{Collection, KdfParams, Passcode, SoftwareKeyProvider, Vault, VaultError};
use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const NOTES: Collection = Collection::new("demo_notes");
const PASSCODE: &str = "482916";
const DURESS: &str = "000111";

/// Synthetic records: (case code, note). Nothing here is about a real person.
const RECORDS: &[(&str, &str)] = &[
    (
        "K7Q-2MX",
        "Demo note: recruited through a job advert on a messaging app.",
    ),
    (
        "R4T-9PB",
        "Demo note: passport held by the employer for eleven months.",
    ),
    (
        "W2N-6HC",
        "Demo note: wages withheld, debt for travel said to grow each month.",
    ),
];

/// Synthetic narrative for the demo interview (Uzbek, Latin script).
const NARRATIVE: &str =
    "Namuna: ish haqida Telegram orqali xabar keldi; pasportimni ish beruvchi olib qo‘ydi.";

fn answers(items: Vec<(&str, AnswerValue)>) -> Answers {
    items.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

/// Runs the demo in `data_dir` (kept) or in a temporary directory (removed).
pub fn run(data_dir: Option<PathBuf>) -> Result<(), Box<dyn Error>> {
    let tmp;
    let base = match data_dir {
        Some(dir) => dir,
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    let vault_dir = base.join("vault");
    let key_file = base.join("keystore").join("device.key");
    let provider = Arc::new(SoftwareKeyProvider::new(&key_file));
    if Vault::exists(&vault_dir) {
        println!(
            "A previous demo vault is in {}; wiping it first.",
            vault_dir.display()
        );
        Vault::wipe(&vault_dir, provider.clone())?;
    }

    println!("Amanat demo — vault on the embedded default (SQLite file + software key provider)");
    println!("data directory: {}", base.display());

    step(
        1,
        "Create a vault (Argon2id m=64 MiB, t=3, p=1; software key provider)",
    );
    let t = Instant::now();
    let vault = Vault::create(
        &vault_dir,
        &Passcode::from(PASSCODE),
        provider.clone(),
        KdfParams::default(),
    )?;
    println!("    created in {} ms", t.elapsed().as_millis());

    step(
        2,
        "Store records, each sealed with ChaCha20-Poly1305 and indexed by a blind case code",
    );
    let store = vault.store()?;
    store.write(|tx| {
        for (code, note) in RECORDS {
            let id = tx.insert(NOTES, note.as_bytes())?;
            tx.set_index(NOTES, "case_code", id, code.as_bytes())?;
        }
        Ok::<_, StoreError>(())
    })?;
    println!("    stored {} records", RECORDS.len());
    drop(store);

    step(3, "Lock (keys zeroized) and reopen from disk");
    vault.lock();
    drop(vault);
    let vault = Vault::open(&vault_dir, provider.clone())?;
    println!("    vault is locked: {}", !vault.is_unlocked());

    step(4, "Try a wrong passcode");
    match vault.unlock(&Passcode::from("123123")) {
        Err(VaultError::WrongPasscode {
            failed_attempts, ..
        }) => {
            println!("    refused: wrong passcode (failed attempts: {failed_attempts})")
        }
        Ok(()) => return Err("a wrong passcode was accepted".into()),
        Err(e) => return Err(e.into()),
    }

    step(
        5,
        "Unlock with the right passcode and look a case up by its code",
    );
    let t = Instant::now();
    vault.unlock(&Passcode::from(PASSCODE))?;
    println!("    unlocked in {} ms", t.elapsed().as_millis());
    let store = vault.store()?;
    let found = store.read(|tx| {
        let ids = tx.find(NOTES, "case_code", b"R4T-9PB")?;
        let mut notes = Vec::new();
        for id in ids {
            notes.push(tx.require(NOTES, id)?);
        }
        Ok::<_, StoreError>(notes)
    })?;
    for record in &found {
        println!(
            "    R4T-9PB -> \"{}\"",
            String::from_utf8_lossy(record.value.expose())
        );
    }
    let total = store.read(|tx| tx.list(NOTES))?.len();
    println!("    records in the vault: {total}");
    drop(store);

    step(
        6,
        "Open a case, record consent (in Uzbek) and run the screening interview in Uzbek",
    );
    let case = cases::create_case(&vault)?;
    println!(
        "    new case: {} (pseudonymous code with a check character)",
        case.code
    );
    consent::record_consent(
        &vault,
        case.id,
        "demo-worker",
        "uz",
        &[Scope::Interview, Scope::ShareCaseworkers, Scope::ShareLegal],
    )?;
    let template = interviews::template(&vault, "trafficking_screening", 1)?;
    let localized = template.localized("uz")?;
    println!(
        "    template: \"{}\" v{}",
        localized.title,
        template.version()
    );
    let interview = interviews::start(&vault, case.id, "trafficking_screening", 1, "uz")?;
    let batch = answers(vec![
        ("interview_language", AnswerValue::Choice("uzbek".into())),
        ("interpreter_used", AnswerValue::YesNo(false)),
        ("first_contact", AnswerValue::Choice("messaging_app".into())),
        ("platforms", AnswerValue::Choices(vec!["telegram".into()])),
        ("documents_holder", AnswerValue::Choice("employer".into())),
        ("hours_per_day", AnswerValue::Integer(14)),
        ("narrative", AnswerValue::Text(NARRATIVE.into())),
    ]);
    let interview = interviews::save_answers(&vault, &interview.id, &batch)?;
    println!(
        "    saved {} answers (consent answers filled from the consent record)",
        interview.answers.len()
    );
    let typo = answers(vec![("hours_per_day", AnswerValue::Integer(41))]);
    match interviews::save_answers(&vault, &interview.id, &typo) {
        Err(e) => println!("    validation caught a typo, nothing stored: {e}"),
        Ok(_) => return Err("an out-of-range answer was accepted".into()),
    }
    let audio = answers(vec![(
        "narrative_audio",
        AnswerValue::Attachment {
            id: "demo-audio".into(),
            sha256: "00".repeat(32),
            media_type: "audio/ogg".into(),
        },
    )]);
    match interviews::save_answers(&vault, &interview.id, &audio) {
        Err(e) => println!("    consent gate: audio refused: {e}"),
        Ok(_) => return Err("audio was stored without audio consent".into()),
    }
    attach_media(&vault, &base, case.id, &interview.id)?;
    let submitted = interviews::submit(&vault, &interview.id)?;
    let hash = submitted.hash.clone().unwrap_or_default();
    println!(
        "    submitted; content hash {}…",
        hash.get(..16).unwrap_or("")
    );
    let amendment = interviews::amend(&vault, &submitted.id)?;
    let safe = answers(vec![("safe_now", AnswerValue::Choice("yes".into()))]);
    interviews::save_answers(&vault, &amendment.id, &safe)?;
    let amendment = interviews::submit(&vault, &amendment.id)?;
    let versions = interviews::verify_chain(&vault, &amendment.id)?;
    println!("    amended once; the amendment chain verifies ({versions} versions)");
    let entries = audit::verify(vault.store()?.as_ref())?;
    println!("    audit log: {entries} hash-chained entries, verified");

    step(
        7,
        "Scan every file of the vault for the plaintext (UTF-8 and UTF-16)",
    );
    let hits = scan_for_plaintext(&vault_dir)?;
    println!("    files scanned: {}, plaintext hits: {}", hits.0, hits.1);
    if hits.1 != 0 {
        return Err("plaintext found on disk".into());
    }

    step(
        8,
        "Sync: an organisation, a relay on loopback, two enrolled devices, HQ's routing",
    );
    let synced = crate::demo_sync::run(&base)?;

    step(
        9,
        "Set a duress passcode, lock, and unlock with it (as if under coercion)",
    );
    vault.set_duress_passcode(&Passcode::from(PASSCODE), &Passcode::from(DURESS))?;
    vault.lock();
    let t = Instant::now();
    vault.unlock(&Passcode::from(DURESS))?;
    let after = vault.store()?.read(|tx| tx.list(NOTES))?.len();
    println!(
        "    unlocked in {} ms; records visible: {after} (the old vault was crypto-shredded)",
        t.elapsed().as_millis()
    );
    vault.lock();
    match vault.unlock(&Passcode::from(PASSCODE)) {
        Err(VaultError::WrongPasscode { .. }) => {
            println!(
                "    the real passcode no longer opens anything: the old data is gone for good"
            )
        }
        Ok(()) => return Err("the old passcode still opens the vault".into()),
        Err(e) => return Err(e.into()),
    }

    println!(
        "\nSummary: {} records sealed, wrong passcode refused, right passcode accepted,",
        RECORDS.len()
    );
    println!("         an Uzbek screening interview validated, submitted, amended and verified,");
    println!(
        "         sync: {} envelopes pushed by A, {} applied on B, {} routed to HQ, custody clean,",
        synced.pushed, synced.pulled_by_b, synced.at_hq
    );
    println!("         0 plaintext hits on disk, duress passcode shredded the vault.");
    Ok(())
}

/// Two seconds of a 440 Hz tone, 16 kHz mono 16-bit PCM: a synthetic "recording" (fed in 20 ms
/// frames of 640 bytes, as a recorder would).
pub(crate) fn synthetic_audio() -> Vec<u8> {
    (0..32_000u32)
        .flat_map(|i| {
            let t = i as f32 / 16_000.0;
            let v = ((t * 440.0 * std::f32::consts::TAU).sin() * 8_000.0) as i16;
            v.to_le_bytes()
        })
        .collect()
}

/// The survivor now agrees to audio and photos: record a generated audio clip through the
/// streaming writer and import a "camera" file, both encrypted to the device and to the HQ
/// caseworkers group (whose consent is on record), then show HQ can decrypt and the source is gone.
fn attach_media(
    vault: &Vault,
    base: &Path,
    case_id: amanat_core::RecordId,
    interview_id: &str,
) -> Result<(), Box<dyn Error>> {
    let hq_caseworkers = age::x25519::Identity::generate();
    let org: BTreeMap<String, String> = [(
        "caseworkers".to_string(),
        hq_caseworkers.to_public().to_string(),
    )]
    .into();
    attachments::set_org_recipients(vault, &org)?;
    consent::record_consent(
        vault,
        case_id,
        "demo-worker",
        "uz",
        &[
            Scope::Interview,
            Scope::Audio,
            Scope::Photos,
            Scope::ShareCaseworkers,
            Scope::ShareLegal,
        ],
    )?;
    let mut writer = AttachmentWriter::open(
        vault,
        interview_id,
        "narrative_audio",
        "audio/wav",
        attachments::DEFAULT_MAX_BYTES,
    )?;
    let samples = synthetic_audio();
    for frame in samples.chunks(640) {
        writer.write(frame)?;
    }
    let audio = writer.finish()?;
    println!(
        "    audio clip: {} bytes encrypted while recorded (to device + {}), sha256 {}…",
        audio.size,
        audio.groups.join(", "),
        audio.sha256.get(..12).unwrap_or("")
    );
    let mut reader = AttachmentReader::open(vault, &audio.id)?;
    reader.seek(16_000)?;
    let mut probe = [0u8; 4];
    reader.read(&mut probe)?;
    let file = amanat_core::vault::layout::attachment_path(vault.dir(), &audio.id);
    let mut hq = AttachmentReader::open_file(&file, std::slice::from_ref(&hq_caseworkers))?;
    let mut hq_bytes = Vec::new();
    hq.read_to_end(&mut hq_bytes)?;
    println!(
        "    played back from the middle (seek to 0.5 s); HQ caseworkers decrypt it: {}",
        if hq_bytes == samples {
            "yes, identical"
        } else {
            "NO"
        }
    );
    let camera = base.join("camera-capture.jpg");
    std::fs::write(
        &camera,
        b"\xff\xd8\xff\xe0 demo photo of a document \xff\xd9",
    )?;
    let photo =
        attachments::import_file(vault, interview_id, "document_photo", "image/jpeg", &camera)?;
    println!(
        "    photo imported ({} bytes); camera file left behind: {}",
        photo.size,
        if camera.exists() {
            "YES"
        } else {
            "no (overwritten and deleted)"
        }
    );
    Ok(())
}

/// Counts files under `dir` and occurrences of any demo plaintext in them.
fn scan_for_plaintext(dir: &Path) -> std::io::Result<(usize, usize)> {
    let mut needles: Vec<Vec<u8>> = Vec::new();
    for (code, note) in RECORDS.iter().chain([&("", NARRATIVE)]) {
        for text in [*code, *note].into_iter().filter(|t| !t.is_empty()) {
            needles.push(text.as_bytes().to_vec());
            needles.push(text.encode_utf16().flat_map(u16::to_le_bytes).collect());
            needles.push(text.encode_utf16().flat_map(u16::to_be_bytes).collect());
        }
    }
    let (mut files, mut hits) = (0, 0);
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.is_file() {
                files += 1;
                let bytes = std::fs::read(&path)?;
                hits += needles
                    .iter()
                    .filter(|n| bytes.windows(n.len()).any(|w| w == &n[..]))
                    .count();
            }
        }
    }
    Ok((files, hits))
}
