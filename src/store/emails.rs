//! The email index: which user holds each email, so that emails stay unique.
//!
//! Keys are [`crate::users::email_key`]s (trimmed, lowercased). Clients choose them, so both
//! the shard and the slot inside it come from std's randomly keyed SipHash: a client cannot
//! pick emails that crowd one shard or one probe sequence (HashDoS).
//!
//! # Locking
//!
//! Each shard is a `Mutex` held for one map operation. Callers that change a user's email
//! hold that user's store shard lock around the call (the store's lock, then this one; never
//! the other way round), so the claims and releases of one user never interleave.

use crate::users::UserId;
use std::collections::hash_map::{Entry, RandomState};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

/// A shard of the index on its own cache lines.
#[repr(align(128))]
struct Padded(Mutex<HashMap<Box<str>, UserId>>);

/// Email keys to the users that hold them; see the module docs.
pub struct EmailIndex {
    shards: Box<[Padded]>,
    /// Picks the shard; its keys are random per process.
    hasher: RandomState,
}

impl EmailIndex {
    /// An index of `shards` shards (a power of two).
    pub fn new(shards: usize) -> Self {
        EmailIndex {
            shards: (0..shards.max(1).next_power_of_two())
                .map(|_| Padded(Mutex::default()))
                .collect(),
            hasher: RandomState::new(),
        }
    }

    fn shard(&self, key: &str) -> MutexGuard<'_, HashMap<Box<str>, UserId>> {
        let i = self.hasher.hash_one(key) as usize & (self.shards.len() - 1);
        // No operation panics half-way through a map update, so a poisoned lock is sound.
        self.shards[i].0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gives `key` to `id` unless another user holds it. Returns true if and only if `id`
    /// holds it afterwards.
    pub fn claim(&self, key: &str, id: UserId) -> bool {
        match self.shard(key).entry(key.into()) {
            Entry::Occupied(e) => *e.get() == id,
            Entry::Vacant(e) => {
                e.insert(id);
                true
            }
        }
    }

    /// Gives `key` to `id` whoever held it (replaying the log, which is the truth).
    pub fn assign(&self, key: &str, id: UserId) {
        self.shard(key).insert(key.into(), id);
    }

    /// Lets `key` go if `id` holds it.
    pub fn release(&self, key: &str, id: UserId) {
        let mut shard = self.shard(key);
        if shard.get(key) == Some(&id) {
            shard.remove(key);
        }
    }

    /// The user holding `key`, if any.
    pub fn holder(&self, key: &str) -> Option<UserId> {
        self.shard(key).get(key).copied()
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
    }
}
