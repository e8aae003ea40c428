//! The outbox (journal::outbox) as the record components write it: in the same transaction as
//! the change, for exactly the changes that travel (drafts never), persisted across lock/unlock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use amanat_core::forms::{AnswerValue, Answers};
use amanat_core::journal::outbox::{self, EntryKind};
use amanat_core::records::cases::{self, CaseError};
use amanat_core::records::consent::{self, Scope};
use amanat_core::records::interviews;
use amanat_core::testing::{create_vault, PASSCODE};
use amanat_core::{Passcode, Vault};

/// The queued data entries (audit entries, queued with every audited action, are checked by
/// `audit_entries_and_withdrawal_notices_travel_in_the_same_transaction`).
fn queue(v: &Vault) -> Vec<(u64, EntryKind, String)> {
    v.store()
        .unwrap()
        .read(outbox::entries)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind != EntryKind::Audit)
        .map(|e| (e.seq, e.kind, e.record))
        .collect()
}

fn kinds(v: &Vault) -> Vec<EntryKind> {
    queue(v).into_iter().map(|(_, k, _)| k).collect()
}

#[test]
fn change_and_outbox_entry_commit_together_or_not_at_all() {
    let tmp = tempfile::tempdir().unwrap();
    let v = create_vault(tmp.path()).unwrap();
    let case = cases::create_case(&v).unwrap();
    let q = queue(&v);
    assert_eq!(q.len(), 1);
    assert_eq!(
        (q[0].1, q[0].2.clone()),
        (EntryKind::Case, case.id.to_string())
    );

    // A transaction that sets a field and then fails: neither the field nor its entry remain.
    let store = v.store().unwrap();
    let failed: Result<(), CaseError> = store.write(|tx| {
        cases::set_field_in(tx, case.id, "status", "open")?;
        let data = outbox::entries(tx)?
            .into_iter()
            .filter(|e| e.kind != EntryKind::Audit)
            .count();
        assert_eq!(data, 2, "queued inside the transaction");
        Err(CaseError::NotFound)
    });
    assert!(failed.is_err());
    assert_eq!(queue(&v).len(), 1);
    assert!(cases::get_case(&v, case.id).unwrap().fields.is_empty());

    // A refused change (bad field name) queues nothing either.
    assert!(cases::set_field(&v, case.id, "Bad Name", "x").is_err());
    assert_eq!(queue(&v).len(), 1);

    cases::set_field(&v, case.id, "status", "open").unwrap();
    cases::set_identity_field(&v, case.id, "name", "Гульнара").unwrap();
    assert_eq!(
        kinds(&v),
        [EntryKind::Case, EntryKind::Case, EntryKind::Identity]
    );
    // The identity entry references the identity record, not its content.
    let entries: Vec<_> = store
        .read(outbox::entries)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind != EntryKind::Audit)
        .collect();
    assert_eq!(entries[2].collection, "case_identities");
    assert!(!format!("{entries:?}").contains("Гульнара"));
}

