//! Attachments through the public API: streaming round trips, consent, limits, tamper, seeking,
//! interop with the reference `age` CLI (installed by .ci/run).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use age::secrecy::ExposeSecret;
use amanat_core::forms::AnswerValue;
use amanat_core::records::attachments::{
    self, AttachmentError, AttachmentReader, AttachmentWriter, CHUNK_SIZE, DEFAULT_MAX_BYTES,
};
use amanat_core::records::cases;
use amanat_core::records::consent::{self, ConsentError, Scope};
use amanat_core::records::interviews::{self, Interview};
use amanat_core::{Passcode, SoftwareKeyProvider, Vault};
use ring::digest;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use amanat_core::testing::FAST_KDF as FAST;

struct Fx {
    tmp: tempfile::TempDir,
    vault: Vault,
    interview: Interview,
    caseworkers: age::x25519::Identity,
    research: age::x25519::Identity,
}

fn fixture(scopes: &[Scope]) -> Fx {
    let tmp = tempfile::tempdir().unwrap();
    let provider = Arc::new(SoftwareKeyProvider::new(tmp.path().join("device.key")));
    let vault = Vault::create(
        tmp.path().join("vault"),
        &Passcode::from("246810"),
        provider,
        FAST,
    )
    .unwrap();
    let caseworkers = age::x25519::Identity::generate();
    let research = age::x25519::Identity::generate();
    let org: BTreeMap<String, String> = [
        (
            "caseworkers".to_string(),
            caseworkers.to_public().to_string(),
        ),
        ("research".to_string(), research.to_public().to_string()),
    ]
    .into();
    attachments::set_org_recipients(&vault, &org).unwrap();
    let case = cases::create_case(&vault).unwrap();
    consent::record_consent(&vault, case.id, "worker-1", "ru", scopes).unwrap();
    let interview = interviews::start(&vault, case.id, "trafficking_screening", 1, "ru").unwrap();
    Fx {
        tmp,
        vault,
        interview,
        caseworkers,
        research,
    }
}

fn all_scopes() -> Vec<Scope> {
    vec![
        Scope::Interview,
        Scope::Audio,
        Scope::Photos,
        Scope::ShareCaseworkers,
    ]
}

/// Deterministic content: each 4 KiB block starts with its index, so reordering is caught.
fn content(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            if i % 4096 < 8 {
                ((i / 4096) >> (8 * (i % 8))) as u8
            } else {
                (i % 251) as u8
            }
        })
        .collect()
}

