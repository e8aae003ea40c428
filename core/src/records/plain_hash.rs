//! The plaintext SHA-256 of an attachment, computed on a second thread while the caller's thread
//! encrypts (docs/BENCHMARKS.md, "Attachments": hashing on the capture thread cost a third of the
//! capture rate).
//!
//! The writer copies what it is given into 64 KiB zeroizing buffers and hands each full one to the
//! hashing thread, which gives it back once hashed. At most [`POOL`] buffers exist, so memory stays
//! constant (192 KiB) whatever the length, and a writer that outruns the hash waits for a buffer.
//! Every buffer is zeroized when dropped; nothing goes to disk.
//!
//! The thread never outlives its [`PlainHasher`]: `finish` and `Drop` (abort, a dropped writer, the
//! vault's `lock()`) close the channel and join it. A thread that failed (panicked) surfaces as
//! [`HashThreadFailed`] on the next call, never as a panic of the caller.

use ring::digest;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use zeroize::Zeroizing;

/// Bytes per buffer handed to the hashing thread.
const BUFFER: usize = 64 * 1024;
/// Buffers in circulation (one being filled, the rest queued or being hashed).
const POOL: usize = 3;
/// Stack of the hashing thread.
const STACK: usize = 64 * 1024;

type Buffer = Zeroizing<Vec<u8>>;

/// The hashing thread stopped early (it panicked); the hash is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HashThreadFailed;

/// SHA-256 of a byte stream, hashed on its own thread.
pub(crate) struct PlainHasher {
    filling: Buffer,
    to_thread: Option<SyncSender<Buffer>>,
    spare: Receiver<Buffer>,
    allocated: usize,
    thread: Option<JoinHandle<digest::Digest>>,
}

impl PlainHasher {
    /// Starts the hashing thread.
    pub(crate) fn start() -> std::io::Result<Self> {
        Self::start_with(hash_all)
    }

    fn start_with(
        work: fn(Receiver<Buffer>, SyncSender<Buffer>) -> digest::Digest,
    ) -> std::io::Result<Self> {
        let (to_thread, from_writer) = mpsc::sync_channel::<Buffer>(POOL);
        // Both channels are bounded (preallocated here): the thread itself never allocates.
        let (back, spare) = mpsc::sync_channel::<Buffer>(POOL);
        let thread = std::thread::Builder::new()
            .name("amanat-attachment-hash".into())
            // Hashing needs little stack; a small one keeps the process's footprint down.
            .stack_size(STACK)
            .spawn(move || work(from_writer, back))?;
        Ok(Self {
            filling: Zeroizing::new(Vec::with_capacity(BUFFER)),
            to_thread: Some(to_thread),
            spare,
            allocated: 1,
            thread: Some(thread),
        })
    }

    /// Adds `bytes` to the hash (copied; hashed on the thread once a buffer is full).
    pub(crate) fn update(&mut self, mut bytes: &[u8]) -> Result<(), HashThreadFailed> {
        while !bytes.is_empty() {
            let take = (BUFFER - self.filling.len()).min(bytes.len());
            self.filling.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.filling.len() == BUFFER {
                let next = self.next_buffer()?;
                let full = std::mem::replace(&mut self.filling, next);
                self.send(full)?;
            }
        }
        Ok(())
    }

    /// Hashes what is left, stops the thread and returns the SHA-256 of everything given.
    pub(crate) fn finish(mut self) -> Result<digest::Digest, HashThreadFailed> {
        if !self.filling.is_empty() {
            let last = std::mem::take(&mut self.filling);
            self.send(last)?;
        }
        self.to_thread = None;
        let thread = self.thread.take().ok_or(HashThreadFailed)?;
        thread.join().map_err(|_| HashThreadFailed)
    }

    fn send(&mut self, buffer: Buffer) -> Result<(), HashThreadFailed> {
        let sender = self.to_thread.as_ref().ok_or(HashThreadFailed)?;
        // A send fails only when the thread is gone (the buffer comes back and is zeroized).
        sender.send(buffer).map_err(|_| HashThreadFailed)
    }

    /// An empty buffer: a new one while the pool is not full, else one the thread is done with
    /// (waiting for it: the back-pressure that keeps memory constant).
    fn next_buffer(&mut self) -> Result<Buffer, HashThreadFailed> {
        if self.allocated < POOL {
            self.allocated += 1;
            return Ok(Zeroizing::new(Vec::with_capacity(BUFFER)));
        }
        let mut buffer = self.spare.recv().map_err(|_| HashThreadFailed)?;
        buffer.clear();
        Ok(buffer)
    }
}

