//! PostgreSQL backend: all state, blobs included, in one database, so any number of stateless
//! relays behind a load balancer can share it.
//!
//! * **Gap-free sequence**: a PostgreSQL `SEQUENCE` skips numbers on rollback, so it is not used.
//!   A transaction locks the single `counters` row (`SELECT … FOR UPDATE`) first, then checks
//!   which ids are new, inserts and bumps the counter: pushes from all relays are serialised on
//!   that row and a rollback leaves no gap. Pushes are written in groups by one task per relay
//!   ([`push_writer`]: group commit, multi-row inserts), so the lock and the commit's WAL flush
//!   are paid once per group, not once per push.
//! * **Prepared statements**: every statement of the request path (device lookup, nonce, push
//!   group, pull) is prepared once per pooled connection (`prepare_cached`) instead of parsed and
//!   planned on every call, which also saves the parse round trip.
//! * **Blobs** are stored as chunks in `blob_chunks` (one row per uploaded chunk, bytea) rather
//!   than in a shared directory: no network file system to set up or keep consistent, and the
//!   chunk rows commit with the blob's length, so "offset held" is exact after a crash.
//! * **Transport**: plain TCP to a loopback or private-network database (no TLS in this build:
//!   the deployment must put PostgreSQL on a trusted link, see PROTOCOL.md).

use super::migrations;
use super::storage::{
    BlobStatus, DeviceRecord, NewEnvelope, Storage, StorageError, StoredEnvelope,
};
use amanat_protocol::{DeviceRole, PushAck};
use deadpool_postgres::{Config, ManagerConfig, Pool, PoolConfig, RecyclingMethod, Runtime};
use ring::digest;
use tokio_postgres::NoTls;

/// The PostgreSQL backend (a connection pool, and the task that writes pushes in groups).
#[derive(Clone)]
pub struct PgStorage {
    pool: Pool,
    pushes: tokio::sync::mpsc::Sender<PushJob>,
}

/// One push waiting for the group writer.
struct PushJob {
    sender: String,
    envelopes: Vec<NewEnvelope>,
    now_ms: u64,
    reply: tokio::sync::oneshot::Sender<Result<Vec<PushAck>, StorageError>>,
}

/// Pushes written in one transaction at most (the group the writer takes from its queue).
const PUSH_GROUP: usize = 64;

fn be<E: std::fmt::Display>(e: E) -> StorageError {
    StorageError::Backend(format!("postgres: {e}"))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl PgStorage {
    /// Connects to `url` (e.g. `postgres://user@127.0.0.1:55432/amanat`) and brings the schema to
    /// the current version ([`migrations`]; a newer one is refused).
    pub async fn connect(url: &str, max_connections: usize) -> Result<Self, StorageError> {
        let mut cfg = Config::new();
        cfg.url = Some(url.to_owned());
        cfg.manager = Some(ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        });
        let mut pc = PoolConfig::new(max_connections.max(1));
        pc.timeouts.wait = Some(std::time::Duration::from_secs(10));
        pc.timeouts.create = Some(std::time::Duration::from_secs(10));
        cfg.pool = Some(pc);
        let pool = cfg.create_pool(Some(Runtime::Tokio1), NoTls).map_err(be)?;
        let (pushes, queue) = tokio::sync::mpsc::channel(4 * PUSH_GROUP);
        tokio::spawn(push_writer(pool.clone(), queue));
        let store = Self { pool, pushes };
        let mut client = store.client().await?;
        migrations::apply_postgres(&mut client, migrations::POSTGRES).await?;
        drop(client);
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(be)
    }
}

/// Writes queued pushes, as many as are waiting (up to [`PUSH_GROUP`]), in one transaction:
/// group commit. The counter row that keeps the sequence gap-free is locked once per group and
/// one commit (one WAL flush) serves every push in it, instead of each push holding the lock
/// through its own commit; pushes from several relays still serialise on that row, a group at a
/// time. Each push stays atomic and idempotent: one whose id is held for another sender is
/// refused alone; a database failure fails the whole group (every device retries the same ids).
async fn push_writer(pool: Pool, mut queue: tokio::sync::mpsc::Receiver<PushJob>) {
    while let Some(first) = queue.recv().await {
        let mut jobs = vec![first];
        while jobs.len() < PUSH_GROUP {
            match queue.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        match write_group(&pool, &jobs).await {
            Ok(results) => {
                for (job, result) in jobs.into_iter().zip(results) {
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                let text = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(StorageError::Backend(text.clone())));
                }
            }
        }
    }
}

