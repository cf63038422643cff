//! The record format shared by log segments and snapshots, and the frame around each record.
//!
//! # Frame
//!
//! ```text
//! +------------+------------+------------------------------+
//! | len: u32le | crc: u32le | payload: len bytes           |
//! +------------+------------+------------------------------+
//! crc = CRC-32 (IEEE, crc32fast) of the 4 length bytes followed by the payload
//! ```
//!
//! The checksum covers the length too, so a length damaged on disk is caught rather than
//! sending the reader off to a wrong offset that happens to look like a record.
//!
//! # Payload
//!
//! ```text
//! version: u8 | op: u8 | body
//!   op 1 create    body = id (16 bytes, big endian) | sequence number (u64le) | user
//!   op 2 update    body = id | user
//!        user = version (u32le) | name, email, key lengths (u16le each) | created_at (24)
//!               | updated_at (24) | name | email | key (empty if the email is its own key),
//!               the strings as the document has them (JSON-escaped): the in-memory record
//!   op 3 delete    body = id
//!   op 16 synced   body = the segment offset the last completed fdatasync covered (u64le)
//!   op 64 snapshot begin  body = first segment not covered by the snapshot (u64le)
//!   op 65 snapshot end    body = number of users in the snapshot (u64le)
//!                         | the sequence number the next new user gets (u64le)
//! ```
//!
//! A `synced` record starts each batch the writer appends (when the offset moved since the
//! last one): it lets recovery tell bytes that a completed fdatasync covered, where damage is
//! damage, from the unsynced tail, where a power cut may have lost any page (see
//! `recovery/scan.rs`).
//!
//! Every record carries the whole state it sets (a user's fields with its version and email
//! key, or the absence of one), never a difference, so applying a record twice leaves the same
//! state as applying it once; a user's body is the in-memory store's own record, so recovery
//! applies it with one copy and no parsing.
//! That is what lets recovery replay a segment that a snapshot already partly contains.

use crate::store::memory::{self, Change, MemoryStore};
use crate::users::id::UserId;

/// The payload format this userd writes and the only one it reads.
pub const FORMAT_VERSION: u8 = 3;

/// Bytes of a frame before its payload: the length and the checksum.
pub const HEADER_LEN: usize = 8;

/// The largest payload a reader accepts. A length above it is damage, not a record, which
/// keeps one flipped high bit from reading as a record that runs off the end of the file.
pub const MAX_PAYLOAD: usize = 64 << 20;

/// Payload bytes before a record's body: the version and the op.
const PREFIX_LEN: usize = 2;

/// Bytes of an id in a record.
const ID_LEN: usize = 16;

const OP_CREATE: u8 = 1;
const OP_UPDATE: u8 = 2;
const OP_DELETE: u8 = 3;
const OP_SYNCED: u8 = 16;
const OP_SNAPSHOT_BEGIN: u8 = 64;
const OP_SNAPSHOT_END: u8 = 65;

/// A user's state in a record: the store's record being written, or one just read.
#[derive(Debug, Clone)]
pub enum Body<'a> {
    /// To write.
    Stored(&'a memory::Record),
    /// As read (checked and built when the frame was decoded).
    Read(memory::Record),
}

impl Body<'_> {
    fn record(&self) -> &memory::Record {
        match self {
            Body::Stored(r) => r,
            Body::Read(r) => r,
        }
    }
}

impl PartialEq for Body<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.record().view() == other.record().view()
    }
}

