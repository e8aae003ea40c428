//! Hybrid logical clocks: the timestamps by which mutable fields merge (last writer wins).
//!
//! A timestamp is (physical ms, counter, node id). It never goes backwards on one device even if
//! the wall clock does, it moves past any timestamp the device has seen from others, and the node id
//! breaks ties, so two devices that edit the same field offline always agree on the winner.

use crate::store::{RecordId, StoreError, Tx};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A hybrid logical clock timestamp. Ordered by `ms`, then `counter`, then `node`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Hlc {
    /// Physical component: ms since the Unix epoch (at least the wall clock when made).
    pub ms: u64,
    /// Logical counter for events within the same millisecond.
    pub counter: u32,
    /// The device that made it (random per vault), the final tie-break.
    pub node: NodeId,
}

/// A device's random HLC node id. Random, so it says nothing about the device.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub [u8; 8]);

impl Serialize for NodeId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::fsutil::to_hex(&self.0))
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::fsutil::from_hex(&s)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(NodeId)
            .ok_or_else(|| serde::de::Error::custom("bad node id"))
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Hlc({}.{}@{})",
            self.ms,
            self.counter,
            crate::fsutil::to_hex(&self.node.0)
        )
    }
}

/// Where the clock's state lives: one record in its own collection.
use crate::names::collections::HLC_STATE as HLC;
const STATE_ID: RecordId = RecordId::from_bytes([0xC1; 16]);

#[derive(Serialize, Deserialize)]
struct State {
    last: Hlc,
}

impl Hlc {
    /// The next local timestamp, persisted in the same transaction as the change it stamps.
    pub fn next(tx: &mut Tx<'_>) -> Result<Hlc, StoreError> {
        Self::advance(tx, None)
    }

    /// Moves the local clock past a timestamp received from another device (sync apply).
    pub fn observe(tx: &mut Tx<'_>, remote: Hlc) -> Result<Hlc, StoreError> {
        Self::advance(tx, Some(remote))
    }

    /// This device's clock id, once the clock has ticked (read only: it does not advance).
    pub fn local_node(tx: &mut Tx<'_>) -> Result<Option<NodeId>, StoreError> {
        Ok(tx
            .get_json::<State>(HLC, STATE_ID)?
            .map(|(s, _)| s.last.node))
    }

    fn advance(tx: &mut Tx<'_>, remote: Option<Hlc>) -> Result<Hlc, StoreError> {
        let now = tx.clock().now_ms();
        let stored: Option<(State, u64)> = tx.get_json(HLC, STATE_ID)?;
        let (last, version) = match stored {
            Some((state, version)) => (Some(state.last), Some(version)),
            None => (None, None),
        };
        let node = match last {
            Some(last) => last.node,
            None => {
                let mut node = [0u8; 8];
                tx.fill_random(&mut node);
                NodeId(node)
            }
        };
        let floor = last.map(|l| (l.ms, l.counter)).unwrap_or((0, 0));
        let remote_floor = remote.map(|r| (r.ms, r.counter)).unwrap_or((0, 0));
        let (prev_ms, prev_counter) = floor.max(remote_floor);
        let next = if now > prev_ms {
            Hlc {
                ms: now,
                counter: 0,
                node,
            }
        } else {
            Hlc {
                ms: prev_ms,
                counter: prev_counter.saturating_add(1),
                node,
            }
        };
        let state = State { last: next };
        match version {
            Some(v) => {
                tx.update_json(HLC, STATE_ID, v, &state)?;
            }
            None => tx.insert_json_with_id(HLC, STATE_ID, &state)?,
        }
        Ok(next)
    }
}
