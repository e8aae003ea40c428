//! Attachments over the relay's resumable blob API.
//!
//! An attachment travels in two parts. Its `.age` file — encrypted at capture to the author device,
//! the groups the case's consent allowed and the team devices the case was shared with — is the
//! **blob**, addressed by its ciphertext SHA-256 and moved in [`BLOB_CHUNK`] pieces. Its
//! **metadata** (attachment id, interview, question, media type, plaintext size and SHA-256,
//! ciphertext SHA-256 and size) travels as an ordinary signed envelope of kind `attachment`.
//!
//! Order on the sending device (one sync run): hash new attachment files ([`prepare_uploads`]),
//! prepare envelopes, push everything **except** attachment entries whose blob the relay has not
//! confirmed complete, upload blobs ([`upload_all`]), push the attachment entries whose blob is now
//! complete. So the metadata is never pushed before the relay verified the whole blob against its
//! address (`POST …/complete`): a receiver never gets metadata whose blob can never arrive. Text
//! records are not held back behind a large upload.
//!
//! Upload resumes from the relay's offset (`GET …/status`), never resending a chunk the relay
//! holds; memory is one chunk buffer whatever the size. The upload state (address, size, done) is
//! persisted per outbox entry (`sync_uploads`), so a restart neither re-hashes the file nor
//! re-uploads.
//!
//! On the receiving device a verified `attachment` envelope records a pending download
//! (`sync_downloads`) in the pull page's transaction. [`download_all`] then fetches the blob by
//! `Range` requests into `<id>.age.download` inside the vault's attachments folder (ciphertext
//! only), resuming from the local file's length; checks the ciphertext SHA-256 and size; decrypts
//! it as a stream with the device's identity to check the plaintext SHA-256 and size the author
//! signed; and only then gives the file its final name and records the attachment. A mismatch is
//! quarantined with a stable reason (`blob_hash_mismatch`, `attachment_hash_mismatch`,
//! `attachment_undecryptable`, `attachment_corrupt`), the file removed, nothing recorded.

use super::*;
use crate::fsutil;
use crate::names::collections::{ATTACHMENTS, INTERVIEWS, SYNC_DOWNLOADS, SYNC_UPLOADS};
use crate::names::files;
use crate::records::attachments::{AttachmentInfo, AttachmentReader, CHUNK_SIZE};
use crate::vault::layout;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Bytes per blob request, up and down: the relay's chunk limit (1 MiB). A transfer holds one
/// buffer of this size, whatever the file's size.
pub const BLOB_CHUNK: u64 = 1024 * 1024;

/// Largest blob the relay accepts (1 GiB); larger metadata is refused as malformed.
const MAX_BLOB: u64 = 1024 * 1024 * 1024;

/// How often one upload re-reads the relay's offset after a `409 offset_mismatch` before giving
/// up for this run.
const MAX_RESYNCS: u32 = 3;

/// The signed content of an `attachment` envelope: the attachment's metadata plus the case it
/// belongs to and its blob's address and size, so a receiver checks both the ciphertext it
/// downloads and the plaintext it decrypts against what the author signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    /// Id, interview, question, media type, plaintext size and plaintext SHA-256.
    #[serde(flatten)]
    pub info: AttachmentInfo,
    /// The case (hex id) the interview belongs to.
    pub case_id: String,
    /// SHA-256 (lowercase hex) of the `.age` file: the blob's address at the relay.
    pub blob_sha256: String,
    /// Size of the `.age` file in bytes.
    pub blob_size: u64,
}

/// Upload state of one attachment entry (`sync_uploads`, id = the outbox entry's id).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Upload {
    pub(super) attachment_id: String,
    pub(super) blob_sha256: String,
    pub(super) blob_size: u64,
    /// The relay confirmed the complete blob: the entry may be pushed.
    pub(super) done: bool,
}

/// A pending download (`sync_downloads`, id = the attachment id), with what a quarantine needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct Download {
    pub(super) meta: AttachmentMeta,
    pub(super) envelope_id: String,
    pub(super) seq: u64,
    pub(super) sender: String,
    pub(super) payload: String,
}

#[derive(Deserialize)]
struct BlobStatus {
    offset: u64,
    complete: bool,
}

