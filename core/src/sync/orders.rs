//! Organisation orders to devices (docs/SYNC.md, "Orders"): signed by the organisation key
//! ([`amanat_protocol::OrgOrder`]), carried by the relay like an envelope to the devices an HQ
//! installation addresses, obeyed by a device only when the signature verifies under the
//! `org.pub` it enrolled with. Anything else — an unsigned order, another organisation's, a kind
//! this device does not know, a template that does not validate — is quarantined with a reason
//! and changes nothing.
//!
//! **Payload** — `base64("AMANAT-ORDER-V1\n" ‖ JSON(OrgOrder))`, in clear for what carries the
//! organisation's own text (a template, a retention period): the signature, not secrecy, is what
//! a device needs. An `assign` order names a case and carries its records, so it is **sealed**:
//! the same bytes age-encrypted to the one device it is for ([`sealed_payload`]); one arriving in
//! clear is refused (`unsealed_assignment`).
//!
//! **Kinds**
//! * `template`: a template JSON source. Installed when it validates; a template already held
//!   under the same id and version with other content is refused (`conflicting_template`), so
//!   interviews in progress never see their form change — corrections come as a new version.
//! * `retention`: `{"days": N}`, how long acknowledged records stay on the device
//!   (`sync::retention`); the newest by issue time is in force.
//! * `recipients` ([`RecipientsBody`]): a group's key was rotated (`amanat org rotate-group`):
//!   from now on records and attachments go to the new recipient. The device keeps the history
//!   of every recipient a group had (an HQ installation accepts an identity only if it is one of
//!   them); only a higher `serial` than the one adopted counts.
//! * `assign` ([`Assignment`]): the devices that share a case from now on (HQ referred it to a
//!   colleague, or took it back). A device named in it shares the case with the others
//!   (`share_case`: envelopes both ways, end-to-end encrypted) and stops sharing it with any
//!   device not named; a device not named stops sharing it with anyone. The device joining gets
//!   the case's records inside the order, each still signed by its author and verified here like
//!   a pulled envelope. Per case, only an assignment with a higher `serial` than the one obeyed
//!   counts: a relay replaying an old referral cannot undo its revocation.

use super::*;
use crate::names::collections::ORG_CONFIG;
use amanat_protocol::{OrgOrder, PulledEnvelope};

/// First bytes of an order envelope's payload (after base64).
pub const ORDER_PREFIX: &[u8] = b"AMANAT-ORDER-V1\n";

/// Order kind: install a form template.
pub const KIND_TEMPLATE: &str = "template";
/// Order kind: how long a device keeps records HQ acknowledged, `{"days": N}` (1–3650);
/// `sync::retention`.
pub const KIND_RETENTION: &str = "retention";

/// Order kind: the organisation group recipients in force after a key rotation
/// ([`RecipientsBody`]).
pub const KIND_RECIPIENTS: &str = "recipients";

/// Body of a `recipients` order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientsBody {
    /// Increases with every rotation (the organisation's clock in ms): an older order replayed
    /// later is ignored.
    pub serial: u64,
    /// Group → age recipient in force (the groups named; others keep theirs).
    pub groups: BTreeMap<String, String>,
}

/// Every recipient each group has had after `org.pub`'s first, and the serial last adopted.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientHistory {
    serial: u64,
    groups: BTreeMap<String, Vec<String>>,
    /// The order adopted last (public: group recipients): what an HQ installation hands on to
    /// devices that have not had it ([`super::hq::deliver_standing`]).
    #[serde(default)]
    order: Option<OrgOrder>,
}

/// The `recipients` order adopted last, if any.
pub(crate) fn adopted_recipients_in(tx: &mut Tx<'_>) -> Result<Option<OrgOrder>, StoreError> {
    Ok(tx
        .get_json::<RecipientHistory>(ORG_CONFIG, HISTORY_ID)?
        .and_then(|(h, _)| h.order))
}

const HISTORY_ID: RecordId = RecordId::from_bytes([0x0D; 16]);

/// Every recipient `group` has had: `org.pub`'s, then each rotation's, oldest first.
pub(crate) fn known_recipients_in(
    tx: &mut Tx<'_>,
    org: &OrgPublic,
    group: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out: Vec<String> = org.groups.get(group).cloned().into_iter().collect();
    if let Some((h, _)) = tx.get_json::<RecipientHistory>(ORG_CONFIG, HISTORY_ID)? {
        out.extend(h.groups.get(group).cloned().unwrap_or_default());
    }
    Ok(out)
}

