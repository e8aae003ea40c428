//! Clashes: concurrent edits of one case or identity field, kept side by side until resolved.
//!
//! Merging (`records::cases::merge_field`) never drops a value written without knowledge of
//! another: when two devices edit the same field and neither had seen the other's value, both stay
//! in the field, every replica shows the same winner (greatest HLC), and the field is a *clash*.
//! [`clashes`] lists them with every value, the device that wrote it and when; [`resolve_clash`]
//! writes the chosen (or a new) value as an ordinary local edit — it supersedes every value the
//! clash held, travels through the outbox like any edit, and so removes the clash on every replica
//! that receives it. Clash values are survivor data: they live inside the sealed case records and
//! `Debug` prints them redacted.

use crate::journal::hlc::{Hlc, NodeId};
use crate::names::collections::{SYNC_PEERS, SYNC_STATE};
use crate::names::labels::CLASH_ID;
use crate::records::cases::{self, Case, CaseError, CaseIdentity, Field, CASES, IDENTITIES};
use crate::store::{RecordId, StoreError, Tx};
use crate::vault::{Vault, VaultError};
use std::collections::BTreeMap;
use std::fmt;

use super::state::{Peer, State, STATE_ID};

/// Which record of a case a clashing field belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClashedRecord {
    /// The case's narrative fields.
    Case,
    /// The case's identity record (names, contacts).
    Identity,
}

/// One of the values of a clash. `Debug` redacts the value.
#[derive(Clone, PartialEq, Eq)]
pub struct ClashValue {
    /// The value written, `None` when that write cleared the field (survivor data).
    pub value: Option<String>,
    /// The device that wrote it: its device id when known (this device, or a team device whose
    /// envelopes carried that clock), else `clock:<hex>` (the writer's HLC clock id).
    pub author: String,
    /// When it was written.
    pub hlc: Hlc,
}

impl fmt::Debug for ClashValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ClashValue(<redacted>, cleared: {}, {}, {:?})",
            self.value.is_none(),
            self.author,
            self.hlc
        )
    }
}

/// A field whose concurrent values wait for a person to choose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clash {
    /// Names this exact clash (the field and the set of values); a sync that changes the values
    /// changes the id, so a stale choice cannot be applied to values the user did not see.
    pub id: String,
    /// The case.
    pub case_id: RecordId,
    /// Narrative or identity field.
    pub record: ClashedRecord,
    /// The field name (a schema name, not data).
    pub field: String,
    /// Every value, the one every replica currently shows (greatest HLC) first. At least two.
    pub values: Vec<ClashValue>,
}

/// How to resolve a clash.
#[derive(Clone, PartialEq, Eq)]
pub enum Choice {
    /// Keep the value at this index of [`Clash::values`].
    Keep(usize),
    /// Write a new value instead (survivor data).
    Value(String),
    /// Clear the field (a tombstone).
    Clear,
}

impl fmt::Debug for Choice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Choice::Keep(i) => write!(f, "Keep({i})"),
            Choice::Value(_) => f.write_str("Value(<redacted>)"),
            Choice::Clear => f.write_str("Clear"),
        }
    }
}