#[derive(Deserialize)]
struct BlobOffset {
    offset: u64,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn chunks(size: u64) -> u64 {
    size.div_ceil(BLOB_CHUNK)
}

/// SHA-256 (hex) and length of a file, streamed in constant memory.
fn file_digest(path: &Path) -> io::Result<(String, u64)> {
    let mut file = File::open(path)?;
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = vec![0u8; CHUNK_SIZE as usize];
    let mut len = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok((fsutil::to_hex(hash.finish().as_ref()), len));
        }
        hash.update(&buf[..n]);
        len += n as u64;
    }
}

fn download_path(vault_dir: &Path, id: &str) -> PathBuf {
    layout::attachments_dir(vault_dir).join(format!("{id}{}", files::DOWNLOAD_SUFFIX))
}

/// For each queued attachment entry without upload state: hashes its `.age` file (outside any
/// transaction) and records address and size. An entry whose file is gone is wedged with
/// `attachment_file_missing` (its metadata would announce a blob that can never arrive).
pub(super) fn prepare_uploads(
    vault: &Vault,
    store: &Store,
    report: &mut SyncReport,
) -> Result<(), SyncError> {
    let todo = store.read(|tx| {
        outbox::filtered(tx, |tx, e| {
            Ok(e.kind == EntryKind::Attachment
                && e.wedged.is_none()
                && tx.get(SYNC_UPLOADS, e.id())?.is_none())
        })
    })?;
    for entry in todo {
        let path = layout::attachment_path(vault.dir(), &entry.record);
        if !path.exists() {
            // Completes a rename a crash interrupted, if the record committed.
            let _ = layout::complete_partial(vault.dir(), &entry.record);
        }
        let digest = match file_digest(&path) {
            Ok(d) => Some(d),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(AttachmentError::from(e).into()),
        };
        store.write(|tx| {
            match &digest {
                Some((sha, size)) => tx.insert_json_with_id(
                    SYNC_UPLOADS,
                    entry.id(),
                    &Upload {
                        attachment_id: entry.record.clone(),
                        blob_sha256: sha.clone(),
                        blob_size: *size,
                        done: false,
                    },
                )?,
                None => {
                    outbox::mark_wedged(tx, entry.seq, "attachment_file_missing")?;
                    report.wedged += 1;
                }
            }
            Ok::<_, SyncError>(())
        })?;
    }
    Ok(())
}

/// The signed content of an attachment entry and the case it belongs to (for recipients).
/// `stored` is the attachment's record as JSON.
pub(super) fn attachment_content(
    tx: &mut Tx<'_>,
    entry: &Entry,
    stored: &str,
) -> Result<(String, RecordId), SyncError> {
    let info: AttachmentInfo = serde_json::from_str(stored).map_err(|_| StoreError::Shape)?;
    let upload: Upload = tx
        .get_json(SYNC_UPLOADS, entry.id())?
        .map(|(u, _)| u)
        .ok_or(SyncError::Envelope)?;
    let interview = RecordId::parse(&info.interview_id).ok_or(StoreError::Shape)?;
    let record = tx.require(INTERVIEWS, interview)?;
    let r: CaseRef =
        serde_json::from_slice(record.value.expose()).map_err(|_| StoreError::Shape)?;
    let case_id = RecordId::parse(&r.case_id).ok_or(StoreError::Shape)?;
    let meta = AttachmentMeta {
        info,
        case_id: r.case_id,
        blob_sha256: upload.blob_sha256,
        blob_size: upload.blob_size,
    };
    let content = serde_json::to_string(&meta).map_err(|_| SyncError::Envelope)?;
    Ok((content, case_id))
}

/// Whether `entry` may be pushed now: any entry but an attachment's, whose blob must be complete
/// at the relay first.
pub(super) fn ready_to_push(tx: &mut Tx<'_>, entry: &Entry) -> Result<bool, StoreError> {
    if entry.kind != EntryKind::Attachment {
        return Ok(true);
    }
    Ok(tx
        .get_json::<Upload>(SYNC_UPLOADS, entry.id())?
        .is_some_and(|(u, _)| u.done))
}

/// Queued attachment entries (not wedged) whose blob the relay has not confirmed complete, in
/// queue order, with their upload state.
pub(super) fn pending_uploads(tx: &mut Tx<'_>) -> Result<Vec<(Entry, Upload)>, StoreError> {
    let mut out = Vec::new();
    let attachments = outbox::filtered(tx, |_, e| {
        Ok(e.kind == EntryKind::Attachment && e.wedged.is_none())
    })?;
    for e in attachments {
        if let Some((u, _)) = tx.get_json::<Upload>(SYNC_UPLOADS, e.id())? {
            if !u.done {
                out.push((e, u));
            }
        }
    }
    Ok(out)
}