/// Adopts a verified `recipients` order: `Ok(Err(code))` when its body is invalid; a serial not
/// above the one adopted changes nothing.
pub(crate) fn adopt_recipients_in(
    tx: &mut Tx<'_>,
    order: &OrgOrder,
) -> Result<Result<(), &'static str>, SyncError> {
    const INVALID: &str = "invalid_recipients";
    let Ok(body) = serde_json::from_str::<RecipientsBody>(&order.body) else {
        return Ok(Err(INVALID));
    };
    let valid = !body.groups.is_empty()
        && body.groups.iter().all(|(g, r)| {
            amanat_protocol::RECIPIENT_GROUPS.contains(&g.as_str())
                && age::x25519::Recipient::from_str(r).is_ok()
        });
    if !valid {
        return Ok(Err(INVALID));
    }
    let held: Option<(RecipientHistory, u64)> = tx.get_json(ORG_CONFIG, HISTORY_ID)?;
    let mut history = held.as_ref().map(|(h, _)| h.clone()).unwrap_or_default();
    if history.serial >= body.serial {
        return Ok(Ok(())); // stale, or adopted already
    }
    let mut current = attachments::org_recipients_in(tx)?;
    for (g, r) in &body.groups {
        if current.get(g) != Some(r) {
            let known = history.groups.entry(g.clone()).or_default();
            if !known.contains(r) {
                known.push(r.clone());
            }
        }
        current.insert(g.clone(), r.clone());
    }
    history.serial = body.serial;
    history.order = Some(order.clone());
    attachments::set_org_recipients_in(tx, &current)?;
    match held {
        Some((_, version)) => {
            tx.update_json(ORG_CONFIG, HISTORY_ID, version, &history)?;
        }
        None => tx.insert_json_with_id(ORG_CONFIG, HISTORY_ID, &history)?,
    }
    Ok(Ok(()))
}

/// Order kind: the devices that share a case ([`Assignment`]); sealed to each device.
pub const KIND_ASSIGN: &str = "assign";

/// A device an [`Assignment`] names, with the keys HQ holds for it (from the device's own signed
/// `device` profile).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignedDevice {
    /// Device id (derived from `signing_public_key`).
    pub device_id: String,
    /// Its Ed25519 public key, hex.
    pub signing_public_key: String,
    /// Its age recipient.
    pub age_recipient: String,
}

/// Body of an `assign` order: from now on exactly `devices` share case `case_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// The case (hex id).
    pub case_id: String,
    /// Increases with every assignment of this case (HQ uses its clock in ms, made strictly
    /// increasing): a device ignores one not above what it obeyed.
    pub serial: u64,
    /// The devices sharing the case after this order.
    pub devices: Vec<AssignedDevice>,
    /// For a device joining the case: its records as HQ holds them (case, identity, consent
    /// versions, interviews), each signed by its author, in the order HQ received them. Empty in
    /// the copies for devices that hold the case already.
    pub records: Vec<SignedRecord>,
}

/// The payload of an envelope carrying `order` sealed to `recipient` alone.
pub fn sealed_payload(
    order: &OrgOrder,
    recipient: &age::x25519::Recipient,
) -> Result<String, SyncError> {
    let mut bytes = ORDER_PREFIX.to_vec();
    bytes.extend_from_slice(&serde_json::to_vec(order).map_err(|_| SyncError::Envelope)?);
    let sealed = envelope::seal_bytes(
        crate::secret::SecretBytes::new(bytes),
        std::slice::from_ref(recipient),
    )
    .map_err(|_| SyncError::Envelope)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(sealed))
}

/// The days of a `retention` order's body, if it is one of the documented shape.
pub fn retention_days(body: &str) -> Option<u64> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        days: u64,
    }
    serde_json::from_str::<Body>(body)
        .ok()
        .map(|b| b.days)
        .filter(|d| (1..=3650).contains(d))
}

/// The payload (base64) of an envelope carrying `order`.
pub fn payload(order: &OrgOrder) -> Result<String, SyncError> {
    let mut bytes = ORDER_PREFIX.to_vec();
    bytes.extend_from_slice(&serde_json::to_vec(order).map_err(|_| SyncError::Envelope)?);
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// What a device keeps of an order it obeyed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obeyed {
    /// The envelope it came in.
    pub envelope_id: String,
    /// The order, signature included.
    pub order: OrgOrder,
}

