//! What the contract says a user should see, written here independently of userd's code:
//! the exact bodies of the article's answers, the envelope, the user's document, the
//! validation rules and their messages.

use super::client::Response;

/// The health answer, byte for byte.
pub const HEALTH_BODY: &str = r#"{"ok":true,"data":"ok","error":null}"#;

/// The error envelope for `message`, as userd writes it (the message JSON-escaped).
pub fn error_body(message: &str) -> String {
    format!(
        r#"{{"ok":false,"data":null,"error":{}}}"#,
        serde_json::to_string(message).unwrap()
    )
}

/// The success envelope around `data`, which is already JSON.
pub fn ok_body(data: &str) -> String {
    format!(r#"{{"ok":true,"data":{data},"error":null}}"#)
}

/// The start of a user's JSON document, as the article's server writes its whole document:
/// fields in the order id, name, email, strings escaped the way serde_json escapes them.
/// userd goes on with `created_at`, `updated_at` and `version`.
pub fn user_doc_head(id: &str, name: &str, email: &str) -> String {
    format!(
        r#"{{"id":{},"name":{},"email":{},"created_at":""#,
        serde_json::to_string(id).unwrap(),
        serde_json::to_string(name).unwrap(),
        serde_json::to_string(email).unwrap()
    )
}

/// True if and only if `t` is an RFC 3339 UTC timestamp as userd writes it
/// (`2026-11-26T11:02:38.123Z`).
pub fn is_rfc3339_utc(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() == 24
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 => c == b'-',
            10 => c == b'T',
            13 | 16 => c == b':',
            19 => c == b'.',
            23 => c == b'Z',
            _ => c.is_ascii_digit(),
        })
}

/// Checks a user's document byte for byte: the article's fields first, then RFC 3339
/// timestamps and `version`; returns it parsed.
#[track_caller]
pub fn assert_user_version(
    doc: &str,
    id: &str,
    name: &str,
    email: &str,
    version: u64,
) -> serde_json::Value {
    let head = user_doc_head(id, name, email);
    assert!(doc.starts_with(&head), "{doc} should start with {head}");
    let v: serde_json::Value = serde_json::from_str(doc).expect("document is JSON");
    let (created, updated) = (
        v["created_at"].as_str().expect("created_at"),
        v["updated_at"].as_str().expect("updated_at"),
    );
    assert!(is_rfc3339_utc(created) && is_rfc3339_utc(updated), "{doc}");
    assert!(updated >= created, "{doc}");
    let tail = format!(r#"{created}","updated_at":"{updated}","version":{version}}}"#);
    assert_eq!(&doc[head.len()..], tail, "the rest of {doc}");
    v
}

/// Checks a newly created user's document (version 1, updated when created).
#[track_caller]
pub fn assert_user(doc: &str, id: &str, name: &str, email: &str) -> serde_json::Value {
    let v = assert_user_version(doc, id, name, email, 1);
    assert_eq!(v["created_at"], v["updated_at"], "{doc}");
    v
}

/// The `data` of a success envelope, byte for byte.
#[track_caller]
pub fn data_of(res: &Response) -> String {
    let body = res.body_str();
    let data = body
        .strip_prefix(r#"{"ok":true,"data":"#)
        .and_then(|b| b.strip_suffix(r#","error":null}"#))
        .unwrap_or_else(|| panic!("not a success envelope: {body}"));
    data.to_owned()
}

/// The message a create (or a change) with this name and email must be refused with (400),
/// by the rules of the issue, written here independently of userd's code; `None` if valid.
pub fn expected_refusal(name: &str, email: &str) -> Option<&'static str> {
    let (name, email) = (name.trim(), email.trim());
    if name.is_empty() {
        return Some("Name is required");
    }
    if name.chars().any(char::is_control) {
        return Some("Name must not contain control characters");
    }
    if name.chars().count() > 200 {
        return Some("Name must be at most 200 characters");
    }
    email_refusal(email)
}

/// The message an email must be refused with, or `None`.
pub fn email_refusal(email: &str) -> Option<&'static str> {
    let email = email.trim();
    let ats = email.matches('@').count();
    if ats == 0 {
        return Some("Email looks invalid");
    }
    if ats > 1 {
        return Some("Email must contain exactly one @");
    }
    if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("Email must not contain whitespace");
    }
    if email.starts_with('@') {
        return Some("Email needs a local part before the @");
    }
    if email.ends_with('@') {
        return Some("Email needs a domain after the @");
    }
    if email.len() > 254 {
        return Some("Email must be at most 254 bytes");
    }
    None
}

/// The emails a test has seen created, as uniqueness compares them (trimmed, lowercased).
#[derive(Default)]
pub struct TakenEmails(std::sync::Mutex<std::collections::HashSet<String>>);

impl TakenEmails {
    /// True if and only if the email was not taken; it is taken afterwards.
    pub fn take(&self, email: &str) -> bool {
        self.0.lock().unwrap().insert(email.trim().to_lowercase())
    }

    /// True if and only if the email is taken.
    pub fn is_taken(&self, email: &str) -> bool {
        self.0
            .lock()
            .unwrap()
            .contains(&email.trim().to_lowercase())
    }
}

/// True if and only if `id` is a UUID v4 in its canonical lowercase hyphenated form.
pub fn is_canonical_uuid_v4(id: &str) -> bool {
    let b = id.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
        && b[14] == b'4'
        && matches!(b[19], b'8' | b'9' | b'a' | b'b')
}

/// Checks `res` is the 201 of a created user and returns its id and its document.
#[track_caller]
pub fn user_from_created(res: &Response) -> (String, String) {
    assert_eq!(res.status, 201, "create failed: {res:?}");
    let v = res.json();
    let id = v["data"]["id"].as_str().expect("data.id").to_owned();
    let name = v["data"]["name"].as_str().expect("data.name");
    let email = v["data"]["email"].as_str().expect("data.email");
    let doc = data_of(res);
    assert_user(&doc, &id, name, email);
    assert_eq!(res.header("etag"), Some("\"1\""), "etag of {res:?}");
    let location = format!("/users/{id}");
    assert_eq!(res.header("location"), Some(location.as_str()));
    (id, doc)
}

/// Assertions that need the oracle's bodies.
impl Response {
    /// Asserts a JSON error envelope: status, headers and the exact body for `message`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) {
        self.assert_json(status, &error_body(message));
    }

    /// Asserts an error envelope whose message starts with `prefix` (for messages that carry
    /// serde_json's detail); returns the message.
    #[track_caller]
    pub fn assert_error_prefix(&self, status: u16, prefix: &str) -> String {
        assert_eq!(self.status, status, "status of {self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(
            self.header("content-length"),
            Some(self.body.len().to_string().as_str())
        );
        let message = self.error_message();
        assert!(
            message.starts_with(prefix) && message.len() > prefix.len(),
            "message {message:?} should start with {prefix:?} and say more"
        );
        // The envelope is exactly the one userd writes for that message.
        assert_eq!(self.body_str(), error_body(&message));
        message
    }
}
