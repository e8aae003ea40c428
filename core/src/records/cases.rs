//! Cases: one per survivor, pseudonymous by default.
//!
//! A case is known by a generated **case code** (8 characters from a 31-symbol alphabet, the last
//! one a check character) — never by a name. Identity fields, if an organisation records any, live
//! in a separate record from the case's narrative fields so exports can leave them out. Mutable
//! fields carry a hybrid logical clock each; sync merges them per field, last writer wins.

use crate::journal::audit::{self, AuditKind};
use crate::journal::hlc::Hlc;
use crate::journal::outbox::{self, EntryKind};
use crate::store::{RecordId, StoreError, Tx};
use crate::vault::{Vault, VaultError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Case records (code, narrative fields, flags).
pub use crate::names::collections::CASES;
/// Identity records, one per case that has any, under the case's id.
pub use crate::names::collections::CASE_IDENTITIES as IDENTITIES;
use crate::names::indexes::CASE_CODE as CODE_INDEX;

/// Longest field value accepted (characters).
pub const MAX_FIELD_CHARS: usize = 4096;

/// Errors of the cases component. Never contains field values.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// No case with that id or code.
    #[error("case not found")]
    NotFound,
    /// A case code failed to parse (reason says why; the input is not repeated).
    #[error("invalid case code: {0}")]
    BadCode(&'static str),
    /// A field name is not `[a-z0-9_]{1,64}` or a value is too long.
    #[error("invalid field {field}: {reason}")]
    BadField {
        /// The field name (a schema name, not data) or `<invalid>` if the name itself is bad.
        field: String,
        /// Why.
        reason: &'static str,
    },
    /// The vault is not usable.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The 31 symbols of case codes: digits and capitals without 1, I, L, O, U (easily confused or
/// spelling words). 31 is prime, which makes the weighted check below catch every single wrong
/// character and every swap of two neighbours.
const ALPHABET: &[u8; 31] = b"023456789ABCDEFGHJKMNPQRSTVWXYZ";
const CODE_BODY: usize = 7;

/// A pseudonymous case code such as `K7Q2-MX9C`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CaseCode(String);

fn symbol_value(c: u8) -> Option<usize> {
    ALPHABET.iter().position(|&a| a == c)
}

fn check_symbol(body: &[usize]) -> u8 {
    let sum: usize = body.iter().enumerate().map(|(i, v)| (i + 1) * v).sum();
    ALPHABET[(31 - sum % 31) % 31]
}

impl CaseCode {
    /// A fresh random code (31^7 ≈ 2.7 × 10^10 possibilities) from the vault's CSPRNG.
    pub fn generate(tx: &Tx<'_>) -> CaseCode {
        let mut body = [0usize; CODE_BODY];
        let mut bytes = [0u8; 1];
        for slot in body.iter_mut() {
            // Rejection sampling keeps the symbols uniform: 248 = 8 × 31.
            loop {
                tx.fill_random(&mut bytes);
                if bytes[0] < 248 {
                    *slot = (bytes[0] % 31) as usize;
                    break;
                }
            }
        }
        Self::from_body(&body)
    }

    fn from_body(body: &[usize; CODE_BODY]) -> CaseCode {
        let mut s = String::with_capacity(9);
        for (i, v) in body.iter().enumerate() {
            if i == 4 {
                s.push('-');
            }
            s.push(ALPHABET[*v] as char);
        }
        s.push(check_symbol(body) as char);
        CaseCode(s)
    }

    /// Parses a code as typed: case-insensitive, spaces and dashes ignored, `O` read as `0`.
    /// A wrong character or two swapped neighbours fail the check character.
    pub fn parse(input: &str) -> Result<CaseCode, CaseError> {
        let cleaned: Vec<u8> = input
            .bytes()
            .filter(|b| !matches!(b, b'-' | b' '))
            .map(|b| match b.to_ascii_uppercase() {
                b'O' => b'0',
                other => other,
            })
            .collect();
        if cleaned.len() != CODE_BODY + 1 {
            return Err(CaseError::BadCode("a case code has 8 characters"));
        }
        let mut body = [0usize; CODE_BODY];
        for (slot, &c) in body.iter_mut().zip(&cleaned) {
            *slot = symbol_value(c).ok_or(CaseError::BadCode("unexpected character"))?;
        }
        let check = cleaned[CODE_BODY];
        if symbol_value(check).is_none() {
            return Err(CaseError::BadCode("unexpected character"));
        }
        if check_symbol(&body) != check {
            return Err(CaseError::BadCode("check character does not match (typo?)"));
        }
        Ok(Self::from_body(&body))
    }

    /// The canonical form, `XXXX-XXXX`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for CaseCode {
    type Error = CaseError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        CaseCode::parse(&value)
    }
}

impl From<CaseCode> for String {
    fn from(value: CaseCode) -> Self {
        value.0
    }
}

impl fmt::Display for CaseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CaseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CaseCode({})", self.0)
    }
}

