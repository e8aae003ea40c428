//! Consent: what the survivor agreed to, versioned, and the gate every stored answer passes.
//!
//! A consent record says who recorded it, when, in which language, and which scopes were granted.
//! Every change (including a withdrawal) is a new version; the history is kept. No interview answer,
//! audio or photo can be stored for a case without the matching scope in its *current* consent.
//! A withdrawal also flags the case (`withdrawal_pending`) so sync and HQ act on it.

use crate::journal::audit::{self, AuditKind};
use crate::journal::outbox::{self, EntryKind};
use crate::records::cases::{self, CaseError};
use crate::store::{RecordId, StoreError, Tx};
use crate::vault::{Vault, VaultError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Consent versions.
pub use crate::names::collections::CONSENTS;
use crate::names::indexes::BY_CASE as CASE_INDEX;

/// One thing a survivor can agree to: the same enum templates use for their consent questions,
/// so a template scope and a recorded scope can never be spelled differently.
pub use crate::forms::ConsentScope as Scope;

/// What a consent version records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The case.
    pub case_id: String,
    /// 1, 2, 3 … per case.
    pub version: u32,
    /// When it was recorded (ms since epoch).
    pub recorded_at_ms: u64,
    /// Who recorded it (the field worker's id, not the survivor).
    pub recorded_by: String,
    /// Language the consent was explained in (e.g. `ru`, `uz`, `en`).
    pub language: String,
    /// Scopes granted in this version.
    pub scopes: BTreeSet<Scope>,
    /// Scopes that were granted before and are withdrawn by this version.
    pub withdrawn: BTreeSet<Scope>,
    /// Ids (hex) of every version of this case the recording device held when it recorded this
    /// one: what this version knowingly replaces. Versions recorded on two devices that had not
    /// seen each other are *concurrent*; see [`current_in`] for how they combine. `None` in
    /// versions recorded before sync existed: they replace every lower version number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen: Option<BTreeSet<String>>,
}

