//! Background uploads: blob chunks signed while the vault is open, sent by the phone's system
//! uploader (iOS background `URLSession`) after the vault locked.
//!
//! Why: a field worker records a 40-minute interview, locks the phone and walks on. The vault's
//! data key is gone at lock, so the core can sign and decrypt nothing until the next unlock — but
//! the attachment's `.age` file is already ciphertext for the relay. So, just before the lock, the
//! shell asks for a **plan**: each pending attachment's ciphertext cut into the relay's 1 MiB
//! chunks, each chunk copied to its own file under `<vault>/uploads/` and paired with a
//! **deferred** request signature (`AMANAT-DEFERRED-V1`, valid up to 72 h, docs/PROTOCOL.md
//! "Deferred requests"). The system sends the files whenever it likes; after each answer the
//! shell asks [`background_next`] which chunk follows. The rules live here, not in Swift.
//!
//! What the plan does **not** do: `POST …/complete` and the push of the attachment's metadata
//! envelope stay with the next unlocked sync, which finds the chunks at the relay (`GET …/status`)
//! and sends none of them again. So the relay never gets metadata before the device checked the
//! blob complete, exactly as in a foreground run ([`super::media`]), and nothing is acknowledged
//! behind the outbox's back: a plan only moves bytes earlier.
//!
//! What is on disk: chunk files of ciphertext (random names) and `plan.json` (blob addresses,
//! sizes, the relay URL, the signed headers — no survivor data, no key). The folder is inside the
//! vault directory, so a panic wipe removes it; the iOS shell gives it the file protection class
//! `completeUntilFirstUserAuthentication` (the system reads the files while the phone is locked),
//! every other vault file keeps `complete`. A new plan replaces the old one; the next unlock
//! discards it ([`discard_background_uploads`]).

use super::media::BLOB_CHUNK;
use super::*;
use crate::fsutil;
use crate::names::files;
use crate::vault::layout;
use amanat_protocol::{MAX_CLOCK_SKEW_MS, MAX_DEFERRED_MS};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The plan's file inside the uploads folder.
const PLAN_FILE: &str = "plan.json";
/// Version of `plan.json`; a plan of another version is ignored (as if none).
const PLAN_VERSION: u32 = 1;
/// How often one chunk is tried after a transient answer (429, 5xx, no answer) before the plan
/// leaves it to the next unlocked sync.
pub const BACKGROUND_MAX_ATTEMPTS: u32 = 3;

/// What a shell hands to the system uploader: pending blobs cut into signed chunk requests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundPlan {
    /// Format version ([`PLAN_VERSION`]).
    pub version: u32,
    /// The relay's base URL (`https://host[:port]`), from enrollment.
    pub relay_url: String,
    /// When the signatures stop being valid (ms since the epoch, vault clock).
    pub expires_ms: u64,
    /// One entry per blob, in outbox order.
    pub uploads: Vec<BackgroundUpload>,
}

/// One blob of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundUpload {
    /// The blob's address (SHA-256 of the `.age` file, lowercase hex).
    pub blob_sha256: String,
    /// Its size in bytes.
    pub blob_size: u64,
    /// Its chunks from offset 0, in order (maybe not to the end: a plan has a byte budget).
    pub chunks: Vec<BackgroundChunk>,
}

/// One signed `PUT /v1/blobs/{sha}?offset=N` whose body is a file of the uploads folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackgroundChunk {
    /// Offset of the chunk in the blob.
    pub offset: u64,
    /// Its length (the body's size).
    pub len: u64,
    /// File name inside the uploads folder ([`uploads_dir`]); random, says nothing.
    pub file: String,
    /// Request target (`/v1/blobs/{sha}?offset=N`), appended to [`BackgroundPlan::relay_url`].
    pub path: String,
    /// Every header to send: the five deferred-signature headers and the content type.
    pub headers: Vec<(String, String)>,
}

/// What the shell does after a chunk's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackgroundStep {
    /// Send this chunk (`attempt` starts at 1; a retry of the same chunk counts up).
    Upload {
        /// The chunk to send.
        chunk: BackgroundChunk,
        /// Which try of this chunk it is.
        attempt: u32,
    },
    /// The relay holds the whole blob: nothing more for it until the next unlocked sync.
    Finished,
    /// Stop sending this blob; the next unlocked sync resumes it from the relay's offset.
    Stop,
}

