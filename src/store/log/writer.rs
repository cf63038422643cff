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
//! Changes to existing users (update, delete) are compare-and-swap on the user's version: the
//! writer checks the expected version when it takes the change into a batch, against the
//! version the user will have once the batches already written are applied (`inflight`),
//! else the one in memory. The writer is the only thread that changes the store, so the
//! check and the write cannot interleave with another change. It also claims an update's new
//! email then; applying a record lets the old one go.
//!
//! Applying after the fsync means a reader never sees a user that is not yet durable, and
//! applying on this thread, in log order and before the next segment starts, means a snapshot
//! taken after a rotation holds every record of the segments before it.

use super::record::{self, Record};
use super::snapshot::Taken;
use super::sync::Syncers;
use super::{Options, SyncMode};
use crate::store::{EmailChange, MemoryStore, StoreError};
use crate::users::UserId;
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

mod disk;
mod upkeep;

/// The answer to a write: `Ok` once it is durable as `--sync` promises.
pub type Ack = oneshot::Sender<Result<(), StoreError>>;

/// A change to the users, as the store hands it to the writer.
pub enum Change {
    /// A new user (whose email the store has claimed).
    Create(UserId, Bytes),
    /// A user's whole new document, if its version is still `expected`.
    Update {
        /// The user.
        id: UserId,
        /// The version the change was decided on.
        expected: u32,
        /// The email the user takes and the one it lets go, if it changes.
        email: Option<EmailChange>,
        /// The new document (version `expected + 1`).
        doc: Bytes,
    },
    /// Remove a user, if its version is still `expected`.
    Delete {
        /// The user.
        id: UserId,
        /// The version the change was decided on.
        expected: u32,
    },
}

/// A change taken into a batch, as it is logged and applied.
enum Logged {
    /// A new user with its creation sequence number.
    Create(UserId, u64, Bytes),
    /// A user's new document, which holds version `.1`.
    Update(UserId, u32, Bytes),
    /// A user removed.
    Delete(UserId),
}

impl Logged {
    fn record(&self) -> Record<'_> {
        match self {
            Logged::Create(id, seq, doc) => Record::CreateAt(*id, *seq, doc),
            Logged::Update(id, _, doc) => Record::Update(*id, doc),
            Logged::Delete(id) => Record::Delete(*id),
        }
    }
}

/// What the store asks of the writer.
pub enum Job {
    /// Log and apply a change.
    Write(Change, Ack),
    /// Commit what is queued, fsync, wait for a running snapshot, and stop.
    Close,
    /// Fsync thread `syncer` finished its fsync `ticket`.
    Synced {
        /// Which fsync thread.
        syncer: usize,
        /// Which fsync, in the order they were started.
        ticket: u64,
        /// How it went.
        result: io::Result<()>,
        /// How long it took.
        took: Duration,
    },
}

/// Requests written together, each with the channel for its answer.
type Batch = Vec<(Logged, Ack)>;

/// State the store and the writer share.
#[derive(Default)]
pub struct Shared {
    /// Set once, when a write or fsync failed: from then on every write is refused with this
    /// message, since the kernel may have dropped the data of the failed fsync and a later
    /// fsync would succeed without it.
    pub failure: OnceLock<&'static str>,
}

/// Most requests in one batch, so that one batch's acknowledgements are not held back long.
const MAX_BATCH: usize = 4096;

/// How often `--sync interval` fsyncs.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(100);

/// The writer thread's state.
pub struct Writer {
    dir: PathBuf,
    /// The active segment, its sequence number and the bytes written to it.
    file: File,
    seq: u64,
    pos: u64,
    /// Bytes written since the store opened, over all segments: the log position.
    written: u64,
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
    snapshot: Option<JoinHandle<io::Result<Taken>>>,
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
    /// Held, never read: the directory's lock lasts as long as the writer.
    _lock: File,
}

impl Writer {
    /// A writer appending to `active` (file, sequence number, length) in `dir`.
    pub fn new(
        dir: PathBuf,
        active: (File, u64, u64),
        mem: Arc<MemoryStore>,
        options: Options,
        shared: Arc<Shared>,
        lock: File,
        events: Sender<Job>,
    ) -> io::Result<Self> {
        let (file, seq, pos) = active;
        let next_seq = mem.next_seq();
        let syncers = match options.sync {
            SyncMode::Always => Some(Syncers::start(dir.clone(), events, options.faults.clone())?),
            SyncMode::Interval | SyncMode::None => None,
        };
        Ok(Writer {
            dir,
            file,
            seq,
            pos,
            written: 0,
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
            _lock: lock,
        })
    }

