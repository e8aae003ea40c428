//! A store schema migration never drops queued sync work (issue #11: "a schema migration must
//! never drop queued entries"). The only migration so far is 1 → 2 (blind index keyed by field,
//! sealed manifest built from the rows). This test queues real work at the current schema, puts
//! the database file back into the schema-1 shape (what a device that updated the app while
//! changes were waiting would have), and opens it again: the migration runs, and every outbox
//! entry and wedged mark is still there, in order.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::journal::outbox::{self, Entry};
use amanat_core::names::files::DATABASE;
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::{cases, interviews};
use amanat_core::testing::{create_vault, PASSCODE};
use amanat_core::{Passcode, SoftwareKeyProvider, Vault};
use std::path::Path;
use std::sync::Arc;

fn queue(v: &Vault) -> Vec<Entry> {
    v.store().unwrap().read(outbox::entries).unwrap()
}

/// Rewrites a schema-2 store file into the schema-1 shape: the blind index keyed by record, no
/// manifest, `user_version` 1.
fn downgrade_to_schema_1(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2, "the test assumes today's schema is 2");
    conn.execute_batch(
        "BEGIN;
         CREATE TABLE blind_index_v1 (
            record_id BLOB NOT NULL,
            field BLOB NOT NULL,
            token BLOB NOT NULL,
            PRIMARY KEY (record_id, field)
         ) WITHOUT ROWID;
         INSERT INTO blind_index_v1 (record_id, field, token)
            SELECT record_id, field, token FROM blind_index;
         DROP TABLE blind_index;
         ALTER TABLE blind_index_v1 RENAME TO blind_index;
         CREATE INDEX blind_index_token ON blind_index (token);
         DELETE FROM meta WHERE name = 'manifest';
         PRAGMA user_version = 1;
         COMMIT;",
    )
    .unwrap();
}

#[test]
fn the_schema_migration_keeps_every_queued_entry_its_order_and_its_wedged_mark() {
    let tmp = tempfile::tempdir().unwrap();
    let v = create_vault(tmp.path()).unwrap();
    let case = cases::create_case(&v).unwrap();
    consent::record_consent(&v, case.id, "worker-3", "ru", &[Scope::Interview]).unwrap();
    cases::set_field(&v, case.id, "status", "open").unwrap();
    let i = interviews::start(&v, case.id, "trafficking_screening", 1, "ru").unwrap();
    let answers: Answers = [("interpreter_used".to_string(), AnswerValue::YesNo(true))]
        .into_iter()
        .collect();
    interviews::save_answers(&v, &i.id, &answers).unwrap();
    interviews::submit(&v, &i.id).unwrap();
    // One entry refused by a relay earlier: its mark must survive too.
    let store = v.store().unwrap();
    let first = queue(&v)[0].seq;
    store
        .write(|tx| outbox::mark_wedged(tx, first, "envelope_too_large"))
        .unwrap();
    drop(store);
    let before = queue(&v);
    assert!(before.len() >= 4, "{before:?}");
    let code_before = cases::get_case(&v, case.id).unwrap().code;
    v.lock();

    downgrade_to_schema_1(&tmp.path().join("vault").join(DATABASE));

    let provider = Arc::new(SoftwareKeyProvider::new(tmp.path().join("device.key")));
    let v = Vault::open(tmp.path().join("vault"), provider).unwrap();
    v.unlock(&Passcode::from(PASSCODE)).unwrap();
    let db = rusqlite::Connection::open(tmp.path().join("vault").join(DATABASE)).unwrap();
    let version: u32 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 2, "the migration ran");
    // Same entries, same order, same marks; the only new ones are the audit entries of this
    // unlock (audit entries travel too, queued with the entry they record).
    let now = queue(&v);
    assert_eq!(
        now[..before.len()],
        before[..],
        "same entries, same order, same marks"
    );
    assert!(now[before.len()..]
        .iter()
        .all(|e| e.kind == outbox::EntryKind::Audit));
    assert_eq!(queue(&v)[0].wedged.as_deref(), Some("envelope_too_large"));
    // The records the entries point to read back, and new changes queue after the old ones.
    let case_after = cases::get_case(&v, case.id).unwrap();
    assert_eq!(case_after.code, code_before);
    assert_eq!(case_after.fields["status"].value, "open");
    cases::set_field(&v, case.id, "status", "closed").unwrap();
    let after = queue(&v);
    let new: Vec<&Entry> = after[now.len()..]
        .iter()
        .filter(|e| e.kind != outbox::EntryKind::Audit)
        .collect();
    assert_eq!(new.len(), 1);
    assert_eq!(new[0].kind, outbox::EntryKind::Case);
    assert!(new[0].seq > before.last().unwrap().seq);
}
