//! Test helper: writes records in a loop until killed, printing each committed record's id.
//!
//! Usage: `crash-writer VAULT_DIR KEY_FILE MARKER [attachment|attachments]`. The parent test kills
//! it with SIGKILL at an arbitrary moment and then checks that every printed (committed) record is
//! intact. In `attachment` mode it instead streams an audio attachment made of the marker forever,
//! printing the byte count after each write, so the parent can check no plaintext hit the disk. In
//! `attachments` mode it writes small attachments one after another, printing `<id> <n>` after each
//! `finish` (content: [`amanat_tests::attachment_content`]`(n)`), so the parent can check that no
//! file survives without its record and no finished attachment is lost.

use amanat_core::{Passcode, SoftwareKeyProvider, StoreError, Vault};
use amanat_tests::{crash_record, FAST_KDF, NOTES, PASSCODE};
use std::io::Write;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(key), Some(marker)) = (args.get(1), args.get(2), args.get(3)) else {
        return Err("usage: crash-writer VAULT_DIR KEY_FILE MARKER".into());
    };
    let provider = Arc::new(SoftwareKeyProvider::new(key));
    let passcode = Passcode::from(PASSCODE);
    let vault = if Vault::exists(dir) {
        let v = Vault::open(dir, provider)?;
        v.unlock(&passcode)?;
        v
    } else {
        Vault::create(dir, &passcode, provider, FAST_KDF)?
    };
    match args.get(4).map(String::as_str) {
        Some("attachment") => return stream_attachment(&vault, marker),
        Some("attachments") => return many_attachments(&vault),
        _ => {}
    }
    let store = vault.store()?;
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        // Three records per transaction: a kill must never leave one of them without the others.
        let ids = store.write(|tx| {
            let mut ids = Vec::new();
            for k in 0..3 {
                ids.push(tx.insert(NOTES, &crash_record(n * 3 + k, marker))?);
            }
            Ok::<_, StoreError>(ids)
        })?;
        for (k, id) in ids.iter().enumerate() {
            writeln!(out, "{id} {}", n * 3 + k as u64)?;
        }
        out.flush()?;
    }
    Ok(())
}

fn stream_attachment(vault: &Vault, marker: &str) -> Result<(), Box<dyn std::error::Error>> {
    use amanat_core::records::attachments::{AttachmentWriter, DEFAULT_MAX_BYTES};
    use amanat_core::records::consent::{self, Scope};
    let case = amanat_core::records::cases::create_case(vault)?;
    consent::record_consent(vault, case.id, "w", "en", &[Scope::Interview, Scope::Audio])?;
    let interview =
        amanat_core::records::interviews::start(vault, case.id, "trafficking_screening", 1, "en")?;
    let mut writer = AttachmentWriter::open(
        vault,
        &interview.id,
        "narrative_audio",
        "audio/wav",
        DEFAULT_MAX_BYTES,
    )?;
    let block = marker.repeat(4096 / marker.len().max(1) + 1);
    let mut out = std::io::stdout().lock();
    loop {
        writer.write(block.as_bytes())?;
        writeln!(out, "{}", writer.size())?;
        out.flush()?;
    }
}

fn many_attachments(vault: &Vault) -> Result<(), Box<dyn std::error::Error>> {
    use amanat_core::records::attachments::{AttachmentWriter, DEFAULT_MAX_BYTES};
    use amanat_core::records::consent::{self, Scope};
    let case = amanat_core::records::cases::create_case(vault)?;
    consent::record_consent(vault, case.id, "w", "en", &[Scope::Interview, Scope::Audio])?;
    let interview =
        amanat_core::records::interviews::start(vault, case.id, "trafficking_screening", 1, "en")?;
    let mut out = std::io::stdout().lock();
    for n in 0u64.. {
        let mut writer = AttachmentWriter::open(
            vault,
            &interview.id,
            "narrative_audio",
            "audio/wav",
            DEFAULT_MAX_BYTES,
        )?;
        let data = amanat_tests::attachment_content(n);
        for part in data.chunks(16 * 1024) {
            writer.write(part)?;
        }
        let info = writer.finish()?;
        writeln!(out, "{} {n}", info.id)?;
        out.flush()?;
    }
    Ok(())
}
