//! What the HQ review console (`amanat hq console`) may show: the same rules as [`super::export`]
//! (a version is shown to group G when G's identity is held, the device encrypted it to G and the
//! survivor's consent today still includes G), decrypted with G's identity alone, in memory.
//! Which group an installation reads as, and whether it may reveal identity answers, is decided
//! here too ([`access`]); the console only renders.

use super::export::{applied_in, build_in, notices_in, scopes_now, Rules};
use super::format::{ReadableConsent, ReadableInterview};
use super::HqError;
use crate::journal::audit::{self, AuditKind};
use crate::names::collections::{CASES, INTERVIEWS};
use crate::records::attachments::{AttachmentReader, GROUPS};
use crate::records::cases::Case;
use crate::records::consent::{self, Scope};
use crate::store::RecordId;
use crate::sync::custody::{verify_custody_in, CustodyReport};
use crate::sync::hq as receive;
use crate::vault::Vault;

/// How an installation reads: as which group, and whether identity answers may be revealed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Access {
    /// The group whose identity decrypts what is shown.
    pub group: String,
    /// Identity answers may be revealed (on request, audited): only the caseworkers group.
    pub may_reveal: bool,
}

/// The group an installation holding `held` reads as: caseworkers first, then legal, law
/// enforcement, research. Only caseworkers may reveal identities; research always reads
/// de-identified. `None` when no group is held.
pub fn access(held: &[String]) -> Option<Access> {
    ["caseworkers", "legal", "law_enforcement", "research"]
        .iter()
        .find(|g| held.iter().any(|h| h == *g))
        .map(|g| Access {
            group: g.to_string(),
            may_reveal: *g == "caseworkers",
        })
}

/// How this installation reads ([`access`] of the groups whose identities it holds); `None` when
/// it holds none.
pub fn access_of(vault: &Vault) -> Result<Option<Access>, HqError> {
    let store = vault.store()?;
    let held = store.read(|tx| {
        let mut held = Vec::new();
        for (g, _) in GROUPS {
            if !receive::export_keys_in(tx, g)?.identities.is_empty() {
                held.push(g.to_string());
            }
        }
        Ok::<_, HqError>(held)
    })?;
    Ok(access(&held))
}

fn required_access(vault: &Vault) -> Result<Access, HqError> {
    access_of(vault)?.ok_or(HqError::GroupNotHeld)
}

/// Whether `group` reads de-identified data, given the operator asked to reveal or not.
pub fn deidentified(access: &Access, reveal: bool) -> bool {
    !(access.may_reveal && reveal)
}

fn scope_of(group: &str) -> Result<Scope, HqError> {
    GROUPS
        .iter()
        .find(|(g, _)| *g == group)
        .map(|(_, s)| *s)
        .ok_or(HqError::GroupNotHeld)
}

/// One line of the case list. Ids, codes, times and scope names only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseRow {
    /// The case's record id (random; safe in a URL).
    pub case_id: String,
    /// The case code.
    pub code: String,
    /// When the case was created (ms, device clock).
    pub created_ms: u64,
    /// Scopes of the current consent.
    pub scopes: Vec<String>,
    /// Scopes withdrawn over the consent history.
    pub withdrawn: Vec<String>,
    /// A withdrawal waits to be carried out.
    pub withdrawal_pending: bool,
    /// The current consent shares with the group read as.
    pub shared: bool,
    /// Submitted interview versions held for the case.
    pub interviews: u64,
    /// The newest submission (ms, device clock).
    pub last_submitted_ms: Option<u64>,
}