fn write(fx: &Fx, data: &[u8], piece: usize) -> attachments::AttachmentInfo {
    let mut w = AttachmentWriter::open(
        &fx.vault,
        &fx.interview.id,
        "narrative_audio",
        "audio/ogg",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    for part in data.chunks(piece.max(1)) {
        w.write(part).unwrap();
    }
    w.finish().unwrap()
}

fn file_of(fx: &Fx, id: &str) -> PathBuf {
    fx.vault.dir().join("attachments").join(format!("{id}.age"))
}

fn read_all(fx: &Fx, id: &str) -> Vec<u8> {
    let mut r = AttachmentReader::open(&fx.vault, id).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    out
}

fn sha256_hex(data: &[u8]) -> String {
    digest::digest(&digest::SHA256, data)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn round_trips_at_chunk_edges_and_answer_records_the_hash() {
    let fx = fixture(&all_scopes());
    for len in [0usize, 1, 65536, 65537, 3 * 65536 + 17] {
        let data = content(len);
        for piece in [1000usize, 65536, 200_000] {
            let info = write(&fx, &data, piece);
            assert_eq!(info.size, len as u64);
            assert_eq!(info.sha256, sha256_hex(&data));
            assert_eq!(info.groups, vec!["caseworkers".to_string()]);
            assert_eq!(read_all(&fx, &info.id), data, "len {len} piece {piece}");
            let cipher = std::fs::read(file_of(&fx, &info.id)).unwrap();
            assert_eq!(
                attachments::ciphertext_sha256(&fx.vault, &info.id).unwrap(),
                sha256_hex(&cipher)
            );
            let interview = interviews::get(&fx.vault, &fx.interview.id).unwrap();
            match interview.answers.get("narrative_audio") {
                Some(AnswerValue::Attachment {
                    id,
                    sha256,
                    media_type,
                }) => {
                    assert_eq!(
                        (id, sha256, media_type.as_str()),
                        (&info.id, &info.sha256, "audio/ogg")
                    );
                }
                _ => panic!("answer not recorded"),
            }
        }
    }
    assert_eq!(
        attachments::info(&fx.vault, &read_last_id(&fx))
            .unwrap()
            .media_type,
        "audio/ogg"
    );
}

fn read_last_id(fx: &Fx) -> String {
    match interviews::get(&fx.vault, &fx.interview.id)
        .unwrap()
        .answers
        .get("narrative_audio")
    {
        Some(AnswerValue::Attachment { id, .. }) => id.clone(),
        _ => panic!(),
    }
}

#[test]
fn one_gib_stream_round_trips_in_constant_memory() {
    let fx = fixture(&all_scopes());
    let mib: Vec<u8> = content(1 << 20);
    let mut w = AttachmentWriter::open(
        &fx.vault,
        &fx.interview.id,
        "narrative_audio",
        "audio/ogg",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    let mut expected = digest::Context::new(&digest::SHA256);
    let mut block = mib.clone();
    for i in 0..1024u32 {
        block[..4].copy_from_slice(&i.to_le_bytes());
        w.write(&block).unwrap();
        expected.update(&block);
    }
    let info = w.finish().unwrap();
    assert_eq!(info.size, 1 << 30);
    let expected: String = expected
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(info.sha256, expected);
    let mut r = AttachmentReader::open(&fx.vault, &info.id).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = digest::Context::new(&digest::SHA256);
    let mut total = 0u64;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
        total += n as u64;
    }
    assert_eq!(total, 1 << 30);
    let got: String = got
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(got, expected);
    std::fs::remove_file(file_of(&fx, &info.id)).unwrap();
}

#[test]
fn seeking_reads_the_right_bytes_at_chunk_boundaries() {
    let fx = fixture(&all_scopes());
    let data = content(5 * 65536 + 100);
    let info = write(&fx, &data, 65536);
    let mut r = AttachmentReader::open(&fx.vault, &info.id).unwrap();
    let c = CHUNK_SIZE as usize;
    for offset in [
        0usize,
        1,
        c - 1,
        c,
        c + 1,
        2 * c - 1,
        2 * c,
        4 * c + 50,
        data.len() - 1,
    ] {
        r.seek(offset as u64).unwrap();
        let mut buf = [0u8; 100];
        let want = &data[offset..(offset + 100).min(data.len())];
        let mut got = Vec::new();
        while got.len() < want.len() {
            let n = r.read(&mut buf[..want.len() - got.len()]).unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, want, "offset {offset}");
    }
    r.seek(data.len() as u64).unwrap();
    assert_eq!(r.read(&mut [0u8; 10]).unwrap(), 0);
}

#[test]
fn flipped_byte_fails_at_its_chunk_and_returns_nothing_past_it() {
    let fx = fixture(&all_scopes());
    let data = content(5 * 65536);
    let info = write(&fx, &data, 65536);
    let path = file_of(&fx, &info.id);
    let mut cipher = std::fs::read(&path).unwrap();
    let header = cipher.len() - 5 * (65536 + 16);
    cipher[header + 2 * (65536 + 16) + 100] ^= 0x01;
    std::fs::write(&path, &cipher).unwrap();
    let mut r = AttachmentReader::open(&fx.vault, &info.id).unwrap();
    let mut good = Vec::new();
    let mut buf = vec![0u8; 4096];
    let err = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("tampered file read to the end"),
            Ok(n) => good.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, AttachmentError::Integrity { chunk: 2 }),
        "{err:?}"
    );
    assert_eq!(
        good.len(),
        2 * 65536,
        "bytes past the bad chunk were returned"
    );
    assert_eq!(good, &data[..2 * 65536]);
    // Seeking into the bad chunk fails too.
    let mut r = AttachmentReader::open(&fx.vault, &info.id).unwrap();
    let mut byte = [0u8; 1];
    let seek = r.seek(2 * 65536 + 5).and_then(|_| r.read(&mut byte));
    assert!(
        matches!(seek, Err(AttachmentError::Integrity { .. })),
        "{seek:?}"
    );
}

