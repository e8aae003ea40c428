//! PostgreSQL backend: all state, blobs included, in one database, so any number of stateless
//! relays behind a load balancer can share it.
//!
//! * **Gap-free sequence**: a PostgreSQL `SEQUENCE` skips numbers on rollback, so it is not used.
//!   A push locks the single `counters` row (`SELECT … FOR UPDATE`) first, then checks which ids
//!   are new, inserts and bumps the counter in the same transaction: pushes from all relays are
//!   serialised on that row and a rollback leaves no gap. The lock is held for one batch only.
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

/// The PostgreSQL backend (a connection pool).
#[derive(Clone)]
pub struct PgStorage {
    pool: Pool,
}

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
        let store = Self { pool };
        let mut client = store.client().await?;
        migrations::apply_postgres(&mut client, migrations::POSTGRES).await?;
        drop(client);
        Ok(store)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StorageError> {
        self.pool.get().await.map_err(be)
    }
}

impl Storage for PgStorage {
    async fn device(&self, device_id: &str) -> Result<Option<DeviceRecord>, StorageError> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT device_id, signing_key, age_recipient, role, revocation FROM devices WHERE device_id = $1",
                &[&device_id],
            )
            .await
            .map_err(be)?;
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
        let n = c
            .execute(
                "INSERT INTO nonces (device_id, nonce, ts) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&device_id, &nonce, &to_i64(timestamp_ms)],
            )
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
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(be)?;
        let row = tx
            .query_one(
                "SELECT value FROM counters WHERE name = 'envelope_seq' FOR UPDATE",
                &[],
            )
            .await
            .map_err(be)?;
        let mut next: i64 = row.get(0);
        let ids: Vec<&str> = envelopes.iter().map(|e| e.id.as_str()).collect();
        let existing = tx
            .query(
                "SELECT id, seq, sender FROM envelopes WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(be)?;
        let mut known: std::collections::HashMap<String, (i64, String)> = existing
            .iter()
            .map(|r| (r.get::<_, String>(0), (r.get(1), r.get(2))))
            .collect();
        let ins = tx
            .prepare("INSERT INTO envelopes (seq, id, sender, payload, stored_at) VALUES ($1, $2, $3, $4, $5)")
            .await
            .map_err(be)?;
        let route = tx
            .prepare("INSERT INTO routes (recipient, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING")
            .await
            .map_err(be)?;
        let mut acks = Vec::with_capacity(envelopes.len());
        let start = next;
        for e in envelopes {
            if let Some((seq, owner)) = known.get(&e.id) {
                if owner != sender {
                    return Err(StorageError::IdConflict(e.id.clone()));
                }
                acks.push(PushAck {
                    id: e.id.clone(),
                    seq: to_u64(*seq),
                    duplicate: true,
                });
                continue;
            }
            next += 1;
            tx.execute(&ins, &[&next, &e.id, &sender, &e.payload, &to_i64(now_ms)])
                .await
                .map_err(be)?;
            for r in &e.recipients {
                tx.execute(&route, &[r, &next]).await.map_err(be)?;
            }
            known.insert(e.id.clone(), (next, sender.to_owned()));
            acks.push(PushAck {
                id: e.id.clone(),
                seq: to_u64(next),
                duplicate: false,
            });
        }
        if next != start {
            tx.execute(
                "UPDATE counters SET value = $1 WHERE name = 'envelope_seq'",
                &[&next],
            )
            .await
            .map_err(be)?;
        }
        tx.commit().await.map_err(be)?;
        Ok(acks)
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
        let rows = c
            .query(
                // Each recipient's index range stopped at the limit, then merged: O(page), not
                // O(backlog) (the plain semi-join read every remaining route for every page).
                "SELECT e.seq, e.id, e.sender, e.payload FROM envelopes e WHERE e.seq IN (
                     SELECT seq FROM (
                         (SELECT seq FROM routes WHERE recipient = $1 AND seq > $3 ORDER BY seq LIMIT $4)
                         UNION
                         (SELECT seq FROM routes WHERE recipient = $2 AND seq > $3 ORDER BY seq LIMIT $4)
                     ) s ORDER BY seq LIMIT $4)
                 ORDER BY e.seq",
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
