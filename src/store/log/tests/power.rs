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
use crate::store::testing::TestUser;
use crate::store::UserStore;
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;

/// One state of a user, as a write set it.
type State = TestUser;

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

/// One writer: creates users of its own, patches and deletes them, with emails drawn from a
/// small shared pool so that writers race for them.
async fn writer(store: Arc<LogStore>, model: Arc<Model>, mut rng: Rng, ops: usize) {
    let mut mine: Vec<TestUser> = Vec::new();
    for _ in 0..ops {
        let email = format!("e{}@x", rng.below(10));
        let name = "p".repeat(rng.below(900) as usize);
        let choice = if mine.is_empty() { 0 } else { rng.below(5) };
        let (id, state, expected) = match choice {
            0 | 1 => {
                let user = TestUser::new(&name, &email);
                (user.id, Some(user), None)
            }
            2 | 3 => {
                let current = &mine[rng.below(mine.len() as u64) as usize];
                let next = current.changed(&name, &email);
                (current.id, Some(next), Some(current.version))
            }
            _ => {
                let current = &mine[rng.below(mine.len() as u64) as usize];
                (current.id, None, Some(current.version))
            }
        };
        let write = match (&state, expected) {
            (Some(user), None) => Write::Create(user.view()),
            (Some(user), Some(expected)) => Write::Update {
                expected,
                user: user.view(),
            },
            (None, Some(expected)) => Write::Delete { id, expected },
            (None, None) => unreachable!("a delete is decided on a version"),
        };
        let create = expected.is_none();
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
            (Outcome::Acked, Some(s)) if create => mine.push(s),
            (Outcome::Acked, Some(s)) => {
                if let Some(m) = mine.iter_mut().find(|m| m.id == id) {
                    *m = s;
                }
            }
            (Outcome::Acked, None) => mine.retain(|m| m.id != id),
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
        let got = mem.get_now(*id, TestUser::of);
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
    let ids = |after, limit| {
        let mut ids = Vec::new();
        let next = mem.list_now(after, limit, |u| ids.push(u.id));
        (ids, next)
    };
    let listed = ids(None, 10_000).0;
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
    let first = ids(None, listed.len() / 2 + 1);
    let late = TestUser::new("late", "late@x");
    runtime
        .block_on(recovered.write(Write::Create(late.view())))
        .unwrap();
    let all = ids(None, 10_000).0;
    assert_eq!(all.last(), Some(&late.id), "seed {seed} {sync}");
    if let Some(cursor) = first.1 {
        let rest = ids(Some(cursor), 10_000).0;
        assert_eq!(rest, all[first.0.len()..], "seed {seed} {sync}: the cursor");
    }
    recovered.close();
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
