//! The encrypted record store: SQLite (WAL, one writer) holding only sealed values.
//!
//! Every value is padded and sealed with ChaCha20-Poly1305 under the records subkey; the associated
//! data binds the collection, the record id and the version, so a ciphertext copied to another row,
//! another collection or replayed at another version fails to open. Plaintext columns hold only
//! random ids, a blind tag per collection, versions and padded sizes. Equality lookups go through
//! blind indexes (HMAC under their own subkey).
//!
//! The *set* of rows is authenticated too, by a sealed manifest updated in the same transaction as
//! every change ([`manifest`]): lists, lookups that find nothing and blind-index searches are checked
//! against it, so a row deleted behind the vault's back or hidden by a damaged index page is a
//! [`StoreError::Integrity`], never a silently shorter answer.
//!
//! Rollback of the whole database to an older copy (rows and manifest together) is *not* detected
//! here; signed, hash-chained interview versions (custody) detect it where it matters. See
//! docs/SECURITY.md.

use crate::clock::Clock;
use crate::crypto::{self, AeadKey, Cipher, CryptoError, NonceSource, Prf, SEAL_OVERHEAD};
use crate::names::labels;
use crate::secret::{SecretBytes, SecretKey};
use idset::IdSet;
use manifest::{Manifest, SetDigest, Tag};
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex};

mod idset;
pub mod manifest;
mod scoped;

pub use scoped::LockScoped;

/// Errors of the store. Messages never contain record content.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The vault was locked (or wiped) while this handle was in use.
    #[error("the vault is locked")]
    Locked,
    /// No record with that id in that collection.
    #[error("record not found")]
    NotFound,
    /// Optimistic concurrency: the record changed since it was read.
    #[error("version conflict: expected {expected}, found {found}")]
    VersionConflict {
        /// Version the caller based its change on.
        expected: u64,
        /// Version currently stored.
        found: u64,
    },
    /// A record with this id already exists.
    #[error("record already exists")]
    AlreadyExists,
    /// A sealed value failed authentication (altered, moved between rows, or from another vault),
    /// or the set of records disagrees with the sealed manifest (a record missing, hidden or added
    /// behind the vault's back).
    #[error("integrity check failed for stored records")]
    Integrity,
    /// The database file is damaged, truncated or not a database.
    #[error("the vault database is corrupt or not a vault database")]
    Corrupt,
    /// The database was written by a newer version of Amanat.
    #[error("the vault database has schema version {0}, newer than this app supports")]
    UnsupportedSchema(u32),
    /// A value could not be (de)serialized. The underlying message is dropped because serde
    /// messages can quote the offending data.
    #[error("a stored value has an unexpected shape")]
    Shape,
    /// Any other SQLite failure (disk full, I/O error, busy).
    #[error("database error: {0}")]
    Database(String),
    /// Randomness failure while sealing.
    #[error("cryptographic failure: {0}")]
    Crypto(CryptoError),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        match e {
            // The schema fixes every column's type; a value of another type (e.g. an integer
            // where an id blob belongs, after a flipped byte in an index page) is damage.
            rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt,
            _ => match e.sqlite_error_code() {
                Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt,
                _ => StoreError::Database(e.to_string()),
            },
        }
    }
}

impl From<CryptoError> for StoreError {
    fn from(e: CryptoError) -> Self {
        match e {
            CryptoError::Integrity | CryptoError::Malformed => StoreError::Integrity,
            other => StoreError::Crypto(other),
        }
    }
}

pub use crate::names::Collection;

/// A record id: 16 random bytes, so ids reveal neither order nor time of creation.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RecordId([u8; 16]);

impl RecordId {
    /// Builds an id from its bytes (e.g. received through sync).
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// Parses the 32-hex-digit form produced by `Display`.
    pub fn parse(s: &str) -> Option<Self> {
        let bytes = crate::fsutil::from_hex(s)?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::fsutil::to_hex(&self.0))
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({self})")
    }
}

/// A decrypted record. `Debug` redacts the value.
#[derive(Debug, Clone)]
pub struct Record {
    /// The record's id.
    pub id: RecordId,
    /// Version, starting at 1, incremented by every update.
    pub version: u64,
    /// The plaintext value (zeroized on drop).
    pub value: SecretBytes,
}

/// The subkeys the store needs, derived from the data key, and the cipher its values are sealed
/// with (fixed when the store is created; see [`Cipher`]).
pub(crate) struct StoreKeys {
    cipher: Cipher,
    records: SecretKey,
    index: SecretKey,
    manifest: SecretKey,
}

impl StoreKeys {
    /// The subkeys of `data_key` for a store sealed with `cipher`: the records key has a label per
    /// cipher, so no key is ever used with both.
    pub(crate) fn derive(data_key: &SecretKey, cipher: Cipher) -> Self {
        Self {
            cipher,
            records: crypto::derive_subkey(data_key, cipher.records_label()),
            index: crypto::derive_subkey(data_key, labels::BLIND_INDEX),
            manifest: crypto::derive_subkey(data_key, labels::MANIFEST),
        }
    }

    /// Seals `plaintext` (unpadded) under the records key with the store's cipher.
    fn seal(
        &self,
        nonces: &NonceSource,
        aad: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        crypto::seal_into_with(
            self.cipher,
            &self.records,
            nonces,
            aad,
            plaintext,
            false,
            &mut out,
        )?;
        Ok(out)
    }

    /// Opens a value sealed under the records key; a value of another cipher is refused.
    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
        crypto::open_with(self.cipher, &self.records, aad, sealed)
    }

    /// The records key's schedule, for the records of one transaction.
    fn aead(&self) -> Result<AeadKey, CryptoError> {
        AeadKey::new(self.cipher, &self.records)
    }
}

/// What [`Store::check_integrity`] went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCheck {
    /// Records counted and matched against the manifest.
    pub records: u64,
    /// Of those, records decrypted and authenticated (those of the collections passed in).
    pub records_opened: u64,
    /// Blind-index entries counted and matched against the manifest.
    pub index_entries: u64,
}

/// Schema migrations, applied in order; `PRAGMA user_version` counts how many ran. A step may also
/// need the keys ([`migrate`] runs the data part of step 2: the first manifest).
const MIGRATIONS: &[&str] = &[
    // 1: sealed records, blind indexes, sealed metadata.
    "CREATE TABLE meta (
        name TEXT PRIMARY KEY,
        sealed BLOB NOT NULL
     );
     CREATE TABLE records (
        collection BLOB NOT NULL,
        id BLOB NOT NULL,
        version INTEGER NOT NULL,
        padded_len INTEGER NOT NULL,
        sealed BLOB NOT NULL,
        PRIMARY KEY (collection, id)
     );
     CREATE TABLE blind_index (
        record_id BLOB NOT NULL,
        field BLOB NOT NULL,
        token BLOB NOT NULL,
        PRIMARY KEY (record_id, field)
     ) WITHOUT ROWID;
     CREATE INDEX blind_index_token ON blind_index (token);",
    // 2: blind-index entries keyed by field first, so a lookup reads the field's entries as one
    // range and checks them against the manifest (sealed in `meta`, written by `migrate`); one entry
    // per (record, field) stays enforced by a unique index.
    "CREATE TABLE blind_index_v2 (
        field BLOB NOT NULL,
        token BLOB NOT NULL,
        record_id BLOB NOT NULL,
        PRIMARY KEY (field, token, record_id)
     ) WITHOUT ROWID;
     INSERT INTO blind_index_v2 (field, token, record_id)
        SELECT field, token, record_id FROM blind_index NOT INDEXED;
     DROP TABLE blind_index;
     ALTER TABLE blind_index_v2 RENAME TO blind_index;
     CREATE UNIQUE INDEX blind_index_record ON blind_index (record_id, field);",
];

