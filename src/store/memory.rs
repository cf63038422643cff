//! The in-memory store: users sharded across N `RwLock`ed hash maps.
//!
//! # Shape
//!
//! - **Shards.** N (a power of two) independently locked shards, each padded to its own cache
//!   lines so that two cores writing neighbouring shards do not fight over one line. A user's
//!   shard comes straight from the random bits of its id: ids are random v4 UUIDs made by
//!   userd, so no SipHash (or any hashing) is needed to spread them, and a client cannot pick
//!   ids to crowd one shard since clients never choose ids.
//! - **Index.** Each shard maps an id (16 bytes) to where its document lies (8 bytes).
//! - **Arena.** Documents are appended to the shard's chunks, each record a 16-byte head
//!   (length, version, creation sequence number) and the JSON. A full chunk is frozen into an immutable [`Bytes`]; a read then answers with a
//!   slice of it, which costs one refcount bump, no copy and no serialization. Written bytes are
//!   frozen into shared segments every 1 KiB, so only records in the shard's last unfrozen
//!   kilobyte (a few users) are copied out on read.
//!
//! Compared with one heap allocation per user (plus its map entry), the arena saves the
//! allocator's per-block overhead and a pointer-sized field per user. An update appends the
//! new document and leaves the old one in the arena, unreachable (users change rarely).
//! - **Creation order.** Each shard keeps `(sequence number, id)` of its users in creation
//!   order (24 bytes a user); a delete marks its entry gone and a shard compacts once most are
//!   gone. Sequence numbers come from one counter, taken under the user's shard lock, so a
//!   page of the list is a binary search per shard and a merge (see [`MemoryStore::list_now`]).
//! - **Emails.** A separate, SipHash-keyed index ([`EmailIndex`]) holds who has which email.
//!
//! # Locking
//!
//! Every method takes at most one shard lock (a write that changes an email also takes an
//! email shard's lock inside it, always in that order), never holds it across an `.await` (the methods
//! are synchronous under their async face) and never while serializing: documents arrive
//! already serialized. When a shard's map grows it rehashes under that shard's write lock
//! only; the other N-1 shards go on serving.