/// If `payload` (the envelope's bytes, or their decryption when `sealed`) is an order, obeys or
/// refuses it inside the page's transaction: `None` when it is no order (an ordinary envelope),
/// `Some(Ok(()))` when obeyed (or obeyed before), `Some(Err(code))` to quarantine.
pub(super) fn receive(
    tx: &mut Tx<'_>,
    state: &State,
    id: RecordId,
    env: &PulledEnvelope,
    payload: &[u8],
    sealed: bool,
) -> Result<Option<Result<(), &'static str>>, SyncError> {
    let Some(json) = payload.strip_prefix(ORDER_PREFIX) else {
        return Ok(None);
    };
    if tx.get(SYNC_ORDERS, id)?.is_some() {
        return Ok(Some(Ok(()))); // delivered again
    }
    let Ok(order) = serde_json::from_slice::<OrgOrder>(json) else {
        return Ok(Some(Err("malformed_order")));
    };
    if order.verify(&state.org).is_err() {
        return Ok(Some(Err("bad_order_signature")));
    }
    if order.kind == KIND_ASSIGN {
        if !sealed {
            return Ok(Some(Err("unsealed_assignment")));
        }
        return assign(tx, state, env, order).map(Some);
    }
    let outcome = match order.kind.as_str() {
        KIND_TEMPLATE => install_template(tx, &order.body)?,
        KIND_RETENTION => match retention_days(&order.body) {
            Some(_) => Ok(()),
            None => Err("invalid_retention"),
        },
        KIND_RECIPIENTS => adopt_recipients_in(tx, &order)?,
        _ => Err("unknown_order"),
    };
    if outcome.is_ok() {
        tx.insert_json_with_id(
            SYNC_ORDERS,
            id,
            &Obeyed {
                envelope_id: env.id.clone(),
                order,
            },
        )?;
    }
    Ok(Some(outcome))
}

/// Id under which the assignment of `case_id` obeyed last is kept (one per case, so the serial
/// comparison sees it).
fn assignment_id(case_id: &str) -> RecordId {
    let d = ring::digest::digest(
        &ring::digest::SHA256,
        format!("{KIND_ASSIGN}\0{case_id}").as_bytes(),
    );
    let mut id = [0u8; 16];
    id.copy_from_slice(&d.as_ref()[..16]);
    RecordId::from_bytes(id)
}

/// The case a record belongs to (hex id), for the kinds an assignment may carry.
fn case_of(record: &SignedRecord) -> Option<String> {
    match EntryKind::parse(&record.kind)? {
        EntryKind::Case | EntryKind::Identity => Some(record.record_id.clone()),
        EntryKind::Consent | EntryKind::Interview => {
            serde_json::from_str::<CaseRef>(&record.content)
                .ok()
                .map(|r| r.case_id)
        }
        _ => None,
    }
}

