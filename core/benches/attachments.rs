//! Attachment benchmark: the age streaming path vs raw ChaCha20-Poly1305 (ring) over the same
//! buffers with the same file write/read pattern (one 64 KiB chunk per call), in one run; then the
//! peak memory of a separate process that writes and reads back a 1 GiB attachment.
//!
//! Run: `cargo bench -p amanat-core --bench attachments` (`AMANAT_BENCH_MIB=N`, default 512).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use amanat_core::records::attachments::{AttachmentReader, AttachmentWriter, DEFAULT_MAX_BYTES};
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::{cases, interviews};
use amanat_core::Vault;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305};
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const CHUNK: usize = 64 * 1024;
const ROUNDS: usize = 3;

fn setup(dir: &Path) -> (Vault, String) {
    let vault = amanat_core::testing::create_vault(dir).unwrap();
    let case = cases::create_case(&vault).unwrap();
    consent::record_consent(
        &vault,
        case.id,
        "bench",
        "en",
        &[Scope::Interview, Scope::Audio],
    )
    .unwrap();
    let interview = interviews::start(&vault, case.id, "trafficking_screening", 1, "en").unwrap();
    (vault, interview.id)
}

fn pattern() -> Vec<u8> {
    (0..(1 << 20))
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

/// Writes `data` `reps` times through an `AttachmentWriter`, in pieces of at most 64 KiB.
fn amanat_encrypt(vault: &Vault, interview: &str, data: &[u8], reps: usize) -> (Duration, String) {
    let t = Instant::now();
    let mut w = AttachmentWriter::open(
        vault,
        interview,
        "narrative_audio",
        "audio/wav",
        DEFAULT_MAX_BYTES,
    )
    .unwrap();
    for _ in 0..reps {
        for piece in data.chunks(CHUNK) {
            w.write(piece).unwrap();
        }
    }
    let info = w.finish().unwrap();
    (t.elapsed(), info.id)
}

fn amanat_decrypt(vault: &Vault, id: &str) -> Duration {
    let t = Instant::now();
    let mut r = AttachmentReader::open(vault, id).unwrap();
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0usize;
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    assert!(total > 0);
    t.elapsed()
}

fn raw_encrypt(path: &Path, data: &[u8], mib: usize) -> Duration {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).unwrap());
    let t = Instant::now();
    let mut file = std::fs::File::create(path).unwrap();
    let mut buf = Vec::with_capacity(CHUNK + 16);
    let mut counter = 0u64;
    for _ in 0..mib {
        for piece in data.chunks(CHUNK) {
            buf.clear();
            buf.extend_from_slice(piece);
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&counter.to_be_bytes());
            counter += 1;
            key.seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::empty(),
                &mut buf,
            )
            .unwrap();
            file.write_all(&buf).unwrap();
        }
    }
    file.sync_all().unwrap();
    t.elapsed()
}

fn raw_decrypt(path: &Path) -> Duration {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &[7u8; 32]).unwrap());
    let t = Instant::now();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; CHUNK + 16];
    let mut counter = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read(&mut buf[filled..]).unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&counter.to_be_bytes());
        counter += 1;
        key.open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::empty(),
            &mut buf[..filled],
        )
        .unwrap();
    }
    t.elapsed()
}

/// Second baseline: the ChaCha20-Poly1305 implementation age itself uses (RustCrypto), same pattern.
fn rc_encrypt(path: &Path, data: &[u8], mib: usize) -> Duration {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
    let t = Instant::now();
    let mut file = std::fs::File::create(path).unwrap();
    let mut buf = Vec::with_capacity(CHUNK + 16);
    let mut counter = 0u64;
    for _ in 0..mib {
        for piece in data.chunks(CHUNK) {
            buf.clear();
            buf.extend_from_slice(piece);
            let mut nonce = [0u8; 12];
            nonce[..8].copy_from_slice(&counter.to_be_bytes());
            counter += 1;
            cipher
                .encrypt_in_place(&nonce.into(), b"", &mut buf)
                .unwrap();
            file.write_all(&buf).unwrap();
        }
    }
    file.sync_all().unwrap();
    t.elapsed()
}

