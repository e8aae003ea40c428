#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Upgrade from version 1: a database made exactly as the relay made it before its schema was
//! versioned (the frozen `0001_initial.sql`, no version table), holding an enrolled device, an
//! envelope and a revocation, is opened by today's relay, migrated to the latest version, and
//! served without losing anything. A database newer than the binary is refused with a typed
//! error; a failing migration leaves no trace. Each on SQLite and PostgreSQL.

mod support;

use amanat_protocol::{DeviceRole, OrgPublic, PullResponse, Revocation};
use amanat_server::relay::{
    self, migrations, postgres::PgStorage, sqlite::SqliteStorage, storage::StorageError,
    RelayConfig, RunningRelay,
};
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use std::collections::BTreeMap;
use std::path::Path;

const V1_SQLITE: &str = include_str!("../src/relay/migrations/sqlite/0001_initial.sql");
const V1_POSTGRES: &str = include_str!("../src/relay/migrations/postgres/0001_initial.sql");
const ENVELOPE_ID: &str = "01890a5d-ac96-774b-bcce-b302099a8057";
const PAYLOAD: &[u8] = b"ciphertext kept across the upgrade";

fn key() -> Ed25519KeyPair {
    amanat_protocol::ed25519_from_pkcs8(&amanat_protocol::generate_ed25519_pkcs8().unwrap())
        .unwrap()
}

struct World {
    org_key: Ed25519KeyPair,
    org: OrgPublic,
    device: Ed25519KeyPair,
    device_id: String,
    revoked_id: String,
    revocation: String,
}

impl World {
    fn new() -> Self {
        let org_key = key();
        let mut groups = BTreeMap::new();
        for g in amanat_protocol::RECIPIENT_GROUPS {
            groups.insert(
                g.to_owned(),
                age::x25519::Identity::generate().to_public().to_string(),
            );
        }
        let mut org = OrgPublic {
            version: 1,
            signing_public_key: amanat_protocol::to_hex(org_key.public_key().as_ref()),
            groups,
            fingerprint: String::new(),
        };
        org.fingerprint = org.compute_fingerprint();
        let device = key();
        let device_id = amanat_protocol::device_id(device.public_key().as_ref());
        let revoked_id = amanat_protocol::device_id(key().public_key().as_ref());
        let revocation = serde_json::to_string(&Revocation::issue(
            &org_key,
            &org.fingerprint,
            &revoked_id,
            1_700_000_000,
        ))
        .unwrap();
        Self {
            org_key,
            org,
            device,
            device_id,
            revoked_id,
            revocation,
        }
    }

    /// What a version-1 relay had stored: two devices (one revoked), a used code, an envelope.
    fn v1_rows(&self) -> Vec<String> {
        let key_hex = amanat_protocol::to_hex(self.device.public_key().as_ref());
        let rec = age::x25519::Identity::generate().to_public().to_string();
        let payload_hex = amanat_protocol::to_hex(PAYLOAD);
        vec![
            format!("INSERT INTO devices (device_id, signing_key, age_recipient, role, enrolled_at, revocation) VALUES ('{}', X'{key_hex}', '{rec}', 'field', 1700000000, NULL)", self.device_id),
            format!("INSERT INTO devices (device_id, signing_key, age_recipient, role, enrolled_at, revocation) VALUES ('{}', X'{key_hex}', '{rec}', 'field', 1700000000, '{}')", self.revoked_id, self.revocation),
            format!("INSERT INTO used_codes (code_id, device_id, used_at) VALUES ('00112233445566778899aabbccddeeff', '{}', 1700000000)", self.device_id),
            format!("INSERT INTO envelopes (seq, id, sender, payload, stored_at) VALUES (1, '{ENVELOPE_ID}', '{}', X'{payload_hex}', 1700000000000)", self.revoked_id),
            format!("INSERT INTO routes (recipient, seq) VALUES ('{}', 1)", self.device_id),
        ]
    }

