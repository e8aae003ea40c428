//! Push: prepared entries in order, in batches; acks recorded in the transaction that removes
//! the entries; refused entries wedged.

use super::*;

pub(super) enum PushOutcome {
    Done,
    Interrupted(Interruption),
}

/// Pushes the entries `batch` (seq and envelopes) in one request and records the outcome.
pub(super) fn push_batch(
    ctx: &Ctx<'_>,
    batch: &[(u64, Vec<Envelope>)],
    report: &mut SyncReport,
) -> Result<PushOutcome, SyncError> {
    let envelopes: Vec<Envelope> = batch.iter().flat_map(|(_, e)| e.iter().cloned()).collect();
    let body = serde_json::to_vec(&PushRequest { envelopes }).map_err(|_| SyncError::Envelope)?;
    let store = ctx.store;
    match ctx.send("POST", "/v1/envelopes", body)? {
        Answer::Ok(body) => {
            let answer: PushResponse =
                serde_json::from_slice(&body).map_err(|_| SyncError::UnexpectedResponse)?;
            let acked: BTreeMap<&str, &amanat_protocol::PushAck> =
                answer.acks.iter().map(|a| (a.id.as_str(), a)).collect();
            store.write(|tx| {
                let (mut st, version) = load_state(tx)?;
                for (seq, envs) in batch {
                    if envs.iter().all(|e| acked.contains_key(e.id.as_str())) {
                        outbox::remove(tx, *seq)?;
                        tx.delete(SYNC_PREPARED, outbox::entry_id(*seq))?;
                        for e in envs {
                            if let Some(a) = acked.get(e.id.as_str()) {
                                st.last_ack_seq = st.last_ack_seq.max(a.seq);
                                report.pushed += 1;
                                if a.duplicate {
                                    report.duplicates += 1;
                                }
                            }
                        }
                    }
                }
                tx.update_json(SYNC_STATE, STATE_ID, version, &st)?;
                Ok::<_, SyncError>(())
            })?;
            Ok(PushOutcome::Done)
        }
        Answer::Transient(why) => Ok(PushOutcome::Interrupted(why)),
        Answer::Revoked(body) => {
            obey_revocation(ctx.vault, &ctx.state, &body).map(|_| PushOutcome::Done)
        }
        Answer::Refused { status, code } if status == 401 || status == 403 => {
            Err(SyncError::Rejected { status, code })
        }
        Answer::Refused { code, .. } => {
            if batch.len() > 1 {
                // Find the entry the relay refuses: each alone (the others go through).
                for one in batch {
                    if let PushOutcome::Interrupted(why) =
                        push_batch(ctx, std::slice::from_ref(one), report)?
                    {
                        return Ok(PushOutcome::Interrupted(why));
                    }
                }
                return Ok(PushOutcome::Done);
            }
            store.write(|tx| {
                for (seq, _) in batch {
                    outbox::mark_wedged(tx, *seq, &code)?;
                    report.wedged += 1;
                }
                Ok::<_, SyncError>(())
            })?;
            Ok(PushOutcome::Done)
        }
    }
}

/// Pushes every prepared, non-wedged entry in order, in batches. Walks the queue by id and loads
/// one batch of envelopes at a time, so memory does not grow with the queue.
pub(super) fn push_all(
    ctx: &Ctx<'_>,
    report: &mut SyncReport,
) -> Result<Option<Interruption>, SyncError> {
    let ids = ctx.store.read(outbox::ids)?;
    let total = ids.len() as u64;
    let (mut pos, mut done) = (0usize, 0u64);
    ctx.progress(Phase::Push, 0, total);
    while pos < ids.len() {
        if let Some(why) = ctx.cancelled() {
            return Ok(Some(why));
        }
        let (batch, next) = ctx.store.read(|tx| {
            let mut batch: Vec<(u64, Vec<Envelope>)> = Vec::new();
            let (mut count, mut bytes, mut i) = (0usize, 0usize, pos);
            while let Some(id) = ids.get(i) {
                let Some(entry) = outbox::get(tx, *id)? else {
                    i += 1;
                    continue;
                };
                let prepared = match entry.wedged {
                    Some(_) => None,
                    None => tx.get_json::<Prepared>(SYNC_PREPARED, entry.id())?,
                };
                let Some((p, _)) = prepared else {
                    i += 1;
                    continue;
                };
                let size: usize = p.envelopes.iter().map(|e| e.payload.len() + 128).sum();
                if !batch.is_empty()
                    && (count + p.envelopes.len() > PUSH_BATCH || bytes + size > PUSH_BATCH_BYTES)
                {
                    break;
                }
                count += p.envelopes.len();
                bytes += size;
                batch.push((entry.seq, p.envelopes));
                i += 1;
            }
            Ok::<_, StoreError>((batch, i))
        })?;
        done += (next - pos) as u64;
        pos = next;
        if batch.is_empty() {
            continue;
        }
        if let PushOutcome::Interrupted(why) = push_batch(ctx, &batch, report)? {
            return Ok(Some(why));
        }
        ctx.progress(Phase::Push, done, total);
    }
    Ok(None)
}