/// A mutable field: its current value, and — while two devices' edits clash — the other values.
///
/// A field is a *multi-value register*: every write is a **dot** (its HLC, which names the writing
/// device's clock), and the field remembers in `seen` the newest dot of each device that its values
/// have superseded or include (a per-field version vector). Merging two replicas keeps a value
/// unless the other replica has seen its dot and no longer holds it; the rest are either the same
/// write or **concurrent**: neither device had seen the other's value when it wrote. Concurrent
/// values are all kept: the greatest HLC (ms, counter, device clock id) is `value`/`hlc` (the
/// deterministic winner every replica shows), the others wait in `others` as a *clash* until a
/// local write (see `sync::resolve_clash`) supersedes them all. A cleared field is a tombstone
/// (`cleared`, empty value): an ordinary write that merges like any other, so a clear and a
/// concurrent edit clash instead of one silently erasing the other. `Debug` redacts values.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The winning value (survivor data); empty when `cleared`.
    pub value: String,
    /// When the winning value was written, for merging.
    pub hlc: Hlc,
    /// The winning write cleared the field (a tombstone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleared: bool,
    /// Concurrent values not superseded yet (a clash), greatest HLC first; empty normally.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub others: Vec<FieldValue>,
    /// Per device clock, the newest write of this field these values include or superseded,
    /// sorted by clock id. Empty in records written before merging learnt about concurrency: the
    /// values' own HLCs stand in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<Hlc>,
}

/// One of several concurrent values of a field (see [`Field`]). `Debug` redacts the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldValue {
    /// The value (survivor data); empty when `cleared`.
    pub value: String,
    /// When it was written; its node is the writing device's clock id.
    pub hlc: Hlc,
    /// This write cleared the field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cleared: bool,
}

impl fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FieldValue(<redacted>, {:?}, cleared: {})",
            self.hlc, self.cleared
        )
    }
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Field(<redacted>, {:?}, cleared: {}, others: {:?})",
            self.hlc, self.cleared, self.others
        )
    }
}

impl Field {
    /// A fresh write of `value` (or a clear) at `hlc` that supersedes everything `previous` held.
    pub fn written(previous: Option<&Field>, value: &str, cleared: bool, hlc: Hlc) -> Field {
        let mut seen = previous.map(Field::context).unwrap_or_default();
        add_dot(&mut seen, hlc);
        Field {
            value: if cleared {
                String::new()
            } else {
                value.to_string()
            },
            hlc,
            cleared,
            others: Vec::new(),
            seen,
        }
    }

    /// The current value, `None` when the field was cleared.
    pub fn current(&self) -> Option<&str> {
        (!self.cleared).then_some(self.value.as_str())
    }

    /// Whether concurrent values are waiting to be resolved.
    pub fn is_clash(&self) -> bool {
        !self.others.is_empty()
    }

