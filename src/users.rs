//! The rules of the Users domain, free of HTTP: what an id is, what makes a user valid, how a
//! user is normalised and written as JSON, when two emails are one, how a change is applied
//! (read, decide, compare-and-swap on the version), and what a page of the list is.
//!
//! Values are parsed once into types that cannot be invalid ("parse, don't validate"): a
//! [`UserId`] is always a canonical UUID v4, a [`NewUser`] or a [`Patch`] always holds a
//! trimmed name of 1 to 200 characters without control characters and a trimmed email of at
//! most 254 bytes with one `@`, something on each side and no whitespace.

use crate::response::ApiError;
use crate::store::{EmailChange, StoreError, Stored, UserStore};
use bytes::Bytes;
use std::borrow::Cow;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A user's id: a random (version 4) UUID, written lowercase and hyphenated.
///
/// Only that canonical 36-character form is accepted from clients, so every user has exactly
/// one URL; any other spelling is simply an id that names no user.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct UserId(u128);

/// Length of an id's canonical text form.
pub const ID_LEN: usize = 36;

/// Decodes eight lowercase hex digits (the first in the lowest byte, as loaded from text with
/// `u64::from_le_bytes`) into their 32-bit value, or `None` if any byte is not `0-9a-f`.
///
/// Works on all eight bytes at once ("SIMD within a register"): a byte's high bit marks the
/// outcome of a range test, then the nibbles are merged pairwise.
fn hex8(x: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = ONES * 0x80;
    // With every byte below 0x80, adding at most 0x7f to each cannot carry into the next.
    let at_least = |lo: u64| (x + ONES * (0x80 - lo)) & HIGH;
    let digit = at_least(0x30) & !at_least(0x3a);
    let letter = at_least(0x61) & !at_least(0x67);
    if x & HIGH != 0 || (digit | letter) != HIGH {
        return None;
    }
    // '0'..'9' are 0x30..0x39 and 'a'..'f' are 0x61..0x66: the low nibble, plus 9 for letters.
    let nibbles = (x & (ONES * 0x0f)) + (letter >> 7) * 9;
    let pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff_00ff_00ff_00ff;
    let quads = ((pairs << 8) | (pairs >> 16)) & 0x0000_ffff_0000_ffff;
    Some((((quads << 16) | (quads >> 32)) & 0xffff_ffff) as u32)
}

impl UserId {
    /// Returns a fresh random id.
    pub fn random() -> Self {
        UserId(uuid::Uuid::new_v4().as_u128())
    }

    /// Parses the canonical form (`xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, lowercase hex).
    ///
    /// Returns `None` for anything else, including uppercase or unhyphenated spellings.
    pub fn parse(text: &str) -> Option<Self> {
        let b: &[u8; ID_LEN] = text.as_bytes().try_into().ok()?;
        if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
            return None;
        }
        // Every GET runs this, so the 32 digits are gathered into four words and decoded eight
        // at a time (see `hex8`), about a third of the cost of a loop over the bytes.
        let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().unwrap_or_default());
        let mut w1 = [0u8; 8];
        w1[..4].copy_from_slice(&b[9..13]);
        w1[4..].copy_from_slice(&b[14..18]);
        let mut w2 = [0u8; 8];
        w2[..4].copy_from_slice(&b[19..23]);
        w2[4..].copy_from_slice(&b[24..28]);
        let hi = (u64::from(hex8(word(0))?) << 32) | u64::from(hex8(u64::from_le_bytes(w1))?);
        let lo = (u64::from(hex8(u64::from_le_bytes(w2))?) << 32) | u64::from(hex8(word(28))?);
        Some(UserId((u128::from(hi) << 64) | u128::from(lo)))
    }

    /// Builds an id from its 128-bit value (as stored by a backend).
    pub fn from_u128(value: u128) -> Self {
        UserId(value)
    }

    /// The id's 128-bit value.
    pub fn as_u128(self) -> u128 {
        self.0
    }

    /// Writes the canonical text form.
    pub fn encode(self) -> [u8; ID_LEN] {
        let mut out = [0u8; ID_LEN];
        uuid::Uuid::from_u128(self.0)
            .hyphenated()
            .encode_lower(&mut out);
        out
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.encode();
        // The encoding is ASCII hex and hyphens by construction.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

/// Most characters in a name.
pub const NAME_MAX_CHARS: usize = 200;

/// Most bytes in an email (the longest address SMTP's path limit allows).
pub const EMAIL_MAX_BYTES: usize = 254;

/// Why a user's fields were refused. Each reason has one fixed message.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Invalid {
    /// The name is empty once trimmed.
    NameRequired,
    /// The name has more than [`NAME_MAX_CHARS`] characters.
    NameTooLong,
    /// The name holds a control character (a newline, a tab, NUL, ...).
    NameControl,
    /// The email has no `@`.
    EmailInvalid,
    /// The email has more than one `@`.
    EmailManyAt,
    /// Nothing before the `@`.
    EmailNoLocal,
    /// Nothing after the `@`.
    EmailNoDomain,
    /// Whitespace (or another control character) inside the email.
    EmailWhitespace,
    /// The email has more than [`EMAIL_MAX_BYTES`] bytes.
    EmailTooLong,
    /// A change that changes nothing: neither `name` nor `email` given.
    NothingToUpdate,
}