enum Step {
    Done,
    Interrupted(Interruption),
    Refused(String),
}

/// Uploads the blob of every queued attachment entry not yet complete at the relay, in queue
/// order. A blob the relay refuses for good wedges its entry with the relay's code.
pub(super) fn upload_all(
    ctx: &Ctx<'_>,
    report: &mut SyncReport,
) -> Result<Option<Interruption>, SyncError> {
    let todo = ctx.store.read(pending_uploads)?;
    if todo.is_empty() {
        return Ok(None);
    }
    let total: u64 = todo.iter().map(|(_, u)| chunks(u.blob_size)).sum();
    let mut done = 0u64;
    ctx.progress(Phase::Upload, 0, total);
    for (entry, up) in todo {
        let before = done;
        let step = upload_one(ctx, &up, &mut done, total)?;
        done = before + chunks(up.blob_size);
        match step {
            Step::Done => ctx.store.write(|tx| {
                let (mut u, version): (Upload, u64) = tx.require_json(SYNC_UPLOADS, entry.id())?;
                u.done = true;
                tx.update_json(SYNC_UPLOADS, entry.id(), version, &u)?;
                Ok::<_, SyncError>(())
            })?,
            Step::Interrupted(why) => return Ok(Some(why)),
            Step::Refused(code) => ctx.store.write(|tx| {
                outbox::mark_wedged(tx, entry.seq, &code)?;
                report.wedged += 1;
                Ok::<_, SyncError>(())
            })?,
        }
        ctx.progress(Phase::Upload, done, total);
    }
    Ok(None)
}

/// `GET …/status` of a blob: `Ok((offset, complete))` or how the run must stop.
fn blob_status(ctx: &Ctx<'_>, sha: &str) -> Result<Result<(u64, bool), Step>, SyncError> {
    match ctx.send("GET", &format!("/v1/blobs/{sha}/status"), Vec::new())? {
        Answer::Ok(body) => {
            let st: BlobStatus =
                serde_json::from_slice(&body).map_err(|_| SyncError::UnexpectedResponse)?;
            Ok(Ok((st.offset, st.complete)))
        }
        other => refusal(ctx, other).map(Err),
    }
}

/// Maps an answer that is not a success to a step (or an error for device-level refusals).
fn refusal(ctx: &Ctx<'_>, answer: Answer) -> Result<Step, SyncError> {
    match answer {
        Answer::Ok(_) => Err(SyncError::UnexpectedResponse),
        Answer::Transient(why) => Ok(Step::Interrupted(why)),
        Answer::Revoked(body) => obey_revocation(ctx.vault, &ctx.state, &body).map(|_| Step::Done),
        Answer::Refused { status, code } if status == 401 || status == 403 => {
            Err(SyncError::Rejected { status, code })
        }
        Answer::Refused { code, .. } => Ok(Step::Refused(code)),
    }
}

