//! One shard of the in-memory store: its id index, its arena and its creation order.

use super::arena::{Arena, Loc, Meta};
use crate::users::id::UserId;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

/// A map key: the id's 128 bits as two words, so that an entry aligns to 8 bytes (24 in all)
/// rather than to `u128`'s 16 (32 in all).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Key {
    hi: u64,
    lo: u64,
}

impl Key {
    pub(super) fn of(id: UserId) -> Self {
        let v = id.as_u128();
        Key {
            hi: (v >> 64) as u64,
            lo: v as u64,
        }
    }

    pub(super) fn id(self) -> UserId {
        UserId::from_u128((u128::from(self.hi) << 64) | u128::from(self.lo))
    }

    /// 64 random bits of the id. The version nibble (in `hi`) and variant bits (in `lo`) sit
    /// at different positions, so their xor has no fixed bit.
    pub(super) fn mix(self) -> u64 {
        self.hi ^ self.lo
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.mix());
    }
}

/// A hasher that passes the id's random bits through: the ids are already uniformly random.
#[derive(Default)]
pub(super) struct IdBits(u64);

impl Hasher for IdBits {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `Key`; a plain FNV-1a keeps the hasher correct for any other input.
        for &b in bytes {
            self.0 = (self.0 ^ b as u64).wrapping_mul(0x100_0000_01b3);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// The key of an order entry whose user is gone (no v4 UUID is all zeros).
pub(super) const GONE: Key = Key { hi: 0, lo: 0 };

/// Entries of a shard's order past which, once most are gone, it is compacted.
const COMPACT_AFTER: usize = 64;

/// A shard: an id index over an arena, and the shard's users in creation order.
#[derive(Default)]
pub(super) struct Shard {
    pub(super) index: HashMap<Key, Loc, BuildHasherDefault<IdBits>>,
    pub(super) arena: Arena,
    /// This shard's users in creation order: (sequence number, id), the id [`GONE`] once the
    /// user is deleted, until enough are gone to compact.
    pub(super) order: Vec<(u64, Key)>,
    /// Entries of `order` that are [`GONE`].
    gone: usize,
}

impl Shard {
    /// The user's version, if it exists.
    pub(super) fn version(&self, key: Key) -> Option<u32> {
        self.index
            .get(&key)
            .map(|&loc| self.arena.meta(loc).version)
    }

    /// The email key the user holds, if it exists.
    pub(super) fn email_key(&self, key: Key) -> Option<&str> {
        self.index.get(&key).map(|&loc| self.arena.key(loc))
    }

    /// Stores `doc` (holding `version`, with `email_key`) for `key`: a new user gets `seq` and
    /// an order entry; an existing one keeps its sequence number. Returns true if and only if
    /// the user is new.
    pub(super) fn put(
        &mut self,
        key: Key,
        doc: &[u8],
        email_key: &str,
        version: u32,
        seq: impl FnOnce() -> u64,
    ) -> bool {
        if let Some(loc) = self.index.get(&key).copied() {
            let seq = self.arena.meta(loc).seq;
            let loc = self.arena.push(doc, email_key, Meta { version, seq });
            self.index.insert(key, loc);
            return false;
        }
        let seq = seq();
        let loc = self.arena.push(doc, email_key, Meta { version, seq });
        self.index.insert(key, loc);
        // Sequence numbers reach a shard in increasing order, except when recovery replays a
        // record that a snapshot taken while it was written may lack: insert in place then.
        match self.order.last() {
            Some(&(last, _)) if last > seq => {
                let at = self.order.partition_point(|e| e.0 < seq);
                self.order.insert(at, (seq, key));
            }
            _ => self.order.push((seq, key)),
        }
        true
    }

    /// Removes `key`'s user. Returns true if and only if it existed.
    pub(super) fn remove(&mut self, key: Key) -> bool {
        let Some(loc) = self.index.remove(&key) else {
            return false;
        };
        let seq = self.arena.meta(loc).seq;
        if let Ok(at) = self.order.binary_search_by_key(&seq, |e| e.0) {
            self.order[at].1 = GONE;
            self.gone += 1;
        }
        // Compact once most entries are gone, so a walk skips at most about as many as it
        // lists and the cost is spread over as many deletes as it reclaims.
        if self.gone > COMPACT_AFTER && self.gone * 2 > self.order.len() {
            self.order.retain(|e| e.1 != GONE);
            self.gone = 0;
        }
        true
    }
}
