//! The in-memory store on its own: records, the write path, creation order and pages.

use super::*;
use crate::store::testing::TestUser;

fn get(store: &MemoryStore, id: UserId) -> Option<TestUser> {
    store.get_now(id, TestUser::of)
}

fn create(user: &TestUser) -> Write<'_> {
    Write::Create(user.view())
}

fn update(user: &TestUser, expected: u32) -> Write<'_> {
    Write::Update {
        expected,
        user: user.view(),
    }
}

/// Every user of the page walk, in order, `limit` at a time.
fn walk(store: &MemoryStore, limit: usize) -> Vec<UserId> {
    let (mut all, mut cursor) = (Vec::new(), None);
    loop {
        cursor = store.list_now(cursor, limit, |u| all.push(u.id));
        if cursor.is_none() {
            return all;
        }
    }
}

#[test]
fn users_come_back_as_they_were_stored() {
    let store = MemoryStore::new(4);
    let users: Vec<TestUser> = (0..5000)
        .map(|i| TestUser::new(&"n".repeat(i % 300), &format!("u{i}@x")))
        .collect();
    for u in &users {
        store.insert_now(&u.view());
    }
    for u in &users {
        assert_eq!(get(&store, u.id).as_ref(), Some(u));
    }
    assert_eq!(store.len(), 5000);
    assert!(!store.is_empty());
    assert_eq!(get(&store, UserId::random()), None);
    assert!(MemoryStore::new(1).is_empty());
}

#[test]
fn shard_count_is_a_power_of_two() {
    assert_eq!(MemoryStore::new(0).shard_count(), 1);
    assert_eq!(MemoryStore::new(6).shard_count(), 8);
    assert_eq!(MemoryStore::new(16).shard_count(), 16);
}

/// Users are spread over every shard.
#[test]
fn users_are_spread_over_the_shards() {
    let store = MemoryStore::new(8);
    for i in 0..800 {
        store.insert_now(&TestUser::new("n", &format!("u{i}@x")).view());
    }
    for shard in 0..8 {
        assert!(store.order_len(shard) > 50, "shard {shard}");
    }
}

/// Versions are compare-and-swap, emails unique, and the email a user lets go is free.
#[test]
fn writes_check_versions_and_emails() {
    let store = MemoryStore::new(2);
    let a = TestUser::new("a", "a@x");
    let b_taken = TestUser::new("b", "a@x");
    store.write_now(&create(&a)).unwrap();
    assert_eq!(
        store.write_now(&create(&b_taken)),
        Err(StoreError::EmailTaken)
    );
    assert_eq!(get(&store, b_taken.id), None);
    let b = TestUser::new("b", "b@x");
    store.write_now(&create(&b)).unwrap();
    // A stale version, a taken email: refused, nothing changes.
    assert_eq!(
        store.write_now(&update(&a.changed("a2", "a@x"), 2)),
        Err(StoreError::Stale)
    );
    assert_eq!(
        store.write_now(&update(&a.changed("a2", "b@x"), 1)),
        Err(StoreError::EmailTaken)
    );
    assert_eq!(store.version_now(a.id), Some(1));
    // Moving a to a new email frees the old one.
    let a2 = a.changed("a2", "c@x");
    store.write_now(&update(&a2, 1)).unwrap();
    assert_eq!(get(&store, a.id), Some(a2.clone()));
    assert_eq!(store.emails().holder("a@x"), None);
    assert_eq!(store.emails().holder("c@x"), Some(a.id));
    // Keeping the email keeps it held.
    let a3 = a2.changed("a3", "c@x");
    store.write_now(&update(&a3, 2)).unwrap();
    assert_eq!(store.emails().holder("c@x"), Some(a.id));
    // A delete needs the version too, and frees the email.
    let delete = |expected| Write::Delete { id: a.id, expected };
    assert_eq!(store.write_now(&delete(2)), Err(StoreError::Stale));
    store.write_now(&delete(3)).unwrap();
    assert_eq!(get(&store, a.id), None);
    assert_eq!(store.emails().holder("c@x"), None);
    assert_eq!(store.write_now(&delete(3)), Err(StoreError::Stale));
    assert_eq!(store.len(), 1);
    // A create of an id that exists is refused (ids are never reused).
    assert_eq!(
        store.write_now(&create(&b.changed("b", "z@x"))),
        Err(StoreError::Stale)
    );
}

/// What recovery does: applying a log twice leaves the state of applying it once, emails
/// included, whoever held a key in between.
#[test]
fn applying_changes_twice_changes_nothing() {
    let (a, b) = (TestUser::new("a", "a@x"), TestUser::new("b", "b@x"));
    let (a2, a3) = (
        a.changed("a2", "m@x"),
        a.changed("a3", "b@x").changed("a3", "b@x"),
    );
    let put = |u: &TestUser| Change::Put(Record::new(&u.view(), 0).unwrap());
    let log = [
        (put(&a), Some(1)),
        (put(&b), Some(2)),
        (put(&a2), None),
        (Change::Remove(b.id), None),
        (put(&a3), None),
    ];
    let store = MemoryStore::new(2);
    for _ in 0..2 {
        for (change, seq) in &log {
            store.apply(change, *seq);
        }
        assert_eq!(store.len(), 1);
        assert_eq!(get(&store, a.id), Some(a3.clone()));
        assert_eq!(store.emails().holder("b@x"), Some(a.id));
        assert_eq!(store.emails().holder("a@x"), None);
        assert_eq!(store.emails().holder("m@x"), None);
        assert_eq!(store.next_seq(), 3);
    }
}