/// One blob, from the relay's offset to the end, then `complete`.
fn upload_one(ctx: &Ctx<'_>, up: &Upload, done: &mut u64, total: u64) -> Result<Step, SyncError> {
    let sha = &up.blob_sha256;
    let size = up.blob_size;
    let (mut offset, complete) = match blob_status(ctx, sha)? {
        Ok(st) => st,
        Err(step) => return Ok(step),
    };
    if complete {
        return Ok(Step::Done);
    }
    if offset > size {
        // The relay claims more bytes than the file has: it can never complete under this
        // address. Wedged; the shell may retry after the relay was fixed.
        return Ok(Step::Refused("blob_offset_beyond_size".into()));
    }
    let path = layout::attachment_path(ctx.vault.dir(), &up.attachment_id);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Ok(Step::Refused("attachment_file_missing".into()))
        }
        Err(e) => return Err(AttachmentError::from(e).into()),
    };
    *done += offset / BLOB_CHUNK;
    let mut resyncs = 0u32;
    while offset < size {
        if let Some(why) = ctx.cancelled() {
            return Ok(Step::Interrupted(why));
        }
        let n = (size - offset).min(BLOB_CHUNK);
        // One buffer per request, moved into the request and dropped with it: memory stays at
        // one chunk whatever the file's size.
        let mut buf = vec![0u8; n as usize];
        file.seek(SeekFrom::Start(offset))
            .and_then(|_| file.read_exact(&mut buf))
            .map_err(AttachmentError::from)?;
        let path = format!("/v1/blobs/{sha}?offset={offset}");
        match ctx.send("PUT", &path, buf)? {
            Answer::Ok(body) => {
                let held: BlobOffset =
                    serde_json::from_slice(&body).map_err(|_| SyncError::UnexpectedResponse)?;
                if held.offset != offset + n {
                    return Err(SyncError::UnexpectedResponse);
                }
                offset = held.offset;
                *done += 1;
                ctx.progress(Phase::Upload, *done, total);
            }
            Answer::Refused { status: 409, code } if code == "offset_mismatch" => {
                // Another run (or a lost answer) moved the relay on: ask where it is.
                resyncs += 1;
                if resyncs > MAX_RESYNCS {
                    return Ok(Step::Refused(code));
                }
                match blob_status(ctx, sha)? {
                    Ok((_, true)) => return Ok(Step::Done),
                    Ok((held, false)) if held <= size => offset = held,
                    Ok(_) => return Ok(Step::Refused("blob_offset_beyond_size".into())),
                    Err(step) => return Ok(step),
                }
            }
            Answer::Refused { status: 409, code } if code == "blob_complete" => {
                return Ok(Step::Done)
            }
            other => return refusal(ctx, other),
        }
    }
    drop(file);
    match ctx.send("POST", &format!("/v1/blobs/{sha}/complete"), Vec::new())? {
        Answer::Ok(_) => Ok(Step::Done),
        Answer::Refused { status: 409, code } if code == "blob_complete" => Ok(Step::Done),
        // 422 hash_mismatch: the relay discarded what it held; the entry is wedged with that
        // code and a retry uploads from the start.
        other => refusal(ctx, other),
    }
}

/// Records the metadata of a verified, trusted `attachment` envelope as a pending download, in
/// the pull page's transaction. Returns a quarantine reason if the metadata is unusable.
pub(super) fn receive_meta(
    tx: &mut Tx<'_>,
    record: &SignedRecord,
    env: &amanat_protocol::PulledEnvelope,
) -> Result<Option<&'static str>, SyncError> {
    let Ok(meta) = serde_json::from_str::<AttachmentMeta>(&record.content) else {
        return Ok(Some("malformed_content"));
    };
    let Some(id) = RecordId::parse(&record.record_id) else {
        return Ok(Some("malformed_content"));
    };
    let well_formed = meta.info.id == record.record_id
        && RecordId::parse(&meta.info.interview_id).is_some()
        && RecordId::parse(&meta.case_id).is_some()
        && is_hex64(&meta.info.sha256)
        && is_hex64(&meta.blob_sha256)
        && (1..=MAX_BLOB).contains(&meta.blob_size)
        && (meta.info.media_type.starts_with("audio/")
            || meta.info.media_type.starts_with("image/"));
    if !well_formed {
        return Ok(Some("malformed_content"));
    }
    crate::journal::hlc::Hlc::observe(tx, record.hlc)?;
    // Immutable: the same attachment again is a duplicate; other hashes under its id, a forgery.
    if let Some((held, _)) = tx.get_json::<AttachmentInfo>(ATTACHMENTS, id)? {
        return Ok((held.sha256 != meta.info.sha256).then_some("conflicting_version"));
    }
    if let Some((held, _)) = tx.get_json::<Download>(SYNC_DOWNLOADS, id)? {
        return Ok((held.meta != meta).then_some("conflicting_version"));
    }
    tx.insert_json_with_id(
        SYNC_DOWNLOADS,
        id,
        &Download {
            meta,
            envelope_id: env.id.clone(),
            seq: env.seq,
            sender: env.sender.clone(),
            payload: env.payload.clone(),
        },
    )?;
    Ok(None)
}