/// Every case in the installation's working copy, by code; `shared` as the installation reads
/// ([`access_of`]).
pub fn case_rows(vault: &Vault) -> Result<Vec<CaseRow>, HqError> {
    let scope = scope_of(&required_access(vault)?.group)?;
    let store = vault.store()?;
    let mut rows = store.read(|tx| {
        let notices = notices_in(tx)?;
        let mut rows = Vec::new();
        for id in tx.list(CASES)? {
            let case: Case = tx.require_json(CASES, id)?.0;
            let current = consent::current_in(tx, id)?;
            let history = consent::history_in(tx, id)?;
            let case_notices = notices
                .get(&id.to_string())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let now = scopes_now(current.as_ref(), case_notices);
            let mut withdrawn: Vec<String> = history
                .iter()
                .flat_map(|c| c.withdrawn.iter().map(|s| s.as_str().to_string()))
                .chain(
                    case_notices
                        .iter()
                        .flat_map(|n| n.1.iter().map(|s| s.as_str().to_string())),
                )
                .collect();
            withdrawn.sort();
            withdrawn.dedup();
            rows.push(CaseRow {
                case_id: id.to_string(),
                code: case.code.as_str().to_string(),
                created_ms: case.created.ms,
                scopes: now.iter().map(|s| s.as_str().to_string()).collect(),
                withdrawn,
                withdrawal_pending: case.withdrawal_pending,
                shared: now.contains(&scope),
                interviews: 0,
                last_submitted_ms: None,
            });
        }
        for id in tx.list(INTERVIEWS)? {
            let i: crate::records::interviews::Interview = tx.require_json(INTERVIEWS, id)?.0;
            if i.status != crate::records::interviews::Status::Submitted {
                continue;
            }
            if let Some(row) = rows.iter_mut().find(|r| r.case_id == i.case_id) {
                row.interviews += 1;
                row.last_submitted_ms = row.last_submitted_ms.max(i.submitted_at_ms);
            }
        }
        Ok::<_, HqError>(rows)
    })?;
    rows.sort_by(|a, b| a.code.cmp(&b.code));
    Ok(rows)
}

/// What to show of a case. The group read as and whether identity answers show are decided
/// here ([`access_of`], [`deidentified`]), not by the caller.
#[derive(Clone, Debug, Default)]
pub struct ViewOptions {
    /// The operator asked to reveal identity answers (honoured only for caseworkers).
    pub reveal: bool,
    /// Label answers in this language (`en`, `ru`, `uz`) instead of each interview's own.
    pub language: Option<String>,
}

/// One interview version as the group reads it, with its custody status.
#[derive(Clone, Debug)]
pub struct InterviewView {
    /// The version, exactly as the export would write it.
    pub readable: ReadableInterview,
    /// Signature, content hash and version hash hold, and the custody walk found nothing.
    pub verified: bool,
    /// Custody failures naming this version or its attachments: (item id, reason code).
    pub failures: Vec<(String, String)>,
}

/// A case as the group reads it.
#[derive(Clone, Debug)]
pub struct CaseView {
    /// The list line.
    pub row: CaseRow,
    /// Consent history, oldest first.
    pub consent: Vec<ReadableConsent>,
    /// The interview versions the group may read, oldest first.
    pub interviews: Vec<InterviewView>,
    /// Versions held for the case that the group may not read.
    pub not_shared: u64,
}

/// The group identities held (to decrypt attachments for the custody walk).
fn held_identities(tx: &mut crate::store::Tx<'_>) -> Result<Vec<age::x25519::Identity>, HqError> {
    let mut out = Vec::new();
    for (g, _) in GROUPS {
        out.extend(receive::export_keys_in(tx, g)?.identities);
    }
    Ok(out)
}

/// The custody walk over the installation's store ([`verify_custody_in`]) with the identities
/// held. The console shows each failure on the item it names.
pub fn custody(vault: &Vault) -> Result<CustodyReport, HqError> {
    let store = vault.store()?;
    let dir = vault.dir().to_path_buf();
    store.read(|tx| {
        let ids = held_identities(tx)?;
        Ok(verify_custody_in(tx, &dir, &ids)?)
    })
}

