//! Embedded backend: one SQLite file (`DIR/relay.db`) plus a blob directory (`DIR/blobs/`).
//!
//! Durability: WAL with `synchronous = FULL`, so a commit is on disk (WAL fsynced) before the
//! relay acknowledges; a push acknowledged is never lost to a crash *or* a power cut. NORMAL would
//! be faster but may lose the last commits on power loss, i.e. acknowledged pushes the device has
//! already dropped from its outbox. Batching amortises the fsync over many envelopes. The one
//! exception is the request nonce (`record_nonce`), committed under NORMAL: see
//! docs/PROTOCOL.md, "Durability".
//!
//! Concurrency: one writer connection (SQLite has one writer anyway; `BEGIN IMMEDIATE` makes the
//! sequence assignment serial and therefore gap-free) and one reader connection (WAL readers do not
//! block the writer). Both are used from `spawn_blocking`.

use super::migrations;
use super::storage::{
    BlobStatus, DeviceRecord, NewEnvelope, Storage, StorageError, StoredEnvelope,
};
use amanat_protocol::{DeviceRole, PushAck};
use ring::digest;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The SQLite + blob-directory backend.
#[derive(Clone)]
pub struct SqliteStorage {
    writer: Arc<Mutex<Connection>>,
    reader: Arc<Mutex<Connection>>,
    blobs: PathBuf,
    blob_lock: Arc<Mutex<()>>,
}

fn open_conn(path: &Path) -> Result<Connection, StorageError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(conn)
}

/// Puts the writer back to fsynced commits. Every write the relay acknowledges (enrollment,
/// revocation, push) calls it first, so a nonce insert (`record_nonce`, the one commit under
/// NORMAL) can never leave them undurable, even if its own restore failed.
fn durable(c: &Connection) -> rusqlite::Result<()> {
    c.pragma_update(None, "synchronous", "FULL")
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn blocking<T, F>(f: F) -> Result<T, StorageError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StorageError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| StorageError::Backend("blocking task failed".into()))?
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl SqliteStorage {
    /// Opens (creating if needed) the relay database and blob directory under `dir`, and brings the
    /// schema to the current version ([`migrations`]; a newer one is refused).
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        fs::create_dir_all(dir)?;
        let blobs = dir.join("blobs");
        fs::create_dir_all(blobs.join("partial"))?;
        let db = dir.join("relay.db");
        let mut writer = open_conn(&db)?;
        migrations::apply_sqlite(&mut writer, migrations::SQLITE)?;
        let reader = open_conn(&db)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(writer)),
            reader: Arc::new(Mutex::new(reader)),
            blobs,
            blob_lock: Arc::new(Mutex::new(())),
        })
    }

    fn partial_path(&self, sha: &str) -> PathBuf {
        self.blobs.join("partial").join(sha)
    }

    fn complete_path(&self, sha: &str) -> PathBuf {
        self.blobs.join(sha)
    }
}

fn file_len(path: &Path) -> Result<Option<u64>, StorageError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

