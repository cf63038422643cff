//! The durable store: every write goes to an append-only log on disk before it is
//! acknowledged; reads are served from the in-memory map ([`MemoryStore`]), exactly as with
//! `--in-memory`.
//!
//! # What `--sync` promises
//!
//! A `201 Created` means the user's log record was written (one `pwrite` per batch of
//! concurrent requests) and, depending on `--sync`:
//!
//! - `always` (the default): fdatasynced before the answer. The user survives a crash of the
//!   process, of the kernel and a power loss (given a disk that honours cache flushes).
//!   Concurrent writers share one write and one fdatasync (group commit): while one fdatasync
//!   runs the next batch gathers, so throughput grows with the number of concurrent writers.
//!   When fdatasyncs are slow (over 0.5 ms on average), a second may start beside the running
//!   one, so that a request waits for about one fdatasync rather than one and a half.
//! - `interval`: fdatasynced within about 100 ms (the writer thread fsyncs at most 100 ms after
//!   the first write since the last fsync). A crash of the process loses nothing once the
//!   answer was sent (the data is in the kernel's page cache); a kernel crash or power loss
//!   may lose the users acknowledged in the last ~100 ms.
//! - `none`: never fdatasynced by userd except when a segment is closed and at shutdown; the
//!   kernel writes the data back when it likes (typically within 30 s on Linux). A process
//!   crash loses nothing; a kernel crash or power loss may lose that much.
//!
//! A reader never sees a user before it is durable as above: records are applied to memory
//! only after their write (and fsync) succeeded.
//!
//! At shutdown userd reports how many writes and fdatasyncs the users took, for example
//! `userd: log closed: 477491 users in 27552 writes and 27553 fdatasyncs (0 on the fsync
//! threads)` (64 concurrent clients, fast disk: 17 users per fdatasync).
//!
//! # The data directory (`--data-dir`, default `./data`)
//!
//! ```text
//! LOCK                                   flock'ed by the running userd; holds its pid
//! snapshot-00000000000000000003.snap     every user as of the start of segment 3
//! segment-00000000000000000003.log       records written since (append-only)
//! segment-00000000000000000004.log       the active segment (the one being appended to)
//! snapshot-00000000000000000005.snap.tmp a snapshot being written (never read)
//! ```
//!
//! When the active segment passes `--compact-bytes` (default 64 MiB), userd fsyncs it, starts
//! the next segment (and fsyncs the directory), then, on another thread, writes a snapshot of
//! every user to a temporary file, fsyncs it, renames it into place, fsyncs the directory and
//! deletes the segments and snapshots it replaces. Writes go on meanwhile; a write to the
//! shard the snapshot is copying at that moment waits for the copy of that shard's index
//! (under 0.5 ms for 1.6 million users in the durable store's default of at least 64 shards;
//! 5 to 8 ms with 4); the snapshot's line on stderr says how long writes waited at most.
//! A second userd on the same directory refuses to start, naming the pid that holds `LOCK`.
//!
//! # Backups while running
//!
//! Files other than the active segment are never modified once complete, only deleted when a
//! newer snapshot replaces them; the active segment is only appended to. So a consistent copy
//! is: the newest `snapshot-N.snap` (if any), then every `segment-M.log` with `M >= N` in
//! ascending order; skip `LOCK` and `*.tmp`. If a file vanishes while you copy (a snapshot
//! finished meanwhile), start over. The copy of the active segment may end in a torn record;
//! recovery cuts it, so the backup holds every user acknowledged before the copy started
//! (and perhaps some after). To restore, put the files in an empty directory.
//!
//! # Recovery
//!
//! At start userd loads the newest snapshot, replays the segments after it in order, and
//! reports on stderr what it did, for example:
//!
//! ```text
//! userd: cut a torn record (the file ends inside a record) from data/segment-00000000000000000004.log at offset 36333995: 91 bytes dropped
//! userd: recovered 1623723 users from data in 440.04ms (snapshot-00000000000000000004.snap with 1381718 users; 1 segments, 247541 records replayed)
//! ```
//!
//! A torn last record of the last segment (what a crash mid-write leaves) is cut and reported
//! as above: it was never acknowledged. Damage anywhere else (a bad checksum mid-file, a
//! snapshot cut short, a missing segment) stops userd with an error naming the file and the
//! offset, because going on would silently drop acknowledged users. `--salvage` goes on
//! instead: it cuts the damaged file at that offset, keeps every sound record before it (and
//! the later segments), reports what it dropped, and rewrites a damaged snapshot.
//!
//! # Disk errors
//!
//! A write or fsync that fails is never acknowledged: the waiting requests get `503` with the
//! error envelope, and from then on every write gets `503` until userd is restarted, because
//! after a failed fsync the kernel may have dropped the data and a later fsync would succeed
//! without it. Reads go on. A full disk (`ENOSPC`) answers `Disk full: ...`; any other error
//! `Storage failure: ...`; the detail (file, errno) goes to stderr.
//!
//! The record format is described in [`record`].

mod faults;
mod files;
mod options;
mod recovery;
mod snapshot;
mod sync;
mod writer;

pub mod record;

pub use faults::{CrashPoint, FaultKind, Faults};
pub use options::{Options, SyncMode, DEFAULT_COMPACT_BYTES};

