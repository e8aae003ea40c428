//! Versioned relay schema: numbered SQL files per backend, applied in order at startup, each in
//! its own transaction, recorded in `relay_schema_version`.
//!
//! Rules (why they exist):
//! * A released file never changes — a deployed relay has already run it; a test freezes the
//!   hash of each. A change is a new file with the next number.
//! * Each file says in its header what it does and why, except `0001_initial.sql`, which is kept
//!   byte for byte the schema that relays before versioning created (so a database made by them is
//!   exactly a version-1 database); its note is [`Migration::why`] below.
//! * Every statement must be transactional (no `CREATE INDEX CONCURRENTLY`, no `VACUUM`): a
//!   failing migration rolls back whole and the version stays where it was.
//! * A database whose version is newer than the binary knows is refused
//!   ([`StorageError::SchemaTooNew`]): an older relay must not write into a schema it does not
//!   understand (e.g. after a rollback of the deployment).
//! * A database made before versioning has the tables but no version table: it counts as version 0,
//!   and `0001` (all `IF NOT EXISTS`) changes nothing in it but records version 1.

use super::storage::StorageError;

/// One numbered schema change.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// 1, 2, 3, … without gaps: the schema version after it.
    pub version: u32,
    /// Short name (the file name without number and extension).
    pub name: &'static str,
    /// What it does and why, in one line (also in the file's header from 0002 on).
    pub why: &'static str,
    /// The SQL, run as one batch inside the migration's transaction.
    pub sql: &'static str,
}

const WHY_INITIAL: &str = "the schema of the first relay (devices, used codes, nonces, envelopes, \
routes; PostgreSQL also counters and blob chunks), kept byte for byte so a pre-versioning database \
is a version-1 database";
const WHY_REVOKED: &str =
    "partial index over revoked devices: GET /v1/revocations no longer scans \
every device ever enrolled";

const WHY_CIPHERTEXT_STORAGE: &str = "envelope payloads and blob chunks are stored uncompressed \
and envelopes inline up to 8 KB: ciphertext never compresses, and moving each 2 KB envelope into \
the TOAST table cost a second row and an index entry per push and a lookup per pull";

/// The SQLite migrations, in order.
pub const SQLITE: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        why: WHY_INITIAL,
        sql: include_str!("migrations/sqlite/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "devices_revoked_index",
        why: WHY_REVOKED,
        sql: include_str!("migrations/sqlite/0002_devices_revoked_index.sql"),
    },
];

/// The PostgreSQL migrations, in order.
pub const POSTGRES: &[Migration] = &[
    Migration {
        version: 1,
        name: "initial",
        why: WHY_INITIAL,
        sql: include_str!("migrations/postgres/0001_initial.sql"),
    },
    Migration {
        version: 2,
        name: "devices_revoked_index",
        why: WHY_REVOKED,
        sql: include_str!("migrations/postgres/0002_devices_revoked_index.sql"),
    },
    Migration {
        version: 3,
        name: "ciphertext_storage",
        why: WHY_CIPHERTEXT_STORAGE,
        sql: include_str!("migrations/postgres/0003_ciphertext_storage.sql"),
    },
];

/// The table that records applied migrations (one row each).
pub const VERSION_TABLE: &str = "relay_schema_version";

/// Key of the PostgreSQL advisory lock that serialises migrations of relays starting together.
const PG_LOCK_KEY: i64 = 7_262_616;

fn check_list(list: &[Migration]) -> Result<u32, StorageError> {
    for (i, m) in list.iter().enumerate() {
        if usize::try_from(m.version).ok() != Some(i + 1) {
            return Err(StorageError::Migration {
                version: m.version,
                reason: "migration list not numbered 1, 2, 3, …".into(),
            });
        }
    }
    Ok(u32::try_from(list.len()).unwrap_or(u32::MAX))
}

fn failed(m: &Migration, e: impl std::fmt::Display) -> StorageError {
    StorageError::Migration {
        version: m.version,
        reason: e.to_string(),
    }
}

/// Brings an SQLite database to the last version of `list`; returns that version.
pub fn apply_sqlite(
    conn: &mut rusqlite::Connection,
    list: &[Migration],
) -> Result<u32, StorageError> {
    let latest = check_list(list)?;
    loop {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL);"
        ))?;
        let current: i64 = tx.query_row(
            &format!("SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}"),
            [],
            |r| r.get(0),
        )?;
        let current = u32::try_from(current).unwrap_or(u32::MAX);
        if current > latest {
            return Err(StorageError::SchemaTooNew {
                found: current,
                supported: latest,
            });
        }
        let Some(m) = list.get(current as usize) else {
            tx.commit()?;
            return Ok(current);
        };
        tx.execute_batch(m.sql).map_err(|e| failed(m, e))?;
        tx.execute(
            &format!("INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES (?1, ?2, ?3)"),
            rusqlite::params![m.version, m.name, now_ms_i64()],
        )?;
        tx.commit()?;
        tracing::info!(version = m.version, name = m.name, "relay schema migrated");
    }
}

fn now_ms_i64() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn pg(e: tokio_postgres::Error) -> StorageError {
    StorageError::Backend(format!("postgres: {e}"))
}

