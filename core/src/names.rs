//! Every name that must never change once a vault exists, in one place.
//!
//! Collection names, blind-index names, key-derivation labels, associated-data prefixes, hash
//! domains and on-disk file names all end up *inside* persisted bytes: collection names are mixed
//! into each record's AAD and blind tokens, labels into every subkey, domains into every hash. A
//! renamed constant would make every existing vault unreadable (or, worse, make two purposes share a
//! key). So they live here and nowhere else, and the tests below pin each value: changing one fails
//! `cargo test`, and adding one means adding it to the frozen list too.
//!
//! A layer-0 module: it imports nothing from the crate. The wire-format names shared with the relay
//! live in the same kind of registry in `amanat-protocol` (`amanat_protocol::names`).

/// Name of a group of records (a "table" of the sealed store).
///
/// The name is never stored in clear: it is bound into each record's associated data and blind
/// tokens. Only the constants in [`collections`] (and tests' own) exist; a `Collection` is never made
/// from outside input.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Collection(&'static str);

impl Collection {
    /// A collection with a compile-time name. Real collections are the constants in
    /// [`collections`]; tests and demos may make their own.
    pub const fn new(name: &'static str) -> Self {
        Self(name)
    }

    /// The name (bound into associated data and blind tokens).
    pub fn name(&self) -> &'static str {
        self.0
    }
}

/// The store's collections, with the component that owns each.
pub mod collections {
    use super::Collection;

    /// Cases: code, creation HLC, narrative fields (`records::cases`).
    pub const CASES: Collection = Collection::new("cases");
    /// Identity fields of a case, same record id as the case (`records::cases`).
    pub const CASE_IDENTITIES: Collection = Collection::new("case_identities");
    /// Consent versions (`records::consent`).
    pub const CONSENTS: Collection = Collection::new("consents");
    /// Interviews and their amendments (`records::interviews`).
    pub const INTERVIEWS: Collection = Collection::new("interviews");
    /// Installed form templates (`records::interviews`).
    pub const TEMPLATES: Collection = Collection::new("templates");
    /// Attachment metadata, record id = file name (`records::attachments`).
    pub const ATTACHMENTS: Collection = Collection::new("attachments");
    /// The device's age identity (`records::attachments`).
    pub const DEVICE_KEYS: Collection = Collection::new("device_keys");
    /// Organisation recipients per group (`records::attachments`).
    pub const ORG_CONFIG: Collection = Collection::new("org_config");
    /// Audit log entries (`journal::audit`).
    pub const AUDIT: Collection = Collection::new("audit");
    /// The audit log's head (sequence and hash of the last entry) (`journal::audit`).
    pub const AUDIT_HEAD: Collection = Collection::new("audit_head");
    /// The hybrid logical clock's last timestamp (`journal::hlc`).
    pub const HLC_STATE: Collection = Collection::new("hlc_state");
    /// Changes waiting to travel, in order (`journal::outbox`).
    pub const OUTBOX: Collection = Collection::new("outbox");
    /// The outbox's next sequence number (`journal::outbox`).
    pub const OUTBOX_HEAD: Collection = Collection::new("outbox_head");
    /// Enrollment and sync bookkeeping: relay, device id, organisation, cursor (`sync`).
    pub const SYNC_STATE: Collection = Collection::new("sync_state");
    /// Envelopes prepared for an outbox entry, id = the entry's id (`sync`).
    pub const SYNC_PREPARED: Collection = Collection::new("sync_prepared");
    /// Ids of pulled envelopes already applied, id = the envelope's UUID (`sync`).
    pub const SYNC_APPLIED: Collection = Collection::new("sync_applied");
    /// Pulled envelopes that failed verification, kept encrypted with the reason (`sync`).
    pub const SYNC_QUARANTINE: Collection = Collection::new("sync_quarantine");
    /// Team devices this device knows (keys, shared cases), id = device id (`sync`).
    pub const SYNC_PEERS: Collection = Collection::new("sync_peers");
    /// Hash and version of the last envelope prepared per record (`sync`).
    pub const SYNC_CHAIN: Collection = Collection::new("sync_chain");
    /// Blob upload state of an attachment entry (address, size, done), id = the outbox entry's id
    /// (`sync::media`).
    pub const SYNC_UPLOADS: Collection = Collection::new("sync_uploads");
    /// Attachments announced by a verified envelope whose blob is not downloaded and checked yet,
    /// id = the attachment id (`sync::media`).
    pub const SYNC_DOWNLOADS: Collection = Collection::new("sync_downloads");
    /// HQ only: organisation group identities this installation holds (age secret keys), id =
    /// derived from the group name (`hq`).
    pub const HQ_IDENTITIES: Collection = Collection::new("hq_identities");
    /// HQ only: every pulled envelope exactly as the relay delivered it (the evidentiary
    /// original, still encrypted and signed), id = the envelope's UUID (`hq`).
    pub const HQ_ORIGINALS: Collection = Collection::new("hq_originals");
    /// HQ only: records that travel to HQ alone (audit entries, withdrawal notices), decrypted
    /// and verified, id = the envelope's UUID (`hq`).
    pub const HQ_RECEIVED: Collection = Collection::new("hq_received");
    /// HQ only: the org-signed certificate of this installation's signing key (`hq`).
    pub const HQ_CERTIFICATE: Collection = Collection::new("hq_certificate");
    /// Organisation orders this device obeyed (id = the order envelope's UUID), kept for custody
    /// and so a redelivery is not obeyed twice (`sync::orders`).
    pub const SYNC_ORDERS: Collection = Collection::new("sync_orders");
    /// HQ receipts of this device's records: id = the record id, when the receipt arrived
    /// (`sync::retention`).
    pub const SYNC_RECEIPTS: Collection = Collection::new("sync_receipts");
    /// Records purged after their receipt and the retention period: id = the record id, its hash
    /// and when (`sync::retention`), so custody can tell purged from lost.
    pub const SYNC_PURGED: Collection = Collection::new("sync_purged");
    /// HQ only: envelopes whose records a receipt was sent for, id = the envelope's UUID.
    pub const HQ_RECEIPTED: Collection = Collection::new("hq_receipted");
    /// HQ only: per case, the devices HQ last assigned it to and the serial of that order
    /// (`sync::hq::assign_case`).
    pub const HQ_ASSIGNMENTS: Collection = Collection::new("hq_assignments");
    /// HQ only: per device (id = device id), the serial of the `recipients` order last delivered
    /// to it (`sync::hq::deliver_standing`).
    pub const HQ_DELIVERED: Collection = Collection::new("hq_delivered");

