//! The durable store end to end: kill -9 under concurrent writers, disk faults, crashes in the
//! middle of a snapshot, and a second userd on the same data directory.
//!
//! The rule every test checks: a user whose `201` reached the client is there after a restart,
//! byte for byte.

use crate::helpers::{create_request, plain_request, Conn, Response, IO_TIMEOUT};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use userd::server::Settings;
use userd::store::log::{FaultKind, Faults, LogStore, Options};
use userd::store::{MemoryStore, UserStore};
use userd::App;

const BIN: &str = env!("CARGO_BIN_EXE_userd");
const WRITERS: usize = 16;

/// A user whose creation was acknowledged: its id and the exact body of the `201`.
type Acked = (String, Vec<u8>);

/// A fresh directory under the system's temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
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

/// A running `userd` process on a data directory; killed when dropped.
struct Userd {
    child: Child,
    addr: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

impl Userd {
    /// Starts `userd --addr 127.0.0.1:0 --data-dir dir` plus `extra` and waits until it
    /// listens (after recovery).
    fn start(dir: &Path, extra: &[&str]) -> Userd {
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
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits (up to `IO_TIMEOUT`) for the process to exit by itself.
    fn wait_exit(&mut self) {
        let deadline = Instant::now() + IO_TIMEOUT;
        while self.child.try_wait().expect("wait").is_none() {
            assert!(Instant::now() < deadline, "userd did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Userd {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Spawns userd on `dir`; returns it, its stderr as it comes, and its first stdout line.
fn spawn(dir: &Path, extra: &[&str]) -> (Child, Arc<Mutex<String>>, mpsc::Receiver<String>) {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("USERD_")) {
        cmd.env_remove(name);
    }
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
struct Writes {
    acked: Vec<Acked>,
    refused: Option<Response>,
}

/// Runs `WRITERS` connections, each creating users until `stop`, a refusal or a dead connection.
async fn write_concurrently(addr: SocketAddr, stop: Arc<AtomicBool>) -> Vec<Writes> {
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

/// Checks that every acknowledged user reads back with the bytes of its `201` (the same
/// envelope around the same document), over a few connections at once.
async fn assert_all_present(addr: SocketAddr, acked: &[Acked]) {
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
fn all_acked(writes: &[Writes]) -> Vec<Acked> {
    writes
        .iter()
        .flat_map(|w| w.acked.iter().cloned())
        .collect()
}

/// 16 writers, SIGKILL at a random moment, restart, check: 20 times over. Segments are small
/// so that kills also land while segments rotate and snapshots are written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_concurrent_writers_never_loses_an_acknowledged_user() {
    let dir = TempDir::new("kill9");
    let mut acked: Vec<Acked> = Vec::new();
    let mut seed = std::process::id() as u64 | 1;
    for cycle in 0..20 {
        let mut userd = Userd::start(&dir.0, &["--compact-bytes", "16384"]);
        assert_all_present(userd.addr, &acked).await;
        let stop = Arc::new(AtomicBool::new(false));
        let writers = tokio::spawn(write_concurrently(userd.addr, stop.clone()));
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(20 + seed % 100)).await;
        userd.kill();
        let writes = writers.await.unwrap();
        for w in &writes {
            assert!(
                w.refused.is_none(),
                "cycle {cycle}: refused {:?}",
                w.refused
            );
        }
        acked.extend(all_acked(&writes));
    }
    let userd = Userd::start(&dir.0, &[]);
    assert_all_present(userd.addr, &acked).await;
    eprintln!(
        "kill -9 loop: {} users acknowledged over 20 kills",
        acked.len()
    );
    assert!(
        acked.len() > 20 * WRITERS,
        "too few writes to mean much: {}",
        acked.len()
    );
    let names: Vec<String> = std::fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n.ends_with(".snap")),
        "no snapshot was taken: {names:?}"
    );
}

/// With `--sync interval` and `none`, a process crash loses nothing once the answer was sent:
/// the data is in the kernel's page cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_nothing_with_sync_interval_or_none() {
    for mode in ["interval", "none"] {
        let dir = TempDir::new(mode);
        let mut acked = Vec::new();
        for _ in 0..3 {
            let mut userd = Userd::start(&dir.0, &["--sync", mode, "--compact-bytes", "16384"]);
            assert_all_present(userd.addr, &acked).await;
            let writers = tokio::spawn(write_concurrently(userd.addr, Arc::default()));
            tokio::time::sleep(Duration::from_millis(80)).await;
            userd.kill();
            acked.extend(all_acked(&writers.await.unwrap()));
        }
        let userd = Userd::start(&dir.0, &[]);
        assert_all_present(userd.addr, &acked).await;
    }
}

/// Crashes (abort) at each named point of writing a snapshot, under concurrent writers; after
/// a restart every acknowledged user is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_crash_at_any_point_of_a_snapshot_loses_no_acknowledged_user() {
    for point in ["snapshot-written", "snapshot-renamed", "snapshot-cleaned"] {
        let dir = TempDir::new(point);
        // A first life without crashing leaves a snapshot and segments for the second to
        // replace, so that the crash has old files to delete.
        let mut userd = Userd::start(&dir.0, &["--compact-bytes", "4096"]);
        let stop = Arc::new(AtomicBool::new(false));
        let writers = tokio::spawn(write_concurrently(userd.addr, stop.clone()));
        while !userd.stderr().contains("snapshot of") {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let mut acked = all_acked(&writers.await.unwrap());
        userd.kill();

        let mut userd = Userd::start(&dir.0, &["--compact-bytes", "4096", "--crash-at", point]);
        let writes = write_concurrently(userd.addr, Arc::default()).await;
        userd.wait_exit();
        assert!(
            userd
                .stderr()
                .contains(&format!("crash point {point} reached")),
            "{point}: {}",
            userd.stderr()
        );
        acked.extend(all_acked(&writes));

        let userd = Userd::start(&dir.0, &[]);
        assert_all_present(userd.addr, &acked).await;
    }
}

#[test]
fn a_second_userd_on_the_same_data_directory_refuses_to_start() {
    let dir = TempDir::new("lock");
    let first = Userd::start(&dir.0, &[]);
    let (mut second, stderr, _) = spawn(&dir.0, &[]);
    let status = second.wait().expect("wait");
    assert_eq!(status.code(), Some(1));
    // The stderr thread may still be copying the last bytes.
    let deadline = Instant::now() + IO_TIMEOUT;
    while !stderr.lock().unwrap().contains('\n') && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stderr = stderr.lock().unwrap().clone();
    assert!(stderr.contains("is in use by another userd"), "{stderr}");
    assert!(
        stderr.contains(&format!("pid {}", first.child.id())),
        "{stderr}"
    );
}

/// A durable server in this process over a fault layer, as `server::run` serves it.
struct FaultyServer {
    addr: SocketAddr,
    app: &'static App<LogStore>,
    stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<()>,
}

async fn spawn_faulty(dir: &Path, faults: &Faults) -> FaultyServer {
    let options = Options {
        faults: Some(faults.clone()),
        ..Options::default()
    };
    let store = LogStore::open(dir, MemoryStore::new(8), options).expect("open the store");
    let app: &'static App<LogStore> = Box::leak(Box::new(App::new(store, 64 * 1024)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let server = tokio::spawn(userd::server::run(
        listener,
        app,
        Settings::default(),
        shutdown,
    ));
    FaultyServer {
        addr,
        app,
        stop,
        server,
    }
}

/// For each fault (EIO or ENOSPC, on a write or on an fsync), armed while 16 writers run:
/// the failing writes get 503 with the right message, nothing is acknowledged after, nothing
/// unacknowledged is readable, reads go on, and the real binary restarted on the directory
/// has every acknowledged user.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk_faults_are_never_acknowledged_and_a_restart_recovers_everything_acknowledged() {
    let cases = [
        ("fsync", FaultKind::Io, "Storage failure: "),
        ("fsync", FaultKind::DiskFull, "Disk full: "),
        ("write", FaultKind::Io, "Storage failure: "),
        ("write", FaultKind::DiskFull, "Disk full: "),
    ];
    // A slow disk (fsyncs of 3 ms) has the writer overlap its fsyncs; faults must hold there
    // too.
    let disks = [Duration::ZERO, Duration::from_millis(3)];
    for ((op, kind, message), slow) in cases.into_iter().flat_map(|c| disks.map(|d| (c, d))) {
        let dir = TempDir::new("faults");
        let faults = Faults::new();
        faults.slow_syncs(slow);
        let server = spawn_faulty(&dir.0, &faults).await;
        match op {
            "fsync" => faults.fail_sync(20, kind),
            _ => faults.fail_write(20, kind),
        }
        let writes = write_concurrently(server.addr, Arc::default()).await;
        let acked = all_acked(&writes);
        for w in &writes {
            let refused = w.refused.as_ref().expect("every writer ends refused");
            let got = refused.assert_error_prefix(503, message);
            assert!(got.contains("restarted"), "{got}");
        }
        // Exactly the acknowledged users are visible: none that failed to become durable.
        assert_eq!(
            server.app.store().len(),
            acked.len(),
            "{op} {kind:?} {slow:?}"
        );
        assert!(!acked.is_empty());
        assert_all_present(server.addr, &acked).await;
        let mut conn = Conn::connect(server.addr).await;
        let again = conn
            .roundtrip(create_request("Late", "late@example.com"))
            .await;
        again.assert_error_prefix(503, message);

        let _ = server.stop.send(());
        server.server.await.unwrap();
        server.app.store().close();
        let userd = Userd::start(&dir.0, &[]);
        assert_all_present(userd.addr, &acked).await;
        if op == "write" {
            assert!(
                userd.stderr().contains("cut a torn record"),
                "{}",
                userd.stderr()
            );
        }
    }
}
