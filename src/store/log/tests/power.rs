//! Power cuts: random workloads of creates, patches and deletes from several writers on a
//! simulated disk, the power cut at a random moment (mid-batch, mid-rotation, mid-snapshot),
//! then recovery from what the disk kept. Userd must start without `--salvage`, and:
//!
//! - with `--sync always`, every acknowledged write is there, exactly as acknowledged or as a
//!   later write to the same user whose answer never came;
//! - with every mode, nothing exists that no one wrote, each user is in a state some write
//!   gave it, emails are unique, the list is in creation order, and a cursor and a user created
//!   after the restart behave.

use super::*;
use crate::store::log::simdisk::{Rng, SimDisk};
use crate::store::UserStore;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// One state of a user, as a write set it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct State {
    version: u32,
    email_key: String,
    doc: Bytes,
}

/// How a write was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Acknowledged: durable as the mode promises.
    Acked,
    /// Refused for a reason that means it was never applied (stale, email taken).
    Refused,
    /// Refused because the store failed: it may or may not have reached the disk.
    Unknown,
}

/// Everything written to one user, in order (one writer owns each user, so the writes to it
/// never race), and when its create was sent and acknowledged on the test's clock.
#[derive(Debug, Default)]
struct History {
    /// Each write's resulting state (`None`: deleted) and outcome.
    steps: Vec<(Option<State>, Outcome)>,
    created: (u64, Option<u64>),
}

#[derive(Default)]
struct Model {
    users: Mutex<HashMap<UserId, History>>,
    clock: AtomicU64,
}

impl Model {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::Relaxed)
    }
}

fn outcome(result: &Result<(), StoreError>) -> Outcome {
    match result {
        Ok(()) => Outcome::Acked,
        Err(StoreError::Stale | StoreError::EmailTaken) => Outcome::Refused,
        Err(StoreError::Unavailable(_)) => Outcome::Unknown,
    }
}

fn doc_for(id: UserId, version: u32, email: &str, pad: usize) -> Bytes {
    let pad = "p".repeat(pad);
    Bytes::from(format!(
        r#"{{"id":"{id}","email":"{email}","version":{version},"pad":"{pad}"}}"#
    ))
}

/// One writer: creates users of its own, patches and deletes them, with emails drawn from a
/// small shared pool so that writers race for them.
async fn writer(store: Arc<LogStore>, model: Arc<Model>, mut rng: Rng, ops: usize) {
    let mut mine: Vec<(UserId, u32, String)> = Vec::new();
    for _ in 0..ops {
        let email = format!("e{}@x", rng.below(10));
        let pad = rng.below(900) as usize;
        let choice = if mine.is_empty() { 0 } else { rng.below(5) };
        let (id, write, state) = match choice {
            0 | 1 => {
                let id = UserId::random();
                let doc = doc_for(id, 1, &email, pad);
                let state = State {
                    version: 1,
                    email_key: email.clone(),
                    doc: doc.clone(),
                };
                let write = Write::Create {
                    id,
                    email_key: email.clone(),
                    doc,
                };
                (id, write, Some(state))
            }
            2 | 3 => {
                let (id, version, _) = mine[rng.below(mine.len() as u64) as usize].clone();
                let doc = doc_for(id, version + 1, &email, pad);
                let state = State {
                    version: version + 1,
                    email_key: email.clone(),
                    doc: doc.clone(),
                };
                let write = Write::Update {
                    id,
                    expected: version,
                    email_key: email.clone(),
                    doc,
                };
                (id, write, Some(state))
            }
            _ => {
                let at = rng.below(mine.len() as u64) as usize;
                let (id, version, _) = mine[at].clone();
                (
                    id,
                    Write::Delete {
                        id,
                        expected: version,
                    },
                    None,
                )
            }
        };
        let create = matches!(write, Write::Create { .. });
        let sent = model.tick();
        let result = store.write(write).await;
        let done = model.tick();
        let outcome = outcome(&result);
        {
            let mut users = model.users.lock().unwrap();
            let history = users.entry(id).or_default();
            if create {
                history.created = (sent, (outcome == Outcome::Acked).then_some(done));
            }
            history.steps.push((state.clone(), outcome));
        }
        match (outcome, state) {
            (Outcome::Unknown, _) => return, // the store has failed: nothing more is taken
            (Outcome::Refused, _) => {}
            (Outcome::Acked, Some(s)) if create => mine.push((id, s.version, s.email_key)),
            (Outcome::Acked, Some(s)) => {
                if let Some(m) = mine.iter_mut().find(|m| m.0 == id) {
                    (m.1, m.2) = (s.version, s.email_key);
                }
            }
            (Outcome::Acked, None) => mine.retain(|m| m.0 != id),
        }
    }
}

