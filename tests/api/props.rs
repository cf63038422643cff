//! Property tests over a live server: whatever a client sends, the answer is a well-formed
//! JSON envelope with a 4xx or 2xx status, promptly; and valid users round-trip.
//!
//! Each property starts one runtime and one server, then runs its cases against it. The
//! runners use a fixed seed so that every run tries the same cases (set `PROPTEST_CASES` to
//! try more).

use crate::helpers::{
    assert_user, create_body, data_of, error_body, expected_refusal, ok_body, spawn_app_with, Conn,
    Response, TakenEmails, IO_TIMEOUT,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use serde_json::Value;
use std::net::SocketAddr;
use userd::server::Settings;

/// Body limit of the servers here: small, so that some generated bodies pass it.
const LIMIT: usize = 512;

fn runner(default_cases: u32) -> TestRunner {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default_cases);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// How often each branch of a property's check ran, so that a property can prove it reached
/// the branches it is named for (a generator that never makes a valid user tests nothing of
/// creating one).
#[derive(Default)]
struct Branches(std::sync::Mutex<std::collections::BTreeMap<&'static str, usize>>);

impl Branches {
    fn hit(&self, branch: &'static str) {
        *self.0.lock().unwrap().entry(branch).or_default() += 1;
    }

    /// Panics unless every branch named ran at least `min` times.
    #[track_caller]
    fn assert_reached(&self, names: &[&'static str], min: usize) {
        let seen = self.0.lock().unwrap();
        for name in names {
            let n = seen.get(name).copied().unwrap_or(0);
            assert!(
                n >= min,
                "branch {name:?} ran {n} times (< {min}); all: {seen:?}"
            );
        }
    }
}

/// A valid name: any characters but control ones, a non-blank middle, whitespace around
/// (trimmed away).
fn valid_name() -> impl Strategy<Value = String> {
    "\\s{0,2}\\PC{1,60}\\s{0,2}".prop_filter("blank", |n| !n.trim().is_empty())
}

/// A valid email: one `@`, no whitespace or control character inside, whitespace around.
fn valid_email() -> impl Strategy<Value = String> {
    let part = "[^\\s@\\p{C}]{1,40}";
    ("\\s{0,2}", part, part, "\\s{0,2}").prop_map(|(a, l, d, b)| format!("{a}{l}@{d}{b}"))
}

/// Sends `raw` on a new connection and reads one response, all within [`IO_TIMEOUT`].
async fn exchange(addr: SocketAddr, raw: &[u8], method: &str) -> Result<Response, TestCaseError> {
    let attempt = async {
        let mut conn = Conn::connect(addr).await;
        conn.try_send(raw).await?;
        conn.try_read_response(method).await
    };
    match tokio::time::timeout(IO_TIMEOUT, attempt).await {
        Ok(Ok(res)) => Ok(res),
        Ok(Err(e)) => Err(TestCaseError::fail(format!("no response: {e}"))),
        Err(_) => Err(TestCaseError::fail("the server hung")),
    }
}

/// Checks the response is a 2xx or 4xx JSON envelope with a consistent shape; returns it
/// parsed.
fn check_envelope(res: &Response) -> Result<Value, TestCaseError> {
    prop_assert!(
        (200..300).contains(&res.status) || (400..500).contains(&res.status),
        "status {}",
        res.status
    );
    prop_assert_eq!(res.header("content-type"), Some("application/json"));
    let length = res.body.len().to_string();
    prop_assert_eq!(res.header("content-length"), Some(length.as_str()));
    let v: Value = serde_json::from_slice(&res.body)
        .map_err(|e| TestCaseError::fail(format!("body is not JSON: {e}: {:?}", res.body)))?;
    if res.status < 300 {
        let (head, tail) = (br#"{"ok":true,"data":"#, br#","error":null}"#);
        prop_assert!(res.body.starts_with(head), "success envelope head");
        prop_assert!(res.body.ends_with(tail), "success envelope tail");
        prop_assert_eq!(&v["ok"], &Value::Bool(true));
    } else {
        let head = br#"{"ok":false,"data":null,"error":""#;
        prop_assert!(
            res.body.starts_with(head),
            "error envelope head: {:?}",
            String::from_utf8_lossy(&res.body)
        );
        prop_assert!(v["error"].is_string());
        let expected = error_body(v["error"].as_str().unwrap());
        prop_assert_eq!(res.body_str(), expected.as_str());
    }
    Ok(v)
}

/// A `POST /users` with a JSON content type and `body`, framed by Content-Length or, if
/// `chunk` is given, chunked in pieces of that size.
fn create_raw(body: &[u8], chunk: Option<usize>) -> Vec<u8> {
    let mut raw = b"POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n".to_vec();
    match chunk {
        None => {
            raw.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            raw.extend_from_slice(body);
        }
        Some(size) => {
            raw.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
            for c in body.chunks(size) {
                raw.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                raw.extend_from_slice(c);
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(b"0\r\n\r\n");
        }
    }
    raw
}

fn framing() -> impl Strategy<Value = Option<usize>> {
    prop_oneof![3 => Just(None), 1 => (1usize..200).prop_map(Some)]
}

/// What a create must answer for `body`, judged the way the contract states it: checks the
/// status and, for every fixed message, the exact body.
fn check_create(body: &[u8], res: &Response, seen: &Branches) -> Result<(), TestCaseError> {
    let v = check_envelope(res)?;
    seen.hit(if body.len() > LIMIT {
        "over the limit"
    } else {
        "within the limit"
    });
    if body.len() > LIMIT {
        prop_assert_eq!(res.status, 413);
        prop_assert_eq!(
            res.body_str(),
            error_body(&format!(
                "Request body is larger than the limit of {LIMIT} bytes"
            ))
        );
        return Ok(());
    }
    if body.is_empty() {
        prop_assert_eq!(
            res.body_str(),
            error_body("Request body is empty; expected a JSON object")
        );
        prop_assert_eq!(res.status, 400);
        return Ok(());
    }
    match res.status {
        409 => prop_assert_eq!(res.body_str(), error_body("Email already exists")),
        201 => {
            let id = v["data"]["id"].as_str().unwrap_or_default();
            prop_assert!(crate::helpers::is_canonical_uuid_v4(id));
        }
        400 => {
            let msg = v["error"].as_str().unwrap();
            prop_assert!(
                msg.starts_with("Malformed JSON: ")
                    || msg.starts_with("Name ")
                    || msg.starts_with("Email "),
                "400 with {:?}",
                msg
            );
        }
        422 => {
            prop_assert!(v["error"]
                .as_str()
                .unwrap()
                .starts_with("Invalid request body: "));
        }
        s => prop_assert!(false, "unexpected status {}", s),
    }
    Ok(())
}

fn arbitrary_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..LIMIT),
        1 => proptest::collection::vec(any::<u8>(), LIMIT - 8..LIMIT + 200),
    ]
}

/// Arbitrary bytes as a create body (with `Content-Length`): never a 5xx, never a hang,
/// always an envelope, 413 exactly when the body passes the limit.
#[test]
fn arbitrary_bytes_as_a_create_body_get_an_envelope() {
    let rt = runtime();
    let app = rt.block_on(spawn_app_with(Settings::default(), LIMIT));
    let seen = Branches::default();
    runner(128)
        .run(&arbitrary_body(), |body| {
            rt.block_on(async {
                let res = exchange(app.addr, &create_raw(&body, None), "POST").await?;
                check_create(&body, &res, &seen)
            })
        })
        .unwrap();
    seen.assert_reached(&["over the limit", "within the limit"], 10);
}

/// The same with chunked framing in chunks of arbitrary size.
#[test]
fn arbitrary_bytes_as_a_chunked_create_body_get_an_envelope() {
    let rt = runtime();
    let app = rt.block_on(spawn_app_with(Settings::default(), LIMIT));
    let seen = Branches::default();
    runner(128)
        .run(&(arbitrary_body(), 1usize..200), |(body, chunk)| {
            rt.block_on(async {
                let res = exchange(app.addr, &create_raw(&body, Some(chunk)), "POST").await?;
                check_create(&body, &res, &seen)
            })
        })
        .unwrap();
    seen.assert_reached(&["over the limit", "within the limit"], 10);
}

/// JSON-looking text (braces, quotes, escapes, colons) as a create body, sometimes chunked.
/// (The bodies stay under 300 bytes and chunks under 200, well inside the limit even if the
/// first chunk were counted twice; see the chunked property above.)
#[test]
fn json_ish_text_as_a_create_body_gets_an_envelope() {
    let rt = runtime();
    let app = rt.block_on(spawn_app_with(Settings::default(), LIMIT));
    let fragment = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(":".to_owned()),
        Just(",".to_owned()),
        Just("\"name\"".to_owned()),
        Just("\"email\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("1e9".to_owned()),
        Just("\"a@b\"".to_owned()),
        Just("\\u00e9".to_owned()),
        Just("\\ud83d".to_owned()),
        Just("\\".to_owned()),
        Just("\"".to_owned()),
        "[ -~]{0,6}",
        "\\PC{0,3}",
    ];
    let strategy = (
        proptest::collection::vec(fragment, 0..24).prop_map(|f| f.concat()),
        framing(),
    );
    let seen = Branches::default();
    runner(256)
        .run(&strategy, |(body, chunk)| {
            rt.block_on(async {
                let res = exchange(app.addr, &create_raw(body.as_bytes(), chunk), "POST").await?;
                check_create(body.as_bytes(), &res, &seen)
            })
        })
        .unwrap();
    seen.assert_reached(&["within the limit"], 100);
}

/// The text of a JSON string literal's inside: plain characters, every kind of escape
/// (including invalid ones and lone surrogates), and raw control characters (invalid in JSON).
fn string_literal_inside() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[^\"\\\\\\x00-\\x1f]{1,4}",
        1 => "\\\\[\"\\\\/bfnrt]",
        1 => "\\\\u[0-9a-fA-F]{4}",
        1 => "\\\\u[dD][89abAB][0-9a-f]{2}\\\\u[dD][c-fC-F][0-9a-f]{2}",
        1 => Just(" ".to_owned()),
        1 => Just("@".to_owned()),
        1 => "\\\\[a-z]",
        1 => "[\\x00-\\x1f]",
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|p| p.concat())
}

/// The inside of an email's string literal: mostly `local@domain` written with every kind of
/// valid escape (so that the valid branch runs often), else anything [`string_literal_inside`]
/// makes.
fn email_literal_inside() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[^\"\\\\\\x00-\\x20@]{1,4}",
        1 => "\\\\[\"\\\\/]",
        1 => "\\\\u00[46][1-9a-f]",
        1 => "\\\\ud83d\\\\ude00",
    ];
    let part = proptest::collection::vec(piece, 1..4).prop_map(|p| p.concat());
    prop_oneof![
        3 => (part.clone(), part).prop_map(|(l, d)| format!("{l}@{d}")),
        1 => string_literal_inside(),
    ]
}

