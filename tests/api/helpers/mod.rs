//! The harness: a userd server on an ephemeral port over any store, a raw HTTP/1.1 client
//! ([`client`]), and what the contract says a client should see ([`oracle`]).
//!
//! Every test of this binary runs against the store that `USERD_TEST_STORE` names
//! (`memory`, the default, or `durable`: a fresh temporary data directory per test), so that
//! one suite checks every store; `scripts/test.sh` runs it once per store. Adding a store is
//! one arm in [`spawn_app_with`].

pub mod client;
pub mod oracle;

pub use client::*;
pub use oracle::*;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use userd::server::{Service, Settings};
use userd::store::log::Options;
use userd::store::{LogStore, MemoryStore, UserStore};
use userd::App;

/// The default body limit of userd (`--max-body`).
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The stores the suite runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    /// `--in-memory`.
    Memory,
    /// The durable log (the default of the binary), in a fresh directory per test.
    Durable,
}

impl StoreKind {
    /// The store `USERD_TEST_STORE` names (`memory` when unset).
    pub fn from_env() -> Self {
        match std::env::var("USERD_TEST_STORE").as_deref() {
            Ok("durable") => StoreKind::Durable,
            Ok("memory") | Err(_) => StoreKind::Memory,
            Ok(other) => panic!("USERD_TEST_STORE={other}: expected memory or durable"),
        }
    }
}

/// A fresh directory under the system's temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("userd-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What the harness needs of a store, whichever it is.
pub trait Backend: Send + Sync {
    /// How many users the store holds.
    fn count(&self) -> Pin<Box<dyn Future<Output = usize> + Send + '_>>;
    /// Flushes and closes the store.
    fn close(&self);
}

impl<S: UserStore> Backend for S {
    fn count(&self) -> Pin<Box<dyn Future<Output = usize> + Send + '_>> {
        Box::pin(async move { UserStore::count(self).await.expect("count users") as usize })
    }

    fn close(&self) {
        UserStore::close(self);
    }
}

/// A running server and the handle that stops it.
pub struct TestApp {
    pub addr: SocketAddr,
    backend: &'static dyn Backend,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// The durable store's directory, removed after the store is closed.
    _dir: Option<TempDir>,
}

/// A server with the default settings and body limit, over the store of this run.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Settings::default(), DEFAULT_MAX_BODY).await
}

/// A server with the given connection settings and body limit, over the store of this run.
pub async fn spawn_app_with(settings: Settings, max_body: usize) -> TestApp {
    match StoreKind::from_env() {
        StoreKind::Memory => serve(MemoryStore::new(8), settings, max_body, None).await,
        StoreKind::Durable => {
            let dir = TempDir::new("app");
            let store = LogStore::open(&dir.0, MemoryStore::new(8), Options::default())
                .expect("open a durable store");
            serve(store, settings, max_body, Some(dir)).await
        }
    }
}

/// The application over `store`, served on a fresh port; `dir` is removed once the store is
/// closed.
pub async fn serve<S: UserStore>(
    store: S,
    settings: Settings,
    max_body: usize,
    dir: Option<TempDir>,
) -> TestApp {
    let app: &'static App<S> = Box::leak(Box::new(App::new(store, max_body)));
    let mut test = serve_service(app, settings).await;
    test.backend = app.store();
    test._dir = dir;
    test
}

/// No store: the backend of a server whose service the test built itself.
struct NoStore;

impl Backend for NoStore {
    fn count(&self) -> Pin<Box<dyn Future<Output = usize> + Send + '_>> {
        Box::pin(async { panic!("this test server has no store of the harness") })
    }

    fn close(&self) {}
}

/// Any service (the application wrapped in layers, say), served on a fresh port as
/// `server::run` serves it.
pub async fn serve_service<T: Service>(service: &'static T, settings: Settings) -> TestApp {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let shutdown = async move {
        // A dropped sender also stops the server.
        let _ = rx.await;
    };
    let server = tokio::spawn(userd::server::run(listener, service, settings, shutdown));
    TestApp {
        addr,
        backend: &NoStore,
        shutdown: Some(tx),
        server: Some(server),
        _dir: None,
    }
}

impl TestApp {
    /// How many users the server's store holds.
    pub async fn user_count(&self) -> usize {
        self.backend.count().await
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
        // The application is leaked for the server's sake; its store is closed here, so that
        // no writer thread outlives the test and the directory goes with it.
        self.backend.close();
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