/// Case `case_id` as this installation may read it; `None` when it holds no such case. Custody
/// failures are taken from `custody` (a walk the caller keeps, since it decrypts every recording)
/// or, when `None`, from a fresh [`custody`] walk.
pub fn case_view(
    vault: &Vault,
    case_id: RecordId,
    opts: &ViewOptions,
    custody_report: Option<&CustodyReport>,
) -> Result<Option<CaseView>, HqError> {
    let access = required_access(vault)?;
    let scope = scope_of(&access.group)?;
    let Some(row) = case_rows(vault)?
        .into_iter()
        .find(|r| r.case_id == case_id.to_string())
    else {
        return Ok(None);
    };
    let fresh;
    let custody = match custody_report {
        Some(r) => r,
        None => {
            fresh = custody(vault)?;
            &fresh
        }
    };
    let store = vault.store()?;
    store.read(|tx| {
        let keys = receive::export_keys_in(tx, &access.group)?;
        let identity = keys.identities;
        if identity.is_empty() {
            return Err(HqError::GroupNotHeld);
        }
        let applied = applied_in(tx)?;
        let notices = notices_in(tx)?;
        let rules = Rules {
            identity: &identity,
            scope,
            deidentified: deidentified(&access, opts.reveal),
            since_ms: None,
            language: opts.language.as_deref(),
            notices: &notices,
        };
        let mut interviews = Vec::new();
        let mut not_shared = 0;
        for id in tx.find(
            INTERVIEWS,
            crate::names::indexes::BY_CASE,
            case_id.as_bytes(),
        )? {
            match build_in(tx, id, &applied, &rules)? {
                Some(b) => {
                    let mut ids = vec![b.readable.interview_id.clone(), b.readable.record.clone()];
                    ids.extend(b.readable.attachments.iter().map(|a| a.id.clone()));
                    let failures: Vec<(String, String)> = custody
                        .failures
                        .iter()
                        .filter(|f| ids.contains(&f.id))
                        .map(|f| (f.id.clone(), f.reason.code().to_string()))
                        .collect();
                    interviews.push(InterviewView {
                        verified: b.verified && failures.is_empty(),
                        failures,
                        readable: b.readable,
                    });
                }
                None => not_shared += 1,
            }
        }
        interviews.sort_by_key(|i| (i.readable.submitted_at_ms, i.readable.amendment));
        let consent = consent::history_in(tx, case_id)?
            .iter()
            .map(|c| ReadableConsent {
                version: c.version,
                recorded_at_ms: c.recorded_at_ms,
                recorded_by: c.recorded_by.clone(),
                scopes: c.scopes.iter().map(|s| s.as_str().to_string()).collect(),
                withdrawn: c.withdrawn.iter().map(|s| s.as_str().to_string()).collect(),
                record: None,
            })
            .collect();
        Ok(Some(CaseView {
            row,
            consent,
            interviews,
            not_shared,
        }))
    })
}

/// Opens attachment `attachment_id` for streaming, decrypted with the keys of the group the
/// installation reads as alone, when an interview version that group may read answers with it;
/// `None` otherwise. Returns the media type and the reader (which decrypts chunk by chunk:
/// nothing is written).
pub fn open_attachment(
    vault: &Vault,
    attachment_id: &str,
) -> Result<Option<(String, AttachmentReader)>, HqError> {
    let group = required_access(vault)?.group;
    let group = group.as_str();
    let scope = scope_of(group)?;
    let store = vault.store()?;
    let found = store.read(|tx| {
        let keys = receive::export_keys_in(tx, group)?;
        let identity = keys.identities;
        if identity.is_empty() {
            return Err(HqError::GroupNotHeld);
        }
        let applied = applied_in(tx)?;
        let notices = notices_in(tx)?;
        let rules = Rules {
            identity: &identity,
            scope,
            deidentified: true,
            since_ms: None,
            language: None,
            notices: &notices,
        };
        for id in tx.list(INTERVIEWS)? {
            if let Some(b) = build_in(tx, id, &applied, &rules)? {
                for (a, (file_id, _, _)) in b.readable.attachments.iter().zip(&b.evidence) {
                    if a.id == attachment_id {
                        return Ok(Some((
                            a.media_type.clone(),
                            file_id.clone(),
                            identity.clone(),
                        )));
                    }
                }
            }
        }
        Ok::<_, HqError>(None)
    })?;
    let Some((media_type, file_id, identity)) = found else {
        return Ok(None);
    };
    let path = crate::vault::layout::attachment_path(vault.dir(), &file_id);
    let reader =
        AttachmentReader::open_file(&path, &identity).map_err(|_| HqError::AttachmentUnreadable)?;
    Ok(Some((media_type, reader)))
}

