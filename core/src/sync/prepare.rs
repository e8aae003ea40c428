//! Preparing envelopes: one per outbox entry, signed, encrypted to what consent allows, stored
//! sealed so a retry resends identical bytes.

use super::*;

#[derive(Serialize, Deserialize)]
pub(super) struct Prepared {
    pub(super) envelopes: Vec<Envelope>,
}

#[derive(Serialize, Deserialize)]
pub(super) struct ChainHead {
    pub(super) version: u64,
    pub(super) hash: String,
}

/// A UUIDv7 (text) from the vault's clock and CSPRNG.
pub(super) fn new_envelope_id(tx: &Tx<'_>) -> String {
    let mut random = [0u8; 10];
    tx.fill_random(&mut random);
    uuid::Builder::from_unix_timestamp_millis(tx.clock().now_ms(), &random)
        .into_uuid()
        .hyphenated()
        .to_string()
}

pub(super) fn collection_named(name: &str) -> Option<Collection> {
    collections::ALL.into_iter().find(|c| c.name() == name)
}

#[derive(Deserialize)]
pub(super) struct CaseRef {
    pub(super) case_id: String,
}

pub(super) fn chain_id(kind: EntryKind, record: &str) -> RecordId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(kind.as_str().as_bytes());
    ctx.update(b"\0");
    ctx.update(record.as_bytes());
    let d = ctx.finish();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d.as_ref()[..16]);
    RecordId::from_bytes(id)
}

/// What HQ receives when consent is withdrawn (kind `withdrawal`): which case, which consent
/// version, what was withdrawn and what remains. No survivor content: it is encrypted to every
/// organisation group whatever was withdrawn, so the groups that lost consent learn they must act
/// on data they already hold (delivered ciphertext cannot be recalled).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalNotice {
    /// The case (hex id).
    pub case_id: String,
    /// The consent version record that withdrew (hex id; it travels as kind `consent` too).
    pub consent_id: String,
    /// That version's number.
    pub consent_version: u32,
    /// Scopes withdrawn by it.
    pub withdrawn: BTreeSet<Scope>,
    /// Scopes still granted after it.
    pub scopes: BTreeSet<Scope>,
}

/// A field device's keys as it tells them to HQ (kind `device`): signed like every record, so
/// HQ holds the age recipient under the same key it pinned for the device's envelopes, and can
/// seal a case assignment to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceProfile {
    /// The device id (derived from `signing_public_key`).
    pub device_id: String,
    /// Its Ed25519 public key, hex.
    pub signing_public_key: String,
    /// Its age recipient (`age1…`).
    pub age_recipient: String,
}

type Packed = (String, Vec<age::x25519::Recipient>, Vec<String>);

/// Recipients of an HQ-only record: this device and the named organisation groups; route `hq`.
fn hq_only(tx: &mut Tx<'_>, content: String, groups: &[&str]) -> Result<Packed, SyncError> {
    let mut recipients = vec![attachments::device_identity(tx)?.to_public()];
    let org = attachments::org_recipients_in(tx)?;
    for group in groups {
        if let Some(text) = org.get(*group) {
            recipients
                .push(age::x25519::Recipient::from_str(text).map_err(|_| SyncError::Envelope)?);
        }
    }
    Ok((content, recipients, vec![HQ_RECIPIENT.to_string()]))
}