/// The state user `id` may have after recovery (`None`: absent), given its history.
fn allowed(history: &History, sync: SyncMode) -> Vec<Option<State>> {
    let applied: Vec<&(Option<State>, Outcome)> = (history.steps.iter())
        .filter(|(_, o)| *o != Outcome::Refused)
        .collect();
    let last_acked = applied.iter().rposition(|(_, o)| *o == Outcome::Acked);
    // With `always` the state is at least the last acknowledged one; otherwise any state the
    // user went through (or none, if even its create was lost).
    let from = match (sync, last_acked) {
        (SyncMode::Always, Some(at)) => at,
        _ => 0,
    };
    let mut states: Vec<Option<State>> = applied[from..].iter().map(|(s, _)| s.clone()).collect();
    if sync != SyncMode::Always || last_acked.is_none() {
        states.push(None);
    }
    states
}

/// One case: a workload, a cut, recovery, the checks. Returns what the checks looked at.
fn power_cut_case(seed: u64, sync: SyncMode) {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let disk = SimDisk::new();
    let path = Path::new("/data");
    let compact_bytes = 400 + rng.below(3000);
    let options = |fs: &SimDisk| Options {
        sync,
        compact_bytes,
        fs: Arc::new(fs.clone()),
        ..Options::default()
    };
    let store = Arc::new(LogStore::open(path, MemoryStore::new(2), options(&disk)).unwrap());
    disk.cut_after(1 + rng.below(250));
    let model = Arc::new(Model::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        let writers: Vec<_> = (0..3)
            .map(|w| {
                let rng = Rng(rng.below(u64::MAX) | 1);
                tokio::spawn(writer(store.clone(), model.clone(), rng, 12 + w * 3))
            })
            .collect();
        for w in writers {
            w.await.unwrap();
        }
    });
    store.close();
    drop(store);
    disk.cut_now();
    let image = disk.after_power_cut(&mut rng);

    let recovered = LogStore::open(path, MemoryStore::new(2), options(&image))
        .unwrap_or_else(|e| panic!("seed {seed} {sync}: no start after the cut: {e}"));
    let mem = recovered.memory();
    let users = model.users.lock().unwrap();
    let mut keys = HashMap::new();
    for (id, history) in users.iter() {
        let got = mem.get_now(*id).map(|s| State {
            version: s.version,
            email_key: users_key(&s.doc),
            doc: s.doc,
        });
        let allowed = allowed(history, sync);
        assert!(
            allowed.contains(&got),
            "seed {seed} {sync}: user {id} is {got:?}; allowed {allowed:?}; history {history:?}"
        );
        if let Some(state) = got {
            assert_eq!(
                mem.emails().holder(&state.email_key),
                Some(*id),
                "seed {seed} {sync}: the email of {id} is not held by it"
            );
            if let Some(other) = keys.insert(state.email_key.clone(), *id) {
                panic!(
                    "seed {seed} {sync}: {} held by {id} and {other}",
                    state.email_key
                );
            }
        }
    }
    assert_eq!(
        mem.len(),
        keys.len(),
        "seed {seed} {sync}: users no one wrote"
    );

    // Creation order: a create acknowledged before another was sent lists before it.
    let listed: Vec<UserId> = mem
        .list_now(None, 10_000)
        .docs
        .iter()
        .map(|d| users_id(d))
        .collect();
    let place: HashMap<UserId, usize> = listed.iter().enumerate().map(|(i, id)| (*id, i)).collect();
    for (a, ha) in users.iter() {
        for (b, hb) in users.iter() {
            if let (Some(pa), Some(pb), Some(acked)) = (place.get(a), place.get(b), ha.created.1) {
                if acked < hb.created.0 {
                    assert!(pa < pb, "seed {seed} {sync}: {a} lists after {b}");
                }
            }
        }
    }

    // A cursor from a first page, and a user created after the restart: the rest of the walk
    // is exactly the users after the cursor, the new one last.
    let first = mem.list_now(None, listed.len() / 2 + 1);
    let late = UserId::random();
    let create = Write::Create {
        id: late,
        email_key: "late@x".into(),
        doc: doc_for(late, 1, "late@x", 0),
    };
    runtime.block_on(recovered.write(create)).unwrap();
    let all = mem.list_now(None, 10_000).docs;
    assert_eq!(
        all.last().map(|d| users_id(d)),
        Some(late),
        "seed {seed} {sync}"
    );
    if let Some(cursor) = first.next {
        let rest = mem.list_now(Some(cursor), 10_000).docs;
        assert_eq!(
            rest,
            all[first.docs.len()..],
            "seed {seed} {sync}: the cursor"
        );
    }
    recovered.close();
}

/// The email key a test document holds.
fn users_key(doc: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(doc).unwrap();
    v["email"].as_str().unwrap().to_owned()
}

/// The id a test document holds.
fn users_id(doc: &[u8]) -> UserId {
    let v: serde_json::Value = serde_json::from_slice(doc).unwrap();
    UserId::parse(v["id"].as_str().unwrap()).unwrap()
}

/// At least 1000 cuts in all: most with `--sync always`, whose promise is the strongest.
#[test]
fn after_a_power_cut_at_any_moment_userd_starts_with_every_acknowledged_write() {
    for seed in 0..900 {
        power_cut_case(seed, SyncMode::Always);
    }
}

#[test]
fn after_a_power_cut_with_sync_interval_or_none_the_state_is_one_that_existed() {
    for seed in 0..150 {
        power_cut_case(seed, SyncMode::Interval);
        power_cut_case(seed, SyncMode::None);
    }
}
