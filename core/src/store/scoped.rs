//! State that must not outlive the unlock that made it.
//!
//! An attachment reader or writer holds an age stream: an open file and the file's payload key.
//! `lock()` must end them at once — not at their next call — so no plaintext comes out afterwards
//! and no key stays in memory. The store keeps a weak handle to each such state and clears them all
//! when it is closed; the owner then finds its slot empty and fails with [`StoreError::Locked`].

use super::StoreError;
use std::sync::{Arc, Mutex, Weak};

/// Something the store empties when it closes.
pub(super) trait Clear: Send + Sync {
    /// Drops the held state (zeroizing whatever zeroizes on drop).
    fn clear(&self);
}

impl<T: Send> Clear for Mutex<Option<T>> {
    fn clear(&self) {
        let taken = self.lock().unwrap_or_else(|e| e.into_inner()).take();
        drop(taken);
    }
}

/// The store's list of live lock-scoped states.
#[derive(Default)]
pub(super) struct Registry(Mutex<Vec<Weak<dyn Clear>>>);

impl Registry {
    pub(super) fn add(&self, slot: Weak<dyn Clear>) {
        let mut list = self.0.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|w| w.strong_count() > 0);
        list.push(slot);
    }

    /// Takes every registered state out of the list (the caller clears them without holding the
    /// store's own lock, so an owner blocked in a long read cannot deadlock a `lock()`).
    pub(super) fn drain(&self) -> Vec<Weak<dyn Clear>> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

/// A value that lives until its owner drops it or the vault is locked, whichever comes first.
///
/// Made by [`super::Store::scoped`]. Every access goes through [`LockScoped::with`], which fails
/// with [`StoreError::Locked`] once the store was closed.
pub struct LockScoped<T: Send + 'static> {
    slot: Arc<Mutex<Option<T>>>,
}

impl<T: Send + 'static> std::fmt::Debug for LockScoped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockScoped")
            .field("live", &self.is_live())
            .finish()
    }
}

impl<T: Send + 'static> LockScoped<T> {
    pub(super) fn new(value: T) -> (Self, Weak<dyn Clear>) {
        let slot = Arc::new(Mutex::new(Some(value)));
        let weak: Weak<dyn Clear> = {
            let as_clear: Arc<dyn Clear> = slot.clone();
            Arc::downgrade(&as_clear)
        };
        (Self { slot }, weak)
    }

    /// Runs `f` on the value; [`StoreError::Locked`] if the vault was locked (or the value taken).
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, StoreError> {
        let mut guard = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_mut().map(f).ok_or(StoreError::Locked)
    }

    /// Takes the value out (e.g. to finish a stream); [`StoreError::Locked`] if it is gone.
    pub fn take(&self) -> Result<T, StoreError> {
        self.slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or(StoreError::Locked)
    }

    /// Drops the value now.
    pub fn clear(&self) {
        Clear::clear(&*self.slot);
    }

    /// True until the value is taken, cleared, or the vault locked.
    pub fn is_live(&self) -> bool {
        self.slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }
}
