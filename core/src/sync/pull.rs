//! Pull and apply: pages after the persisted cursor, each applied in one transaction with the
//! cursor advance; what fails verification is quarantined.

use super::*;

/// Decrypts, verifies, checks the chain and applies one pulled envelope inside the page's
/// transaction; returns what to keep of it and how many fields it put in a new clash, or the
/// quarantine reason if it is refused.
pub(super) fn receive(
    tx: &mut Tx<'_>,
    state: &State,
    identities: &[age::x25519::Identity],
    env: &amanat_protocol::PulledEnvelope,
) -> Result<Received, SyncError> {
    match open_payload(env, identities) {
        Ok(plain) => receive_plain(tx, state, env, &plain),
        Err(code) => Ok(Err(code)),
    }
}

/// What [`receive`] made of an envelope: the record applied and the fields it put in a new
/// clash, or the quarantine reason.
pub(super) type Received = Result<(custody::AppliedRecord, u64), &'static str>;

/// Decodes and decrypts a pulled payload with whichever identity opens it.
pub(super) fn open_payload(
    env: &amanat_protocol::PulledEnvelope,
    identities: &[age::x25519::Identity],
) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let payload = base64::engine::general_purpose::STANDARD
        .decode(&env.payload)
        .map_err(|_| OpenError::Malformed.code())?;
    envelope::decrypt_any(&payload, identities).map_err(|e| e.code())
}

/// [`receive`] after decryption: the record must be signed by the relay-authenticated sender,
/// under the envelope id it was delivered with.
pub(super) fn receive_plain(
    tx: &mut Tx<'_>,
    state: &State,
    env: &amanat_protocol::PulledEnvelope,
    plain: &[u8],
) -> Result<Received, SyncError> {
    let record = match envelope::parse(plain) {
        Ok(r) => r,
        Err(e) => return Ok(Err(e.code())),
    };
    if let Err(e) = envelope::verify(&record) {
        return Ok(Err(e.code()));
    }
    if record.envelope_id != env.id {
        return Ok(Err(OpenError::WrongEnvelopeId.code()));
    }
    if record.author != env.sender {
        return Ok(Err(OpenError::WrongAuthor.code()));
    }
    receive_record(tx, state, &record, env)
}

/// Applies a verified record whose envelope checks passed (pulled, or forwarded inside a case
/// assignment, `sync::orders`): the author must be trusted, the record must join its chain and
/// obey the store's rules.
pub(super) fn receive_record(
    tx: &mut Tx<'_>,
    state: &State,
    record: &SignedRecord,
    env: &amanat_protocol::PulledEnvelope,
) -> Result<Received, SyncError> {
    // Trusted authors: this device itself, and team devices it registered ([`share_case`]). HQ
    // receives from every device of the organisation: it pins each author's key on first sight
    // (`hq::pin_author`; docs/HQ.md, "Which devices HQ trusts").
    let hq = state.role == DeviceRole::Hq;
    if hq && record.author != state.device_id {
        hq::pin_author(tx, &record.author, &record.author_key)?;
    }
    let peer = match RecordId::parse(&record.author) {
        Some(id) if record.author != state.device_id => tx
            .get_json::<Peer>(SYNC_PEERS, id)?
            .filter(|(p, _)| p.signing_public_key == record.author_key)
            .map(|(p, version)| (id, p, version)),
        _ => None,
    };
    if record.author != state.device_id && peer.is_none() {
        return Ok(Err(OpenError::UnknownAuthor.code()));
    }
    // The per-record chain from this author (custody module: gap ≠ fork).
    let chain_key = custody::recv_chain_id(&record.author, &record.kind, &record.record_id);
    let held: Option<(custody::RecvChain, u64)> = tx.get_json(SYNC_CHAIN, chain_key)?;
    let mut chain = held.as_ref().map(|(c, _)| c.clone()).unwrap_or_default();
    let prev = record.prev_hash.as_deref();
    let link = match custody::link(&chain, prev, &record.content_hash) {
        Ok(l) => l,
        Err(code) => return Ok(Err(code)),
    };
    let new_clashes = if EntryKind::parse(&record.kind) == Some(EntryKind::Attachment) {
        // Recorded as a pending download; the attachment exists once its blob is checked.
        match media::receive_meta(tx, record, env)? {
            Some(code) => return Ok(Err(code)),
            None => 0,
        }
    } else {
        match apply::apply(tx, record, hq)? {
            Ok(n) => n,
            Err(code) => return Ok(Err(code)),
        }
    };
    custody::advance(&mut chain, prev, &record.content_hash, link);
    match held {
        Some((_, version)) => {
            tx.update_json(SYNC_CHAIN, chain_key, version, &chain)?;
        }
        None => tx.insert_json_with_id(SYNC_CHAIN, chain_key, &chain)?,
    }
    // Learn which HLC clock the peer writes with, so clashes can name it.
    // Read again: applying may have changed the peer (HQ keeps a device's profile on it).
    if let Some((id, _, _)) = peer {
        if let Some((mut p, version)) = tx.get_json::<Peer>(SYNC_PEERS, id)? {
            if p.clocks.insert(crate::fsutil::to_hex(&record.hlc.node.0)) {
                tx.update_json(SYNC_PEERS, id, version, &p)?;
            }
        }
    }
    Ok(Ok((
        custody::AppliedRecord::new(record, env.seq, link),
        new_clashes,
    )))
}