/// The uploads folder of the vault in `vault_dir`.
pub fn uploads_dir(vault_dir: &Path) -> PathBuf {
    vault_dir.join(files::UPLOADS_DIR)
}

fn io_error(e: io::Error) -> SyncError {
    AttachmentError::from(e).into()
}

fn random_name() -> Result<String, SyncError> {
    let mut bytes = [0u8; 16];
    crate::crypto::os_random(&mut bytes).map_err(|_| SyncError::Key)?;
    Ok(format!("{}.chunk", fsutil::to_hex(&bytes)))
}

/// Writes a new plan (replacing any old one) for the blobs of queued attachment entries the relay
/// has not confirmed complete, in outbox order, until `max_bytes` of chunks are planned; each
/// chunk request is signed to be valid for `valid_ms` (at most 72 h). Needs the vault unlocked
/// and enrolled; sends nothing. An attachment whose file is gone is left to the next sync (which
/// wedges it), not planned.
pub fn prepare_background_uploads(
    vault: &Vault,
    max_bytes: u64,
    valid_ms: u64,
) -> Result<BackgroundPlan, SyncError> {
    let store = vault.store()?;
    let (state, key) = store.read(|tx| {
        let (state, _) = load_state(tx)?;
        Ok::<_, SyncError>((state, load_key(tx)?))
    })?;
    let mut report = SyncReport::default();
    media::prepare_uploads(vault, &store, &mut report)?;
    let pending = store.read(media::pending_uploads)?;
    discard_background_uploads(vault.dir())?;
    let dir = uploads_dir(vault.dir());
    fsutil::create_private_dir(&dir).map_err(io_error)?;
    let issued = vault.clock().now_ms();
    let expires = issued.saturating_add(valid_ms.clamp(1, MAX_DEFERRED_MS));
    let mut plan = BackgroundPlan {
        version: PLAN_VERSION,
        relay_url: state.relay_url.clone(),
        expires_ms: expires,
        uploads: Vec::new(),
    };
    let mut budget = max_bytes;
    for (_, up) in pending {
        let path = layout::attachment_path(vault.dir(), &up.attachment_id);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_error(e)),
        };
        let mut chunks = Vec::new();
        let mut offset = 0u64;
        while offset < up.blob_size {
            let len = (up.blob_size - offset).min(BLOB_CHUNK);
            if len > budget {
                break;
            }
            let mut buf = vec![0u8; len as usize];
            file.seek(SeekFrom::Start(offset))
                .and_then(|_| file.read_exact(&mut buf))
                .map_err(io_error)?;
            let name = random_name()?;
            fsutil::write_atomic(&dir.join(&name), &buf).map_err(io_error)?;
            let target = format!("/v1/blobs/{}?offset={offset}", up.blob_sha256);
            let signed =
                amanat_protocol::sign_deferred_request(&key, "PUT", &target, issued, expires, &buf)
                    .map_err(|_| SyncError::Key)?;
            let mut headers: Vec<(String, String)> = signed
                .pairs()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            headers.push(("content-type".into(), "application/octet-stream".into()));
            chunks.push(BackgroundChunk {
                offset,
                len,
                file: name,
                path: target,
                headers,
            });
            budget -= len;
            offset += len;
        }
        if chunks.is_empty() {
            break;
        }
        plan.uploads.push(BackgroundUpload {
            blob_sha256: up.blob_sha256,
            blob_size: up.blob_size,
            chunks,
        });
    }
    let json = serde_json::to_vec(&plan).map_err(|_| SyncError::Envelope)?;
    fsutil::write_atomic(&dir.join(PLAN_FILE), &json).map_err(io_error)?;
    Ok(plan)
}

/// The plan in the vault in `vault_dir`, if there is a readable one of this version. Works on a
/// locked vault: the plan holds nothing secret (that is why it can be read here).
pub fn background_plan(vault_dir: &Path) -> Result<Option<BackgroundPlan>, SyncError> {
    let bytes = match std::fs::read(uploads_dir(vault_dir).join(PLAN_FILE)) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    Ok(serde_json::from_slice::<BackgroundPlan>(&bytes)
        .ok()
        .filter(|p| p.version == PLAN_VERSION))
}

