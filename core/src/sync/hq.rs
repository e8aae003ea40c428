//! The HQ side of receiving: an HQ installation is a vault enrolled with an `hq` code. It runs the
//! same sync as a device ([`super::sync_with`]), and differs in four ways, all decided here:
//!
//! * **Identities**: besides its own age identity it holds the organisation group identities its
//!   operator was given ([`import_group_identity`]), and opens envelopes with any of them. An
//!   operator given only `research` decrypts only what consent shared with research.
//! * **Originals**: every pulled envelope is kept exactly as the relay delivered it (signed and
//!   encrypted) in `hq_originals`, before it is judged, with what became of it
//!   ([`OriginalStatus`]): the evidentiary original stays apart from the working copy.
//! * **Held, not quarantined**: an envelope none of its identities opens is the normal case of
//!   separation of duties; it stays stored, encrypted, and is counted ([`HqSummary::held`]).
//! * **Authors**: HQ receives from every device of the organisation. It accepts an author whose
//!   signature verifies under the key its device id is derived from, that the relay
//!   authenticated as the sender, and pins that key ([`pin_author`]); the chain rule and custody
//!   then hold it to every later envelope. What this does not prove (that the key was enrolled
//!   with an org-signed code) is in docs/HQ.md, "Which devices HQ trusts".
//! * **HQ-only kinds**: audit entries and withdrawal notices are kept decrypted in `hq_received`
//!   ([`received`]); a device's `device` profile fills in the age recipient of the author it
//!   pinned ([`keep_profile`]), which is what a case assignment is sealed to ([`assign_case`]). The installation's own audit chain is not sent (it would only come back to
//!   itself): it stays in its vault.

use super::apply::Applied;
use super::*;
use crate::names::collections::{HQ_CERTIFICATE, HQ_IDENTITIES, HQ_ORIGINALS, HQ_RECEIVED};
use age::secrecy::ExposeSecret;
use amanat_protocol::HqCertificate;
use amanat_protocol::PulledEnvelope;

/// Errors of the HQ installation's key handling and queries.
#[derive(Debug, thiserror::Error)]
pub enum HqError {
    /// The vault is not enrolled as an HQ installation.
    #[error("this vault is not an HQ installation")]
    NotHq,
    /// The group is not one of the organisation's recipient groups.
    #[error("unknown recipient group")]
    UnknownGroup,
    /// The text is not an age X25519 identity.
    #[error("not an age identity")]
    BadIdentity,
    /// The identity is not the organisation's key for that group (its public key differs from
    /// the one in the enrolled `org.pub`).
    #[error("the identity is not this organisation's key for that group")]
    WrongIdentity,
    /// The certificate (or an order) is not the organisation's signature for this installation.
    #[error("not signed by this organisation for this installation")]
    WrongCertificate,
    /// An order's content does not validate (e.g. a template with errors).
    #[error("the order's content is invalid")]
    BadOrder,
    /// No case with that code is held here (or none this installation's identities opened).
    #[error("no case with that code is held here")]
    UnknownCase,
    /// The device is not a field device this installation holds a profile of (its keys arrive
    /// with its first sync after enrollment).
    #[error("device {0} is not known here yet (no profile received from it)")]
    UnknownDevice(String),
    /// The relay could not be reached or asked to wait; nothing was lost, try again.
    #[error("the relay is unreachable or busy; try again")]
    Interrupted(Interruption),
    /// Reading the sync state failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The vault is not usable.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a kept original.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OriginalStatus {
    /// Being judged (only inside the pull transaction; never seen after it commits).
    Received,
    /// Verified and applied (its record is in the working store).
    Applied,
    /// No identity held here opens it: kept encrypted.
    Held,
    /// Opened but refused (bad signature, chain fork, rule): also in the quarantine list.
    Quarantined,
}

/// An envelope exactly as the relay delivered it. `Debug` omits the payload.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Original {
    /// Envelope id (UUIDv7 text).
    pub envelope_id: String,
    /// The relay's sequence number.
    pub seq: u64,
    /// The sender the relay authenticated.
    pub sender: String,
    /// The payload as delivered (base64 of the age file): unchanged, still encrypted and signed.
    pub payload: String,
    /// What became of it.
    pub status: OriginalStatus,
}

impl std::fmt::Debug for Original {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Original")
            .field("envelope_id", &self.envelope_id)
            .field("seq", &self.seq)
            .field("sender", &self.sender)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A record that travels to HQ alone (audit entry or withdrawal notice), verified and decrypted.
/// `Debug` omits the content.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Received {
    /// The envelope it came in.
    pub envelope_id: String,
    /// `audit` or `withdrawal`.
    pub kind: String,
    /// The record id (hex) on the author device.
    pub record_id: String,
    /// Author device id.
    pub author: String,
    /// The author's HLC when it was prepared.
    pub hlc: Hlc,
    /// Content hash (what the author signed).
    pub content_hash: String,
    /// The record as JSON text.
    pub content: String,
}

impl std::fmt::Debug for Received {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("envelope_id", &self.envelope_id)
            .field("kind", &self.kind)
            .field("record_id", &self.record_id)
            .field("author", &self.author)
            .finish_non_exhaustive()
    }
}