/// `{"name":"..","email":".."}` with arbitrary string contents: the answer is exactly what
/// the contract says, judged against serde_json's own reading of the body.
#[test]
fn create_with_arbitrary_string_literals_follows_the_contract() {
    let rt = runtime();
    let app = rt.block_on(spawn_app_with(Settings::default(), 64 * 1024));
    let taken = TakenEmails::default();
    let seen = Branches::default();
    let strategy = (string_literal_inside(), email_literal_inside());
    runner(256)
        .run(&strategy, |(name, email)| {
            let body = format!(r#"{{"name":"{name}","email":"{email}"}}"#);
            rt.block_on(async {
                let res = exchange(app.addr, &create_raw(body.as_bytes(), None), "POST").await?;
                let v = check_envelope(&res)?;
                match serde_json::from_str::<Value>(&body) {
                    Err(_) => {
                        seen.hit("malformed");
                        prop_assert_eq!(res.status, 400);
                        prop_assert!(v["error"].as_str().unwrap().starts_with("Malformed JSON: "));
                    }
                    Ok(parsed) => {
                        let name = parsed["name"].as_str().unwrap().trim();
                        let email = parsed["email"].as_str().unwrap().trim();
                        if let Some(why) = expected_refusal(name, email) {
                            seen.hit("refused");
                            prop_assert_eq!(res.status, 400);
                            prop_assert_eq!(res.body_str(), error_body(why));
                        } else if !taken.take(email) {
                            seen.hit("taken");
                            prop_assert_eq!(res.status, 409);
                            prop_assert_eq!(res.body_str(), error_body("Email already exists"));
                        } else {
                            seen.hit("created");
                            prop_assert_eq!(res.status, 201);
                            let id = v["data"]["id"].as_str().unwrap();
                            assert_user(&data_of(&res), id, name, email);
                        }
                    }
                }
                Ok(())
            })
        })
        .unwrap();
    seen.assert_reached(&["malformed", "refused", "created"], 10);
}

/// Arbitrary JSON values.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        proptest::num::f64::NORMAL.prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z]{0,6}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object with a `name` and an `email` that may be missing or of any type, and extra
/// fields: 422 unless both are strings, then the validation rules, then 201.
#[test]
fn create_with_arbitrary_json_objects_follows_the_contract() {
    let rt = runtime();
    let app = rt.block_on(spawn_app_with(Settings::default(), 64 * 1024));
    let taken = TakenEmails::default();
    let seen = Branches::default();
    let field = |valid: BoxedStrategy<String>| {
        prop_oneof![
            1 => Just(None),
            6 => valid.prop_map(|s| Some(Value::String(s))),
            2 => any::<String>().prop_map(|s| Some(Value::String(s))),
            1 => "[ a-z@]{0,8}".prop_map(|s| Some(Value::String(s))),
            1 => json_value().prop_map(Some),
        ]
    };
    let extras = proptest::collection::btree_map("[a-z]{1,6}", json_value(), 0..3);
    let strategy = (
        field(valid_name().boxed()),
        field(valid_email().boxed()),
        extras,
    );
    runner(256)
        .run(&strategy, |(name, email, extras)| {
            let mut obj = serde_json::Map::new();
            for (k, v) in extras {
                if k != "name" && k != "email" {
                    obj.insert(k, v);
                }
            }
            if let Some(n) = &name {
                obj.insert("name".into(), n.clone());
            }
            if let Some(e) = &email {
                obj.insert("email".into(), e.clone());
            }
            let body = Value::Object(obj).to_string();
            rt.block_on(async {
                let res = exchange(app.addr, &create_raw(body.as_bytes(), None), "POST").await?;
                let v = check_envelope(&res)?;
                match (
                    name.as_ref().and_then(Value::as_str),
                    email.as_ref().and_then(Value::as_str),
                ) {
                    (Some(n), Some(e)) => {
                        let (n, e) = (n.trim(), e.trim());
                        if let Some(why) = expected_refusal(n, e) {
                            seen.hit("refused");
                            prop_assert_eq!(res.body_str(), error_body(why));
                        } else if !taken.take(e) {
                            seen.hit("taken");
                            prop_assert_eq!(res.body_str(), error_body("Email already exists"));
                        } else {
                            seen.hit("created");
                            prop_assert_eq!(res.status, 201);
                            let id = v["data"]["id"].as_str().unwrap();
                            assert_user(&data_of(&res), id, n, e);
                        }
                    }
                    _ => {
                        seen.hit("wrong shape");
                        prop_assert_eq!(res.status, 422);
                        prop_assert!(v["error"]
                            .as_str()
                            .unwrap()
                            .starts_with("Invalid request body: "));
                    }
                }
                Ok(())
            })
        })
        .unwrap();
    seen.assert_reached(&["wrong shape", "refused", "created"], 10);
}

/// Methods: the common ones and arbitrary extension tokens (CONNECT, whose target is an
/// authority and not a path, is left out).
fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("GET".to_owned()),
        Just("HEAD".to_owned()),
        Just("POST".to_owned()),
        Just("PUT".to_owned()),
        Just("DELETE".to_owned()),
        Just("PATCH".to_owned()),
        Just("OPTIONS".to_owned()),
        Just("TRACE".to_owned()),
        "[A-Z]{1,10}".prop_filter("CONNECT", |m| m != "CONNECT"),
    ]
}

