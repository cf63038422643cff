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
//! - **Arena.** Documents are appended to the shard's chunks, each record a 4-byte length and
//!   the JSON. A full chunk is frozen into an immutable [`Bytes`]; a read then answers with a
//!   slice of it, which costs one refcount bump, no copy and no serialization. Only records
//!   still in the shard's open chunk (the last 16 KiB written to it) are copied out on read.
//!
//! Compared with one heap allocation per user (plus its map entry), the arena saves the
//! allocator's per-block overhead and a pointer-sized field per user: about 150 bytes per user
//! in all for a typical 110-byte document.
//!
//! # Locking
//!
//! Every method takes at most one shard lock, never holds it across an `.await` (the methods
//! are synchronous under their async face) and never while serializing: documents arrive
//! already serialized. When a shard's map grows it rehashes under that shard's write lock
//! only; the other N-1 shards go on serving.

use super::{StoreError, UserStore};
use crate::users::UserId;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use std::future::{ready, Future};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Size of a shard's arena chunk. Small enough that few reads land in the open chunk (and are
/// copied), large enough that chunks are few (about 8 000 for a million users).
const CHUNK: usize = 16 * 1024;

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

/// A shard's append-only arena of documents.
#[derive(Default)]
struct Arena {
    /// Full chunks, immutable, so that reads can share them by refcount.
    sealed: Vec<Bytes>,
    /// The chunk being filled; its index is `sealed.len()`.
    open: BytesMut,
}

impl Arena {
    fn push(&mut self, doc: &[u8]) -> Loc {
        let need = 4 + doc.len();
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
        self.open.extend_from_slice(doc);
        loc
    }

    /// The record's range within its chunk.
    fn range(chunk: &[u8], loc: Loc) -> std::ops::Range<usize> {
        let start = loc.offset as usize;
        let mut len = [0u8; 4];
        len.copy_from_slice(&chunk[start..start + 4]);
        start + 4..start + 4 + u32::from_le_bytes(len) as usize
    }

    /// The document as a shared handle: a refcount bump for a sealed chunk, a copy from the
    /// open one (which is still being written, so it cannot be shared).
    fn read(&self, loc: Loc) -> Bytes {
        match self.sealed.get(loc.chunk as usize) {
            Some(chunk) => chunk.slice(Self::range(chunk, loc)),
            None => Bytes::copy_from_slice(self.bytes(loc)),
        }
    }

    /// The document, borrowed.
    fn bytes(&self, loc: Loc) -> &[u8] {
        let chunk = match self.sealed.get(loc.chunk as usize) {
            Some(chunk) => &chunk[..],
            None => &self.open[..],
        };
        &chunk[Self::range(chunk, loc)]
    }
}

#[derive(Default)]
struct Shard {
    index: HashMap<Key, Loc, BuildHasherDefault<IdBits>>,
    arena: Arena,
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
}

impl MemoryStore {
    /// A store with `shards` shards, rounded up to a power of two (at least 1).
    pub fn new(shards: usize) -> Self {
        let n = shards.max(1).next_power_of_two();
        MemoryStore {
            shards: (0..n).map(|_| Padded(RwLock::default())).collect(),
            mask: n as u64 - 1,
            len: AtomicUsize::new(0),
        }
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    fn shard(&self, key: Key) -> &RwLock<Shard> {
        // Bits 32.. of the mix choose the shard; the map inside hashes with the low bits and
        // tags with the top seven, so the bits that are equal within a shard are unused there.
        &self.shards[((key.mix() >> 32) & self.mask) as usize].0
    }

    /// Looks a user up. Takes the shard's read lock for one map probe and one refcount bump.
    pub fn get_now(&self, id: UserId) -> Option<Bytes> {
        let key = Key::of(id);
        let shard = read(self.shard(key));
        shard.index.get(&key).map(|&loc| shard.arena.read(loc))
    }

    /// Stores a user. Takes the shard's write lock for one append and one map insert (which
    /// may grow that shard's map).
    pub fn insert_now(&self, id: UserId, doc: &[u8]) {
        let key = Key::of(id);
        let mut shard = write(self.shard(key));
        let loc = shard.arena.push(doc);
        if shard.index.insert(key, loc).is_none() {
            self.len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Calls `f` with every stored user's id and document, one shard at a time.
    ///
    /// Holds one shard's read lock while it walks that shard, so writers to that shard wait
    /// for the walk of its (1/N of the) users; writers to other shards do not wait at all.
    pub fn for_each(&self, mut f: impl FnMut(UserId, &[u8])) {
        for shard in self.shards.iter() {
            let shard = read(&shard.0);
            for (key, &loc) in &shard.index {
                let id = UserId::from_u128(((key.hi as u128) << 64) | key.lo as u128);
                f(id, shard.arena.bytes(loc));
            }
        }
    }

    /// Removes a user; returns true if and only if it was stored. Takes the shard's write lock
    /// for one map removal; the document's bytes stay in the arena, unreachable.
    pub fn remove_now(&self, id: UserId) -> bool {
        let key = Key::of(id);
        let removed = write(self.shard(key)).index.remove(&key).is_some();
        if removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Calls `f` with every user of shard `shard` (below [`Self::shard_count`]), holding the
    /// shard's read lock only to copy its index (24 bytes a user), share its sealed chunks (a
    /// refcount each) and copy its open chunk, never while `f` runs. So writers to the shard
    /// wait for a copy, not for the walk (the durable store's snapshots walk this way).
    pub fn for_each_in_shard(&self, shard: usize, mut f: impl FnMut(UserId, &[u8])) {
        let (entries, arena) = {
            let s = read(&self.shards[shard].0);
            let entries: Vec<(Key, Loc)> = s.index.iter().map(|(k, l)| (*k, *l)).collect();
            let open = BytesMut::from(&s.arena.open[..]);
            let sealed = s.arena.sealed.clone();
            (entries, Arena { sealed, open })
        };
        for (key, loc) in entries {
            let id = UserId::from_u128(((key.hi as u128) << 64) | key.lo as u128);
            f(id, arena.bytes(loc));
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
    fn get(&self, id: UserId) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send {
        ready(Ok(self.get_now(id)))
    }

    fn insert(
        &self,
        id: UserId,
        doc: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.insert_now(id, &doc);
        ready(Ok(()))
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
            assert_eq!(store.get_now(*id).as_deref(), Some(&doc[..]));
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
        assert_eq!(store.get_now(big).as_deref(), Some(&doc[..]));
        assert_eq!(store.get_now(small).as_deref(), Some(&b"{}"[..]));
    }

    #[test]
    fn shard_count_is_a_power_of_two() {
        assert_eq!(MemoryStore::new(0).shard_count(), 1);
        assert_eq!(MemoryStore::new(6).shard_count(), 8);
        assert_eq!(MemoryStore::new(16).shard_count(), 16);
    }
}