    /// Every collection above, for uniqueness checks and integrity walks.
    pub const ALL: [Collection; 31] = [
        CASES,
        CASE_IDENTITIES,
        CONSENTS,
        INTERVIEWS,
        TEMPLATES,
        ATTACHMENTS,
        DEVICE_KEYS,
        ORG_CONFIG,
        AUDIT,
        AUDIT_HEAD,
        HLC_STATE,
        OUTBOX,
        OUTBOX_HEAD,
        SYNC_STATE,
        SYNC_PREPARED,
        SYNC_APPLIED,
        SYNC_QUARANTINE,
        SYNC_PEERS,
        SYNC_CHAIN,
        SYNC_UPLOADS,
        SYNC_DOWNLOADS,
        HQ_IDENTITIES,
        HQ_ORIGINALS,
        HQ_RECEIVED,
        HQ_CERTIFICATE,
        SYNC_ORDERS,
        SYNC_RECEIPTS,
        SYNC_PURGED,
        HQ_RECEIPTED,
        HQ_ASSIGNMENTS,
        HQ_DELIVERED,
    ];
}

/// Blind-index names (mixed into each blind token with the collection name).
pub mod indexes {
    /// `cases` by case code.
    pub const CASE_CODE: &str = "code";
    /// `consents` and `interviews` by case id.
    pub const BY_CASE: &str = "case";
    /// `interviews` by the record id of the version it amends.
    pub const AMENDS: &str = "amends";
    /// `templates` by `id@version`.
    pub const TEMPLATE_KEY: &str = "key";
}