/// Removes the plan and its chunk files. The shell calls it at unlock, after cancelling the
/// system's tasks: the foreground sync takes over from the relay's offset.
pub fn discard_background_uploads(vault_dir: &Path) -> Result<(), SyncError> {
    match std::fs::remove_dir_all(uploads_dir(vault_dir)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(e)),
    }
}

#[derive(Deserialize)]
struct Held {
    offset: u64,
}

#[derive(Deserialize)]
struct Refusal {
    error: String,
    #[serde(default)]
    offset: Option<u64>,
}

/// What to send after the relay answered `status` with `body` to the chunk of `blob` at
/// `offset` (try number `attempt`). `status` 0 means no answer (the connection failed). `now_ms`
/// is the phone's clock: a plan past its expiry stops (the relay would refuse it anyway).
///
/// The answer is read as the relay's own: `200 {"offset": held}` moves to the chunk at `held`;
/// `409 offset_mismatch {"offset": held}` (another run or an earlier try got there first) moves
/// there too; `409 blob_complete` or a held offset at the blob's end finishes; 429, 408 and 5xx
/// (or no answer) try the same chunk again up to [`BACKGROUND_MAX_ATTEMPTS`]; anything else stops
/// (a refusal a retry cannot fix is for the unlocked sync to classify and, if need be, wedge).
pub fn background_next(
    plan: &BackgroundPlan,
    blob: &str,
    offset: u64,
    attempt: u32,
    status: u16,
    body: &[u8],
    now_ms: u64,
) -> BackgroundStep {
    let Some(up) = plan.uploads.iter().find(|u| u.blob_sha256 == blob) else {
        return BackgroundStep::Stop;
    };
    let at = |held: u64| -> BackgroundStep {
        if held >= up.blob_size {
            return BackgroundStep::Finished;
        }
        if now_ms > plan.expires_ms.saturating_add(MAX_CLOCK_SKEW_MS) {
            return BackgroundStep::Stop;
        }
        match up.chunks.iter().find(|c| c.offset == held) {
            Some(c) => BackgroundStep::Upload {
                chunk: c.clone(),
                attempt: 1,
            },
            None => BackgroundStep::Stop,
        }
    };
    match status {
        200..=299 => match serde_json::from_slice::<Held>(body) {
            Ok(h) if h.offset > offset => at(h.offset),
            _ => BackgroundStep::Stop,
        },
        409 => match serde_json::from_slice::<Refusal>(body) {
            Ok(r) if r.error == "blob_complete" => BackgroundStep::Finished,
            Ok(Refusal {
                error,
                offset: Some(held),
            }) if error == "offset_mismatch" => at(held),
            _ => BackgroundStep::Stop,
        },
        0 | 408 | 429 | 500..=599 if attempt < BACKGROUND_MAX_ATTEMPTS => match at(offset) {
            BackgroundStep::Upload { chunk, .. } => BackgroundStep::Upload {
                chunk,
                attempt: attempt + 1,
            },
            other => other,
        },
        _ => BackgroundStep::Stop,
    }
}

