//! What the vault benchmark (`core/benches/vault.rs`) and the SQLCipher baseline
//! (`benches/sqlcipher`, outside the workspace) share: the data generator, the plain-SQLite side
//! (optionally keyed, which makes it SQLCipher when linked against SQLCipher) and the sealed store's
//! side, so both benches time exactly the same work on the same data.

#![allow(dead_code)]

pub use amanat_core::crypto::Cipher;
use amanat_core::{Collection, Passcode, SoftwareKeyProvider, StoreError, Vault};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const NOTES: Collection = Collection::new("bench");
pub use amanat_core::testing::FAST_KDF as FAST;
pub const ROUNDS: usize = 3;

pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 11
    }
}

pub fn values(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Lcg(42);
    (0..n)
        .map(|_| {
            let len = 1024 + (rng.next() % 2048) as usize;
            (0..len).map(|_| (rng.next() & 0xff) as u8).collect()
        })
        .collect()
}

pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Lcg(seed);
    for i in (1..n).rev() {
        order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    order
}

/// Plain rusqlite; with `key`, the database is keyed first (`PRAGMA key`), which is SQLCipher with
/// its default settings when the binary links SQLCipher (the key derivation runs at the first access
/// below, before the timed window).
pub fn plain_run(
    dir: &Path,
    data: &[Vec<u8>],
    order: &[usize],
    key: Option<&str>,
) -> (Duration, Duration, Duration) {
    let conn = rusqlite::Connection::open(dir.join("plain.db")).unwrap();
    if let Some(key) = key {
        conn.pragma_update(None, "key", key).unwrap();
    }
    let _: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .unwrap();
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL; PRAGMA temp_store = MEMORY;
         CREATE TABLE records (collection BLOB NOT NULL, id BLOB NOT NULL, version INTEGER NOT NULL,
            padded_len INTEGER NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (collection, id));",
    )
    .unwrap();
    let tag = [7u8; 16];
    let mut rng = Lcg(7);
    let ids: Vec<[u8; 16]> = (0..data.len())
        .map(|_| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&rng.next().to_le_bytes());
            id[8..].copy_from_slice(&rng.next().to_le_bytes());
            id
        })
        .collect();
    let t = Instant::now();
    conn.execute_batch("BEGIN IMMEDIATE").unwrap();
    {
        let mut stmt = conn
            .prepare_cached(
                "INSERT INTO records (collection, id, version, padded_len, sealed)
                 VALUES (?1, ?2, 1, ?3, ?4)",
            )
            .unwrap();
        for (id, v) in ids.iter().zip(data) {
            stmt.execute(rusqlite::params![&tag[..], &id[..], v.len() as i64, &v[..]])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    let insert = t.elapsed();
    let t = Instant::now();
    conn.execute_batch("BEGIN").unwrap();
    let mut total = 0usize;
    {
        let mut stmt = conn
            .prepare_cached("SELECT version, sealed FROM records WHERE collection = ?1 AND id = ?2")
            .unwrap();
        for &i in order {
            let (_v, value): (i64, Vec<u8>) = stmt
                .query_row(rusqlite::params![&tag[..], &ids[i][..]], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            total += value.len();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    let read = t.elapsed();
    assert!(total > 0);
    let t = Instant::now();
    let listed: Vec<Vec<u8>> = conn
        .prepare("SELECT id FROM records WHERE collection = ?1 ORDER BY id")
        .unwrap()
        .query_map([&tag[..]], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let list = t.elapsed();
    assert_eq!(listed.len(), data.len());
    (insert, read, list)
}

/// The sealed store's run, on a vault made with `cipher` (ChaCha20-Poly1305 or AES-256-GCM).
pub fn sealed_run(
    dir: &Path,
    data: &[Vec<u8>],
    order: &[usize],
    cipher: Cipher,
) -> (Duration, Duration, Duration) {
    let provider = Arc::new(SoftwareKeyProvider::new(dir.join("device.key")));
    amanat_core::crypto::force_preferred_cipher(Some(cipher));
    let vault =
        Vault::create(dir.join("vault"), &Passcode::from("246810"), provider, FAST).unwrap();
    amanat_core::crypto::force_preferred_cipher(None);
    let store = vault.store().unwrap();
    let t = Instant::now();
    let ids = store
        .write(|tx| {
            let mut ids = Vec::with_capacity(data.len());
            for v in data {
                ids.push(tx.insert(NOTES, v)?);
            }
            Ok::<_, StoreError>(ids)
        })
        .unwrap();
    let insert = t.elapsed();
    let t = Instant::now();
    let total = store
        .read(|tx| {
            let mut total = 0usize;
            for &i in order {
                total += tx.require(NOTES, ids[i])?.value.len();
            }
            Ok::<_, StoreError>(total)
        })
        .unwrap();
    let read = t.elapsed();
    assert_eq!(total, data.iter().map(Vec::len).sum::<usize>());
    let t = Instant::now();
    let listed = store.read(|tx| tx.list(NOTES)).unwrap();
    let list = t.elapsed();
    assert_eq!(listed.len(), data.len());
    (insert, read, list)
}

/// Writes back all dirty pages (the `sync` command) so a run starts on a quiet disk.
pub fn settle() {
    let _ = std::process::Command::new("sync").status();
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}
