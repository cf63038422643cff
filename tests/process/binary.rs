//! The real `userd` executable: start-up line, serving, flags, exit codes, and graceful
//! shutdown on SIGTERM / SIGINT.

use crate::helpers::{
    assert_user, create_body, error_body, padded_body, user_from_created, wait_until_refusing,
    Conn, HEALTH_BODY, IO_TIMEOUT,
};
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_userd");

/// `userd` with every `USERD_*` variable (the flags' environment twins) cleared, so that the
/// developer's environment cannot change what these tests run.
fn userd() -> Command {
    let mut cmd = Command::new(BIN);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("USERD_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// A running `userd` process, killed if a test fails before it exits.
struct Server {
    child: Child,
    addr: SocketAddr,
}

impl Server {
    /// Starts `userd --addr 127.0.0.1:0 --in-memory` plus `extra` flags and waits for its
    /// `listening on http://127.0.0.1:PORT` line.
    fn start(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut cmd = userd();
        cmd.args(["--addr", "127.0.0.1:0", "--in-memory"])
            .args(extra)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn userd");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            let _ = stdout.read_line(&mut line);
            let _ = tx.send(line);
            // Keep draining, so that anything userd prints later never hits a closed pipe.
            let _ = std::io::copy(&mut stdout, &mut std::io::sink());
        });
        let line = match rx.recv_timeout(IO_TIMEOUT) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("userd printed no start-up line");
            }
        };
        let addr = line
            .trim_end()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected start-up line {line:?}"))
            .parse::<SocketAddr>()
            .expect("address in the start-up line");
        assert_eq!(addr.ip().to_string(), "127.0.0.1");
        assert_ne!(addr.port(), 0, "the real port is printed, not 0");
        Server { child, addr }
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Waits (up to [`IO_TIMEOUT`]) for the process to exit; returns its status and stderr.
    fn wait_exit(&mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let mut stderr = String::new();
                if let Some(mut e) = self.child.stderr.take() {
                    let _ = e.read_to_string(&mut stderr);
                }
                return (status, stderr);
            }
            assert!(Instant::now() < deadline, "userd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // Only if the test did not already see it exit.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

async fn get(addr: SocketAddr, path: &str) -> crate::helpers::Response {
    Conn::connect(addr)
        .await
        .roundtrip(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n"))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_serves_and_exits_successfully_on_sigterm() {
    let mut server = Server::start(&["--threads", "2"], &[]);
    get(server.addr, "/health")
        .await
        .assert_json(200, HEALTH_BODY);
    let res = Conn::connect(server.addr)
        .await
        .roundtrip(crate::helpers::create_request("Ann", "a@b"))
        .await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Ann", "a@b");
    server.signal("TERM");
    let (status, stderr) = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}, stderr {stderr:?}"
    );
    assert!(!stderr.contains("deadline"), "stderr: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_exits_successfully_on_sigint() {
    let mut server = Server::start(&[], &[]);
    get(server.addr, "/health")
        .await
        .assert_json(200, HEALTH_BODY);
    server.signal("INT");
    let (status, stderr) = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}, stderr {stderr:?}"
    );
}

/// One worker thread selects the current-thread runtime: it serves and stops the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_with_one_thread_serves_and_exits_on_sigterm() {
    let mut server = Server::start(&["--threads", "1"], &[]);
    get(server.addr, "/health")
        .await
        .assert_json(200, HEALTH_BODY);
    server.signal("TERM");
    assert!(server.wait_exit().0.success());
}

/// Idle kept-alive connections do not delay shutdown until its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_sigterm_with_idle_connections_exits_promptly() {
    // A 60 s deadline: were shutdown to wait for the idle connection, `wait_exit` (10 s) fails.
    let mut server = Server::start(&["--shutdown-timeout", "60"], &[]);
    let mut idle = Conn::connect(server.addr).await;
    idle.roundtrip("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .assert_json(200, HEALTH_BODY);
    server.signal("TERM");
    let (status, stderr) = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}, stderr {stderr:?}"
    );
    assert!(idle.closed_within(IO_TIMEOUT).await);
}

/// A request in flight when SIGTERM arrives still gets its answer, then the process exits 0.
/// The client sends `Expect: 100-continue`, so the `100 Continue` proves the request is being
/// handled; a refused connection proves the signal was acted on; only then is the body sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_answers_a_request_in_flight_at_sigterm() {
    let mut server = Server::start(&[], &[]);
    let body = create_body("Ann", "a@b");
    let mut conn = Conn::connect(server.addr).await;
    conn.send(format!(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    ))
    .await;
    assert_eq!(conn.read_response().await.status, 100);

    server.signal("TERM");
    wait_until_refusing(server.addr).await;

    conn.send(&body).await;
    let (id, doc) = user_from_created(&conn.read_response().await);
    assert_user(&doc, &id, "Ann", "a@b");
    let (status, stderr) = server.wait_exit();
    assert!(
        status.success(),
        "exit status {status:?}, stderr {stderr:?}"
    );
}

#[test]
fn binary_help_exits_0_and_lists_every_flag() {
    let out = userd().arg("--help").output().expect("run userd --help");
    assert!(out.status.success(), "{:?}", out.status);
    let help = String::from_utf8(out.stdout).expect("UTF-8 help");
    for flag in [
        "--addr",
        "--threads",
        "--shards",
        "--max-body",
        "--in-memory",
        "--max-connections",
        "--header-timeout",
        "--shutdown-timeout",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn binary_refuses_a_shard_count_that_is_not_a_power_of_two() {
    let out = userd()
        .args(["--addr", "127.0.0.1:0", "--shards", "6"])
        .output()
        .expect("run userd");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("power of two"), "{stderr}");
}

#[test]
fn binary_exits_1_when_the_address_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().unwrap().to_string();
    let out = userd()
        .args(["--addr", &addr, "--in-memory"])
        .output()
        .expect("run userd");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

/// Flags have environment twins: `USERD_MAX_BODY` sets the body limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reads_max_body_from_the_environment() {
    let mut server = Server::start(&[], &[("USERD_MAX_BODY", "100")]);
    let mut conn = Conn::connect(server.addr).await;
    let res = conn
        .roundtrip(crate::helpers::post_request(
            "/users",
            Some("application/json"),
            padded_body(101).as_bytes(),
        ))
        .await;
    res.assert_json(
        413,
        &error_body("Request body is larger than the limit of 100 bytes"),
    );
    server.signal("TERM");
    assert!(server.wait_exit().0.success());
}

/// `--max-body` on the command line sets the body limit (and wins over the variable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_max_body_flag_wins_over_the_environment() {
    let mut server = Server::start(&["--max-body", "200"], &[("USERD_MAX_BODY", "100")]);
    let mut conn = Conn::connect(server.addr).await;
    let res = conn
        .roundtrip(crate::helpers::post_request(
            "/users",
            Some("application/json"),
            padded_body(200).as_bytes(),
        ))
        .await;
    assert_eq!(res.status, 201);
    let res = conn
        .roundtrip(crate::helpers::post_request(
            "/users",
            Some("application/json"),
            padded_body(201).as_bytes(),
        ))
        .await;
    res.assert_json(
        413,
        &error_body("Request body is larger than the limit of 200 bytes"),
    );
    server.signal("TERM");
    assert!(server.wait_exit().0.success());
}
