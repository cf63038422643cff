//! The in-memory store: users sharded across N `RwLock`ed hash tables.
//!
//! # Shape
//!
//! - **Records** (`record.rs`). A user is one immutable, reference-counted allocation: the
//!   fields of its document (strings already JSON-escaped) and its email key. A replaced or
//!   deleted user's record is freed once nothing refers to it: memory follows the live users,
//!   whatever the history of writes, and there is no arena to compact.
//! - **Shards** (`shard.rs`). N (a power of two) independently locked shards, each padded to
//!   its own cache lines so that two cores writing neighbouring shards do not fight over one
//!   line. A user's shard comes straight from the random bits of its id: ids are random v4
//!   UUIDs made by userd, so no SipHash (or any hashing) is needed to spread them, and a
//!   client cannot pick ids to crowd one shard since clients never choose ids. Each shard has
//!   an id index (a pointer to the record a user) and its users in creation order (a sequence
//!   number and a pointer a user).
//! - **Emails** ([`emails`]). A separate, SipHash-keyed index of pointers to the records
//!   holding each email key.
//!
//! A read renders what it needs from the record under the shard's read lock: no reference
//! count is touched on the read path.
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
//! Every method takes at most one shard lock at a time (a write that claims or lets go of an
//! email also takes an email shard's lock inside it, always in that order), never holds it
//! across an `.await` (the methods are synchronous under their async face). When a shard's
//! table grows it rehashes under that shard's write lock only; the other N-1 shards go on
//! serving. A page of the list takes one shard's read lock at a time.

pub mod emails;
mod record;
mod shard;

pub use record::{Malformed, Record};

use super::{check, Outage, StoreError, UserStore, UserView, Write};
use crate::users::id::UserId;
use crate::users::page::Cursor;
use emails::{Claim, EmailIndex};
use shard::{bits, Shard};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
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

/// A change to one user, ready to apply: its new record, or its removal.
#[derive(Debug, Clone)]
pub enum Change {
    /// The user's whole new state.
    Put(Record),
    /// The user is gone.
    Remove(UserId),
}

impl Change {
    /// The record `write` stores, or the removal it makes.
    pub fn of(write: &Write<'_>) -> Result<Change, StoreError> {
        match write.user() {
            Some(user) => Record::new(user, 0)
                .map(Change::Put)
                .map_err(|Malformed| StoreError::Unavailable(Outage::TooLarge)),
            None => Ok(Change::Remove(write.id())),
        }
    }

    /// The user the change is about.
    pub fn id(&self) -> UserId {
        match self {
            Change::Put(r) => r.id(),
            Change::Remove(id) => *id,
        }
    }

    /// The user's version once the change is applied (`None`: gone).
    pub fn version_after(&self) -> Option<u32> {
        match self {
            Change::Put(r) => Some(r.version()),
            Change::Remove(_) => None,
        }
    }
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

    fn shard(&self, id: UserId) -> &RwLock<Shard> {
        // Bits 32.. of the id's random bits choose the shard; the table inside hashes with the
        // low bits and tags with the top seven, so the bits equal within a shard are unused.
        &self.shards[((bits(id) >> 32) & self.mask) as usize].0
    }