/// One record.
#[derive(Debug, Clone, PartialEq)]
pub enum Record<'a> {
    /// A new user with its creation sequence number (its place in the list).
    Create(UserId, u64, Body<'a>),
    /// A user's whole new state.
    Update(UserId, Body<'a>),
    /// A user is gone.
    Delete(UserId),
    /// Bytes of this segment before `upto` were covered by a completed fdatasync when the
    /// batch that starts here was written.
    Synced {
        /// The offset in the segment.
        upto: u64,
    },
    /// The first record of a snapshot: it holds every record of segments before `covers`.
    SnapshotBegin {
        /// The first segment whose records the snapshot may lack.
        covers: u64,
    },
    /// The last record of a snapshot, so that a cut-short snapshot is never taken as whole.
    SnapshotEnd {
        /// How many user records the snapshot holds.
        count: u64,
        /// The sequence number the next new user gets, which may lie past every user held
        /// (the newest may have been deleted): so sequence numbers are never reused.
        next_seq: u64,
    },
}

impl Record<'_> {
    /// Sets the state this record describes in `mem`; applying it again changes nothing.
    pub fn apply(&self, mem: &MemoryStore) {
        match self {
            Record::Create(_, seq, body) => {
                mem.apply(&Change::Put(body.record().clone()), Some(*seq))
            }
            Record::Update(_, body) => mem.apply(&Change::Put(body.record().clone()), None),
            Record::Delete(id) => mem.apply(&Change::Remove(*id), None),
            Record::SnapshotEnd { next_seq, .. } => mem.reserve_seq(*next_seq),
            Record::Synced { .. } | Record::SnapshotBegin { .. } => {}
        }
    }
}

/// Appends `record`, framed, to `out`.
pub fn encode(out: &mut Vec<u8>, record: &Record<'_>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    out.push(FORMAT_VERSION);
    match record {
        Record::Create(id, seq, body) => {
            out.push(OP_CREATE);
            out.extend_from_slice(&id.as_u128().to_be_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
            body.record().encode(out);
        }
        Record::Update(id, body) => {
            out.push(OP_UPDATE);
            out.extend_from_slice(&id.as_u128().to_be_bytes());
            body.record().encode(out);
        }
        Record::Delete(id) => {
            out.push(OP_DELETE);
            out.extend_from_slice(&id.as_u128().to_be_bytes());
        }
        Record::Synced { upto } => {
            out.push(OP_SYNCED);
            out.extend_from_slice(&upto.to_le_bytes());
        }
        Record::SnapshotBegin { covers } => {
            out.push(OP_SNAPSHOT_BEGIN);
            out.extend_from_slice(&covers.to_le_bytes());
        }
        Record::SnapshotEnd { count, next_seq } => {
            out.push(OP_SNAPSHOT_END);
            out.extend_from_slice(&count.to_le_bytes());
            out.extend_from_slice(&next_seq.to_le_bytes());
        }
    }
    let len = (out.len() - start - HEADER_LEN) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(len.to_le_bytes(), &out[start + HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The framed size of a create of `user` (an update's is 8 bytes less).
pub fn framed_len(user: &memory::Record) -> usize {
    HEADER_LEN + PREFIX_LEN + ID_LEN + 8 + user.encoded_len()
}

fn checksum(len: [u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len);
    h.update(payload);
    h.finalize()
}

/// A frame header, read before its payload.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    len: [u8; 4],
    crc: u32,
}

/// Reads the fixed-size fields at the front of a record's body, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Fields<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn id(&mut self) -> Option<UserId> {
        let bytes: [u8; ID_LEN] = self.take(ID_LEN)?.try_into().ok()?;
        Some(UserId::from_u128(u128::from_be_bytes(bytes)))
    }

    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn user(&mut self, id: UserId, seq: u64) -> Option<Body<'static>> {
        let bytes = std::mem::take(&mut self.0);
        memory::Record::decode(id, seq, bytes).ok().map(Body::Read)
    }

    /// Whatever is left must be nothing.
    fn end<T>(&self, value: T) -> Option<T> {
        self.0.is_empty().then_some(value)
    }
}

impl Header {
    /// Reads the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        let mut crc = [0; 4];
        crc.copy_from_slice(&bytes[4..]);
        Header {
            len: [bytes[0], bytes[1], bytes[2], bytes[3]],
            crc: u32::from_le_bytes(crc),
        }
    }

    /// The payload length, or `None` if no record could have it (too short or too long).
    pub fn payload_len(&self) -> Option<usize> {
        let len = u32::from_le_bytes(self.len) as usize;
        (PREFIX_LEN..=MAX_PAYLOAD).contains(&len).then_some(len)
    }

    /// Checks the payload against the checksum and decodes it.
    pub fn decode<'a>(&self, payload: &'a [u8]) -> Result<Record<'a>, Damage> {
        if checksum(self.len, payload) != self.crc {
            return Err(Damage::Checksum);
        }
        if payload.len() < PREFIX_LEN {
            return Err(Damage::Length);
        }
        let (version, op, body) = (payload[0], payload[1], &payload[PREFIX_LEN..]);
        if version != FORMAT_VERSION {
            return Err(Damage::Version(version));
        }
        let mut f = Fields(body);
        let record = match op {
            OP_CREATE => (|| {
                let (id, seq) = (f.id()?, f.u64()?);
                Some(Record::Create(id, seq, f.user(id, seq)?))
            })(),
            OP_UPDATE => (|| {
                let id = f.id()?;
                Some(Record::Update(id, f.user(id, 0)?))
            })(),
            OP_DELETE => f.id().and_then(|id| f.end(Record::Delete(id))),
            OP_SNAPSHOT_BEGIN => f
                .u64()
                .and_then(|covers| f.end(Record::SnapshotBegin { covers })),
            OP_SYNCED => f.u64().and_then(|upto| f.end(Record::Synced { upto })),
            OP_SNAPSHOT_END => (|| {
                let (count, next_seq) = (f.u64()?, f.u64()?);
                f.end(Record::SnapshotEnd { count, next_seq })
            })(),
            _ => return Err(Damage::Op(op)),
        };
        record.ok_or(Damage::Shape(op))
    }
}

