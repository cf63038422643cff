//! One user as the in-memory store keeps it: one immutable, reference-counted allocation
//! holding the fields of its document (strings already JSON-escaped) and its email key.
//!
//! ```text
//! count (8) | id (16) seq (8) version (4) name, email, key lengths (2 each) | length (8)
//!           | created_at (24) | updated_at (24) | name | email | key (empty: the email is the key)
//! ```
//!
//! About 56 bytes of head and 48 of timestamps beside the name and email, one allocation of
//! the allocator's: when a user is replaced or deleted and nothing refers to its record any
//! more, the allocator has the memory back; there is no arena to compact. The id index, the
//! creation order and the email index each hold a reference (an 8-byte pointer), so a user
//! costs no copy of its id or its email key anywhere else.
//!
//! The same bytes, after the head's fixed fields, are a record's body in the durable log
//! (see [`Record::encode`]), so that recovery builds a record from a log record with one
//! copy and no parsing.

use crate::store::UserView;
use crate::users::id::UserId;
use std::sync::atomic::{AtomicU64, Ordering};
use triomphe::ThinArc;

/// Bytes of each timestamp.
pub const STAMP_LEN: usize = 24;

/// The fixed fields of a record.
#[derive(Debug)]
pub struct Head {
    id: [u64; 2],
    /// The creation sequence number: set when the record is applied (an update's record
    /// takes its user's), read under the shard lock or after it.
    seq: AtomicU64,
    version: u32,
    name_len: u16,
    email_len: u16,
    key_len: u16,
}

/// A stored user; cloning it is a refcount bump.
#[derive(Clone)]
pub struct Record(ThinArc<Head, u8>);

/// Why bytes are not a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

impl Record {
    /// A record of `user` (its strings as the view has them), with sequence number `seq`.
    ///
    /// Fails if a string is longer than a record can say (64 KiB).
    pub fn new(user: &UserView<'_>, seq: u64) -> Result<Self, Malformed> {
        let len = |s: &str| u16::try_from(s.len()).map_err(|_| Malformed);
        let key = if user.email_key == user.email {
            ""
        } else {
            user.email_key
        };
        let stamps = [user.created_at, user.updated_at];
        if stamps.iter().any(|s| s.len() != STAMP_LEN) {
            return Err(Malformed);
        }
        let v = user.id.as_u128();
        let head = Head {
            id: [(v >> 64) as u64, v as u64],
            seq: AtomicU64::new(seq),
            version: user.version,
            name_len: len(user.name)?,
            email_len: len(user.email)?,
            key_len: len(key)?,
        };
        let parts = [user.created_at, user.updated_at, user.name, user.email, key];
        // The parts are joined in a buffer of the thread's, reused, so that the record is one
        // allocation and one copy (building it byte by byte from an iterator costs four times
        // as much).
        thread_local! {
            static JOINED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        Ok(JOINED.with_borrow_mut(|joined| {
            joined.clear();
            for part in parts {
                joined.extend_from_slice(part.as_bytes());
            }
            Record(ThinArc::from_header_and_slice(head, joined))
        }))
    }

    fn head(&self) -> &Head {
        &self.0.header.header
    }

    /// The user's id.
    #[inline]
    pub fn id(&self) -> UserId {
        let [hi, lo] = self.head().id;
        UserId::from_u128((u128::from(hi) << 64) | u128::from(lo))
    }

    /// 64 random bits of the id (the shard and the map's hash come from them).
    #[inline]
    pub fn id_bits(&self) -> u64 {
        let [hi, lo] = self.head().id;
        hi ^ lo
    }

    /// The user's version.
    #[inline]
    pub fn version(&self) -> u32 {
        self.head().version
    }

    /// The user's creation sequence number.
    pub fn seq(&self) -> u64 {
        self.head().seq.load(Ordering::Relaxed)
    }

    /// Sets the creation sequence number (when the record is applied, before anyone else sees
    /// it through the store).
    pub fn set_seq(&self, seq: u64) {
        self.head().seq.store(seq, Ordering::Relaxed);
    }

    /// The text of `len` bytes from `from`.
    #[inline]
    fn text(&self, from: usize, len: usize) -> &str {
        let bytes = &self.0.slice[from..from + len];
        // SAFETY: every part of a record is valid UTF-8 on its own: `Record::new` joins whole
        // `&str`s, and `Record::decode` checks each part before it builds a record. The slice
        // is one part (its bounds come from the lengths in the head). Checking again on every
        // read would cost a GET about 400 instructions, 4% of it.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }

    /// The user as the store's readers see it.
    #[inline]
    pub fn view(&self) -> UserView<'_> {
        let h = self.head();
        let name_at = 2 * STAMP_LEN;
        let email_at = name_at + usize::from(h.name_len);
        let email = self.text(email_at, usize::from(h.email_len));
        UserView {
            id: self.id(),
            version: h.version,
            created_at: self.text(0, STAMP_LEN),
            updated_at: self.text(STAMP_LEN, STAMP_LEN),
            name: self.text(name_at, usize::from(h.name_len)),
            email,
            email_key: self.key_or(email),
        }
    }

    /// The key, given the email text (which is the key when no key of its own is stored).
    #[inline]
    fn key_or<'a>(&'a self, email: &'a str) -> &'a str {
        let h = self.head();
        match h.key_len {
            0 => email,
            n => {
                let at = 2 * STAMP_LEN + usize::from(h.name_len) + usize::from(h.email_len);
                self.text(at, usize::from(n))
            }
        }
    }

    /// The uniqueness key of the user's email.
    #[inline]
    pub fn email_key(&self) -> &str {
        let h = self.head();
        let email_at = 2 * STAMP_LEN + usize::from(h.name_len);
        self.key_or(self.text(email_at, usize::from(h.email_len)))
    }

    /// Returns true if and only if both are the one same record.
    pub fn same(&self, other: &Record) -> bool {
        self.0.ptr() == other.0.ptr()
    }

    /// Appends the record as the durable log stores it: the version and the three lengths,
    /// then the bytes (the id and the sequence number are the log record's own).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let h = self.head();
        out.extend_from_slice(&h.version.to_le_bytes());
        for len in [h.name_len, h.email_len, h.key_len] {
            out.extend_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(&self.0.slice);
    }

    /// The size of [`Record::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        10 + self.0.slice.len()
    }

