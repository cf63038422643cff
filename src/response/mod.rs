//! The JSON envelope `{"ok":..,"data":..,"error":..}`, the one writer of every body userd
//! sends, and ([`errors`]) the one place where an error becomes a status and a message.

use crate::store::UserView;
use crate::users::document;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, ETAG};
use hyper::{Response, StatusCode};
use std::cell::RefCell;
use std::io::IoSlice;

pub mod errors;

pub use errors::ApiError;

/// Every response body userd writes.
pub type Body = Full<Envelope>;

/// Every response userd writes.
pub type ApiResponse = Response<Body>;

const OK_HEAD: &[u8] = br#"{"ok":true,"data":"#;
const OK_TAIL: &[u8] = br#","error":null}"#;
const ERR_HEAD: &[u8] = br#"{"ok":false,"data":null,"error":"#;
const ERR_TAIL: &[u8] = b"}";

/// A response body in three parts: the envelope's static head, the data, the static tail.
///
/// Error answers and small data are a static head and tail around the data, with no copy of
/// either; a user's answer is written whole by [`user_body`] into a per-thread buffer and carried
/// as the data with empty head and tail. hyper writes the parts out with the headers in one
/// system call.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    head: &'static [u8],
    data: Bytes,
    tail: &'static [u8],
}

impl Envelope {
    /// `{"ok":true,"data":<data>,"error":null}`, where `data` is already JSON.
    pub fn ok(data: Bytes) -> Self {
        Envelope {
            head: OK_HEAD,
            data,
            tail: OK_TAIL,
        }
    }

    /// A body that is already complete.
    pub fn whole(body: Bytes) -> Self {
        Envelope {
            head: b"",
            data: body,
            tail: b"",
        }
    }

    /// `{"ok":false,"data":null,"error":"<message>"}`, with the message JSON-escaped.
    pub fn error(message: &str) -> Self {
        let mut quoted = Vec::with_capacity(message.len() + 2);
        // Writing a &str into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut quoted, message);
        Envelope {
            head: ERR_HEAD,
            data: Bytes::from(quoted),
            tail: ERR_TAIL,
        }
    }

    /// The body as one contiguous buffer (for tests and benches).
    pub fn to_bytes(&self) -> Bytes {
        let mut all = self.clone();
        all.copy_to_bytes(all.remaining())
    }
}

impl Buf for Envelope {
    fn remaining(&self) -> usize {
        self.head.len() + self.data.len() + self.tail.len()
    }

    fn chunk(&self) -> &[u8] {
        if !self.head.is_empty() {
            self.head
        } else if !self.data.is_empty() {
            &self.data
        } else {
            self.tail
        }
    }

    fn advance(&mut self, mut cnt: usize) {
        let n = cnt.min(self.head.len());
        self.head = &self.head[n..];
        cnt -= n;
        let n = cnt.min(self.data.len());
        self.data.advance(n);
        cnt -= n;
        let n = cnt.min(self.tail.len());
        self.tail = &self.tail[n..];
        debug_assert_eq!(cnt - n, 0, "advanced past the end of the body");
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let parts = [self.head, &self.data[..], self.tail];
        let mut n = 0;
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            if n == dst.len() {
                break;
            }
            dst[n] = IoSlice::new(part);
            n += 1;
        }
        n
    }
}

const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// A JSON response with the given status and body.
pub fn json(status: StatusCode, body: Envelope) -> ApiResponse {
    let mut res = Response::new(Full::new(body));
    *res.status_mut() = status;
    res.headers_mut().insert(CONTENT_TYPE, JSON);
    res
}

/// `200 {"ok":true,"data":<data>,"error":null}`-style response with another status if needed.
pub fn ok(status: StatusCode, data: Bytes) -> ApiResponse {
    json(status, Envelope::ok(data))
}