/// Counts over what an HQ installation holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HqSummary {
    /// Originals kept (every envelope pulled).
    pub originals: u64,
    /// Of those, verified and applied.
    pub applied: u64,
    /// Of those, kept encrypted: no identity held here opens them.
    pub held: u64,
    /// Of those, refused and quarantined.
    pub quarantined: u64,
    /// Audit entries received.
    pub audit_entries: u64,
    /// Withdrawal notices received.
    pub withdrawals: u64,
    /// Group identities held (names).
    pub groups: Vec<String>,
}

/// Id under which a group's identity is stored.
fn identity_id(group: &str) -> RecordId {
    let d = ring::digest::digest(&ring::digest::SHA256, group.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&d.as_ref()[..16]);
    RecordId::from_bytes(id)
}

#[derive(Serialize, Deserialize)]
struct HeldIdentity {
    group: String,
    secret: String,
}

impl Drop for HeldIdentity {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret);
    }
}

fn hq_state(tx: &mut Tx<'_>) -> Result<State, HqError> {
    match load_state(tx) {
        Ok((s, _)) if s.role == DeviceRole::Hq => Ok(s),
        Ok(_) | Err(SyncError::NotEnrolled) => Err(HqError::NotHq),
        Err(e) => Err(e.into()),
    }
}

/// Stores the identity of organisation group `group` in this HQ installation (sealed in its
/// vault, like every record), after checking it is the organisation's key for that group: the
/// one in `org.pub`, or one a `recipients` order adopted here named (a rotated key). Each of a
/// group's keys is kept: old records stay readable after a rotation.
pub fn import_group_identity(vault: &Vault, group: &str, identity: &str) -> Result<(), HqError> {
    let parsed =
        age::x25519::Identity::from_str(identity.trim()).map_err(|_| HqError::BadIdentity)?;
    vault.store()?.write(|tx| {
        let state = hq_state(tx)?;
        let known = super::orders::known_recipients_in(tx, &state.org, group)?;
        if known.is_empty() {
            return Err(HqError::UnknownGroup);
        }
        let public = parsed.to_public().to_string();
        if !known.contains(&public) {
            return Err(HqError::WrongIdentity);
        }
        let held = HeldIdentity {
            group: group.to_string(),
            secret: parsed.to_string().expose_secret().to_string(),
        };
        // `org.pub`'s key under the group's name (as before rotation existed); a rotated one
        // under the group and its recipient, so both are kept.
        let id = if state.org.groups.get(group) == Some(&public) {
            identity_id(group)
        } else {
            identity_id(&format!("{group}\0{public}"))
        };
        match tx.get(HQ_IDENTITIES, id)? {
            Some(r) => {
                tx.update_json(HQ_IDENTITIES, id, r.version, &held)?;
            }
            None => tx.insert_json_with_id(HQ_IDENTITIES, id, &held)?,
        }
        Ok(())
    })
}

/// First word of a line of an identity bundle that carries a signed order.
pub const BUNDLE_ORDER_PREFIX: &str = "AMANAT-ORDER-V1 ";

/// Stores the identities in `text` — one `AGE-SECRET-KEY-…` per line; a bundle from `amanat org
/// export-group` may also carry the group's signed `recipients` order on a line starting with
/// [`BUNDLE_ORDER_PREFIX`], adopted first (after its signature is checked) so a rotated key is
/// recognised — each as whichever organisation group it is the key of (found by its public key),
/// and returns the group's name: an identity file handed to an operator needs no label that
/// could be wrong. Nothing is stored unless every line is accepted.
pub fn import_identity(vault: &Vault, text: &str) -> Result<String, HqError> {
    let mut identities = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(json) = line.strip_prefix(BUNDLE_ORDER_PREFIX) {
            let order: amanat_protocol::OrgOrder =
                serde_json::from_str(json).map_err(|_| HqError::BadOrder)?;
            adopt_order(vault, &order)?;
        } else {
            identities
                .push(age::x25519::Identity::from_str(line).map_err(|_| HqError::BadIdentity)?);
        }
    }
    let mut found = Vec::new();
    vault.store()?.read(|tx| {
        let state = hq_state(tx)?;
        for id in &identities {
            let public = id.to_public().to_string();
            let mut group = None;
            for g in amanat_protocol::RECIPIENT_GROUPS {
                if super::orders::known_recipients_in(tx, &state.org, g)?.contains(&public) {
                    group = Some(g.to_string());
                }
            }
            found.push(group.ok_or(HqError::WrongIdentity)?);
        }
        Ok::<_, HqError>(())
    })?;
    for (id, group) in identities.iter().zip(&found) {
        import_group_identity(vault, group, id.to_string().expose_secret())?;
    }
    found.pop().ok_or(HqError::BadIdentity)
}

/// Adopts an organisation `recipients` order in this installation (a group key was rotated):
/// checked under the enrolled organisation; from then on the installation accepts the new key
/// for that group and hands the order on to devices ([`deliver_standing`]).
pub fn adopt_order(vault: &Vault, order: &amanat_protocol::OrgOrder) -> Result<(), HqError> {
    vault.store()?.write(|tx| {
        let state = hq_state(tx)?;
        if order.verify(&state.org).is_err() {
            return Err(HqError::WrongCertificate);
        }
        if order.kind != super::orders::KIND_RECIPIENTS {
            return Err(HqError::BadOrder);
        }
        match super::orders::adopt_recipients_in(tx, order)? {
            Ok(()) => Ok(()),
            Err(_) => Err(HqError::BadOrder),
        }
    })
}