/// Obeys a verified `assign` order: checks everything first (a refused order changes nothing),
/// then sets the case's team and applies the records it carries.
fn assign(
    tx: &mut Tx<'_>,
    state: &State,
    env: &PulledEnvelope,
    order: OrgOrder,
) -> Result<Result<(), &'static str>, SyncError> {
    const INVALID: &str = "invalid_assignment";
    let Ok(body) = serde_json::from_str::<Assignment>(&order.body) else {
        return Ok(Err(INVALID));
    };
    let Some(case_id) = RecordId::parse(&body.case_id) else {
        return Ok(Err(INVALID));
    };
    // Every named device: a key its id derives from, a recipient that parses.
    let mut keys = Vec::new();
    for d in &body.devices {
        let key = amanat_protocol::from_hex(&d.signing_public_key).filter(|k| k.len() == 32);
        match key {
            Some(k)
                if amanat_protocol::device_id(&k) == d.device_id
                    && age::x25519::Recipient::from_str(&d.age_recipient).is_ok() =>
            {
                keys.push((d, k))
            }
            _ => return Ok(Err(INVALID)),
        }
    }
    let named: BTreeSet<String> = body.devices.iter().map(|d| d.device_id.clone()).collect();
    let member = named.contains(&state.device_id);
    // Records only for a member, each signed by a named device, of this case, of a case kind.
    for r in &body.records {
        let ok = member
            && envelope::verify(r).is_ok()
            && named.contains(&r.author)
            && case_of(r).as_deref() == Some(body.case_id.as_str());
        if !ok {
            return Ok(Err(INVALID));
        }
    }
    let held: Option<(Obeyed, u64)> = tx.get_json(SYNC_ORDERS, assignment_id(&body.case_id))?;
    if let Some((before, _)) = &held {
        let serial = serde_json::from_str::<Assignment>(&before.order.body)
            .map(|a| a.serial)
            .unwrap_or(u64::MAX);
        if serial >= body.serial {
            return Ok(Ok(())); // stale (or the same again): obeyed already, or overtaken
        }
    }
    // The team: the named devices but this one; nobody if this device is not named.
    let keep: BTreeSet<String> = if member { named } else { BTreeSet::new() };
    super::state::unshare_case_in(tx, case_id, &keep)?;
    if member {
        let mut joined = false;
        for (d, key) in &keys {
            if d.device_id != state.device_id {
                let before = match RecordId::parse(&d.device_id) {
                    Some(pid) => tx
                        .get_json::<Peer>(SYNC_PEERS, pid)?
                        .is_some_and(|(p, _)| p.cases.contains(&body.case_id)),
                    None => false,
                };
                super::state::share_case_in(tx, case_id, key, &d.age_recipient)?;
                joined |= !before;
            }
        }
        // The consent versions this device sent go again, now to the newcomers too: HQ may not
        // have been able to hand them on (a version that withdraws is sealed only to the groups
        // still allowed), and the newcomer must work under the scopes in force.
        if joined {
            use crate::records::consent::{versions_in, CONSENTS};
            for (id, _) in versions_in(tx, case_id)? {
                let hex = id.to_string();
                if tx
                    .get(SYNC_CHAIN, chain_id(EntryKind::Consent, &hex))?
                    .is_some()
                {
                    outbox::enqueue(tx, EntryKind::Consent, CONSENTS, id)?;
                }
            }
        }
    }
    // The records, as if pulled from their authors (chain, rules); what a rule refuses is kept
    // in quarantine under its own envelope id, with the order's sequence number.
    for r in &body.records {
        let Ok(uuid) = uuid::Uuid::parse_str(&r.envelope_id) else {
            continue;
        };
        let applied_id = RecordId::from_bytes(*uuid.as_bytes());
        if r.author == state.device_id || tx.get(SYNC_APPLIED, applied_id)?.is_some() {
            continue;
        }
        let forwarded = PulledEnvelope {
            seq: env.seq,
            id: r.envelope_id.clone(),
            sender: r.author.clone(),
            payload: String::new(),
        };
        match super::pull::receive_record(tx, state, r, &forwarded)? {
            Ok((applied, _clashes)) => {
                tx.insert_json_with_id(SYNC_APPLIED, applied_id, &applied)?
            }
            Err(reason) => {
                let key = super::pull::quarantine_key(&forwarded);
                if tx.get(SYNC_QUARANTINE, key)?.is_none() {
                    tx.insert_json_with_id(
                        SYNC_QUARANTINE,
                        key,
                        &Quarantined {
                            envelope_id: r.envelope_id.clone(),
                            seq: env.seq,
                            sender: r.author.clone(),
                            reason: reason.to_string(),
                            payload: String::new(),
                        },
                    )?;
                }
            }
        }
    }
    // Kept without the records (they are records of this vault now, purged by their own
    // rules): only the team and the serial matter later; the kept copy no longer verifies.
    let mut order = order;
    order.body = serde_json::to_string(&Assignment {
        records: Vec::new(),
        ..body.clone()
    })
    .map_err(|_| SyncError::Envelope)?;
    let obeyed = Obeyed {
        envelope_id: env.id.clone(),
        order,
    };
    match held {
        Some((_, version)) => {
            tx.update_json(SYNC_ORDERS, assignment_id(&body.case_id), version, &obeyed)?;
        }
        None => tx.insert_json_with_id(SYNC_ORDERS, assignment_id(&body.case_id), &obeyed)?,
    }
    Ok(Ok(()))
}

fn install_template(tx: &mut Tx<'_>, json: &str) -> Result<Result<(), &'static str>, SyncError> {
    use crate::records::interviews;
    let Ok(template) = crate::forms::Template::from_json(json) else {
        return Ok(Err("invalid_template"));
    };
    match interviews::template_in(tx, template.id(), template.version()) {
        // Held already (installed or built in): the same is a no-op, another is refused.
        Ok(held) => Ok(if held == template {
            Ok(())
        } else {
            Err("conflicting_template")
        }),
        Err(interviews::InterviewError::UnknownTemplate { .. }) => {
            match interviews::install_template_in(tx, json) {
                Ok(_) => Ok(Ok(())),
                Err(interviews::InterviewError::Store(e)) => Err(e.into()),
                Err(_) => Ok(Err("invalid_template")),
            }
        }
        Err(interviews::InterviewError::Store(e)) => Err(e.into()),
        Err(_) => Ok(Err("invalid_template")),
    }
}

/// Orders this device obeyed, oldest first.
pub fn obeyed(vault: &Vault) -> Result<Vec<Obeyed>, SyncError> {
    let store = vault.store()?;
    let mut out = store.read(|tx| {
        let mut out = Vec::new();
        for id in tx.list(SYNC_ORDERS)? {
            out.push(tx.require_json::<Obeyed>(SYNC_ORDERS, id)?.0);
        }
        Ok::<_, SyncError>(out)
    })?;
    out.sort_by_key(|o| o.order.issued_at);
    Ok(out)
}