#[test]
fn consent_and_submitted_interviews_travel_drafts_do_not() {
    let tmp = tempfile::tempdir().unwrap();
    let v = create_vault(tmp.path()).unwrap();
    let case = cases::create_case(&v).unwrap();
    consent::record_consent(&v, case.id, "worker-17", "ru", &[Scope::Interview]).unwrap();
    let i = interviews::start(&v, case.id, "trafficking_screening", 1, "uz").unwrap();
    let batch: Answers = [
        ("interpreter_used", AnswerValue::YesNo(false)),
        ("first_contact", AnswerValue::Choice("messaging_app".into())),
        ("platforms", AnswerValue::Choices(vec!["telegram".into()])),
        ("hours_per_day", AnswerValue::Integer(14)),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect();
    interviews::save_answers(&v, &i.id, &batch).unwrap();
    assert_eq!(
        kinds(&v),
        [EntryKind::Case, EntryKind::Consent],
        "starting and saving a draft queues nothing"
    );
    interviews::submit(&v, &i.id).unwrap();
    let amendment = interviews::amend(&v, &i.id).unwrap();
    assert_eq!(
        kinds(&v),
        [EntryKind::Case, EntryKind::Consent, EntryKind::Interview],
        "an amendment draft queues nothing"
    );
    interviews::submit(&v, &amendment.id).unwrap();
    consent::withdraw(&v, case.id, "worker-17", "ru", &[]).unwrap();
    let q = queue(&v);
    assert_eq!(
        q.iter().map(|(_, k, _)| *k).collect::<Vec<_>>(),
        [
            EntryKind::Case,
            EntryKind::Consent,
            EntryKind::Interview,
            EntryKind::Interview,
            EntryKind::Consent,
            EntryKind::Withdrawal
        ]
    );
    assert_eq!(q[3].2, amendment.id);
    // The withdrawal notice references the consent version that withdrew.
    assert_eq!(q[5].2, q[4].2);
    assert!(q.windows(2).all(|w| w[0].0 < w[1].0));
}

#[test]
fn audit_entries_and_withdrawal_notices_travel_in_the_same_transaction() {
    use amanat_core::journal::audit::{self, AuditKind};
    let tmp = tempfile::tempdir().unwrap();
    let v = create_vault(tmp.path()).unwrap();
    let all = |v: &Vault| v.store().unwrap().read(outbox::entries).unwrap();
    let audit_ids = |v: &Vault| {
        v.store()
            .unwrap()
            .read(|tx| tx.list(audit::AUDIT))
            .unwrap()
            .into_iter()
            .map(|id| id.to_string())
            .collect::<std::collections::BTreeSet<_>>()
    };
    let case = cases::create_case(&v).unwrap();
    // Every audit entry has exactly one `audit` outbox entry referencing it, and nothing else does.
    let queued_audit = |v: &Vault| {
        all(v)
            .into_iter()
            .filter(|e| e.kind == EntryKind::Audit)
            .map(|e| {
                assert_eq!(e.collection, "audit");
                e.record
            })
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(!audit_ids(&v).is_empty());
    assert_eq!(queued_audit(&v), audit_ids(&v));
    // A failing transaction keeps neither the audit entry nor its outbox entry.
    let before = all(&v).len();
    let store = v.store().unwrap();
    let failed: Result<(), amanat_core::store::StoreError> = store.write(|tx| {
        audit::append(tx, AuditKind::Export, Some(case.id))?;
        Err(amanat_core::store::StoreError::Shape)
    });
    assert!(failed.is_err());
    assert_eq!(all(&v).len(), before);
    assert_eq!(queued_audit(&v), audit_ids(&v));
    // Recording consent queues no notice; withdrawing queues the consent version, its
    // withdrawal notice and the audit entry, all in the one transaction.
    consent::record_consent(
        &v,
        case.id,
        "w",
        "ru",
        &[Scope::Interview, Scope::ShareResearch],
    )
    .unwrap();
    assert!(all(&v).iter().all(|e| e.kind != EntryKind::Withdrawal));
    let before = all(&v).len();
    consent::withdraw(&v, case.id, "w", "ru", &[Scope::ShareResearch]).unwrap();
    let new: Vec<_> = all(&v).into_iter().skip(before).collect();
    let kinds: Vec<EntryKind> = new.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EntryKind::Audit, EntryKind::Consent, EntryKind::Withdrawal]
    );
    assert_eq!(new[1].record, new[2].record);
    assert_eq!(queued_audit(&v), audit_ids(&v));
}

#[test]
fn queued_entries_survive_lock_and_unlock_and_keep_their_order() {
    let tmp = tempfile::tempdir().unwrap();
    let v = create_vault(tmp.path()).unwrap();
    let mut ids = Vec::new();
    for _ in 0..300 {
        ids.push(cases::create_case(&v).unwrap().id.to_string());
    }
    let seqs: Vec<u64> = queue(&v).iter().map(|(s, _, _)| *s).collect();
    let store = v.store().unwrap();
    store
        .write(|tx| {
            outbox::remove(tx, seqs[1])?;
            outbox::mark_wedged(tx, seqs[2], "envelope_too_large")
        })
        .unwrap();
    drop(store);
    v.lock();
    v.unlock(&Passcode::from(PASSCODE)).unwrap();
    let q: Vec<_> = v
        .store()
        .unwrap()
        .read(outbox::entries)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind != EntryKind::Audit)
        .collect();
    assert_eq!(q.len(), 299);
    assert_eq!(q[0].record, ids[0]);
    assert_eq!(q[1].record, ids[2]);
    assert_eq!(q[1].wedged.as_deref(), Some("envelope_too_large"));
    assert_eq!(q[298].record, ids[299]);
    assert!(q.windows(2).all(|w| w[0].seq < w[1].seq));
    // A new entry continues the sequence (removed numbers are never reused).
    let max = v
        .store()
        .unwrap()
        .read(outbox::entries)
        .unwrap()
        .last()
        .unwrap()
        .seq;
    let removed = seqs[1];
    cases::create_case(&v).unwrap();
    let last = v.store().unwrap().read(outbox::entries).unwrap();
    assert!(last.last().unwrap().seq > max);
    assert!(last.iter().all(|e| e.seq != removed));
}

