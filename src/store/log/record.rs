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
//!   op 1 create    body = id (16 bytes, big endian) + the user's JSON document
//!                  (written before users had a creation sequence number; still read)
//!   op 2 update    body = id + the user's whole new document
//!   op 3 delete    body = id
//!   op 4 create at body = id + creation sequence number (u64le) + the user's JSON document
//!   op 64 snapshot begin  body = first segment not covered by the snapshot (u64le)
//!   op 65 snapshot end    body = number of users in the snapshot (u64le)
//! ```
//!
//! Every record carries the whole state it sets (a document, or the absence of one), never a
//! difference, so applying a record twice leaves the same state as applying it once. That is
//! what lets recovery replay a segment that a snapshot already partly contains.

use crate::store::MemoryStore;
use crate::users::UserId;

/// The payload format this userd writes and the newest it reads.
pub const FORMAT_VERSION: u8 = 1;

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
const OP_CREATE_AT: u8 = 4;
const OP_SNAPSHOT_BEGIN: u8 = 64;
const OP_SNAPSHOT_END: u8 = 65;

/// One record, borrowing its document from wherever it was read or is being written from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record<'a> {
    /// A new user with this document (a log from before sequence numbers).
    Create(UserId, &'a [u8]),
    /// A new user with its creation sequence number (its place in the list) and document.
    CreateAt(UserId, u64, &'a [u8]),
    /// A user's whole new document.
    Update(UserId, &'a [u8]),
    /// A user is gone.
    Delete(UserId),
    /// The first record of a snapshot: it holds every record of segments before `covers`.
    SnapshotBegin {
        /// The first segment whose records the snapshot may lack.
        covers: u64,
    },
    /// The last record of a snapshot, so that a cut-short snapshot is never taken as whole.
    SnapshotEnd {
        /// How many user records the snapshot holds.
        count: u64,
    },
}

impl Record<'_> {
    /// Sets the state this record describes in `mem`; applying it again changes nothing.
    pub fn apply(&self, mem: &MemoryStore) {
        match *self {
            Record::Create(id, doc) | Record::Update(id, doc) => mem.apply_put(id, doc, None),
            Record::CreateAt(id, seq, doc) => mem.apply_put(id, doc, Some(seq)),
            Record::Delete(id) => mem.apply_delete(id),
            Record::SnapshotBegin { .. } | Record::SnapshotEnd { .. } => {}
        }
    }
}

/// Appends `record`, framed, to `out`.
pub fn encode(out: &mut Vec<u8>, record: &Record<'_>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_LEN]);
    let (op, id, tail): (u8, Option<UserId>, &[u8]) = match *record {
        Record::Create(id, doc) => (OP_CREATE, Some(id), doc),
        Record::CreateAt(id, _, doc) => (OP_CREATE_AT, Some(id), doc),
        Record::Update(id, doc) => (OP_UPDATE, Some(id), doc),
        Record::Delete(id) => (OP_DELETE, Some(id), &[]),
        Record::SnapshotBegin { .. } => (OP_SNAPSHOT_BEGIN, None, &[]),
        Record::SnapshotEnd { .. } => (OP_SNAPSHOT_END, None, &[]),
    };
    out.push(FORMAT_VERSION);
    out.push(op);
    if let Some(id) = id {
        out.extend_from_slice(&id.as_u128().to_be_bytes());
    }
    if let Record::CreateAt(_, seq, _) = *record {
        out.extend_from_slice(&seq.to_le_bytes());
    }
    out.extend_from_slice(tail);
    if let Record::SnapshotBegin { covers: n } | Record::SnapshotEnd { count: n } = *record {
        out.extend_from_slice(&n.to_le_bytes());
    }
    let len = (out.len() - start - HEADER_LEN) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(len.to_le_bytes(), &out[start + HEADER_LEN..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The framed size of a create (op 1) or update record with a document of `doc_len` bytes;
/// a create at (op 4) has 8 bytes more.
pub fn framed_len(doc_len: usize) -> usize {
    HEADER_LEN + PREFIX_LEN + ID_LEN + doc_len
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
        let id = || {
            let bytes: [u8; ID_LEN] = body.get(..ID_LEN)?.try_into().ok()?;
            Some(UserId::from_u128(u128::from_be_bytes(bytes)))
        };
        let number = || Some(u64::from_le_bytes(body.try_into().ok()?));
        let record = match op {
            OP_CREATE => id().map(|id| Record::Create(id, &body[ID_LEN..])),
            OP_CREATE_AT => id().and_then(|id| {
                let seq = body.get(ID_LEN..ID_LEN + 8)?;
                let seq = u64::from_le_bytes(seq.try_into().ok()?);
                Some(Record::CreateAt(id, seq, &body[ID_LEN + 8..]))
            }),
            OP_UPDATE => id().map(|id| Record::Update(id, &body[ID_LEN..])),
            OP_DELETE => id().filter(|_| body.len() == ID_LEN).map(Record::Delete),
            OP_SNAPSHOT_BEGIN => number().map(|covers| Record::SnapshotBegin { covers }),
            OP_SNAPSHOT_END => number().map(|count| Record::SnapshotEnd { count }),
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
                "record format version {v}, newer than this userd reads ({FORMAT_VERSION})"
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

    fn round_trip(record: Record<'_>) {
        let mut out = Vec::new();
        encode(&mut out, &record);
        let header = Header::parse(out[..HEADER_LEN].try_into().unwrap());
        assert_eq!(header.payload_len(), Some(out.len() - HEADER_LEN));
        assert_eq!(header.decode(&out[HEADER_LEN..]), Ok(record));
    }

    #[test]
    fn every_record_type_round_trips() {
        let id = UserId::random();
        round_trip(Record::Create(id, br#"{"id":"x"}"#));
        round_trip(Record::CreateAt(id, 42, br#"{"id":"x"}"#));
        round_trip(Record::Update(id, b"{}"));
        round_trip(Record::Delete(id));
        round_trip(Record::SnapshotBegin { covers: 7 });
        round_trip(Record::SnapshotEnd { count: u64::MAX });
    }

    #[test]
    fn framed_len_matches_what_encode_writes() {
        let mut out = Vec::new();
        encode(&mut out, &Record::Create(UserId::random(), &[b'a'; 100]));
        assert_eq!(out.len(), framed_len(100));
    }

    #[test]
    fn the_checksum_covers_length_and_payload() {
        let mut out = Vec::new();
        encode(&mut out, &Record::Create(UserId::random(), b"{\"a\":1}"));
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

    #[test]
    fn a_newer_version_is_refused_by_name() {
        let mut out = Vec::new();
        encode(&mut out, &Record::Delete(UserId::random()));
        out[HEADER_LEN] = FORMAT_VERSION + 1;
        let crc = checksum(out[..4].try_into().unwrap(), &out[HEADER_LEN..]);
        out[4..8].copy_from_slice(&crc.to_le_bytes());
        let header = Header::parse(out[..HEADER_LEN].try_into().unwrap());
        assert_eq!(
            header.decode(&out[HEADER_LEN..]),
            Err(Damage::Version(FORMAT_VERSION + 1))
        );
    }
}
