//! Attachments (audio, photos): streaming writer and seeking reader objects.
//!
//! The core's writer and reader are `&mut self` streams; here each sits behind a mutex so the
//! objects are `Send + Sync` like every uniffi object. A writer that is destroyed (or garbage
//! collected) without `finish` aborts, as in the core: nothing is left on disk.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use amanat_core::records::attachments as core_att;

use crate::error::{guard, AmanatError, AmanatResult};
use crate::remote::AttachmentInfo;
use crate::vault::Vault;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock was already reported as `Internal`; the stream state is
    // still consistent enough to abort or report `Closed`, so poisoning is not propagated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn closed() -> AmanatError {
    AmanatError::from(core_att::AttachmentError::Closed)
}

/// Longest single read, so a shell cannot ask for a buffer that exhausts memory.
const MAX_READ: u32 = 4 * 1024 * 1024;

/// Streams one attachment into the vault, encrypted as bytes arrive: `write` repeatedly, then
/// `finish` (stores it and records the interview answer) or `abort`.
#[derive(uniffi::Object)]
pub struct AttachmentWriter {
    inner: Mutex<Option<core_att::AttachmentWriter>>,
    id: String,
}

impl std::fmt::Debug for AttachmentWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentWriter")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[uniffi::export]
impl AttachmentWriter {
    /// The attachment id (known from the start, e.g. for a recording screen).
    pub fn id(&self) -> String {
        self.id.clone()
    }

    /// Bytes written so far (0 once closed).
    pub fn size(&self) -> u64 {
        lock(&self.inner).as_ref().map(|w| w.size()).unwrap_or(0)
    }

    /// Encrypts and appends `bytes`. Past the size limit everything is discarded (`TooLarge`).
    pub fn write(&self, bytes: Vec<u8>) -> AmanatResult<()> {
        guard(|| {
            let mut slot = lock(&self.inner);
            let writer = slot.as_mut().ok_or_else(closed)?;
            let result = writer.write(&bytes);
            drop(amanat_core::SecretBytes::new(bytes));
            if result.is_err() {
                // The core aborted the file; later calls report `Closed`.
                *slot = None;
            }
            Ok(result?)
        })
    }

    /// Completes the file and records its metadata and the interview answer in one transaction.
    pub fn finish(&self) -> AmanatResult<AttachmentInfo> {
        guard(|| {
            let writer = lock(&self.inner).take().ok_or_else(closed)?;
            Ok(writer.finish()?)
        })
    }

    /// Discards everything written; idempotent.
    pub fn abort(&self) {
        if let Some(mut w) = lock(&self.inner).take() {
            w.abort();
        }
    }
}

/// Decrypts a stored attachment for playback or viewing, chunk by chunk, with seeking.
#[derive(uniffi::Object)]
pub struct AttachmentReader {
    inner: Mutex<core_att::AttachmentReader>,
}

impl std::fmt::Debug for AttachmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentReader").finish_non_exhaustive()
    }
}

#[uniffi::export]
impl AttachmentReader {
    /// Plaintext size in bytes, when known.
    pub fn size(&self) -> Option<u64> {
        lock(&self.inner).size()
    }

    /// Reads up to `max_len` bytes (at most 4 MiB per call); an empty result means the end. An
    /// altered chunk is an `AttachmentDamaged` error and none of its bytes are returned.
    pub fn read(&self, max_len: u32) -> AmanatResult<Vec<u8>> {
        guard(|| {
            let len = usize::try_from(max_len.min(MAX_READ)).unwrap_or(0);
            let mut buf = vec![0u8; len];
            let n = lock(&self.inner).read(&mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
    }

    /// Reads everything from the current position to the end (small photos; stream audio with
    /// `read`).
    pub fn read_all(&self) -> AmanatResult<Vec<u8>> {
        guard(|| {
            let mut out = Vec::new();
            lock(&self.inner).read_to_end(&mut out)?;
            Ok(out)
        })
    }

    /// Moves to plaintext offset `offset`; returns the new position.
    pub fn seek(&self, offset: u64) -> AmanatResult<u64> {
        guard(|| Ok(lock(&self.inner).seek(offset)?))
    }
}

#[uniffi::export]
impl Vault {
    /// Opens a writer for the audio/photo question `question_id` of draft `interview_id`.
    /// Checks first that the question takes this media type and that consent allows it.
    /// `max_bytes` defaults to 2 GiB.
    pub fn open_attachment_writer(
        &self,
        interview_id: String,
        question_id: String,
        media_type: String,
        max_bytes: Option<u64>,
    ) -> AmanatResult<Arc<AttachmentWriter>> {
        guard(|| {
            let w = core_att::AttachmentWriter::open(
                &self.inner,
                &interview_id,
                &question_id,
                &media_type,
                max_bytes.unwrap_or(core_att::DEFAULT_MAX_BYTES),
            )?;
            let id = w.id();
            Ok(Arc::new(AttachmentWriter {
                inner: Mutex::new(Some(w)),
                id,
            }))
        })
    }

    /// Opens a stored attachment for reading.
    pub fn open_attachment(&self, attachment_id: String) -> AmanatResult<Arc<AttachmentReader>> {
        guard(|| {
            let r = core_att::AttachmentReader::open(&self.inner, &attachment_id)?;
            Ok(Arc::new(AttachmentReader {
                inner: Mutex::new(r),
            }))
        })
    }

    /// Metadata of a stored attachment.
    pub fn attachment_info(&self, attachment_id: String) -> AmanatResult<AttachmentInfo> {
        guard(|| Ok(core_att::info(&self.inner, &attachment_id)?))
    }

    /// Encrypts an existing file (what a camera intent left), then overwrites and deletes it.
    /// Prefer a writer where the platform allows capturing straight into it.
    pub fn import_attachment_file(
        &self,
        interview_id: String,
        question_id: String,
        media_type: String,
        source_path: String,
    ) -> AmanatResult<AttachmentInfo> {
        guard(|| {
            Ok(core_att::import_file(
                &self.inner,
                &interview_id,
                &question_id,
                &media_type,
                std::path::Path::new(&source_path),
            )?)
        })
    }

    /// Sets the organisation's public age recipients per group (`caseworkers`, `legal`,
    /// `law_enforcement`, `research`) until enrollment supplies them.
    pub fn set_org_recipients(&self, recipients: HashMap<String, String>) -> AmanatResult<()> {
        guard(|| {
            let map: BTreeMap<String, String> = recipients.into_iter().collect();
            Ok(core_att::set_org_recipients(&self.inner, &map)?)
        })
    }
}
