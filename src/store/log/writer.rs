//! The writer thread: group commit (here), the disk and the failure policy (`disk`),
//! rotation, snapshots and closing (`upkeep`).
//!
//! One OS thread owns the active segment. Requests queue on a channel; each turn the writer
//! takes everything queued and writes it with one `pwrite`. With `--sync always` it then
//! starts an fdatasync on an fsync thread (see [`super::sync`]) and goes on taking requests;
//! when the fsync returns, the writer applies the batch's records to memory, then
//! acknowledges them. So while one fsync runs the next batch gathers, and the fsyncs per user
//! fall as concurrency grows. With `interval` and `none`, a batch is applied and acknowledged
//! right after its write.
//!
//! Every write is admitted by the memory store ([`MemoryStore::admit`]: the version check and
//! the email claim) when the writer takes it into a batch, against the version the user will
//! have once the batches already written are applied (`inflight`), else the one in memory.
//! The writer is the only thread that changes the store, so the check and the write cannot
//! interleave with another change; applying a record lets the user's old email go.
//!
//! A write that is stale only because of a change still in flight (a hot user, changed by
//! many clients at once) is not answered at once: its caller would read the user again, find
//! the old version (the change is not applied yet) and lose again, as often as it retries.
//! It waits instead until the user's in-flight changes are applied, then hears that it is
//! stale, and its next read sees what it lost to.
//!
//! Applying after the fsync means a reader never sees a user that is not yet durable, and
//! applying on this thread, in log order and before the next segment starts, means a snapshot
//! taken after a rotation holds every record of the segments before it.

use super::fs::{Dir, FsFile, Open};
use super::record::{self, Body, Record};
use super::snapshot::{Failed, Taken};
use super::sync::{Synced, Syncers, IN_FLIGHT};
use super::{Options, SyncMode};
use crate::store::memory::emails::Claim;
use crate::store::memory::{Change, MemoryStore};
use crate::store::{Outage, StoreError};
use crate::users::id::UserId;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

mod disk;
mod upkeep;

/// The answer to a write: `Ok` once it is durable as `--sync` promises.
pub type Ack = oneshot::Sender<Result<(), StoreError>>;

/// A write taken into a batch, as it is logged and applied: creates get their sequence
/// number here, in log order.
struct Logged {
    change: Change,
    seq: Option<u64>,
    /// What its admission claimed.
    claim: Claim,
}

impl Logged {
    fn record(&self) -> Record<'_> {
        match (&self.change, self.seq) {
            (Change::Put(r), Some(seq)) => Record::Create(r.id(), seq, Body::Stored(r)),
            (Change::Put(r), None) => Record::Update(r.id(), Body::Stored(r)),
            (Change::Remove(id), _) => Record::Delete(*id),
        }
    }
}

/// What the store asks of the writer.
pub enum Job {
    /// Log and apply a change decided on a version (`None` for a create).
    Write(Change, Option<u32>, Ack),
    /// Commit what is queued, fsync, wait for a running snapshot, and stop.
    Close,
    /// An fsync thread finished one of its fsyncs.
    Synced(Synced),
}

impl From<Synced> for Job {
    fn from(done: Synced) -> Self {
        Job::Synced(done)
    }
}

/// Requests written together, each with the channel for its answer.
type Batch = Vec<(Logged, Ack)>;

/// State the store and the writer share.
#[derive(Default)]
pub struct Shared {
    /// Set once, when a write or fsync failed: from then on every write is refused with this
    /// message, since the kernel may have dropped the data of the failed fsync and a later
    /// fsync would succeed without it.
    pub failure: OnceLock<Outage>,
    /// How often the writer woke up with nothing to do but an `--sync interval` fsync (so a
    /// test can tell a writer that sleeps from one that spins).
    pub idle_wakeups: std::sync::atomic::AtomicU64,
}

/// Most requests in one batch, so that one batch's acknowledgements are not held back long.
const MAX_BATCH: usize = 4096;