/// Finishing an attachment queues its metadata in the transaction that records it; an aborted
/// writer, a refused one (too large) and a draft answer queue nothing.
#[test]
fn a_finished_attachment_queues_its_metadata_an_aborted_one_nothing() {
    use amanat_core::records::attachments::{self, AttachmentWriter};
    let tmp = tempfile::tempdir().unwrap();
    let v = create_vault(tmp.path()).unwrap();
    let case = cases::create_case(&v).unwrap();
    consent::record_consent(&v, case.id, "w", "en", &[Scope::Interview, Scope::Audio]).unwrap();
    let i = interviews::start(&v, case.id, "trafficking_screening", 1, "en").unwrap();
    let before = queue(&v).len();

    let mut aborted =
        AttachmentWriter::open(&v, &i.id, "narrative_audio", "audio/wav", 1 << 20).unwrap();
    aborted.write(&[1u8; 1000]).unwrap();
    aborted.abort();
    let mut too_large =
        AttachmentWriter::open(&v, &i.id, "narrative_audio", "audio/wav", 10).unwrap();
    assert!(too_large.write(&[1u8; 11]).is_err());
    assert!(too_large.finish().is_err());
    assert_eq!(queue(&v).len(), before, "nothing recorded, nothing queued");

    let mut w = AttachmentWriter::open(&v, &i.id, "narrative_audio", "audio/wav", 1 << 20).unwrap();
    w.write(&[7u8; 5000]).unwrap();
    let info = w.finish().unwrap();
    let q = queue(&v);
    assert_eq!(q.len(), before + 1);
    let (_, kind, record) = q.last().unwrap();
    assert_eq!(
        (*kind, record.as_str()),
        (EntryKind::Attachment, info.id.as_str())
    );
    let entries = v.store().unwrap().read(outbox::entries).unwrap();
    assert_eq!(entries.last().unwrap().collection, "attachments");
    assert_eq!(attachments::info(&v, &info.id).unwrap(), info);
}

/// `filtered` (what the sync engine walks a long queue with, one entry decoded at a time) keeps
/// exactly the entries its predicate accepts, in queue order, and can read the store while it
/// walks; `count` agrees with the whole queue.
#[test]
fn filtered_walks_the_queue_in_order_and_count_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let v = create_vault(dir.path()).unwrap();
    for _ in 0..3 {
        let case = cases::create_case(&v).unwrap();
        cases::set_field(&v, case.id, "status", "open").unwrap();
    }
    let store = v.store().unwrap();
    let all = store.read(outbox::entries).unwrap();
    assert!(all.len() >= 6, "{}", all.len());
    assert_eq!(store.read(outbox::count).unwrap(), all.len() as u64);
    let mut visited = 0;
    let cases_only = store
        .read(|tx| {
            outbox::filtered(tx, |tx, e| {
                visited += 1;
                // The predicate may read the store (as the sync engine's do).
                assert!(outbox::get(tx, e.id())?.is_some());
                Ok(e.kind == EntryKind::Case)
            })
        })
        .unwrap();
    assert_eq!(visited, all.len());
    let expected: Vec<u64> = all
        .iter()
        .filter(|e| e.kind == EntryKind::Case)
        .map(|e| e.seq)
        .collect();
    assert_eq!(expected.len(), 6);
    assert_eq!(
        cases_only.iter().map(|e| e.seq).collect::<Vec<_>>(),
        expected
    );
    assert!(cases_only.windows(2).all(|w| w[0].seq < w[1].seq));
}