#[test]
fn truncated_garbled_and_wrong_identity_are_typed_errors() {
    let fx = fixture(&all_scopes());
    let data = content(3 * 65536);
    let info = write(&fx, &data, 65536);
    let path = file_of(&fx, &info.id);
    let cipher = std::fs::read(&path).unwrap();

    std::fs::write(&path, &cipher[..cipher.len() - 70_000]).unwrap();
    let mut r = AttachmentReader::open(&fx.vault, &info.id).unwrap();
    let mut out = Vec::new();
    let err = r.read_to_end(&mut out).unwrap_err();
    assert!(
        matches!(
            err,
            AttachmentError::Truncated | AttachmentError::Integrity { .. }
        ),
        "{err:?}"
    );
    assert!(out.len() < data.len());

    std::fs::write(&path, b"not an age file at all").unwrap();
    assert!(matches!(
        AttachmentReader::open(&fx.vault, &info.id),
        Err(AttachmentError::Malformed)
    ));
    std::fs::write(&path, &cipher[..20]).unwrap();
    assert!(AttachmentReader::open(&fx.vault, &info.id).is_err());

    std::fs::write(&path, &cipher).unwrap();
    let stranger = age::x25519::Identity::generate();
    assert!(matches!(
        AttachmentReader::open_file(&path, &[stranger]),
        Err(AttachmentError::NoMatchingKey)
    ));
    // The consented group can read it; the group without consent cannot.
    let mut r = AttachmentReader::open_file(&path, std::slice::from_ref(&fx.caseworkers)).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
    assert!(matches!(
        AttachmentReader::open_file(&path, std::slice::from_ref(&fx.research)),
        Err(AttachmentError::NoMatchingKey)
    ));
    assert!(matches!(
        AttachmentReader::open(&fx.vault, "00112233445566778899aabbccddeeff"),
        Err(AttachmentError::NotFound)
    ));
}