use super::emails::EmailIndex;
use super::{EmailChange, Page, StoreError, Stored, UserStore};
use crate::users::{doc_keys, Cursor, UserId};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use std::future::{ready, Future};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Size of an arena allocation: large enough that allocations are few (about 8 000 for a
/// million users) and the allocator's overhead per user is nil.
const CHUNK: usize = 16 * 1024;

/// Written bytes after which the open part of an allocation is frozen into a shared segment,
/// though the allocation goes on filling. Only records not yet frozen are copied on read, so
/// this bounds the copying to a shard's last 1 KiB of writes (a few users); each segment costs
/// a 32-byte handle, about 6 bytes per user.
const SEAL_BYTES: usize = 1024;

/// A map key: the id's 128 bits as two words, so that an entry aligns to 8 bytes (24 in all)
/// rather than to `u128`'s 16 (32 in all).
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key {
    hi: u64,
    lo: u64,
}

impl Key {
    fn of(id: UserId) -> Self {
        let v = id.as_u128();
        Key {
            hi: (v >> 64) as u64,
            lo: v as u64,
        }
    }

    /// 64 random bits of the id. The version nibble (in `hi`) and variant bits (in `lo`) sit
    /// at different positions, so their xor has no fixed bit.
    fn mix(self) -> u64 {
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
struct IdBits(u64);

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

/// Where a document lies in its shard's arena.
#[derive(Clone, Copy)]
struct Loc {
    chunk: u32,
    offset: u32,
}

/// Bytes of a record before its document: length (u32), version (u32), creation sequence
/// number (u64), all little endian. The version sits here so that a read can send the `ETag`
/// without parsing the document.
const RECORD_HEAD: usize = 16;

/// What a record's head says besides the length.
#[derive(Clone, Copy)]
struct Meta {
    version: u32,
    seq: u64,
}

/// A shard's append-only arena of documents.
#[derive(Default)]
struct Arena {
    /// Full chunks, immutable, so that reads can share them by refcount.
    sealed: Vec<Bytes>,
    /// The chunk being filled; its index is `sealed.len()`.
    open: BytesMut,
}

impl Arena {
    fn push(&mut self, doc: &[u8], meta: Meta) -> Loc {
        let need = RECORD_HEAD + doc.len();
        if self.open.capacity() - self.open.len() < need {
            if !self.open.is_empty() {
                let full = std::mem::take(&mut self.open).freeze();
                self.sealed.push(full);
            }
            self.open = BytesMut::with_capacity(CHUNK.max(need));
        }
        let loc = Loc {
            chunk: self.sealed.len() as u32,
            offset: self.open.len() as u32,
        };
        self.open.put_u32_le(doc.len() as u32);
        self.open.put_u32_le(meta.version);
        self.open.put_u64_le(meta.seq);
        self.open.extend_from_slice(doc);
        if self.open.len() >= SEAL_BYTES {
            // Freeze what is written; the rest of the allocation stays open for the next
            // records (`split` shares the allocation, it copies nothing).
            let written = self.open.split().freeze();
            self.sealed.push(written);
        }
        loc
    }

    fn chunk(&self, loc: Loc) -> &[u8] {
        match self.sealed.get(loc.chunk as usize) {
            Some(chunk) => chunk,
            None => &self.open,
        }
    }

    fn meta(&self, loc: Loc) -> (usize, Meta) {
        let at = loc.offset as usize;
        let head = &self.chunk(loc)[at..at + RECORD_HEAD];
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let seq = u64::from(word(8)) | (u64::from(word(12)) << 32);
        (
            word(0) as usize,
            Meta {
                version: word(4),
                seq,
            },
        )
    }

    /// The document and its version: a refcount bump for a sealed chunk, a copy from the
    /// open one (which is still being written, so it cannot be shared). Every GET runs this,
    /// so it finds the chunk once and reads the head's two words straight.
    #[inline(always)]
    fn read(&self, loc: Loc) -> Stored {
        let at = loc.offset as usize;
        let sealed = self.sealed.get(loc.chunk as usize);
        let chunk: &[u8] = match sealed {
            Some(chunk) => chunk,
            None => &self.open,
        };
        let mut head = [0u8; 8];
        head.copy_from_slice(&chunk[at..at + 8]);
        let [l0, l1, l2, l3, v0, v1, v2, v3] = head;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let range = at + RECORD_HEAD..at + RECORD_HEAD + len;
        let doc = match sealed {
            Some(chunk) => chunk.slice(range),
            None => Bytes::copy_from_slice(&chunk[range]),
        };
        Stored {
            doc,
            version: u32::from_le_bytes([v0, v1, v2, v3]),
        }
    }
}

/// The key of an order entry whose user is gone (no v4 UUID is all zeros).
const GONE: Key = Key { hi: 0, lo: 0 };

#[derive(Default)]
struct Shard {
    index: HashMap<Key, Loc, BuildHasherDefault<IdBits>>,
    arena: Arena,
    /// This shard's users in creation order: (sequence number, id), the id [`GONE`] once the
    /// user is deleted, until enough are gone to compact.
    order: Vec<(u64, Key)>,
    /// Entries of `order` that are [`GONE`].
    gone: usize,
}

impl Shard {
    /// Stores `doc` for `key`: a new user gets `seq` and an order entry; an existing one keeps
    /// its sequence number. Returns true if and only if the user is new.
    fn put(&mut self, key: Key, doc: &[u8], version: u32, seq: u64) -> bool {
        if let Some(loc) = self.index.get(&key).copied() {
            let (_, meta) = self.arena.meta(loc);
            let loc = self.arena.push(
                doc,
                Meta {
                    version,
                    seq: meta.seq,
                },
            );
            self.index.insert(key, loc);
            return false;
        }
        let loc = self.arena.push(doc, Meta { version, seq });
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

    /// Removes `key`'s user; returns its document.
    fn remove(&mut self, key: Key) -> Option<Stored> {
        let loc = self.index.remove(&key)?;
        let stored = self.arena.read(loc);
        let (_, meta) = self.arena.meta(loc);
        if let Ok(at) = self.order.binary_search_by_key(&meta.seq, |e| e.0) {
            self.order[at].1 = GONE;
            self.gone += 1;
        }
        // Compact once most entries are gone, so a walk skips at most about as many as it
        // lists and the cost is spread over as many deletes as it reclaims.
        if self.gone > 64 && self.gone * 2 > self.order.len() {
            self.order.retain(|e| e.1 != GONE);
            self.gone = 0;
        }
        Some(stored)
    }
}

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

    /// The sequence number the next new user would get.
    pub fn next_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed)
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
        shard.index.get(&key).map(|&loc| shard.arena.read(loc))
    }

    /// The version of a user, if it exists.
    pub fn version_now(&self, id: UserId) -> Option<u32> {
        let key = Key::of(id);
        let shard = read(self.shard(key));
        shard
            .index
            .get(&key)
            .map(|&loc| shard.arena.meta(loc).1.version)
    }

    /// Stores a user's document as version `version`, creating it (with sequence number
    /// `seq`, or the next one) or replacing it (keeping its own). Touches no email. Takes the
    /// shard's write lock for one append and one map insert (which may grow that shard's map).
    pub fn put_now(&self, id: UserId, doc: &[u8], version: u32, seq: Option<u64>) {
        let key = Key::of(id);
        let mut shard = write(self.shard(key));
        let seq = self.take_seq(seq);
        if shard.put(key, doc, version, seq) {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A new user's sequence number: `seq` when recovery knows it (then later users get
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

    /// A version 1 user with no email claim (for benches and tests of the storage alone).
    pub fn insert_now(&self, id: UserId, doc: &[u8]) {
        self.put_now(id, doc, 1, None);
    }

    /// Applies a logged write of a user's whole document (create or update, with the
    /// sequence number when the record has one), emails included; applying it twice changes
    /// nothing.
    pub fn apply_put(&self, id: UserId, doc: &[u8], seq: Option<u64>) {
        let (new_key, version) = doc_keys(doc).unwrap_or_default();
        let key = Key::of(id);
        let mut shard = write(self.shard(key));
        let old = shard.index.get(&key).map(|&loc| shard.arena.read(loc));
        if let Some((old_key, _)) = old.and_then(|o| doc_keys(&o.doc)) {
            if old_key != new_key {
                self.emails.release(&old_key, id);
            }
        }
        if !new_key.is_empty() {
            self.emails.assign(&new_key, id);
        }
        let seq = self.take_seq(seq);
        if shard.put(key, doc, version.max(1), seq) {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Applies a logged delete, email included; applying it twice changes nothing.
    pub fn apply_delete(&self, id: UserId) {
        let key = Key::of(id);
        let mut shard = write(self.shard(key));
        if let Some(old) = shard.remove(key) {
            self.len.fetch_sub(1, Ordering::Relaxed);
            if let Some((email, _)) = doc_keys(&old.doc) {
                self.emails.release(&email, id);
            }
        }
    }

    /// Creates a user if no other holds `email_key`: the claim and the insert happen under
    /// the user's shard lock, so racing creates of one email cannot both succeed.
    pub fn create_now(&self, id: UserId, email_key: &str, doc: &[u8]) -> Result<(), StoreError> {
        let key = Key::of(id);
        let mut shard = write(self.shard(key));
        if !self.emails.claim(email_key, id) {
            return Err(StoreError::EmailTaken);
        }
        let seq = self.take_seq(None);
        if shard.put(key, doc, 1, seq) {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Replaces user `id`'s document if its version is still `expected`; see
    /// [`UserStore::update`]. All under the user's shard write lock.
    pub fn update_now(
        &self,
        id: UserId,
        expected: u32,
        email: Option<&EmailChange>,
        doc: &[u8],
    ) -> Result<(), StoreError> {
        let key = Key::of(id);
        let mut shard = write(self.shard(key));
        let current = shard.index.get(&key).map(|&loc| shard.arena.meta(loc).1);
        if current.map(|m| m.version) != Some(expected) {
            return Err(StoreError::Stale);
        }
        if let Some(change) = email {
            if !self.emails.claim(&change.new, id) {
                return Err(StoreError::EmailTaken);
            }
            self.emails.release(&change.old, id);
        }
        shard.put(key, doc, expected.wrapping_add(1), 0);
        Ok(())
    }

    /// Removes user `id` if its version is still `expected`, releasing `email_key`.
    pub fn delete_now(&self, id: UserId, expected: u32, email_key: &str) -> Result<(), StoreError> {
        let key = Key::of(id);
        let mut shard = write(self.shard(key));
        let current = shard.index.get(&key).map(|&loc| shard.arena.meta(loc).1);
        if current.map(|m| m.version) != Some(expected) {
            return Err(StoreError::Stale);
        }
        shard.remove(key);
        self.len.fetch_sub(1, Ordering::Relaxed);
        self.emails.release(email_key, id);
        Ok(())
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
                    found.push((seq, shard.arena.read(loc).doc));
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
    /// order: id, sequence number, document. Holds the shard's read lock only to copy its live
    /// order entries with their places (32 bytes a user), share its sealed chunks (a refcount
    /// each) and copy its open chunk, never while `f` runs. So writers to the shard wait for a
    /// copy, not for the walk (the durable store's snapshots walk this way).
    pub fn for_each_in_shard(&self, shard: usize, mut f: impl FnMut(UserId, u64, &[u8])) {
        let (entries, arena) = {
            let s = read(&self.shards[shard].0);
            let entries: Vec<(u64, Key, Loc)> = (s.order.iter())
                .filter(|e| e.1 != GONE)
                .filter_map(|&(seq, key)| s.index.get(&key).map(|&loc| (seq, key, loc)))
                .collect();
            let open = BytesMut::from(&s.arena.open[..]);
            let sealed = s.arena.sealed.clone();
            (entries, Arena { sealed, open })
        };
        for (seq, key, loc) in entries {
            let id = UserId::from_u128(((key.hi as u128) << 64) | key.lo as u128);
            f(id, seq, &arena.read(loc).doc);
        }
    }
}

/// Takes a read lock. A panic while a lock was held cannot leave a shard half-updated (no
/// method panics between its two writes), so a poisoned lock is used as it is.
fn read(lock: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write(lock: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl UserStore for MemoryStore {
    fn get(&self, id: UserId) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send {
        ready(Ok(self.get_now(id)))
    }

    fn create(
        &self,
        id: UserId,
        email_key: String,
        doc: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.create_now(id, &email_key, &doc))
    }

    fn update(
        &self,
        id: UserId,
        expected: u32,
        email: Option<EmailChange>,
        doc: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.update_now(id, expected, email.as_ref(), &doc))
    }

    fn delete(
        &self,
        id: UserId,
        expected: u32,
        email_key: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        ready(self.delete_now(id, expected, &email_key))
    }

    fn list(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send {
        ready(Ok(self.list_now(after, limit)))
    }

    fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_come_back_byte_for_byte_across_chunks() {
        let store = MemoryStore::new(4);
        let ids: Vec<(UserId, Vec<u8>)> = (0..5000)
            .map(|i| {
                (
                    UserId::random(),
                    format!("{{\"n\":{i}}}").repeat(i % 7 + 1).into_bytes(),
                )
            })
            .collect();
        for (id, doc) in &ids {
            store.insert_now(*id, doc);
        }
        for (id, doc) in &ids {
            assert_eq!(store.get_now(*id).map(|s| s.doc).as_deref(), Some(&doc[..]));
        }
        assert_eq!(store.len(), 5000);
        assert_eq!(store.get_now(UserId::random()), None);
    }

    #[test]
    fn a_document_larger_than_a_chunk_is_kept_whole() {
        let store = MemoryStore::new(1);
        let small = UserId::random();
        store.insert_now(small, b"{}");
        let big = UserId::random();
        let doc = vec![b'x'; CHUNK * 3];
        store.insert_now(big, &doc);
        store.insert_now(UserId::random(), b"{}");
        assert_eq!(store.get_now(big).map(|s| s.doc).as_deref(), Some(&doc[..]));
        assert_eq!(
            store.get_now(small).map(|s| s.doc).as_deref(),
            Some(&b"{}"[..])
        );
    }

    #[test]
    fn shard_count_is_a_power_of_two() {
        assert_eq!(MemoryStore::new(0).shard_count(), 1);
        assert_eq!(MemoryStore::new(6).shard_count(), 8);
        assert_eq!(MemoryStore::new(16).shard_count(), 16);
    }
}