/// Strong `ETag`s of the first versions, made at compile time: most users never change, so a
/// read sends one of these without formatting or allocating.
static ETAGS: [HeaderValue; 16] = [
    HeaderValue::from_static("\"0\""),
    HeaderValue::from_static("\"1\""),
    HeaderValue::from_static("\"2\""),
    HeaderValue::from_static("\"3\""),
    HeaderValue::from_static("\"4\""),
    HeaderValue::from_static("\"5\""),
    HeaderValue::from_static("\"6\""),
    HeaderValue::from_static("\"7\""),
    HeaderValue::from_static("\"8\""),
    HeaderValue::from_static("\"9\""),
    HeaderValue::from_static("\"10\""),
    HeaderValue::from_static("\"11\""),
    HeaderValue::from_static("\"12\""),
    HeaderValue::from_static("\"13\""),
    HeaderValue::from_static("\"14\""),
    HeaderValue::from_static("\"15\""),
];

/// The strong `ETag` of a user's version: the version in quotes (ids are never reused, so
/// the version alone tells one state of a user from another).
#[inline]
pub fn etag(version: u32) -> HeaderValue {
    match ETAGS.get(version as usize) {
        Some(tag) => tag.clone(),
        // Digits and quotes are always a valid header value.
        None => HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(JSON),
    }
}

/// A user's document in the envelope, rendered from its fields: the body of a user's answer.
///
/// Written into a buffer each thread keeps, and split off it: a body costs no allocation of
/// its own. Once every body split off the buffer has been sent and dropped, the next one
/// reuses the buffer's memory from its start; while some are still in flight, a fresh buffer
/// is taken and the old one is freed with the last of them.
pub fn user_body(user: &UserView<'_>) -> Bytes {
    /// A buffer's size: room for a few dozen bodies of usual users.
    const CHUNK: usize = 8 * 1024;
    thread_local! {
        static BUFFER: RefCell<BytesMut> = RefCell::new(BytesMut::new());
    }
    let len = OK_HEAD.len() + document::json_len(user) + OK_TAIL.len();
    BUFFER.with_borrow_mut(|buf| {
        if buf.capacity() < len {
            buf.reserve(len.max(CHUNK));
        }
        buf.extend_from_slice(OK_HEAD);
        document::write_json(buf, user);
        buf.extend_from_slice(OK_TAIL);
        buf.split().freeze()
    })
}

/// A user's answer: its [`user_body`] and the `ETag` of its version.
#[inline]
pub fn user(status: StatusCode, body: Bytes, version: u32) -> ApiResponse {
    let mut res = json(status, Envelope::whole(body));
    res.headers_mut().insert(ETAG, etag(version));
    res
}

/// A response with a status and no body (204, or an `OPTIONS` answer).
pub fn empty(status: StatusCode) -> ApiResponse {
    let mut res = Response::new(Full::new(Envelope::default()));
    *res.status_mut() = status;
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_parts_join_into_the_articles_bytes() {
        let body = Envelope::ok(Bytes::from_static(br#""ok""#)).to_bytes();
        assert_eq!(&body[..], br#"{"ok":true,"data":"ok","error":null}"#);
        let body = Envelope::error("User not found").to_bytes();
        assert_eq!(
            &body[..],
            br#"{"ok":false,"data":null,"error":"User not found"}"#
        );
    }

    #[test]
    fn error_messages_are_escaped() {
        let body = Envelope::error("a \"quoted\"\nline").to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "a \"quoted\"\nline");
        assert_eq!(v["ok"], false);
        assert!(v["data"].is_null());
    }

    #[test]
    fn vectored_chunks_cover_the_body() {
        let env = Envelope::ok(Bytes::from_static(b"1"));
        let mut slices = [IoSlice::new(&[]); 4];
        let n = env.chunks_vectored(&mut slices);
        let joined: Vec<u8> = slices[..n].iter().flat_map(|s| s.iter().copied()).collect();
        assert_eq!(joined, env.to_bytes().to_vec());
    }
}