impl Storage for SqliteStorage {
    async fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StorageError> {
        let conn = self.reader.clone();
        let id = device_id.to_owned();
        blocking(move || {
            let c = lock(&conn);
            let row = c
                .query_row(
                    "SELECT device_id, signing_key, age_recipient, role, revocation FROM devices WHERE device_id = ?1",
                    params![id],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, Vec<u8>>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, Option<String>>(4)?,
                        ))
                    },
                )
                .optional()?;
            Ok(row.and_then(|(device_id, key, age, role, revocation)| {
                Some(DeviceRecord {
                    device_id,
                    signing_public_key: key,
                    age_recipient: age,
                    role: DeviceRole::parse(&role)?,
                    revocation,
                })
            }))
        })
        .await
    }

    async fn enroll(
        &self,
        code_id: &str,
        device: &DeviceRecord,
        now_s: u64,
    ) -> Result<(), StorageError> {
        let conn = self.writer.clone();
        let code = code_id.to_owned();
        let d = device.clone();
        blocking(move || {
            let mut c = lock(&conn);
            durable(&c)?;
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let used: Option<i64> = tx
                .query_row("SELECT 1 FROM used_codes WHERE code_id = ?1", params![code], |r| r.get(0))
                .optional()?;
            if used.is_some() {
                return Err(StorageError::CodeUsed);
            }
            let known: Option<i64> = tx
                .query_row("SELECT 1 FROM devices WHERE device_id = ?1", params![d.device_id], |r| r.get(0))
                .optional()?;
            if known.is_some() {
                return Err(StorageError::AlreadyEnrolled);
            }
            tx.execute(
                "INSERT INTO used_codes (code_id, device_id, used_at) VALUES (?1, ?2, ?3)",
                params![code, d.device_id, to_i64(now_s)],
            )?;
            tx.execute(
                "INSERT INTO devices (device_id, signing_key, age_recipient, role, enrolled_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![d.device_id, d.signing_public_key, d.age_recipient, d.role.as_str(), to_i64(now_s)],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn revoke(&self, device_id: &str, revocation_json: &str) -> Result<(), StorageError> {
        let conn = self.writer.clone();
        let id = device_id.to_owned();
        let rev = revocation_json.to_owned();
        blocking(move || {
            let c = lock(&conn);
            durable(&c)?;
            // The first revocation is kept: a later one changes nothing about the device's state.
            let n = c.execute(
                "UPDATE devices SET revocation = COALESCE(revocation, ?2) WHERE device_id = ?1",
                params![id, rev],
            )?;
            if n == 0 {
                return Err(StorageError::UnknownDevice);
            }
            Ok(())
        })
        .await
    }

    async fn revocations(&self) -> Result<Vec<String>, StorageError> {
        let conn = self.reader.clone();
        blocking(move || {
            let c = lock(&conn);
            let mut st = c.prepare(
                "SELECT revocation FROM devices WHERE revocation IS NOT NULL ORDER BY device_id",
            )?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn record_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        timestamp_ms: u64,
    ) -> Result<bool, StorageError> {
        let conn = self.writer.clone();
        let id = device_id.to_owned();
        let n = nonce.to_owned();
        blocking(move || {
            let c = lock(&conn);
            // The one write that is not fsynced at commit (docs/PROTOCOL.md, "Durability"): a
            // nonce lost to a power cut reopens a 5-minute replay window for requests that are
            // idempotent anyway, and an fsync per request (pulls included) was most of the
            // latency under load. A process crash loses nothing (WAL in the page cache).
            c.pragma_update(None, "synchronous", "NORMAL")?;
            let inserted = c.execute(
                "INSERT OR IGNORE INTO nonces (device_id, nonce, ts) VALUES (?1, ?2, ?3)",
                params![id, n, to_i64(timestamp_ms)],
            );
            durable(&c)?;
            Ok(inserted? == 1)
        })
        .await
    }

    async fn purge_nonces(&self, before_ms: u64) -> Result<u64, StorageError> {
        let conn = self.writer.clone();
        blocking(move || {
            let c = lock(&conn);
            let n = c.execute(
                "DELETE FROM nonces WHERE ts < ?1",
                params![to_i64(before_ms)],
            )?;
            Ok(n as u64)
        })
        .await
    }

    async fn push(
        &self,
        sender: &str,
        envelopes: &[NewEnvelope],
        now_ms: u64,
    ) -> Result<Vec<PushAck>, StorageError> {
        let conn = self.writer.clone();
        let sender = sender.to_owned();
        let envs = envelopes.to_vec();
        blocking(move || {
            let mut c = lock(&conn);
            durable(&c)?;
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut next: i64 =
                tx.query_row("SELECT COALESCE(MAX(seq), 0) FROM envelopes", [], |r| r.get(0))?;
            let mut acks = Vec::with_capacity(envs.len());
            {
                let mut find = tx.prepare_cached("SELECT seq, sender FROM envelopes WHERE id = ?1")?;
                let mut ins = tx.prepare_cached(
                    "INSERT INTO envelopes (seq, id, sender, payload, stored_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                let mut route =
                    tx.prepare_cached("INSERT OR IGNORE INTO routes (recipient, seq) VALUES (?1, ?2)")?;
                for e in &envs {
                    let existing: Option<(i64, String)> = find
                        .query_row(params![e.id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()?;
                    if let Some((seq, owner)) = existing {
                        if owner != sender {
                            return Err(StorageError::IdConflict(e.id.clone()));
                        }
                        acks.push(PushAck { id: e.id.clone(), seq: to_u64(seq), duplicate: true });
                        continue;
                    }
                    next += 1;
                    ins.execute(params![next, e.id, sender, e.payload, to_i64(now_ms)])?;
                    for r in &e.recipients {
                        route.execute(params![r, next])?;
                    }
                    acks.push(PushAck { id: e.id.clone(), seq: to_u64(next), duplicate: false });
                }
            }
            tx.commit()?;
            Ok(acks)
        })
        .await
    }

    async fn pull(
        &self,
        recipients: &[String],
        after: u64,
        limit: u32,
    ) -> Result<(Vec<StoredEnvelope>, bool), StorageError> {
        let conn = self.reader.clone();
        let first = recipients.first().cloned().unwrap_or_default();
        let second = recipients.get(1).cloned().unwrap_or_else(|| first.clone());
        blocking(move || {
            let c = lock(&conn);
            let mut st = c.prepare_cached(
                // A merge of two index ranges, stopped at the limit: O(page), not O(backlog).
                // (A DISTINCT over the join sorted every remaining envelope, payloads included,
                // for every page: pulling a large backlog was quadratic.)
                "SELECT e.seq, e.id, e.sender, e.payload FROM envelopes e WHERE e.seq IN (
                     SELECT seq FROM routes WHERE recipient = ?1 AND seq > ?3
                     UNION
                     SELECT seq FROM routes WHERE recipient = ?2 AND seq > ?3
                     ORDER BY seq LIMIT ?4)
                 ORDER BY e.seq",
            )?;
            let rows = st.query_map(
                params![first, second, to_i64(after), i64::from(limit) + 1],
                |r| {
                    Ok(StoredEnvelope {
                        seq: to_u64(r.get(0)?),
                        id: r.get(1)?,
                        sender: r.get(2)?,
                        payload: r.get(3)?,
                    })
                },
            )?;
            let mut out = rows.collect::<Result<Vec<_>, _>>()?;
            let more = out.len() > limit as usize;
            out.truncate(limit as usize);
            Ok((out, more))
        })
        .await
    }

    async fn max_seq(&self) -> Result<u64, StorageError> {
        let conn = self.reader.clone();
        blocking(move || {
            let c = lock(&conn);
            let v: i64 = c.query_row("SELECT COALESCE(MAX(seq), 0) FROM envelopes", [], |r| {
                r.get(0)
            })?;
            Ok(to_u64(v))
        })
        .await
    }

    async fn blob_status(&self, sha256: &str) -> Result<BlobStatus, StorageError> {
        let done = self.complete_path(sha256);
        let part = self.partial_path(sha256);
        blocking(move || {
            if let Some(len) = file_len(&done)? {
                return Ok(BlobStatus {
                    held: len,
                    complete: true,
                });
            }
            Ok(BlobStatus {
                held: file_len(&part)?.unwrap_or(0),
                complete: false,
            })
        })
        .await
    }

    async fn blob_append(
        &self,
        sha256: &str,
        offset: u64,
        data: &[u8],
        max_size: u64,
    ) -> Result<u64, StorageError> {
        let done = self.complete_path(sha256);
        let part = self.partial_path(sha256);
        let dir = self.blobs.join("partial");
        let data = data.to_vec();
        let guard = self.blob_lock.clone();
        blocking(move || {
            let _g = lock(&guard);
            if file_len(&done)?.is_some() {
                return Err(StorageError::BlobComplete);
            }
            let held = file_len(&part)?.unwrap_or(0);
            if held != offset {
                return Err(StorageError::OffsetMismatch { held });
            }
            let new_len = held.saturating_add(data.len() as u64);
            if new_len > max_size {
                return Err(StorageError::BlobTooLarge);
            }
            let created = held == 0;
            let mut f = OpenOptions::new().create(true).append(true).open(&part)?;
            f.write_all(&data)?;
            // Acknowledged chunks must survive a crash, or a resumed upload would skip lost bytes.
            f.sync_data()?;
            if created {
                sync_dir(&dir)?;
            }
            Ok(new_len)
        })
        .await
    }

    async fn blob_complete(&self, sha256: &str) -> Result<Option<u64>, StorageError> {
        let done = self.complete_path(sha256);
        let part = self.partial_path(sha256);
        let blobs = self.blobs.clone();
        let sha = sha256.to_owned();
        let guard = self.blob_lock.clone();
        blocking(move || {
            let _g = lock(&guard);
            if let Some(len) = file_len(&done)? {
                return Ok(Some(len));
            }
            let mut f = match File::open(&part) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let mut ctx = digest::Context::new(&digest::SHA256);
            let mut buf = vec![0u8; 64 * 1024];
            let mut len = 0u64;
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                len += n as u64;
                ctx.update(&buf[..n]);
            }
            let got = amanat_protocol::to_hex(ctx.finish().as_ref());
            if got != sha {
                fs::remove_file(&part)?;
                return Ok(None);
            }
            fs::rename(&part, &done)?;
            sync_dir(&blobs)?;
            Ok(Some(len))
        })
        .await
    }

    async fn blob_read(
        &self,
        sha256: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        let done = self.complete_path(sha256);
        blocking(move || {
            let mut f = match File::open(&done) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let total = f.metadata()?.len();
            let start = start.min(total);
            let len = len.min(total - start);
            f.seek(SeekFrom::Start(start))?;
            let mut out = vec![0u8; usize::try_from(len).unwrap_or(0)];
            f.read_exact(&mut out)?;
            Ok(Some((total, out)))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn synchronous(s: &SqliteStorage) -> i64 {
        lock(&s.writer)
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    }

    /// The nonce commits under NORMAL (1) and leaves the writer at FULL (2) for every
    /// acknowledged write after it, whether the nonce was new or a replay.
    #[tokio::test]
    async fn a_nonce_insert_leaves_the_writer_fsyncing() {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStorage::open(dir.path()).unwrap();
        assert_eq!(synchronous(&s), 2);
        assert!(s.record_nonce("d", "n1", 1).await.unwrap());
        assert_eq!(synchronous(&s), 2);
        assert!(!s.record_nonce("d", "n1", 1).await.unwrap());
        assert_eq!(synchronous(&s), 2);
    }
}