/// Downloads, checks and records every pending attachment. A blob the relay does not hold
/// complete yet stays pending for a later run.
pub(super) fn download_all(
    ctx: &Ctx<'_>,
    report: &mut SyncReport,
) -> Result<Option<Interruption>, SyncError> {
    let pending = ctx.store.read(|tx| {
        let mut out = Vec::new();
        for id in tx.list(SYNC_DOWNLOADS)? {
            out.push((id, tx.require_json::<Download>(SYNC_DOWNLOADS, id)?.0));
        }
        Ok::<_, StoreError>(out)
    })?;
    remove_stray_downloads(ctx.vault.dir(), &pending);
    if pending.is_empty() {
        return Ok(None);
    }
    fsutil::create_private_dir(&layout::attachments_dir(ctx.vault.dir()))
        .map_err(AttachmentError::from)?;
    let total: u64 = pending.iter().map(|(_, d)| chunks(d.meta.blob_size)).sum();
    let mut done = 0u64;
    ctx.progress(Phase::Download, 0, total);
    for (id, d) in pending {
        let before = done;
        let fetched = download_one(ctx, &d, &mut done, total)?;
        done = before + chunks(d.meta.blob_size);
        match fetched {
            Fetch::Complete(path) => {
                if let Some(reason) = verify_and_record(ctx, id, &d, &path)? {
                    quarantine(ctx, id, &d, &path, reason)?;
                    report.quarantined += 1;
                }
            }
            Fetch::Mismatch(path) => {
                quarantine(ctx, id, &d, &path, "blob_hash_mismatch")?;
                report.quarantined += 1;
            }
            Fetch::Undecryptable(path) => {
                quarantine(ctx, id, &d, &path, "attachment_undecryptable")?;
                report.quarantined += 1;
            }
            Fetch::NotYet => {}
            Fetch::Interrupted(why) => return Ok(Some(why)),
        }
        ctx.progress(Phase::Download, done, total);
    }
    Ok(None)
}