    /// Every value held: the winner first, then the other concurrent ones.
    pub fn values(&self) -> Vec<FieldValue> {
        let mut out = vec![FieldValue {
            value: self.value.clone(),
            hlc: self.hlc,
            cleared: self.cleared,
        }];
        out.extend(self.others.iter().cloned());
        out
    }

    /// The causal context: `seen` joined with the dots of the values held.
    fn context(&self) -> Vec<Hlc> {
        let mut ctx = self.seen.clone();
        for v in self.values() {
            add_dot(&mut ctx, v.hlc);
        }
        ctx
    }

    fn from_values(mut values: Vec<FieldValue>, seen: Vec<Hlc>) -> Option<Field> {
        values.sort_by(|a, b| {
            b.hlc
                .cmp(&a.hlc)
                .then_with(|| (b.cleared, &b.value).cmp(&(a.cleared, &a.value)))
        });
        values.dedup_by(|a, b| a.hlc == b.hlc);
        let mut iter = values.into_iter();
        let first = iter.next()?;
        Some(Field {
            value: first.value,
            hlc: first.hlc,
            cleared: first.cleared,
            others: iter.collect(),
            seen,
        })
    }
}

/// Adds a dot to a context (one entry per device clock, the newest kept, sorted by clock id).
fn add_dot(ctx: &mut Vec<Hlc>, dot: Hlc) {
    match ctx.binary_search_by(|h| h.node.cmp(&dot.node)) {
        Ok(i) => {
            if ctx[i] < dot {
                ctx[i] = dot;
            }
        }
        Err(i) => ctx.insert(i, dot),
    }
}

/// Whether a context has seen a dot (the same device's clock reached it).
fn covers(ctx: &[Hlc], dot: Hlc) -> bool {
    ctx.binary_search_by(|h| h.node.cmp(&dot.node))
        .is_ok_and(|i| ctx[i] >= dot)
}

/// Merges one field: the state-based multi-value register join (see [`Field`]). Commutative,
/// associative and idempotent.
pub fn merge_field(ours: &Field, theirs: &Field) -> Field {
    let (ours_ctx, theirs_ctx) = (ours.context(), theirs.context());
    let (ours_vals, theirs_vals) = (ours.values(), theirs.values());
    let mut kept: Vec<FieldValue> = Vec::new();
    for v in &ours_vals {
        if theirs_vals.iter().any(|t| t.hlc == v.hlc) || !covers(&theirs_ctx, v.hlc) {
            kept.push(v.clone());
        }
    }
    for v in &theirs_vals {
        if ours_vals.iter().any(|o| o.hlc == v.hlc) || !covers(&ours_ctx, v.hlc) {
            kept.push(v.clone());
        }
    }
    if kept.is_empty() {
        // Only inconsistent (forged) states get here: each side claims to have superseded the
        // other's values. Keep every value rather than lose one.
        kept = ours_vals.into_iter().chain(theirs_vals).collect();
    }
    let mut seen = ours_ctx;
    for dot in theirs_ctx {
        add_dot(&mut seen, dot);
    }
    match Field::from_values(kept, seen) {
        Some(f) => f,
        None => ours.clone(),
    }
}

/// A case as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Case {
    /// Record id (also the id of its identity record).
    #[serde(skip, default = "unset_id")]
    pub id: RecordId,
    /// The pseudonymous code.
    pub code: CaseCode,
    /// When it was created.
    pub created: Hlc,
    /// Narrative/case-management fields (status, district, notes …), merged per field.
    pub fields: BTreeMap<String, Field>,
    /// Set when consent was withdrawn: HQ and devices must act on it (stop sharing, purge).
    pub withdrawal_pending: bool,
}

fn unset_id() -> RecordId {
    RecordId::from_bytes([0; 16])
}

/// Identity fields of a case (name, phone …), kept in their own record.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CaseIdentity {
    /// Fields, merged per field.
    pub fields: BTreeMap<String, Field>,
}

