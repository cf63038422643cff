//! A user's JSON document: how its strings are escaped when it is written, how it is rendered
//! when it is read, and the RFC 3339 timestamps in it.
//!
//! Stores keep a user's fields with the strings already escaped, so that a read renders the
//! document by copying pieces: fields in the article's order (`id`, `name`, `email`), escaped
//! the way serde_json escapes them (so the bytes are the article's server's), then
//! `created_at`, `updated_at` and `version`.

use super::id::ID_LEN;
use crate::store::UserView;
use std::borrow::Cow;
use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

/// Bytes of an RFC 3339 timestamp as userd writes them: `2026-11-26T11:02:38.123Z`.
pub const STAMP_LEN: usize = 24;

/// The JSON text of a string, without its quotes, as serde_json writes it: `"` and `\`
/// escaped, the control characters below 0x20 as `\b \t \n \f \r` or `\u00XX`, every other
/// character as it is. Borrowed when nothing needs escaping (names and emails hardly ever do).
pub fn escape(s: &str) -> Cow<'_, str> {
    let Some(first) = first_to_escape(s.as_bytes()) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let b = c as u8;
                out.push_str("\\u00");
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Where the first byte that JSON must escape is (`"`, `\\` or a control character below 0x20).
///
/// Every create escapes its name and email, and they hardly ever hold such a byte: eight
/// bytes are tested at a time, and only a word that holds one is looked at bytewise.
fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    // True if and only if some byte of `w` is zero (exact for the word as a whole).
    let has_zero = |w: u64| w.wrapping_sub(ONES) & !w & HIGH != 0;
    let needs = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let w = u64::from_ne_bytes(word.try_into().unwrap_or_default());
        // A byte below 0x20 is one whose value minus 0x20 borrows (exact for the word as a
        // whole, as `has_zero` is); `"` and `\\` are bytes that become zero under an xor.
        let low = w.wrapping_sub(ONES * 0x20) & !w & HIGH != 0;
        if low || has_zero(w ^ (ONES * u64::from(b'"'))) || has_zero(w ^ (ONES * u64::from(b'\\')))
        {
            return word.iter().position(needs).map(|i| at + i);
        }
        at += 8;
    }
    words.remainder().iter().position(needs).map(|i| at + i)
}

/// The text a JSON string literal's inside stands for, for strings [`escape`] wrote.
pub fn unescape(json: &str) -> Cow<'_, str> {
    if !json.contains('\\') {
        return Cow::Borrowed(json);
    }
    // The text came from `escape`, so it is a valid literal; serde_json reads it back.
    let literal = format!("\"{json}\"");
    Cow::Owned(serde_json::from_str::<String>(&literal).unwrap_or_default())
}

const ID_HEAD: &[u8] = br#"{"id":""#;
const NAME: &[u8] = br#"","name":""#;
const EMAIL: &[u8] = br#"","email":""#;
const CREATED: &[u8] = br#"","created_at":""#;
const UPDATED: &[u8] = br#"","updated_at":""#;
const VERSION: &[u8] = br#"","version":"#;

/// The length of [`write_json`]'s output for `user`.
pub fn json_len(user: &UserView<'_>) -> usize {
    let pieces = ID_HEAD.len() + NAME.len() + EMAIL.len() + CREATED.len() + UPDATED.len();
    let digits = user.version.checked_ilog10().unwrap_or(0) as usize + 1;
    pieces
        + VERSION.len()
        + ID_LEN
        + user.name.len()
        + user.email.len()
        + 2 * STAMP_LEN
        + digits
        + 1
}

/// A buffer a document is appended to: a `Vec` (a list page) or a `BytesMut` (a user's
/// answer, written into a per-thread buffer).
pub trait Out {
    /// Appends `bytes`.
    fn put(&mut self, bytes: &[u8]);
}

