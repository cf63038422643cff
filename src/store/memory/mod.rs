//! The in-memory store: users sharded across N `RwLock`ed hash maps.
//!
//! # Shape
//!
//! - **Shards** (`shard.rs`). N (a power of two) independently locked shards, each padded to
//!   its own cache lines so that two cores writing neighbouring shards do not fight over one
//!   line. A user's shard comes straight from the random bits of its id: ids are random v4
//!   UUIDs made by userd, so no SipHash (or any hashing) is needed to spread them, and a
//!   client cannot pick ids to crowd one shard since clients never choose ids.
//! - **Index.** Each shard maps an id (16 bytes) to where its record lies (8 bytes).
//! - **Arena** (`arena.rs`). Records (a small head, the JSON document, the email key) are
//!   appended to the shard's chunks and read back by refcount. An update appends the new
//!   record and leaves the old one in the arena, unreachable.
//! - **Creation order.** Each shard keeps `(sequence number, id)` of its users in creation
//!   order (24 bytes a user); a delete marks its entry gone and a shard compacts once most are
//!   gone. Sequence numbers come from one counter, taken under the user's shard lock, so a
//!   page of the list is a binary search per shard and a merge (see [`MemoryStore::list_now`]).
//! - **Emails** ([`emails`]). A separate, SipHash-keyed index holds who has which email.
//!
//! # One write path
//!
//! Every write, whoever makes it, goes through [`MemoryStore::admit`] (the version check and
//! the email claim, the only place either happens) and [`MemoryStore::apply`]. This store's
//! own [`UserStore::write`] does both under the user's shard lock; the durable store admits on
//! its writer thread, against the changes it has logged but not yet applied, and applies once
//! the write is on disk; recovery applies what the log holds.
//!
//! # Locking
//!
//! Every method takes at most one shard lock (a write that claims or lets go of an email also
//! takes an email shard's lock inside it, always in that order), never holds it across an
//! `.await` (the methods are synchronous under their async face) and never while serializing:
//! documents arrive already serialized. When a shard's map grows it rehashes under that
//! shard's write lock only; the other N-1 shards go on serving.

mod arena;
pub mod emails;
mod shard;

use super::{Outage, Page, StoreError, Stored, UserStore, Write};
use crate::users::id::UserId;
use crate::users::page::Cursor;
use bytes::Bytes;
use emails::EmailIndex;
use shard::{Key, Shard, GONE};
use std::future::{ready, Future};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// A shard on its own cache lines (two, for the adjacent-line prefetcher).
#[repr(align(128))]
struct Padded(RwLock<Shard>);

/// Users in memory, sharded; see the module docs.
pub struct MemoryStore {
    shards: Box<[Padded]>,
    /// `shards.len() - 1`; the shard count is a power of two.
    mask: u64,
    len: AtomicUsize,
    /// The sequence number the next new user gets: creation order, for listing.
    next_seq: AtomicU64,
    /// Who holds each email.
    emails: EmailIndex,
}

/// A change to one user, borrowed from a [`Write`] or from a log record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change<'a> {
    /// The user's whole document, its version and its email key.
    Put {
        /// The JSON document.
        doc: &'a [u8],
        /// The uniqueness key of its email.
        email_key: &'a str,
        /// The version the document holds.
        version: u32,
    },
    /// The user is gone.
    Remove,
}

impl<'a> Change<'a> {
    /// What `write` changes.
    pub fn of(write: &'a Write) -> Self {
        match (write.doc(), write.claims(), write.version_after()) {
            (Some(doc), Some(email_key), Some(version)) => Change::Put {
                doc,
                email_key,
                version,
            },
            _ => Change::Remove,
        }
    }
}

/// One user as a walk of the store sees it.
pub struct Walked<'a> {
    /// The user's id.
    pub id: UserId,
    /// Its creation sequence number.
    pub seq: u64,
    /// Its version.
    pub version: u32,
    /// Its JSON document.
    pub doc: &'a [u8],
    /// The uniqueness key of its email.
    pub email_key: &'a str,
}

