//! One regression test for each thing a review of the durable store found, named after it;
//! each failed before its fix.

use super::*;
use crate::store::log::fs::Open;
use crate::store::log::record::{Body, Header};
use crate::store::log::simdisk::{self, Fate, SimDisk};
use crate::store::testing::TestUser;
use crate::store::UserStore;
use crate::users::page::Cursor;
use crate::users::{NewUser, Patch, Users};
use std::path::Path;
use std::time::Duration;

fn on(disk: &SimDisk, sync: SyncMode) -> Options {
    Options {
        sync,
        fs: Arc::new(disk.clone()),
        ..Options::default()
    }
}

fn write(store: &LogStore, w: Write) -> Result<(), StoreError> {
    block_on(store.write(w))
}

/// Many clients changing one user at once on the durable store (fsyncs slowed, so changes
/// are in flight for a while): every change goes through, none is answered "busy".
#[test]
fn a_hot_user_changed_by_many_clients_at_once_is_never_busy() {
    let dir = TempDir::new("hot");
    let faults = Faults::new();
    faults.slow_syncs(Duration::from_millis(3));
    let options = Options {
        fs: faults.fs(),
        ..Options::default()
    };
    let users = Arc::new(Users::new(open(&dir, options)));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let user = NewUser::parse("Hot", "hot@x").unwrap();
        let id = users.create(user, |u| u.id).await.unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let users = users.clone();
                tokio::spawn(async move {
                    for round in 0..5 {
                        let name = format!("client {i} round {round}");
                        let patch = Patch::parse(Some(&name), None).unwrap();
                        users.update(id, patch, |_| true, |_| ()).await.unwrap();
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(users.get(id, |u| u.version).await.unwrap(), 1 + 16 * 5);
    });
}

/// With `--sync interval`, after a failed fsync or a full disk the writer sleeps until there
/// is work, instead of spinning on a deadline that has passed.
#[test]
fn sync_interval_does_not_spin_after_a_failed_fsync_or_a_full_disk() {
    for fail_write in [false, true] {
        let dir = TempDir::new("spin");
        let faults = Faults::new();
        let options = Options {
            sync: SyncMode::Interval,
            fs: faults.fs(),
            ..Options::default()
        };
        let store = open(&dir, options);
        let all = users(2);
        write(&store, create(&all[0])).unwrap();
        if fail_write {
            faults.fail_write(0, FaultKind::DiskFull);
            assert!(write(&store, create(&all[1])).is_err());
        } else {
            faults.fail_sync(0, FaultKind::Io);
            // The write is answered at once; the interval fsync that follows fails.
            write(&store, create(&all[1])).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while store.writable().is_ok() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the fsync never failed"
                );
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let before = store.idle_wakeups();
        std::thread::sleep(Duration::from_millis(500));
        let woke = store.idle_wakeups() - before;
        // A writer that sleeps wakes not at all; one that spins wakes millions of times.
        assert!(
            woke < 5,
            "woke {woke} times in 500 ms (write fault: {fail_write})"
        );
    }
}

/// After an fdatasync failed, Linux may keep the pages it could not write in the cache,
/// marked clean. A restart that served them as they are, and appended after them, would lose
/// them (and acknowledged writes after them) to the next power cut. Recovery makes what it
/// serves durable before the store opens.
/// Users whose records each span a few simulated pages, so that a lost page loses one user.
fn paged_users(n: usize) -> Vec<TestUser> {
    let pad = "x".repeat(2 * simdisk::PAGE);
    (users(n).into_iter())
        .map(|mut u| {
            u.name.push_str(&pad);
            u
        })
        .collect()
}

#[test]
fn a_restart_after_a_failed_fsync_serves_only_what_is_on_the_disk() {
    let disk = SimDisk::new();
    let path = Path::new("/data");
    let all = paged_users(3);
    let store = LogStore::open(path, MemoryStore::new(2), on(&disk, SyncMode::Always)).unwrap();
    write(&store, create(&all[0])).unwrap();
    disk.fail_next_sync_losing_pages();
    assert!(write(&store, create(&all[1])).is_err());
    store.close();
    drop(store);

    // The restart reads the second user back from the cache and serves it...
    let store = LogStore::open(path, MemoryStore::new(2), on(&disk, SyncMode::Always)).unwrap();
    assert!(store.memory().version_now(all[1].id).is_some());
    // ...and acknowledges a third after it.
    write(&store, create(&all[2])).unwrap();
    // A power cut that keeps nothing it need not.
    disk.cut_now();
    let after = disk.after_power_cut_with(|_| Fate::Lost);
    let store = LogStore::open(path, MemoryStore::new(2), on(&after, SyncMode::Always)).unwrap();
    assert_holds_exactly(store.memory(), &all);
}

/// The same after kill -9 with records written but never fsynced (`--sync none`): what the
/// restart serves survives a power cut that comes before any other write.
#[test]
fn a_restart_after_kill_9_serves_only_what_is_on_the_disk() {
    let disk = SimDisk::new();
    let path = Path::new("/data");
    let all = paged_users(1);
    let store = LogStore::open(path, MemoryStore::new(2), on(&disk, SyncMode::None)).unwrap();
    write(&store, create(&all[0])).unwrap();
    disk.kill_process();
    drop(store);

    let store = LogStore::open(path, MemoryStore::new(2), on(&disk, SyncMode::Always)).unwrap();
    assert!(store.memory().version_now(all[0].id).is_some());
    disk.cut_now();
    let after = disk.after_power_cut_with(|_| Fate::Lost);
    let store = LogStore::open(path, MemoryStore::new(2), on(&after, SyncMode::Always)).unwrap();
    assert_holds_exactly(store.memory(), &all);
}

/// A power cut that loses a middle page of the unsynced tail, while later pages survive,
/// leaves the directory as a crash would: userd starts, and cuts the tail at the lost page.
/// Damage in what a completed fdatasync covered is still refused (see the flipped-byte test).
#[test]
fn a_lost_page_in_the_unsynced_tail_is_a_torn_tail_not_damage() {
    let all = users(8);
    let (mut log, starts) = log_of(&all[..5]);
    let synced = log.len();
    // Three more batches written after the last completed fdatasync: their `synced` records
    // say no more than `synced`, and the middle one's page is lost.
    for user in &all[5..] {
        let upto = synced as u64;
        encode(&mut log, &Record::Synced { upto });
        let record = record_of(user);
        encode(
            &mut log,
            &Record::Create(user.id, seq_of(user.id), Body::Stored(&record)),
        );
    }
    let second = synced + (log.len() - synced) / 3;
    log[second..second + 40].fill(0);
    let dir = TempDir::new("lostpage");
    fs::write(dir.segment(1), &log).unwrap();
    let (mem, found) = recover_into_fresh(&dir, false).unwrap();
    assert_holds_exactly(&mem, &all[..6]);
    assert!(found.notes[0].contains("torn"), "{:?}", found.notes);
    let _ = starts;
}

/// With `--sync interval` and `none`, a snapshot may hold state of the active segment that is
/// not on the disk yet. If the snapshot reached the disk and the segment did not, recovery
/// would replay an older part of the segment over a newer snapshot: a state that never
/// existed (here, two users with one email). The segment is fdatasynced before the snapshot
/// is renamed into place.
#[test]
fn a_snapshot_never_reaches_the_disk_ahead_of_its_segment() {
    let disk = SimDisk::new();
    let dir = Dir {
        fs: Arc::new(disk.clone()),
        path: "/data".into(),
    };
    // Names sized so that each record of segment 2 fills one simulated page exactly: an
    // update's frame is 84 bytes beside the name and email, a create's 8 more.
    let page = simdisk::PAGE;
    let sized = |user: TestUser, frame: usize| {
        let name = "x".repeat(page - frame - user.email.len());
        TestUser { name, ..user }
    };
    let a1 = TestUser::new("a", "e1");
    let a2 = sized(a1.changed("a", "e2"), 84);
    let a3 = sized(a2.changed("a", "e3"), 84);
    let b1 = sized(TestUser::new("b", "e2"), 92);
    let (a, b) = (a1.id, b1.id);
    let body = |u: &TestUser| record_of(u);
    // Segment 1, on the disk: a has e1.
    let mut one = Vec::new();
    encode(&mut one, &Record::Create(a, 1, Body::Stored(&body(&a1))));
    disk.put(&dir.join(&files::segment_name(1)), &one);
    // Segment 2, written but not fsynced (each record on its own page): a moves to e2, then
    // e3, and b takes e2.
    let two = dir
        .fs
        .open(&dir.join(&files::segment_name(2)), Open::CreateNew)
        .unwrap();
    dir.sync().unwrap();
    let mut bytes = Vec::new();
    encode(&mut bytes, &Record::Update(a, Body::Stored(&body(&a2))));
    encode(&mut bytes, &Record::Update(a, Body::Stored(&body(&a3))));
    encode(&mut bytes, &Record::Create(b, 2, Body::Stored(&body(&b1))));
    assert_eq!(bytes.len(), 3 * page, "one record a page");
    two.write_all_at(&bytes, 0).unwrap();
    // Memory has applied all of it (as the writer does before an fsync in these modes).
    let mem = MemoryStore::new(2);
    for log in [&one, &bytes] {
        let mut at = 0;
        while at < log.len() {
            let header = Header::parse(log[at..at + 8].try_into().unwrap());
            let len = header.payload_len().unwrap();
            header
                .decode(&log[at + 8..at + 8 + len])
                .unwrap()
                .apply(&mem);
            at += 8 + len;
        }
    }
    let active = dir
        .fs
        .open(&dir.join(&files::segment_name(2)), Open::Write)
        .unwrap();
    snapshot::take(&dir, 2, &mem, &active, None).unwrap();
    // The power goes; of what was never fsynced only the first page reached the disk.
    disk.cut_now();
    let after = disk.after_power_cut_with(|nth| if nth == 0 { Fate::Kept } else { Fate::Lost });
    let mem = MemoryStore::new(2);
    let dir = Dir {
        fs: Arc::new(after),
        path: "/data".into(),
    };
    recover(&dir, &mem, false).unwrap();
    let emails = mem.emails();
    assert_eq!(emails.holder("e2"), Some(b));
    assert_eq!(emails.holder("e3"), Some(a));
    assert_eq!(mem.version_now(a), Some(3));
}

/// Creates `n` users on `store`; returns their ids in creation order.
fn create_all(store: &LogStore, n: usize) -> Vec<UserId> {
    users(n)
        .iter()
        .map(|user| {
            write(store, create(user)).unwrap();
            user.id
        })
        .collect()
}

/// The ids of a page of the list, and its cursor.
fn page(mem: &MemoryStore, after: Option<Cursor>, limit: usize) -> (Vec<UserId>, Option<Cursor>) {
    let mut ids = Vec::new();
    let next = mem.list_now(after, limit, |u| ids.push(u.id));
    (ids, next)
}

/// A snapshot taken after the newest users were deleted must carry the next sequence
/// number: else a restart hands their numbers out again, and a cursor handed out before the
/// restart skips the users created after it.
#[test]
fn sequence_numbers_are_not_reused_after_a_snapshot_when_the_newest_users_were_deleted() {
    let dir = TempDir::new("reuse");
    let store = open(&dir, Options::default());
    let ids = create_all(&store, 6);
    let cursor = page(store.memory(), None, 5).1.unwrap();
    for &id in &ids[4..] {
        write(&store, Write::Delete { id, expected: 1 }).unwrap();
    }
    store.close();
    drop(store);
    // A snapshot of what recovery finds, replacing segment 1.
    let (mem, found) = recover_into_fresh(&dir, false).unwrap();
    drop(found);
    files::create_segment(&dir.dir(), 2).unwrap();
    snapshot_of(&dir, 2, &mem);
    assert!(!dir.segment(1).exists());

    let store = open(&dir, Options::default());
    let late = create_all(&store, 1)[0];
    let after = page(store.memory(), Some(cursor), 10).0;
    assert_eq!(after, [late], "the cursor handed out before the restart");
}

/// Users created after a restart list after every older user, with the log replayed from
/// segments and from a snapshot, after the newest users were deleted; a cursor handed out
/// before the restart finds them.
#[test]
fn users_created_after_a_restart_list_after_every_older_user() {
    for compact_bytes in [1 << 30, 1024] {
        let dir = TempDir::new("after");
        let options = Options {
            compact_bytes,
            ..Options::default()
        };
        let store = open(&dir, options.clone());
        let old = create_all(&store, 20);
        let cursor = Cursor(store.memory().next_seq() - 3);
        for &id in &old[17..] {
            write(&store, Write::Delete { id, expected: 1 }).unwrap();
        }
        store.close();
        drop(store);
        let store = open(&dir, options);
        let new = create_all(&store, 3);
        let all = page(store.memory(), None, 100).0;
        assert_eq!(
            all,
            [&old[..17], &new[..]].concat(),
            "compact {compact_bytes}"
        );
        let after = page(store.memory(), Some(cursor), 100).0;
        assert_eq!(after, new, "compact {compact_bytes}");
    }
}