/// Paths built from the API's own segments and arbitrary URI characters.
fn path(known_id: String) -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        2 => Just("health".to_owned()),
        2 => Just("users".to_owned()),
        2 => Just(known_id),
        1 => Just(String::new()),
        3 => "[A-Za-z0-9._~!$&'()*+,;=:@%-]{1,12}",
    ];
    let query = proptest::option::of("[A-Za-z0-9=&%/?-]{0,12}");
    (proptest::collection::vec(segment, 1..4), query).prop_map(|(segs, q)| {
        let mut p = format!("/{}", segs.join("/"));
        if let Some(q) = q {
            p.push('?');
            p.push_str(&q);
        }
        p
    })
}

/// What the route table must answer for `method path` (no body, no content type).
/// A status of 0 means "any 2xx or 4xx": the answer depends on more than the route.
fn expected_route(
    method: &str,
    path: &str,
    known_id: &str,
    alive: bool,
) -> (u16, Option<&'static str>) {
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let (get, allow) = match path {
        "/health" => (200, "GET, HEAD, OPTIONS"),
        "/users" => (200, "GET, HEAD, OPTIONS, POST"),
        p => match p.strip_prefix("/users/") {
            Some(id) if !id.is_empty() && !id.contains('/') => (
                if id == known_id && alive { 200 } else { 404 },
                "DELETE, GET, HEAD, OPTIONS, PATCH",
            ),
            _ => return (404, None),
        },
    };
    let user_path = path.starts_with("/users/");
    match method {
        // A query string on the list may hold a bad limit or cursor.
        "GET" | "HEAD" if path == "/users" && query.is_some() => (0, None),
        "GET" | "HEAD" => (get, None),
        "POST" if path == "/users" => (415, None),
        // PATCH needs a JSON body (415 without one), unless the user is unknown (404).
        "PATCH" if user_path => (if get == 404 { 404 } else { 415 }, None),
        // The known user is deleted by the first DELETE; later ones find nobody.
        "DELETE" if user_path => (if get == 404 { 404 } else { 204 }, None),
        "OPTIONS" => (204, Some(allow)),
        _ => (405, Some(allow)),
    }
}

