//! The harness of the durable-store tests: the real binary on a data directory, in-process
//! servers over a fault layer, concurrent writers and the check that every acknowledged user
//! is there.

pub use crate::helpers::TempDir;
use crate::helpers::{create_request, plain_request, serve, Conn, Response, TestApp, IO_TIMEOUT};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use userd::server::Settings;
use userd::store::log::{Faults, LogStore, Options};
use userd::store::MemoryStore;
const BIN: &str = env!("CARGO_BIN_EXE_userd");
pub const WRITERS: usize = 16;

/// A user whose creation was acknowledged: its id and the exact body of the `201`.
pub type Acked = (String, Vec<u8>);

/// A running `userd` process on a data directory; killed when dropped.
pub struct Userd {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: Arc<Mutex<String>>,
}

impl Userd {
    /// Starts `userd --addr 127.0.0.1:0 --data-dir dir` plus `extra` and waits until it
    /// listens (after recovery).
    pub fn start(dir: &Path, extra: &[&str]) -> Userd {
        let (child, stderr, line) = spawn(dir, extra);
        let line = line
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_default();
        let addr = match line.trim_end().strip_prefix("listening on http://") {
            Some(addr) => addr.parse().expect("address in the start-up line"),
            None => panic!("no start-up line; stderr: {}", stderr.lock().unwrap()),
        };
        Userd {
            child,
            addr,
            stderr,
        }
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (up to `IO_TIMEOUT`) for the process to exit by itself.
    pub fn wait_exit(&mut self) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "userd did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Userd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns userd on `dir`; returns it, its stderr as it comes, and its first stdout line.
pub fn spawn(dir: &Path, extra: &[&str]) -> (Child, Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("USERD_")) {
        cmd.env_remove(name);
    }
    // A crash point aborts; any core file lands in the temp dir, not in the source tree.
    cmd.current_dir(std::env::temp_dir());
    let mut child = cmd
        .args(["--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn userd");
    let (stdout, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let (tx, line) = mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = stderr.clone();
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n @ 1..) = err.read(&mut chunk) {
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&chunk[..n]));
        }
    });
    (child, stderr, line)
}

/// What one writer saw: the users acknowledged, and the answer that stopped it, if any
/// (a connection that died stops it with none).
#[derive(Default)]
pub struct Writes {
    pub acked: Vec<Acked>,
    pub refused: Option<Response>,
}

/// Runs `WRITERS` connections, each creating users until `stop`, a refusal or a dead connection.
pub async fn write_concurrently(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<Writes> {
    let mut tasks = tokio::task::JoinSet::new();
    // Emails are unique, so each run's differ from those already stored.
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    for w in 0..WRITERS {
        let stop = stop.clone();
        tasks.spawn(async move {
            let mut seen = Writes::default();
            let mut conn = Conn::connect(addr).await;
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let name = format!("writer {w} user {i} \u{e9}");
                if conn
                    .try_send(create_request(
                        &name,
                        &format!("w{w}.u{i}.{run}@example.com"),
                    ))
                    .await
                    .is_err()
                {
                    break;
                }
                match conn.try_read_response("POST").await {
                    Ok(res) if res.status == 201 => {
                        let id = res.json()["data"]["id"].as_str().unwrap().to_owned();
                        seen.acked.push((id, res.body));
                    }
                    Ok(res) => {
                        seen.refused = Some(res);
                        break;
                    }
                    Err(_) => break,
                }
            }
            seen
        });
    }
    tasks.join_all().await
}

/// A stop flag for [`write_concurrently`] that a timer raises after `limit`.
pub fn stop_after(limit: Duration) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(limit).await;
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

/// Checks that every acknowledged user reads back with the bytes of its `201` (the same
/// envelope around the same document), over a few connections at once.
pub async fn assert_all_present(addr: SocketAddr, acked: &[Acked]) {
    let acked: Arc<Vec<Acked>> = Arc::new(acked.to_vec());
    let mut tasks = tokio::task::JoinSet::new();
    for part in 0..8 {
        let acked = acked.clone();
        tasks.spawn(async move {
            let mut conn = Conn::connect(addr).await;
            for (id, body) in acked.iter().skip(part).step_by(8) {
                let res = conn
                    .roundtrip(plain_request("GET", &format!("/users/{id}")))
                    .await;
                assert_eq!(res.status, 200, "acknowledged user {id} is missing");
                assert_eq!(res.body, *body, "user {id} came back with other bytes");
            }
        });
    }
    tasks.join_all().await;
}

/// Acknowledged users of all writers.
pub fn all_acked(writes: &[Writes]) -> Vec<Acked> {
    writes
        .iter()
        .flat_map(|w| w.acked.iter().cloned())
        .collect()
}

/// A durable server in this process over a fault layer, as `server::run` serves it. The
/// directory stays the caller's: stopping the server closes the store and leaves it.
pub async fn spawn_faulty(dir: &Path, faults: &Faults) -> TestApp {
    let options = Options {
        fs: faults.fs(),
        ..Options::default()
    };
    let store = LogStore::open(dir, MemoryStore::new(8), options).expect("open the store");
    serve(store, Settings::default(), 64 * 1024, None).await
}