fn dir_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn abort_and_limit_leave_nothing() {
    let fx = fixture(&all_scopes());
    let dir = fx.vault.dir().join("attachments");
    let mut w = AttachmentWriter::open(
        &fx.vault,
        &fx.interview.id,
        "narrative_audio",
        "audio/ogg",
        1000,
    )
    .unwrap();
    w.write(&[1u8; 600]).unwrap();
    assert!(matches!(
        w.write(&[1u8; 600]),
        Err(AttachmentError::TooLarge { max_bytes: 1000 })
    ));
    assert!(matches!(w.write(&[1u8; 1]), Err(AttachmentError::Closed)));
    assert!(matches!(w.finish(), Err(AttachmentError::Closed)));
    assert!(dir_files(&dir).is_empty());

    let mut w = AttachmentWriter::open(
        &fx.vault,
        &fx.interview.id,
        "narrative_audio",
        "audio/ogg",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    w.write(&content(100_000)).unwrap();
    w.abort();
    assert!(dir_files(&dir).is_empty());
    // Dropped without finishing: same.
    {
        let mut w = AttachmentWriter::open(
            &fx.vault,
            &fx.interview.id,
            "narrative_audio",
            "audio/ogg",
            DEFAULT_MAX_BYTES,
        )
        .unwrap();
        w.write(b"x").unwrap();
    }
    assert!(dir_files(&dir).is_empty());
    let interview = interviews::get(&fx.vault, &fx.interview.id).unwrap();
    assert!(!interview.answers.contains("narrative_audio"));
}

#[test]
fn consent_and_question_rules() {
    let fx = fixture(&[Scope::Interview]);
    let open = |q: &str, media: &str| {
        AttachmentWriter::open(&fx.vault, &fx.interview.id, q, media, DEFAULT_MAX_BYTES)
    };
    assert!(matches!(
        open("narrative_audio", "audio/ogg"),
        Err(AttachmentError::Consent(ConsentError::Missing(
            Scope::Audio
        )))
    ));
    assert!(matches!(
        open("document_photo", "image/jpeg"),
        Err(AttachmentError::Consent(ConsentError::Missing(
            Scope::Photos
        )))
    ));
    assert!(matches!(
        open("narrative_audio", "image/jpeg"),
        Err(AttachmentError::WrongQuestion { .. })
    ));
    assert!(matches!(
        open("narrative", "audio/ogg"),
        Err(AttachmentError::WrongQuestion { .. })
    ));
    assert!(matches!(
        open("no_such_question", "audio/ogg"),
        Err(AttachmentError::WrongQuestion { .. })
    ));
    let bad: BTreeMap<String, String> = [("caseworkers".into(), "age1notarecipient".into())].into();
    assert!(matches!(
        attachments::set_org_recipients(&fx.vault, &bad),
        Err(AttachmentError::BadRecipient(_))
    ));
    let unknown: BTreeMap<String, String> = [(
        "journalists".into(),
        age::x25519::Identity::generate().to_public().to_string(),
    )]
    .into();
    assert!(matches!(
        attachments::set_org_recipients(&fx.vault, &unknown),
        Err(AttachmentError::BadRecipient(_))
    ));
    // Photo consent given later: photos now work, and the answer lands in the interview.
    let case = interviews::get(&fx.vault, &fx.interview.id)
        .unwrap()
        .case_id;
    let case = amanat_core::RecordId::parse(&case).unwrap();
    consent::record_consent(
        &fx.vault,
        case,
        "worker-1",
        "ru",
        &[Scope::Interview, Scope::Photos],
    )
    .unwrap();
    let mut w = open("document_photo", "image/jpeg").unwrap();
    w.write(b"\xff\xd8\xff fake jpeg").unwrap();
    let info = w.finish().unwrap();
    assert_eq!(
        info.groups,
        Vec::<String>::new(),
        "no sharing consent: device only"
    );
    // Submitted interviews take no more attachments.
    interviews::submit(&fx.vault, &fx.interview.id).unwrap();
    assert!(open("document_photo", "image/jpeg").is_err());
}

#[test]
fn import_file_encrypts_and_removes_the_source() {
    let fx = fixture(&all_scopes());
    let source = fx.tmp.path().join("camera-capture.jpg");
    let data = content(150_000);
    std::fs::write(&source, &data).unwrap();
    let info = attachments::import_file(
        &fx.vault,
        &fx.interview.id,
        "document_photo",
        "image/jpeg",
        &source,
    )
    .unwrap();
    assert!(!source.exists());
    assert_eq!(read_all(&fx, &info.id), data);
    assert!(matches!(
        attachments::import_file(
            &fx.vault,
            &fx.interview.id,
            "document_photo",
            "image/jpeg",
            &source
        ),
        Err(AttachmentError::Io(_))
    ));
}

fn age_cli_decrypts(identity: &age::x25519::Identity, file: &Path, dir: &Path) -> Option<Vec<u8>> {
    let key = dir.join("identity.txt");
    std::fs::write(&key, identity.to_string().expose_secret()).unwrap();
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg(file)
        .output()
        .expect("the `age` CLI is required (apt-get install age; .ci/run installs it)");
    std::fs::remove_file(&key).unwrap();
    out.status.success().then_some(out.stdout)
}

#[test]
fn reference_age_cli_decrypts_for_consented_groups_only() {
    let fx = fixture(&all_scopes());
    let data = content(200_000);
    let info = write(&fx, &data, 65536);
    let file = file_of(&fx, &info.id);
    assert_eq!(
        age_cli_decrypts(&fx.caseworkers, &file, fx.tmp.path()).as_deref(),
        Some(&data[..])
    );
    assert_eq!(age_cli_decrypts(&fx.research, &file, fx.tmp.path()), None);
}

#[test]
fn partial_file_from_a_crash_is_ciphertext_and_removed_at_unlock() {
    let fx = fixture(&all_scopes());
    let marker = b"PLAINTEXT-AUDIO-MARKER-0451";
    let mut w = AttachmentWriter::open(
        &fx.vault,
        &fx.interview.id,
        "narrative_audio",
        "audio/ogg",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    for _ in 0..20 {
        w.write(&marker.repeat(1000)).unwrap();
    }
    // Simulate a crash: the process dies, nothing runs (no abort, no Drop).
    std::mem::forget(w);
    let dir = fx.vault.dir().join("attachments");
    let partials = dir_files(&dir);
    assert_eq!(partials.len(), 1);
    for p in &partials {
        let bytes = std::fs::read(p).unwrap();
        assert!(
            bytes.len() > 100_000,
            "data was streamed to disk as it came"
        );
        assert!(!bytes.windows(marker.len()).any(|w| w == marker));
    }
    fx.vault.lock();
    fx.vault.unlock(&Passcode::from("246810")).unwrap();
    assert!(dir_files(&dir).is_empty());
}

#[test]
fn wipe_removes_attachments() {
    let fx = fixture(&all_scopes());
    write(&fx, &content(1000), 1000);
    let dir = fx.vault.dir().to_path_buf();
    fx.vault.panic_wipe().unwrap();
    for _ in 0..500 {
        if dir_files(&dir).is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("left after wipe: {:?}", dir_files(&dir));
}

#[test]
fn duress_unlock_after_attachments_gives_an_empty_vault_repeatedly() {
    for _ in 0..5 {
        let fx = fixture(&all_scopes());
        let info = write(&fx, &content(300_000), 65536);
        fx.vault
            .set_duress_passcode(&Passcode::from("246810"), &Passcode::from("999999"))
            .unwrap();
        fx.vault.lock();
        fx.vault.unlock(&Passcode::from("999999")).unwrap();
        assert!(matches!(
            AttachmentReader::open(&fx.vault, &info.id),
            Err(AttachmentError::NotFound)
        ));
        assert!(!file_of(&fx, &info.id).exists());
    }
}

fn is_locked(e: &AttachmentError) -> bool {
    matches!(
        e,
        AttachmentError::Store(amanat_core::StoreError::Locked)
            | AttachmentError::Vault(amanat_core::VaultError::Locked)
    )
}

/// Open file descriptors of this process that point at `path` (Linux `/proc/self/fd`): the stream
/// state of a reader or writer owns its file, so its descriptor closing means that state — with the
/// file key — was dropped.
fn open_fds_to(path: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|target| target == path))
        .count()
}

/// Regression (issue 10, item 3): a reader opened before `lock()` returned plaintext afterwards.
/// After `lock()` every read and seek fails with `Locked`, no byte comes out, the stream state
/// (file and file key) is dropped at the lock itself, and a new unlock does not revive it.
#[test]
fn reader_fails_with_locked_after_lock_and_drops_its_state() {
    let fx = fixture(&all_scopes());
    let data = content(5 * CHUNK_SIZE as usize);
    let info = write(&fx, &data, 65536);
    let file = file_of(&fx, &info.id).canonicalize().unwrap();
    let mut r = AttachmentReader::open(&fx.vault, &info.id).unwrap();
    let mut buf = vec![0u8; 1000];
    assert_eq!(r.read(&mut buf).unwrap(), 1000);
    assert_eq!(&buf[..], &data[..1000]);
    assert_eq!(open_fds_to(&file), 1, "the reader holds its file open");

    fx.vault.lock();
    assert_eq!(open_fds_to(&file), 0, "lock() dropped the reader's stream");
    let mut buf = vec![0u8; 1000];
    let err = r.read(&mut buf).unwrap_err();
    assert!(is_locked(&err), "{err:?}");
    assert!(buf.iter().all(|b| *b == 0), "no plaintext after lock");
    assert!(is_locked(&r.seek(0).unwrap_err()));
    let mut out = Vec::new();
    assert!(is_locked(&r.read_to_end(&mut out).unwrap_err()));
    assert!(out.is_empty());

    fx.vault.unlock(&Passcode::from("246810")).unwrap();
    assert!(is_locked(&r.read(&mut buf).unwrap_err()), "stays dead");
    // A reader opened after the new unlock works.
    assert_eq!(read_all(&fx, &info.id), data);
}

/// Regression (issue 10, item 3): `write` still succeeded after `lock()`. After `lock()` the writer
/// fails with `Locked`, its partial file is gone, and nothing is recorded.
#[test]
fn writer_fails_with_locked_after_lock_and_leaves_nothing() {
    let fx = fixture(&all_scopes());
    let dir = fx.vault.dir().join("attachments");
    let mut w = AttachmentWriter::open(
        &fx.vault,
        &fx.interview.id,
        "narrative_audio",
        "audio/ogg",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    w.write(&content(200_000)).unwrap();
    let partial = dir_files(&dir);
    assert_eq!(partial.len(), 1);
    let partial = partial[0].canonicalize().unwrap();
    assert_eq!(open_fds_to(&partial), 1);

    fx.vault.lock();
    assert_eq!(
        open_fds_to(&partial),
        0,
        "lock() dropped the writer's stream"
    );
    let err = w.write(b"more").unwrap_err();
    assert!(is_locked(&err), "{err:?}");
    assert!(dir_files(&dir).is_empty(), "partial removed");
    let err = w.finish().unwrap_err();
    assert!(
        is_locked(&err) || matches!(err, AttachmentError::Closed),
        "{err:?}"
    );

    fx.vault.unlock(&Passcode::from("246810")).unwrap();
    assert!(dir_files(&dir).is_empty());
    let interview = interviews::get(&fx.vault, &fx.interview.id).unwrap();
    assert!(!interview.answers.contains("narrative_audio"));

    // Locked between the last write and finish: finish fails, nothing is recorded or left.
    let mut w = AttachmentWriter::open(
        &fx.vault,
        &fx.interview.id,
        "narrative_audio",
        "audio/ogg",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    w.write(&content(1000)).unwrap();
    fx.vault.lock();
    assert!(is_locked(&w.finish().unwrap_err()));
    fx.vault.unlock(&Passcode::from("246810")).unwrap();
    assert!(dir_files(&dir).is_empty());
    let interview = interviews::get(&fx.vault, &fx.interview.id).unwrap();
    assert!(!interview.answers.contains("narrative_audio"));
}

/// Regression (issue 10, item 1): a complete `<id>.age` file that no record points to (a crash
/// between the file and its metadata) stayed forever. Unlock removes it, and a complete file whose
/// record committed but whose rename did not happen is kept and put in place (not deleted as a
/// partial).
#[test]
fn unlock_removes_orphan_files_and_completes_committed_ones() {
    let fx = fixture(&all_scopes());
    let dir = fx.vault.dir().join("attachments");
    let kept = write(&fx, &content(70_000), 65536);
    let promoted = write(&fx, &content(90_000), 65536);

    // An orphan: a complete age file without a record (what a kill after the rename left).
    let orphan = dir.join("0123456789abcdef0123456789abcdef.age");
    std::fs::copy(file_of(&fx, &kept.id), &orphan).unwrap();
    // Committed record, file still under its partial name (a kill between commit and rename).
    let partial = dir.join(format!("{}.age.partial", promoted.id));
    std::fs::rename(file_of(&fx, &promoted.id), &partial).unwrap();

    fx.vault.lock();
    fx.vault.unlock(&Passcode::from("246810")).unwrap();
    assert!(!orphan.exists(), "orphan file removed at unlock");
    assert!(file_of(&fx, &promoted.id).exists(), "committed file kept");
    assert!(!partial.exists());
    assert_eq!(read_all(&fx, &promoted.id), content(90_000));
    assert_eq!(read_all(&fx, &kept.id), content(70_000));
    let mut names: Vec<String> = dir_files(&dir)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected = vec![format!("{}.age", kept.id), format!("{}.age", promoted.id)];
    expected.sort();
    assert_eq!(names, expected);
}
/// A record whose file is gone is reported by unlock and by the integrity check, and reading it is
/// a typed error (not "no such attachment").
#[test]
fn record_without_its_file_is_reported_and_a_typed_error() {
    let fx = fixture(&all_scopes());
    let kept = write(&fx, &content(70_000), 65536);
    let lost = write(&fx, &content(1_000), 65536);
    std::fs::remove_file(file_of(&fx, &lost.id)).unwrap();

    fx.vault.lock();
    fx.vault.unlock(&Passcode::from("246810")).unwrap();
    let report = fx.vault.last_unlock_report().expect("unlock made a report");
    assert_eq!(report.orphan_files_removed, 0);
    assert_eq!(report.missing_attachment_files, vec![lost.id.clone()]);
    let integrity = fx.vault.check_integrity().unwrap();
    assert_eq!(integrity.missing_attachment_files, vec![lost.id.clone()]);
    assert!(matches!(
        AttachmentReader::open(&fx.vault, &lost.id),
        Err(AttachmentError::FileMissing)
    ));
    assert!(matches!(
        attachments::ciphertext_sha256(&fx.vault, &lost.id),
        Err(AttachmentError::FileMissing)
    ));
    assert_eq!(read_all(&fx, &kept.id), content(70_000));
    // The record stays (its answer and hash are evidence); nothing is silently dropped.
    assert_eq!(attachments::info(&fx.vault, &lost.id).unwrap().size, 1_000);
}