fn rc_decrypt(path: &Path) -> Duration {
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let cipher = chacha20poly1305::ChaCha20Poly1305::new(&[7u8; 32].into());
    let t = Instant::now();
    let mut file = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; CHUNK + 16];
    let mut counter = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            let n = file.read(&mut buf[filled..]).unwrap();
            if n == 0 {
                break;
            }
            filled += n;
        }
        if filled == 0 {
            break;
        }
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&counter.to_be_bytes());
        counter += 1;
        let (body, tag) = buf[..filled].split_at_mut(filled - 16);
        cipher
            .decrypt_in_place_detached(&nonce.into(), b"", body, (&*tag).into())
            .unwrap();
    }
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn settle() {
    let _ = std::process::Command::new("sync").status();
}

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Child mode: write and read back 1 GiB, print peak RSS before and after.
///
/// The caller hands over one 64 KiB piece at a time, as a recorder does, from a 64 KiB buffer (not
/// the 1 MiB pattern of the throughput runs): the peak is then the process plus what the
/// attachment path itself holds, not the bench's own test data.
fn peak_mode() {
    let tmp = tempfile::tempdir().unwrap();
    let (vault, interview) = setup(tmp.path());
    let data: Vec<u8> = (0..CHUNK as u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let before = peak_rss_kib();
    // 16 × 64 KiB = 1 MiB per repetition, 1,024 repetitions = 1 GiB.
    let (_, id) = amanat_encrypt(&vault, &interview, &data, 1024 * 16);
    amanat_decrypt(&vault, &id);
    println!("{before} {}", peak_rss_kib());
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        return;
    }
    if args.iter().any(|a| a == "--peak-memory") {
        peak_mode();
        return;
    }
    let mib: usize = std::env::var("AMANAT_BENCH_MIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(512);
    let data = pattern();
    let tmp = tempfile::tempdir().unwrap();
    let (vault, interview) = setup(tmp.path());
    let raw_path = tmp.path().join("raw.bin");
    let (mut ae, mut ad, mut re, mut rd) = (vec![], vec![], vec![], vec![]);
    let (mut ce, mut cd) = (vec![], vec![]);
    for round in 0..ROUNDS {
        for side in [round % 3, (round + 1) % 3, (round + 2) % 3] {
            settle();
            if side == 2 {
                ce.push(rc_encrypt(&raw_path, &data, mib));
                settle();
                cd.push(rc_decrypt(&raw_path));
                std::fs::remove_file(&raw_path).unwrap();
            } else if side == 0 {
                let (t, id) = amanat_encrypt(&vault, &interview, &data, mib);
                ae.push(t);
                settle();
                ad.push(amanat_decrypt(&vault, &id));
                std::fs::remove_file(vault.dir().join("attachments").join(format!("{id}.age")))
                    .unwrap();
            } else {
                re.push(raw_encrypt(&raw_path, &data, mib));
                settle();
                rd.push(raw_decrypt(&raw_path));
                std::fs::remove_file(&raw_path).unwrap();
            }
        }
    }
    let mbps = |d: Duration| (mib as f64) * 1.048576 / d.as_secs_f64();
    let (ae, ad, re, rd) = (median(ae), median(ad), median(re), median(rd));
    let (ce, cd) = (median(ce), median(cd));
    println!("attachment size: {mib} MiB, rounds: {ROUNDS} (median), page cache warm for reads");
    println!("| path | raw ring (MB/s) | raw RustCrypto, as in age (MB/s) | attachment (MB/s) | vs ring | vs RustCrypto |");
    println!("|---|---|---|---|---|---|");
    for (name, ring_t, rc_t, att_t) in [
        ("encrypt (write)", re, ce, ae),
        ("decrypt (read)", rd, cd, ad),
    ] {
        println!(
            "| {name} | {:.0} | {:.0} | {:.0} | {:.2}× | {:.2}× |",
            mbps(ring_t),
            mbps(rc_t),
            mbps(att_t),
            mbps(att_t) / mbps(ring_t),
            mbps(att_t) / mbps(rc_t)
        );
    }

    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .arg("--peak-memory")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut parts = text
        .split_whitespace()
        .filter_map(|p| p.parse::<u64>().ok());
    if let (Some(before), Some(after)) = (parts.next(), parts.next()) {
        println!(
            "peak RSS of a process writing + reading a 1 GiB attachment: {:.1} MiB (before the attachment: {:.1} MiB)",
            after as f64 / 1024.0,
            before as f64 / 1024.0
        );
    }
}