/// How often `--sync interval` fsyncs.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// The writer thread's state.
pub struct Writer {
    dir: Dir,
    /// The active segment, its sequence number and the bytes written to it.
    file: Arc<dyn FsFile>,
    seq: u64,
    pos: u64,
    /// Bytes written since the store opened, over all segments: the log position.
    written: u64,
    /// The log position where the active segment starts.
    segment_start: u64,
    /// The offset in the active segment that the last completed fsync covered, and the one
    /// the last `synced` record said (see `record.rs`).
    synced: u64,
    marked: u64,
    /// Batches written but not yet durable (`--sync always`), each with the log position
    /// where it ends, in log order.
    pending: VecDeque<(u64, Batch)>,
    /// The fsync threads (`--sync always` only).
    syncers: Option<Syncers>,
    mem: Arc<MemoryStore>,
    options: Options,
    shared: Arc<Shared>,
    /// The batch being encoded; kept to reuse its capacity.
    buf: Vec<u8>,
    /// The snapshot being taken, if any; at most one runs at a time.
    snapshot: Option<JoinHandle<Result<Taken, Failed>>>,
    /// The longest a batch waited to be applied while the snapshot walked the store.
    stall: Duration,
    /// Bytes written since the last fsync.
    dirty: bool,
    last_sync: Instant,
    /// Users, writes, fsyncs, and fsyncs on the fsync threads so far, reported at close.
    counts: [u64; 4],
    /// The creation sequence number of the next new user (the writer is the only creator).
    next_seq: u64,
    /// The version each user with a change in a batch not yet applied will have (`None`:
    /// deleted), so that the next change to it is checked against that.
    inflight: HashMap<UserId, Option<u32>>,
    /// Writes refused as stale because of a change in flight, by user: answered once the
    /// user has no change in flight (see the module docs).
    waiting: HashMap<UserId, Vec<Ack>>,
    /// Held, never read: the directory's lock lasts as long as the writer.
    _lock: Arc<dyn FsFile>,
}

impl Writer {
    /// A writer appending to `active` (file, sequence number, length) in `dir`, whose bytes
    /// are all on the disk (recovery made them so).
    pub fn new(
        dir: Dir,
        active: (Arc<dyn FsFile>, u64, u64),
        mem: Arc<MemoryStore>,
        options: Options,
        shared: Arc<Shared>,
        lock: Arc<dyn FsFile>,
        events: Sender<Job>,
    ) -> io::Result<Self> {
        let (file, seq, pos) = active;
        let next_seq = mem.next_seq();
        let syncers = match options.sync {
            SyncMode::Always => {
                let files = own_files(&dir, seq, IN_FLIGHT)?;
                Some(Syncers::start(events, files)?)
            }
            SyncMode::Interval | SyncMode::None => None,
        };
        Ok(Writer {
            dir,
            file,
            seq,
            pos,
            written: 0,
            segment_start: 0,
            synced: pos,
            marked: 0,
            pending: VecDeque::new(),
            syncers,
            mem,
            options,
            shared,
            buf: Vec::with_capacity(1 << 16),
            snapshot: None,
            stall: Duration::ZERO,
            dirty: false,
            last_sync: Instant::now(),
            counts: [0; 4],
            next_seq,
            inflight: HashMap::new(),
            waiting: HashMap::new(),
            _lock: lock,
        })
    }

    /// Takes a write into `batch`, or refuses it at once: a stale version, a taken email.
    fn accept(&mut self, change: Change, expected: Option<u32>, ack: Ack, batch: &mut Batch) {
        let id = change.id();
        let create = expected.is_none();
        // A create's id is fresh (a random UUID the rules just made): no user has it, and no
        // other write can name it before the create is answered, so it needs no lookup and no
        // place among the changes in flight.
        let current = match self.inflight.get(&id) {
            _ if create => None,
            Some(v) => *v,
            None => self.mem.version_now(id),
        };
        let claim = match self.mem.admit(&change, expected, current) {
            Ok(claim) => claim,
            Err(StoreError::Stale) if self.inflight.contains_key(&id) => {
                self.waiting.entry(id).or_default().push(ack);
                return;
            }
            Err(e) => {
                let _ = ack.send(Err(e));
                return;
            }
        };
        let seq = if create {
            self.next_seq += 1;
            Some(self.next_seq - 1)
        } else {
            self.inflight.insert(id, change.version_after());
            None
        };
        batch.push((Logged { change, seq, claim }, ack));
    }

    /// Serves `jobs` until [`Job::Close`] or until every sender is gone.
    pub fn run(mut self, jobs: Receiver<Job>) {
        let mut batch = Vec::new();
        while let Some(first) = self.next(&jobs) {
            let mut closing = false;
            for job in std::iter::once(first).chain(std::iter::from_fn(|| jobs.try_recv().ok())) {
                match job {
                    Job::Write(change, expected, ack) => {
                        self.accept(change, expected, ack, &mut batch)
                    }
                    Job::Close => closing = true,
                    Job::Synced(done) => self.synced(done),
                }
                if closing || batch.len() >= MAX_BATCH {
                    break;
                }
            }
            if closing {
                break;
            }
            // While no fsync can start, a write could not be fsynced yet anyway: let the batch
            // grow instead, into one write for the next fsync.
            if (self.syncers.as_ref()).is_none_or(|s| s.fast() || s.can_start()) {
                self.commit(&mut batch);
            }
            self.after_commit();
        }
        self.commit(&mut batch);
        self.finish();
    }