/// Domain-separation labels: key derivation, associated data, hashes.
pub mod labels {
    /// HKDF salt for every subkey of the data key.
    pub const HKDF_SALT: &[u8] = b"amanat/v1/hkdf";
    /// HKDF info of the record-sealing subkey.
    pub const RECORDS: &[u8] = b"amanat/v1/records";
    /// HKDF info of the record-sealing subkey of a store sealed with AES-256-GCM (a vault made on
    /// a CPU with AES instructions): its own label, so no key is used with both ciphers.
    pub const RECORDS_AES256GCM: &[u8] = b"amanat/v1/records-aes256gcm";
    /// HKDF info of the blind-index HMAC subkey.
    pub const BLIND_INDEX: &[u8] = b"amanat/v1/blind-index";
    /// HKDF info of the attachment cache subkey.
    pub const ATTACHMENT_CACHE: &[u8] = b"amanat/v1/attachment-cache";
    /// AAD prefix of every sealed record (then collection, id, version).
    pub const RECORD_AAD_PREFIX: &[u8] = b"amanat/v1/record";
    /// AAD of the store's sealed vault-id check value.
    pub const STORE_CHECK_AAD: &[u8] = b"amanat/v1/meta/check";
    /// AAD prefix of a key slot's sealed data key (then `main/` or `duress/`, vault id, KDF params, salt).
    pub const SLOT_AAD_PREFIX: &[u8] = b"amanat/v1/slot/";
    /// AAD of the software key provider's wrapping.
    pub const SOFTWARE_PROVIDER_AAD: &[u8] = b"amanat/v1/software-provider";
    /// Domain of a submitted interview's content hash.
    pub const INTERVIEW_HASH: &str = "amanat/v1/interview";
    /// Domain prefix of an audit entry's hash (NUL-terminated in the hash input).
    pub const AUDIT_HASH: &[u8] = b"amanat/v1/audit\0";
    /// Domain prefix of a sync record's signed statement (NUL-terminated in the signed bytes).
    pub const SYNC_RECORD_SIGNATURE: &[u8] = b"amanat/v1/sync-record\0";
    /// Domain prefix of a sync record's content hash (NUL-terminated in the hash input).
    pub const SYNC_CONTENT_HASH: &[u8] = b"amanat/v1/sync-content\0";
    /// Domain prefix of a clash id (NUL-terminated; then record kind, case id, field, the HLCs of
    /// the clashing values), so an id names one exact set of values.
    pub const CLASH_ID: &[u8] = b"amanat/v1/clash\0";

    /// HKDF info of the manifest subkey (the keyed digests over each collection's set of records
    /// and each blind index's set of entries).
    pub const MANIFEST: &[u8] = b"amanat/v1/manifest";
    /// AAD of the store's sealed manifest.
    pub const MANIFEST_AAD: &[u8] = b"amanat/v1/meta/manifest";
    /// First part of a record's manifest hash (then collection tag, record id, version).
    pub const MANIFEST_RECORD: &[u8] = b"manifest-record";
    /// First part of a blind-index entry's manifest hash (then field tag, token, record id).
    pub const MANIFEST_ENTRY: &[u8] = b"manifest-entry";
    /// Domain of a key slot's check value: SHA-256 over the sealed slot before the platform
    /// provider wraps it, so an `unwrap` that returns other bytes is told from a wrong passcode.
    pub const SLOT_CHECK: &[u8] = b"amanat/v1/slot-check";

    /// First part of a collection's blind tag (then the collection name).
    pub const BLIND_COLLECTION: &[u8] = b"collection";
    /// First part of a blind index's field tag (then collection and index name).
    pub const BLIND_FIELD: &[u8] = b"field";
    /// First part of a blind index's value token (then collection, index name, value).
    pub const BLIND_VALUE: &[u8] = b"value";

    /// Every label above, for uniqueness checks.
    pub const ALL: [&[u8]; 22] = [
        HKDF_SALT,
        RECORDS,
        RECORDS_AES256GCM,
        BLIND_INDEX,
        ATTACHMENT_CACHE,
        RECORD_AAD_PREFIX,
        STORE_CHECK_AAD,
        SLOT_AAD_PREFIX,
        SOFTWARE_PROVIDER_AAD,
        INTERVIEW_HASH.as_bytes(),
        AUDIT_HASH,
        SYNC_RECORD_SIGNATURE,
        SYNC_CONTENT_HASH,
        BLIND_COLLECTION,
        BLIND_FIELD,
        BLIND_VALUE,
        MANIFEST,
        MANIFEST_AAD,
        MANIFEST_RECORD,
        MANIFEST_ENTRY,
        SLOT_CHECK,
        CLASH_ID,
    ];
}

/// Record kinds that travel: signed into every envelope (`SignedRecord::kind`) and kept in outbox
/// entries, so a renamed kind would make every envelope in flight unreadable.
pub mod kinds {
    /// A case (creation or a change of its narrative fields).
    pub const CASE: &str = "case";
    /// The identity record of a case (names, contacts).
    pub const IDENTITY: &str = "identity";
    /// A consent version (including a withdrawal).
    pub const CONSENT: &str = "consent";
    /// A submitted interview or amendment.
    pub const INTERVIEW: &str = "interview";
    /// An audit chain entry (routed to HQ only).
    pub const AUDIT: &str = "audit";
    /// The signed withdrawal notice to HQ (routed to HQ only, no survivor content).
    pub const WITHDRAWAL: &str = "withdrawal";
    /// An attachment's metadata (plaintext and ciphertext hashes); its file travels as a blob.
    pub const ATTACHMENT: &str = "attachment";
    /// A field device's profile (its signing key and age recipient), sent once to HQ after
    /// enrollment, so HQ can seal case assignments to it (routed to HQ only, no survivor data).
    pub const DEVICE: &str = "device";

