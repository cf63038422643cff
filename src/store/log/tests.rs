//! Tests over real files in a temporary directory: recovery and framing (`recovery`), the
//! store end to end with its failure policy (`store`), and the helpers they share.

use super::fs::{Dir, Open, RealFs};
use super::record::{encode, Body, Record};
use super::recovery::{recover, Recovery};
use super::*;
use crate::store::memory;
use crate::store::testing::TestUser;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

mod findings;
mod power;
mod recovery;
mod store;

/// A fresh directory under the system's temp dir, removed when dropped.
pub(super) struct TempDir(pub(super) PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("userd-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub(super) fn segment(&self, seq: u64) -> PathBuf {
        self.0.join(files::segment_name(seq))
    }

    /// The directory on the real file system.
    pub(super) fn dir(&self) -> Dir {
        Dir {
            fs: Arc::new(RealFs),
            path: self.0.clone(),
        }
    }
}

/// Takes a snapshot of `mem` covering the segments before `covers` (creating segment
/// `covers`, the active one, if it is missing).
pub(super) fn snapshot_of(dir: &TempDir, covers: u64, mem: &MemoryStore) -> snapshot::Taken {
    let active = dir.segment(covers);
    if !active.exists() {
        fs::write(&active, b"").unwrap();
    }
    let file = dir.dir().fs.open(&active, Open::Write).unwrap();
    match snapshot::take(&dir.dir(), covers, mem, &file, None) {
        Ok(taken) => taken,
        Err(e) => panic!("snapshot: {e:?}"),
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `n` users, each with an email of its own.
pub(super) fn users(n: usize) -> Vec<TestUser> {
    (0..n)
        .map(|i| {
            let mut u = TestUser::new(&format!("user {i}"), "");
            u.email = format!("{}@example.com", u.id);
            u.email_key = u.email.clone();
            u
        })
        .collect()
}

/// The store's record of `user`.
pub(super) fn record_of(user: &TestUser) -> memory::Record {
    memory::Record::new(&user.view(), seq_of(user.id)).unwrap()
}

/// The framed size of a `synced` record.
pub(super) const MARK_LEN: usize = 18;

/// The users' create records, framed, one batch each as the writer with `--sync always`
/// appends them (a `synced` record saying the batches before were fsynced, then the create),
/// and the offset where each batch starts. Sequence numbers are random, as a log that a
/// snapshot covers in part would have them.
pub(super) fn log_of(users: &[TestUser]) -> (Vec<u8>, Vec<usize>) {
    let (mut log, mut starts) = (Vec::new(), Vec::new());
    for user in users {
        starts.push(log.len());
        if !log.is_empty() {
            let upto = log.len() as u64;
            encode(&mut log, &Record::Synced { upto });
        }
        let record = record_of(user);
        encode(
            &mut log,
            &Record::Create(user.id, seq_of(user.id), Body::Stored(&record)),
        );
    }
    (log, starts)
}

/// A test user's sequence number: from its id, so that tests need not carry it.
pub(super) fn seq_of(id: UserId) -> u64 {
    (id.as_u128() as u64) >> 1
}

/// Puts a test user straight into `mem`, as recovery would.
pub(super) fn put_into(mem: &MemoryStore, user: &TestUser) {
    mem.apply(&memory::Change::Put(record_of(user)), Some(seq_of(user.id)));
}

/// The write that creates a test user.
pub(super) fn create(user: &TestUser) -> Write<'_> {
    Write::Create(user.view())
}

pub(super) fn recover_into_fresh(
    dir: &TempDir,
    salvage: bool,
) -> io::Result<(MemoryStore, Recovery)> {
    let mem = MemoryStore::new(4);
    let found = recover(&dir.dir(), &mem, salvage)?;
    Ok((mem, found))
}

/// The error recovery of `dir` fails with.
pub(super) fn refusal(dir: &TempDir) -> String {
    match recover_into_fresh(dir, false) {
        Ok(_) => panic!("recovery of {} went on", dir.0.display()),
        Err(e) => e.to_string(),
    }
}

pub(super) fn assert_holds_exactly(mem: &MemoryStore, users: &[TestUser]) {
    assert_eq!(mem.len(), users.len());
    for user in users {
        assert_eq!(
            mem.get_now(user.id, TestUser::of).as_ref(),
            Some(user),
            "user {}",
            user.id
        );
        assert_eq!(mem.emails().holder(&user.email_key), Some(user.id));
    }
}

pub(super) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

pub(super) fn open(dir: &TempDir, options: Options) -> LogStore {
    LogStore::open(&dir.0, MemoryStore::new(4), options).unwrap()
}