    /// Waits for the next job; with `--sync interval`, fsyncs when a wait outlasts the interval.
    fn next(&mut self, jobs: &Receiver<Job>) -> Option<Job> {
        loop {
            // After a failure nothing will be fsynced again: no deadline to wake for (a
            // deadline in the past would wake the writer at once, again and again).
            let interval = self.options.sync == SyncMode::Interval;
            if !(self.dirty && interval && self.shared.failure.get().is_none()) {
                return jobs.recv().ok();
            }
            let due = (self.last_sync + SYNC_INTERVAL).saturating_duration_since(Instant::now());
            match jobs.recv_timeout(due) {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Timeout) => {
                    self.shared.idle_wakeups.fetch_add(1, Ordering::Relaxed);
                    self.sync_or_fail("fsync of");
                }
                Err(RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    /// Writes `batch`, then applies and acknowledges it, now or (`--sync always`) once an
    /// fsync covers it; or answers it with the failure.
    fn commit(&mut self, batch: &mut Batch) {
        if batch.is_empty() {
            return;
        }
        if let Some(&why) = self.shared.failure.get() {
            return refuse(batch, &self.mem, why);
        }
        self.buf.clear();
        if self.synced > self.marked {
            record::encode(&mut self.buf, &Record::Synced { upto: self.synced });
            self.marked = self.synced;
        }
        for (logged, _) in batch.iter() {
            record::encode(&mut self.buf, &logged.record());
        }
        if let Err(e) = self.append() {
            let why = self.fail(&e, "write to", batch.len());
            return refuse(batch, &self.mem, why);
        }
        let Some(syncers) = &mut self.syncers else {
            return self.apply(batch);
        };
        self.pending
            .push_back((self.written, std::mem::take(batch)));
        if !syncers.fast() {
            return syncers.start_sync(self.written);
        }
        // Fast fsyncs: run it here (see `super::sync`); it acknowledges the batch.
        if let Err(e) = self.sync() {
            self.fail(&e, "fsync of", 0);
        }
    }

    /// Takes an fsync's result: acknowledges what became durable, or fails the store; then
    /// starts the next fsync if more was written meanwhile.
    fn synced(&mut self, done: Synced) {
        let Some(syncers) = &mut self.syncers else {
            return;
        };
        self.counts[2] += u64::from(done.result.is_ok());
        self.counts[3] += u64::from(done.result.is_ok());
        let durable = syncers.finished(done.syncer, done.ticket, done.result, done.took);
        if self.shared.failure.get().is_some() {
            return; // what was pending is answered already; nothing is acknowledged now
        }
        match durable {
            Ok(Some(upto)) => {
                if let Some(offset) = upto.checked_sub(self.segment_start) {
                    self.synced = self.synced.max(offset);
                }
                self.acknowledge(upto)
            }
            Ok(None) => {}
            Err(e) => {
                self.fail(&e, "fsync of", 0);
            }
        }
        if let Some(syncers) = &mut self.syncers {
            syncers.start_sync(self.written);
        }
    }

    /// Applies and acknowledges the pending batches that end at or before `upto`.
    fn acknowledge(&mut self, upto: u64) {
        while self.pending.front().is_some_and(|(end, _)| *end <= upto) {
            if let Some((_, mut batch)) = self.pending.pop_front() {
                self.apply(&mut batch);
            }
        }
    }

    /// Applies a durable batch to memory and acknowledges it.
    fn apply(&mut self, batch: &mut Batch) {
        let applying = Instant::now();
        for (logged, _) in batch.iter() {
            (self.mem).apply_claimed(&logged.change, logged.seq, logged.claim);
            // The write is in memory now; a later one to the same user stays in flight.
            let id = logged.change.id();
            if logged.seq.is_none()
                && self.inflight.get(&id) == Some(&logged.change.version_after())
            {
                self.inflight.remove(&id);
                for waiter in self.waiting.remove(&id).unwrap_or_default() {
                    let _ = waiter.send(Err(StoreError::Stale));
                }
            }
        }
        if self.snapshot.is_some() {
            self.stall = self.stall.max(applying.elapsed());
        }
        self.counts[0] += batch.len() as u64;
        answer(batch, Ok(()));
    }
}

/// `n` open file descriptions of segment `seq`, each its own (see `sync.rs` for why).
pub(super) fn own_files(dir: &Dir, seq: u64, n: usize) -> io::Result<Vec<Arc<dyn FsFile>>> {
    let path = dir.join(&super::files::segment_name(seq));
    (0..n).map(|_| dir.fs.open(&path, Open::Write)).collect()
}

/// Answers every request of `batch` alike, and empties it.
fn answer(batch: &mut Batch, result: Result<(), StoreError>) {
    for (_, ack) in batch.drain(..) {
        // The client may have gone; its user is stored all the same.
        let _ = ack.send(result);
    }
}

/// Refuses every request of `batch` with `why`, giving back the email keys they claimed
/// (they will never be applied), and empties it.
fn refuse(batch: &mut Batch, mem: &MemoryStore, why: Outage) {
    for (logged, _) in batch.iter() {
        mem.unclaim(&logged.change);
    }
    answer(batch, Err(StoreError::Unavailable(why)));
}