impl Invalid {
    /// The message a client sees; the first and fourth are the article's, word for word.
    pub fn message(self) -> &'static str {
        match self {
            Invalid::NameRequired => "Name is required",
            Invalid::NameTooLong => "Name must be at most 200 characters",
            Invalid::NameControl => "Name must not contain control characters",
            Invalid::EmailInvalid => "Email looks invalid",
            Invalid::EmailManyAt => "Email must contain exactly one @",
            Invalid::EmailNoLocal => "Email needs a local part before the @",
            Invalid::EmailNoDomain => "Email needs a domain after the @",
            Invalid::EmailWhitespace => "Email must not contain whitespace",
            Invalid::EmailTooLong => "Email must be at most 254 bytes",
            Invalid::NothingToUpdate => "Nothing to update: give a name, an email or both",
        }
    }
}

/// Trims a name and checks it; the article's check (empty) comes first.
fn parse_name(name: &str) -> Result<&str, Invalid> {
    let name = name.trim();
    if name.is_empty() {
        return Err(Invalid::NameRequired);
    }
    if name.chars().any(char::is_control) {
        return Err(Invalid::NameControl);
    }
    // Counting characters is only needed past the byte length that 200 one-byte ones take.
    if name.len() > NAME_MAX_CHARS && name.chars().count() > NAME_MAX_CHARS {
        return Err(Invalid::NameTooLong);
    }
    Ok(name)
}

/// Trims an email and checks it; the article's check (an `@`) comes first.
fn parse_email(email: &str) -> Result<&str, Invalid> {
    let email = email.trim();
    let Some((local, domain)) = email.split_once('@') else {
        return Err(Invalid::EmailInvalid);
    };
    if domain.contains('@') {
        return Err(Invalid::EmailManyAt);
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Invalid::EmailWhitespace);
    }
    if local.is_empty() {
        return Err(Invalid::EmailNoLocal);
    }
    if domain.is_empty() {
        return Err(Invalid::EmailNoDomain);
    }
    if email.len() > EMAIL_MAX_BYTES {
        return Err(Invalid::EmailTooLong);
    }
    Ok(email)
}

/// The form of an email that uniqueness is decided on: trimmed and lowercased, so that
/// `Ann@Example.com` and ` ann@example.com` are one address.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// A validated, normalised new user, borrowing from the request.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NewUser<'a> {
    name: &'a str,
    email: &'a str,
}

impl<'a> NewUser<'a> {
    /// Trims both fields and checks them in the article's order: the name first, then the email.
    pub fn parse(name: &'a str, email: &'a str) -> Result<Self, Invalid> {
        let name = parse_name(name)?;
        let email = parse_email(email)?;
        Ok(NewUser { name, email })
    }

    /// The trimmed name.
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The trimmed email.
    pub fn email(&self) -> &'a str {
        self.email
    }

    /// The new user's JSON document (version 1, created and updated `now`).
    ///
    /// This runs once per created user; reads answer from these bytes.
    pub fn to_json(&self, id: UserId, now: SystemTime) -> Vec<u8> {
        let stamp = rfc3339(now);
        let id_text = id.encode();
        Doc {
            // The encoding is ASCII by construction.
            id: Cow::Borrowed(std::str::from_utf8(&id_text).unwrap_or_default()),
            name: Cow::Borrowed(self.name),
            email: Cow::Borrowed(self.email),
            created_at: Cow::Borrowed(&stamp),
            updated_at: Cow::Borrowed(&stamp),
            version: 1,
        }
        .to_json()
    }
}

/// A validated change to a user: a new name, a new email, or both.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Patch<'a> {
    name: Option<&'a str>,
    email: Option<&'a str>,
}

