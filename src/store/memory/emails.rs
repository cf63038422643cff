//! The email index: which user holds each email key, so that emails stay unique.
//!
//! Keys are [`crate::users::email_key`]s (trimmed, lowercased). Clients choose them, so both
//! the shard and the slot inside it come from std's randomly keyed SipHash: a client cannot
//! pick emails that crowd one shard or one probe sequence (HashDoS).
//!
//! # Shape
//!
//! A slot is the holder's [`Record`] (a pointer), which holds the key: an email costs 8 bytes
//! of table and no copy of the key. Lookups compare the key in the record, so a claim is
//! exact, never a guess from a hash.
//!
//! # Locking
//!
//! Each shard is a `Mutex` held for one table operation, so a claim is atomic on its own: of
//! two racing claims of one key, exactly one wins. The writes of one user never run at once
//! (the in-memory store holds the user's shard lock across a write, the durable store has one
//! writer thread), so the claims and releases of one user never interleave. A caller that
//! holds a store shard lock takes this one inside it, never the other way round.

use super::record::Record;
use crate::users::id::UserId;
use hashbrown::HashTable;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

/// What a successful claim did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// The key was free: its slot points at the claiming record now.
    New,
    /// The user held the key already: its slot points at the user's record as it stands,
    /// until the claiming record is applied.
    Held,
}

/// A shard of the index on its own cache lines.
#[repr(align(128))]
struct Padded(Mutex<HashTable<Record>>);

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
    fn shard(&self, key: &str) -> (u64, MutexGuard<'_, HashTable<Record>>) {
        let hash = self.hasher.hash_one(key.as_bytes());
        let i = (hash >> 32) as usize & (self.shards.len() - 1);
        // No operation panics half-way through a table update, so a poisoned lock is sound.
        let shard = self.shards[i].0.lock().unwrap_or_else(|e| e.into_inner());
        (hash, shard)
    }

    fn rehash(&self) -> impl Fn(&Record) -> u64 + '_ {
        move |r| self.hasher.hash_one(r.email_key().as_bytes())
    }

    /// Gives `record`'s key to its user unless another user holds it; `None` if another
    /// does. (If the user held it already, the slot keeps the record it has until
    /// [`EmailIndex::assign`].)
    pub fn claim(&self, record: &Record) -> Option<Claim> {
        let key = record.email_key();
        let (hash, mut shard) = self.shard(key);
        if let Some(holder) = shard.find(hash, |r| r.email_key() == key) {
            return (holder.id() == record.id()).then_some(Claim::Held);
        }
        shard.insert_unique(hash, record.clone(), self.rehash());
        Some(Claim::New)
    }

    /// Gives `record`'s key to its user whoever held it (the log is the truth when it is
    /// replayed), the slot pointing at `record` from now on.
    pub fn assign(&self, record: &Record) {
        let key = record.email_key();
        let (hash, mut shard) = self.shard(key);
        match shard.find_mut(hash, |r| r.email_key() == key) {
            Some(slot) => *slot = record.clone(),
            None => {
                shard.insert_unique(hash, record.clone(), self.rehash());
            }
        }
    }

    /// Lets `key` go if user `id` holds it.
    pub fn release(&self, key: &str, id: UserId) {
        let (hash, mut shard) = self.shard(key);
        if let Ok(entry) = shard.find_entry(hash, |r| r.email_key() == key && r.id() == id) {
            entry.remove();
        }
    }

    /// Lets `record`'s key go if the slot holds this very record (a claim never applied);
    /// returns true if and only if it did.
    pub fn release_claim(&self, record: &Record) -> bool {
        let key = record.email_key();
        let (hash, mut shard) = self.shard(key);
        match shard.find_entry(hash, |r| r.same(record)) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// The user holding `key`, if any.
    pub fn holder(&self, key: &str) -> Option<UserId> {
        let (hash, shard) = self.shard(key);
        shard.find(hash, |r| r.email_key() == key).map(Record::id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserView;

    fn record(key: &str) -> Record {
        let view = UserView {
            id: UserId::random(),
            version: 1,
            created_at: "2026-12-04T03:29:13.123Z",
            updated_at: "2026-12-04T03:29:13.123Z",
            name: "n",
            email: key,
            email_key: key,
        };
        Record::new(&view, 1).unwrap()
    }

    #[test]
    fn a_key_has_one_holder_until_released() {
        let idx = EmailIndex::new(4);
        let (a, b) = (record("x@y"), record("x@y"));
        assert_eq!(idx.claim(&a), Some(Claim::New));
        assert_eq!(idx.claim(&a), Some(Claim::Held));
        assert_eq!(idx.claim(&b), None);
        idx.release("x@y", b.id());
        assert_eq!(idx.holder("x@y"), Some(a.id()));
        idx.release("x@y", a.id());
        assert_eq!(idx.claim(&b), Some(Claim::New));
        idx.assign(&a);
        assert_eq!(idx.holder("x@y"), Some(a.id()));
        assert!(!idx.release_claim(&b));
        assert!(idx.release_claim(&a));
        assert_eq!(idx.holder("x@y"), None);
    }

    /// Many keys claimed and released (so the tables grow and shrink): every live key keeps
    /// its holder, every released one is free.
    #[test]
    fn keys_survive_growth() {
        let idx = EmailIndex::new(2);
        let users: Vec<Record> = (0..20_000)
            .map(|i| record(&format!("user{i}@example.com")))
            .collect();
        for r in &users {
            assert_eq!(idx.claim(r), Some(Claim::New));
        }
        for r in users.iter().step_by(3) {
            idx.release(r.email_key(), r.id());
        }
        for (i, r) in users.iter().enumerate() {
            let expected = (i % 3 != 0).then_some(r.id());
            assert_eq!(idx.holder(r.email_key()), expected, "{i}");
        }
        for r in users.iter().step_by(3) {
            assert_eq!(idx.claim(r), Some(Claim::New));
        }
        for r in &users {
            assert_eq!(idx.holder(r.email_key()), Some(r.id()));
        }
    }
}
