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

/// A mutable field value with the clock of its last change. `Debug` redacts the value.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    /// The value (survivor data).
    pub value: String,
    /// When it was last set, for last-writer-wins merging.
    pub hlc: Hlc,
}

impl fmt::Debug for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Field(<redacted>, {:?})", self.hlc)
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

/// Merges `remote` fields into `local`: for each field the value with the greater HLC wins.
/// Commutative, associative and idempotent, so devices converge whatever the delivery order.
pub fn merge_fields(local: &mut BTreeMap<String, Field>, remote: &BTreeMap<String, Field>) {
    for (name, theirs) in remote {
        match local.get(name) {
            Some(ours) if ours.hlc >= theirs.hlc => {}
            _ => {
                local.insert(name.clone(), theirs.clone());
            }
        }
    }
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

/// Sets a narrative field of a case, stamping it with a new HLC.
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
    let (mut case, version) = load(tx, id)?;
    let hlc = Hlc::next(tx)?;
    case.fields.insert(
        name.to_string(),
        Field {
            value: value.to_string(),
            hlc,
        },
    );
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
    load(tx, id)?;
    let hlc = Hlc::next(tx)?;
    let field = Field {
        value: value.to_string(),
        hlc,
    };
    let identity = match tx.get_json::<CaseIdentity>(IDENTITIES, id)? {
        Some((mut identity, version)) => {
            identity.fields.insert(name.to_string(), field);
            tx.update_json(IDENTITIES, id, version, &identity)?;
            identity
        }
        None => {
            let mut identity = CaseIdentity::default();
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
        Field {
            value: value.into(),
            hlc: Hlc {
                ms,
                counter,
                node: NodeId([node; 8]),
            },
        }
    }

    #[test]
    fn merge_is_last_writer_wins_and_order_independent() {
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
        merge_fields(&mut ab, &b);
        let mut ba = b.clone();
        merge_fields(&mut ba, &a);
        assert_eq!(ab, ba);
        assert_eq!(ab["status"].value, "referred");
        assert_eq!(ab["district"].value, "B");
        assert_eq!(ab["notes"].value, "n");
        let mut again = ab.clone();
        merge_fields(&mut again, &b);
        assert_eq!(again, ab);
    }

    #[test]
    fn field_debug_is_redacted() {
        let f = field("Гульнара, +998 90 123 45 67", 1, 0, 1);
        assert!(!format!("{f:?}").contains("Гульнара"));
    }
}