/// Merges `remote` fields into `local` field by field ([`merge_field`]); returns how many fields
/// entered a clash that they were not in before. Commutative, associative and idempotent, so
/// devices converge whatever the delivery order, duplicates included.
pub fn merge_fields(local: &mut BTreeMap<String, Field>, remote: &BTreeMap<String, Field>) -> u64 {
    let mut new_clashes = 0;
    for (name, theirs) in remote {
        let merged = match local.get(name) {
            Some(ours) => {
                let merged = merge_field(ours, theirs);
                if merged == *ours {
                    continue;
                }
                if merged.is_clash() && !ours.is_clash() {
                    new_clashes += 1;
                }
                merged
            }
            None => {
                if theirs.is_clash() {
                    new_clashes += 1;
                }
                theirs.clone()
            }
        };
        local.insert(name.clone(), merged);
    }
    new_clashes
}

fn check_field(name: &str, value: &str) -> Result<(), CaseError> {
    let name_ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !name_ok {
        return Err(CaseError::BadField {
            field: "<invalid>".into(),
            reason: "field names are 1-64 characters of a-z, 0-9, _",
        });
    }
    if value.chars().count() > MAX_FIELD_CHARS {
        return Err(CaseError::BadField {
            field: name.into(),
            reason: "value longer than 4096 characters",
        });
    }
    Ok(())
}

/// Creates a new case with a fresh, unused code.
pub fn create_case(vault: &Vault) -> Result<Case, CaseError> {
    vault.store()?.write(create_case_in)
}

/// [`create_case`] inside the caller's transaction.
pub fn create_case_in(tx: &mut Tx<'_>) -> Result<Case, CaseError> {
    let code = loop {
        let code = CaseCode::generate(tx);
        if tx
            .find(CASES, CODE_INDEX, code.as_str().as_bytes())?
            .is_empty()
        {
            break code;
        }
    };
    let case = Case {
        id: unset_id(),
        code,
        created: Hlc::next(tx)?,
        fields: BTreeMap::new(),
        withdrawal_pending: false,
    };
    let id = tx.insert_json(CASES, &case)?;
    tx.set_index(CASES, CODE_INDEX, id, case.code.as_str().as_bytes())?;
    audit::append(tx, AuditKind::CaseCreate, Some(id))?;
    outbox::enqueue(tx, EntryKind::Case, CASES, id)?;
    Ok(Case { id, ..case })
}

/// Reads a case inside the caller's transaction, with its record version (no audit entry).
pub fn load(tx: &mut Tx<'_>, id: RecordId) -> Result<(Case, u64), CaseError> {
    let (mut case, version): (Case, u64) = tx.get_json(CASES, id)?.ok_or(CaseError::NotFound)?;
    case.id = id;
    Ok((case, version))
}

/// Writes a case back at `version` (optimistic concurrency), inside the caller's transaction.
pub fn save(tx: &mut Tx<'_>, case: &Case, version: u64) -> Result<u64, CaseError> {
    Ok(tx.update_json(CASES, case.id, version, case)?)
}

/// Opens a case for viewing (recorded in the audit log).
pub fn get_case(vault: &Vault, id: RecordId) -> Result<Case, CaseError> {
    vault.store()?.write(|tx| get_case_in(tx, id))
}

/// [`get_case`] inside the caller's transaction.
pub fn get_case_in(tx: &mut Tx<'_>, id: RecordId) -> Result<Case, CaseError> {
    let (case, _) = load(tx, id)?;
    audit::append(tx, AuditKind::CaseView, Some(id))?;
    Ok(case)
}

/// Finds a case by its code (through the blind index; accepts the code as typed).
pub fn find_by_code(vault: &Vault, code: &str) -> Result<Option<Case>, CaseError> {
    let code = CaseCode::parse(code)?;
    let store = vault.store()?;
    let ids = store.read(|tx| tx.find(CASES, CODE_INDEX, code.as_str().as_bytes()))?;
    match ids.first() {
        Some(id) => get_case(vault, *id).map(Some),
        None => Ok(None),
    }
}