/// Arbitrary methods and paths: the status the route table calls for, with an envelope (no
/// body for HEAD and OPTIONS), never a 5xx, never a hang.
#[test]
fn arbitrary_methods_and_paths_follow_the_route_table() {
    let rt = runtime();
    let app = rt.block_on(spawn_app_with(Settings::default(), LIMIT));
    let known_id = rt.block_on(app.create_user("Ann", "a@b")).0;
    let strategy = (method(), path(known_id.clone()));
    let deleted = std::sync::atomic::AtomicBool::new(false);
    runner(256)
        .run(&strategy, |(method, path)| {
            let raw = format!("{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n");
            rt.block_on(async {
                let res = exchange(app.addr, raw.as_bytes(), &method).await?;
                let alive = !deleted.load(std::sync::atomic::Ordering::Relaxed);
                let (status, allow) = expected_route(&method, &path, &known_id, alive);
                if status != 0 {
                    prop_assert_eq!(res.status, status, "{} {}", method, path);
                }
                if method == "DELETE" && res.status == 204 {
                    deleted.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                prop_assert_eq!(res.header("allow"), allow);
                match (method.as_str(), res.status) {
                    ("HEAD", _) | (_, 204) => prop_assert!(res.body.is_empty()),
                    _ => {
                        check_envelope(&res)?;
                    }
                }
                Ok(())
            })
        })
        .unwrap();
}

/// Any valid name and email (non-empty once trimmed, an `@` in the email) round-trips:
/// created, then read back, as the trimmed values in serde_json's encoding.
#[test]
fn valid_users_round_trip_trimmed() {
    let rt = runtime();
    let app = rt.block_on(spawn_app_with(Settings::default(), 64 * 1024));
    let taken = std::sync::Arc::new(TakenEmails::default());
    let seen = taken.clone();
    let name = valid_name();
    let email = valid_email().prop_filter("taken", move |e| !seen.is_taken(e));
    runner(128)
        .run(&(name, email), |(name, email)| {
            let body = create_body(&name, &email);
            rt.block_on(async {
                let res = exchange(app.addr, &create_raw(body.as_bytes(), None), "POST").await?;
                let v = check_envelope(&res)?;
                prop_assert_eq!(res.status, 201);
                let id = v["data"]["id"].as_str().unwrap().to_owned();
                let doc = data_of(&res);
                assert_user(&doc, &id, name.trim(), email.trim());
                prop_assert!(taken.take(&email));
                let raw = format!("GET /users/{id} HTTP/1.1\r\nHost: x\r\n\r\n");
                let got = exchange(app.addr, raw.as_bytes(), "GET").await?;
                prop_assert_eq!(got.status, 200);
                prop_assert_eq!(got.body_str(), ok_body(&doc));
                Ok(())
            })
        })
        .unwrap();
}