/// Why bytes that should hold a record do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// The length field holds a length no record has.
    Length,
    /// The file ends inside the frame.
    Incomplete,
    /// The checksum does not match the length and payload.
    Checksum,
    /// The checksum matches but the format version is one this userd does not know.
    Version(u8),
    /// The checksum matches but the op is unknown.
    Op(u8),
    /// The checksum matches but the body is the wrong size for its op.
    Shape(u8),
    /// A sound record where it cannot be (a snapshot record in a segment, say).
    Misplaced(&'static str),
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Length => f.write_str("impossible record length"),
            Damage::Incomplete => f.write_str("the file ends inside a record"),
            Damage::Checksum => f.write_str("checksum mismatch"),
            Damage::Version(v) => write!(
                f,
                "record format version {v}; this userd reads version {FORMAT_VERSION} only"
            ),
            Damage::Op(op) => write!(f, "unknown record type {op}"),
            Damage::Shape(op) => write!(f, "record of type {op} has the wrong size"),
            Damage::Misplaced(why) => f.write_str(why),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::UserView;

    fn round_trip(record: Record<'_>) {
        let mut out = Vec::new();
        encode(&mut out, &record);
        let header = Header::parse(out[..HEADER_LEN].try_into().unwrap());
        assert_eq!(header.payload_len(), Some(out.len() - HEADER_LEN));
        assert_eq!(header.decode(&out[HEADER_LEN..]), Ok(record));
    }

    fn user(id: UserId, version: u32, email: &str, key: &str) -> memory::Record {
        let view = UserView {
            id,
            version,
            created_at: "2026-12-04T03:29:13.123Z",
            updated_at: "2026-12-04T03:29:13.124Z",
            name: "Ann \\\"A\\\"",
            email,
            email_key: key,
        };
        memory::Record::new(&view, 0).unwrap()
    }

    #[test]
    fn every_record_type_round_trips() {
        let id = UserId::random();
        let (a, b) = (
            user(id, 1, "a@x", "a@x"),
            user(id, 7, "\u{e9}@X", "\u{e9}@x"),
        );
        round_trip(Record::Create(id, 42, Body::Stored(&a)));
        round_trip(Record::Create(id, u64::MAX, Body::Stored(&b)));
        round_trip(Record::Update(id, Body::Stored(&b)));
        round_trip(Record::Delete(id));
        round_trip(Record::Synced { upto: 4096 });
        round_trip(Record::SnapshotBegin { covers: 7 });
        round_trip(Record::SnapshotEnd {
            count: u64::MAX,
            next_seq: 9,
        });
    }

    #[test]
    fn framed_len_is_what_encode_writes() {
        let id = UserId::random();
        let a = user(id, 1, "abc", "abc");
        let mut out = Vec::new();
        encode(&mut out, &Record::Create(id, 3, Body::Stored(&a)));
        assert_eq!(out.len(), framed_len(&a));
        let mut out = Vec::new();
        encode(&mut out, &Record::Update(id, Body::Stored(&a)));
        assert_eq!(out.len(), framed_len(&a) - 8);
    }

    #[test]
    fn the_checksum_covers_length_and_payload() {
        let id = UserId::random();
        let a = user(id, 1, "a@b", "a@b");
        let mut out = Vec::new();
        encode(&mut out, &Record::Create(id, 1, Body::Stored(&a)));
        for i in 0..out.len() {
            if (4..HEADER_LEN).contains(&i) {
                continue; // the checksum itself
            }
            let mut bad = out.clone();
            bad[i] ^= 0x01;
            let header = Header::parse(bad[..HEADER_LEN].try_into().unwrap());
            // A changed length may still be a plausible one; the payload must then not pass.
            let len = header
                .payload_len()
                .unwrap_or(0)
                .min(bad.len() - HEADER_LEN);
            assert!(header.decode(&bad[HEADER_LEN..HEADER_LEN + len]).is_err());
        }
    }

    /// A record of the right checksum but the wrong size for its op is damage, named.
    #[test]
    fn a_record_of_the_wrong_shape_is_refused_by_op() {
        let id = UserId::random();
        let idb = id.as_u128().to_be_bytes();
        for (op, body) in [
            (OP_DELETE, [&idb[..], b"x"].concat()),
            (OP_DELETE, vec![1, 2, 3]),
            (OP_CREATE, idb.to_vec()),
            (
                OP_UPDATE,
                [&idb[..], &[1, 0, 0, 0, 9, 0, 0, 0, 0, 0]].concat(),
            ),
            (OP_SNAPSHOT_END, vec![1, 2, 3, 4, 5, 6, 7, 8]),
            (OP_SYNCED, vec![1, 2, 3, 4, 5, 6, 7, 8, 9]),
        ] {
            let mut payload = vec![FORMAT_VERSION, op];
            payload.extend_from_slice(&body);
            let len = (payload.len() as u32).to_le_bytes();
            let crc = checksum(len, &payload);
            let mut head = [0u8; HEADER_LEN];
            head[..4].copy_from_slice(&len);
            head[4..].copy_from_slice(&crc.to_le_bytes());
            let header = Header::parse(&head);
            assert_eq!(header.decode(&payload), Err(Damage::Shape(op)), "op {op}");
        }
    }

    #[test]
    fn another_version_is_refused_by_name() {
        for version in [FORMAT_VERSION - 1, FORMAT_VERSION + 1] {
            let mut out = Vec::new();
            encode(&mut out, &Record::Delete(UserId::random()));
            out[HEADER_LEN] = version;
            let crc = checksum(out[..4].try_into().unwrap(), &out[HEADER_LEN..]);
            out[4..8].copy_from_slice(&crc.to_le_bytes());
            let header = Header::parse(out[..HEADER_LEN].try_into().unwrap());
            assert_eq!(
                header.decode(&out[HEADER_LEN..]),
                Err(Damage::Version(version))
            );
        }
    }
}