/// Every case (code and creation time, for a list screen), newest first.
pub fn list_cases(vault: &Vault) -> Result<Vec<Case>, CaseError> {
    let store = vault.store()?;
    let mut cases = store.read(|tx| {
        let mut out = Vec::new();
        for id in tx.list(CASES)? {
            out.push(load(tx, id)?.0);
        }
        Ok::<_, CaseError>(out)
    })?;
    cases.sort_by_key(|c| std::cmp::Reverse(c.created));
    Ok(cases)
}

/// Sets a narrative field of a case, stamping it with a new HLC. The write supersedes every value
/// the field holds here, a clash included (see [`Field`]).
pub fn set_field(vault: &Vault, id: RecordId, name: &str, value: &str) -> Result<Case, CaseError> {
    vault.store()?.write(|tx| set_field_in(tx, id, name, value))
}

/// [`set_field`] inside the caller's transaction.
pub fn set_field_in(
    tx: &mut Tx<'_>,
    id: RecordId,
    name: &str,
    value: &str,
) -> Result<Case, CaseError> {
    check_field(name, value)?;
    write_case_field(tx, id, name, value, false)
}

/// Clears a narrative field: writes a tombstone (see [`Field`]) that travels and merges like any
/// edit, so a clear on one device and a concurrent edit on another clash rather than one silently
/// erasing the other. Clearing a field this device never held, or one already cleared and not in
/// a clash, changes nothing.
pub fn clear_field(vault: &Vault, id: RecordId, name: &str) -> Result<Case, CaseError> {
    vault.store()?.write(|tx| clear_field_in(tx, id, name))
}

/// [`clear_field`] inside the caller's transaction.
pub fn clear_field_in(tx: &mut Tx<'_>, id: RecordId, name: &str) -> Result<Case, CaseError> {
    check_field(name, "")?;
    let (case, _) = load(tx, id)?;
    match case.fields.get(name) {
        Some(f) if !f.cleared || f.is_clash() => write_case_field(tx, id, name, "", true),
        _ => Ok(case),
    }
}

fn write_case_field(
    tx: &mut Tx<'_>,
    id: RecordId,
    name: &str,
    value: &str,
    cleared: bool,
) -> Result<Case, CaseError> {
    let (mut case, version) = load(tx, id)?;
    let hlc = Hlc::next(tx)?;
    let field = Field::written(case.fields.get(name), value, cleared, hlc);
    case.fields.insert(name.to_string(), field);
    save(tx, &case, version)?;
    outbox::enqueue(tx, EntryKind::Case, CASES, id)?;
    Ok(case)
}

/// Sets an identity field of a case (kept apart from the narrative).
pub fn set_identity_field(
    vault: &Vault,
    id: RecordId,
    name: &str,
    value: &str,
) -> Result<CaseIdentity, CaseError> {
    vault
        .store()?
        .write(|tx| set_identity_field_in(tx, id, name, value))
}

/// [`set_identity_field`] inside the caller's transaction.
pub fn set_identity_field_in(
    tx: &mut Tx<'_>,
    id: RecordId,
    name: &str,
    value: &str,
) -> Result<CaseIdentity, CaseError> {
    check_field(name, value)?;
    write_identity_field(tx, id, name, value, false)
}

/// Clears an identity field with a tombstone (the rule of [`clear_field`]).
pub fn clear_identity_field(
    vault: &Vault,
    id: RecordId,
    name: &str,
) -> Result<CaseIdentity, CaseError> {
    vault
        .store()?
        .write(|tx| clear_identity_field_in(tx, id, name))
}