    /// Decodes what [`Record::encode`] wrote, for user `id` with sequence number `seq`.
    pub fn decode(id: UserId, seq: u64, bytes: &[u8]) -> Result<Self, Malformed> {
        let word = |at: usize| -> Result<u16, Malformed> {
            let b = bytes.get(at..at + 2).ok_or(Malformed)?;
            Ok(u16::from_le_bytes([b[0], b[1]]))
        };
        let version = u32::from_le_bytes(
            (bytes.get(..4).ok_or(Malformed)?)
                .try_into()
                .map_err(|_| Malformed)?,
        );
        let (name_len, email_len, key_len) = (word(4)?, word(6)?, word(8)?);
        let rest = &bytes[10..];
        let lens = [STAMP_LEN, STAMP_LEN]
            .into_iter()
            .chain([name_len, email_len, key_len].map(usize::from));
        let mut at = 0;
        for len in lens {
            // Each part is text of its own (a split inside a character is damage).
            let part = rest.get(at..at + len).ok_or(Malformed)?;
            std::str::from_utf8(part).map_err(|_| Malformed)?;
            at += len;
        }
        if at != rest.len() {
            return Err(Malformed);
        }
        let v = id.as_u128();
        let head = Head {
            id: [(v >> 64) as u64, v as u64],
            seq: AtomicU64::new(seq),
            version,
            name_len,
            email_len,
            key_len,
        };
        Ok(Record(ThinArc::from_header_and_slice(head, rest)))
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("seq", &self.seq())
            .field("user", &self.view())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn view<'a>(
        id: UserId,
        name: &'a str,
        email: &'a str,
        key: &'a str,
    ) -> UserView<'a> {
        UserView {
            id,
            version: 3,
            created_at: "2026-12-04T03:29:13.123Z",
            updated_at: "2026-12-04T03:30:00.000Z",
            name,
            email,
            email_key: key,
        }
    }

    #[test]
    fn a_record_holds_the_view_it_was_made_of() {
        let id = UserId::random();
        for (name, email, key) in [
            ("Ann", "ann@x", "ann@x"),
            ("A \\\"quoted\\\" é", "Ann@X", "ann@x"),
            ("", "", ""),
        ] {
            let v = view(id, name, email, key);
            let r = Record::new(&v, 9).unwrap();
            assert_eq!(r.view(), v);
            assert_eq!((r.id(), r.seq(), r.version()), (id, 9, 3));
            assert_eq!(r.email_key(), key);
            let mut bytes = Vec::new();
            r.encode(&mut bytes);
            assert_eq!(bytes.len(), r.encoded_len());
            let back = Record::decode(id, 4, &bytes).unwrap();
            assert_eq!((back.view(), back.seq()), (v, 4));
            for cut in 0..bytes.len() {
                assert!(
                    Record::decode(id, 4, &bytes[..cut]).is_err(),
                    "cut at {cut}"
                );
            }
        }
        let long = "x".repeat(70_000);
        assert!(Record::new(&view(id, &long, "a@b", "a@b"), 1).is_err());
        assert!(Record::new(
            &UserView {
                created_at: "now",
                ..view(id, "a", "a", "a")
            },
            1
        )
        .is_err());
    }

    #[test]
    fn a_record_is_shared_not_copied() {
        let r = Record::new(&view(UserId::random(), "a", "b", "b"), 1).unwrap();
        let s = r.clone();
        assert!(r.same(&s));
        s.set_seq(5);
        assert_eq!(r.seq(), 5);
        let other = Record::new(&r.view(), 1).unwrap();
        assert!(!r.same(&other));
    }
}
