//! What `POST /users` does with bodies it cannot use: 415, 400, 422, 413.

use crate::helpers::{
    assert_user, create_body, error_body, padded_body, spawn_app, spawn_app_with,
    user_from_created, DEFAULT_MAX_BODY,
};
use userd::server::Settings;

const VALID: &str = r#"{"name":"Ann","email":"a@b"}"#;
const NOT_JSON_TYPE: &str =
    r#"{"ok":false,"data":null,"error":"Content-Type must be application/json"}"#;
const TOO_LARGE: &str =
    r#"{"ok":false,"data":null,"error":"Request body is larger than the limit of 65536 bytes"}"#;

#[tokio::test]
async fn missing_content_type_is_415() {
    let app = spawn_app().await;
    let res = app.post_typed("/users", None, VALID).await;
    res.assert_json(415, NOT_JSON_TYPE);
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn content_types_other_than_json_are_415() {
    let app = spawn_app().await;
    for t in [
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/jsonx",
        "application/json-seq",
        "application/+json",
        "application",
        "json",
        "",
    ] {
        let res = app.post_typed("/users", Some(t), VALID).await;
        assert_eq!(res.status, 415, "Content-Type: {t:?}");
        res.assert_json(415, NOT_JSON_TYPE);
    }
}

#[tokio::test]
async fn json_content_type_with_parameters_or_any_case_is_accepted() {
    let app = spawn_app().await;
    for (i, t) in [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
        "APPLICATION/JSON; charset=utf-8",
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("u{i}@b");
        let res = app
            .post_typed("/users", Some(t), create_body("Ann", &email))
            .await;
        let (id, doc) = user_from_created(&res);
        assert_user(&doc, &id, "Ann", &email);
    }
}

/// As axum's `Json` (the article's extractor) does, `application/<anything>+json` counts as
/// JSON.
#[tokio::test]
async fn structured_json_suffix_media_types_are_accepted() {
    let app = spawn_app().await;
    for t in ["application/merge-patch+json", "application/vnd.api+JSON"] {
        let res = app
            .post_typed("/users", Some(t), create_body("Ann", &format!("{t}@b")))
            .await;
        assert_eq!(res.status, 201, "Content-Type: {t:?}");
    }
}

/// The media type is checked before the length: a non-JSON body is a 415 at any size.
#[tokio::test]
async fn media_type_is_checked_before_the_size() {
    let app = spawn_app().await;
    let mut conn = app.connect().await;
    conn.send(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 10000000\r\n\r\n",
    )
    .await;
    conn.read_response().await.assert_json(415, NOT_JSON_TYPE);
}

#[tokio::test]
async fn malformed_json_is_400_with_the_parsers_detail() {
    let app = spawn_app().await;
    for body in [
        "{",
        r#"{"name":"Ann","email":"a@b""#,
        r#"{"name":"Ann" "email":"a@b"}"#,
        r#"{"name":'Ann',"email":"a@b"}"#,
        r#"{name:"Ann",email:"a@b"}"#,
        r#"{"name":"Ann","email":"a@b",}"#,
        "nul",
        "garbage",
        "   ",
        "\u{feff}{\"name\":\"Ann\",\"email\":\"a@b\"}",
    ] {
        let res = app.post_json("/users", body).await;
        assert_eq!(res.status, 400, "body {body:?}: {res:?}");
        res.assert_error_prefix(400, "Malformed JSON: ");
    }
    assert_eq!(app.user_count().await, 0);
}

/// Bytes after the object make the body something other than one JSON document.
#[tokio::test]
async fn trailing_bytes_after_the_object_are_400() {
    let app = spawn_app().await;
    for body in [
        r#"{"name":"Ann","email":"a@b"} x"#,
        r#"{"name":"Ann","email":"a@b"}{}"#,
        r#"{"name":"Ann","email":"a@b"}}"#,
    ] {
        let msg = app
            .post_json("/users", body)
            .await
            .assert_error_prefix(400, "Malformed JSON: ");
        assert!(msg.contains("trailing characters"), "{msg}");
    }
    // Trailing white space is fine.
    assert_eq!(
        app.post_json("/users", format!("{VALID} \n\t "))
            .await
            .status,
        201
    );
}

#[tokio::test]
async fn empty_body_is_400_request_body_is_empty() {
    let app = spawn_app().await;
    let expected =
        r#"{"ok":false,"data":null,"error":"Request body is empty; expected a JSON object"}"#;
    // Content-Length: 0
    app.post_json("/users", "").await.assert_json(400, expected);
    // No Content-Length and no Transfer-Encoding: no body at all.
    app.request("POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n")
        .await
        .assert_json(400, expected);
    // An empty chunked body.
    app.request(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    )
    .await
    .assert_json(400, expected);
}

/// Valid JSON of the wrong shape is a 422, as axum's `Json` answers it.
#[tokio::test]
async fn json_of_the_wrong_shape_is_422() {
    let app = spawn_app().await;
    for body in [
        r#"{}"#,
        r#"{"name":"Ann"}"#,
        r#"{"email":"a@b"}"#,
        r#"{"name":1,"email":"a@b"}"#,
        r#"{"name":"Ann","email":null}"#,
        r#"{"name":["Ann"],"email":"a@b"}"#,
        r#"{"name":{"first":"Ann"},"email":"a@b"}"#,
        r#"{"name":true,"email":"a@b"}"#,
        "[]",
        "[1,2]",
        r#"["Ann"]"#,
        "42",
        "-1.5e3",
        "true",
        "null",
        r#""Ann""#,
    ] {
        let res = app.post_json("/users", body).await;
        assert_eq!(res.status, 422, "body {body:?}: {res:?}");
        res.assert_error_prefix(422, "Invalid request body: ");
    }
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn missing_field_message_names_the_field() {
    let app = spawn_app().await;
    let msg = app
        .post_json("/users", r#"{"name":"Ann"}"#)
        .await
        .assert_error_prefix(422, "Invalid request body: ");
    assert!(msg.contains("missing field `email`"), "{msg}");
}

#[tokio::test]
async fn duplicate_field_is_422() {
    let app = spawn_app().await;
    let msg = app
        .post_json("/users", r#"{"name":"Ann","email":"a@b","name":"Bob"}"#)
        .await
        .assert_error_prefix(422, "Invalid request body: ");
    assert!(msg.contains("duplicate field `name`"), "{msg}");
}

/// The contract says an array instead of an object is a 422. serde's derived `Deserialize`
/// also accepts a struct written as a sequence of its fields, so `["Ann","a@b"]` would create
/// a user unless the server refuses it.
#[tokio::test]
async fn array_of_two_strings_is_422_not_a_user() {
    let app = spawn_app().await;
    let res = app.post_json("/users", r#"["Ann","a@b"]"#).await;
    res.assert_error_prefix(422, "Invalid request body: ");
    assert_eq!(app.user_count().await, 0);
}

/// A string that is not valid UTF-8 is not JSON (RFC 8259 requires UTF-8).
#[tokio::test]
async fn invalid_utf8_in_a_field_is_400() {
    let app = spawn_app().await;
    for body in [
        &b"{\"name\":\"A\xffn\",\"email\":\"a@b\"}"[..],
        &b"{\"name\":\"Ann\",\"email\":\"a\xc3@b\"}"[..],
        &b"{\"name\":\"\xed\xa0\x80\",\"email\":\"a@b\"}"[..], // an encoded surrogate
        &b"{\"name\":\"\xc0\xaf\",\"email\":\"a@b\"}"[..],     // an overlong encoding
        &b"\xff{\"name\":\"Ann\",\"email\":\"a@b\"}"[..],
    ] {
        let res = app.post_json("/users", body).await;
        assert_eq!(res.status, 400, "body {body:?}: {res:?}");
        res.assert_error_prefix(400, "Malformed JSON: ");
    }
    assert_eq!(app.user_count().await, 0);
}

/// A lone surrogate escape decodes to no Unicode scalar value: not a valid string.
#[tokio::test]
async fn lone_surrogate_escape_is_400() {
    let app = spawn_app().await;
    for body in [
        r#"{"name":"\ud800","email":"a@b"}"#,
        r#"{"name":"\udc00x","email":"a@b"}"#,
    ] {
        let res = app.post_json("/users", body).await;
        assert_eq!(res.status, 400, "body {body:?}: {res:?}");
        res.assert_error_prefix(400, "Malformed JSON: ");
    }
}

/// Invalid UTF-8 in a field userd ignores still makes the body invalid JSON.
#[tokio::test]
async fn invalid_utf8_in_an_unknown_field_is_400() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/users",
            &b"{\"name\":\"Ann\",\"email\":\"a@b\",\"x\":\"\xff\"}"[..],
        )
        .await;
    res.assert_error_prefix(400, "Malformed JSON: ");
    assert_eq!(app.user_count().await, 0);
}

/// The limit is enforced on the declared length before any body byte is read: the client
/// sends only headers and the 413 still arrives (no wait for a body that never comes).
#[tokio::test]
async fn declared_length_over_the_limit_is_413_before_the_body_is_sent() {
    let app = spawn_app().await;
    let mut conn = app.connect().await;
    conn.send(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000000000\r\n\r\n",
    )
    .await;
    conn.read_response().await.assert_json(413, TOO_LARGE);
}

#[tokio::test]
async fn declared_length_one_over_the_limit_is_413() {
    let app = spawn_app().await;
    let mut conn = app.connect().await;
    conn.send(format!(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        DEFAULT_MAX_BODY + 1
    ))
    .await;
    conn.read_response().await.assert_json(413, TOO_LARGE);
}

/// With `Expect: 100-continue` the client waits for the server's go-ahead: an oversized body
/// is refused with the 413 straight away, never a `100 Continue` first.
#[tokio::test]
async fn oversized_body_is_refused_without_100_continue() {
    let app = spawn_app().await;
    let mut conn = app.connect().await;
    conn.send(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 70000\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    conn.read_response().await.assert_json(413, TOO_LARGE);
}

/// A body of exactly the limit, sent with `Content-Length`, is accepted. (hyper hands a 64 KiB
/// body over in several frames: its first read holds at most 8 KiB.)
#[tokio::test]
async fn body_exactly_at_the_limit_is_accepted() {
    let app = spawn_app().await;
    let res = app.post_json("/users", padded_body(DEFAULT_MAX_BODY)).await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Ann", "a@b");
}

/// One byte under the limit in a single frame: accepted.
#[tokio::test]
async fn body_under_the_limit_in_one_frame_is_accepted() {
    let app = spawn_app_with(Settings::default(), 100).await;
    let res = app.post_json("/users", padded_body(100)).await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Ann", "a@b");
}

/// Chunked framing of `body`, in chunks of at most `size` bytes.
fn chunked(body: &[u8], size: usize) -> Vec<u8> {
    chunked_in(body, &vec![size; body.len().div_ceil(size.max(1))])
}

/// Chunked framing of `body` in chunks of the given sizes (the last one takes the rest).
fn chunked_in(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    for (i, &size) in sizes.iter().enumerate() {
        let n = if i + 1 == sizes.len() {
            rest.len()
        } else {
            size.min(rest.len())
        };
        let (c, tail) = rest.split_at(n);
        rest = tail;
        if c.is_empty() {
            continue;
        }
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

const CHUNKED_HEAD: &str =
    "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";

fn chunked_create(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut raw = CHUNKED_HEAD.as_bytes().to_vec();
    raw.extend(chunked_in(body, sizes));
    raw
}

#[tokio::test]
async fn small_chunked_body_is_accepted() {
    let app = spawn_app().await;
    let mut raw = CHUNKED_HEAD.as_bytes().to_vec();
    raw.extend(chunked(VALID.as_bytes(), 5));
    let res = app.request(raw).await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Ann", "a@b");
}

/// Two chunks under the limit: accepted (the first frame is counted once while there are
/// only two).
#[tokio::test]
async fn chunked_body_under_the_limit_in_two_chunks_is_accepted() {
    let app = spawn_app_with(Settings::default(), 100).await;
    let res = app
        .request(chunked_create(padded_body(80).as_bytes(), &[50, 30]))
        .await;
    assert_eq!(res.status, 201, "{res:?}");
}

/// An 80-byte body in chunks of 40, 20 and 20 is under a 100-byte limit. The size check adds
/// the first frame to a total that already holds it once a third frame arrives (40 + 60 + 20
/// = 120 > 100), so the body was refused. Regression test for that double count.
#[tokio::test]
async fn chunked_body_under_the_limit_in_three_chunks_is_accepted() {
    let app = spawn_app_with(Settings::default(), 100).await;
    let res = app
        .request(chunked_create(padded_body(80).as_bytes(), &[40, 20, 20]))
        .await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Ann", "a@b");
}

/// Chunked bodies have no declared length: the limit is counted as the chunks arrive, and a
/// body of exactly the limit in many chunks is fine.
#[tokio::test]
async fn chunked_body_exactly_at_the_limit_is_accepted() {
    let app = spawn_app().await;
    let mut raw = CHUNKED_HEAD.as_bytes().to_vec();
    raw.extend(chunked(padded_body(DEFAULT_MAX_BODY).as_bytes(), 10_000));
    assert_eq!(app.request(raw).await.status, 201);
}

/// A chunked body over the limit in a single chunk: 413 with the limit in the message (the
/// server reads that one chunk and the end of the body, so nothing is left unread).
#[tokio::test]
async fn chunked_body_over_the_limit_in_one_chunk_is_413() {
    let app = spawn_app_with(Settings::default(), 100).await;
    let res = app
        .request(chunked_create(padded_body(101).as_bytes(), &[101]))
        .await;
    res.assert_json(
        413,
        &error_body("Request body is larger than the limit of 100 bytes"),
    );
    assert_eq!(app.user_count().await, 0);
}

/// A chunked body that passes the limit is refused with 413 and not read to its end: the
/// final chunk is never sent here, and the 413 must arrive anyway.
///
/// hyper, with `pipeline_flush(true)` (server.rs), buffers the 413 without flushing it while
/// unread request bytes sit in its read buffer; when it then gives up draining the abandoned
/// body it closes the connection, and the buffered 413 is never written. Regression test for
/// that lost answer: userd now drains the abandoned body first (`handlers::json::drain_unread`).
#[tokio::test]
async fn chunked_body_over_the_limit_is_413() {
    let app = spawn_app().await;
    let mut conn = app.connect().await;
    let big = padded_body(DEFAULT_MAX_BODY + 1);
    let mut raw = CHUNKED_HEAD.as_bytes().to_vec();
    let framed = chunked(big.as_bytes(), 16 * 1024);
    // Everything but the terminating `0\r\n\r\n`.
    raw.extend_from_slice(&framed[..framed.len() - 5]);
    conn.send(raw).await;
    conn.read_response().await.assert_json(413, TOO_LARGE);
    assert_eq!(app.user_count().await, 0);
}

/// The same, small and whole: 101 bytes in 7-byte chunks, all sent, under a 100-byte limit.
#[tokio::test]
async fn chunked_body_over_the_limit_in_small_chunks_is_413() {
    let app = spawn_app_with(Settings::default(), 100).await;
    let res = app
        .request(chunked_create(padded_body(101).as_bytes(), &[7; 15]))
        .await;
    res.assert_json(
        413,
        &error_body("Request body is larger than the limit of 100 bytes"),
    );
}

/// The message names the configured limit.
#[tokio::test]
async fn the_413_message_names_the_configured_limit() {
    let app = spawn_app_with(Settings::default(), 100).await;
    let res = app.post_json("/users", padded_body(101)).await;
    res.assert_json(
        413,
        &error_body("Request body is larger than the limit of 100 bytes"),
    );
}