/// Recipients of a case record: what the case's current consent allows, the author device, the
/// team devices. `None` when the record must not travel (identity without caseworker consent).
fn case_recipients(
    tx: &mut Tx<'_>,
    entry: &Entry,
    record_id: RecordId,
    mut content: String,
) -> Result<Option<Packed>, SyncError> {
    let case_id = match entry.kind {
        EntryKind::Consent | EntryKind::Interview => {
            let r: CaseRef = serde_json::from_str(&content).map_err(|_| StoreError::Shape)?;
            RecordId::parse(&r.case_id).ok_or(StoreError::Shape)?
        }
        EntryKind::Attachment => {
            // Signed content = metadata + blob address and size (`media::AttachmentMeta`).
            let (meta, case_id) = media::attachment_content(tx, entry, &content)?;
            content = meta;
            case_id
        }
        _ => record_id,
    };
    let scopes = consent::current_in(tx, case_id)?
        .map(|c| c.scopes)
        .unwrap_or_default();
    let caseworkers_ok = scopes.contains(&Scope::ShareCaseworkers);
    if entry.kind == EntryKind::Identity && !caseworkers_ok {
        return Ok(None);
    }
    let mut recipients = vec![attachments::device_identity(tx)?.to_public()];
    // The recipients in force (rotated groups included), not `org.pub`'s first ones.
    let org = attachments::org_recipients_in(tx)?;
    for (group, scope) in GROUPS {
        let allowed = if entry.kind == EntryKind::Identity {
            group == "caseworkers"
        } else {
            scopes.contains(&scope)
        };
        if let (true, Some(text)) = (allowed, org.get(group)) {
            recipients
                .push(age::x25519::Recipient::from_str(text).map_err(|_| SyncError::Envelope)?);
        }
    }
    let mut route = vec![HQ_RECIPIENT.to_string()];
    let case_hex = case_id.to_string();
    let before_peers = recipients.len();
    if entry.kind != EntryKind::Identity || caseworkers_ok {
        for peer_id in tx.list(SYNC_PEERS)? {
            let peer: Peer = tx.require_json(SYNC_PEERS, peer_id)?.0;
            if peer.cases.contains(&case_hex) {
                recipients.push(
                    age::x25519::Recipient::from_str(&peer.age_recipient)
                        .map_err(|_| SyncError::Envelope)?,
                );
                route.push(peer.device_id);
            }
        }
    }
    // Team devices' stanzas first: age gives no key hint, so a receiver tries one X25519 per
    // stanza until its own; phones should find theirs first (HQ's servers can afford the rest).
    let peers = recipients.len() - before_peers;
    recipients.rotate_right(peers);
    Ok(Some((content, recipients, route)))
}

/// Builds the envelope of one outbox entry (or none, when consent allows nobody).
pub(super) fn prepare_entry(
    tx: &mut Tx<'_>,
    entry: &Entry,
    state: &State,
    key: &Ed25519KeyPair,
) -> Result<Vec<Envelope>, SyncError> {
    let (Some(collection), Some(record_id)) = (
        collection_named(&entry.collection),
        RecordId::parse(&entry.record),
    ) else {
        return Ok(Vec::new());
    };
    let Some(record) = tx.get(collection, record_id)? else {
        return Ok(Vec::new()); // the record is gone: nothing to send
    };
    let content =
        String::from_utf8(record.value.expose().to_vec()).map_err(|_| StoreError::Shape)?;
    let (content, recipients, route) = match entry.kind {
        // An HQ installation's own audit chain stays in its vault (`sync::hq`): sent, it would
        // only come back to itself, a little more on every pull.
        EntryKind::Audit if state.role == DeviceRole::Hq => return Ok(Vec::new()),
        EntryKind::Audit => hq_only(tx, content, &["caseworkers"])?,
        // Sealed to `caseworkers` like audit entries: case management (which refers cases)
        // holds it; no other group learns the team's devices.
        EntryKind::Device => {
            let profile = DeviceProfile {
                device_id: state.device_id.clone(),
                signing_public_key: amanat_protocol::to_hex(key.public_key().as_ref()),
                age_recipient: attachments::device_identity(tx)?.to_public().to_string(),
            };
            let content = serde_json::to_string(&profile).map_err(|_| StoreError::Shape)?;
            hq_only(tx, content, &["caseworkers"])?
        }
        EntryKind::Withdrawal => {
            let consent: consent::Consent =
                serde_json::from_str(&content).map_err(|_| StoreError::Shape)?;
            let notice = WithdrawalNotice {
                case_id: consent.case_id,
                consent_id: entry.record.clone(),
                consent_version: consent.version,
                withdrawn: consent.withdrawn,
                scopes: consent.scopes,
            };
            let content = serde_json::to_string(&notice).map_err(|_| StoreError::Shape)?;
            hq_only(tx, content, &GROUPS.map(|(g, _)| g))?
        }
        _ => match case_recipients(tx, entry, record_id, content)? {
            Some(r) => r,
            None => return Ok(Vec::new()),
        },
    };
    // The per-record chain: each envelope names the content hash of the previous one.
    let chain = chain_id(entry.kind, &entry.record);
    let head: Option<(ChainHead, u64)> = tx.get_json(SYNC_CHAIN, chain)?;
    let mut signed = SignedRecord {
        format: envelope::FORMAT,
        envelope_id: new_envelope_id(tx),
        kind: entry.kind.as_str().to_string(),
        record_id: entry.record.clone(),
        version: record.version,
        hlc: Hlc::next(tx)?,
        author: String::new(),
        author_key: String::new(),
        prev_hash: head.as_ref().map(|(h, _)| h.hash.clone()),
        content_hash: String::new(),
        content,
        signature: String::new(),
    };
    envelope::sign(&mut signed, key);
    let new_head = ChainHead {
        version: signed.version,
        hash: signed.content_hash.clone(),
    };
    match head {
        Some((_, v)) => {
            tx.update_json(SYNC_CHAIN, chain, v, &new_head)?;
        }
        None => tx.insert_json_with_id(SYNC_CHAIN, chain, &new_head)?,
    }
    let payload = envelope::seal(&signed, &recipients).map_err(|_| SyncError::Envelope)?;
    Ok(vec![Envelope {
        id: signed.envelope_id.clone(),
        recipients: route,
        payload: base64::engine::general_purpose::STANDARD.encode(payload),
    }])
}