impl Drop for PlainHasher {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop after at most POOL buffers; then join it, so
        // no thread (nor the partial hash state it holds) outlives the writer.
        self.to_thread = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread: hashes each buffer in order and gives it back for reuse.
fn hash_all(from_writer: Receiver<Buffer>, back: SyncSender<Buffer>) -> digest::Digest {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for buffer in from_writer {
        ctx.update(&buffer);
        // If the writer is gone the buffer is dropped here, zeroized.
        let _ = back.send(buffer);
    }
    ctx.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn sha256(data: &[u8]) -> Vec<u8> {
        digest::digest(&digest::SHA256, data).as_ref().to_vec()
    }

    fn data(len: usize) -> Vec<u8> {
        (0..len as u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect()
    }

    #[test]
    fn hash_matches_one_shot_sha256_for_any_split() {
        for len in [
            0,
            1,
            BUFFER - 1,
            BUFFER,
            BUFFER + 1,
            3 * BUFFER,
            9 * BUFFER + 17,
        ] {
            let input = data(len);
            for piece in [1usize, 1000, BUFFER, BUFFER + 5, 5 * BUFFER] {
                if len > 300_000 && piece == 1 {
                    continue;
                }
                let mut h = PlainHasher::start().unwrap();
                for part in input.chunks(piece) {
                    h.update(part).unwrap();
                }
                assert_eq!(
                    h.finish().unwrap().as_ref(),
                    &sha256(&input)[..],
                    "len {len} piece {piece}"
                );
            }
        }
    }

    #[test]
    fn buffers_in_circulation_stay_bounded() {
        let mut h = PlainHasher::start().unwrap();
        let input = data(40 * BUFFER);
        for part in input.chunks(3 * BUFFER + 11) {
            h.update(part).unwrap();
            assert!(h.allocated <= POOL);
        }
        assert_eq!(h.allocated, POOL);
        assert_eq!(h.finish().unwrap().as_ref(), &sha256(&input)[..]);
    }

    static RUNNING: AtomicUsize = AtomicUsize::new(0);

    /// Counts itself while it runs, and takes its time, so a drop that did not join would be seen.
    fn slow_counted(from_writer: Receiver<Buffer>, back: SyncSender<Buffer>) -> digest::Digest {
        RUNNING.fetch_add(1, Ordering::SeqCst);
        let d = hash_all(from_writer, back);
        std::thread::sleep(std::time::Duration::from_millis(50));
        RUNNING.fetch_sub(1, Ordering::SeqCst);
        d
    }

    #[test]
    fn drop_mid_stream_joins_the_thread() {
        let mut h = PlainHasher::start_with(slow_counted).unwrap();
        h.update(&data(2 * BUFFER + 3)).unwrap();
        // The thread counts itself once it runs; wait for that (bounded) before dropping.
        let started = std::time::Instant::now();
        while RUNNING.load(Ordering::SeqCst) == 0 {
            assert!(started.elapsed().as_secs() < 10, "the thread never started");
            std::thread::yield_now();
        }
        drop(h);
        assert_eq!(
            RUNNING.load(Ordering::SeqCst),
            0,
            "drop returned before the thread ended"
        );
        let h = PlainHasher::start_with(slow_counted).unwrap();
        h.finish().unwrap();
        assert_eq!(
            RUNNING.load(Ordering::SeqCst),
            0,
            "finish returned before the thread ended"
        );
    }

    fn fails_after_one(from_writer: Receiver<Buffer>, back: SyncSender<Buffer>) -> digest::Digest {
        let first = from_writer.recv();
        let _ = back.send(first.unwrap_or_default());
        panic!("injected hashing failure");
    }

    #[test]
    fn a_failed_thread_is_an_error_not_a_panic_or_a_hang() {
        // Found while writing: the next buffer the writer needs never comes back.
        let mut h = PlainHasher::start_with(fails_after_one).unwrap();
        let mut result = Ok(());
        for _ in 0..(4 * POOL) {
            result = h.update(&data(BUFFER));
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HashThreadFailed));
        drop(h);
        // Found at finish: everything fitted in the pool.
        let mut h = PlainHasher::start_with(fails_after_one).unwrap();
        h.update(&data(10)).unwrap();
        assert_eq!(h.finish().err(), Some(HashThreadFailed));
    }
}