/// Errors of listing and resolving clashes. Never contains values.
#[derive(Debug, thiserror::Error)]
pub enum ClashError {
    /// No clash has that id: resolved already, or a sync changed its values since it was listed.
    #[error("no such clash (resolved already, or changed by a sync since it was listed)")]
    NotFound,
    /// [`Choice::Keep`] named no value of the clash.
    #[error("the choice names no value of the clash")]
    BadChoice,
    /// Writing the chosen value failed (e.g. a new value too long).
    #[error(transparent)]
    Case(#[from] CaseError),
    /// The vault is not usable.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Every clash in the vault, case fields then identity fields, by case id and field name.
pub fn clashes(vault: &Vault) -> Result<Vec<Clash>, ClashError> {
    vault.store()?.read(clashes_in)
}

/// Resolves a clash listed by [`clashes`]: writes the chosen or new value (or a clear) as a local
/// edit, in one transaction with its outbox entry. The edit supersedes every value of the clash,
/// here at once and on every replica once it syncs. A stale id is [`ClashError::NotFound`] and
/// changes nothing.
pub fn resolve_clash(vault: &Vault, clash_id: &str, choice: Choice) -> Result<(), ClashError> {
    vault.store()?.write(|tx| {
        let clash = clashes_in(tx)?
            .into_iter()
            .find(|c| c.id == clash_id)
            .ok_or(ClashError::NotFound)?;
        let value = match choice {
            Choice::Keep(i) => clash
                .values
                .get(i)
                .ok_or(ClashError::BadChoice)?
                .value
                .clone(),
            Choice::Value(v) => Some(v),
            Choice::Clear => None,
        };
        let (id, name) = (clash.case_id, clash.field.as_str());
        match (clash.record, value) {
            (ClashedRecord::Case, Some(v)) => drop(cases::set_field_in(tx, id, name, &v)?),
            (ClashedRecord::Case, None) => drop(cases::clear_field_in(tx, id, name)?),
            (ClashedRecord::Identity, Some(v)) => {
                drop(cases::set_identity_field_in(tx, id, name, &v)?)
            }
            (ClashedRecord::Identity, None) => drop(cases::clear_identity_field_in(tx, id, name)?),
        }
        Ok(())
    })
}

/// Who wrote with which HLC clock: this device and the team devices it has heard from.
struct Authors(BTreeMap<NodeId, String>);

impl Authors {
    fn load(tx: &mut Tx<'_>) -> Result<Self, StoreError> {
        let mut map = BTreeMap::new();
        for id in tx.list(SYNC_PEERS)? {
            let peer: Peer = tx.require_json(SYNC_PEERS, id)?.0;
            for clock in &peer.clocks {
                if let Some(node) = parse_node(clock) {
                    map.insert(node, peer.device_id.clone());
                }
            }
        }
        let own = tx.get_json::<State>(SYNC_STATE, STATE_ID)?;
        if let (Some(node), Some((state, _))) = (Hlc::local_node(tx)?, own) {
            map.insert(node, state.device_id);
        }
        Ok(Authors(map))
    }

    fn name(&self, node: NodeId) -> String {
        match self.0.get(&node) {
            Some(device) => device.clone(),
            None => format!("clock:{}", crate::fsutil::to_hex(&node.0)),
        }
    }
}

fn parse_node(hex: &str) -> Option<NodeId> {
    crate::fsutil::from_hex(hex)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(NodeId)
}

fn clashes_in(tx: &mut Tx<'_>) -> Result<Vec<Clash>, ClashError> {
    let authors = Authors::load(tx)?;
    let mut out = Vec::new();
    for id in tx.list(CASES)? {
        let case: Case = tx.require_json(CASES, id)?.0;
        collect(&mut out, &authors, id, ClashedRecord::Case, &case.fields);
    }
    for id in tx.list(IDENTITIES)? {
        let identity: CaseIdentity = tx.require_json(IDENTITIES, id)?.0;
        collect(
            &mut out,
            &authors,
            id,
            ClashedRecord::Identity,
            &identity.fields,
        );
    }
    Ok(out)
}

fn collect(
    out: &mut Vec<Clash>,
    authors: &Authors,
    case_id: RecordId,
    record: ClashedRecord,
    fields: &BTreeMap<String, Field>,
) {
    for (name, field) in fields.iter().filter(|(_, f)| f.is_clash()) {
        let values: Vec<ClashValue> = field
            .values()
            .into_iter()
            .map(|v| ClashValue {
                value: (!v.cleared).then_some(v.value),
                author: authors.name(v.hlc.node),
                hlc: v.hlc,
            })
            .collect();
        out.push(Clash {
            id: clash_id(case_id, record, name, &values),
            case_id,
            record,
            field: name.clone(),
            values,
        });
    }
}

fn clash_id(
    case_id: RecordId,
    record: ClashedRecord,
    field: &str,
    values: &[ClashValue],
) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(CLASH_ID);
    ctx.update(match record {
        ClashedRecord::Case => b"case\0",
        ClashedRecord::Identity => b"iden\0",
    });
    ctx.update(case_id.as_bytes());
    ctx.update(field.as_bytes());
    ctx.update(b"\0");
    for v in values {
        ctx.update(&v.hlc.ms.to_be_bytes());
        ctx.update(&v.hlc.counter.to_be_bytes());
        ctx.update(&v.hlc.node.0);
    }
    crate::fsutil::to_hex(&ctx.finish().as_ref()[..16])
}