/// [`clear_identity_field`] inside the caller's transaction.
pub fn clear_identity_field_in(
    tx: &mut Tx<'_>,
    id: RecordId,
    name: &str,
) -> Result<CaseIdentity, CaseError> {
    check_field(name, "")?;
    load(tx, id)?;
    let identity = tx
        .get_json::<CaseIdentity>(IDENTITIES, id)?
        .map(|(identity, _)| identity)
        .unwrap_or_default();
    match identity.fields.get(name) {
        Some(f) if !f.cleared || f.is_clash() => write_identity_field(tx, id, name, "", true),
        _ => Ok(identity),
    }
}

fn write_identity_field(
    tx: &mut Tx<'_>,
    id: RecordId,
    name: &str,
    value: &str,
    cleared: bool,
) -> Result<CaseIdentity, CaseError> {
    load(tx, id)?;
    let hlc = Hlc::next(tx)?;
    let identity = match tx.get_json::<CaseIdentity>(IDENTITIES, id)? {
        Some((mut identity, version)) => {
            let field = Field::written(identity.fields.get(name), value, cleared, hlc);
            identity.fields.insert(name.to_string(), field);
            tx.update_json(IDENTITIES, id, version, &identity)?;
            identity
        }
        None => {
            let mut identity = CaseIdentity::default();
            let field = Field::written(None, value, cleared, hlc);
            identity.fields.insert(name.to_string(), field);
            tx.insert_json_with_id(IDENTITIES, id, &identity)?;
            identity
        }
    };
    outbox::enqueue(tx, EntryKind::Identity, IDENTITIES, id)?;
    Ok(identity)
}