/// Sends the `recipients` order this installation adopted to every device it knows that has not
/// had it yet (a device enrolled after a rotation starts on `org.pub`'s keys): run after each
/// pull. Returns how many devices it was sent to.
pub fn deliver_standing(vault: &Vault, transport: &dyn Transport) -> Result<u64, HqError> {
    use crate::names::collections::HQ_DELIVERED;
    let store = vault.store()?;
    let (order, due) = store.read(|tx| {
        hq_state(tx)?;
        let Some(order) = super::orders::adopted_recipients_in(tx)? else {
            return Ok::<_, HqError>((None, Vec::new()));
        };
        let serial = serde_json::from_str::<super::orders::RecipientsBody>(&order.body)
            .map(|b| b.serial)
            .map_err(|_| HqError::BadOrder)?;
        let mut due = Vec::new();
        for id in tx.list(SYNC_PEERS)? {
            let delivered: u64 = tx.get_json(HQ_DELIVERED, id)?.map(|(s, _)| s).unwrap_or(0);
            if delivered < serial {
                due.push((id, tx.require_json::<Peer>(SYNC_PEERS, id)?.0.device_id));
            }
        }
        Ok((Some((order, serial)), due))
    })?;
    let Some((order, serial)) = order else {
        return Ok(0);
    };
    if due.is_empty() {
        return Ok(0);
    }
    let devices: Vec<String> = due.iter().map(|(_, d)| d.clone()).collect();
    send_order(vault, transport, &order, &devices)?;
    store.write(|tx| {
        for (id, _) in &due {
            match tx.get(HQ_DELIVERED, *id)? {
                Some(r) => {
                    tx.update_json(HQ_DELIVERED, *id, r.version, &serial)?;
                }
                None => tx.insert_json_with_id(HQ_DELIVERED, *id, &serial)?,
            }
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(due.len() as u64)
}

/// The group identities held, with their group names.
pub(super) fn identities_in(
    tx: &mut Tx<'_>,
) -> Result<Vec<(String, age::x25519::Identity)>, StoreError> {
    let mut out = Vec::new();
    for id in tx.list(HQ_IDENTITIES)? {
        let held: HeldIdentity = tx.require_json(HQ_IDENTITIES, id)?.0;
        let identity =
            age::x25519::Identity::from_str(&held.secret).map_err(|_| StoreError::Shape)?;
        out.push((held.group.clone(), identity));
    }
    Ok(out)
}

/// The identities this vault opens envelopes and attachment blobs with: its own, and at HQ also
/// the group identities it holds.
pub(super) fn receiving_identities(
    tx: &mut Tx<'_>,
) -> Result<Vec<age::x25519::Identity>, SyncError> {
    let mut out = vec![attachments::device_identity(tx)?];
    if load_state(tx)?.0.role == DeviceRole::Hq {
        out.extend(identities_in(tx)?.into_iter().map(|(_, id)| id));
    }
    Ok(out)
}

/// Pins `author`'s signing key as a trusted sender (no case shared with it) when HQ sees it first.
/// The id is derived from the key (checked by [`envelope::verify`] before this is called), so a
/// pinned author cannot later appear under another key.
pub(super) fn pin_author(
    tx: &mut Tx<'_>,
    author: &str,
    author_key: &str,
) -> Result<(), StoreError> {
    let Some(id) = RecordId::parse(author) else {
        return Ok(());
    };
    if tx.get(SYNC_PEERS, id)?.is_none() {
        let peer = Peer {
            device_id: author.to_string(),
            signing_public_key: author_key.to_string(),
            age_recipient: String::new(),
            cases: BTreeSet::new(),
            clocks: BTreeSet::new(),
        };
        tx.insert_json_with_id(SYNC_PEERS, id, &peer)?;
    }
    Ok(())
}

/// What [`keep_original`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kept {
    /// A new envelope, now kept: judge it.
    New,
    /// The same bytes from the same sender again: judged already, skip.
    Again,
    /// Other bytes under an id already kept: judge them (any failure is a quarantine, never
    /// "held"), the kept original does not change.
    Other,
}

/// Keeps `env` as an original under `id`, unless one is kept already.
pub(super) fn keep_original(
    tx: &mut Tx<'_>,
    id: RecordId,
    env: &PulledEnvelope,
) -> Result<Kept, StoreError> {
    if let Some((held, _)) = tx.get_json::<Original>(HQ_ORIGINALS, id)? {
        return Ok(
            if held.payload == env.payload && held.sender == env.sender {
                Kept::Again
            } else {
                Kept::Other
            },
        );
    }
    let original = Original {
        envelope_id: env.id.clone(),
        seq: env.seq,
        sender: env.sender.clone(),
        payload: env.payload.clone(),
        status: OriginalStatus::Received,
    };
    tx.insert_json_with_id(HQ_ORIGINALS, id, &original)?;
    Ok(Kept::New)
}

/// Records what became of the original under `id` — only of one this pull just kept (status
/// [`OriginalStatus::Received`]): other bytes under a known id never change the original.
pub(super) fn mark(
    tx: &mut Tx<'_>,
    id: RecordId,
    status: OriginalStatus,
) -> Result<(), StoreError> {
    if let Some((mut o, version)) = tx.get_json::<Original>(HQ_ORIGINALS, id)? {
        if o.status == OriginalStatus::Received {
            o.status = status;
            tx.update_json(HQ_ORIGINALS, id, version, &o)?;
        }
    }
    Ok(())
}

/// Keeps a verified HQ-only record. Idempotent; another content under the same record id from
/// the same author is refused (`conflicting_version`).
pub(super) fn keep_received(tx: &mut Tx<'_>, rec: &SignedRecord) -> Result<Applied, StoreError> {
    // Keyed by author and record: two devices' record ids are independent.
    let key = custody::recv_chain_id(&rec.author, &rec.kind, &rec.record_id);
    if let Some((held, _)) = tx.get_json::<Received>(HQ_RECEIVED, key)? {
        return Ok(if held.content_hash == rec.content_hash {
            Ok(0)
        } else {
            Err("conflicting_version")
        });
    }
    let received = Received {
        envelope_id: rec.envelope_id.clone(),
        kind: rec.kind.clone(),
        record_id: rec.record_id.clone(),
        author: rec.author.clone(),
        hlc: rec.hlc,
        content_hash: rec.content_hash.clone(),
        content: rec.content.clone(),
    };
    tx.insert_json_with_id(HQ_RECEIVED, key, &received)?;
    Ok(Ok(0))
}

/// Keeps a field device's profile: its age recipient, on the peer pinned under the same key
/// (the profile must name its own author and key, so a device cannot speak for another).
pub(super) fn keep_profile(tx: &mut Tx<'_>, rec: &SignedRecord) -> Result<Applied, StoreError> {
    let Ok(profile) = serde_json::from_str::<DeviceProfile>(&rec.content) else {
        return Ok(Err("malformed_content"));
    };
    if profile.device_id != rec.author
        || profile.signing_public_key != rec.author_key
        || age::x25519::Recipient::from_str(&profile.age_recipient).is_err()
    {
        return Ok(Err("malformed_content"));
    }
    let Some(id) = RecordId::parse(&rec.author) else {
        return Ok(Err("malformed_content"));
    };
    if let Some((mut peer, version)) = tx.get_json::<Peer>(SYNC_PEERS, id)? {
        if peer.signing_public_key == rec.author_key && peer.age_recipient != profile.age_recipient
        {
            peer.age_recipient = profile.age_recipient;
            tx.update_json(SYNC_PEERS, id, version, &peer)?;
        }
    }
    Ok(Ok(0))
}

/// Every original kept, in relay order.
pub fn originals(vault: &Vault) -> Result<Vec<Original>, HqError> {
    let store = vault.store()?;
    let mut out = store.read(|tx| {
        hq_state(tx)?;
        let mut out = Vec::new();
        for id in tx.list(HQ_ORIGINALS)? {
            out.push(tx.require_json::<Original>(HQ_ORIGINALS, id)?.0);
        }
        Ok::<_, HqError>(out)
    })?;
    out.sort_by_key(|o| o.seq);
    Ok(out)
}

/// Every HQ-only record received (audit entries, withdrawal notices), in author HLC order.
pub fn received(vault: &Vault) -> Result<Vec<Received>, HqError> {
    let store = vault.store()?;
    let mut out = store.read(|tx| {
        hq_state(tx)?;
        let mut out = Vec::new();
        for id in tx.list(HQ_RECEIVED)? {
            out.push(tx.require_json::<Received>(HQ_RECEIVED, id)?.0);
        }
        Ok::<_, HqError>(out)
    })?;
    out.sort_by(|a, b| (&a.author, a.hlc).cmp(&(&b.author, b.hlc)));
    Ok(out)
}

/// What this installation holds, counted.
pub fn summary(vault: &Vault) -> Result<HqSummary, HqError> {
    let mut s = HqSummary::default();
    for o in originals(vault)? {
        s.originals += 1;
        match o.status {
            OriginalStatus::Applied => s.applied += 1,
            OriginalStatus::Held => s.held += 1,
            OriginalStatus::Quarantined => s.quarantined += 1,
            OriginalStatus::Received => {}
        }
    }
    for r in received(vault)? {
        match EntryKind::parse(&r.kind) {
            Some(EntryKind::Audit) => s.audit_entries += 1,
            Some(EntryKind::Withdrawal) => s.withdrawals += 1,
            _ => {}
        }
    }
    s.groups = vault.store()?.read(|tx| {
        Ok::<_, StoreError>(
            identities_in(tx)?
                .into_iter()
                .map(|(g, _)| g)
                .collect::<Vec<_>>(),
        )
    })?;
    s.groups.sort();
    s.groups.dedup(); // a rotated group holds several keys
    Ok(s)
}

const CERTIFICATE_ID: RecordId = RecordId::from_bytes([0xCE; 16]);

/// This installation's signing key (hex) and device id: what `amanat org certify-hq` certifies.
pub fn signing_public_key(vault: &Vault) -> Result<(String, String), HqError> {
    vault.store()?.read(|tx| {
        let state = hq_state(tx)?;
        let key = load_key(tx)?;
        Ok((
            state.device_id,
            amanat_protocol::to_hex(key.public_key().as_ref()),
        ))
    })
}

/// Stores the organisation's certificate of this installation's key, after checking it is
/// signed by the enrolled organisation and names this installation's key.
pub fn set_certificate(vault: &Vault, cert: &HqCertificate) -> Result<(), HqError> {
    vault.store()?.write(|tx| {
        let state = hq_state(tx)?;
        let key = load_key(tx)?;
        if cert.verify(&state.org).is_err()
            || cert.signing_public_key != amanat_protocol::to_hex(key.public_key().as_ref())
            || cert.device_id != state.device_id
        {
            return Err(HqError::WrongCertificate);
        }
        match tx.get(HQ_CERTIFICATE, CERTIFICATE_ID)? {
            Some(r) => {
                tx.update_json(HQ_CERTIFICATE, CERTIFICATE_ID, r.version, cert)?;
            }
            None => tx.insert_json_with_id(HQ_CERTIFICATE, CERTIFICATE_ID, cert)?,
        }
        Ok(())
    })
}

/// The installation's certificate, if it has one.
pub fn certificate(vault: &Vault) -> Result<Option<HqCertificate>, HqError> {
    vault.store()?.read(|tx| {
        hq_state(tx)?;
        Ok(tx
            .get_json::<HqCertificate>(HQ_CERTIFICATE, CERTIFICATE_ID)?
            .map(|(c, _)| c))
    })
}

/// What an export needs from the installation, read in one transaction: the organisation, the
/// certificate, the identity of `group`, and a signer.
pub(crate) struct ExportKeys {
    pub(crate) org: OrgPublic,
    pub(crate) certificate: Option<HqCertificate>,
    /// Every key of the group held here (more than one after a rotation).
    pub(crate) identities: Vec<age::x25519::Identity>,
    pub(crate) key: Ed25519KeyPair,
}

pub(crate) fn export_keys_in(tx: &mut Tx<'_>, group: &str) -> Result<ExportKeys, HqError> {
    let state = hq_state(tx)?;
    let identities = identities_in(tx)?
        .into_iter()
        .filter(|(g, _)| g == group)
        .map(|(_, i)| i)
        .collect();
    Ok(ExportKeys {
        org: state.org,
        certificate: tx
            .get_json::<HqCertificate>(HQ_CERTIFICATE, CERTIFICATE_ID)?
            .map(|(c, _)| c),
        identities,
        key: load_key(tx)?,
    })
}

/// The original kept under envelope id `envelope_id` (UUID text), if any.
pub(crate) fn original_in(
    tx: &mut Tx<'_>,
    envelope_id: &str,
) -> Result<Option<Original>, StoreError> {
    let Ok(uuid) = uuid::Uuid::parse_str(envelope_id) else {
        return Ok(None);
    };
    Ok(tx
        .get_json::<Original>(HQ_ORIGINALS, RecordId::from_bytes(*uuid.as_bytes()))?
        .map(|(o, _)| o))
}

/// Judges again every original kept encrypted, with the identities held now: after an identity
/// is added ([`import_identity`]), what arrived for that group before is opened, verified and
/// applied like a new envelope (chains accept the late arrival as a gap fill). Returns how many
/// were applied; those still unopenable stay held, those that fail a check are quarantined.
pub fn reopen_held(vault: &Vault) -> Result<u64, HqError> {
    let store = vault.store()?;
    let held: Vec<(RecordId, Original)> = store.read(|tx| {
        hq_state(tx)?;
        let mut out = Vec::new();
        for id in tx.list(HQ_ORIGINALS)? {
            let o: Original = tx.require_json(HQ_ORIGINALS, id)?.0;
            if o.status == OriginalStatus::Held {
                out.push((id, o));
            }
        }
        Ok::<_, HqError>(out)
    })?;
    let mut held = held;
    held.sort_by_key(|(_, o)| o.seq);
    let mut applied = 0;
    // One transaction per envelope: a large backlog does not hold one long transaction.
    for (id, o) in held {
        applied += store.write(|tx| {
            let (state, _) = load_state(tx)?;
            let identities = receiving_identities(tx)?;
            let env = PulledEnvelope {
                seq: o.seq,
                id: o.envelope_id.clone(),
                sender: o.sender.clone(),
                payload: o.payload.clone(),
            };
            let status = match super::pull::receive(tx, &state, &identities, &env)? {
                Ok((record, _clashes)) => {
                    if tx.get(SYNC_APPLIED, id)?.is_none() {
                        tx.insert_json_with_id(SYNC_APPLIED, id, &record)?;
                    }
                    OriginalStatus::Applied
                }
                Err(reason) if reason == OpenError::Undecryptable.code() => return Ok(0),
                Err(reason) => {
                    let key = super::pull::quarantine_key(&env);
                    if tx.get(SYNC_QUARANTINE, key)?.is_none() {
                        tx.insert_json_with_id(
                            SYNC_QUARANTINE,
                            key,
                            &Quarantined {
                                envelope_id: env.id.clone(),
                                seq: env.seq,
                                sender: env.sender.clone(),
                                reason: reason.to_string(),
                                payload: env.payload.clone(),
                            },
                        )?;
                    }
                    OriginalStatus::Quarantined
                }
            };
            if let Some((mut kept, version)) = tx.get_json::<Original>(HQ_ORIGINALS, id)? {
                kept.status = status;
                tx.update_json(HQ_ORIGINALS, id, version, &kept)?;
            }
            Ok::<_, HqError>(u64::from(status == OriginalStatus::Applied))
        })?;
    }
    Ok(applied)
}

/// Devices this installation has received from (pinned authors), by device id: whom an order
/// goes to by default.
pub fn known_devices(vault: &Vault) -> Result<Vec<String>, HqError> {
    Ok(devices(vault)?.into_iter().map(|d| d.device_id).collect())
}

/// A device this installation has received from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownDevice {
    /// Its device id.
    pub device_id: String,
    /// Whether its `device` profile arrived (a case can be referred to it).
    pub profile: bool,
}

/// The devices this installation has received from, by id, with whether their profile arrived.
pub fn devices(vault: &Vault) -> Result<Vec<KnownDevice>, HqError> {
    vault.store()?.read(|tx| {
        hq_state(tx)?;
        let mut out = Vec::new();
        for id in tx.list(SYNC_PEERS)? {
            let p = tx.require_json::<Peer>(SYNC_PEERS, id)?.0;
            out.push(KnownDevice {
                profile: !p.age_recipient.is_empty(),
                device_id: p.device_id,
            });
        }
        out.sort_by(|a, b| a.device_id.cmp(&b.device_id));
        Ok(out)
    })
}

/// Sends an organisation order to `devices` through the relay (envelopes of at most 64
/// recipients, the relay's limit), and — for a template — installs it here too, so exports can
/// label interviews recorded on it. Returns how many envelopes the relay acknowledged. The order
/// must verify under this installation's organisation: nothing else is sent.
pub fn send_order(
    vault: &Vault,
    transport: &dyn Transport,
    order: &amanat_protocol::OrgOrder,
    devices: &[String],
) -> Result<u64, HqError> {
    let store = vault.store()?;
    let (state, key) = store.read(|tx| {
        let state = hq_state(tx)?;
        Ok::<_, HqError>((state, load_key(tx)?))
    })?;
    if order.verify(&state.org).is_err() {
        return Err(HqError::WrongCertificate);
    }
    if order.kind == super::orders::KIND_TEMPLATE {
        store.write(|tx| {
            crate::records::interviews::install_template_in(tx, &order.body)
                .map(|_| ())
                .map_err(|_| HqError::BadOrder)
        })?;
    }
    let control = Control::default();
    let ctx = Ctx::new(vault, &store, state, key, transport, &control);
    let payload = super::orders::payload(order)?;
    let mut envelopes = Vec::new();
    for chunk in devices.chunks(64) {
        envelopes.push(Envelope {
            id: store.read(|tx| Ok::<_, StoreError>(new_envelope_id(tx)))?,
            recipients: chunk.to_vec(),
            payload: payload.clone(),
        });
    }
    let mut sent = 0;
    for batch in envelopes.chunks(PUSH_BATCH) {
        sent += post(&ctx, batch.to_vec())?;
    }
    Ok(sent)
}

/// Pushes envelopes this installation made (orders, receipts) in one request; returns how many
/// the relay acknowledged. A transient failure is [`HqError::Interrupted`]: nothing was recorded
/// as sent, the caller runs the command again.
fn post(ctx: &Ctx<'_>, envelopes: Vec<Envelope>) -> Result<u64, HqError> {
    let body = serde_json::to_vec(&PushRequest { envelopes }).map_err(|_| SyncError::Envelope)?;
    match ctx.send("POST", "/v1/envelopes", body)? {
        Answer::Ok(body) => {
            let answer: PushResponse =
                serde_json::from_slice(&body).map_err(|_| SyncError::UnexpectedResponse)?;
            Ok(answer.acks.len() as u64)
        }
        Answer::Transient(why) => Err(HqError::Interrupted(why)),
        Answer::Revoked(body) => {
            obey_revocation(ctx.vault, &ctx.state, &body)?;
            Err(SyncError::Revoked.into())
        }
        Answer::Refused { status, code } => Err(SyncError::Rejected { status, code }.into()),
    }
}

/// Sends each device a signed receipt for what this installation holds of it and has not
/// acknowledged yet: submitted interviews it applied (by the content hash the device signed),
/// attachments whose blob it downloaded and checked (by plaintext hash). Needs the
/// organisation's certificate (devices check it). Returns how many records were acknowledged.
pub fn send_receipts(vault: &Vault, transport: &dyn Transport) -> Result<u64, HqError> {
    use crate::names::collections::{ATTACHMENTS, HQ_RECEIPTED, INTERVIEWS};
    use crate::records::attachments::AttachmentInfo;
    use amanat_protocol::{Receipt, ReceiptEntry};
    let store = vault.store()?;
    let (state, key, cert) = store.read(|tx| {
        let state = hq_state(tx)?;
        let cert = tx
            .get_json::<HqCertificate>(HQ_CERTIFICATE, CERTIFICATE_ID)?
            .map(|(c, _)| c);
        Ok::<_, HqError>((state, load_key(tx)?, cert))
    })?;
    let cert = cert.ok_or(HqError::WrongCertificate)?;
    // Per device: the entries, and the envelopes they came in (marked once the relay took it).
    type Due = BTreeMap<String, Vec<(ReceiptEntry, RecordId)>>;
    let due: Due = store.read(|tx| {
        let mut due: Due = BTreeMap::new();
        for env_id in tx.list(SYNC_APPLIED)? {
            if tx.get(HQ_RECEIPTED, env_id)?.is_some() {
                continue;
            }
            let a: custody::AppliedRecord = tx.require_json(SYNC_APPLIED, env_id)?.0;
            let Some(rid) = RecordId::parse(&a.record_id) else {
                continue;
            };
            let hash = match a.kind.as_str() {
                "interview" if tx.get(INTERVIEWS, rid)?.is_some() => a.content_hash.clone(),
                // Only once the blob is here and checked (the attachment record exists).
                "attachment" => match tx.get_json::<AttachmentInfo>(ATTACHMENTS, rid)? {
                    Some((info, _)) => info.sha256,
                    None => continue,
                },
                _ => continue,
            };
            due.entry(a.author.clone()).or_default().push((
                ReceiptEntry {
                    kind: a.kind.clone(),
                    record_id: a.record_id.clone(),
                    hash,
                },
                env_id,
            ));
        }
        Ok::<_, HqError>(due)
    })?;
    let control = Control::default();
    let ctx = Ctx::new(vault, &store, state, key, transport, &control);
    let now_s = vault.clock().now_ms() / 1000;
    let mut acknowledged = 0;
    for (device, items) in due {
        // Bounded receipts: a device with a long backlog gets several.
        for chunk in items.chunks(500) {
            let entries: Vec<ReceiptEntry> = chunk.iter().map(|(e, _)| e.clone()).collect();
            let receipt = Receipt::issue(&ctx.key, cert.clone(), &device, now_s, entries);
            let envelope = Envelope {
                id: store.read(|tx| Ok::<_, StoreError>(new_envelope_id(tx)))?,
                recipients: vec![device.clone()],
                payload: super::retention::payload(&receipt)?,
            };
            post(&ctx, vec![envelope])?;
            store.write(|tx| {
                for (_, env_id) in chunk {
                    if tx.get(HQ_RECEIPTED, *env_id)?.is_none() {
                        tx.insert_with_id(HQ_RECEIPTED, *env_id, b"1")?;
                    }
                }
                Ok::<_, StoreError>(())
            })?;
            acknowledged += chunk.len() as u64;
        }
    }
    Ok(acknowledged)
}

/// Withdrawal notices received, by case (hex id): (consent version, scopes withdrawn, scopes
/// remaining).
pub(crate) type Notices = std::collections::HashMap<String, Vec<Notice>>;

/// One withdrawal notice: (consent version, scopes withdrawn, scopes remaining).
pub type Notice = (u32, BTreeSet<Scope>, BTreeSet<Scope>);

/// Every withdrawal notice this installation received (HQ-only records, encrypted to every
/// group), by case.
pub(crate) fn notices_in(tx: &mut Tx<'_>) -> Result<Notices, StoreError> {
    let mut out = Notices::new();
    for id in tx.list(HQ_RECEIVED)? {
        let r: Received = tx.require_json(HQ_RECEIVED, id)?.0;
        if r.kind != "withdrawal" {
            continue;
        }
        let Ok(n) = serde_json::from_str::<WithdrawalNotice>(&r.content) else {
            continue;
        };
        out.entry(n.case_id.clone())
            .or_default()
            .push((n.consent_version, n.withdrawn, n.scopes));
    }
    Ok(out)
}

/// The scopes in force for a case at HQ: those of the newest consent version this installation
/// could read (`current`), unless a withdrawal notice of a newer version says otherwise. The
/// version that withdraws is encrypted only to the groups still allowed, so a group that lost
/// consent learns it from the notice alone — and must honour it.
pub fn scopes_now(current: Option<&consent::Consent>, notices: &[Notice]) -> BTreeSet<Scope> {
    let known = current.map(|c| c.version).unwrap_or(0);
    match notices.iter().filter(|n| n.0 > known).max_by_key(|n| n.0) {
        Some(n) => n.2.clone(),
        None => current.map(|c| c.scopes.clone()).unwrap_or_default(),
    }
}

/// The devices HQ last assigned a case to (`hq_assignments`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseTeam {
    serial: u64,
    devices: BTreeSet<String>,
}

