//! Background uploads for the iOS shell (core: `sync::background`): blob chunks signed while the
//! vault is open, handed to a background `URLSession`, chained by the core's rule after each
//! answer. Nothing here holds survivor data: file paths, blob addresses, signed headers.

use std::path::{Path, PathBuf};

use amanat_core::sync::background::{self as core_bg, BackgroundChunk, BackgroundStep};
use amanat_core::{Clock, SystemClock};

use crate::error::{guard, AmanatResult};
use crate::sync::HttpHeader;
use crate::vault::Vault;

/// One chunk upload to hand to the system: `PUT url` with `headers`, the body being the file at
/// `file_path` (ciphertext). Send it as it is: the signature covers method, path, issue and
/// expiry times and the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BackgroundChunkRequest {
    /// The blob this chunk belongs to (pass it back to `backgroundUploadNext`).
    pub blob_sha256: String,
    /// The chunk's offset in the blob (pass it back too).
    pub offset: u64,
    /// Which try of this chunk it is, from 1 (pass it back too).
    pub attempt: u32,
    /// Always `PUT`.
    pub method: String,
    /// The full URL (enrolled relay + path).
    pub url: String,
    /// Headers to send as they are.
    pub headers: Vec<HttpHeader>,
    /// Absolute path of the body file, inside the vault's `uploads` folder.
    pub file_path: String,
}

/// A new plan: what to start now, and what it covers.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BackgroundUploadPlan {
    /// The first chunk of each blob: start these; the rest follow one by one from
    /// `backgroundUploadNext`.
    pub first: Vec<BackgroundChunkRequest>,
    /// Blobs in the plan.
    pub blobs: u32,
    /// Chunk bytes in the plan (what the system will send at most, retries aside).
    pub bytes: u64,
    /// When the signatures stop being valid (ms since the epoch).
    pub expires_ms: u64,
}

/// What to do after a chunk's answer.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum BackgroundUploadStep {
    /// Start this request.
    Upload {
        /// The next request (or the same chunk again, `attempt` counted up).
        request: BackgroundChunkRequest,
    },
    /// The relay holds the whole blob; the next unlocked sync completes it and pushes its
    /// metadata without sending its bytes again.
    Finished,
    /// Stop this blob; the next unlocked sync resumes it from the relay's offset.
    Stop,
}

fn request(
    vault_dir: &Path,
    relay_url: &str,
    blob: &str,
    c: BackgroundChunk,
    attempt: u32,
) -> BackgroundChunkRequest {
    let file: PathBuf = core_bg::uploads_dir(vault_dir).join(&c.file);
    BackgroundChunkRequest {
        blob_sha256: blob.to_string(),
        offset: c.offset,
        attempt,
        method: "PUT".into(),
        url: format!("{}{}", relay_url.trim_end_matches('/'), c.path),
        headers: c
            .headers
            .into_iter()
            .map(|(name, value)| HttpHeader { name, value })
            .collect(),
        file_path: file.to_string_lossy().into_owned(),
    }
}

#[uniffi::export]
impl Vault {
    /// Writes a new background upload plan (replacing any old one): the pending attachment
    /// blobs, in queue order, cut into signed chunk files up to `max_bytes`, valid `valid_ms`
    /// (at most 72 h). Call it while unlocked, just before locking; sends nothing. Requires
    /// enrollment (`NotEnrolled`).
    pub fn prepare_background_uploads(
        &self,
        max_bytes: u64,
        valid_ms: u64,
    ) -> AmanatResult<BackgroundUploadPlan> {
        guard(|| {
            let dir = self.inner.dir();
            let plan = core_bg::prepare_background_uploads(&self.inner, max_bytes, valid_ms)?;
            let first = core_bg::background_first(&plan)
                .into_iter()
                .map(|(blob, c)| request(dir, &plan.relay_url, &blob, c, 1))
                .collect();
            Ok(BackgroundUploadPlan {
                first,
                blobs: plan.uploads.len() as u32,
                bytes: plan
                    .uploads
                    .iter()
                    .flat_map(|u| u.chunks.iter())
                    .map(|c| c.len)
                    .sum(),
                expires_ms: plan.expires_ms,
            })
        })
    }
}

/// After the relay answered a background chunk upload: what to send next, by the core's rule
/// (docs/SYNC.md, "Background uploads"). `status` 0 means no answer; `body` is the answer's body
/// (the relay's small JSON). Works on a locked vault: it reads only the plan in `vault_dir`.
/// Without a plan (discarded, wiped) it answers `Stop`.
#[uniffi::export]
pub fn background_upload_next(
    vault_dir: String,
    blob_sha256: String,
    offset: u64,
    attempt: u32,
    status: u16,
    body: Vec<u8>,
) -> AmanatResult<BackgroundUploadStep> {
    guard(|| {
        let dir = Path::new(&vault_dir);
        let Some(plan) = core_bg::background_plan(dir)? else {
            return Ok(BackgroundUploadStep::Stop);
        };
        let now = SystemClock.now_ms();
        Ok(
            match core_bg::background_next(&plan, &blob_sha256, offset, attempt, status, &body, now)
            {
                BackgroundStep::Upload { chunk, attempt } => BackgroundUploadStep::Upload {
                    request: request(dir, &plan.relay_url, &blob_sha256, chunk, attempt),
                },
                BackgroundStep::Finished => BackgroundUploadStep::Finished,
                BackgroundStep::Stop => BackgroundUploadStep::Stop,
            },
        )
    })
}

/// The folder the plan and its chunk files live in, inside the vault in `vault_dir`: the one
/// folder the iOS shell gives `completeUntilFirstUserAuthentication` (its name belongs to the
/// core, not the shell).
#[uniffi::export]
pub fn background_uploads_dir(vault_dir: String) -> String {
    core_bg::uploads_dir(Path::new(&vault_dir))
        .to_string_lossy()
        .into_owned()
}

/// Removes the background upload plan and its chunk files (at unlock, after cancelling the
/// system's tasks, before a foreground sync). Safe without a plan.
#[uniffi::export]
pub fn discard_background_uploads(vault_dir: String) -> AmanatResult<()> {
    guard(|| Ok(core_bg::discard_background_uploads(Path::new(&vault_dir))?))
}
