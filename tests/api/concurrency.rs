//! Many clients at once: no lost, torn or mixed-up user, no reader ever misses a created user.

use crate::helpers::{create_request, ok_body, plain_request, spawn_app, user_from_created};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

const WRITERS: usize = 16;
const USERS_PER_WRITER: usize = 200;
const READERS: usize = 16;
/// Every reader reads at least this many times, so reads happen even on a machine where the
/// writers finish first.
const MIN_READS_PER_READER: usize = 200;

/// A small deterministic PRNG (xorshift64*), seeded per task.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }
}

/// 16 writers create 200 users each while 16 readers read random users whose POST has already
/// returned. Every such read is a 200 with the exact bytes of the POST answer, and afterwards
/// every user reads back byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_readers_never_lose_or_tear_a_user() {
    let app = Arc::new(spawn_app().await);
    let created: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let writers_done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicUsize::new(0));

    let mut readers = Vec::new();
    for r in 0..READERS {
        let (app, created, done, reads) = (
            app.clone(),
            created.clone(),
            writers_done.clone(),
            reads.clone(),
        );
        readers.push(tokio::spawn(async move {
            let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (r as u64 + 1));
            let mut conn = app.connect().await;
            let mut mine = 0;
            while !done.load(Ordering::Acquire) || mine < MIN_READS_PER_READER {
                let pick = {
                    let all = created.lock().unwrap();
                    (!all.is_empty()).then(|| all[rng.below(all.len())].clone())
                };
                let Some((id, doc)) = pick else {
                    tokio::task::yield_now().await;
                    continue;
                };
                let res = conn
                    .roundtrip(plain_request("GET", &format!("/users/{id}")))
                    .await;
                assert_eq!(res.status, 200, "a created user was not found: {id}");
                res.assert_json(200, &ok_body(&doc));
                mine += 1;
            }
            reads.fetch_add(mine, Ordering::Relaxed);
        }));
    }

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (app, created) = (app.clone(), created.clone());
        writers.push(tokio::spawn(async move {
            let mut conn = app.connect().await;
            for i in 0..USERS_PER_WRITER {
                let name = format!("writer {w} user {i}");
                let email = format!("w{w}.u{i}@example.com");
                let res = conn.roundtrip(create_request(&name, &email)).await;
                let (id, doc) = user_from_created(&res);
                assert!(doc.contains(&format!(r#""name":"{name}","email":"{email}""#)));
                created.lock().unwrap().push((id, doc));
            }
        }));
    }
    for w in writers {
        w.await.expect("writer panicked");
    }
    writers_done.store(true, Ordering::Release);
    for r in readers {
        r.await.expect("reader panicked");
    }
    assert!(reads.load(Ordering::Relaxed) >= READERS * MIN_READS_PER_READER);

    let all = created.lock().unwrap().clone();
    assert_eq!(all.len(), WRITERS * USERS_PER_WRITER);
    assert_eq!(app.user_count().await, WRITERS * USERS_PER_WRITER);
    let mut ids: Vec<&str> = all.iter().map(|(id, _)| id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all.len(), "an id was issued twice");

    // Every user, read back on a few connections, byte for byte.
    let mut checks = Vec::new();
    for part in all.chunks(all.len() / 8) {
        let (app, part) = (app.clone(), part.to_vec());
        checks.push(tokio::spawn(async move {
            let mut conn = app.connect().await;
            for (id, doc) in part {
                conn.roundtrip(plain_request("GET", &format!("/users/{id}")))
                    .await
                    .assert_json(200, &ok_body(&doc));
            }
        }));
    }
    for c in checks {
        c.await.expect("check panicked");
    }
}

/// Concurrent creates each get their own user back, never another request's fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_creates_answer_each_client_with_its_own_user() {
    let app = Arc::new(spawn_app().await);
    let mut tasks = Vec::new();
    for t in 0..64 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("client {t} {}", "x".repeat(t * 37 % 180 + 1));
            let email = format!("c{t}@example.com");
            let (id, doc) = app.create_user(&name, &email).await;
            crate::helpers::assert_user(&doc, &id, &name, &email);
        }));
    }
    for t in tasks {
        t.await.expect("task panicked");
    }
    assert_eq!(app.user_count().await, 64);
}