/// The first request of each blob of `plan` (the shell starts these; the rest follow from
/// [`background_next`]).
pub fn background_first(plan: &BackgroundPlan) -> Vec<(String, BackgroundChunk)> {
    plan.uploads
        .iter()
        .filter_map(|u| u.chunks.first().map(|c| (u.blob_sha256.clone(), c.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(offset: u64, len: u64) -> BackgroundChunk {
        BackgroundChunk {
            offset,
            len,
            file: format!("{offset}.chunk"),
            path: format!("/v1/blobs/b?offset={offset}"),
            headers: Vec::new(),
        }
    }

    /// A blob of 2.5 chunks, of which the plan holds the first two.
    fn plan() -> BackgroundPlan {
        BackgroundPlan {
            version: PLAN_VERSION,
            relay_url: "http://127.0.0.1:1".into(),
            expires_ms: 1_000_000,
            uploads: vec![BackgroundUpload {
                blob_sha256: "b".into(),
                blob_size: 2 * BLOB_CHUNK + BLOB_CHUNK / 2,
                chunks: vec![chunk(0, BLOB_CHUNK), chunk(BLOB_CHUNK, BLOB_CHUNK)],
            }],
        }
    }

    fn upload(offset: u64, attempt: u32) -> BackgroundStep {
        BackgroundStep::Upload {
            chunk: chunk(offset, BLOB_CHUNK),
            attempt,
        }
    }

    #[test]
    fn an_accepted_chunk_leads_to_the_next_and_the_plan_end_stops() {
        let p = plan();
        let ok = |held: u64| format!("{{\"sha256\":\"b\",\"offset\":{held}}}");
        assert_eq!(
            background_next(&p, "b", 0, 1, 200, ok(BLOB_CHUNK).as_bytes(), 0),
            upload(BLOB_CHUNK, 1)
        );
        // The plan ends before the blob does (byte budget): the unlocked sync sends the rest.
        assert_eq!(
            background_next(
                &p,
                "b",
                BLOB_CHUNK,
                1,
                200,
                ok(2 * BLOB_CHUNK).as_bytes(),
                0
            ),
            BackgroundStep::Stop
        );
        // An answer that does not move the relay forward is not believed.
        assert_eq!(
            background_next(&p, "b", BLOB_CHUNK, 1, 200, ok(BLOB_CHUNK).as_bytes(), 0),
            BackgroundStep::Stop
        );
        assert_eq!(
            background_next(&p, "b", 0, 1, 200, b"not json", 0),
            BackgroundStep::Stop
        );
        let held_all = ok(p.uploads[0].blob_size);
        assert_eq!(
            background_next(&p, "b", BLOB_CHUNK, 1, 200, held_all.as_bytes(), 0),
            BackgroundStep::Finished
        );
    }

    #[test]
    fn a_conflict_moves_to_the_relays_offset_or_finishes() {
        let p = plan();
        let mismatch = |held: u64| format!("{{\"error\":\"offset_mismatch\",\"offset\":{held}}}");
        assert_eq!(
            background_next(&p, "b", 0, 1, 409, mismatch(BLOB_CHUNK).as_bytes(), 0),
            upload(BLOB_CHUNK, 1)
        );
        // Held at an offset no chunk of the plan starts at (another chunk size): stop.
        assert_eq!(
            background_next(&p, "b", 0, 1, 409, mismatch(7).as_bytes(), 0),
            BackgroundStep::Stop
        );
        assert_eq!(
            background_next(&p, "b", 0, 1, 409, br#"{"error":"blob_complete"}"#, 0),
            BackgroundStep::Finished
        );
        assert_eq!(
            background_next(&p, "b", 0, 1, 409, br#"{"error":"offset_mismatch"}"#, 0),
            BackgroundStep::Stop
        );
    }

    #[test]
    fn transient_answers_retry_the_same_chunk_a_bounded_number_of_times() {
        let p = plan();
        for status in [0u16, 408, 429, 500, 503] {
            assert_eq!(
                background_next(&p, "b", BLOB_CHUNK, 1, status, b"", 0),
                upload(BLOB_CHUNK, 2),
                "status {status}"
            );
            assert_eq!(
                background_next(&p, "b", BLOB_CHUNK, BACKGROUND_MAX_ATTEMPTS, status, b"", 0),
                BackgroundStep::Stop
            );
        }
        // Past the plan's expiry (beyond the clock skew) nothing is sent again.
        let late = p.expires_ms + MAX_CLOCK_SKEW_MS + 1;
        assert_eq!(
            background_next(&p, "b", BLOB_CHUNK, 1, 503, b"", late),
            BackgroundStep::Stop
        );
    }

    #[test]
    fn refusals_and_unknown_blobs_stop() {
        let p = plan();
        for (status, body) in [
            (401, &br#"{"error":"stale_timestamp"}"#[..]),
            (401, br#"{"error":"bad_signature"}"#),
            (403, br#"{"error":"revoked_device"}"#),
            (413, br#"{"error":"blob_too_large"}"#),
            (404, b""),
        ] {
            assert_eq!(
                background_next(&p, "b", 0, 1, status, body, 0),
                BackgroundStep::Stop
            );
        }
        assert_eq!(
            background_next(&p, "other", 0, 1, 200, br#"{"offset":1}"#, 0),
            BackgroundStep::Stop
        );
        assert_eq!(
            background_first(&p),
            vec![("b".to_string(), chunk(0, BLOB_CHUNK))]
        );
    }
}
