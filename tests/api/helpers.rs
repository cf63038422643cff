//! The harness: a userd server on an ephemeral port, and a small raw HTTP/1.1 client.
//!
//! The client writes the exact request bytes a test gives it and parses responses itself (status
//! line, headers, body by `Content-Length` or chunked), so tests can assert exact bytes and
//! headers, pipeline requests, stall half-way through a request, and so on. Every read is bounded
//! by [`IO_TIMEOUT`]: a test that would hang fails instead.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use userd::server::Settings;
use userd::store::MemoryStore;
use userd::App;

/// The default body limit of userd (`--max-body`).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// A generous bound on any one exchange. It only guards against hangs; no test measures speed.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

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

/// A `POST /users` body with these fields, JSON-escaped.
pub fn create_body(name: &str, email: &str) -> String {
    serde_json::json!({ "name": name, "email": email }).to_string()
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

/// A running server and the handle that stops it.
pub struct TestApp {
    pub addr: SocketAddr,
    /// The application the server runs, to look at its store directly.
    pub app: &'static App<MemoryStore>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// A server with the default settings and body limit.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Settings::default(), DEFAULT_MAX_BODY).await
}

/// A server with the given connection settings and body limit.
pub async fn spawn_app_with(settings: Settings, max_body: usize) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let app: &'static App<MemoryStore> =
        Box::leak(Box::new(App::new(MemoryStore::new(8), max_body)));
    let (tx, rx) = oneshot::channel::<()>();
    let shutdown = async move {
        // A dropped sender also stops the server.
        let _ = rx.await;
    };
    let server = tokio::spawn(userd::server::run(listener, app, settings, shutdown));
    TestApp {
        addr,
        app,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// How many users the server's store holds.
    pub fn user_count(&self) -> usize {
        use userd::store::UserStore;
        self.app.store().len()
    }

    /// A new connection to the server.
    pub async fn connect(&self) -> Conn {
        Conn::connect(self.addr).await
    }

    /// Sends `raw` on a new connection and reads one response (no body if `raw` is a HEAD).
    pub async fn request(&self, raw: impl AsRef<[u8]>) -> Response {
        self.connect().await.roundtrip(raw).await
    }

    /// `method path` with no body.
    pub async fn call(&self, method: &str, path: &str) -> Response {
        self.request(format!(
            "{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"
        ))
        .await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.call("GET", path).await
    }

    pub async fn head(&self, path: &str) -> Response {
        self.call("HEAD", path).await
    }

    pub async fn options(&self, path: &str) -> Response {
        self.call("OPTIONS", path).await
    }

    /// `POST path` with `Content-Type: application/json` and `body`.
    pub async fn post_json(&self, path: &str, body: impl AsRef<[u8]>) -> Response {
        self.post_typed(path, Some("application/json"), body).await
    }

    /// `POST path` with the given `Content-Type` (or none) and `body`.
    pub async fn post_typed(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl AsRef<[u8]>,
    ) -> Response {
        self.request(post_request(path, content_type, body.as_ref()))
            .await
    }

    /// `PATCH path` with a JSON body and an optional `If-Match`.
    pub async fn patch(&self, path: &str, body: &str, if_match: Option<&str>) -> Response {
        let extra = if_match.map_or(String::new(), |m| format!("If-Match: {m}\r\n"));
        self.request(json_request("PATCH", path, body, &extra))
            .await
    }

    /// `DELETE path` with an optional `If-Match`.
    pub async fn delete(&self, path: &str, if_match: Option<&str>) -> Response {
        let extra = if_match.map_or(String::new(), |m| format!("If-Match: {m}\r\n"));
        self.request(request_with("DELETE", path, &extra)).await
    }

    /// Creates a user and checks the answer is a 201; returns the id and the user's JSON
    /// document (the envelope's `data`, byte for byte).
    pub async fn create_user(&self, name: &str, email: &str) -> (String, String) {
        let res = self.post_json("/users", create_body(name, email)).await;
        user_from_created(&res)
    }

    /// Stops the server and waits for it to finish.
    pub async fn shutdown(mut self) {
        self.begin_shutdown();
        self.stopped().await;
    }

    /// Tells the server to shut down, without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits (up to [`IO_TIMEOUT`]) until the server has stopped accepting: a connection
    /// attempt is refused. Panics if it still accepts.
    pub async fn wait_until_refusing(&self) {
        wait_until_refusing(self.addr).await;
    }

    /// Waits (up to [`IO_TIMEOUT`]) for the server task to finish.
    pub async fn stopped(mut self) {
        if let Some(server) = self.server.take() {
            tokio::time::timeout(IO_TIMEOUT, server)
                .await
                .expect("server did not stop after shutdown")
                .expect("server task panicked");
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Waits (up to [`IO_TIMEOUT`]) until nothing listens on `addr` any more: a connection
/// attempt is refused. Panics if it still accepts.
pub async fn wait_until_refusing(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => return,
            _ => {}
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{addr} still accepts connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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

/// A valid JSON body of `len` bytes (padding in an ignored field).
pub fn padded_body(len: usize) -> String {
    let head = r#"{"name":"Ann","email":"a@b","pad":""#;
    let tail = r#""}"#;
    let pad = len - head.len() - tail.len();
    let body = format!("{head}{}{tail}", "x".repeat(pad));
    assert_eq!(body.len(), len);
    body
}

/// The bytes of a `POST` with an optional `Content-Type` and a `Content-Length` body.
pub fn post_request(path: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut raw = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\n");
    if let Some(t) = content_type {
        raw.push_str(&format!("Content-Type: {t}\r\n"));
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// The bytes of a `POST /users` with a JSON body of the given fields.
pub fn create_request(name: &str, email: &str) -> Vec<u8> {
    post_request(
        "/users",
        Some("application/json"),
        create_body(name, email).as_bytes(),
    )
}

/// The bytes of a request with a JSON body and optional extra header lines (each ending in
/// CRLF).
pub fn json_request(method: &str, path: &str, body: &str, extra: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         {extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The bytes of a body-less request with extra header lines (each ending in CRLF).
pub fn request_with(method: &str, path: &str, extra: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n").into_bytes()
}

/// The bytes of a body-less request.
pub fn plain_request(method: &str, path: &str) -> Vec<u8> {
    format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").into_bytes()
}

/// The method of a raw request: its bytes up to the first space.
fn method_of(raw: &[u8]) -> String {
    let end = raw.iter().position(|&b| b == b' ').unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// One parsed HTTP response.
#[derive(Clone)]
pub struct Response {
    /// `HTTP/1.1` or `HTTP/1.0`.
    pub version: String,
    pub status: u16,
    /// Every header in order, the name lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Response {
    /// The body as text (lossy), so that failure messages are readable.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("version", &self.version)
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

impl Response {
    /// The first value of the header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// How many times the header `name` (lowercase) appears.
    pub fn header_count(&self, name: &str) -> usize {
        self.headers.iter().filter(|(n, _)| n == name).count()
    }

    /// The headers except `date` (which changes from second to second), sorted.
    pub fn stable_headers(&self) -> Vec<(String, String)> {
        let mut h: Vec<_> = self
            .headers
            .iter()
            .filter(|(n, _)| n != "date")
            .cloned()
            .collect();
        h.sort();
        h
    }

    #[track_caller]
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }

    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body_str()))
    }

    /// The `error` string of an error envelope.
    #[track_caller]
    pub fn error_message(&self) -> String {
        let v = self.json();
        assert_eq!(v["ok"], false, "not an error envelope: {}", self.body_str());
        assert!(v["data"].is_null(), "error with data: {}", self.body_str());
        v["error"].as_str().expect("error is a string").to_owned()
    }

    /// Asserts the status, the JSON content type, a `content-length` that matches and the
    /// exact body bytes.
    #[track_caller]
    pub fn assert_json(&self, status: u16, body: &str) {
        assert_eq!(self.status, status, "status of {self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(self.header_count("content-type"), 1);
        assert_eq!(
            self.header("content-length"),
            Some(body.len().to_string().as_str()),
            "content-length of {self:?}"
        );
        assert_eq!(self.body_str(), body, "body bytes");
    }

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

/// One client connection, with a buffer of bytes read but not yet parsed (pipelined responses
/// arrive together).
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub async fn connect(addr: SocketAddr) -> Conn {
        let stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes` in one write call.
    pub async fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.try_send(bytes).await.expect("write request");
    }

    pub async fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        tokio::time::timeout(IO_TIMEOUT, self.stream.write_all(bytes.as_ref()))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))??;
        self.stream.flush().await
    }

    /// Closes the sending side (a TCP half-close).
    pub async fn shutdown_write(&mut self) {
        self.stream.shutdown().await.expect("shutdown write");
    }

    /// Sends `raw` and reads its response.
    pub async fn roundtrip(&mut self, raw: impl AsRef<[u8]>) -> Response {
        let raw = raw.as_ref();
        self.send(raw).await;
        self.read_response_to(&method_of(raw)).await
    }

    /// Reads the response to a request that was not a HEAD.
    pub async fn read_response(&mut self) -> Response {
        self.read_response_to("GET").await
    }

    /// Reads the response to a `method` request (a HEAD response has no body).
    pub async fn read_response_to(&mut self, method: &str) -> Response {
        match self.try_read_response(method).await {
            Ok(res) => res,
            Err(e) => panic!("reading the response to {method}: {e}"),
        }
    }

    /// Reads one response per method, in order (for pipelined requests).
    pub async fn read_responses(&mut self, methods: &[&str]) -> Vec<Response> {
        let mut all = Vec::with_capacity(methods.len());
        for m in methods {
            all.push(self.read_response_to(m).await);
        }
        all
    }

    /// Reads one response, with [`IO_TIMEOUT`] as the bound on the whole read.
    pub async fn try_read_response(&mut self, method: &str) -> io::Result<Response> {
        tokio::time::timeout(IO_TIMEOUT, self.read_response_inner(method))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "response timed out"))?
    }

    /// Waits (up to `limit`) for the server to close the connection, discarding whatever it
    /// sends first. True if it closed (end of stream or reset) within `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> bool {
        let wait = async {
            let mut chunk = [0u8; 4096];
            loop {
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => continue,
                }
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Reads more bytes into the buffer; an error at end of stream.
    async fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "connection closed; unparsed bytes: {:?}",
                    String::from_utf8_lossy(&self.buf)
                ),
            ));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    /// Takes `n` bytes from the front of the buffer, reading more as needed.
    async fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill().await?;
        }
        let rest = self.buf.split_off(n);
        Ok(std::mem::replace(&mut self.buf, rest))
    }

    /// Takes one CRLF-terminated line (without the CRLF).
    async fn take_line(&mut self) -> io::Result<Vec<u8>> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let mut line = self.take(at + 2).await?;
                line.truncate(at);
                return Ok(line);
            }
            self.fill().await?;
        }
    }

    async fn read_response_inner(&mut self, method: &str) -> io::Result<Response> {
        let bad = |what: String| io::Error::new(io::ErrorKind::InvalidData, what);
        let head_end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            self.fill().await?;
        };
        let head = self.take(head_end + 4).await?;
        let head = String::from_utf8(head).map_err(|e| bad(format!("head not UTF-8: {e}")))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("bad status line {status_line:?}")));
        }
        let mut headers = Vec::new();
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
        }
        let mut res = Response {
            version,
            status,
            headers,
            body: Vec::new(),
        };
        let bodiless = method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&status)
            || status == 204
            || status == 304;
        if bodiless {
            return Ok(res);
        }
        let chunked = res
            .header("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
        if chunked {
            loop {
                let size_line = self.take_line().await?;
                let size_text = String::from_utf8_lossy(&size_line);
                let size_text = size_text.split(';').next().unwrap_or_default().trim();
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| bad(format!("bad chunk size {size_text:?}")))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !self.take_line().await?.is_empty() {}
                    break;
                }
                let data = self.take(size).await?;
                res.body.extend_from_slice(&data);
                self.take_line().await?;
            }
        } else if let Some(len) = res.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(format!("bad content-length {len:?}")))?;
            res.body = self.take(len).await?;
        } else {
            // No framing: the body runs to the end of the stream.
            let mut chunk = [0u8; 4096];
            loop {
                let n = self.stream.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
            res.body = std::mem::take(&mut self.buf);
        }
        Ok(res)
    }
}
