//! A compact set of record ids for the store's checked-id cache ([`super::Checked`]).
//!
//! Why not a `BTreeSet`: the cache holds every id of every collection a lookup has missed in —
//! during a long sync that is the outbox, the prepared envelopes, the chain heads and the audit
//! log, over a million ids on a busy phone. A `BTreeSet<[u8; 16]>` costs ≈ 30–40 bytes per id
//! (node headers, half-full nodes); a sorted `Vec` costs 16. Random ids make inserts into a sorted
//! `Vec` O(n) each, so changes collect in two small `BTreeSet`s (added, removed) and are merged
//! into the sorted run, in place, once they reach an eighth of it: amortised O(1) moves per change,
//! and the merge never holds a second copy of the run. docs/BENCHMARKS.md ("Sync engine") has the
//! effect on a device's peak memory.

use super::RecordId;
use std::collections::BTreeSet;

/// Changes kept aside before a merge, at least (small sets merge rarely).
const MIN_PENDING: usize = 1024;

/// A set of record ids: a sorted run plus pending additions and removals.
#[derive(Default)]
pub(super) struct IdSet {
    /// Sorted, no duplicates; may hold ids in `removed`.
    run: Vec<RecordId>,
    /// Ids in the set but not in `run`.
    added: BTreeSet<RecordId>,
    /// Ids of `run` no longer in the set.
    removed: BTreeSet<RecordId>,
}

impl FromIterator<RecordId> for IdSet {
    fn from_iter<I: IntoIterator<Item = RecordId>>(iter: I) -> Self {
        let mut run: Vec<RecordId> = iter.into_iter().collect();
        run.sort_unstable();
        run.dedup();
        run.shrink_to_fit();
        Self {
            run,
            ..Self::default()
        }
    }
}

impl IdSet {
    fn in_run(&self, id: &RecordId) -> bool {
        self.run.binary_search(id).is_ok()
    }

    /// Whether `id` is in the set.
    pub(super) fn contains(&self, id: &RecordId) -> bool {
        self.added.contains(id) || (self.in_run(id) && !self.removed.contains(id))
    }

    /// Adds `id`.
    pub(super) fn insert(&mut self, id: RecordId) {
        if self.in_run(&id) {
            self.removed.remove(&id);
        } else {
            self.added.insert(id);
        }
        self.maybe_merge();
    }

    /// Removes `id`.
    pub(super) fn remove(&mut self, id: &RecordId) {
        if !self.added.remove(id) && self.in_run(id) {
            self.removed.insert(*id);
        }
        self.maybe_merge();
    }

    /// Every id, in order.
    pub(super) fn to_vec(&self) -> Vec<RecordId> {
        let mut out = Vec::with_capacity(self.run.len() + self.added.len());
        let mut added = self.added.iter().peekable();
        for id in self.run.iter().filter(|id| !self.removed.contains(id)) {
            while let Some(a) = added.next_if(|a| *a < id) {
                out.push(*a);
            }
            out.push(*id);
        }
        out.extend(added);
        out
    }

    fn maybe_merge(&mut self) {
        if self.added.len() + self.removed.len() >= (self.run.len() / 8).max(MIN_PENDING) {
            self.merge();
        }
    }

    /// Folds the pending changes into the run without a second copy of it: drop the removed ids
    /// in one forward pass, grow by the added ones, then merge from the back.
    fn merge(&mut self) {
        if !self.removed.is_empty() {
            let removed = std::mem::take(&mut self.removed);
            self.run.retain(|id| !removed.contains(id));
        }
        let added = std::mem::take(&mut self.added);
        if added.is_empty() {
            return;
        }
        let old = self.run.len();
        self.run.reserve_exact(added.len());
        // Placeholders at the end, overwritten below (every slot is written exactly once).
        self.run.resize(old + added.len(), RecordId([0; 16]));
        let mut i = old; // next unplaced element of the old run is at i - 1
        let mut slot = self.run.len();
        for a in added.into_iter().rev() {
            while i > 0 && self.run[i - 1] > a {
                slot -= 1;
                self.run[slot] = self.run[i - 1];
                i -= 1;
            }
            slot -= 1;
            self.run[slot] = a;
        }
        // What is left of the old run (below every added id) is already in place.
        debug_assert_eq!(slot, i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn id(n: u64, salt: u64) -> RecordId {
        let mut b = [0u8; 16];
        // Spread like random ids: a multiplicative hash of n in the leading bytes.
        b[..8].copy_from_slice(&(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt).to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
        RecordId(b)
    }

    /// Against a `BTreeSet` model, through enough changes to merge many times, with removals of
    /// ids in the run, in `added`, absent, and re-insertions of removed ones.
    #[test]
    fn behaves_like_a_set_through_many_merges() {
        let mut model: BTreeSet<RecordId> = (0..3000).map(|n| id(n, 1)).collect();
        let mut set: IdSet = model.iter().copied().collect();
        let mut x = 7u64;
        for step in 0..40_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let target = id(x % 12_000, 1);
            if x % 3 == 0 {
                model.remove(&target);
                set.remove(&target);
            } else {
                model.insert(target);
                set.insert(target);
            }
            if step % 997 == 0 {
                assert_eq!(set.to_vec(), model.iter().copied().collect::<Vec<_>>());
            }
            let probe = id((x >> 20) % 12_000, 1);
            assert_eq!(set.contains(&probe), model.contains(&probe), "step {step}");
        }
        assert_eq!(set.to_vec(), model.iter().copied().collect::<Vec<_>>());
        // The run stays sorted and free of duplicates after the merges.
        set.merge();
        assert!(set.run.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(set.run.len(), model.len());
    }

    #[test]
    fn empty_and_single_changes() {
        let mut set = IdSet::default();
        assert!(!set.contains(&id(1, 0)));
        set.remove(&id(1, 0));
        assert!(set.to_vec().is_empty());
        set.insert(id(1, 0));
        set.insert(id(1, 0));
        assert_eq!(set.to_vec(), vec![id(1, 0)]);
        set.merge();
        assert_eq!(set.run, vec![id(1, 0)]);
        set.remove(&id(1, 0));
        assert!(!set.contains(&id(1, 0)));
        set.insert(id(1, 0));
        assert!(set.contains(&id(1, 0)));
        set.merge();
        assert_eq!(set.to_vec(), vec![id(1, 0)]);
    }
}