/// One transaction for a group of pushes; returns each push's outcome.
async fn write_group(
    pool: &Pool,
    jobs: &[PushJob],
) -> Result<Vec<Result<Vec<PushAck>, StorageError>>, StorageError> {
    let mut c = pool.get().await.map_err(be)?;
    let tx = c.transaction().await.map_err(be)?;
    let lock = tx
        .prepare_cached("SELECT value FROM counters WHERE name = 'envelope_seq' FOR UPDATE")
        .await
        .map_err(be)?;
    let row = tx.query_one(&lock, &[]).await.map_err(be)?;
    let mut next: i64 = row.get(0);
    let ids: Vec<&str> = jobs
        .iter()
        .flat_map(|j| j.envelopes.iter().map(|e| e.id.as_str()))
        .collect();
    let lookup = tx
        .prepare_cached("SELECT id, seq, sender FROM envelopes WHERE id = ANY($1)")
        .await
        .map_err(be)?;
    let existing = tx.query(&lookup, &[&ids]).await.map_err(be)?;
    let mut known: std::collections::HashMap<String, (i64, String)> = existing
        .iter()
        .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2))))
        .collect();
    let start = next;
    let (mut seqs, mut new_ids, mut senders, mut payloads, mut stored) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut route_to, mut route_seq) = (Vec::new(), Vec::new());
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        // All or nothing per push: an id held for another sender refuses this push alone.
        if let Some(e) = job.envelopes.iter().find(|e| {
            known
                .get(&e.id)
                .is_some_and(|(_, owner)| *owner != job.sender)
        }) {
            results.push(Err(StorageError::IdConflict(e.id.clone())));
            continue;
        }
        let mut acks = Vec::with_capacity(job.envelopes.len());
        for e in &job.envelopes {
            if let Some((seq, _)) = known.get(&e.id) {
                acks.push(PushAck {
                    id: e.id.clone(),
                    seq: to_u64(*seq),
                    duplicate: true,
                });
                continue;
            }
            next += 1;
            seqs.push(next);
            new_ids.push(e.id.as_str());
            senders.push(job.sender.as_str());
            payloads.push(e.payload.as_slice());
            stored.push(to_i64(job.now_ms));
            for r in &e.recipients {
                route_to.push(r.as_str());
                route_seq.push(next);
            }
            known.insert(e.id.clone(), (next, job.sender.clone()));
            acks.push(PushAck {
                id: e.id.clone(),
                seq: to_u64(next),
                duplicate: false,
            });
        }
        results.push(Ok(acks));
    }
    // Multi-row statements (UNNEST): a fixed number of round trips per group.
    if !seqs.is_empty() {
        let insert = tx
            .prepare_cached(
                "INSERT INTO envelopes (seq, id, sender, payload, stored_at) \
                 SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::BYTEA[], $5::BIGINT[])",
            )
            .await
            .map_err(be)?;
        tx.execute(&insert, &[&seqs, &new_ids, &senders, &payloads, &stored])
            .await
            .map_err(be)?;
    }
    if !route_seq.is_empty() {
        let routes = tx
            .prepare_cached(
                "INSERT INTO routes (recipient, seq) \
                 SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[]) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(be)?;
        tx.execute(&routes, &[&route_to, &route_seq])
            .await
            .map_err(be)?;
    }
    if next != start {
        let advance = tx
            .prepare_cached("UPDATE counters SET value = $1 WHERE name = 'envelope_seq'")
            .await
            .map_err(be)?;
        tx.execute(&advance, &[&next]).await.map_err(be)?;
    }
    tx.commit().await.map_err(be)?;
    Ok(results)
}