/// Removes `.age.download` files no pending download owns (left by a quarantine or an apply that
/// a crash interrupted after its commit).
fn remove_stray_downloads(vault_dir: &Path, pending: &[(RecordId, Download)]) {
    let Ok(entries) = std::fs::read_dir(layout::attachments_dir(vault_dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(id) = name.strip_suffix(files::DOWNLOAD_SUFFIX) {
            if !pending.iter().any(|(_, d)| d.meta.info.id == id) {
                let _ = fsutil::remove(&entry.path());
            }
        }
    }
}

enum Fetch {
    /// The whole blob is in the download file.
    Complete(PathBuf),
    /// The relay's blob is not the size the author signed.
    Mismatch(PathBuf),
    /// The age header (in the first chunk) has no stanza for this device: fetching the rest
    /// would be wasted (a team device the case was shared with after capture).
    Undecryptable(PathBuf),
    /// The relay does not hold it complete (yet).
    NotYet,
    Interrupted(Interruption),
}

/// Fetches the rest of one blob into its download file by `Range` requests of [`BLOB_CHUNK`],
/// from the file's current length.
fn download_one(
    ctx: &Ctx<'_>,
    d: &Download,
    done: &mut u64,
    total: u64,
) -> Result<Fetch, SyncError> {
    let path = download_path(ctx.vault.dir(), &d.meta.info.id);
    let size = d.meta.blob_size;
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(AttachmentError::from)?;
    let mut have = file.metadata().map_err(AttachmentError::from)?.len();
    if have > size {
        file.set_len(0).map_err(AttachmentError::from)?;
        have = 0;
    }
    *done += have / BLOB_CHUNK;
    let sha = &d.meta.blob_sha256;
    while have < size {
        if let Some(why) = ctx.cancelled() {
            return Ok(Fetch::Interrupted(why));
        }
        let last = (have + BLOB_CHUNK).min(size) - 1;
        let range = ("range".to_string(), format!("bytes={have}-{last}"));
        match ctx.send_with("GET", &format!("/v1/blobs/{sha}"), Vec::new(), &[range])? {
            Answer::Ok(body) => {
                let want = last - have + 1;
                if (body.len() as u64) < want {
                    // The relay clamps a range to the blob's end: the blob is shorter than the
                    // author signed, so it can never match (a peer's lie, or a relay's).
                    return Ok(Fetch::Mismatch(path));
                }
                if body.len() as u64 > want {
                    return Err(SyncError::UnexpectedResponse);
                }
                file.write_all(&body)
                    .and_then(|_| file.sync_data())
                    .map_err(AttachmentError::from)?;
                let first = have == 0;
                have += body.len() as u64;
                *done += 1;
                ctx.progress(Phase::Download, *done, total);
                if first && !has_key(ctx, &path)? {
                    return Ok(Fetch::Undecryptable(path));
                }
            }
            // Shorter than signed: never the blob the author announced.
            Answer::Refused { status: 416, .. } => return Ok(Fetch::Mismatch(path)),
            Answer::Refused { status: 404, .. } => return Ok(Fetch::NotYet),
            other => {
                return match refusal(ctx, other)? {
                    Step::Interrupted(why) => Ok(Fetch::Interrupted(why)),
                    // Another refusal (e.g. a malformed address): try again in a later run.
                    Step::Done | Step::Refused(_) => Ok(Fetch::NotYet),
                };
            }
        }
    }
    Ok(Fetch::Complete(path))
}

/// Whether the age header at the start of `path` (a partial download) holds a stanza for this
/// device. Anything but a clear "no matching key" counts as yes: the full checks come at the end.
fn has_key(ctx: &Ctx<'_>, path: &Path) -> Result<bool, SyncError> {
    let identities = ctx.store.write(super::hq::receiving_identities)?;
    Ok(!matches!(
        AttachmentReader::open_file(path, &identities),
        Err(AttachmentError::NoMatchingKey)
    ))
}

/// Checks a complete download against the signed metadata; if it holds, records the attachment
/// and puts the file in place. Returns the quarantine reason otherwise.
fn verify_and_record(
    ctx: &Ctx<'_>,
    id: RecordId,
    d: &Download,
    path: &Path,
) -> Result<Option<&'static str>, SyncError> {
    let (sha, len) = file_digest(path).map_err(AttachmentError::from)?;
    // Public values (the relay knows the address): a plain comparison is enough.
    if len != d.meta.blob_size || sha != d.meta.blob_sha256 {
        return Ok(Some("blob_hash_mismatch"));
    }
    // Decrypt as a stream (64 KiB at a time, nothing written) to check the plaintext hash.
    let identities = ctx.store.write(super::hq::receiving_identities)?;
    let mut reader = match AttachmentReader::open_file(path, &identities) {
        Ok(r) => r,
        Err(AttachmentError::NoMatchingKey) => return Ok(Some("attachment_undecryptable")),
        Err(AttachmentError::Io(kind)) => return Err(AttachmentError::Io(kind).into()),
        Err(_) => return Ok(Some("attachment_corrupt")),
    };
    drop(identities);
    let mut hash = ring::digest::Context::new(&ring::digest::SHA256);
    let mut buf = Zeroizing::new(vec![0u8; CHUNK_SIZE as usize]);
    let mut plain_len = 0u64;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hash.update(&buf[..n]);
                plain_len += n as u64;
            }
            Err(AttachmentError::Io(kind)) => return Err(AttachmentError::Io(kind).into()),
            Err(_) => return Ok(Some("attachment_corrupt")),
        }
    }
    drop(reader);
    let plain_sha = fsutil::to_hex(hash.finish().as_ref());
    if plain_len != d.meta.info.size || plain_sha != d.meta.info.sha256 {
        return Ok(Some("attachment_hash_mismatch"));
    }
    // Checked: the same steps as a capture. The complete, synced file takes the partial name,
    // the record commits, then the final rename (a crash in between is reconciled by unlock).
    let dir = ctx.vault.dir();
    let partial = layout::partial_path(dir, &d.meta.info.id);
    std::fs::rename(path, &partial)
        .and_then(|_| fsutil::sync_parent(&partial))
        .map_err(AttachmentError::from)?;
    ctx.store.write(|tx| {
        if tx.get(ATTACHMENTS, id)?.is_none() {
            tx.insert_json_with_id(ATTACHMENTS, id, &d.meta.info)?;
        }
        tx.delete(SYNC_DOWNLOADS, id)?;
        Ok::<_, SyncError>(())
    })?;
    let _ = layout::complete_partial(dir, &d.meta.info.id);
    Ok(None)
}

/// Removes the downloaded file, then records the quarantine and drops the pending download in one
/// transaction (a crash in between downloads and refuses it again).
fn quarantine(
    ctx: &Ctx<'_>,
    id: RecordId,
    d: &Download,
    path: &Path,
    reason: &'static str,
) -> Result<(), SyncError> {
    fsutil::remove(path).map_err(AttachmentError::from)?;
    ctx.store.write(|tx| {
        tx.insert_json(
            SYNC_QUARANTINE,
            &Quarantined {
                envelope_id: d.envelope_id.clone(),
                seq: d.seq,
                sender: d.sender.clone(),
                reason: reason.to_string(),
                payload: d.payload.clone(),
            },
        )?;
        tx.delete(SYNC_DOWNLOADS, id)?;
        Ok::<_, SyncError>(())
    })
}

/// Attachments announced to this device whose blob is not downloaded and checked yet.
pub fn pending_downloads(vault: &Vault) -> Result<u64, SyncError> {
    Ok(vault.store()?.read(|tx| tx.list(SYNC_DOWNLOADS))?.len() as u64)
}