/// Record id of a quarantined envelope: the first 16 bytes of SHA-256(id ‖ 0 ‖ payload), so the
/// same envelope delivered again maps to the same record.
pub(super) fn quarantine_key(env: &amanat_protocol::PulledEnvelope) -> RecordId {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(env.id.as_bytes());
    ctx.update(&[0]);
    ctx.update(env.payload.as_bytes());
    let mut id = [0u8; 16];
    id.copy_from_slice(&ctx.finish().as_ref()[..16]);
    RecordId::from_bytes(id)
}

/// Keeps a refused envelope, once per (id, bytes): a relay replaying what was refused adds nothing
/// (other bytes under the same id are another envelope, judged on their own).
fn quarantine(
    tx: &mut Tx<'_>,
    env: &amanat_protocol::PulledEnvelope,
    reason: &str,
    count: &mut u64,
) -> Result<(), SyncError> {
    let key = quarantine_key(env);
    if tx.get(SYNC_QUARANTINE, key)?.is_some() {
        return Ok(());
    }
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
    *count += 1;
    Ok(())
}

/// Pulls every page after the persisted cursor; each page is applied in one transaction with the
/// cursor advance.
pub(super) fn pull_all(
    ctx: &Ctx<'_>,
    report: &mut SyncReport,
) -> Result<Option<Interruption>, SyncError> {
    let mut done = 0u64;
    loop {
        if let Some(why) = ctx.cancelled() {
            return Ok(Some(why));
        }
        let cursor = ctx.store.read(load_state)?.0.cursor;
        let path = format!("/v1/envelopes?after={cursor}&limit={PULL_PAGE}");
        let body = match ctx.send("GET", &path, Vec::new())? {
            Answer::Ok(body) => body,
            Answer::Transient(why) => return Ok(Some(why)),
            Answer::Revoked(body) => {
                obey_revocation(ctx.vault, &ctx.state, &body)?;
                return Ok(None);
            }
            Answer::Refused { status, code } => return Err(SyncError::Rejected { status, code }),
        };
        let page: PullResponse =
            serde_json::from_slice(&body).map_err(|_| SyncError::UnexpectedResponse)?;
        // A cursor going backwards, or `more` without the cursor moving, would have the device
        // re-read or loop forever at a hostile relay's bidding: refused, nothing applied.
        if page.next_after < cursor || (page.more && page.next_after == cursor) {
            return Err(SyncError::UnexpectedResponse);
        }
        let (pulled, quarantined, clashes) = ctx.store.write(|tx| {
            let (mut state, version) = load_state(tx)?;
            let hq = state.role == DeviceRole::Hq;
            let identities = hq::receiving_identities(tx)?;
            let (mut pulled, mut quarantined, mut clashes) = (0u64, 0u64, 0u64);
            for env in &page.envelopes {
                // An id that is no UUID cannot be the one its author signed: quarantined like
                // any other bad envelope, so it cannot stall the page (and every later sync).
                let reason = match uuid::Uuid::parse_str(&env.id) {
                    Ok(uuid) => {
                        let applied_id = RecordId::from_bytes(*uuid.as_bytes());
                        // An HQ receipt or an organisation order (signed statements, not records).
                        if let Ok(bytes) =
                            base64::engine::general_purpose::STANDARD.decode(&env.payload)
                        {
                            let handled = match retention::receive(tx, &state, &bytes)? {
                                Some(r) => Some(r),
                                None => {
                                    orders::receive(tx, &state, applied_id, env, &bytes, false)?
                                }
                            };
                            match handled {
                                None => {}
                                Some(Ok(())) => continue,
                                Some(Err(reason)) => {
                                    quarantine(tx, env, reason, &mut quarantined)?;
                                    continue;
                                }
                            }
                        }
                        let applied_before = tx.get(SYNC_APPLIED, applied_id)?.is_some();
                        // HQ keeps every envelope as delivered, first (the evidentiary original):
                        // the same bytes again are a redelivery; other bytes under a kept id are
                        // judged, and whatever fails is quarantined (evidence of tampering), the
                        // original untouched. A device keeps no originals: an id it applied is
                        // skipped, whatever the bytes (at-least-once delivery, or a replay).
                        let kept = if hq {
                            hq::keep_original(tx, applied_id, env)?
                        } else if applied_before {
                            continue;
                        } else {
                            // Judged like other bytes: undecryptable is a quarantine on a device.
                            hq::Kept::Other
                        };
                        if kept == hq::Kept::Again {
                            continue;
                        }
                        let opened = open_payload(env, &identities);
                        // An order sealed to this device (a case assignment names cases).
                        if let Ok(plain) = &opened {
                            if let Some(outcome) =
                                orders::receive(tx, &state, applied_id, env, plain, true)?
                            {
                                let status = match outcome {
                                    Ok(()) => hq::OriginalStatus::Applied,
                                    Err(reason) => {
                                        quarantine(tx, env, reason, &mut quarantined)?;
                                        hq::OriginalStatus::Quarantined
                                    }
                                };
                                if hq {
                                    hq::mark(tx, applied_id, status)?;
                                }
                                continue;
                            }
                        }
                        let received = match opened {
                            Ok(plain) => receive_plain(tx, &state, env, &plain)?,
                            Err(code) => Err(code),
                        };
                        match received {
                            // Re-sealed bytes of a record HQ applied already: nothing new.
                            Ok(_) if applied_before => continue,
                            Ok((applied, new_clashes)) => {
                                // Kept for custody verification: the signed fields, not the
                                // content.
                                tx.insert_json_with_id(SYNC_APPLIED, applied_id, &applied)?;
                                if hq {
                                    hq::mark(tx, applied_id, hq::OriginalStatus::Applied)?;
                                }
                                pulled += 1;
                                clashes += new_clashes;
                                continue;
                            }
                            // At HQ an envelope for groups this installation holds no identity
                            // of is expected (separation of duties): kept encrypted, counted,
                            // not quarantined.
                            Err(reason)
                                if kept == hq::Kept::New
                                    && reason == OpenError::Undecryptable.code() =>
                            {
                                hq::mark(tx, applied_id, hq::OriginalStatus::Held)?;
                                continue;
                            }
                            Err(reason) => {
                                if hq {
                                    hq::mark(tx, applied_id, hq::OriginalStatus::Quarantined)?;
                                }
                                reason
                            }
                        }
                    }
                    Err(_) => OpenError::Malformed.code(),
                };
                quarantine(tx, env, reason, &mut quarantined)?;
            }
            state.cursor = page.next_after;
            tx.update_json(SYNC_STATE, STATE_ID, version, &state)?;
            Ok::<_, SyncError>((pulled, quarantined, clashes))
        })?;
        report.clashes += clashes;
        report.pulled += pulled;
        report.quarantined += quarantined;
        done += page.envelopes.len() as u64;
        ctx.progress(Phase::Pull, done, done);
        if !page.more {
            return Ok(None);
        }
    }
}
