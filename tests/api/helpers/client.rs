//! A small raw HTTP/1.1 client: it writes the exact request bytes a test gives it and parses
//! responses itself (status line, headers, body by `Content-Length` or chunked), so tests can
//! assert exact bytes and headers, pipeline requests, stall half-way through a request, and so
//! on. Every read is bounded by [`IO_TIMEOUT`]: a test that would hang fails instead.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A generous bound on any one exchange. It only guards against hangs; no test measures speed.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A `POST /users` body with these fields, JSON-escaped.
pub fn create_body(name: &str, email: &str) -> String {
    serde_json::json!({ "name": name, "email": email }).to_string()
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
