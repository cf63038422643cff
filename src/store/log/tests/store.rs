//! The store end to end: acknowledged writes survive reopening, on fast and slow disks, and
//! disk faults are never acknowledged.

use super::*;
use crate::store::testing::TestUser;

#[test]
fn what_is_acknowledged_survives_rotations_snapshots_and_reopening() {
    for sync in [SyncMode::Always, SyncMode::Interval, SyncMode::None] {
        let dir = TempDir::new("reopen");
        let options = Options {
            sync,
            compact_bytes: 2048,
            ..Options::default()
        };
        let store = open(&dir, options.clone());
        let all = users(300);
        // `insert` queues its write when called, so all are queued before the first await
        // and they share group commits.
        let writes: Vec<_> = all.iter().map(|user| store.write(create(user))).collect();
        block_on(async {
            for write in writes {
                write.await.unwrap();
            }
        });
        assert_holds_exactly(store.memory(), &all);
        drop(store);
        let store = open(&dir, options);
        assert_holds_exactly(store.memory(), &all);
        let listing = files::list(&dir.dir()).unwrap();
        assert!(
            listing.snapshots.len() <= 1 && listing.segments.len() <= 3,
            "{listing:?}"
        );
    }
}

#[test]
fn on_a_slow_disk_overlapping_fsyncs_lose_nothing_acknowledged() {
    let dir = TempDir::new("slow");
    let faults = Faults::new();
    faults.slow_syncs(std::time::Duration::from_millis(2));
    let options = Options {
        fs: faults.fs(),
        compact_bytes: 8192,
        ..Options::default()
    };
    let store = Arc::new(open(&dir, options));
    let all = Arc::new(users(400));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut writers = Vec::new();
        for w in 0..16 {
            let (store, all) = (store.clone(), all.clone());
            writers.push(tokio::spawn(async move {
                for user in all.iter().skip(w).step_by(16) {
                    store.write(create(user)).await.unwrap();
                }
            }));
        }
        for w in writers {
            w.await.unwrap();
        }
    });
    assert_holds_exactly(store.memory(), &all);
    drop(store);
    let store = open(&dir, Options::default());
    assert_holds_exactly(store.memory(), &all);
}

#[test]
fn after_a_failed_fsync_nothing_more_is_acknowledged_and_reads_go_on() {
    for (kind, outage) in [
        (FaultKind::Io, Outage::StorageFailed),
        (FaultKind::DiskFull, Outage::DiskFull),
    ] {
        let dir = TempDir::new("fault");
        let faults = Faults::new();
        let options = Options {
            fs: faults.fs(),
            ..Options::default()
        };
        let store = open(&dir, options);
        let all = users(4);
        let put = |i: usize| block_on(store.write(create(&all[i])));
        put(0).unwrap();
        faults.fail_sync(0, kind);
        let Err(StoreError::Unavailable(why)) = put(1) else {
            panic!("acknowledged")
        };
        assert_eq!(why, outage);
        assert_eq!(store.writable(), Err(outage));
        assert_eq!(put(2), Err(StoreError::Unavailable(why)));
        assert_holds_exactly(store.memory(), &all[..1]);
        drop(store);
        // The refused write's record may or may not have reached the disk; the acknowledged
        // one has.
        let store = open(&dir, Options::default());
        let mem = store.memory();
        assert_eq!(mem.get_now(all[0].id, TestUser::of).as_ref(), Some(&all[0]));
        assert!(mem.get_now(all[2].id, |_| ()).is_none());
        put_after_restart(&store, &all[3]);
    }
}

fn put_after_restart(store: &LogStore, user: &TestUser) {
    block_on(store.write(create(user))).unwrap();
    assert_eq!(
        store.memory().get_now(user.id, TestUser::of).as_ref(),
        Some(user)
    );
}