impl Storage for PgStorage {
    async fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StorageError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "SELECT device_id, signing_key, age_recipient, role, revocation FROM devices WHERE device_id = $1",
            )
            .await
            .map_err(be)?;
        let row = c.query_opt(&stmt, &[&device_id]).await.map_err(be)?;
        Ok(row.and_then(|r| {
            Some(DeviceRecord {
                device_id: r.get(0),
                signing_public_key: r.get(1),
                age_recipient: r.get(2),
                role: DeviceRole::parse(r.get(3))?,
                revocation: r.get(4),
            })
        }))
    }

    async fn enroll(
        &self,
        code_id: &str,
        device: &DeviceRecord,
        now_s: u64,
    ) -> Result<(), StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(be)?;
        let n = tx
            .execute(
                "INSERT INTO used_codes (code_id, device_id, used_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&code_id, &device.device_id, &to_i64(now_s)],
            )
            .await
            .map_err(be)?;
        if n == 0 {
            return Err(StorageError::CodeUsed);
        }
        let n = tx
            .execute(
                "INSERT INTO devices (device_id, signing_key, age_recipient, role, enrolled_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    &device.device_id,
                    &device.signing_public_key,
                    &device.age_recipient,
                    &device.role.as_str(),
                    &to_i64(now_s),
                ],
            )
            .await
            .map_err(be)?;
        if n == 0 {
            return Err(StorageError::AlreadyEnrolled);
        }
        tx.commit().await.map_err(be)
    }

    async fn revoke(&self, device_id: &str, revocation_json: &str) -> Result<(), StorageError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE devices SET revocation = COALESCE(revocation, $2) WHERE device_id = $1",
                &[&device_id, &revocation_json],
            )
            .await
            .map_err(be)?;
        if n == 0 {
            return Err(StorageError::UnknownDevice);
        }
        Ok(())
    }

    async fn revocations(&self) -> Result<Vec<String>, StorageError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT revocation FROM devices WHERE revocation IS NOT NULL ORDER BY device_id",
                &[],
            )
            .await
            .map_err(be)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn record_nonce(
        &self,
        device_id: &str,
        nonce: &str,
        timestamp_ms: u64,
    ) -> Result<bool, StorageError> {
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO nonces (device_id, nonce, ts) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(be)?;
        let n = c
            .execute(&stmt, &[&device_id, &nonce, &to_i64(timestamp_ms)])
            .await
            .map_err(be)?;
        Ok(n == 1)
    }

    async fn purge_nonces(&self, before_ms: u64) -> Result<u64, StorageError> {
        let c = self.client().await?;
        c.execute("DELETE FROM nonces WHERE ts < $1", &[&to_i64(before_ms)])
            .await
            .map_err(be)
    }

    async fn push(
        &self,
        sender: &str,
        envelopes: &[NewEnvelope],
        now_ms: u64,
    ) -> Result<Vec<PushAck>, StorageError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = PushJob {
            sender: sender.to_owned(),
            envelopes: envelopes.to_vec(),
            now_ms,
            reply,
        };
        self.pushes
            .send(job)
            .await
            .map_err(|_| be("push writer stopped"))?;
        answer.await.map_err(|_| be("push writer stopped"))?
    }

    async fn pull(
        &self,
        recipients: &[String],
        after: u64,
        limit: u32,
    ) -> Result<(Vec<StoredEnvelope>, bool), StorageError> {
        let first = recipients.first().cloned().unwrap_or_default();
        let second = recipients.get(1).cloned().unwrap_or_else(|| first.clone());
        let c = self.client().await?;
        let stmt = c
            .prepare_cached(
                // Each recipient's index range stopped at the limit, then merged: O(page), not
                // O(backlog) (the plain semi-join read every remaining route for every page).
                "SELECT e.seq, e.id, e.sender, e.payload FROM envelopes e WHERE e.seq IN (
                     SELECT seq FROM (
                         (SELECT seq FROM routes WHERE recipient = $1 AND seq > $3 ORDER BY seq LIMIT $4)
                         UNION
                         (SELECT seq FROM routes WHERE recipient = $2 AND seq > $3 ORDER BY seq LIMIT $4)
                     ) s ORDER BY seq LIMIT $4)
                 ORDER BY e.seq",
            )
            .await
            .map_err(be)?;
        let rows = c
            .query(
                &stmt,
                &[&first, &second, &to_i64(after), &(i64::from(limit) + 1)],
            )
            .await
            .map_err(be)?;
        let mut out: Vec<StoredEnvelope> = rows
            .iter()
            .map(|r| StoredEnvelope {
                seq: to_u64(r.get(0)),
                id: r.get(1),
                sender: r.get(2),
                payload: r.get(3),
            })
            .collect();
        let more = out.len() > limit as usize;
        out.truncate(limit as usize);
        Ok((out, more))
    }

    async fn max_seq(&self) -> Result<u64, StorageError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT value FROM counters WHERE name = 'envelope_seq'",
                &[],
            )
            .await
            .map_err(be)?;
        Ok(to_u64(r.get(0)))
    }

    async fn blob_status(&self, sha256: &str) -> Result<BlobStatus, StorageError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT size, complete FROM blobs WHERE sha256 = $1",
                &[&sha256],
            )
            .await
            .map_err(be)?;
        Ok(match r {
            Some(r) => BlobStatus {
                held: to_u64(r.get(0)),
                complete: r.get(1),
            },
            None => BlobStatus {
                held: 0,
                complete: false,
            },
        })
    }

    async fn blob_append(
        &self,
        sha256: &str,
        offset: u64,
        data: &[u8],
        max_size: u64,
    ) -> Result<u64, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(be)?;
        tx.execute(
            "INSERT INTO blobs (sha256, size, complete) VALUES ($1, 0, false) ON CONFLICT DO NOTHING",
            &[&sha256],
        )
        .await
        .map_err(be)?;
        let r = tx
            .query_one(
                "SELECT size, complete FROM blobs WHERE sha256 = $1 FOR UPDATE",
                &[&sha256],
            )
            .await
            .map_err(be)?;
        let held = to_u64(r.get(0));
        if r.get::<_, bool>(1) {
            return Err(StorageError::BlobComplete);
        }
        if held != offset {
            return Err(StorageError::OffsetMismatch { held });
        }
        let new_len = held.saturating_add(data.len() as u64);
        if new_len > max_size {
            return Err(StorageError::BlobTooLarge);
        }
        tx.execute(
            "INSERT INTO blob_chunks (sha256, off, data) VALUES ($1, $2, $3)",
            &[&sha256, &to_i64(held), &data],
        )
        .await
        .map_err(be)?;
        tx.execute(
            "UPDATE blobs SET size = $2 WHERE sha256 = $1",
            &[&sha256, &to_i64(new_len)],
        )
        .await
        .map_err(be)?;
        tx.commit().await.map_err(be)?;
        Ok(new_len)
    }

    async fn blob_complete(&self, sha256: &str) -> Result<Option<u64>, StorageError> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(be)?;
        let r = tx
            .query_opt(
                "SELECT size, complete FROM blobs WHERE sha256 = $1 FOR UPDATE",
                &[&sha256],
            )
            .await
            .map_err(be)?;
        let Some(r) = r else { return Ok(None) };
        let size = to_u64(r.get(0));
        if r.get::<_, bool>(1) {
            return Ok(Some(size));
        }
        // Hash chunk by chunk, a page at a time, so a large blob is never held whole in memory.
        let mut ctx = digest::Context::new(&digest::SHA256);
        let mut pos: i64 = 0;
        loop {
            let rows = tx
                .query(
                    "SELECT off, data FROM blob_chunks WHERE sha256 = $1 AND off >= $2 ORDER BY off LIMIT 16",
                    &[&sha256, &pos],
                )
                .await
                .map_err(be)?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let data: &[u8] = row.get(1);
                ctx.update(data);
                pos = row.get::<_, i64>(0) + i64::try_from(data.len()).unwrap_or(i64::MAX);
            }
        }
        let got = amanat_protocol::to_hex(ctx.finish().as_ref());
        if got != sha256 {
            tx.execute("DELETE FROM blob_chunks WHERE sha256 = $1", &[&sha256])
                .await
                .map_err(be)?;
            tx.execute("DELETE FROM blobs WHERE sha256 = $1", &[&sha256])
                .await
                .map_err(be)?;
            tx.commit().await.map_err(be)?;
            return Ok(None);
        }
        tx.execute(
            "UPDATE blobs SET complete = true WHERE sha256 = $1",
            &[&sha256],
        )
        .await
        .map_err(be)?;
        tx.commit().await.map_err(be)?;
        Ok(Some(size))
    }

    async fn blob_read(
        &self,
        sha256: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<(u64, Vec<u8>)>, StorageError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT size, complete FROM blobs WHERE sha256 = $1",
                &[&sha256],
            )
            .await
            .map_err(be)?;
        let Some(r) = r else { return Ok(None) };
        if !r.get::<_, bool>(1) {
            return Ok(None);
        }
        let total = to_u64(r.get(0));
        let start = start.min(total);
        let end = start + len.min(total - start);
        let rows = c
            .query(
                "SELECT off, data FROM blob_chunks WHERE sha256 = $1 AND off < $3 AND off + length(data) > $2 ORDER BY off",
                &[&sha256, &to_i64(start), &to_i64(end)],
            )
            .await
            .map_err(be)?;
        let mut out = Vec::with_capacity(usize::try_from(end - start).unwrap_or(0));
        for row in &rows {
            let off = to_u64(row.get(0));
            let data: &[u8] = row.get(1);
            let from = usize::try_from(start.saturating_sub(off)).unwrap_or(0);
            let to = usize::try_from(end.saturating_sub(off))
                .unwrap_or(0)
                .min(data.len());
            if from < to {
                out.extend_from_slice(&data[from..to]);
            }
        }
        Ok(Some((total, out)))
    }
}