    /// Calls `f` with user `id`, if it exists, under the shard's read lock: one table probe,
    /// no copy, no reference count.
    #[inline]
    pub fn get_now<R>(&self, id: UserId, f: impl FnOnce(UserView<'_>) -> R) -> Option<R> {
        let shard = read(self.shard(id));
        shard.find(id).map(|r| f(r.view()))
    }

    /// The version of a user, if it exists.
    pub fn version_now(&self, id: UserId) -> Option<u32> {
        read(self.shard(id)).find(id).map(Record::version)
    }

    /// Checks a change decided on version `expected` (`None` for a create) against `current`,
    /// the user's version as it will be when the change applies (`None`: no such user), and
    /// claims the email key it takes. The version check and the email claim of every store
    /// built on this one happen here and nowhere else.
    ///
    /// On success the key is held by the user until [`MemoryStore::apply`] (or
    /// [`MemoryStore::unclaim`], if the change is abandoned); the [`Claim`] says whether
    /// applying must point the key's slot at the new record.
    pub fn admit(
        &self,
        change: &Change,
        expected: Option<u32>,
        current: Option<u32>,
    ) -> Result<Claim, StoreError> {
        check(expected, current)?;
        match change {
            Change::Put(record) => self.emails.claim(record).ok_or(StoreError::EmailTaken),
            // A removal claims nothing; its key is let go when it applies.
            Change::Remove(_) => Ok(Claim::Held),
        }
    }

    /// Gives back the email key an admitted change claimed, when it will never be applied
    /// (its log write failed), unless the user holds that key as it stands.
    pub fn unclaim(&self, change: &Change) {
        let Change::Put(record) = change else { return };
        if self.emails.release_claim(record) {
            // The claim replaced nothing; if the user as it stands holds the same key, the
            // slot goes back to its record.
            let shard = read(self.shard(record.id()));
            if let Some(current) = shard.find(record.id()) {
                if current.email_key() == record.email_key() {
                    self.emails.assign(current);
                }
            }
        }
    }

    /// Applies a change without checking it: a new user gets sequence number `seq` (or the
    /// next one), its email key is given to it and the key it held before, if another, is let
    /// go. Used once a change is admitted (and durable), and by recovery to replay the log
    /// (which is the truth, so keys are assigned whoever held them); applying a change twice
    /// changes nothing.
    pub fn apply(&self, change: &Change, seq: Option<u64>) {
        self.apply_claimed(change, seq, Claim::Held);
    }

    /// [`MemoryStore::apply`] of a change whose [`MemoryStore::admit`] made `claim`: a new
    /// claim's slot points at the record already.
    pub fn apply_claimed(&self, change: &Change, seq: Option<u64>, claim: Claim) {
        let mut shard = write_lock(self.shard(change.id()));
        self.apply_locked(&mut shard, change, seq, claim);
    }

    /// [`MemoryStore::apply_claimed`] under the user's shard lock.
    fn apply_locked(&self, shard: &mut Shard, change: &Change, seq: Option<u64>, claim: Claim) {
        match change {
            Change::Put(record) => {
                let old = shard.put(record.clone(), || self.take_seq(seq));
                match &old {
                    None => {
                        self.len.fetch_add(1, Ordering::Relaxed);
                    }
                    Some(old) if old.email_key() != record.email_key() => {
                        self.emails.release(old.email_key(), old.id());
                    }
                    Some(_) => {}
                }
                if claim == Claim::Held {
                    self.emails.assign(record);
                }
                // The old record is freed here, under no lock but the shard's, once the slots
                // that held it are replaced.
                drop(old);
            }
            Change::Remove(id) => {
                if let Some(old) = shard.remove(*id) {
                    self.len.fetch_sub(1, Ordering::Relaxed);
                    self.emails.release(old.email_key(), old.id());
                }
            }
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
    pub fn write_now(&self, write: &Write<'_>) -> Result<(), StoreError> {
        let change = Change::of(write)?;
        let mut shard = write_lock(self.shard(change.id()));
        let current = shard.find(change.id()).map(Record::version);
        let claim = self.admit(&change, write.expected(), current)?;
        self.apply_locked(&mut shard, &change, None, claim);
        Ok(())
    }

    /// Calls `each` with up to `limit` users created after `after`, oldest first; returns the
    /// next page's cursor if there are users after this page (see [`UserStore::list`]).
    ///
    /// A k-way merge of the shards' creation orders: one binary search per shard to find
    /// where each starts, then one shard's read lock at a time, taken for the users it has
    /// before the next shard's next one. A page touches O(limit + shards) entries, whatever
    /// the store's size.
    pub fn list_now(
        &self,
        after: Option<Cursor>,
        limit: usize,
        mut each: impl FnMut(UserView<'_>),
    ) -> Option<Cursor> {
        let after = after.map_or(0, |c| c.0);
        // Each shard's next user: (its sequence number, the shard).
        let mut heads = BinaryHeap::with_capacity(self.shards.len());
        for (i, shard) in self.shards.iter().enumerate() {
            let s = read(&shard.0);
            let head = s.from(s.seek(after)).next().map(|(_, r)| r.seq());
            if let Some(seq) = head {
                heads.push(Reverse((seq, i)));
            }
        }
        let (mut listed, mut last) = (0, after);
        while let Some(Reverse((seq, i))) = heads.pop() {
            let s = read(&self.shards[i].0);
            let until = heads.peek().map_or(u64::MAX, |h| h.0 .0);
            // Users created or deleted since the head was read are fine: seek again.
            for (_, r) in s.from(s.seek(seq - 1)) {
                if r.seq() > until {
                    heads.push(Reverse((r.seq(), i)));
                    break;
                }
                if listed == limit {
                    return Some(Cursor(last));
                }
                each(r.view());
                (listed, last) = (listed + 1, r.seq());
            }
            if listed == limit && !heads.is_empty() {
                return Some(Cursor(last));
            }
        }
        None
    }

    /// Calls `f` with every user of shard `shard` (below [`Self::shard_count`]) in creation
    /// order. Holds the shard's read lock only to take a reference to each record (a refcount
    /// each), never while `f` runs: writers to the shard wait for that, not for the walk (the
    /// durable store's snapshots walk this way).
    pub fn for_each_in_shard(&self, shard: usize, mut f: impl FnMut(&Record)) {
        let records: Vec<Record> = read(&self.shards[shard].0).records().cloned().collect();
        for r in &records {
            f(r);
        }
    }

    /// A user put straight in, with no email claim (for benches and tests of the storage).
    pub fn insert_now(&self, user: &UserView<'_>) {
        let Ok(record) = Record::new(user, 0) else {
            return;
        };
        let mut shard = write_lock(self.shard(user.id));
        if shard.put(record, || self.take_seq(None)).is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Order entries of a shard, live and gone (for tests of the compaction).
    #[cfg(test)]
    fn order_len(&self, shard: usize) -> usize {
        read(&self.shards[shard].0).order_len()
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
    fn get<R, F>(
        &self,
        id: UserId,
        read: F,
    ) -> impl Future<Output = Result<Option<R>, StoreError>> + Send
    where
        R: Send,
        F: FnOnce(UserView<'_>) -> R + Send,
    {
        ready(Ok(self.get_now(id, read)))
    }

    fn write<'a>(
        &'a self,
        write: Write<'a>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'a {
        ready(self.write_now(&write))
    }

    fn list<F>(
        &self,
        after: Option<Cursor>,
        limit: usize,
        each: F,
    ) -> impl Future<Output = Result<Option<Cursor>, StoreError>> + Send
    where
        F: FnMut(UserView<'_>) + Send,
    {
        ready(Ok(self.list_now(after, limit, each)))
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