use super::{EmailChange, MemoryStore, Page, StoreError, Stored, UserStore};
use crate::users::{Cursor, UserId};
use bytes::Bytes;
use std::future::{ready, Future};
use std::io;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use tokio::sync::oneshot;
use writer::{Change, Job, Shared, Writer};

/// The answer to writes once the store is closed.
const CLOSED: &str = "userd is shutting down and takes no more writes";
/// The answer to a user whose record would exceed the format's limit.
const TOO_LARGE: &str = "The user is too large to store";

/// The durable store; see the module docs.
pub struct LogStore {
    /// The read path, shared with the writer (which applies committed records to it) and the
    /// snapshot thread (which walks it).
    mem: Arc<MemoryStore>,
    /// Requests to the writer thread.
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    /// The writer thread, until [`LogStore::close`] has joined it.
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl LogStore {
    /// Locks `dir` (creating it if missing), recovers its users into `mem`, reports the
    /// recovery on stderr and starts the writer thread.
    ///
    /// Fails if another process holds the directory, if a file is damaged (unless
    /// `options.salvage`), or on an I/O error; the message names the file and the offset.
    pub fn open(dir: &Path, mem: MemoryStore, options: Options) -> io::Result<Self> {
        let lock = files::lock(dir)?;
        let mem = Arc::new(mem);
        let found = recovery::recover(dir, &mem, options.salvage)?;
        for note in &found.notes {
            eprintln!("userd: {note}");
        }
        let snapshot = match &found.snapshot {
            Some((path, users)) => {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                format!("{name} with {users} users")
            }
            None => "no snapshot".into(),
        };
        eprintln!(
            "userd: recovered {} users from {} in {:.2?} ({snapshot}; {} segments, {} records \
             replayed)",
            found.users,
            dir.display(),
            found.elapsed,
            found.segments,
            found.replayed
        );
        let shared = Arc::new(Shared::default());
        let (jobs, queue) = mpsc::channel();
        let writer = Writer::new(
            dir.to_path_buf(),
            found.active,
            mem.clone(),
            options,
            shared.clone(),
            lock,
            jobs.clone(),
        )?;
        let thread = thread::Builder::new().name("userd-log".into());
        let writer = thread.spawn(move || writer.run(queue))?;
        Ok(LogStore {
            mem,
            jobs,
            shared,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Commits the writes already queued, fsyncs, waits for a running snapshot, stops the
    /// writer and releases the directory's lock. Later writes get `503`; reads go on. Calling
    /// it again does nothing.
    pub fn close(&self) {
        let _ = self.jobs.send(Job::Close);
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
    }

    /// The in-memory map the store reads from.
    pub fn memory(&self) -> &MemoryStore {
        &self.mem
    }

    /// Queues a change for the writer; the receiver gets the answer once it is durable (or
    /// refused).
    fn submit(
        &self,
        change: Change,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        if let Some(&why) = self.shared.failure.get() {
            return Err(StoreError::Unavailable(why));
        }
        let doc_len = match &change {
            Change::Create(_, doc) | Change::Update { doc, .. } => doc.len(),
            Change::Delete { .. } => 0,
        };
        // A create's record holds its sequence number too.
        if record::framed_len(doc_len) + 8 - record::HEADER_LEN > record::MAX_PAYLOAD {
            return Err(StoreError::Unavailable(TOO_LARGE));
        }
        let (ack, answer) = oneshot::channel();
        self.jobs
            .send(Job::Write(change, ack))
            .map_err(|_| StoreError::Unavailable(CLOSED))?;
        Ok(answer)
    }

    /// Queues `change` and waits for the writer's answer.
    fn write(&self, change: Change) -> impl Future<Output = Result<(), StoreError>> + Send {
        let queued = self.submit(change);
        async move {
            match queued {
                // A dropped answer means the writer stopped (closed) before committing it.
                Ok(answer) => answer.await.unwrap_or(Err(StoreError::Unavailable(CLOSED))),
                Err(e) => Err(e),
            }
        }
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl UserStore for LogStore {
    fn get(&self, id: UserId) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send {
        ready(Ok(self.mem.get_now(id)))
    }

    /// Claims the email here (so that of racing creates one wins at once), then logs the
    /// user; lets the email go again if the write is refused.
    fn create(
        &self,
        id: UserId,
        email_key: String,
        doc: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let claimed = self.mem.emails().claim(&email_key, id);
        let written = claimed.then(|| self.write(Change::Create(id, doc)));
        let mem = self.mem.clone();
        async move {
            let Some(written) = written else {
                return Err(StoreError::EmailTaken);
            };
            let result = written.await;
            if result.is_err() {
                mem.emails().release(&email_key, id);
            }
            result
        }
    }

    /// The writer checks the version and claims the new email when it takes the change (see the
    /// writer module); applying the record lets the old email go.
    fn update(
        &self,
        id: UserId,
        expected: u32,
        email: Option<EmailChange>,
        doc: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(Change::Update {
            id,
            expected,
            email,
            doc,
        })
    }

    /// The writer checks the version when it takes the change; applying the record lets the
    /// email go.
    fn delete(
        &self,
        id: UserId,
        expected: u32,
        _email_key: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.write(Change::Delete { id, expected })
    }

    fn list(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send {
        ready(Ok(self.mem.list_now(after, limit)))
    }

    fn len(&self) -> usize {
        self.mem.len()
    }
}

#[cfg(test)]
mod tests;