/// An admitted change whose log write failed gives its claim back, unless the user held the
/// key already, whose slot then points at the user as it stands.
#[test]
fn an_abandoned_change_gives_its_claim_back() {
    let store = MemoryStore::new(2);
    let a = TestUser::new("a", "a@x");
    let new = Change::of(&create(&a)).unwrap();
    store.admit(&new, None, None).unwrap();
    assert_eq!(store.emails().holder("a@x"), Some(a.id));
    store.unclaim(&new);
    assert_eq!(store.emails().holder("a@x"), None);
    store.write_now(&create(&a)).unwrap();
    let same = Change::of(&update(&a.changed("a2", "a@x"), 1)).unwrap();
    store.admit(&same, Some(1), Some(1)).unwrap();
    store.unclaim(&same);
    assert_eq!(store.emails().holder("a@x"), Some(a.id));
    // A claim of a new key that the user's update then abandons: the new key is free, the
    // user's own still held.
    let moved = Change::of(&update(&a.changed("a2", "n@x"), 1)).unwrap();
    store.admit(&moved, Some(1), Some(1)).unwrap();
    assert_eq!(store.emails().holder("n@x"), Some(a.id));
    store.unclaim(&moved);
    assert_eq!(store.emails().holder("n@x"), None);
    assert_eq!(store.emails().holder("a@x"), Some(a.id));
    // Unclaiming a change that claimed nothing, or a removal, changes nothing.
    store.unclaim(&Change::Remove(a.id));
    store.unclaim(&same);
    assert_eq!(store.emails().holder("a@x"), Some(a.id));
}

/// Deleting most of a shard's users compacts its order, and gives its memory back; the list
/// still has every live user in creation order, before and after, and pages walk them all.
#[test]
fn the_list_survives_compaction_of_the_order() {
    let store = MemoryStore::new(1);
    let users: Vec<TestUser> = (0..500)
        .map(|i| TestUser::new("n", &format!("u{i}@x")))
        .collect();
    for u in &users {
        store.write_now(&create(u)).unwrap();
    }
    let mut alive: Vec<usize> = (0..500).collect();
    for (step, i) in (0..500).filter(|i| i % 5 != 0).enumerate() {
        let delete = Write::Delete {
            id: users[i].id,
            expected: 1,
        };
        store.write_now(&delete).unwrap();
        alive.retain(|&a| a != i);
        if step % 97 == 0 || alive.len() == 100 {
            let expected: Vec<UserId> = alive.iter().map(|&i| users[i].id).collect();
            assert_eq!(walk(&store, 1000), expected, "after {} deletes", step + 1);
        }
    }
    // 400 deletes: compacted at least once, and down to about the live entries.
    assert!(store.order_len(0) < 200, "{} entries", store.order_len(0));
    assert_eq!(walk(&store, 7).len(), 100);
    assert_eq!(walk(&store, 1).len(), 100);
}

/// A page is the users after the cursor in creation order, across shards, `limit` of them,
/// with a cursor exactly when more follow.
#[test]
fn pages_merge_the_shards_in_creation_order() {
    for shards in [1, 4, 64] {
        let store = MemoryStore::new(shards);
        let users: Vec<TestUser> = (0..300)
            .map(|i| TestUser::new("n", &format!("u{i}@x")))
            .collect();
        for u in &users {
            store.write_now(&create(u)).unwrap();
        }
        let ids: Vec<UserId> = users.iter().map(|u| u.id).collect();
        for limit in [1, 2, 7, 299, 300, 301] {
            assert_eq!(walk(&store, limit), ids, "{shards} shards, limit {limit}");
        }
        let mut page = Vec::new();
        let next = store.list_now(None, 300, |u| page.push(u.id));
        assert_eq!((page.len(), next), (300, None));
        let mut page = Vec::new();
        let next = store.list_now(None, 299, |u| page.push(u.id));
        assert_eq!(page, ids[..299]);
        assert!(next.is_some());
        let mut rest = Vec::new();
        assert_eq!(store.list_now(next, 10, |u| rest.push(u.id)), None);
        assert_eq!(rest, ids[299..]);
    }
}

/// The snapshot walk sees every user of a shard, in creation order, as stored.
#[test]
fn a_walk_of_the_shards_sees_every_user() {
    let store = MemoryStore::new(4);
    let users: Vec<TestUser> = (0..100)
        .map(|i| TestUser::new("n", &format!("u{i}@x")))
        .collect();
    for u in &users {
        store.write_now(&create(u)).unwrap();
    }
    let mut seen = Vec::new();
    for shard in 0..store.shard_count() {
        let mut last = 0;
        store.for_each_in_shard(shard, |r| {
            assert!(r.seq() > last);
            last = r.seq();
            seen.push(TestUser::of(r.view()));
        });
    }
    seen.sort_by_key(|u| u.email.clone());
    let mut expected = users.clone();
    expected.sort_by_key(|u| u.email.clone());
    assert_eq!(seen, expected);
}