#[test]
fn a_write_cut_short_by_a_full_disk_is_refused_and_cut_at_restart() {
    let dir = TempDir::new("enospc");
    let faults = Faults::new();
    let store = open(
        &dir,
        Options {
            fs: faults.fs(),
            ..Options::default()
        },
    );
    let all = users(3);
    block_on(store.write(create(&all[0]))).unwrap();
    faults.fail_write(0, FaultKind::DiskFull);
    let refused = block_on(store.write(create(&all[1])));
    assert_eq!(refused, Err(StoreError::Unavailable(Outage::DiskFull)));
    // The refused create gave its email back.
    assert_eq!(store.memory().emails().holder(&all[1].email_key), None);
    drop(store);
    let mem = MemoryStore::new(4);
    let found = recover(&dir.dir(), &mem, false).unwrap();
    assert_holds_exactly(&mem, &all[..1]);
    assert!(found.notes[0].contains("torn"), "{:?}", found.notes);
}

/// Creates, updates and deletes go through the log: after reopening (from segments alone, and
/// from snapshots taken along the way) the users, their versions, their emails and their
/// creation order are what they were.
#[test]
fn updates_deletes_emails_and_creation_order_survive_reopening() {
    use crate::users::{NewUser, Patch, Users};
    for compact_bytes in [1 << 30, 2048] {
        let dir = TempDir::new("changes");
        let options = Options {
            compact_bytes,
            ..Options::default()
        };
        let users = Users::new(open(&dir, options.clone()));
        let mut ids = Vec::new();
        block_on(async {
            for i in 0..60 {
                let (name, email) = (format!("user {i}"), format!("u{i}@example.com"));
                let user = NewUser::parse(&name, &email).unwrap();
                ids.push(users.create(user, |u| u.id).await.unwrap());
            }
            for (i, id) in ids.iter().enumerate() {
                match i % 3 {
                    0 => {
                        users.delete(*id, |_| true).await.unwrap();
                    }
                    1 => {
                        let email = format!("moved{i}@example.com");
                        let patch = Patch::parse(Some("renamed"), Some(&email)).unwrap();
                        users.update(*id, patch, |v| v == 1, |_| ()).await.unwrap();
                    }
                    _ => {}
                }
            }
            // A stale version is refused; the freed email is free, the new one taken.
            let patch = Patch::parse(Some("x"), None).unwrap();
            let stale = users.update(ids[1], patch, |v| v == 1, |_| ()).await;
            assert_eq!(stale, Err(crate::users::Error::PreconditionFailed));
            let mut taken = TestUser::new("t", "moved1@example.com");
            taken.email = "MOVED1@example.com".into();
            let taken = users.store().write(Write::Create(taken.view()));
            assert_eq!(taken.await, Err(StoreError::EmailTaken));
        });
        let listed = |mem: &MemoryStore| {
            let mut all = Vec::new();
            assert_eq!(
                mem.list_now(None, 1000, |u| all.push(TestUser::of(u))),
                None
            );
            all
        };
        let before = listed(users.store().memory());
        assert_eq!(before.len(), 40);
        drop(users);
        let store = open(&dir, options);
        assert_eq!(
            listed(store.memory()),
            before,
            "compact_bytes {compact_bytes}"
        );
        let mem = store.memory();
        assert_eq!(mem.version_now(ids[1]), Some(2));
        assert_eq!(mem.version_now(ids[2]), Some(1));
        assert_eq!(mem.version_now(ids[0]), None);
        assert_eq!(mem.emails().holder("moved1@example.com"), Some(ids[1]));
        assert_eq!(mem.emails().holder("u1@example.com"), None);
        assert_eq!(mem.emails().holder("u0@example.com"), None);
        assert_eq!(mem.emails().holder("u2@example.com"), Some(ids[2]));
        // New users go after the recovered ones.
        let users = Users::new(store);
        block_on(async {
            let user = NewUser::parse("late", "late@example.com").unwrap();
            let late = users.create(user, |u| u.id).await.unwrap();
            let mut last = None;
            users
                .store()
                .memory()
                .list_now(None, 1000, |u| last = Some(u.id));
            assert_eq!(last, Some(late));
        });
    }
}