impl<'a> Patch<'a> {
    /// Trims and checks the fields given, with the same rules as [`NewUser::parse`]; at least
    /// one must be given.
    pub fn parse(name: Option<&'a str>, email: Option<&'a str>) -> Result<Self, Invalid> {
        if name.is_none() && email.is_none() {
            return Err(Invalid::NothingToUpdate);
        }
        Ok(Patch {
            name: name.map(parse_name).transpose()?,
            email: email.map(parse_email).transpose()?,
        })
    }
}

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
    /// The trimmed email, as the client wrote it (uniqueness uses [`email_key`]).
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
    /// Reads a stored document; `None` if the bytes are not one (never for what userd wrote).
    pub fn parse(bytes: &'a [u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }

    /// The document after `patch`, one version later, updated `now`.
    pub fn patched(&self, patch: &Patch<'_>, now: SystemTime) -> Doc<'a> {
        let mut next = self.clone();
        if let Some(name) = patch.name {
            next.name = Cow::Owned(name.to_owned());
        }
        if let Some(email) = patch.email {
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

/// The email key and version of a stored document, read leniently (a document from before
/// versions existed is version 1); `None` if the bytes hold no email.
pub fn doc_keys(doc: &[u8]) -> Option<(String, u32)> {
    #[derive(serde::Deserialize)]
    struct Keys<'a> {
        #[serde(borrow)]
        email: Cow<'a, str>,
        #[serde(default = "first_version")]
        version: u32,
    }
    fn first_version() -> u32 {
        1
    }
    let keys: Keys<'_> = serde_json::from_slice(doc).ok()?;
    Some((email_key(&keys.email), keys.version))
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

/// Where a page of the user list starts: after the user created `n`-th (exclusive), in the
/// store's creation order. Clients see it as opaque text (lowercase hex).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Cursor(pub u64);

impl Cursor {
    /// Parses a cursor as [`Cursor::encode`] writes it: 1 to 16 lowercase hex digits.
    pub fn parse(text: &str) -> Option<Self> {
        let ok = (1..=16).contains(&text.len())
            && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        ok.then(|| u64::from_str_radix(text, 16).ok().map(Cursor))
            .flatten()
    }

    /// The cursor's text.
    pub fn encode(self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Users per page when the client does not say.
pub const DEFAULT_LIMIT: usize = 50;
/// Most users per page.
pub const MAX_LIMIT: usize = 1000;

/// How often a change to a user is retried when a concurrent change got there first, before
/// the client is told to try again (each retry means another writer made progress).
const MAX_ATTEMPTS: usize = 64;

/// The answer once [`MAX_ATTEMPTS`] changes in a row lost their race.
const BUSY: &str = "The user is changing too often; try again";

/// Creates a user with a fresh id; returns it as stored.
pub async fn create<S: UserStore>(
    store: &S,
    user: NewUser<'_>,
) -> Result<(UserId, Stored), ApiError> {
    let id = UserId::random();
    let doc = Bytes::from(user.to_json(id, SystemTime::now()));
    store.create(id, email_key(user.email), doc.clone()).await?;
    Ok((id, Stored { doc, version: 1 }))
}

/// Applies `patch` to user `id` if `accepts` its current version (the caller's `If-Match`);
/// returns the user as stored afterwards.
///
/// Reads the user, builds the new document, and writes it if the user has not changed
/// meanwhile; if it has, starts over from the new version (so `accepts` sees it).
pub async fn update<S: UserStore>(
    store: &S,
    id: UserId,
    patch: Patch<'_>,
    accepts: impl Fn(u32) -> bool,
) -> Result<Stored, ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = store.get(id).await?.ok_or(ApiError::UserNotFound)?;
        if !accepts(current.version) {
            return Err(ApiError::PreconditionFailed);
        }
        let doc = Doc::parse(&current.doc).ok_or(ApiError::Unavailable(BROKEN))?;
        let next = doc.patched(&patch, SystemTime::now());
        let (old_key, new_key) = (email_key(&doc.email), email_key(&next.email));
        let email = (old_key != new_key).then_some(EmailChange {
            old: old_key,
            new: new_key,
        });
        let bytes = Bytes::from(next.to_json());
        match store
            .update(id, current.version, email, bytes.clone())
            .await
        {
            Ok(()) => {
                return Ok(Stored {
                    doc: bytes,
                    version: next.version,
                })
            }
            Err(StoreError::Stale) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable(BUSY))
}

/// Deletes user `id` if `accepts` its current version (the caller's `If-Match`).
pub async fn delete<S: UserStore>(
    store: &S,
    id: UserId,
    accepts: impl Fn(u32) -> bool,
) -> Result<(), ApiError> {
    for _ in 0..MAX_ATTEMPTS {
        let current = store.get(id).await?.ok_or(ApiError::UserNotFound)?;
        if !accepts(current.version) {
            return Err(ApiError::PreconditionFailed);
        }
        let (key, _) = doc_keys(&current.doc).ok_or(ApiError::Unavailable(BROKEN))?;
        match store.delete(id, current.version, key).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Stale) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Unavailable(BUSY))
}

/// The answer if a stored document cannot be read back (a bug, never a client's doing).
const BROKEN: &str = "Storage failure: a stored user could not be read";

/// Parses a page size: a decimal number from 1 to [`MAX_LIMIT`].
pub fn parse_limit(text: &str) -> Option<usize> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn canonical_id_round_trips() {
        let id = UserId::random();
        let text = id.to_string();
        assert_eq!(text.len(), ID_LEN);
        assert_eq!(UserId::parse(&text), Some(id));
        assert_eq!(uuid::Uuid::parse_str(&text).unwrap().get_version_num(), 4);
    }

    #[test]
    fn other_spellings_are_not_ids() {
        let text = UserId::random().to_string();
        assert_eq!(UserId::parse(&text.to_uppercase()), None);
        assert_eq!(UserId::parse(&text.replace('-', "")), None);
        assert_eq!(UserId::parse(&format!("{{{text}}}")), None);
        assert_eq!(UserId::parse(""), None);
    }

    #[test]
    fn validation_keeps_the_articles_order_and_messages() {
        assert_eq!(NewUser::parse("  ", "nope"), Err(Invalid::NameRequired));
        assert_eq!(NewUser::parse("Ann", "nope"), Err(Invalid::EmailInvalid));
        let u = NewUser::parse("  Ann ", "\tann@example.com\n").unwrap();
        assert_eq!((u.name(), u.email()), ("Ann", "ann@example.com"));
        assert_eq!(Invalid::NameRequired.message(), "Name is required");
        assert_eq!(Invalid::EmailInvalid.message(), "Email looks invalid");
    }

    #[test]
    fn new_rules_have_clear_messages() {
        let long = "n".repeat(201);
        assert_eq!(NewUser::parse(&long, "a@b"), Err(Invalid::NameTooLong));
        assert!(NewUser::parse(&"é".repeat(200), "a@b").is_ok());
        assert_eq!(NewUser::parse("A\u{7}n", "a@b"), Err(Invalid::NameControl));
        assert_eq!(NewUser::parse("Ann", "a@b@c"), Err(Invalid::EmailManyAt));
        assert_eq!(NewUser::parse("Ann", "@b"), Err(Invalid::EmailNoLocal));
        assert_eq!(NewUser::parse("Ann", "a@"), Err(Invalid::EmailNoDomain));
        assert_eq!(
            NewUser::parse("Ann", "a b@c"),
            Err(Invalid::EmailWhitespace)
        );
        let email = format!("{}@b", "a".repeat(253));
        assert_eq!(NewUser::parse("Ann", &email), Err(Invalid::EmailTooLong));
        assert!(NewUser::parse("Ann", &email[1..]).is_ok());
        assert_eq!(Patch::parse(None, None), Err(Invalid::NothingToUpdate));
        assert_eq!(email_key("  Ann@Example.COM "), "ann@example.com");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_795_000_000_123);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.123Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn limits_and_cursors() {
        assert_eq!(parse_limit("1"), Some(1));
        assert_eq!(parse_limit("1000"), Some(1000));
        for bad in ["0", "1001", "", "-1", "1e3", "10000", " 5"] {
            assert_eq!(parse_limit(bad), None, "{bad:?}");
        }
        assert_eq!(Cursor::parse("00000000000000ff"), Some(Cursor(255)));
        for bad in ["", "G", "00000000000000000", "FF"] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_agrees_with_the_uuid_crate_on_canonical_text(s in "[0-9a-fA-F-]{30,40}") {
            let ours = UserId::parse(&s);
            let canonical = uuid::Uuid::try_parse(&s)
                .ok()
                .filter(|u| u.hyphenated().to_string() == s);
            prop_assert_eq!(ours.map(|u| u.as_u128()), canonical.map(|u| u.as_u128()));
        }

        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = UserId::parse(&s);
        }

        #[test]
        fn json_is_what_serde_writes(name in ".*", email in ".*") {
            if let Ok(u) = NewUser::parse(&name, &email) {
                let id = UserId::random();
                let json = u.to_json(id, UNIX_EPOCH);
                let doc: serde_json::Value = serde_json::from_slice(&json).unwrap();
                prop_assert_eq!(doc["id"].as_str().unwrap(), id.to_string());
                prop_assert_eq!(doc["name"].as_str().unwrap(), name.trim());
                prop_assert_eq!(doc["email"].as_str().unwrap(), email.trim());
                prop_assert_eq!(doc["created_at"].as_str().unwrap(), "1970-01-01T00:00:00.000Z");
                prop_assert_eq!(doc["version"].as_u64(), Some(1));
                prop_assert_eq!(Doc::parse(&json).unwrap().to_json(), json);
            }
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
        fn cursors_round_trip(n in any::<u64>()) {
            prop_assert_eq!(Cursor::parse(&Cursor(n).encode()), Some(Cursor(n)));
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
