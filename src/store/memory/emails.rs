//! The email index: which user holds each email, so that emails stay unique.
//!
//! Keys are [`crate::users::email_key`]s (trimmed, lowercased). Clients choose them, so both
//! the shard and the slot inside it come from std's randomly keyed SipHash: a client cannot
//! pick emails that crowd one shard or one probe sequence (HashDoS).
//!
//! # Shape
//!
//! A user costs a 24-byte slot (its id, and where its key lies) in a shard's hash table, plus
//! the key's bytes appended to the shard's key buffer: no allocation per email. A released
//! key's bytes stay until most of the buffer is garbage, then the live keys are copied into a
//! fresh one (each copy pays for itself in the releases that made the garbage).
//!
//! # Locking
//!
//! Each shard is a `Mutex` held for one table operation, so a claim is atomic on its own: of
//! two racing claims of one key, exactly one wins. The writes of one user never run at once
//! (the in-memory store holds the user's shard lock across a write, the durable store has one
//! writer thread), so the claims and releases of one user never interleave. A caller that
//! holds a store shard lock takes this one inside it, never the other way round.

use crate::users::id::UserId;
use hashbrown::HashTable;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

/// A key's holder and where the key's bytes lie in its shard's buffer. The id is two words so
/// that the slot aligns to 8 bytes (24 in all) rather than to `u128`'s 16 (32).
#[derive(Clone, Copy)]
struct Slot {
    hi: u64,
    lo: u64,
    at: u32,
    len: u32,
}

impl Slot {
    fn id(&self) -> UserId {
        UserId::from_u128((u128::from(self.hi) << 64) | u128::from(self.lo))
    }

    fn set_id(&mut self, id: UserId) {
        let v = id.as_u128();
        (self.hi, self.lo) = ((v >> 64) as u64, v as u64);
    }
}

/// One shard: the table and the bytes of its keys.
#[derive(Default)]
struct Keys {
    table: HashTable<Slot>,
    bytes: Vec<u8>,
    /// Bytes of `bytes` that belong to no slot any more.
    garbage: usize,
}

fn key_of<'a>(bytes: &'a [u8], slot: &Slot) -> &'a [u8] {
    &bytes[slot.at as usize..(slot.at + slot.len) as usize]
}

impl Keys {
    fn find(&self, hash: u64, key: &[u8]) -> Option<&Slot> {
        let bytes = &self.bytes;
        self.table.find(hash, |s| key_of(bytes, s) == key)
    }

    fn insert(&mut self, hasher: &RandomState, hash: u64, key: &[u8], id: UserId) {
        let at = self.bytes.len() as u32;
        self.bytes.extend_from_slice(key);
        let mut slot = Slot {
            hi: 0,
            lo: 0,
            at,
            len: key.len() as u32,
        };
        slot.set_id(id);
        let bytes = &self.bytes;
        self.table
            .insert_unique(hash, slot, |s| hasher.hash_one(key_of(bytes, s)));
    }

    fn remove(&mut self, hash: u64, key: &[u8], id: UserId) {
        let bytes = &self.bytes;
        if let Ok(entry) = self.table.find_entry(hash, |s| key_of(bytes, s) == key) {
            if entry.get().id() == id {
                entry.remove();
                self.garbage += key.len();
            }
        }
        if self.garbage > 4096 && self.garbage * 2 > self.bytes.len() {
            let mut fresh = Vec::with_capacity(self.bytes.len() - self.garbage);
            for slot in self.table.iter_mut() {
                let at = fresh.len() as u32;
                fresh.extend_from_slice(key_of(&self.bytes, slot));
                slot.at = at;
            }
            (self.bytes, self.garbage) = (fresh, 0);
        }
    }
}

/// A shard of the index on its own cache lines.
#[repr(align(128))]
struct Padded(Mutex<Keys>);

/// Email keys to the users that hold them; see the module docs.
pub struct EmailIndex {
    shards: Box<[Padded]>,
    /// Hashes keys for both the shard and the slot; its keys are random per process.
    hasher: RandomState,
}

