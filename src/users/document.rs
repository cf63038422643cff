//! A user's JSON document and the RFC 3339 timestamps in it.
//!
//! A document is serialized once, when a user is created or changed; reads answer with those
//! bytes. Fields come in the article's order (`id`, `name`, `email`), escaped the way
//! serde_json escapes them, then `created_at`, `updated_at` and `version`.

use super::fields::{NewUser, Patch};
use super::id::{UserId, ID_LEN};
use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

/// A user's JSON document, field by field, in the order it is written.
///
/// Fields borrow from the bytes they are read from; only strings with escapes are copied.
#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Doc<'a> {
    /// The id, canonical text.
    #[serde(borrow)]
    pub id: Cow<'a, str>,
    /// The trimmed name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// The trimmed email, as the client wrote it (uniqueness uses
    /// [`super::fields::email_key`]).
    #[serde(borrow)]
    pub email: Cow<'a, str>,
    /// When the user was created, RFC 3339 in UTC.
    #[serde(borrow)]
    pub created_at: Cow<'a, str>,
    /// When the user last changed, RFC 3339 in UTC.
    #[serde(borrow)]
    pub updated_at: Cow<'a, str>,
    /// 1 at creation, one more with every update; the `ETag`.
    pub version: u32,
}

impl<'a> Doc<'a> {
    /// A new user's document: version 1, created and updated `now`.
    pub fn new(id: &'a [u8; ID_LEN], user: &NewUser<'a>, stamp: &'a str) -> Self {
        Doc {
            // The encoding is ASCII by construction.
            id: Cow::Borrowed(std::str::from_utf8(id).unwrap_or_default()),
            name: Cow::Borrowed(user.name()),
            email: Cow::Borrowed(user.email()),
            created_at: Cow::Borrowed(stamp),
            updated_at: Cow::Borrowed(stamp),
            version: 1,
        }
    }

    /// Reads a stored document; `None` if the bytes are not one (never for what userd wrote).
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The document after `patch`, one version later, updated `now`.
    pub fn patched(&self, patch: &Patch<'_>, now: SystemTime) -> Doc<'a> {
        let mut next = self.clone();
        if let Some(name) = patch.name() {
            next.name = Cow::Owned(name.to_owned());
        }
        if let Some(email) = patch.email() {
            next.email = Cow::Owned(email.to_owned());
        }
        next.updated_at = Cow::Owned(rfc3339(now));
        next.version = self.version.saturating_add(1);
        next
    }

    /// The JSON bytes: fields in declaration order, serde_json's escaping (the article's
    /// `id`, `name`, `email` first, byte for byte as its server writes them).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            96 + ID_LEN + self.name.len() + self.email.len() + 2 * self.created_at.len(),
        );
        // Serializing strings and a number into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        out
    }
}

/// The JSON document of a new user (version 1, created and updated `now`).
///
/// This runs once per created user; reads answer from these bytes.
pub fn new_user_json(id: UserId, user: &NewUser<'_>, now: SystemTime) -> Vec<u8> {
    let stamp = rfc3339(now);
    let id_text = id.encode();
    Doc::new(&id_text, user, &stamp).to_json()
}

/// Writes `t` as RFC 3339 in UTC with milliseconds: `2026-11-26T11:02:38.123Z`.
///
/// Every create and update runs this, so the digits are written straight into a fixed buffer
/// (`format!` costs about twenty times as much). Years past 9999 are written as 9999.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
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
    put(20, 3, u64::from(since.subsec_millis()));
    // The buffer holds ASCII digits and punctuation only.
    String::from_utf8_lossy(&out).into_owned()
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
    use proptest::prelude::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    proptest! {
        /// Every valid user's document is exactly what serde_json writes for its fields, and
        /// reads back to itself. (The fields come from generators of valid input, so every case
        /// reaches the document; `fields.rs` tests the refusals.)
        #[test]
        fn json_is_what_serde_writes(name in valid_name(), email in valid_email()) {
            let user = NewUser::parse(&name, &email).expect("the generators make valid users");
            let id = UserId::random();
            let json = new_user_json(id, &user, UNIX_EPOCH);
            let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
            prop_assert_eq!(doc["id"].as_str().unwrap(), id.to_string());
            prop_assert_eq!(doc["name"].as_str().unwrap(), name.trim());
            prop_assert_eq!(doc["email"].as_str().unwrap(), email.trim());
            prop_assert_eq!(doc["created_at"].as_str().unwrap(), "1970-01-01T00:00:00.000Z");
            prop_assert_eq!(doc["version"].as_u64(), Some(1));
            let reference = serde_json::to_vec(&serde_json::json!({
                "id": id.to_string(),
                "name": name.trim(),
                "email": email.trim(),
                "created_at": "1970-01-01T00:00:00.000Z",
                "updated_at": "1970-01-01T00:00:00.000Z",
                "version": 1,
            }))
            .unwrap();
            // serde_json's `json!` keeps keys sorted, so compare as values, and the bytes of
            // the article's fields as a prefix.
            prop_assert_eq!(serde_json::from_slice::<serde_json::Value>(&reference).unwrap(), doc);
            let head = format!(
                "{{\"id\":{},\"name\":{},\"email\":{},",
                serde_json::to_string(&id.to_string()).unwrap(),
                serde_json::to_string(name.trim()).unwrap(),
                serde_json::to_string(email.trim()).unwrap()
            );
            prop_assert!(json.starts_with(head.as_bytes()));
            prop_assert_eq!(Doc::parse(&json).unwrap().to_json(), json);
        }

        #[test]
        fn timestamps_match_a_formatted_reference(ms in 0u64..253_402_300_800_000) {
            let t = UNIX_EPOCH + std::time::Duration::from_millis(ms);
            let (secs, rem) = (ms / 1000, ms % 1000);
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let s = secs % 86_400;
            let reference = format!(
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{rem:03}Z",
                s / 3600,
                s / 60 % 60,
                s % 60
            );
            prop_assert_eq!(rfc3339(t), reference);
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