/// Brings a PostgreSQL database to the last version of `list`; returns that version. Relays that
/// start together serialise on a transaction-scoped advisory lock (released by commit or
/// rollback, so a failure cannot leave it held on a pooled connection).
pub async fn apply_postgres(
    client: &mut tokio_postgres::Client,
    list: &[Migration],
) -> Result<u32, StorageError> {
    let latest = check_list(list)?;
    loop {
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(&format!(
            "SELECT pg_advisory_xact_lock({PG_LOCK_KEY});
             CREATE TABLE IF NOT EXISTS {VERSION_TABLE} (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);"
        ))
        .await
        .map_err(pg)?;
        let row = tx
            .query_one(
                &format!("SELECT COALESCE(MAX(version), 0) FROM {VERSION_TABLE}"),
                &[],
            )
            .await
            .map_err(pg)?;
        let current = u32::try_from(row.get::<_, i32>(0)).unwrap_or(0);
        if current > latest {
            return Err(StorageError::SchemaTooNew {
                found: current,
                supported: latest,
            });
        }
        let Some(m) = list.get(current as usize) else {
            tx.commit().await.map_err(pg)?;
            return Ok(current);
        };
        tx.batch_execute(m.sql).await.map_err(|e| failed(m, e))?;
        let version = i32::try_from(m.version).unwrap_or(i32::MAX);
        tx.execute(
            &format!("INSERT INTO {VERSION_TABLE} (version, name, applied_at) VALUES ($1, $2, $3)"),
            &[&version, &m.name, &now_ms_i64()],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        tracing::info!(version = m.version, name = m.name, "relay schema migrated");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// SHA-256 of every released migration file. A released file must never change (deployed
    /// relays have run it): write a new migration instead. Add a line when you add a file.
    const FROZEN: &[(&str, u32, &str)] = &[
        (
            "sqlite",
            1,
            "3d48df0f0a242c3660cceab2386d994436ca6aa6dda00f933af8f24bb21db15e",
        ),
        (
            "sqlite",
            2,
            "40af7627981f4ba18ced91528d3729c797b7911fa9d1f7b6abadd28494db786a",
        ),
        (
            "postgres",
            1,
            "e209e2f083420f8f178bc5fc86578de505d924d719e7a716df364945d7e2db90",
        ),
        (
            "postgres",
            2,
            "587425e84c17051c1471d524e1df3b5b0be24fdf83a8949154b7df3fedd42632",
        ),
        (
            "postgres",
            3,
            "4654dbf8a19a08d030a9e1aca26ce55167aca28e41bc68ecd0babce737bf6a35",
        ),
    ];

    #[test]
    fn released_migrations_are_frozen() {
        for (backend, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            assert_eq!(check_list(list).unwrap() as usize, list.len());
            for m in list {
                let frozen = FROZEN
                    .iter()
                    .find(|(b, v, _)| *b == backend && *v == m.version)
                    .unwrap_or_else(|| panic!("{backend} {} has no frozen hash", m.version));
                assert_eq!(
                    amanat_protocol::sha256_hex(m.sql.as_bytes()),
                    frozen.2,
                    "{backend} migration {} changed after release",
                    m.version
                );
                if m.version > 1 {
                    assert!(
                        m.sql.starts_with("-- Migration "),
                        "{backend} {}: header note",
                        m.version
                    );
                }
            }
        }
    }

    fn fresh() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("relay.db")).unwrap();
        (dir, conn)
    }

    fn version(conn: &rusqlite::Connection) -> i64 {
        conn.query_row(
            &format!("SELECT MAX(version) FROM {VERSION_TABLE}"),
            [],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn a_failing_migration_rolls_back_whole() {
        let (_d, mut conn) = fresh();
        let mut list = SQLITE.to_vec();
        list.push(Migration {
            version: 3,
            name: "broken",
            why: "test",
            sql: "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);",
        });
        let e = apply_sqlite(&mut conn, &list).unwrap_err();
        assert!(
            matches!(e, StorageError::Migration { version: 3, .. }),
            "{e:?}"
        );
        assert_eq!(version(&conn), 2, "the earlier migrations stay applied");
        let half: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(half, 0, "nothing of the failed migration remains");
        // Fixed, it applies.
        list[2].sql = "CREATE TABLE half_done (x INTEGER);";
        assert_eq!(apply_sqlite(&mut conn, &list).unwrap(), 3);
    }

    #[test]
    fn a_newer_database_is_refused_and_numbering_is_checked() {
        let (_d, mut conn) = fresh();
        assert_eq!(apply_sqlite(&mut conn, SQLITE).unwrap(), 2);
        assert_eq!(apply_sqlite(&mut conn, SQLITE).unwrap(), 2, "idempotent");
        let e = apply_sqlite(&mut conn, &SQLITE[..1]).unwrap_err();
        assert!(
            matches!(
                e,
                StorageError::SchemaTooNew {
                    found: 2,
                    supported: 1
                }
            ),
            "{e:?}"
        );
        let mut gap = SQLITE.to_vec();
        gap[1].version = 3;
        assert!(matches!(
            apply_sqlite(&mut conn, &gap).unwrap_err(),
            StorageError::Migration { .. }
        ));
    }

    #[test]
    fn revocations_query_uses_the_partial_index() {
        let (_d, mut conn) = fresh();
        apply_sqlite(&mut conn, SQLITE).unwrap();
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT revocation FROM devices WHERE revocation IS NOT NULL ORDER BY device_id",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("devices_revoked"), "{plan}");
    }
}