/// What [`assign_case`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AssignOutcome {
    /// The case (hex id).
    pub case_id: String,
    /// The devices sharing the case now.
    pub devices: Vec<String>,
    /// The devices that were told (the team, and those taken off it).
    pub told: Vec<String>,
    /// Records handed to the devices joining (case, identity, consent, interviews).
    pub records: u64,
}

/// The records of `case_id` this installation applied, decrypted, in relay order, and their
/// authors. What no identity held here opens is not among them.
fn case_records(
    tx: &mut Tx<'_>,
    case_id: &str,
) -> Result<(Vec<SignedRecord>, BTreeSet<String>), SyncError> {
    let identities = receiving_identities(tx)?;
    // The identity record goes only where the scopes in force still share with caseworkers (a
    // withdrawal HQ learnt from its notice counts, even when the withdrawing version is sealed
    // to groups this installation does not hold).
    let case = RecordId::parse(case_id).ok_or(StoreError::Shape)?;
    let current = consent::current_in(tx, case)?;
    let notices = notices_in(tx)?;
    let scopes = scopes_now(
        current.as_ref(),
        notices.get(case_id).map(Vec::as_slice).unwrap_or(&[]),
    );
    let identity_ok = scopes.contains(&Scope::ShareCaseworkers);
    let mut found: Vec<(u64, SignedRecord)> = Vec::new();
    for id in tx.list(HQ_ORIGINALS)? {
        let o: Original = tx.require_json(HQ_ORIGINALS, id)?.0;
        if o.status != OriginalStatus::Applied {
            continue;
        }
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&o.payload) else {
            continue;
        };
        let Ok(record) = envelope::open_any(&bytes, &identities) else {
            continue;
        };
        let of_case = match EntryKind::parse(&record.kind) {
            Some(EntryKind::Case) => record.record_id == case_id,
            Some(EntryKind::Identity) => identity_ok && record.record_id == case_id,
            Some(EntryKind::Consent | EntryKind::Interview) => {
                serde_json::from_str::<CaseRef>(&record.content)
                    .map(|r| r.case_id == case_id)
                    .unwrap_or(false)
            }
            _ => false,
        };
        if of_case {
            found.push((o.seq, record));
        }
    }
    found.sort_by_key(|(seq, _)| *seq);
    let authors = found.iter().map(|(_, r)| r.author.clone()).collect();
    Ok((found.into_iter().map(|(_, r)| r).collect(), authors))
}