/// Name of the sealed manifest's row in `meta`.
const MANIFEST_ROW: &str = "manifest";

use crate::names::labels::{
    MANIFEST_AAD, MANIFEST_ENTRY, MANIFEST_RECORD, RECORD_AAD_PREFIX, STORE_CHECK_AAD as CHECK_AAD,
};

struct Inner {
    conn: Connection,
    keys: StoreKeys,
    nonces: NonceSource,
    tags: HashMap<&'static str, [u8; 16]>,
    scratch: Vec<u8>,
    checked: Checked,
}

/// What this open store has already checked against the manifest: the ids of each collection and
/// the entries of each blind-index field, each scanned once per unlock session and from then on
/// kept current by the store's own committed writes (a transaction that fails or is never
/// committed drops the whole cache, so the next use scans again). Without it, every lookup that
/// finds nothing — sync checking whether an envelope was applied, an insert under a chosen id —
/// rescanned its whole collection once per transaction: quadratic over a long sync.
///
/// Why this is sound: the manifest check detects rows hidden, added or altered in the database
/// file while the vault was locked (or by a crash); while the store is open this process is the
/// file's only writer, and every write it makes goes through these caches. docs/SECURITY.md.
#[derive(Default)]
struct Checked {
    records: HashMap<Tag, IdSet>,
    fields: HashMap<Tag, FieldEntries>,
    /// Full scans made so far (collections and fields), so tests can hold the cost down.
    scans: u64,
}

impl Checked {
    fn clear(&mut self) {
        self.records.clear();
        self.fields.clear();
    }
}

/// The checked entries of one blind-index field: record ids by token, and each record's token
/// (a record has at most one entry per field).
#[derive(Default)]
struct FieldEntries {
    by_token: HashMap<[u8; 32], BTreeSet<RecordId>>,
    token_of: HashMap<RecordId, [u8; 32]>,
}

impl FieldEntries {
    fn insert(&mut self, token: [u8; 32], id: RecordId) {
        self.remove(&id);
        self.by_token.entry(token).or_default().insert(id);
        self.token_of.insert(id, token);
    }

    fn remove(&mut self, id: &RecordId) {
        if let Some(token) = self.token_of.remove(id) {
            if let Some(ids) = self.by_token.get_mut(&token) {
                ids.remove(id);
                if ids.is_empty() {
                    self.by_token.remove(&token);
                }
            }
        }
    }
}

/// The encrypted store of one unlocked vault.
///
/// Shared as `Arc<Store>`; [`Store::close`] (called by the vault's `lock`) drops the keys and the
/// connection, after which every call on any handle fails with [`StoreError::Locked`].
pub struct Store {
    inner: Mutex<Option<Inner>>,
    /// The vault's clock, lent to every transaction so domain operations stamp times (audit, HLC)
    /// without each signature carrying it.
    clock: Arc<dyn Clock>,
    /// States that must end with this unlock (attachment streams), emptied by `close`.
    scoped: scoped::Registry,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn configure(conn: &Connection) -> Result<(), StoreError> {
    // journal_mode returns a row; reading it is also the first real access of the file, which is
    // where a garbled header surfaces as NotADatabase.
    set_mode(conn)?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;
         PRAGMA trusted_schema = OFF;
         PRAGMA cell_size_check = ON;",
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(())
}

fn set_mode(conn: &Connection) -> Result<(), StoreError> {
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Database("cannot enable WAL".into()));
    }
    Ok(())
}

/// Fsyncs a file of the store (database or WAL) if it exists.
fn sync_file(path: &Path) -> Result<(), StoreError> {
    match std::fs::File::open(path) {
        Ok(file) => file
            .sync_all()
            .map_err(|e| StoreError::Database(format!("cannot sync: {}", e.kind()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Database(format!("cannot sync: {}", e.kind()))),
    }
}

fn collection_tag(index_key: &SecretKey, name: &str) -> Tag {
    let full = crypto::blind_token(index_key, &[labels::BLIND_COLLECTION, name.as_bytes()]);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&full[..16]);
    tag
}

fn field_tag(index_key: &SecretKey, collection: &str, field: &str) -> Tag {
    let full = crypto::blind_token(
        index_key,
        &[labels::BLIND_FIELD, collection.as_bytes(), field.as_bytes()],
    );
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&full[..16]);
    tag
}

fn record_mac(prf: &Prf, collection: &Tag, id: &[u8], version: u64) -> [u8; 32] {
    prf.eval(&[MANIFEST_RECORD, collection, id, &version.to_be_bytes()])
}

fn entry_mac(prf: &Prf, field: &Tag, token: &[u8], record_id: &[u8]) -> [u8; 32] {
    prf.eval(&[MANIFEST_ENTRY, field, token, record_id])
}

fn seal_manifest(
    conn: &Connection,
    keys: &StoreKeys,
    nonces: &NonceSource,
    manifest: &Manifest,
) -> Result<(), StoreError> {
    let sealed = keys.seal(nonces, MANIFEST_AAD, &manifest.encode())?;
    conn.prepare_cached("INSERT OR REPLACE INTO meta (name, sealed) VALUES (?1, ?2)")?
        .execute(params![MANIFEST_ROW, sealed])?;
    Ok(())
}

/// The first manifest of a vault written before manifests existed: the rows as they are now are
/// taken as the truth (nothing older exists to check them against). Blind-index fields are matched
/// to their collection through the frozen names; an entry of an unknown field is attributed to the
/// collection of its record when only one has that id.
fn build_manifest(conn: &Connection, keys: &StoreKeys) -> Result<Manifest, StoreError> {
    use crate::names::{collections, indexes};
    let prf = Prf::new(&keys.manifest);
    let mut manifest = Manifest::default();
    let mut stmt = conn.prepare("SELECT collection, id, version FROM records NOT INDEXED")?;
    let mut rows = stmt.query([])?;
    let mut owners: HashMap<Vec<u8>, Vec<Tag>> = HashMap::new();
    while let Some(row) = rows.next()? {
        let tag: Tag = row
            .get::<_, Vec<u8>>(0)?
            .try_into()
            .map_err(|_| StoreError::Corrupt)?;
        let id: Vec<u8> = row.get(1)?;
        let version = u64::try_from(row.get::<_, i64>(2)?).map_err(|_| StoreError::Corrupt)?;
        manifest
            .records_mut(tag)
            .add(&record_mac(&prf, &tag, &id, version));
        owners.entry(id).or_default().push(tag);
    }
    let known: HashMap<Tag, Tag> = collections::ALL
        .iter()
        .flat_map(|c| {
            [
                indexes::CASE_CODE,
                indexes::BY_CASE,
                indexes::AMENDS,
                indexes::TEMPLATE_KEY,
            ]
            .map(|f| {
                (
                    field_tag(&keys.index, c.name(), f),
                    collection_tag(&keys.index, c.name()),
                )
            })
        })
        .collect();
    let mut stmt = conn.prepare("SELECT field, token, record_id FROM blind_index")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let field: Tag = row
            .get::<_, Vec<u8>>(0)?
            .try_into()
            .map_err(|_| StoreError::Corrupt)?;
        let token: Vec<u8> = row.get(1)?;
        let record_id: Vec<u8> = row.get(2)?;
        let collection = match known.get(&field) {
            Some(c) => *c,
            None => match owners.get(&record_id).map(Vec::as_slice) {
                Some([only]) => *only,
                _ => [0u8; 16],
            },
        };
        manifest
            .field_mut(field, collection)
            .add(&entry_mac(&prf, &field, &token, &record_id));
    }
    Ok(manifest)
}

