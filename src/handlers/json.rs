//! Reading a JSON request body: media type, size limit, collection, parsing.
//!
//! The checks run in the order that costs the client least: the media type (415) before any
//! byte of the body is read, the declared length (413) before reading, then the body itself,
//! stopped as soon as it passes the limit (413), then the JSON (400 for bytes that are not
//! JSON, 422 for JSON of the wrong shape).

use crate::response::ApiError;
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Body;
use hyper::header::{HeaderMap, CONTENT_TYPE, EXPECT};
use serde::Deserialize;

/// Returns true if and only if the `Content-Type` is `application/json` or
/// `application/<something>+json`, any case, with or without parameters (`; charset=utf-8`).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    // Nearly every client sends exactly this; it needs no splitting.
    if value.as_bytes().eq_ignore_ascii_case(b"application/json") {
        return true;
    }
    let Ok(value) = value.to_str() else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || (sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case("+json")))
}

/// Checks what the head says of a JSON body: its media type (415), before any of it is read
/// (and before hyper sends `100 Continue`). Its declared length is [`read_body`]'s to check:
/// hyper has parsed it already, into the body's size hint.
pub(crate) fn check_head(headers: &HeaderMap) -> Result<(), ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType);
    }
    Ok(())
}

/// Collects a body of at most `limit` bytes.
///
/// The body is borrowed, not consumed, so that the caller can still drain what is left of it
/// after an early answer (see [`drain_unread`]).
pub(crate) async fn read_body<B>(body: &mut B, limit: usize) -> Result<Bytes, ApiError>
where
    B: Body<Data = Bytes> + Unpin,
{
    let too_large = ApiError::PayloadTooLarge { limit };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large);
    }
    // Most bodies arrive as one frame: keep it as it is, without a copy. Only a body in
    // several frames is joined into one buffer.
    let mut total = 0usize;
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ApiError::BodyRead)?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers carry nothing for us
        };
        total += data.len();
        if total > limit {
            return Err(too_large); // stop reading a chunked body as soon as it passes the limit
        }
        if let Some(buf) = joined.as_mut() {
            buf.extend_from_slice(&data);
        } else if let Some(head) = first.take() {
            let mut buf = BytesMut::with_capacity(total.max(4096).min(limit));
            buf.extend_from_slice(&head);
            buf.extend_from_slice(&data);
            joined = Some(buf);
        } else {
            first = Some(data);
        }
    }
    let bytes = match (first, joined) {
        (_, Some(buf)) => buf.freeze(),
        (Some(one), None) => one,
        (None, None) => Bytes::new(),
    };
    if bytes.is_empty() {
        return Err(ApiError::EmptyBody);
    }
    Ok(bytes)
}

/// Most bytes of an unneeded request body that [`drain_unread`] reads and throws away.
const DRAIN_LIMIT: usize = 1 << 20;

/// How long [`drain_unread`] waits for the next piece of an unneeded body.
const DRAIN_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// Reads and discards the rest of a chunked request body that the answer did not need (a
/// 404, 405, 413 or 415 decided before the body was read to its end).
///
/// Why: with `pipeline_flush` on, hyper 1.x skips the flush while unread request bytes sit in
/// its read buffer; when it then gives up on the unread body and closes the connection, the
/// answer still in its write buffer is never sent: the client sees the connection close with
/// no response. Reading the body out of hyper's buffer first lets the answer go out (and a
/// body that ends keeps the connection usable). Reading stops at the body's end, after
/// [`DRAIN_LIMIT`] bytes, or when nothing more arrives within [`DRAIN_WAIT`]; bodies with a
/// declared length are left alone (hyper drains those itself), and so are bodies whose client
/// waits for `100 Continue` (it has sent nothing yet).
pub(crate) async fn drain_unread<B>(body: &mut B, waits_for_continue: bool)
where
    B: Body<Data = Bytes> + Unpin,
{
    if body.is_end_stream() || body.size_hint().exact().is_some() || waits_for_continue {
        return;
    }
    let mut left = DRAIN_LIMIT;
    while left > 0 {
        match tokio::time::timeout(DRAIN_WAIT, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                left = left.saturating_sub(frame.data_ref().map_or(0, Bytes::len));
            }
            // The end of the body, a broken body, or a client that went quiet.
            _ => return,
        }
    }
}

/// Returns true if and only if the client waits for `100 Continue` before sending its body.
pub(crate) fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"))
}

/// Parses a body that must be a JSON object into a request type that may borrow from it.
///
/// 400 for bytes that are not JSON (including invalid UTF-8 anywhere, even in a field that is
/// ignored), 422 for JSON of another shape.
pub(crate) fn parse<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    // serde_json checks the UTF-8 of the strings it keeps but skips over the strings of
    // unknown fields unchecked: check the whole body once, then parse it as text.
    let text = std::str::from_utf8(body).map_err(|e| {
        ApiError::MalformedJson(format!("invalid UTF-8 at byte {}", e.valid_up_to()))
    })?;
    let first = text
        .bytes()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(b'{') {
        // serde's derived structs also accept an array of the fields in order; this API takes
        // only objects. Still tell bytes that are not JSON (400) from JSON of another shape.
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(text) {
            Ok(_) => ApiError::InvalidShape("expected a JSON object".into()),
            Err(e) => classify(e),
        });
    }
    serde_json::from_str(text).map_err(classify)
}

fn classify(e: serde_json::Error) -> ApiError {
    match e.classify() {
        serde_json::error::Category::Data => ApiError::InvalidShape(e.to_string()),
        _ => ApiError::MalformedJson(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with_type(t: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static(t));
        h
    }

    #[test]
    fn json_media_types() {
        assert!(is_json(&with_type("application/json")));
        assert!(is_json(&with_type("Application/JSON; charset=utf-8")));
        assert!(is_json(&with_type("application/merge-patch+json")));
        assert!(!is_json(&with_type("text/plain")));
        assert!(!is_json(&with_type("application/jsonx")));
        assert!(!is_json(&with_type("application/+json")));
        assert!(!is_json(&HeaderMap::new()));
    }
}