impl MemoryStore {
    /// A store with `shards` shards, rounded up to a power of two (at least 1).
    pub fn new(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        MemoryStore {
            shards: (0..n).map(|_| Padded(RwLock::default())).collect(),
            mask: n as u64 - 1,
            len: AtomicUsize::new(0),
            next_seq: AtomicU64::new(1),
            emails: EmailIndex::new(n),
        }
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// The email index.
    pub fn emails(&self) -> &EmailIndex {
        &self.emails
    }

    /// How many users are stored.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Returns true if and only if no user is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The sequence number the next new user would get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
    }

    /// Makes sure new users get sequence numbers of at least `next` (numbers below it were
    /// handed out before, perhaps to users since deleted; a cursor may name them).
    pub fn reserve_seq(&self, next: u64) {
        self.next_seq.fetch_max(next, Ordering::Relaxed);
    }

    fn shard(&self, key: Key) -> &RwLock<Shard> {
        // Bits 32.. of the mix choose the shard; the map inside hashes with the low bits and
        // tags with the top seven, so the bits that are equal within a shard are unused there.
        &self.shards[((key.mix() >> 32) & self.mask) as usize].0
    }

    /// Looks a user up. Takes the shard's read lock for one map probe and one refcount bump.
    #[inline]
    pub fn get_now(&self, id: UserId) -> Option<Stored> {
        let key = Key::of(id);
        let shard = read(self.shard(key));
        shard.index.get(&key).map(|&loc| {
            let (doc, version) = shard.arena.read(loc);
            Stored { doc, version }
        })
    }

    /// The version of a user, if it exists.
    pub fn version_now(&self, id: UserId) -> Option<u32> {
        let key = Key::of(id);
        read(self.shard(key)).version(key)
    }

    /// Checks `write` against `current`, the user's version as it will be when the write
    /// applies (`None`: no such user), and claims the email key it takes. The version check
    /// and the email claim of every store built on this one happen here and nowhere else.
    ///
    /// On success the key is held by the user until [`MemoryStore::apply`] (or
    /// [`MemoryStore::unclaim`], if the write is abandoned).
    pub fn admit(&self, write: &Write, current: Option<u32>) -> Result<(), StoreError> {
        write.check(current)?;
        match write.claims() {
            Some(key) if !self.emails.claim(key, write.id()) => Err(StoreError::EmailTaken),
            _ => Ok(()),
        }
    }

    /// Lets go of the email key an admitted write claimed, when it will never be applied (its
    /// log write failed), unless the user held that key before.
    pub fn unclaim(&self, write: &Write) {
        let Some(key) = write.claims() else { return };
        let id = write.id();
        let k = Key::of(id);
        let held = read(self.shard(k)).email_key(k) == Some(key);
        if !held {
            self.emails.release(key, id);
        }
    }

    /// Applies a change to user `id` without checking it: a new user gets sequence number
    /// `seq` (or the next one), its email key is given to it and the key it held before, if
    /// another, is let go. Used once a write is admitted (and durable), and by recovery to
    /// replay the log (which is the truth, so keys are assigned whoever held them); applying
    /// a change twice changes nothing.
    pub fn apply(&self, id: UserId, change: Change<'_>, seq: Option<u64>) {
        let key = Key::of(id);
        let mut shard = write_lock(self.shard(key));
        if let Change::Put { email_key, .. } = change {
            self.emails.assign(email_key, id);
        }
        self.apply_locked(&mut shard, key, change, seq);
    }

    /// [`MemoryStore::apply`] under the shard's lock, the email already claimed.
    fn apply_locked(&self, shard: &mut Shard, key: Key, change: Change<'_>, seq: Option<u64>) {
        let old = shard.email_key(key).map(str::to_owned);
        let kept = match change {
            Change::Put {
                doc,
                email_key,
                version,
            } => {
                if shard.put(key, doc, email_key, version, || self.take_seq(seq)) {
                    self.len.fetch_add(1, Ordering::Relaxed);
                }
                Some(email_key)
            }
            Change::Remove => {
                if shard.remove(key) {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                }
                None
            }
        };
        if let Some(old) = old.filter(|old| Some(old.as_str()) != kept) {
            self.emails.release(&old, key.id());
        }
    }