/// The case's identity fields (names, contacts: the case's identity record), field name and
/// current value, only when the installation may reveal ([`Access::may_reveal`]), the operator
/// asked (`revealed`) and the survivor's consent today still shares with caseworkers; empty
/// otherwise.
pub fn identity_fields(
    vault: &Vault,
    case_id: RecordId,
    revealed: bool,
) -> Result<Vec<(String, String)>, HqError> {
    let access = required_access(vault)?;
    if deidentified(&access, revealed) {
        return Ok(Vec::new());
    }
    let scope = scope_of(&access.group)?;
    let store = vault.store()?;
    store.read(|tx| {
        let current = consent::current_in(tx, case_id)?;
        let notices = notices_in(tx)?;
        let case_notices = notices
            .get(&case_id.to_string())
            .map(Vec::as_slice)
            .unwrap_or_default();
        if !scopes_now(current.as_ref(), case_notices).contains(&scope) {
            return Ok(Vec::new());
        }
        let identity = tx
            .get_json::<crate::records::cases::CaseIdentity>(
                crate::names::collections::CASE_IDENTITIES,
                case_id,
            )?
            .map(|(i, _)| i)
            .unwrap_or_default();
        Ok(identity
            .fields
            .iter()
            .filter_map(|(k, f)| f.current().map(|v| (k.clone(), v.to_string())))
            .collect())
    })
}

/// Records in the installation's audit log that the operator revealed the identity answers of
/// case `case_id` (ids only); refused ([`HqError::NotAllowed`]) unless the installation may
/// reveal.
pub fn record_reveal(vault: &Vault, case_id: RecordId) -> Result<(), HqError> {
    if !required_access(vault)?.may_reveal {
        return Err(HqError::NotAllowed);
    }
    record_action(vault, ConsoleAction::Reveal, Some(case_id))
}

/// Exports case `case_id` in the export command's format into `out` (new or empty), as the
/// installation reads ([`access_of`]; identity answers only if revealed and allowed), and records
/// it in the audit log. `None` when the installation holds no such case.
pub fn export_case(
    vault: &Vault,
    case_id: RecordId,
    out: &std::path::Path,
    reveal: bool,
    now_ms: u64,
) -> Result<Option<super::ExportReport>, HqError> {
    let access = required_access(vault)?;
    let Some(row) = case_rows(vault)?
        .into_iter()
        .find(|r| r.case_id == case_id.to_string())
    else {
        return Ok(None);
    };
    let opts = super::ExportOptions {
        group: access.group.clone(),
        deidentified: deidentified(&access, reveal),
        since_ms: None,
        now_ms,
        case_code: Some(row.code),
    };
    let report = super::export(vault, out, &opts, None)?;
    record_action(vault, ConsoleAction::Export, Some(case_id))?;
    Ok(Some(report))
}

/// An operator's action in the review console, each written to the installation's audit log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsoleAction {
    /// Identity answers revealed (subject: the case).
    Reveal,
    /// Receipts sent to the devices.
    Acknowledge,
    /// A clash resolved (subject: the case).
    ClashResolve,
    /// A case exported (subject: the case).
    Export,
    /// A case referred to a device or taken back (subject: the case).
    Refer,
}

/// Appends `action` to the installation's audit log (ids only, never content).
pub fn record_action(
    vault: &Vault,
    action: ConsoleAction,
    subject: Option<RecordId>,
) -> Result<(), HqError> {
    let kind = match action {
        ConsoleAction::Reveal => AuditKind::IdentityReveal,
        ConsoleAction::Acknowledge => AuditKind::Acknowledge,
        ConsoleAction::ClashResolve => AuditKind::ClashResolve,
        ConsoleAction::Export => AuditKind::Export,
        ConsoleAction::Refer => AuditKind::CaseRefer,
    };
    vault
        .store()?
        .write(|tx| audit::append(tx, kind, subject))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(g: &[&str]) -> Vec<String> {
        g.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn caseworkers_may_reveal_research_reads_deidentified_and_nothing_held_reads_nothing() {
        let all = access(&held(&["research", "legal", "caseworkers"])).unwrap_or_else(|| {
            panic!("a group is held");
        });
        assert_eq!(all.group, "caseworkers");
        assert!(all.may_reveal);
        assert!(deidentified(&all, false), "hidden until asked");
        assert!(!deidentified(&all, true));
        let research = access(&held(&["research"])).unwrap_or_else(|| panic!("held"));
        assert_eq!(research.group, "research");
        assert!(!research.may_reveal);
        assert!(deidentified(&research, true), "research never reveals");
        let legal = access(&held(&["research", "legal"])).unwrap_or_else(|| panic!("held"));
        assert_eq!((legal.group.as_str(), legal.may_reveal), ("legal", false));
        assert!(deidentified(&legal, true));
        assert_eq!(access(&[]), None);
        assert_eq!(access(&held(&["nobody"])), None);
    }
}