/// Brings the schema to the latest version, each step in its own transaction. Step 2 also writes
/// the first manifest, so a vault is never at schema 2 without one.
fn migrate(
    conn: &mut Connection,
    keys: &StoreKeys,
    nonces: &NonceSource,
) -> Result<(), StoreError> {
    let current: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let target = MIGRATIONS.len() as u32;
    if current > target {
        return Err(StoreError::UnsupportedSchema(current));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(sql)?;
        let version = (i + 1) as u32;
        if version == 2 {
            let manifest = build_manifest(&tx, keys)?;
            seal_manifest(&tx, keys, nonces, &manifest)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
    }
    Ok(())
}

impl Store {
    /// Creates a new store file at `path`, stamped with a sealed check value for `vault_id`.
    pub(crate) fn create(
        path: &Path,
        keys: StoreKeys,
        vault_id: &[u8],
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        // Built without a sync per step (the switch to WAL, each migration), then synced once: the
        // new store is invisible until the vault's slot file is written after this returns, so a
        // crash half-way leaves only remains. Six fsyncs fewer matter on the duress path, which
        // creates a store inside an unlock that must take as long as an ordinary one.
        conn.execute_batch("PRAGMA synchronous = OFF")?;
        configure(&conn)?;
        conn.execute_batch("PRAGMA synchronous = OFF")?;
        let nonces = NonceSource::new()?;
        migrate(&mut conn, &keys, &nonces)?;
        let sealed = keys.seal(&nonces, CHECK_AAD, vault_id)?;
        conn.execute(
            "INSERT OR REPLACE INTO meta (name, sealed) VALUES ('check', ?1)",
            params![sealed],
        )?;
        conn.execute_batch("PRAGMA synchronous = NORMAL")?;
        sync_file(path)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        sync_file(Path::new(&wal))?;
        Ok(Self::from_parts(conn, keys, nonces, clock))
    }

    /// The cipher of the store file at `path`, read from its check value's format byte without a
    /// key; `None` if there is no readable store. Used to make a duress decoy in the same format
    /// as the store it replaces. The byte is not authenticated here; [`Store::open`] checks it.
    pub(crate) fn cipher_on_disk(path: &Path) -> Option<Cipher> {
        let conn =
            Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
        let sealed: Vec<u8> = conn
            .query_row("SELECT sealed FROM meta WHERE name = 'check'", [], |r| {
                r.get(0)
            })
            .ok()?;
        Cipher::of_sealed(&sealed).ok()
    }

    /// Opens an existing store with the subkeys of `data_key` and proves the key is the right one
    /// for this file.
    ///
    /// The store's cipher is the one its check value was sealed with: the check decides which
    /// records key is derived, and a check whose format byte was altered opens under neither.
    pub(crate) fn open(
        path: &Path,
        data_key: &SecretKey,
        vault_id: &[u8],
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Corrupt);
        }
        let mut conn = Connection::open(path)?;
        configure(&conn)?;
        // The key is proven before anything is migrated: a wrong key must not write a manifest.
        let schema: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if schema == 0 {
            return Err(StoreError::Corrupt);
        }
        let sealed: Option<Vec<u8>> = conn
            .query_row("SELECT sealed FROM meta WHERE name = 'check'", [], |r| {
                r.get(0)
            })
            .optional()?;
        let sealed = sealed.ok_or(StoreError::Corrupt)?;
        let keys = StoreKeys::derive(data_key, Cipher::of_sealed(&sealed)?);
        let check = keys.open(CHECK_AAD, &sealed)?;
        if check.expose() != vault_id {
            return Err(StoreError::Integrity);
        }
        let nonces = NonceSource::new()?;
        migrate(&mut conn, &keys, &nonces)?;
        Ok(Self::from_parts(conn, keys, nonces, clock))
    }

    fn from_parts(
        conn: Connection,
        keys: StoreKeys,
        nonces: NonceSource,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            clock,
            inner: Mutex::new(Some(Inner {
                conn,
                keys,
                nonces,
                tags: HashMap::new(),
                scratch: Vec::new(),
                checked: Checked::default(),
            })),
            scoped: scoped::Registry::default(),
        }
    }

    /// Drops the keys (zeroized), closes the database, and ends every [`LockScoped`] state made
    /// from this store (attachment streams). Idempotent.
    pub fn close(&self) {
        let states = {
            let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            *guard = None;
            self.scoped.drain()
        };
        Self::clear_all(states);
    }

    /// Closes without the checkpoint SQLite normally runs on close: for a wipe, whose files are
    /// deleted next, copying a large WAL into the database would only make the wipe slower.
    pub(crate) fn discard(&self) {
        let states = {
            let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(inner) = guard.as_ref() {
                let _ = inner.conn.set_db_config(
                    rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                    true,
                );
            }
            *guard = None;
            self.scoped.drain()
        };
        Self::clear_all(states);
    }

    /// Clears states outside the store's lock: an owner in the middle of a long read holds its own
    /// state's lock, and must not wait for ours.
    fn clear_all(states: Vec<std::sync::Weak<dyn scoped::Clear>>) {
        for state in states {
            if let Some(state) = state.upgrade() {
                state.clear();
            }
        }
    }

    /// True until the store is closed (locked or wiped).
    pub fn is_open(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Wraps `value` so that it is dropped when this store closes (`lock()`), if its owner has not
    /// dropped it before. For state that holds keys or yields plaintext — an attachment stream —
    /// and so must not survive the unlock it came from. Fails with [`StoreError::Locked`] if the
    /// store is already closed (the value is dropped).
    pub fn scoped<T: Send + 'static>(&self, value: T) -> Result<LockScoped<T>, StoreError> {
        // Registered under the store's lock, so a concurrent `close` either sees it or ran before
        // (and then this call fails).
        let guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            return Err(StoreError::Locked);
        }
        let (scoped, handle) = LockScoped::new(value);
        self.scoped.add(handle);
        drop(guard);
        Ok(scoped)
    }

    /// Checks every record and index entry against the sealed manifest, opens (authenticates) every
    /// record of `collections`, and runs SQLite's own `integrity_check`. Slow on a large vault (it
    /// reads everything): call it off the UI path, e.g. after unlock.
    ///
    /// Errors: [`StoreError::Integrity`] if a record is missing, hidden, added or altered;
    /// [`StoreError::Corrupt`] if SQLite finds its own structures damaged.
    pub fn check_integrity(&self, collections: &[Collection]) -> Result<StoreCheck, StoreError> {
        self.read(|tx| {
            let mut check = StoreCheck::default();
            let manifest = tx.manifest()?.clone();
            for tag in manifest.records.keys() {
                check.records += tx.scan_records(tag)?.len() as u64;
            }
            for tag in manifest.fields.keys() {
                check.index_entries += tx.scan_field(tag)?.len() as u64;
            }
            // Rows under a tag the manifest does not know (or counted twice) show in the totals.
            let rows: i64 =
                tx.tx
                    .query_row("SELECT count(*) FROM records NOT INDEXED", [], |r| r.get(0))?;
            let entries: i64 =
                tx.tx
                    .query_row("SELECT count(*) FROM blind_index NOT INDEXED", [], |r| {
                        r.get(0)
                    })?;
            if rows != check.records as i64 || entries != check.index_entries as i64 {
                return Err(StoreError::Integrity);
            }
            for &collection in collections {
                for id in tx.list(collection)? {
                    tx.require(collection, id)?;
                    check.records_opened += 1;
                }
            }
            let verdict: String = tx
                .tx
                .query_row("PRAGMA integrity_check(1)", [], |r| r.get(0))?;
            if verdict != "ok" {
                return Err(StoreError::Corrupt);
            }
            Ok(check)
        })
    }

    /// Runs `f` in one write transaction: everything it does commits together, or nothing does if
    /// it returns an error. This is how a change and its outbox entry land atomically.
    pub fn write<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = guard.as_mut().ok_or(StoreError::Locked)?;
        let Inner {
            conn,
            keys,
            nonces,
            tags,
            scratch,
            checked,
        } = inner;
        // Unchecked: the mutex already rules out a nested transaction, and a `&Connection` lets the
        // transaction keep its point-read statement ([`Tx::point_read`]).
        let conn: &Connection = conn;
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let mut handle = Tx {
            tx,
            clock: self.clock.as_ref(),
            keys,
            nonces,
            tags,
            scratch,
            aad: Vec::new(),
            conn,
            point_read: None,
            manifest: None,
            manifest_dirty: false,
            prf: None,
            aead: None,
            checked,
        };
        // The checked-id cache follows this transaction's writes; unless they commit, drop it.
        let out = match f(&mut handle) {
            Ok(out) => out,
            Err(e) => {
                handle.checked.clear();
                return Err(e);
            }
        };
        if let Err(e) = handle.flush_manifest() {
            handle.checked.clear();
            return Err(e.into());
        }
        let Tx { tx, checked, .. } = handle;
        if let Err(e) = tx.commit() {
            checked.clear();
            return Err(StoreError::from(e).into());
        }
        Ok(out)
    }

    /// Runs `f` against a consistent snapshot (a deferred transaction that is never committed).
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let inner = guard.as_mut().ok_or(StoreError::Locked)?;
        let Inner {
            conn,
            keys,
            nonces,
            tags,
            scratch,
            checked,
        } = inner;
        let conn: &Connection = conn;
        let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Deferred)
            .map_err(StoreError::from)?;
        let mut handle = Tx {
            tx,
            clock: self.clock.as_ref(),
            keys,
            nonces,
            tags,
            scratch,
            aad: Vec::new(),
            conn,
            point_read: None,
            manifest: None,
            manifest_dirty: false,
            prf: None,
            aead: None,
            checked,
        };
        let out = f(&mut handle);
        // A read transaction is never committed: if it wrote anything, the cache followed writes
        // that are rolled back now.
        if handle.manifest_dirty {
            handle.checked.clear();
        }
        out
    }

    /// Inserts one value as a new record (its own transaction).
    pub fn insert(&self, collection: Collection, value: &[u8]) -> Result<RecordId, StoreError> {
        self.write(|tx| tx.insert(collection, value))
    }

    /// Reads one record.
    pub fn get(&self, collection: Collection, id: RecordId) -> Result<Option<Record>, StoreError> {
        self.read(|tx| tx.get(collection, id))
    }
}

