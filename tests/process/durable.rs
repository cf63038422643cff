//! The durable store end to end: kill -9 under concurrent writers, disk faults, crashes in the
//! middle of a snapshot, and a second userd on the same data directory.
//!
//! The rule every test checks: a user whose `201` reached the client is there after a restart,
//! byte for byte.

mod harness;

use crate::helpers::{create_request, Conn, IO_TIMEOUT};
use harness::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use userd::store::log::{FaultKind, Faults};

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
        let deadline = Instant::now() + 3 * IO_TIMEOUT;
        while !userd.stderr().contains("snapshot of") {
            assert!(
                Instant::now() < deadline && !writers.is_finished(),
                "{point}: no snapshot while writing; stderr: {}",
                userd.stderr()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let mut acked = all_acked(&writers.await.unwrap());
        userd.kill();

        let mut userd = Userd::start(&dir.0, &["--compact-bytes", "4096", "--crash-at", point]);
        // Writers run until the crash cuts their connections; the timer only bounds a run in
        // which the crash point is never reached (the assertions below then say so).
        let stop = stop_after(3 * IO_TIMEOUT);
        let writes = write_concurrently(userd.addr, stop).await;
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
        // Writers run until refused; the timer only bounds a run in which the fault never
        // fires (the assertions below then say so).
        let writes = write_concurrently(server.addr, stop_after(3 * IO_TIMEOUT)).await;
        let acked = all_acked(&writes);
        for w in &writes {
            let refused = w.refused.as_ref().expect("every writer ends refused");
            let got = refused.assert_error_prefix(503, message);
            assert!(got.contains("restarted"), "{got}");
        }
        // Exactly the acknowledged users are visible: none that failed to become durable.
        assert_eq!(
            server.user_count().await,
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

        // Stopping the server closes the store (and releases the directory's lock).
        server.shutdown().await;
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

/// PATCH and DELETE are logged like creates: after a SIGKILL and a restart (from the log, and
/// again from a snapshot) the changed user reads back changed, the deleted one is gone, the
/// emails are held and freed as before and the list keeps creation order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_and_deletes_survive_kill_9() {
    use crate::helpers::{data_of, json_request, request_with};
    let dir = TempDir::new("changes");
    let mut userd = Userd::start(&dir.0, &["--compact-bytes", "2048"]);
    let mut conn = Conn::connect(userd.addr).await;
    let mut ids = Vec::new();
    for i in 0..30 {
        let res = conn
            .roundtrip(create_request(&format!("u{i}"), &format!("u{i}@x")))
            .await;
        assert_eq!(res.status, 201, "{res:?}");
        ids.push(res.json()["data"]["id"].as_str().unwrap().to_owned());
    }
    let res = conn
        .roundtrip(json_request(
            "PATCH",
            &format!("/users/{}", ids[0]),
            r#"{"email":"moved@x"}"#,
            "If-Match: \"1\"\r\n",
        ))
        .await;
    assert_eq!(res.status, 200, "{res:?}");
    let patched = data_of(&res);
    let res = conn
        .roundtrip(request_with("DELETE", &format!("/users/{}", ids[1]), ""))
        .await;
    assert_eq!(res.status, 204, "{res:?}");
    let list = data_of(
        &conn
            .roundtrip(request_with("GET", "/users?limit=1000", ""))
            .await,
    );
    userd.kill();

    for _ in 0..2 {
        let mut userd = Userd::start(&dir.0, &["--compact-bytes", "2048"]);
        let mut conn = Conn::connect(userd.addr).await;
        let got = conn
            .roundtrip(request_with("GET", &format!("/users/{}", ids[0]), ""))
            .await;
        assert_eq!(data_of(&got), patched);
        assert_eq!(got.header("etag"), Some("\"2\""));
        let gone = conn
            .roundtrip(request_with("GET", &format!("/users/{}", ids[1]), ""))
            .await;
        assert_eq!(gone.status, 404);
        let again = data_of(
            &conn
                .roundtrip(request_with("GET", "/users?limit=1000", ""))
                .await,
        );
        assert_eq!(again, list);
        // u0@x and u1@x are free again, moved@x is taken.
        for (email, status) in [("u0@x", 201), ("u1@x", 201), ("moved@x", 409)] {
            let res = conn.roundtrip(create_request("late", email)).await;
            assert_eq!(res.status, status, "{email}: {res:?}");
            if status == 201 {
                let id = res.json()["data"]["id"].as_str().unwrap().to_owned();
                let res = conn
                    .roundtrip(request_with("DELETE", &format!("/users/{id}"), ""))
                    .await;
                assert_eq!(res.status, 204);
            }
        }
        userd.kill();
    }
}

/// A hot user: 16 clients PATCH one user at once on the durable store, with fsyncs slowed so
/// that changes stay in flight. Every unconditional PATCH is a 200, every conditional one a
/// 200 or a 412, none a 503; each 200 is counted in the version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_patches_of_one_user_are_never_answered_busy() {
    use crate::helpers::{json_request, user_from_created};
    let dir = TempDir::new("hot");
    let faults = Faults::new();
    faults.slow_syncs(Duration::from_millis(2));
    let server = spawn_faulty(&dir.0, &faults).await;
    let mut conn = Conn::connect(server.addr).await;
    let (id, _) = user_from_created(&conn.roundtrip(create_request("Hot", "hot@x")).await);
    let path = format!("/users/{id}");
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..16 {
        let (addr, path) = (server.addr, path.clone());
        tasks.spawn(async move {
            let mut conn = Conn::connect(addr).await;
            let mut ok = 0;
            for round in 0..10 {
                let body = format!(r#"{{"name":"client {client} round {round}"}}"#);
                // Every other client sends If-Match with the version it last saw.
                let extra = if client % 2 == 0 {
                    String::new()
                } else {
                    let res = conn
                        .roundtrip(crate::helpers::plain_request("GET", &path))
                        .await;
                    format!("If-Match: {}\r\n", res.header("etag").unwrap())
                };
                let res = conn
                    .roundtrip(json_request("PATCH", &path, &body, &extra))
                    .await;
                match res.status {
                    200 => ok += 1,
                    412 if !extra.is_empty() => {}
                    _ => panic!("client {client} round {round}: {res:?}"),
                }
            }
            ok
        });
    }
    let changes: u64 = tasks.join_all().await.into_iter().sum();
    assert!(changes >= 80, "only {changes} changes went through");
    let res = conn
        .roundtrip(crate::helpers::plain_request("GET", &path))
        .await;
    assert_eq!(
        res.header("etag"),
        Some(format!("\"{}\"", 1 + changes).as_str())
    );
}
