//! Vault benchmark: plain rusqlite vs the sealed store (once per cipher: ChaCha20-Poly1305 and
//! AES-256-GCM) on the same data in the same process, plus unlock and panic-wipe times. Run with `cargo bench -p amanat-core --bench vault`
//! (`AMANAT_BENCH_RECORDS=N` to change the record count, default 100,000).
//!
//! Both sides use the same schema shape, WAL, synchronous=NORMAL, one transaction for all inserts,
//! prepared statements, and point reads by id in a shuffled order. Runs rotate between the three
//! sides (which goes first rotates per round, with `sync` before each run so neither pays for
//! the other's writeback) and the median of each is reported.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

mod vault_common;

use amanat_core::{KdfParams, Passcode, SoftwareKeyProvider, StoreError, Vault};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vault_common::*;

/// Inserts once, then point-reads every record 10 times through the sealed store.
fn profile_read(data: &[Vec<u8>], order: &[usize]) {
    let tmp = tempfile::tempdir().unwrap();
    let provider = Arc::new(SoftwareKeyProvider::new(tmp.path().join("device.key")));
    let vault = Vault::create(
        tmp.path().join("vault"),
        &Passcode::from("246810"),
        provider,
        FAST,
    )
    .unwrap();
    let store = vault.store().unwrap();
    let ids = store
        .write(|tx| {
            data.iter()
                .map(|v| tx.insert(NOTES, v))
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap();
    let t = Instant::now();
    for _ in 0..10 {
        store
            .read(|tx| {
                for &i in order {
                    tx.require(NOTES, ids[i])?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
    }
    let per = t.elapsed().as_secs_f64() * 1e6 / (10 * order.len()) as f64;
    println!("sealed point read: {per:.2} µs/record");
}

/// Insert, point-read and list times of one run.
type Run = (Duration, Duration, Duration);
/// Picks one of a run's times.
type Pick = fn(&Run) -> Duration;

/// Time to seal, then open, every value with `alg` in place (no database).
fn raw_aead(alg: &'static ring::aead::Algorithm, data: &[Vec<u8>]) -> (Duration, Duration) {
    let key = ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(alg, &[9u8; 32]).unwrap());
    let mut sealed: Vec<Vec<u8>> = data
        .iter()
        .map(|v| {
            let mut b = Vec::with_capacity(v.len() + 16);
            b.extend_from_slice(v);
            b
        })
        .collect();
    let nonce = |i: usize| {
        let mut nonce = [0u8; 12];
        nonce[..8].copy_from_slice(&(i as u64).to_le_bytes());
        ring::aead::Nonce::assume_unique_for_key(nonce)
    };
    let t = Instant::now();
    for (i, buf) in sealed.iter_mut().enumerate() {
        key.seal_in_place_append_tag(nonce(i), ring::aead::Aad::empty(), buf)
            .unwrap();
    }
    let seal_t = t.elapsed();
    let t = Instant::now();
    for (i, c) in sealed.iter_mut().enumerate() {
        key.open_in_place(nonce(i), ring::aead::Aad::empty(), c)
            .unwrap();
    }
    (seal_t, t.elapsed())
}

/// Median panic-wipe time, and the median time to unlink a plain file as large as the vault.
fn wipe_time(n: usize, data: &[Vec<u8>]) -> (Duration, Duration) {
    let mut times = Vec::new();
    let mut unlinks = Vec::new();
    for _ in 0..ROUNDS {
        let tmp = tempfile::tempdir().unwrap();
        let provider = Arc::new(SoftwareKeyProvider::new(tmp.path().join("device.key")));
        let vault = Vault::create(
            tmp.path().join("vault"),
            &Passcode::from("246810"),
            provider,
            FAST,
        )
        .unwrap();
        vault
            .store()
            .unwrap()
            .write(|tx| {
                for v in data.iter().cycle().take(n) {
                    tx.insert(NOTES, v)?;
                }
                Ok::<_, StoreError>(())
            })
            .unwrap();
        let bytes: u64 = std::fs::read_dir(tmp.path().join("vault"))
            .unwrap()
            .flatten()
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        let t = Instant::now();
        vault.panic_wipe().unwrap();
        times.push(t.elapsed());
        // Baseline: deleting a plain file of the same size on the same file system.
        let filler = tmp.path().join("filler");
        std::fs::write(&filler, vec![1u8; bytes as usize]).unwrap();
        let f = std::fs::File::open(&filler).unwrap();
        f.sync_all().unwrap();
        let t = Instant::now();
        std::fs::remove_file(&filler).unwrap();
        unlinks.push(t.elapsed());
    }
    (median(times), median(unlinks))
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // cargo test --benches asks for a list; there are no unit benches here
    }
    let n: usize = std::env::var("AMANAT_BENCH_RECORDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let data = values(n);
    let order = shuffled(n, 99);
    if std::env::args().any(|a| a == "--profile-read") {
        // Only the sealed store's point reads, repeated, for `perf record` (docs/BENCHMARKS.md).
        profile_read(&data, &order);
        return;
    }
    let mb = data.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    println!("records: {n}, payload: {mb:.1} MB, rounds: {ROUNDS} (median)");

    // Three sides: plain rusqlite, the store sealed with ChaCha20-Poly1305 (vaults made on CPUs
    // without AES instructions) and with AES-256-GCM (vaults made on CPUs with them).
    let sides = [
        None,
        Some(Cipher::ChaCha20Poly1305),
        Some(Cipher::Aes256Gcm),
    ];
    let mut runs: [Vec<Run>; 3] = Default::default();
    for round in 0..ROUNDS {
        // Rotate which side goes first, and flush dirty pages before each run, so no side pays
        // for another's background writeback.
        for k in 0..3 {
            let side = (round + k) % 3;
            settle();
            let tmp = tempfile::tempdir().unwrap();
            runs[side].push(match sides[side] {
                None => plain_run(tmp.path(), &data, &order, None),
                Some(cipher) => sealed_run(tmp.path(), &data, &order, cipher),
            });
        }
    }
    settle();
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    let med = |side: usize, pick: Pick| median(runs[side].iter().map(pick).collect());
    println!(
        "| operation | plain rusqlite (rec/s) | store, ChaCha20-Poly1305 (rec/s) | store, AES-256-GCM (rec/s) | ChaCha / plain | AES / plain |"
    );
    println!("|---|---|---|---|---|---|");
    let ops: [(&str, Pick); 3] = [
        ("insert, one transaction", |r| r.0),
        ("point read by id", |r| r.1),
        ("list all ids of the collection", |r| r.2),
    ];
    for (name, pick) in ops {
        let (p, c, a) = (rate(med(0, pick)), rate(med(1, pick)), rate(med(2, pick)));
        println!(
            "| {name} | {p:.0} | {c:.0} | {a:.0} | {:.2}× | {:.2}× |",
            c / p,
            a / p
        );
    }
    let (pi, pr) = (med(0, |r| r.0), med(0, |r| r.1));

    // The floor: each raw AEAD (ring) over the same values, no database.
    for (name, alg) in [
        ("ChaCha20-Poly1305", &ring::aead::CHACHA20_POLY1305),
        ("AES-256-GCM", &ring::aead::AES_256_GCM),
    ] {
        let (seal_t, open_t) = raw_aead(alg, &data);
        println!(
            "raw {name} (ring) alone: seal {:.2} µs/rec ({:.0} MB/s), open {:.2} µs/rec",
            seal_t.as_secs_f64() * 1e6 / n as f64,
            mb / seal_t.as_secs_f64(),
            open_t.as_secs_f64() * 1e6 / n as f64,
        );
    }
    println!(
        "plain SQLite read {:.2} µs/rec, insert {:.2} µs/rec",
        pr.as_secs_f64() * 1e6 / n as f64,
        pi.as_secs_f64() * 1e6 / n as f64,
    );

    let tmp = tempfile::tempdir().unwrap();
    let provider = Arc::new(SoftwareKeyProvider::new(tmp.path().join("device.key")));
    let vault = Vault::create(
        tmp.path().join("vault"),
        &Passcode::from("246810"),
        provider,
        KdfParams::default(),
    )
    .unwrap();
    let mut unlocks = Vec::new();
    for _ in 0..5 {
        vault.lock();
        let t = Instant::now();
        vault.unlock(&Passcode::from("246810")).unwrap();
        unlocks.push(t.elapsed());
    }
    println!(
        "unlock at default parameters (m=64 MiB, t=3, p=1; both slots): {:.0} ms",
        median(unlocks).as_secs_f64() * 1e3
    );
    for size in [1_000usize, n] {
        let (wipe, unlink) = wipe_time(size, &data);
        println!(
            "panic wipe, {size} records: {:.1} ms (unlinking a plain file of the same size: {:.1} ms)",
            wipe.as_secs_f64() * 1e3,
            unlink.as_secs_f64() * 1e3
        );
    }
}