    /// Takes a change into `batch`, or refuses it at once: a stale version, a taken email.
    fn accept(&mut self, change: Change, ack: Ack, batch: &mut Batch) {
        let current = |w: &Self, id: UserId| match w.inflight.get(&id) {
            Some(v) => *v,
            None => w.mem.version_now(id),
        };
        let logged = match change {
            Change::Create(id, doc) => {
                self.next_seq += 1;
                Logged::Create(id, self.next_seq - 1, doc)
            }
            Change::Update {
                id,
                expected,
                email,
                doc,
            } => {
                if current(self, id) != Some(expected) {
                    let _ = ack.send(Err(StoreError::Stale));
                    return;
                }
                if let Some(change) = email {
                    if !self.mem.emails().claim(&change.new, id) {
                        let _ = ack.send(Err(StoreError::EmailTaken));
                        return;
                    }
                }
                self.inflight.insert(id, Some(expected.wrapping_add(1)));
                Logged::Update(id, expected.wrapping_add(1), doc)
            }
            Change::Delete { id, expected } => {
                if current(self, id) != Some(expected) {
                    let _ = ack.send(Err(StoreError::Stale));
                    return;
                }
                self.inflight.insert(id, None);
                Logged::Delete(id)
            }
        };
        batch.push((logged, ack));
    }

    /// Serves `jobs` until [`Job::Close`] or until every sender is gone.
    pub fn run(mut self, jobs: Receiver<Job>) {
        let mut batch = Vec::new();
        while let Some(first) = self.next(&jobs) {
            let mut closing = false;
            for job in std::iter::once(first).chain(std::iter::from_fn(|| jobs.try_recv().ok())) {
                match job {
                    Job::Write(change, ack) => self.accept(change, ack, &mut batch),
                    Job::Close => closing = true,
                    Job::Synced {
                        syncer,
                        ticket,
                        result,
                        took,
                    } => self.synced(syncer, ticket, result, took),
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
            if !(self.dirty && self.options.sync == SyncMode::Interval) {
                return jobs.recv().ok();
            }
            let due = (self.last_sync + SYNC_INTERVAL).saturating_duration_since(Instant::now());
            match jobs.recv_timeout(due) {
                Ok(job) => return Some(job),
                Err(RecvTimeoutError::Timeout) => self.sync_or_fail("fsync of"),
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
            return answer(batch, Err(StoreError::Unavailable(why)));
        }
        self.buf.clear();
        for (logged, _) in batch.iter() {
            record::encode(&mut self.buf, &logged.record());
        }
        if let Err(e) = self.append() {
            let why = self.fail(&e, "write to", batch.len());
            return answer(batch, Err(StoreError::Unavailable(why)));
        }
        let Some(syncers) = &mut self.syncers else {
            return self.apply(batch);
        };
        self.pending
            .push_back((self.written, std::mem::take(batch)));
        if !syncers.fast() {
            return syncers.start_sync(self.seq, self.written);
        }
        // Fast fsyncs: run it here (see `super::sync`); it acknowledges the batch.
        if let Err(e) = self.sync() {
            self.fail(&e, "fsync of", 0);
        }
    }

    /// Takes an fsync's result: acknowledges what became durable, or fails the store; then
    /// starts the next fsync if more was written meanwhile.
    fn synced(&mut self, syncer: usize, ticket: u64, result: io::Result<()>, took: Duration) {
        let Some(syncers) = &mut self.syncers else {
            return;
        };
        self.counts[2] += u64::from(result.is_ok());
        self.counts[3] += u64::from(result.is_ok());
        let durable = syncers.finished(syncer, ticket, result, took);
        if self.shared.failure.get().is_some() {
            return; // what was pending is answered already; nothing is acknowledged now
        }
        match durable {
            Ok(Some(upto)) => self.acknowledge(upto),
            Ok(None) => {}
            Err(e) => {
                self.fail(&e, "fsync of", 0);
            }
        }
        if let Some(syncers) = &mut self.syncers {
            syncers.start_sync(self.seq, self.written);
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
            logged.record().apply(&self.mem);
            // The change is in memory now; a later one to the same user stays in flight.
            let (id, after) = match logged {
                Logged::Create(..) => continue,
                Logged::Update(id, version, _) => (id, Some(*version)),
                Logged::Delete(id) => (id, None),
            };
            if self.inflight.get(id) == Some(&after) {
                self.inflight.remove(id);
            }
        }
        if self.snapshot.is_some() {
            self.stall = self.stall.max(applying.elapsed());
        }
        self.counts[0] += batch.len() as u64;
        answer(batch, Ok(()));
    }
}

/// Answers every request of `batch` alike, and empties it.
fn answer(batch: &mut Batch, result: Result<(), StoreError>) {
    for (_, ack) in batch.drain(..) {
        // The client may have gone; its user is stored all the same.
        let _ = ack.send(result.clone());
    }
}