/// Outbox entries prepared per store transaction: one commit per entry was most of the cost of a
/// large outbox. Also the unit of progress reports and cancellation checks in the prepare phase.
const PREPARE_BATCH: usize = 64;

/// Prepares envelopes for every queued entry that has none yet, [`PREPARE_BATCH`] entries per
/// transaction (each entry, its envelope and its chain head commit together); the queue is
/// walked by id, so memory does not grow with it. Reports [`Phase::Prepare`] progress (`total`
/// counts every queued entry, wedged ones included) and honours cancellation between batches.
/// Returns how many were withheld, and the interruption if the caller cancelled (entries not yet
/// prepared stay queued as they were; prepared ones keep their envelope, so the next run sends
/// the same bytes).
pub(super) fn prepare_all(ctx: &Ctx<'_>) -> Result<(u64, Option<Interruption>), SyncError> {
    let (store, key) = (ctx.store, &ctx.key);
    let ids = store.read(outbox::ids)?;
    let total = ids.len() as u64;
    let mut withheld = 0;
    let mut done = 0u64;
    ctx.progress(Phase::Prepare, 0, total);
    // Several entries per transaction (one commit each was most of the cost of a large outbox);
    // each entry, its envelope and its chain head still commit together.
    for window in ids.chunks(PREPARE_BATCH) {
        if let Some(why) = ctx.cancelled() {
            return Ok((withheld, Some(why)));
        }
        withheld += store.write(|tx| {
            let (state, _) = load_state(tx)?;
            let mut withheld = 0;
            for id in window {
                let Some(entry) = outbox::get(tx, *id)? else {
                    continue;
                };
                if entry.wedged.is_some() || tx.get(SYNC_PREPARED, entry.id())?.is_some() {
                    continue;
                }
                let envelopes = prepare_entry(tx, &entry, &state, key)?;
                if envelopes.is_empty() {
                    outbox::remove(tx, entry.seq)?;
                    withheld += 1;
                    continue;
                }
                tx.insert_json_with_id(SYNC_PREPARED, entry.id(), &Prepared { envelopes })?;
            }
            Ok::<_, SyncError>(withheld)
        })?;
        done += window.len() as u64;
        ctx.progress(Phase::Prepare, done, total);
    }
    Ok((withheld, None))
}
