//! The in-memory store on its own: documents, the write path, creation order.

use super::*;

fn create(id: UserId, key: &str, doc: &str) -> Write {
    Write::Create {
        id,
        email_key: key.into(),
        doc: Bytes::from(doc.to_owned()),
    }
}

fn update(id: UserId, expected: u32, key: &str, doc: &str) -> Write {
    Write::Update {
        id,
        expected,
        email_key: key.into(),
        doc: Bytes::from(doc.to_owned()),
    }
}

#[test]
fn documents_come_back_byte_for_byte() {
    let store = MemoryStore::new(4);
    let ids: Vec<(UserId, Vec<u8>)> = (0..5000)
        .map(|i| {
            (
                UserId::random(),
                format!("{{\"n\":{i}}}").repeat(i % 7 + 1).into_bytes(),
            )
        })
        .collect();
    for (id, doc) in &ids {
        store.insert_now(*id, doc);
    }
    for (id, doc) in &ids {
        assert_eq!(store.get_now(*id).map(|s| s.doc).as_deref(), Some(&doc[..]));
    }
    assert_eq!(store.len(), 5000);
    assert_eq!(store.get_now(UserId::random()), None);
}

#[test]
fn shard_count_is_a_power_of_two() {
    assert_eq!(MemoryStore::new(0).shard_count(), 1);
    assert_eq!(MemoryStore::new(6).shard_count(), 8);
    assert_eq!(MemoryStore::new(16).shard_count(), 16);
}

/// Versions are compare-and-swap, emails unique, and the email a user lets go is free.
#[test]
fn writes_check_versions_and_emails() {
    let store = MemoryStore::new(2);
    let (a, b) = (UserId::random(), UserId::random());
    store.write_now(&create(a, "a@x", "a1")).unwrap();
    assert_eq!(
        store.write_now(&create(b, "a@x", "b1")),
        Err(StoreError::EmailTaken)
    );
    assert_eq!(store.get_now(b), None);
    store.write_now(&create(b, "b@x", "b1")).unwrap();
    // A stale version, a taken email: refused, nothing changes.
    assert_eq!(
        store.write_now(&update(a, 2, "a@x", "a2")),
        Err(StoreError::Stale)
    );
    assert_eq!(
        store.write_now(&update(a, 1, "b@x", "a2")),
        Err(StoreError::EmailTaken)
    );
    assert_eq!(store.version_now(a), Some(1));
    // Moving a to a new email frees the old one.
    store.write_now(&update(a, 1, "c@x", "a2")).unwrap();
    assert_eq!(
        store.get_now(a).map(|s| (s.doc, s.version)),
        Some(("a2".into(), 2))
    );
    assert_eq!(store.emails().holder("a@x"), None);
    assert_eq!(store.emails().holder("c@x"), Some(a));
    // Keeping the email keeps it held.
    store.write_now(&update(a, 2, "c@x", "a3")).unwrap();
    assert_eq!(store.emails().holder("c@x"), Some(a));
    // A delete needs the version too, and frees the email.
    let delete = |expected| Write::Delete { id: a, expected };
    assert_eq!(store.write_now(&delete(2)), Err(StoreError::Stale));
    store.write_now(&delete(3)).unwrap();
    assert_eq!(store.get_now(a), None);
    assert_eq!(store.emails().holder("c@x"), None);
    assert_eq!(store.write_now(&delete(3)), Err(StoreError::Stale));
    assert_eq!(store.len(), 1);
    // A create of an id that exists is refused (ids are never reused).
    assert_eq!(
        store.write_now(&create(b, "z@x", "b2")),
        Err(StoreError::Stale)
    );
}

/// What recovery does: applying a log twice leaves the state of applying it once, emails
/// included, whoever held a key in between.
#[test]
fn applying_writes_twice_changes_nothing() {
    let (a, b) = (UserId::random(), UserId::random());
    let log = [
        (create(a, "a@x", "a1"), Some(1)),
        (create(b, "b@x", "b1"), Some(2)),
        (update(a, 1, "m@x", "a2"), None),
        (Write::Delete { id: b, expected: 1 }, None),
        (update(a, 2, "b@x", "a3"), None),
    ];
    let store = MemoryStore::new(2);
    for _ in 0..2 {
        for (write, seq) in &log {
            store.apply(write.id(), Change::of(write), *seq);
        }
        assert_eq!(store.len(), 1);
        assert_eq!(
            store.get_now(a).map(|s| (s.doc, s.version)),
            Some(("a3".into(), 3))
        );
        assert_eq!(store.emails().holder("b@x"), Some(a));
        assert_eq!(store.emails().holder("a@x"), None);
        assert_eq!(store.emails().holder("m@x"), None);
        assert_eq!(store.next_seq(), 3);
    }
}

/// An admitted write whose log write failed gives its claim back, unless the user held the
/// key already.
#[test]
fn an_abandoned_write_gives_its_claim_back() {
    let store = MemoryStore::new(2);
    let a = UserId::random();
    let new = create(a, "a@x", "a1");
    store.admit(&new, None).unwrap();
    assert_eq!(store.emails().holder("a@x"), Some(a));
    store.unclaim(&new);
    assert_eq!(store.emails().holder("a@x"), None);
    store.write_now(&new).unwrap();
    let same = update(a, 1, "a@x", "a2");
    store.admit(&same, Some(1)).unwrap();
    store.unclaim(&same);
    assert_eq!(store.emails().holder("a@x"), Some(a));
}

/// Deleting most of a shard's users compacts its order; the list still has every live user,
/// in creation order, before and after, and pages walk them all.
#[test]
fn the_list_survives_compaction_of_the_order() {
    let store = MemoryStore::new(1);
    let ids: Vec<UserId> = (0..500).map(|_| UserId::random()).collect();
    for (i, id) in ids.iter().enumerate() {
        store
            .write_now(&create(*id, &format!("u{i}@x"), &format!("\"{i}\"")))
            .unwrap();
    }
    let mut alive: Vec<usize> = (0..500).collect();
    for (step, i) in (0..500).filter(|i| i % 5 != 0).enumerate() {
        store
            .write_now(&Write::Delete {
                id: ids[i],
                expected: 1,
            })
            .unwrap();
        alive.retain(|&a| a != i);
        if step % 97 == 0 || alive.len() == 100 {
            let listed = store.list_now(None, 1000).docs;
            let expected: Vec<Bytes> = alive
                .iter()
                .map(|i| Bytes::from(format!("\"{i}\"")))
                .collect();
            assert_eq!(listed, expected, "after {} deletes", step + 1);
        }
    }
    let mut walked = Vec::new();
    let mut cursor = None;
    loop {
        let page = store.list_now(cursor, 7);
        walked.extend(page.docs);
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(walked.len(), 100);
}