/// Refers a case to field devices, or takes it back: `add` joins the case's team, `remove`
/// leaves it; the team starts as the devices that wrote the case. Each device of the team, and
/// each taken off it, gets an `assign` order (`sync::orders`) signed by `sign(kind, body)` (the
/// organisation key, which this installation does not hold) and sealed to that device alone; a
/// device joining also gets the case's records this installation holds (attachments stay at HQ:
/// a recording is not copied to another phone; the identity record only while consent still
/// shares with caseworkers). Returns what was sent; nothing is recorded
/// unless every order was accepted by the relay (run it again after a failure).
pub fn assign_case(
    vault: &Vault,
    transport: &dyn Transport,
    case_code: &str,
    add: &[String],
    remove: &[String],
    sign: &dyn Fn(&str, String) -> amanat_protocol::OrgOrder,
) -> Result<AssignOutcome, HqError> {
    use super::orders::{AssignedDevice, Assignment, KIND_ASSIGN};
    use crate::names::collections::{CASES, HQ_ASSIGNMENTS};
    use crate::names::indexes::CASE_CODE;
    let store = vault.store()?;
    let now = vault.clock().now_ms();
    type Plan = (
        State,
        Ed25519KeyPair,
        String,
        Vec<SignedRecord>,
        CaseTeam,
        CaseTeam,
        BTreeMap<String, Peer>,
    );
    let (state, key, case_id, records, before, after, peers): Plan = store.read(|tx| {
        let state = hq_state(tx)?;
        let holders = tx.find(CASES, CASE_CODE, case_code.trim().as_bytes())?;
        let [case] = holders.as_slice() else {
            return Err(HqError::UnknownCase);
        };
        let case_id = case.to_string();
        let (records, authors) = case_records(tx, &case_id)?;
        let before: CaseTeam = tx
            .get_json(HQ_ASSIGNMENTS, *case)?
            .map(|(t, _)| t)
            .unwrap_or_default();
        let mut devices: BTreeSet<String> = before.devices.union(&authors).cloned().collect();
        devices.extend(add.iter().cloned());
        for d in remove {
            devices.remove(d);
        }
        let after = CaseTeam {
            serial: now.max(before.serial.saturating_add(1)),
            devices,
        };
        let mut peers = BTreeMap::new();
        for d in after
            .devices
            .iter()
            .chain(before.devices.iter())
            .chain(remove)
        {
            let peer = RecordId::parse(d)
                .map(|id| tx.get_json::<Peer>(SYNC_PEERS, id))
                .transpose()?
                .flatten()
                .map(|(p, _)| p)
                .filter(|p| !p.age_recipient.is_empty())
                .ok_or_else(|| HqError::UnknownDevice(d.clone()))?;
            peers.insert(d.clone(), peer);
        }
        Ok::<_, HqError>((state, load_key(tx)?, case_id, records, before, after, peers))
    })?;
    let team: Vec<AssignedDevice> = after
        .devices
        .iter()
        .filter_map(|d| peers.get(d))
        .map(|p| AssignedDevice {
            device_id: p.device_id.clone(),
            signing_public_key: p.signing_public_key.clone(),
            age_recipient: p.age_recipient.clone(),
        })
        .collect();
    let control = Control::default();
    let ctx = Ctx::new(vault, &store, state, key, transport, &control);
    let mut told = Vec::new();
    let mut handed = 0;
    for (device, peer) in &peers {
        let joining = after.devices.contains(device) && !before.devices.contains(device);
        // A device joining gets what others wrote (not its own records back).
        let carried: Vec<SignedRecord> = if joining {
            records
                .iter()
                .filter(|r| r.author != *device)
                .cloned()
                .collect()
        } else {
            Vec::new()
        };
        let handed_here = carried.len() as u64;
        let body = Assignment {
            case_id: case_id.clone(),
            serial: after.serial,
            devices: team.clone(),
            records: carried,
        };
        let body = serde_json::to_string(&body).map_err(|_| SyncError::Envelope)?;
        let order = sign(KIND_ASSIGN, body);
        if order.verify(&ctx.state.org).is_err() || order.kind != KIND_ASSIGN {
            return Err(HqError::WrongCertificate);
        }
        let recipient =
            age::x25519::Recipient::from_str(&peer.age_recipient).map_err(|_| SyncError::Key)?;
        let envelope = Envelope {
            id: store.read(|tx| Ok::<_, StoreError>(new_envelope_id(tx)))?,
            recipients: vec![device.clone()],
            payload: super::orders::sealed_payload(&order, &recipient)?,
        };
        post(&ctx, vec![envelope])?;
        told.push(device.clone());
        handed += handed_here;
    }
    let case = RecordId::parse(&case_id).ok_or(StoreError::Shape)?;
    store.write(|tx| {
        match tx.get(HQ_ASSIGNMENTS, case)? {
            Some(r) => {
                tx.update_json(HQ_ASSIGNMENTS, case, r.version, &after)?;
            }
            None => tx.insert_json_with_id(HQ_ASSIGNMENTS, case, &after)?,
        }
        Ok::<_, StoreError>(())
    })?;
    Ok(AssignOutcome {
        case_id,
        devices: after.devices.into_iter().collect(),
        told,
        records: handed,
    })
}