impl EmailIndex {
    /// An index of `shards` shards (rounded up to a power of two).
    pub fn new(shards: usize) -> Self {
        EmailIndex {
            shards: (0..shards.max(1).next_power_of_two())
                .map(|_| Padded(Mutex::default()))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    /// The key's hash and its shard, locked. The table inside uses the hash's low bits for
    /// the bucket and its top seven for tags, so the shard takes bits from the middle.
    fn shard(&self, key: &str) -> (u64, MutexGuard<'_, Keys>) {
        let hash = self.hasher.hash_one(key.as_bytes());
        let i = (hash >> 32) as usize & (self.shards.len() - 1);
        // No operation panics half-way through a table update, so a poisoned lock is sound.
        let shard = self.shards[i].0.lock().unwrap_or_else(|e| e.into_inner());
        (hash, shard)
    }

    /// Gives `key` to `id` unless another user holds it. Returns true if and only if `id`
    /// holds it afterwards.
    pub fn claim(&self, key: &str, id: UserId) -> bool {
        let (hash, mut shard) = self.shard(key);
        if let Some(slot) = shard.find(hash, key.as_bytes()) {
            return slot.id() == id;
        }
        shard.insert(&self.hasher, hash, key.as_bytes(), id);
        true
    }

    /// Gives `key` to `id` whoever held it (replaying the log, which is the truth).
    pub fn assign(&self, key: &str, id: UserId) {
        let (hash, mut shard) = self.shard(key);
        let bytes = &shard.bytes;
        let found = shard
            .table
            .find(hash, |s| key_of(bytes, s) == key.as_bytes())
            .copied();
        match found {
            Some(slot) if slot.id() == id => {}
            Some(_) => {
                let Keys { table, bytes, .. } = &mut *shard;
                if let Some(slot) = table.find_mut(hash, |s| key_of(bytes, s) == key.as_bytes()) {
                    slot.set_id(id);
                }
            }
            None => shard.insert(&self.hasher, hash, key.as_bytes(), id),
        }
    }

    /// Lets `key` go if `id` holds it.
    pub fn release(&self, key: &str, id: UserId) {
        let (hash, mut shard) = self.shard(key);
        shard.remove(hash, key.as_bytes(), id);
    }

    /// The user holding `key`, if any.
    pub fn holder(&self, key: &str) -> Option<UserId> {
        let (hash, shard) = self.shard(key);
        shard.find(hash, key.as_bytes()).map(Slot::id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_has_one_holder_until_released() {
        let idx = EmailIndex::new(4);
        let (a, b) = (UserId::random(), UserId::random());
        assert!(idx.claim("x@y", a));
        assert!(idx.claim("x@y", a));
        assert!(!idx.claim("x@y", b));
        idx.release("x@y", b);
        assert_eq!(idx.holder("x@y"), Some(a));
        idx.release("x@y", a);
        assert!(idx.claim("x@y", b));
        idx.assign("x@y", a);
        assert_eq!(idx.holder("x@y"), Some(a));
    }

    /// Many keys claimed and released (so the buffers compact and the tables grow): every
    /// live key keeps its holder, every released one is free.
    #[test]
    fn keys_survive_growth_and_compaction() {
        let idx = EmailIndex::new(2);
        let users: Vec<(String, UserId)> = (0..20_000)
            .map(|i| (format!("user{i}@example.com"), UserId::random()))
            .collect();
        for (key, id) in &users {
            assert!(idx.claim(key, *id));
        }
        for (key, id) in users.iter().step_by(3) {
            idx.release(key, *id);
        }
        for (i, (key, id)) in users.iter().enumerate() {
            let expected = (i % 3 != 0).then_some(*id);
            assert_eq!(idx.holder(key), expected, "{key}");
        }
        for (key, id) in users.iter().step_by(3) {
            assert!(idx.claim(key, *id));
        }
        for (key, id) in &users {
            assert_eq!(idx.holder(key), Some(*id));
        }
    }
}
