//! A shard's arena: records appended to chunks, read back by refcount.
//!
//! A record is an 18-byte head (the document's length, the version, the creation sequence
//! number, the email key's length), the JSON document, then the email key. The version sits
//! in the head so that a read can send the `ETag` without parsing the document; the key sits
//! after the document so that replacing or removing a user lets its email go without parsing.
//!
//! Documents are appended to chunks of [`CHUNK`] bytes; every [`SEAL_BYTES`] written are
//! frozen into an immutable [`Bytes`] segment of the chunk, which reads then share: a read is a
//! slice of a segment (one refcount bump, no copy and no serialization). Only records in the
//! shard's last unfrozen kilobyte (a few users) are copied out on read. A replaced or removed
//! record stays in its chunk, unreachable.

use bytes::{BufMut, Bytes, BytesMut};

/// Size of an arena allocation: large enough that allocations are few (about 8 000 for a
/// million users) and the allocator's overhead per user is nil.
const CHUNK: usize = 16 * 1024;

/// Written bytes after which the open part of an allocation is frozen into a shared segment,
/// though the allocation goes on filling. Only records not yet frozen are copied on read, so
/// this bounds the copying to a shard's last 1 KiB of writes (a few users); each segment costs
/// a 32-byte handle: a segment holds four or five records of ~240 bytes, so about 7 bytes per
/// user.
const SEAL_BYTES: usize = 1024;

/// Bytes of a record before its document: length (u32), version (u32), creation sequence
/// number (u64), email key length (u16), all little endian.
const RECORD_HEAD: usize = 18;

/// Where a record lies in its shard's arena.
#[derive(Clone, Copy)]
pub(super) struct Loc {
    chunk: u32,
    offset: u32,
}

/// What a record's head says.
#[derive(Clone, Copy)]
pub(super) struct Meta {
    pub(super) version: u32,
    pub(super) seq: u64,
}

/// A shard's append-only arena of records.
#[derive(Default)]
pub(super) struct Arena {
    /// Frozen segments, immutable, so that reads can share them by refcount.
    sealed: Vec<Bytes>,
    /// The part being filled; its index is `sealed.len()`.
    open: BytesMut,
}

impl Arena {
    /// Appends a record; returns where it lies.
    pub(super) fn push(&mut self, doc: &[u8], key: &str, meta: Meta) -> Loc {
        let need = RECORD_HEAD + doc.len() + key.len();
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
        self.open.put_u16_le(key.len() as u16);
        self.open.extend_from_slice(doc);
        self.open.extend_from_slice(key.as_bytes());
        if self.open.len() >= SEAL_BYTES {
            // Freeze what is written; the rest of the allocation stays open for the next
            // records (`split` shares the allocation, it copies nothing).
            let written = self.open.split().freeze();
            self.sealed.push(written);
        }
        loc
    }

    fn bytes(&self, loc: Loc) -> &[u8] {
        match self.sealed.get(loc.chunk as usize) {
            Some(chunk) => chunk,
            None => &self.open,
        }
    }

    /// The record's head: the document's length, the version and sequence number.
    pub(super) fn meta(&self, loc: Loc) -> Meta {
        let at = loc.offset as usize;
        let head = &self.bytes(loc)[at..at + RECORD_HEAD];
        let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        Meta {
            version: word(4),
            seq: u64::from(word(8)) | (u64::from(word(12)) << 32),
        }
    }

    /// The record's email key.
    pub(super) fn key(&self, loc: Loc) -> &str {
        let at = loc.offset as usize;
        let bytes = self.bytes(loc);
        let head = &bytes[at..at + RECORD_HEAD];
        let doc_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let key_len = u16::from_le_bytes([head[16], head[17]]) as usize;
        let start = at + RECORD_HEAD + doc_len;
        // Keys are written from `&str`s; a record that is not UTF-8 holds no key.
        std::str::from_utf8(&bytes[start..start + key_len]).unwrap_or_default()
    }

    /// The document and its version: a refcount bump for a sealed segment, a copy from the
    /// open one (which is still being written, so it cannot be shared). Every GET runs this,
    /// so it finds the segment once and reads the head's two words straight.
    #[inline(always)]
    pub(super) fn read(&self, loc: Loc) -> (Bytes, u32) {
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
        (doc, u32::from_le_bytes([v0, v1, v2, v3]))
    }

    /// A copy of the arena for a walk without the shard's lock: the frozen segments are
    /// shared (a refcount each), the open part copied.
    pub(super) fn snapshot(&self) -> Arena {
        Arena {
            sealed: self.sealed.clone(),
            open: BytesMut::from(&self.open[..]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_whole_across_chunks() {
        let mut arena = Arena::default();
        let mut locs = Vec::new();
        for i in 0..3000u64 {
            let doc = format!("{{\"n\":{i}}}").repeat(i as usize % 7 + 1);
            let key = format!("k{i}@x");
            let meta = Meta {
                version: i as u32,
                seq: i << 33,
            };
            locs.push((arena.push(doc.as_bytes(), &key, meta), doc, key));
        }
        let big = vec![b'x'; CHUNK * 3];
        let big_loc = arena.push(&big, "big@x", Meta { version: 7, seq: 9 });
        for (i, (loc, doc, key)) in locs.iter().enumerate() {
            let (got, version) = arena.read(*loc);
            assert_eq!((&got[..], version), (doc.as_bytes(), i as u32));
            assert_eq!(arena.key(*loc), key);
            assert_eq!(arena.meta(*loc).seq, (i as u64) << 33);
        }
        assert_eq!(&arena.read(big_loc).0[..], &big[..]);
        assert_eq!(arena.key(big_loc), "big@x");
        let copy = arena.snapshot();
        assert_eq!(copy.read(locs[5].0).0, arena.read(locs[5].0).0);
    }
}