    /// A new user's sequence number: `seq` when the log knows it (then later users get
    /// larger ones), else the next one. Called under the user's shard lock, so that each
    /// shard receives its sequence numbers in increasing order.
    fn take_seq(&self, seq: Option<u64>) -> u64 {
        match seq {
            Some(seq) => {
                self.next_seq.fetch_max(seq + 1, Ordering::Relaxed);
                seq
            }
            None => self.next_seq.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The in-memory store's write: admitted and applied under the user's shard lock, so
    /// that no other write to the user comes between the check and the change.
    pub fn write_now(&self, write: &Write) -> Result<(), StoreError> {
        let key = Key::of(write.id());
        let mut shard = write_lock(self.shard(key));
        self.admit(write, shard.version(key))?;
        self.apply_locked(&mut shard, key, Change::of(write), None);
        Ok(())
    }

    /// A version 1 user with no email claim (for benches and tests of the storage alone).
    pub fn insert_now(&self, id: UserId, doc: &[u8]) {
        let key = Key::of(id);
        let mut shard = write_lock(self.shard(key));
        if shard.put(key, doc, "", 1, || self.take_seq(None)) {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Up to `limit` users created after `after`, oldest first; see [`UserStore::list`].
    ///
    /// Takes each shard's read lock in turn for a binary search and at most `limit + 1`
    /// refcount bumps, then merges the shards' runs by sequence number: no document is parsed
    /// or re-serialized.
    pub fn list_now(&self, after: Option<Cursor>, limit: usize) -> Page {
        let after = after.map_or(0, |c| c.0);
        if limit == 0 {
            return Page::default();
        }
        let mut found: Vec<(u64, Bytes)> = Vec::new();
        for shard in self.shards.iter() {
            let shard = read(&shard.0);
            let from = shard.order.partition_point(|e| e.0 <= after);
            let live = shard.order[from..].iter().filter(|e| e.1 != GONE);
            for &(seq, key) in live.take(limit + 1) {
                if let Some(&loc) = shard.index.get(&key) {
                    found.push((seq, shard.arena.read(loc).0));
                }
            }
        }
        found.sort_unstable_by_key(|e| e.0);
        let next = (found.len() > limit).then(|| Cursor(found[limit - 1].0));
        found.truncate(limit);
        Page {
            docs: found.into_iter().map(|e| e.1).collect(),
            next,
        }
    }

    /// Calls `f` with every user of shard `shard` (below [`Self::shard_count`]) in creation
    /// order. Holds the shard's read lock only to copy its live order entries with their
    /// places (32 bytes a user) and share its arena (a refcount per segment, a copy of the open
    /// part), never while `f` runs. So writers to the shard wait for a copy, not for the walk
    /// (the durable store's snapshots walk this way).
    pub fn for_each_in_shard(&self, shard: usize, mut f: impl FnMut(Walked<'_>)) {
        let (entries, arena) = {
            let s = read(&self.shards[shard].0);
            let entries: Vec<_> = (s.order.iter())
                .filter(|e| e.1 != GONE)
                .filter_map(|&(seq, key)| s.index.get(&key).map(|&loc| (seq, key, loc)))
                .collect();
            (entries, s.arena.snapshot())
        };
        for (seq, key, loc) in entries {
            let (doc, version) = arena.read(loc);
            f(Walked {
                id: key.id(),
                seq,
                version,
                doc: &doc,
                email_key: arena.key(loc),
            });
        }
    }
}

/// Takes a read lock. A panic while a lock was held cannot leave a shard half-updated (no
/// method panics between its two writes), so a poisoned lock is used as it is.
fn read(lock: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write_lock(lock: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl UserStore for MemoryStore {
    fn get(&self, id: UserId) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send {
        ready(Ok(self.get_now(id)))
    }

    fn write(&self, write: Write) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.write_now(&write))
    }

    fn list(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send {
        ready(Ok(self.list_now(after, limit)))
    }

    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        ready(Ok(self.len() as u64))
    }

    /// Memory always takes writes.
    fn writable(&self) -> Result<(), Outage> {
        Ok(())
    }

    /// Nothing to flush: the users go with the process.
    fn close(&self) {}
}

#[cfg(test)]
mod tests;