impl Out for Vec<u8> {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl Out for bytes::BytesMut {
    #[inline]
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Appends `user`'s JSON document to `out`: a dozen copies, no escaping (the strings are
/// escaped already), no allocation when `out` has room (see [`json_len`]).
#[inline]
pub fn write_json(out: &mut impl Out, user: &UserView<'_>) {
    out.put(ID_HEAD);
    out.put(&user.id.encode());
    out.put(NAME);
    out.put(user.name.as_bytes());
    out.put(EMAIL);
    out.put(user.email.as_bytes());
    out.put(CREATED);
    out.put(user.created_at.as_bytes());
    out.put(UPDATED);
    out.put(user.updated_at.as_bytes());
    out.put(VERSION);
    let mut digits = [0u8; 10];
    let mut n = user.version;
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put(&digits[at..]);
    out.put(b"}");
}

/// An RFC 3339 timestamp in UTC with milliseconds, as text: `2026-11-26T11:02:38.123Z`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stamp([u8; STAMP_LEN]);

impl Stamp {
    /// The timestamp's text.
    pub fn as_str(&self) -> &str {
        // SAFETY: a `Stamp` is only made by `rfc3339`, which writes ASCII digits and
        // punctuation into every byte; ASCII is UTF-8. (The checked conversion costs about
        // eighty instructions, and every create and update makes one.)
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

/// Writes `t` as RFC 3339 in UTC with milliseconds: `2026-11-26T11:02:38.123Z`.
///
/// Every create and update runs this, so the digits are written straight into a fixed buffer
/// (`format!` costs about twenty times as much), and the date and time of day are kept per
/// thread for the second they were last written in: within one second only the milliseconds
/// change. Years past 9999 are written as 9999.
pub fn rfc3339(t: SystemTime) -> Stamp {
    thread_local! {
        static LAST: Cell<(u64, [u8; STAMP_LEN])> = const { Cell::new((u64::MAX, [0; STAMP_LEN])) };
    }
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (last, mut out) = LAST.get();
    if last != secs {
        out = seconds(secs);
        LAST.set((secs, out));
    }
    let millis = since.subsec_millis();
    out[20] = b'0' + (millis / 100) as u8;
    out[21] = b'0' + (millis / 10 % 10) as u8;
    out[22] = b'0' + (millis % 10) as u8;
    Stamp(out)
}

/// A stamp of a whole second since 1970 (its milliseconds zero).
fn seconds(secs: u64) -> [u8; STAMP_LEN] {
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut n: u64| {
        for i in (at..at + width).rev() {
            out[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, y.clamp(0, 9999) as u64);
    put(5, 2, u64::from(m));
    put(8, 2, u64::from(d));
    put(11, 2, rem / 3600);
    put(14, 2, rem / 60 % 60);
    put(17, 2, rem % 60);
    out
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, which needs no table and no loop).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::users::fields::tests::{valid_email, valid_name};
    use crate::users::id::UserId;
    use crate::users::NewUser;
    use proptest::prelude::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339(t).as_str(), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH).as_str(), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn escaping_borrows_when_nothing_needs_it() {
        assert!(matches!(escape("Ada é 😀"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\"b\\c\n\u{1}\u{7f}"),
            "a\\\"b\\\\c\\n\\u0001\u{7f}"
        );
        assert!(matches!(unescape("plain"), Cow::Borrowed("plain")));
        assert_eq!(unescape("a\\\"b\\\\c\\n\\u0001"), "a\"b\\c\n\u{1}");
    }

    /// The stamp of `ms` milliseconds since 1970, the slow way.
    fn reference(ms: u64) -> String {
        let (secs, rem) = (ms / 1000, ms % 1000);
        let (y, m, d) = civil_from_days((secs / 86_400) as i64);
        let s = secs % 86_400;
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{rem:03}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        )
    }

    proptest! {
        /// Escaping is serde_json's, and reads back.
        #[test]
        fn escaping_is_what_serde_json_writes(s in "\\PC{0,20}|[\\x00-\\x7f]{0,20}|.{0,20}") {
            let ours = escape(&s);
            let theirs = serde_json::to_string(&s).unwrap();
            prop_assert_eq!(format!("\"{ours}\""), theirs);
            prop_assert_eq!(unescape(&ours), s.as_str());
        }

        /// The word-at-a-time scan finds the byte a bytewise scan finds, wherever it sits in a
        /// word and whatever surrounds it (the generator favours the values next to the ones
        /// that need escaping, and plain runs longer than a word).
        #[test]
        fn the_scan_finds_the_first_byte_to_escape(
            bytes in prop::collection::vec(
                prop_oneof![
                    4 => prop::sample::select(vec![b'a', b' ', b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff, 0xa2, 0xdc]),
                    1 => prop::sample::select(vec![0x00, 0x1f, b'"', b'\\', b'\n']),
                    1 => any::<u8>(),
                ],
                0..40,
            )
        ) {
            let naive = bytes.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
            prop_assert_eq!(first_to_escape(&bytes), naive);
        }

        /// Every valid user's document is exactly what serde_json writes for its fields, in
        /// the article's order. (The fields come from generators of valid input, so every case
        /// reaches the document; `fields.rs` tests the refusals.)
        #[test]
        fn json_is_what_serde_writes(
            name in valid_name(),
            email in valid_email(),
            version in prop_oneof![Just(1u32), any::<u32>()],
            ms in 0u64..253_402_300_800_000,
        ) {
            let user = NewUser::parse(&name, &email).expect("the generators make valid users");
            let id = UserId::random();
            let stamp = rfc3339(UNIX_EPOCH + std::time::Duration::from_millis(ms));
            let (n, e) = (escape(user.name()), escape(user.email()));
            let view = UserView {
                id,
                version,
                created_at: stamp.as_str(),
                updated_at: stamp.as_str(),
                name: &n,
                email: &e,
                email_key: "",
            };
            let mut json = Vec::new();
            write_json(&mut json, &view);
            prop_assert_eq!(json.len(), json_len(&view));
            #[derive(serde::Serialize)]
            struct Doc<'a> {
                id: String,
                name: &'a str,
                email: &'a str,
                created_at: &'a str,
                updated_at: &'a str,
                version: u32,
            }
            let reference = serde_json::to_vec(&Doc {
                id: id.to_string(),
                name: user.name(),
                email: user.email(),
                created_at: stamp.as_str(),
                updated_at: stamp.as_str(),
                version,
            })
            .unwrap();
            prop_assert_eq!(String::from_utf8(json).unwrap(), String::from_utf8(reference).unwrap());
        }

        #[test]
        fn timestamps_match_a_formatted_reference(
            ms in 0u64..253_402_300_800_000,
            later in 0u64..2000,
        ) {
            // Then a stamp of the same second (the per-thread cache's) or of the next one.
            for ms in [ms, ms + later] {
                let stamp = rfc3339(UNIX_EPOCH + std::time::Duration::from_millis(ms));
                prop_assert_eq!(stamp.as_str(), reference(ms));
            }
        }

        #[test]
        fn dates_agree_with_a_day_by_day_count(days in 0i64..3000) {
            // Walk from 1970-01-01 one day at a time, the slow and obvious way.
            let (mut y, mut m, mut d) = (1970i64, 1u32, 1u32);
            let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
            for _ in 0..days {
                let len = match m {
                    2 if leap(y) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                d += 1;
                if d > len {
                    d = 1;
                    m += 1;
                }
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
            prop_assert_eq!(civil_from_days(days), (y, m, d));
        }
    }
}
