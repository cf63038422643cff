//! One shard of the in-memory store: its users by id, and in creation order.
//!
//! Both hold [`Record`]s (a pointer each): the id index is a hashbrown table of records found
//! by their ids' random bits, the creation order a vector of `(sequence number, record)`.

use super::record::Record;
use crate::users::id::UserId;
use hashbrown::HashTable;

/// Entries of a shard's order past which, once most are gone, it is compacted.
const COMPACT_AFTER: usize = 64;

/// A shard: an id index and its users in creation order.
#[derive(Default)]
pub(super) struct Shard {
    /// The users, by id.
    index: HashTable<Record>,
    /// The users in creation order, `None` once the user is deleted, until enough are gone to
    /// compact. Sequence numbers increase along it.
    order: Vec<(u64, Option<Record>)>,
    /// Entries of `order` that are `None`.
    gone: usize,
}

/// The hash of an id in a shard's index: its random bits.
pub(super) fn bits(id: UserId) -> u64 {
    let v = id.as_u128();
    ((v >> 64) as u64) ^ (v as u64)
}

impl Shard {
    /// The user's record, if it exists.
    #[inline]
    pub(super) fn find(&self, id: UserId) -> Option<&Record> {
        self.index.find(bits(id), |r| r.id() == id)
    }

    /// Stores `record`: a new user gets the sequence number `seq` makes and an order entry; an
    /// existing one keeps its sequence number and place. Returns the record it replaces.
    pub(super) fn put(&mut self, record: Record, seq: impl FnOnce() -> u64) -> Option<Record> {
        let id = record.id();
        if let Some(slot) = self.index.find_mut(bits(id), |r| r.id() == id) {
            record.set_seq(slot.seq());
            let old = std::mem::replace(slot, record.clone());
            if let Ok(at) = self.order.binary_search_by_key(&old.seq(), |e| e.0) {
                self.order[at].1 = Some(record);
            }
            return Some(old);
        }
        let seq = seq();
        record.set_seq(seq);
        self.index
            .insert_unique(bits(id), record.clone(), |r| r.id_bits());
        // Sequence numbers reach a shard in increasing order, except when recovery replays a
        // record that a snapshot taken while it was written may lack: insert in place then.
        match self.order.last() {
            Some(&(last, _)) if last > seq => {
                let at = self.order.partition_point(|e| e.0 < seq);
                self.order.insert(at, (seq, Some(record)));
            }
            _ => self.order.push((seq, Some(record))),
        }
        None
    }

    /// Removes user `id`; returns its record.
    pub(super) fn remove(&mut self, id: UserId) -> Option<Record> {
        let old = match self.index.find_entry(bits(id), |r| r.id() == id) {
            Ok(entry) => entry.remove().0,
            Err(_) => return None,
        };
        if let Ok(at) = self.order.binary_search_by_key(&old.seq(), |e| e.0) {
            if self.order[at].1.take().is_some() {
                self.gone += 1;
            }
        }
        // Compact once most entries are gone, so a walk skips at most about as many as it
        // lists and the cost is spread over as many deletes as it reclaims.
        if self.gone > COMPACT_AFTER && self.gone * 2 > self.order.len() {
            self.order.retain(|e| e.1.is_some());
            self.order.shrink_to(self.order.len() * 2);
            self.gone = 0;
        }
        Some(old)
    }

    /// Where in the order the first user created after sequence number `after` is.
    pub(super) fn seek(&self, after: u64) -> usize {
        self.order.partition_point(|e| e.0 <= after)
    }

    /// The live users from place `from` on, in creation order, with their places.
    pub(super) fn from(&self, from: usize) -> impl Iterator<Item = (usize, &Record)> {
        (self.order[from.min(self.order.len())..].iter().enumerate())
            .filter_map(move |(i, e)| Some((from + i, e.1.as_ref()?)))
    }

    /// The users of the shard, in creation order.
    pub(super) fn records(&self) -> impl Iterator<Item = &Record> {
        self.order.iter().filter_map(|e| e.1.as_ref())
    }

    /// Order entries held, live and gone (for tests of the compaction).
    #[cfg(test)]
    pub(super) fn order_len(&self) -> usize {
        self.order.len()
    }
}