/// Serialises to JSON in a zeroizing buffer. The serde message is dropped: it can quote data.
pub fn to_json<T: serde::Serialize>(value: &T) -> Result<SecretBytes, StoreError> {
    serde_json::to_vec(value)
        .map(SecretBytes::new)
        .map_err(|_| StoreError::Shape)
}

/// Parses JSON from a decrypted value. The serde message is dropped: it can quote data.
pub fn from_json<T: serde::de::DeserializeOwned>(bytes: &SecretBytes) -> Result<T, StoreError> {
    serde_json::from_slice(bytes.expose()).map_err(|_| StoreError::Shape)
}

/// One transaction on the store: the generic record API that every component builds on.
pub struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    clock: &'a dyn Clock,
    keys: &'a StoreKeys,
    nonces: &'a NonceSource,
    tags: &'a mut HashMap<&'static str, [u8; 16]>,
    scratch: &'a mut Vec<u8>,
    /// The associated data of the record being sealed or opened (reused; holds no secret).
    aad: Vec<u8>,
    /// The connection `tx` runs on, so statements can live as long as the transaction.
    conn: &'a Connection,
    /// The point read by id, prepared on first use and kept for the transaction: a read loop then
    /// skips the statement-cache lookup (hashing the SQL text) on every record.
    point_read: Option<rusqlite::CachedStatement<'a>>,
    /// The manifest as this transaction sees it (loaded on first use, written back on commit).
    manifest: Option<Manifest>,
    manifest_dirty: bool,
    /// The manifest's keyed hash, built on first use and dropped with the transaction.
    prf: Option<Prf>,
    /// The records key's schedule, built on first use and dropped with the transaction (for
    /// AES-256-GCM, building it costs about as much as opening a small record).
    aead: Option<AeadKey>,
    /// Collections (ids) and fields (entries) already checked against the manifest in this
    /// unlock session, kept up to date by this transaction's writes ([`Checked`]).
    checked: &'a mut Checked,
}

/// The associated data sealed with every record: label, length-prefixed collection name, record id
/// and version, so a sealed value cannot be moved to another row, collection or version. Frozen by
/// `tests/vectors.rs`.
pub fn record_aad(collection: Collection, id: &RecordId, version: u64) -> Vec<u8> {
    let mut aad = Vec::new();
    write_record_aad(&mut aad, collection, id, version);
    aad
}