    async fn signed(
        &self,
        relay: &RunningRelay,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let h = amanat_protocol::sign_request(&self.device, method, path, relay::now_ms(), &body)
            .unwrap();
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = reqwest::Client::new()
            .request(m, format!("http://{}{}", relay.addr, path))
            .body(body);
        for (k, v) in h.pairs() {
            req = req.header(k, v);
        }
        let resp = req.send().await.unwrap();
        let s = resp.status().as_u16();
        let bytes = resp.bytes().await.unwrap();
        (
            s,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    /// The migrated relay serves what the version-1 database held, and takes new pushes.
    async fn check_served(&self, relay: &RunningRelay) {
        let (s, page) = self.signed(relay, "GET", "/v1/envelopes", vec![]).await;
        assert_eq!(s, 200, "{page}");
        let page: PullResponse = serde_json::from_value(page).unwrap();
        assert_eq!(page.envelopes.len(), 1);
        assert_eq!(page.envelopes[0].id, ENVELOPE_ID);
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&page.envelopes[0].payload)
                .unwrap(),
            PAYLOAD
        );
        let (s, revs) = self.signed(relay, "GET", "/v1/revocations", vec![]).await;
        assert_eq!(s, 200);
        let rev: Revocation = serde_json::from_value(revs["revocations"][0].clone()).unwrap();
        assert_eq!(rev.device_id, self.revoked_id);
        rev.verify(&self.org).unwrap();
        let _ = &self.org_key;
        let push = serde_json::json!({ "envelopes": [{
            "id": "01890a5d-ac96-774b-8cce-b302099a8058",
            "recipients": ["hq"],
            "payload": "AAEC",
        }]});
        let (s, out) = self
            .signed(
                relay,
                "POST",
                "/v1/envelopes",
                serde_json::to_vec(&push).unwrap(),
            )
            .await;
        assert_eq!(s, 200, "{out}");
        assert_eq!(out["acks"][0]["seq"], 2, "the sequence continues");
    }
}