/// Errors of the consent component.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// The action needs a scope the survivor has not (or no longer) granted.
    #[error("no consent for {}", .0.as_str())]
    Missing(Scope),
    /// Bad input (empty recorder, unknown language code).
    #[error("invalid consent: {0}")]
    Invalid(&'static str),
    /// The case does not exist or failed.
    #[error(transparent)]
    Case(#[from] CaseError),
    /// The vault is not usable.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn check_input(recorded_by: &str, language: &str) -> Result<(), ConsentError> {
    if recorded_by.trim().is_empty() || recorded_by.chars().count() > 128 {
        return Err(ConsentError::Invalid(
            "recorded_by must be 1-128 characters",
        ));
    }
    let lang_ok =
        (2..=3).contains(&language.len()) && language.bytes().all(|b| b.is_ascii_lowercase());
    if !lang_ok {
        return Err(ConsentError::Invalid("language must be a 2-3 letter code"));
    }
    Ok(())
}

/// The current consent of a case inside a transaction (`None` if never recorded).
///
/// Normally the newest version. When devices recorded versions concurrently (neither had seen the
/// other's, see [`Consent::seen`]), every such *head* counts and **withdrawal wins**: the result is
/// the head with the highest version number (ties: the greatest record id), its `scopes` narrowed
/// to the scopes that *every* head grants. So a scope withdrawn on any device stays withdrawn
/// after merging, whatever the clocks say, until a version recorded after seeing the withdrawal
/// grants it again; a scope granted concurrently with another head's withdrawal waits for such a
/// version too. Everything gated on consent (answers, attachments, envelope recipients) follows.
pub fn current_in(tx: &mut Tx<'_>, case_id: RecordId) -> Result<Option<Consent>, StoreError> {
    let versions = versions_in(tx, case_id)?;
    let has_seen = |later: &Consent, earlier: (RecordId, &Consent)| match &later.seen {
        Some(seen) => seen.contains(&earlier.0.to_string()),
        None => earlier.1.version < later.version,
    };
    let heads: Vec<&(RecordId, Consent)> = versions
        .iter()
        .filter(|(id, v)| {
            !versions
                .iter()
                .any(|(other, later)| other != id && has_seen(later, (*id, v)))
        })
        .collect();
    let Some((_, newest)) = heads.iter().max_by_key(|(id, v)| (v.version, *id)) else {
        return Ok(None);
    };
    let mut current = newest.clone();
    for (_, head) in &heads {
        current.scopes.retain(|s| head.scopes.contains(s));
    }
    Ok(Some(current))
}

/// Every consent version of a case held here, with its record id (sync re-sends a device's own
/// versions to a team member who joins the case).
pub(crate) fn versions_in(
    tx: &mut Tx<'_>,
    case_id: RecordId,
) -> Result<Vec<(RecordId, Consent)>, StoreError> {
    let mut out = Vec::new();
    for id in tx.find(CONSENTS, CASE_INDEX, case_id.as_bytes())? {
        out.push((id, tx.require_json::<Consent>(CONSENTS, id)?.0));
    }
    out.sort_by_key(|(id, c)| (c.version, *id));
    Ok(out)
}

/// Every consent version of a case inside a transaction, oldest first (concurrent versions with
/// the same number ordered by record id).
pub fn history_in(tx: &mut Tx<'_>, case_id: RecordId) -> Result<Vec<Consent>, StoreError> {
    Ok(versions_in(tx, case_id)?
        .into_iter()
        .map(|(_, c)| c)
        .collect())
}

/// Fails with [`ConsentError::Missing`] unless the case's current consent includes `scope`.
pub fn require_in(tx: &mut Tx<'_>, case_id: RecordId, scope: Scope) -> Result<(), ConsentError> {
    match current_in(tx, case_id)? {
        Some(c) if c.scopes.contains(&scope) => Ok(()),
        _ => Err(ConsentError::Missing(scope)),
    }
}

fn append_version(
    tx: &mut Tx<'_>,
    case_id: RecordId,
    recorded_by: &str,
    language: &str,
    scopes: BTreeSet<Scope>,
) -> Result<Consent, ConsentError> {
    let (mut case, case_version) = cases::load(tx, case_id)?;
    let previous = current_in(tx, case_id)?;
    let held = versions_in(tx, case_id)?;
    let newest = held.iter().map(|(_, c)| c.version).max().unwrap_or(0);
    let before = previous
        .as_ref()
        .map(|c| c.scopes.clone())
        .unwrap_or_default();
    let withdrawn: BTreeSet<Scope> = before.difference(&scopes).copied().collect();
    let consent = Consent {
        case_id: case_id.to_string(),
        version: newest + 1,
        recorded_at_ms: tx.clock().now_ms(),
        recorded_by: recorded_by.to_string(),
        language: language.to_string(),
        scopes,
        withdrawn,
        seen: Some(held.iter().map(|(id, _)| id.to_string()).collect()),
    };
    let id = tx.insert_json(CONSENTS, &consent)?;
    tx.set_index(CONSENTS, CASE_INDEX, id, case_id.as_bytes())?;
    let kind = if consent.withdrawn.is_empty() {
        AuditKind::ConsentRecord
    } else {
        case.withdrawal_pending = true;
        cases::save(tx, &case, case_version)?;
        AuditKind::ConsentWithdraw
    };
    audit::append(tx, kind, Some(case_id))?;
    outbox::enqueue(tx, EntryKind::Consent, CONSENTS, id)?;
    if !consent.withdrawn.is_empty() {
        // The signed notice to HQ, in the same transaction: HQ (every group, whatever was
        // withdrawn) learns it must act on what was already delivered.
        outbox::enqueue(tx, EntryKind::Withdrawal, CONSENTS, id)?;
    }
    Ok(consent)
}

/// Records a new consent version with exactly `scopes` granted. Scopes granted before and missing
/// now count as withdrawn.
pub fn record_consent(
    vault: &Vault,
    case_id: RecordId,
    recorded_by: &str,
    language: &str,
    scopes: &[Scope],
) -> Result<Consent, ConsentError> {
    vault
        .store()?
        .write(|tx| record_consent_in(tx, case_id, recorded_by, language, scopes))
}

/// [`record_consent`] inside the caller's transaction.
pub fn record_consent_in(
    tx: &mut Tx<'_>,
    case_id: RecordId,
    recorded_by: &str,
    language: &str,
    scopes: &[Scope],
) -> Result<Consent, ConsentError> {
    check_input(recorded_by, language)?;
    append_version(
        tx,
        case_id,
        recorded_by,
        language,
        scopes.iter().copied().collect(),
    )
}

/// Withdraws `scopes` (all of them if empty): a new version without them, and the case is flagged.
pub fn withdraw(
    vault: &Vault,
    case_id: RecordId,
    recorded_by: &str,
    language: &str,
    scopes: &[Scope],
) -> Result<Consent, ConsentError> {
    vault
        .store()?
        .write(|tx| withdraw_in(tx, case_id, recorded_by, language, scopes))
}

/// [`withdraw`] inside the caller's transaction.
pub fn withdraw_in(
    tx: &mut Tx<'_>,
    case_id: RecordId,
    recorded_by: &str,
    language: &str,
    scopes: &[Scope],
) -> Result<Consent, ConsentError> {
    check_input(recorded_by, language)?;
    let current = current_in(tx, case_id)?
        .map(|c| c.scopes)
        .unwrap_or_default();
    let remaining: BTreeSet<Scope> = if scopes.is_empty() {
        BTreeSet::new()
    } else {
        current
            .into_iter()
            .filter(|s| !scopes.contains(s))
            .collect()
    };
    append_version(tx, case_id, recorded_by, language, remaining)
}

/// The case's current consent, if any.
pub fn current(vault: &Vault, case_id: RecordId) -> Result<Option<Consent>, ConsentError> {
    let store = vault.store()?;
    Ok(store.read(|tx| current_in(tx, case_id))?)
}

/// Every consent version of the case, oldest first.
pub fn history(vault: &Vault, case_id: RecordId) -> Result<Vec<Consent>, ConsentError> {
    let store = vault.store()?;
    Ok(store.read(|tx| history_in(tx, case_id))?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::records::cases;

    fn version(case: RecordId, n: u32, scopes: &[Scope], seen: Option<&[RecordId]>) -> Consent {
        Consent {
            case_id: case.to_string(),
            version: n,
            recorded_at_ms: 1,
            recorded_by: "w".into(),
            language: "en".into(),
            scopes: scopes.iter().copied().collect(),
            withdrawn: BTreeSet::new(),
            seen: seen.map(|s| s.iter().map(|id| id.to_string()).collect()),
        }
    }

    fn put(v: &Vault, id: RecordId, c: &Consent) {
        let case = RecordId::parse(&c.case_id).unwrap();
        v.store()
            .unwrap()
            .write(|tx| {
                tx.insert_json_with_id(CONSENTS, id, c)?;
                tx.set_index(CONSENTS, CASE_INDEX, id, case.as_bytes())
            })
            .unwrap();
    }

    #[test]
    fn concurrent_versions_combine_so_a_withdrawal_wins_whichever_sorts_last() {
        use Scope::{Interview, ShareLegal, ShareResearch};
        // Both id orders: the granting head sorts last, then first.
        for (withdrawing, granting) in [([0x01; 16], [0xFE; 16]), ([0xFE; 16], [0x01; 16])] {
            let dir = tempfile::tempdir().unwrap();
            let v = crate::testing::create_vault(dir.path()).unwrap();
            let case = cases::create_case(&v).unwrap().id;
            record_consent(&v, case, "w", "en", &[Interview, ShareLegal]).unwrap();
            let v1 = v.store().unwrap().read(|tx| versions_in(tx, case)).unwrap()[0].0;
            let (w, g) = (
                RecordId::from_bytes(withdrawing),
                RecordId::from_bytes(granting),
            );
            put(&v, w, &version(case, 2, &[Interview], Some(&[v1])));
            put(
                &v,
                g,
                &version(
                    case,
                    2,
                    &[Interview, ShareLegal, ShareResearch],
                    Some(&[v1]),
                ),
            );
            let now = current(&v, case).unwrap().unwrap();
            assert_eq!(now.scopes, [Interview].into_iter().collect());
            let gate = v
                .store()
                .unwrap()
                .read(|tx| require_in(tx, case, ShareLegal));
            assert!(matches!(gate, Err(ConsentError::Missing(ShareLegal))));
            // A version recorded after seeing both heads decides alone.
            let next = record_consent(&v, case, "w", "en", &[Interview, ShareResearch]).unwrap();
            assert_eq!(next.version, 3);
            assert_eq!(next.seen.as_ref().map(BTreeSet::len), Some(3));
            assert_eq!(
                current(&v, case).unwrap().unwrap().scopes,
                [Interview, ShareResearch].into_iter().collect()
            );
        }
    }

    #[test]
    fn versions_recorded_before_seen_existed_replace_every_lower_number() {
        use Scope::{Interview, ShareLegal};
        let dir = tempfile::tempdir().unwrap();
        let v = crate::testing::create_vault(dir.path()).unwrap();
        let case = cases::create_case(&v).unwrap().id;
        put(
            &v,
            RecordId::from_bytes([9; 16]),
            &version(case, 1, &[Interview], None),
        );
        put(
            &v,
            RecordId::from_bytes([1; 16]),
            &version(case, 2, &[Interview, ShareLegal], None),
        );
        assert_eq!(
            current(&v, case).unwrap().unwrap().scopes,
            [Interview, ShareLegal].into_iter().collect()
        );
    }
}