    /// Every kind, in the order they were added.
    pub const ALL: [&str; 8] = [
        CASE, IDENTITY, CONSENT, INTERVIEW, AUDIT, WITHDRAWAL, ATTACHMENT, DEVICE,
    ];
}

/// File and folder names inside a vault directory.
pub mod files {
    /// The key slots (what makes a directory a vault).
    pub const SLOTS: &str = "keyslots.json";
    /// The failed-unlock counter.
    pub const LOCKOUT: &str = "unlock-state.json";
    /// The encrypted database.
    pub const DATABASE: &str = "vault.db";
    /// Folder of attachment files (`<id>.age`).
    pub const ATTACHMENTS_DIR: &str = "attachments";
    /// Suffix of an attachment file being written.
    pub const PARTIAL_SUFFIX: &str = ".age.partial";
    /// Suffix of an attachment file being downloaded by sync (ciphertext only; the unlock
    /// reconciliation leaves it alone so a download resumes across restarts).
    pub const DOWNLOAD_SUFFIX: &str = ".age.download";
    /// Folder of background upload chunks and their plan (`sync::background`): ciphertext and
    /// signed requests only, read by the phone's system uploader while the vault is locked.
    pub const UPLOADS_DIR: &str = "uploads";
    /// Prefix of database files retired by a wipe and awaiting deletion.
    pub const TRASH_PREFIX: &str = ".trash-";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn collection_names_are_frozen_and_unique() {
        let names: Vec<&str> = collections::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(
            names,
            [
                "cases",
                "case_identities",
                "consents",
                "interviews",
                "templates",
                "attachments",
                "device_keys",
                "org_config",
                "audit",
                "audit_head",
                "hlc_state",
                "outbox",
                "outbox_head",
                "sync_state",
                "sync_prepared",
                "sync_applied",
                "sync_quarantine",
                "sync_peers",
                "sync_chain",
                "sync_uploads",
                "sync_downloads",
                "hq_identities",
                "hq_originals",
                "hq_received",
                "hq_certificate",
                "sync_orders",
                "sync_receipts",
                "sync_purged",
                "hq_receipted",
                "hq_assignments",
                "hq_delivered",
            ]
        );
        let unique: BTreeSet<&str> = names.iter().copied().collect();
        assert_eq!(unique.len(), names.len());
    }

    #[test]
    fn labels_are_frozen_and_unique() {
        let frozen: [&[u8]; 22] = [
            b"amanat/v1/hkdf",
            b"amanat/v1/records",
            b"amanat/v1/records-aes256gcm",
            b"amanat/v1/blind-index",
            b"amanat/v1/attachment-cache",
            b"amanat/v1/record",
            b"amanat/v1/meta/check",
            b"amanat/v1/slot/",
            b"amanat/v1/software-provider",
            b"amanat/v1/interview",
            b"amanat/v1/audit\0",
            b"amanat/v1/sync-record\0",
            b"amanat/v1/sync-content\0",
            b"collection",
            b"field",
            b"value",
            b"amanat/v1/manifest",
            b"amanat/v1/meta/manifest",
            b"manifest-record",
            b"manifest-entry",
            b"amanat/v1/slot-check",
            b"amanat/v1/clash\0",
        ];
        assert_eq!(labels::ALL, frozen);
        let unique: BTreeSet<&[u8]> = labels::ALL.iter().copied().collect();
        assert_eq!(unique.len(), labels::ALL.len());
    }

    #[test]
    fn index_and_file_names_are_frozen() {
        assert_eq!(
            [
                indexes::CASE_CODE,
                indexes::BY_CASE,
                indexes::AMENDS,
                indexes::TEMPLATE_KEY
            ],
            ["code", "case", "amends", "key"]
        );
        assert_eq!(
            [
                files::SLOTS,
                files::LOCKOUT,
                files::DATABASE,
                files::ATTACHMENTS_DIR,
                files::PARTIAL_SUFFIX,
                files::TRASH_PREFIX,
                files::DOWNLOAD_SUFFIX
            ],
            [
                "keyslots.json",
                "unlock-state.json",
                "vault.db",
                "attachments",
                ".age.partial",
                ".trash-",
                ".age.download"
            ]
        );
    }

    #[test]
    fn kinds_are_frozen_and_unique() {
        assert_eq!(
            kinds::ALL,
            [
                "case",
                "identity",
                "consent",
                "interview",
                "audit",
                "withdrawal",
                "attachment",
                "device"
            ]
        );
        let unique: BTreeSet<&str> = kinds::ALL.iter().copied().collect();
        assert_eq!(unique.len(), kinds::ALL.len());
    }
}