fn sqlite_versions(dir: &Path) -> Vec<(i64, String)> {
    let c = rusqlite::Connection::open(dir.join("relay.db")).unwrap();
    let mut st = c
        .prepare(&format!(
            "SELECT version, name FROM {} ORDER BY version",
            migrations::VERSION_TABLE
        ))
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn expected_versions(list: &[migrations::Migration]) -> Vec<(i64, String)> {
    list.iter()
        .map(|m| (i64::from(m.version), m.name.to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_v1_database_is_migrated_and_served() {
    let w = World::new();
    let dir = tempfile::tempdir().unwrap();
    {
        // Exactly what the version-1 relay did on first start: its pragmas, then its schema.
        let c = rusqlite::Connection::open(dir.path().join("relay.db")).unwrap();
        c.pragma_update(None, "journal_mode", "WAL").unwrap();
        c.pragma_update(None, "synchronous", "FULL").unwrap();
        c.execute_batch(V1_SQLITE).unwrap();
        for row in w.v1_rows() {
            c.execute(&row, []).unwrap();
        }
        let has_version: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = ?1",
                [migrations::VERSION_TABLE],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(has_version, 0, "a version-1 database has no version table");
    }
    let listen = "127.0.0.1:0".parse().unwrap();
    let store = SqliteStorage::open(dir.path()).unwrap();
    let running = relay::start(listen, w.org.clone(), RelayConfig::default(), store)
        .await
        .unwrap();
    assert_eq!(
        sqlite_versions(dir.path()),
        expected_versions(migrations::SQLITE)
    );
    let c = rusqlite::Connection::open(dir.path().join("relay.db")).unwrap();
    let idx: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'devices_revoked'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(idx, 1, "migration 0002 applied");
    w.check_served(&running).await;
    running.stop().await.unwrap();
    // Reopening changes nothing.
    drop(SqliteStorage::open(dir.path()).unwrap());
    assert_eq!(
        sqlite_versions(dir.path()),
        expected_versions(migrations::SQLITE)
    );
    // A database migrated by a newer relay is refused, typed, and left untouched.
    c.execute(
        &format!(
            "INSERT INTO {} (version, name, applied_at) VALUES (99, 'from_the_future', 0)",
            migrations::VERSION_TABLE
        ),
        [],
    )
    .unwrap();
    let err = SqliteStorage::open(dir.path()).err().unwrap();
    assert!(
        matches!(err, StorageError::SchemaTooNew { found: 99, supported } if supported as usize == migrations::SQLITE.len()),
        "{err:?}"
    );
    assert!(err.to_string().contains("newer than this relay supports"));
}

async fn pg_versions(c: &tokio_postgres::Client) -> Vec<(i64, String)> {
    c.query(
        &format!(
            "SELECT version, name FROM {} ORDER BY version",
            migrations::VERSION_TABLE
        ),
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (i64::from(r.get::<_, i32>(0)), r.get(1)))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_v1_database_is_migrated_and_served() {
    if support::skip_postgres() {
        return;
    }
    let w = World::new();
    let url = support::fresh_pg_database().await;
    let c = support::pg_client(&url).await;
    // Exactly what the version-1 relay ran on first start.
    c.batch_execute(&format!(
        "SELECT pg_advisory_lock(7262616); {V1_POSTGRES} SELECT pg_advisory_unlock(7262616);"
    ))
    .await
    .unwrap();
    for row in w.v1_rows() {
        c.batch_execute(&row.replace("X'", "'\\x")).await.unwrap();
    }
    c.batch_execute("UPDATE counters SET value = 1 WHERE name = 'envelope_seq'")
        .await
        .unwrap();
    let listen = "127.0.0.1:0".parse().unwrap();
    let store = PgStorage::connect(&url, 4).await.unwrap();
    let running = relay::start(listen, w.org.clone(), RelayConfig::default(), store)
        .await
        .unwrap();
    assert_eq!(
        pg_versions(&c).await,
        expected_versions(migrations::POSTGRES)
    );
    let idx = c
        .query_one(
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname = 'devices_revoked'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(idx.get::<_, i64>(0), 1, "migration 0002 applied");
    w.check_served(&running).await;
    // Migration 0003: an envelope of incompressible ciphertext (like every real one) stays inline
    // and uncompressed instead of going through pglz into the TOAST table.
    let ciphertext: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ (i >> 8) as u8)
        .collect();
    c.execute(
        "INSERT INTO envelopes (seq, id, sender, payload, stored_at) VALUES (1000000, 'toast-probe', 'probe', $1, 0)",
        &[&ciphertext],
    )
    .await
    .unwrap();
    let toast: String = c
        .query_one(
            "SELECT reltoastrelid::regclass::text FROM pg_class WHERE relname = 'envelopes'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let toasted = c
        .query_one(&format!("SELECT COUNT(*) FROM {toast}"), &[])
        .await
        .unwrap();
    assert_eq!(
        toasted.get::<_, i64>(0),
        0,
        "no envelope payload in {toast}"
    );
    let stored = c
        .query_one(
            "SELECT pg_column_size(payload), payload FROM envelopes WHERE id = 'toast-probe'",
            &[],
        )
        .await
        .unwrap();
    assert!(stored.get::<_, i32>(0) >= 3000, "stored uncompressed");
    assert_eq!(stored.get::<_, Vec<u8>>(1), ciphertext);
    c.execute("DELETE FROM envelopes WHERE id = 'toast-probe'", &[])
        .await
        .unwrap();
    running.stop().await.unwrap();
    // Several relays starting at once on the migrated database: all fine, nothing reapplied.
    let (a, b) = tokio::join!(PgStorage::connect(&url, 2), PgStorage::connect(&url, 2));
    a.unwrap();
    b.unwrap();
    assert_eq!(
        pg_versions(&c).await,
        expected_versions(migrations::POSTGRES)
    );
    // A failing migration rolls back whole.
    let mut list = migrations::POSTGRES.to_vec();
    list.push(migrations::Migration {
        version: list.len() as u32 + 1,
        name: "broken",
        why: "test",
        sql: "CREATE TABLE half_done (x INTEGER); INSERT INTO no_such_table VALUES (1);",
    });
    let mut direct = support::pg_client(&url).await;
    let err = migrations::apply_postgres(&mut direct, &list)
        .await
        .unwrap_err();
    assert!(matches!(err, StorageError::Migration { .. }), "{err:?}");
    let half = c
        .query_one(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'half_done'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        half.get::<_, i64>(0),
        0,
        "nothing of the failed migration remains"
    );
    assert_eq!(
        pg_versions(&c).await,
        expected_versions(migrations::POSTGRES)
    );
    // A newer database is refused, typed.
    c.batch_execute(&format!(
        "INSERT INTO {} (version, name, applied_at) VALUES (99, 'from_the_future', 0)",
        migrations::VERSION_TABLE
    ))
    .await
    .unwrap();
    let err = PgStorage::connect(&url, 2).await.err().unwrap();
    assert!(
        matches!(err, StorageError::SchemaTooNew { found: 99, supported } if supported as usize == migrations::POSTGRES.len()),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_databases_get_every_migration() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStorage::open(dir.path()).unwrap());
    assert_eq!(
        sqlite_versions(dir.path()),
        expected_versions(migrations::SQLITE)
    );
    let _ = DeviceRole::Field;
    if support::skip_postgres() {
        return;
    }
    let url = support::fresh_pg_database().await;
    drop(PgStorage::connect(&url, 2).await.unwrap());
    let c = support::pg_client(&url).await;
    assert_eq!(
        pg_versions(&c).await,
        expected_versions(migrations::POSTGRES)
    );
}