/// The identity fields of a case (empty if none were recorded).
pub fn get_identity(vault: &Vault, id: RecordId) -> Result<CaseIdentity, CaseError> {
    let store = vault.store()?;
    store.read(|tx| {
        load(tx, id)?;
        Ok(tx
            .get_json::<CaseIdentity>(IDENTITIES, id)?
            .map(|(identity, _)| identity)
            .unwrap_or_default())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::hlc::NodeId;

    fn body_of(code: &CaseCode) -> Vec<u8> {
        code.as_str().bytes().filter(|b| *b != b'-').collect()
    }

    #[test]
    fn codes_round_trip_and_catch_typos() {
        let bodies = [[0, 1, 2, 3, 4, 5, 6], [30, 29, 28, 0, 0, 7, 11], [5; 7]];
        for body in bodies {
            let code = CaseCode::from_body(&body);
            assert_eq!(code.as_str().len(), 9);
            assert_eq!(CaseCode::parse(code.as_str()).unwrap(), code);
            assert_eq!(
                CaseCode::parse(&code.as_str().to_lowercase().replace('-', " ")).unwrap(),
                code
            );
            let chars = body_of(&code);
            // Every single substitution is caught.
            for i in 0..chars.len() {
                for &c in ALPHABET.iter() {
                    if c == chars[i] {
                        continue;
                    }
                    let mut typo = chars.clone();
                    typo[i] = c;
                    let typo = String::from_utf8(typo).unwrap();
                    assert!(CaseCode::parse(&typo).is_err(), "{typo} accepted");
                }
            }
            // Every swap of two different neighbours is caught.
            for i in 0..chars.len() - 1 {
                if chars[i] == chars[i + 1] {
                    continue;
                }
                let mut typo = chars.clone();
                typo.swap(i, i + 1);
                let typo = String::from_utf8(typo).unwrap();
                assert!(CaseCode::parse(&typo).is_err(), "{typo} accepted");
            }
        }
        for bad in ["", "ABC", "K7Q2-MX9C-XX", "K7Q2-MXIC", "K7Q2-MX9!"] {
            assert!(CaseCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn letter_o_is_read_as_zero() {
        let code = CaseCode::from_body(&[0, 0, 2, 3, 4, 5, 6]);
        let typed = code.as_str().replace('0', "o");
        assert_eq!(CaseCode::parse(&typed).unwrap(), code);
    }

    fn field(value: &str, ms: u64, counter: u32, node: u8) -> Field {
        let hlc = Hlc {
            ms,
            counter,
            node: NodeId([node; 8]),
        };
        Field::written(None, value, false, hlc)
    }

    #[test]
    fn merge_picks_the_same_winner_everywhere_and_keeps_concurrent_values_as_a_clash() {
        let a: BTreeMap<String, Field> = [
            ("status".to_string(), field("open", 10, 0, 1)),
            ("district".to_string(), field("A", 20, 0, 1)),
        ]
        .into();
        let b: BTreeMap<String, Field> = [
            ("status".to_string(), field("referred", 15, 0, 2)),
            ("district".to_string(), field("B", 20, 0, 2)), // same ms: node id breaks the tie
            ("notes".to_string(), field("n", 5, 0, 2)),
        ]
        .into();
        let mut ab = a.clone();
        assert_eq!(merge_fields(&mut ab, &b), 2);
        let mut ba = b.clone();
        assert_eq!(merge_fields(&mut ba, &a), 2);
        assert_eq!(ab, ba);
        assert_eq!(ab["status"].value, "referred");
        assert_eq!(ab["district"].value, "B");
        assert_eq!(ab["notes"].value, "n");
        // Neither side had seen the other's value: both are kept, the loser in `others`.
        assert_eq!(ab["status"].others.len(), 1);
        assert_eq!(ab["status"].others[0].value, "open");
        assert_eq!(ab["district"].others[0].value, "A");
        assert!(!ab["notes"].is_clash());
        let mut again = ab.clone();
        assert_eq!(merge_fields(&mut again, &b), 0);
        assert_eq!(again, ab);
    }

    #[test]
    fn an_edit_made_after_seeing_the_other_value_supersedes_it_without_a_clash() {
        let first = field("open", 10, 0, 1);
        // Device 2 saw "open" and wrote over it — even with an older wall clock.
        let second = Field::written(Some(&first), "closed", false, hlc(5, 0, 2));
        assert_eq!(merge_field(&first, &second), second);
        assert_eq!(merge_field(&second, &first), second);
        // A clash is resolved by any write made after seeing all its values.
        let concurrent = field("referred", 12, 0, 3);
        let clash = merge_field(&second, &concurrent);
        assert!(clash.is_clash());
        assert_eq!(clash.value, "referred");
        let resolved = Field::written(Some(&clash), "closed", false, hlc(13, 0, 1));
        assert_eq!(merge_field(&clash, &resolved), resolved);
        assert_eq!(merge_field(&concurrent, &resolved), resolved);
        assert_eq!(merge_field(&resolved, &second), resolved);
    }

    #[test]
    fn a_clear_is_a_tombstone_that_merges_like_an_edit() {
        let first = field("+998 90 123 45 67", 10, 0, 1);
        let cleared = Field::written(Some(&first), "ignored", true, hlc(11, 0, 2));
        assert!(cleared.cleared);
        assert_eq!(cleared.current(), None);
        assert_eq!(merge_field(&first, &cleared), cleared);
        // A concurrent edit and clear clash, whatever their HLCs: the edit is not lost.
        let edit = Field::written(Some(&first), "+998 90 000 00 00", false, hlc(12, 0, 1));
        let merged = merge_field(&cleared, &edit);
        assert_eq!(merged, merge_field(&edit, &cleared));
        assert_eq!(merged.current(), Some("+998 90 000 00 00"));
        assert!(merged.others[0].cleared);
    }

    fn hlc(ms: u64, counter: u32, node: u8) -> Hlc {
        Hlc {
            ms,
            counter,
            node: NodeId([node; 8]),
        }
    }

    #[test]
    fn field_debug_is_redacted() {
        let f = field("Гульнара, +998 90 123 45 67", 1, 0, 1);
        assert!(!format!("{f:?}").contains("Гульнара"));
        let clash = merge_field(&f, &field("Madina", 2, 0, 2));
        assert!(clash.is_clash());
        let text = format!("{clash:?}");
        assert!(
            !text.contains("Гульнара") && !text.contains("Madina"),
            "{text}"
        );
    }
}