/// [`record_aad`] into a reused buffer (cleared first): the store's hot paths build it per record
/// without a heap allocation.
fn write_record_aad(aad: &mut Vec<u8>, collection: Collection, id: &RecordId, version: u64) {
    let name = collection.name().as_bytes();
    aad.clear();
    aad.reserve(RECORD_AAD_PREFIX.len() + 2 + name.len() + 16 + 8);
    aad.extend_from_slice(RECORD_AAD_PREFIX);
    aad.extend_from_slice(&(name.len() as u16).to_be_bytes());
    aad.extend_from_slice(name);
    aad.extend_from_slice(id.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
}

impl Tx<'_> {
    fn tag(&mut self, collection: Collection) -> [u8; 16] {
        let index = &self.keys.index;
        *self
            .tags
            .entry(collection.name())
            .or_insert_with(|| collection_tag(index, collection.name()))
    }

    /// The vault's clock (audit timestamps, hybrid logical clock, lockout-independent times).
    pub fn clock(&self) -> &dyn Clock {
        self.clock
    }

    /// Fills `buf` from the per-unlock CSPRNG (ids, node ids, codes).
    pub fn fill_random(&self, buf: &mut [u8]) {
        self.nonces.fill(buf);
    }

    /// A fresh random record id from the per-unlock generator.
    pub fn new_id(&self) -> RecordId {
        let mut id = [0u8; 16];
        self.nonces.fill(&mut id);
        RecordId(id)
    }

    // ---- the manifest ----

    /// The manifest as this transaction sees it. A vault at schema 2 always has one: a missing or
    /// unreadable manifest is an integrity failure, never a reason to start an empty one.
    fn manifest(&mut self) -> Result<&mut Manifest, StoreError> {
        if self.manifest.is_none() {
            let sealed: Option<Vec<u8>> = self
                .tx
                .prepare_cached("SELECT sealed FROM meta WHERE name = ?1")?
                .query_row(params![MANIFEST_ROW], |r| r.get(0))
                .optional()?;
            let sealed = sealed.ok_or(StoreError::Integrity)?;
            let bytes = self.keys.open(MANIFEST_AAD, &sealed)?;
            self.manifest = Some(Manifest::decode(bytes.expose())?);
        }
        self.manifest.as_mut().ok_or(StoreError::Integrity)
    }

    /// The manifest, for a change (written back before the transaction commits).
    fn manifest_mut(&mut self) -> Result<&mut Manifest, StoreError> {
        self.manifest_dirty = true;
        self.manifest()
    }

    fn flush_manifest(&mut self) -> Result<(), StoreError> {
        if !self.manifest_dirty {
            return Ok(());
        }
        let manifest = self.manifest.as_ref().ok_or(StoreError::Integrity)?;
        seal_manifest(&self.tx, self.keys, self.nonces, manifest)?;
        self.manifest_dirty = false;
        Ok(())
    }

    fn prf(&mut self) -> &Prf {
        let key = &self.keys.manifest;
        self.prf.get_or_insert_with(|| Prf::new(key))
    }

    /// Every (id, version) of collection `tag`, checked against the manifest: a row missing,
    /// hidden, added, duplicated or at another version is [`StoreError::Integrity`].
    fn scan_records(&mut self, tag: &Tag) -> Result<Vec<(RecordId, u64)>, StoreError> {
        self.checked.scans += 1;
        let mut rows = Vec::new();
        {
            let mut stmt = self.tx.prepare_cached(
                "SELECT id, version FROM records WHERE collection = ?1 ORDER BY id",
            )?;
            let mut cursor = stmt.query(params![&tag[..]])?;
            while let Some(row) = cursor.next()? {
                let id: [u8; 16] = row
                    .get::<_, Vec<u8>>(0)?
                    .try_into()
                    .map_err(|_| StoreError::Integrity)?;
                let version =
                    u64::try_from(row.get::<_, i64>(1)?).map_err(|_| StoreError::Integrity)?;
                rows.push((RecordId(id), version));
            }
        }
        let mut seen = SetDigest::default();
        let prf = self.prf();
        for (id, version) in &rows {
            seen.add(&record_mac(prf, tag, &id.0, *version));
        }
        if seen != self.manifest()?.records(tag) {
            return Err(StoreError::Integrity);
        }
        self.checked
            .records
            .insert(*tag, rows.iter().map(|(id, _)| *id).collect());
        Ok(rows)
    }

    /// The ids of collection `tag`, checked against the manifest (once per unlock session).
    fn checked_ids(&mut self, tag: &Tag) -> Result<&IdSet, StoreError> {
        if !self.checked.records.contains_key(tag) {
            self.scan_records(tag)?;
        }
        self.checked.records.get(tag).ok_or(StoreError::Integrity)
    }

    /// The entries of field `field`, checked against the manifest (once per unlock session).
    fn checked_entries(&mut self, field: &Tag) -> Result<&FieldEntries, StoreError> {
        if !self.checked.fields.contains_key(field) {
            let mut entries = FieldEntries::default();
            for (token, id) in self.scan_field(field)? {
                entries.insert(token, id);
            }
            self.checked.fields.insert(*field, entries);
        }
        self.checked.fields.get(field).ok_or(StoreError::Integrity)
    }

    /// Every (token, record id) of blind-index field `field`, checked against the manifest.
    fn scan_field(&mut self, field: &Tag) -> Result<Vec<([u8; 32], RecordId)>, StoreError> {
        self.checked.scans += 1;
        let mut rows = Vec::new();
        {
            let mut stmt = self
                .tx
                .prepare_cached("SELECT token, record_id FROM blind_index WHERE field = ?1")?;
            let mut cursor = stmt.query(params![&field[..]])?;
            while let Some(row) = cursor.next()? {
                let token: [u8; 32] = row
                    .get::<_, Vec<u8>>(0)?
                    .try_into()
                    .map_err(|_| StoreError::Integrity)?;
                let id: [u8; 16] = row
                    .get::<_, Vec<u8>>(1)?
                    .try_into()
                    .map_err(|_| StoreError::Integrity)?;
                rows.push((token, RecordId(id)));
            }
        }
        let mut seen = SetDigest::default();
        let prf = self.prf();
        for (token, id) in &rows {
            seen.add(&entry_mac(prf, field, token, &id.0));
        }
        if seen != self.manifest()?.field(field) {
            return Err(StoreError::Integrity);
        }
        Ok(rows)
    }

    /// Confirms that a point lookup that found nothing was right: the collection's rows match the
    /// manifest and `id` is not among them. A lookup that missed a row the scan sees (a damaged
    /// index page) is [`StoreError::Integrity`].
    fn confirm_absent(&mut self, tag: &Tag, id: &RecordId) -> Result<(), StoreError> {
        if self.checked_ids(tag)?.contains(id) {
            return Err(StoreError::Integrity);
        }
        Ok(())
    }

    /// The stored version of a record, `None` if it does not exist (confirmed by the manifest).
    fn version_of(&mut self, tag: &Tag, id: &RecordId) -> Result<Option<u64>, StoreError> {
        let found: Option<i64> = self
            .tx
            .prepare_cached("SELECT version FROM records WHERE collection = ?1 AND id = ?2")?
            .query_row(params![&tag[..], &id.0[..]], |r| r.get(0))
            .optional()?;
        match found {
            Some(v) => Ok(Some(u64::try_from(v).map_err(|_| StoreError::Integrity)?)),
            None => {
                self.confirm_absent(tag, id)?;
                Ok(None)
            }
        }
    }

    // ---- records ----

    fn insert_at(
        &mut self,
        collection: Collection,
        id: RecordId,
        version: u64,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let tag = self.tag(collection);
        let padded = self.seal_marked(collection, &id, version, value)?;
        let inserted = self
            .tx
            .prepare_cached(
                "INSERT OR IGNORE INTO records (collection, id, version, padded_len, sealed)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                &tag[..],
                &id.0[..],
                version as i64,
                padded as i64,
                &self.scratch[..]
            ])?;
        if inserted == 0 {
            return Err(StoreError::AlreadyExists);
        }
        let mac = record_mac(self.prf(), &tag, &id.0, version);
        self.manifest_mut()?.records_mut(tag).add(&mac);
        if let Some(ids) = self.checked.records.get_mut(&tag) {
            ids.insert(id);
        }
        Ok(())
    }

    /// Seals `value ‖ 0x80 ‖ 0…` into the scratch buffer; returns the padded length.
    fn seal_marked(
        &mut self,
        collection: Collection,
        id: &RecordId,
        version: u64,
        value: &[u8],
    ) -> Result<usize, StoreError> {
        write_record_aad(&mut self.aad, collection, id, version);
        let aead = match &mut self.aead {
            Some(aead) => aead,
            slot => slot.insert(self.keys.aead()?),
        };
        aead.seal_into(self.nonces, &self.aad, value, true, self.scratch)?;
        Ok(self.scratch.len() - SEAL_OVERHEAD)
    }

    /// Inserts `value` as version 1 of a new record with a random id.
    pub fn insert(&mut self, collection: Collection, value: &[u8]) -> Result<RecordId, StoreError> {
        let id = self.new_id();
        self.insert_at(collection, id, 1, value)?;
        Ok(id)
    }

    /// Inserts `value` as version 1 under a caller-chosen id; fails if the id exists.
    pub fn insert_with_id(
        &mut self,
        collection: Collection,
        id: RecordId,
        value: &[u8],
    ) -> Result<(), StoreError> {
        self.insert_at(collection, id, 1, value)
    }

    /// Reads and decrypts one record; `Ok(None)` if there is no such record.
    ///
    /// "No such record" is checked against the manifest (a scan of the collection, so a miss costs
    /// more than a hit): a record hidden from the lookup is [`StoreError::Integrity`], not `None`.
    pub fn get(
        &mut self,
        collection: Collection,
        id: RecordId,
    ) -> Result<Option<Record>, StoreError> {
        let tag = self.tag(collection);
        {
            let aead = match &mut self.aead {
                Some(aead) => &*aead,
                slot => &*slot.insert(self.keys.aead()?),
            };
            let stmt = match &mut self.point_read {
                Some(stmt) => stmt,
                slot => slot.insert(self.conn.prepare_cached(
                    "SELECT version, sealed FROM records WHERE collection = ?1 AND id = ?2",
                )?),
            };
            let mut rows = stmt.query(params![&tag[..], &id.0[..]])?;
            if let Some(row) = rows.next()? {
                let version =
                    u64::try_from(row.get::<_, i64>(0)?).map_err(|_| StoreError::Integrity)?;
                // Decrypt straight from SQLite's buffer: no intermediate copy of the ciphertext.
                let sealed = row.get_ref(1)?.as_blob().map_err(|_| StoreError::Corrupt)?;
                write_record_aad(&mut self.aad, collection, &id, version);
                let mut value = aead.open(&self.aad, sealed)?;
                crypto::unpad(&mut value).ok_or(StoreError::Integrity)?;
                return Ok(Some(Record { id, version, value }));
            }
        }
        self.confirm_absent(&tag, &id)?;
        Ok(None)
    }

    /// Serialises `value` as JSON and inserts it (the JSON buffer is zeroized after sealing).
    pub fn insert_json<T: serde::Serialize>(
        &mut self,
        collection: Collection,
        value: &T,
    ) -> Result<RecordId, StoreError> {
        let bytes = to_json(value)?;
        self.insert(collection, bytes.expose())
    }

    /// Inserts a JSON value under a caller-chosen id.
    pub fn insert_json_with_id<T: serde::Serialize>(
        &mut self,
        collection: Collection,
        id: RecordId,
        value: &T,
    ) -> Result<(), StoreError> {
        let bytes = to_json(value)?;
        self.insert_with_id(collection, id, bytes.expose())
    }

    /// Reads a JSON record; `Ok(None)` if absent. Returns the value and its version.
    pub fn get_json<T: serde::de::DeserializeOwned>(
        &mut self,
        collection: Collection,
        id: RecordId,
    ) -> Result<Option<(T, u64)>, StoreError> {
        match self.get(collection, id)? {
            None => Ok(None),
            Some(record) => Ok(Some((from_json(&record.value)?, record.version))),
        }
    }

    /// Reads a JSON record that must exist.
    pub fn require_json<T: serde::de::DeserializeOwned>(
        &mut self,
        collection: Collection,
        id: RecordId,
    ) -> Result<(T, u64), StoreError> {
        self.get_json(collection, id)?.ok_or(StoreError::NotFound)
    }

    /// Replaces a JSON record at `expected_version`; returns the new version.
    pub fn update_json<T: serde::Serialize>(
        &mut self,
        collection: Collection,
        id: RecordId,
        expected_version: u64,
        value: &T,
    ) -> Result<u64, StoreError> {
        let bytes = to_json(value)?;
        self.update(collection, id, expected_version, bytes.expose())
    }

    /// Reads a record that must exist.
    pub fn require(&mut self, collection: Collection, id: RecordId) -> Result<Record, StoreError> {
        self.get(collection, id)?.ok_or(StoreError::NotFound)
    }

    /// Replaces a record's value if its version is still `expected_version`; returns the new
    /// version. Optimistic concurrency keeps two writers from silently overwriting each other.
    pub fn update(
        &mut self,
        collection: Collection,
        id: RecordId,
        expected_version: u64,
        value: &[u8],
    ) -> Result<u64, StoreError> {
        let tag = self.tag(collection);
        let found = self.version_of(&tag, &id)?.ok_or(StoreError::NotFound)?;
        if found != expected_version {
            return Err(StoreError::VersionConflict {
                expected: expected_version,
                found,
            });
        }
        let version = found + 1;
        let padded = self.seal_marked(collection, &id, version, value)?;
        let changed = self
            .tx
            .prepare_cached(
                "UPDATE records SET version = ?3, padded_len = ?4, sealed = ?5
                 WHERE collection = ?1 AND id = ?2",
            )?
            .execute(params![
                &tag[..],
                &id.0[..],
                version as i64,
                padded as i64,
                &self.scratch[..]
            ])?;
        if changed != 1 {
            return Err(StoreError::Integrity);
        }
        let prf = self.prf();
        let (old, new) = (
            record_mac(prf, &tag, &id.0, found),
            record_mac(prf, &tag, &id.0, version),
        );
        let set = self.manifest_mut()?.records_mut(tag);
        set.remove(&old)?;
        set.add(&new);
        Ok(version)
    }

    /// Deletes a record and its entries in this collection's blind indexes; returns whether it
    /// existed.
    pub fn delete(&mut self, collection: Collection, id: RecordId) -> Result<bool, StoreError> {
        let tag = self.tag(collection);
        let Some(version) = self.version_of(&tag, &id)? else {
            return Ok(false);
        };
        let n = self
            .tx
            .prepare_cached("DELETE FROM records WHERE collection = ?1 AND id = ?2")?
            .execute(params![&tag[..], &id.0[..]])?;
        if n != 1 {
            return Err(StoreError::Integrity);
        }
        let mac = record_mac(self.prf(), &tag, &id.0, version);
        self.manifest_mut()?.records_mut(tag).remove(&mac)?;
        if let Some(ids) = self.checked.records.get_mut(&tag) {
            ids.remove(&id);
        }
        for field in self.manifest()?.fields_of(&tag) {
            self.remove_entry(&field, &tag, &id)?;
        }
        Ok(true)
    }

    /// Removes record `id`'s entry of blind-index field `field`, if it has one.
    fn remove_entry(
        &mut self,
        field: &Tag,
        collection: &Tag,
        id: &RecordId,
    ) -> Result<(), StoreError> {
        let old: Option<Vec<u8>> = self
            .tx
            .prepare_cached("SELECT token FROM blind_index WHERE record_id = ?1 AND field = ?2")?
            .query_row(params![&id.0[..], &field[..]], |r| r.get(0))
            .optional()?;
        let Some(old) = old else {
            return Ok(());
        };
        self.tx
            .prepare_cached("DELETE FROM blind_index WHERE record_id = ?1 AND field = ?2")?
            .execute(params![&id.0[..], &field[..]])?;
        let mac = entry_mac(self.prf(), field, &old, &id.0);
        if let Some(entries) = self.checked.fields.get_mut(field) {
            entries.remove(id);
        }
        self.manifest_mut()?
            .field_mut(*field, *collection)
            .remove(&mac)
    }

    /// Ids of every record in `collection`, in id order (random, so no creation order leaks).
    /// Checked against the manifest: a missing or hidden record is [`StoreError::Integrity`].
    pub fn list(&mut self, collection: Collection) -> Result<Vec<RecordId>, StoreError> {
        let tag = self.tag(collection);
        Ok(self.checked_ids(&tag)?.to_vec())
    }

    /// Sets the blind-index entry of `field` for record `id` to `value` (replacing the old one).
    pub fn set_index(
        &mut self,
        collection: Collection,
        field: &str,
        id: RecordId,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let tag = self.tag(collection);
        let (field_tag, token) = self.index_token(collection, field, value);
        self.remove_entry(&field_tag, &tag, &id)?;
        self.tx
            .prepare_cached(
                "INSERT INTO blind_index (field, token, record_id) VALUES (?1, ?2, ?3)",
            )?
            .execute(params![&field_tag[..], &token[..], &id.0[..]])?;
        let mac = entry_mac(self.prf(), &field_tag, &token, &id.0);
        self.manifest_mut()?.field_mut(field_tag, tag).add(&mac);
        if let Some(entries) = self.checked.fields.get_mut(&field_tag) {
            entries.insert(token, id);
        }
        Ok(())
    }

    /// Records whose `field` was indexed with exactly `value`, in id order.
    ///
    /// Reads every entry of the field and checks them against the manifest, so an entry hidden by
    /// a damaged page is [`StoreError::Integrity`], never a shorter answer. The cost grows with the
    /// number of records indexed by `field` (one HMAC each), not with the whole vault.
    pub fn find(
        &mut self,
        collection: Collection,
        field: &str,
        value: &[u8],
    ) -> Result<Vec<RecordId>, StoreError> {
        let (field_tag, token) = self.index_token(collection, field, value);
        Ok(self
            .checked_entries(&field_tag)?
            .by_token
            .get(&token)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default())
    }

    fn index_token(
        &self,
        collection: Collection,
        field: &str,
        value: &[u8],
    ) -> ([u8; 16], [u8; 32]) {
        let name = collection.name().as_bytes();
        let field_tag = field_tag(&self.keys.index, collection.name(), field);
        let token = crypto::blind_token(
            &self.keys.index,
            &[labels::BLIND_VALUE, name, field.as_bytes(), value],
        );
        (field_tag, token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    const NOTES: Collection = Collection::new("notes");
    const OTHER: Collection = Collection::new("other");

    fn key(b: u8) -> SecretKey {
        SecretKey::from_array([b; 32])
    }

    fn keys(b: u8) -> StoreKeys {
        StoreKeys::derive(&key(b), Cipher::preferred())
    }

    fn new_store(dir: &Path) -> Store {
        Store::create(&dir.join("db"), keys(1), b"vault-1", Arc::new(SystemClock)).unwrap()
    }

    #[test]
    fn insert_get_update_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        let id = s.insert(NOTES, b"first").unwrap();
        let r = s.get(NOTES, id).unwrap().unwrap();
        assert_eq!((r.version, r.value.expose()), (1, &b"first"[..]));
        assert!(
            s.get(OTHER, id).unwrap().is_none(),
            "collections are separate"
        );
        let v = s.write(|tx| tx.update(NOTES, id, 1, b"second")).unwrap();
        assert_eq!(v, 2);
        let err = s.write(|tx| tx.update(NOTES, id, 1, b"stale")).unwrap_err();
        assert!(matches!(
            err,
            StoreError::VersionConflict {
                expected: 1,
                found: 2
            }
        ));
        assert_eq!(s.get(NOTES, id).unwrap().unwrap().value.expose(), b"second");
        assert!(s.write(|tx| tx.delete(NOTES, id)).unwrap());
        assert!(s.get(NOTES, id).unwrap().is_none());
        assert!(matches!(
            s.write(|tx| tx.update(NOTES, id, 2, b"x")),
            Err(StoreError::NotFound)
        ));
    }

    #[test]
    fn failed_transaction_stores_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        let r: Result<(), StoreError> = s.write(|tx| {
            tx.insert(NOTES, b"a")?;
            Err(StoreError::NotFound)
        });
        assert!(r.is_err());
        assert!(s.read(|tx| tx.list(NOTES)).unwrap().is_empty());
    }

    #[test]
    fn duplicate_id_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        let id = RecordId::from_bytes([5; 16]);
        s.write(|tx| tx.insert_with_id(NOTES, id, b"a")).unwrap();
        assert!(matches!(
            s.write(|tx| tx.insert_with_id(NOTES, id, b"b")),
            Err(StoreError::AlreadyExists)
        ));
    }

    #[test]
    fn blind_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        let (a, b) = s
            .write(|tx| {
                let a = tx.insert(NOTES, b"a")?;
                let b = tx.insert(NOTES, b"b")?;
                tx.set_index(NOTES, "code", a, b"K7Q-2M")?;
                tx.set_index(NOTES, "code", b, b"X1")?;
                Ok::<_, StoreError>((a, b))
            })
            .unwrap();
        assert_eq!(
            s.read(|tx| tx.find(NOTES, "code", b"K7Q-2M")).unwrap(),
            vec![a]
        );
        assert!(s
            .read(|tx| tx.find(NOTES, "other", b"K7Q-2M"))
            .unwrap()
            .is_empty());
        assert!(s
            .read(|tx| tx.find(OTHER, "code", b"K7Q-2M"))
            .unwrap()
            .is_empty());
        s.write(|tx| tx.set_index(NOTES, "code", a, b"NEW"))
            .unwrap();
        assert!(s
            .read(|tx| tx.find(NOTES, "code", b"K7Q-2M"))
            .unwrap()
            .is_empty());
        s.write(|tx| tx.delete(NOTES, b)).unwrap();
        assert!(s
            .read(|tx| tx.find(NOTES, "code", b"X1"))
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_store_keeps_the_cipher_it_was_made_with_and_refuses_the_other() {
        for cipher in [Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("db");
            let made = StoreKeys::derive(&key(1), cipher);
            let s = Store::create(&path, made, b"vault-1", Arc::new(SystemClock)).unwrap();
            let id = s.insert(NOTES, b"a note").unwrap();
            drop(s);
            // Reopened from the data key alone, it finds its cipher in the check value.
            let s = Store::open(&path, &key(1), b"vault-1", Arc::new(SystemClock)).unwrap();
            assert_eq!(s.get(NOTES, id).unwrap().unwrap().value.expose(), b"a note");
            let id2 = s.insert(NOTES, b"another").unwrap();
            drop(s);
            let conn = Connection::open(&path).unwrap();
            let firsts: BTreeSet<u8> = conn
                .prepare("SELECT sealed FROM records UNION ALL SELECT sealed FROM meta")
                .unwrap()
                .query_map([], |r| r.get::<_, Vec<u8>>(0))
                .unwrap()
                .map(|v| v.unwrap()[0])
                .collect();
            assert_eq!(firsts, [cipher.format_byte()].into(), "{cipher:?}");
            // A record relabelled as the other cipher is refused, not decrypted.
            let other = 3 - cipher.format_byte();
            let relabel = |table: &str, key: &str, value: &dyn rusqlite::ToSql, byte: u8| {
                let select = format!("SELECT sealed FROM {table} WHERE {key} = ?1");
                let mut sealed: Vec<u8> = conn.query_row(&select, [value], |r| r.get(0)).unwrap();
                sealed[0] = byte;
                let update = format!("UPDATE {table} SET sealed = ?1 WHERE {key} = ?2");
                conn.execute(&update, params![sealed, value]).unwrap();
            };
            relabel("records", "id", &&id2.0[..], other);
            let s = Store::open(&path, &key(1), b"vault-1", Arc::new(SystemClock)).unwrap();
            assert!(matches!(s.get(NOTES, id2), Err(StoreError::Integrity)));
            assert_eq!(s.get(NOTES, id).unwrap().unwrap().value.expose(), b"a note");
            drop(s);
            // A check value relabelled as the other cipher opens under neither: the store is
            // refused rather than read with a key made for another cipher.
            relabel("meta", "name", &"check", other);
            assert!(matches!(
                Store::open(&path, &key(1), b"vault-1", Arc::new(SystemClock)),
                Err(StoreError::Integrity)
            ));
            relabel("meta", "name", &"check", 7);
            assert!(matches!(
                Store::open(&path, &key(1), b"vault-1", Arc::new(SystemClock)),
                Err(StoreError::Integrity)
            ));
        }
    }

    #[test]
    fn wrong_key_or_wrong_vault_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        drop(Store::create(&path, keys(1), b"vault-1", Arc::new(SystemClock)).unwrap());
        assert!(matches!(
            Store::open(&path, &key(2), b"vault-1", Arc::new(SystemClock)),
            Err(StoreError::Integrity)
        ));
        assert!(matches!(
            Store::open(&path, &key(1), b"vault-2", Arc::new(SystemClock)),
            Err(StoreError::Integrity)
        ));
        assert!(Store::open(&path, &key(1), b"vault-1", Arc::new(SystemClock)).is_ok());
    }

    #[test]
    fn closed_store_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        let id = s.insert(NOTES, b"x").unwrap();
        s.close();
        assert!(matches!(s.get(NOTES, id), Err(StoreError::Locked)));
        assert!(matches!(s.insert(NOTES, b"y"), Err(StoreError::Locked)));
    }

    #[test]
    fn a_column_holding_the_wrong_type_is_corruption_not_a_database_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        s.insert(NOTES, b"note").unwrap();
        drop(s);
        let conn = Connection::open(dir.path().join("db")).unwrap();
        conn.execute("UPDATE records SET id = 7", []).unwrap();
        drop(conn);
        let s = Store::open(
            &dir.path().join("db"),
            &key(1),
            b"vault-1",
            Arc::new(SystemClock),
        );
        let listed = s.and_then(|s| s.read(|tx| tx.list(NOTES)));
        assert!(matches!(listed, Err(StoreError::Corrupt)), "{listed:?}");
    }

    #[test]
    fn sizes_on_disk_are_padded() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        s.write(|tx| {
            tx.insert(NOTES, &[1u8; 1900])?;
            tx.insert(NOTES, &[1u8; 1915])
        })
        .unwrap();
        let conn = Connection::open(dir.path().join("db")).unwrap();
        let lens: Vec<i64> = conn
            .prepare("SELECT length(sealed) FROM records")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(lens.len(), 2);
        assert_eq!(lens[0], lens[1]);
        assert_eq!(lens[0] as usize, crypto::padme_len(1901) + SEAL_OVERHEAD);
    }

    fn scans(s: &Store) -> u64 {
        let guard = s.inner.lock().unwrap();
        guard.as_ref().unwrap().checked.scans
    }

    #[test]
    fn lookups_that_miss_scan_a_collection_once_per_session_not_once_per_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        for _ in 0..50 {
            s.insert(NOTES, b"x").unwrap();
        }
        let before = scans(&s);
        for _ in 0..200 {
            // What sync does per page: is this envelope applied already? (a miss), then insert.
            s.write(|tx| {
                let id = tx.new_id();
                assert!(tx.get(NOTES, id)?.is_none());
                tx.insert_with_id(NOTES, id, b"y")?;
                tx.set_index(NOTES, "k", id, b"v")?;
                assert!(tx.find(NOTES, "k", b"v")?.contains(&id));
                Ok::<_, StoreError>(())
            })
            .unwrap();
        }
        assert_eq!(
            scans(&s) - before,
            2,
            "one scan of the collection, one of the field"
        );
        // Still checked: what the cache says matches what a fresh scan of the file says.
        assert_eq!(s.read(|tx| tx.list(NOTES)).unwrap().len(), 250);
        assert_eq!(s.read(|tx| tx.find(NOTES, "k", b"v")).unwrap().len(), 200);
    }

    #[test]
    fn a_transaction_that_fails_or_is_never_committed_leaves_nothing_in_the_checked_ids() {
        let dir = tempfile::tempdir().unwrap();
        let s = new_store(dir.path());
        let kept = s.insert(NOTES, b"kept").unwrap();
        let ghost = RecordId([7; 16]);
        // Warm the cache, then insert in a transaction that fails after the insert.
        assert!(s.get(NOTES, ghost).unwrap().is_none());
        let err = s
            .write(|tx| {
                tx.insert_with_id(NOTES, ghost, b"rolled back")?;
                tx.set_index(NOTES, "k", ghost, b"v")?;
                Err::<(), _>(StoreError::Shape)
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Shape));
        // The row was rolled back: a miss, not an integrity error from a stale cache.
        assert!(s.get(NOTES, ghost).unwrap().is_none());
        assert!(s.read(|tx| tx.find(NOTES, "k", b"v")).unwrap().is_empty());
        assert_eq!(s.read(|tx| tx.list(NOTES)).unwrap(), vec![kept]);
        // The same through a read transaction that writes (never committed).
        s.read(|tx| tx.insert_with_id(NOTES, ghost, b"never committed"))
            .unwrap();
        assert!(s.get(NOTES, ghost).unwrap().is_none());
        // And a delete that rolls back leaves the record listed.
        let _ = s.write(|tx| {
            tx.delete(NOTES, kept)?;
            Err::<(), _>(StoreError::Shape)
        });
        assert_eq!(s.read(|tx| tx.list(NOTES)).unwrap(), vec![kept]);
        assert!(s.get(NOTES, kept).unwrap().is_some());
    }
}
