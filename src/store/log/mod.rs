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
//! A torn tail of the last segment (bad bytes beyond what any completed fdatasync covered, as
//! the writer's `synced` records tell: what a crash or a power cut leaves) is cut and reported
//! as above: it was never acknowledged with `--sync always`. Damage anywhere else (bad bytes a
//! completed fdatasync covered, a bad checksum in an earlier segment, a snapshot cut short, a
//! missing segment) stops userd with an error naming the file and the offset, because going on
//! would silently drop acknowledged users. `--salvage` goes on instead: it cuts the damaged
//! file at that offset, keeps every sound record before it (and the later segments), reports
//! what it dropped, and rewrites a damaged snapshot. Before the store opens, the last segment
//! is rewritten so that everything recovery read from it is on the disk (see `recovery.rs`).
//!
//! # Disk errors
//!
//! A write or fsync that fails is never acknowledged: the waiting requests get `503` with the
//! error envelope, and from then on every write gets `503` until userd is restarted, because
//! after a failed fsync the kernel may have dropped the data and a later fsync would succeed
//! without it. Reads go on. A full disk (`ENOSPC`) answers `Disk full: ...`; any other error
//! `Storage failure: ...`; the detail (file, errno) goes to stderr.
//!
//! The record format is described in [`record`]. Every file operation goes through [`fs::Fs`],
//! so that tests can run the store over a disk that fails on cue ([`Faults`]) or loses power
//! (a simulated disk, in the crate's tests).

mod faults;
mod files;
pub mod fs;
mod options;
mod recovery;
#[cfg(test)]
mod simdisk;
mod snapshot;
mod sync;
mod writer;

pub mod record;

pub use faults::{CrashPoint, FaultKind, Faults};
pub use options::{Options, SyncMode, DEFAULT_COMPACT_BYTES};

use super::memory::Change;
use super::{MemoryStore, Outage, StoreError, UserStore, UserView, Write};
use crate::users::id::UserId;
use crate::users::page::Cursor;
use std::future::{ready, Future};
use std::io;
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use tokio::sync::oneshot;
use writer::{Job, Shared, Writer};

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
        let dir = fs::Dir {
            fs: options.fs.clone(),
            path: dir.to_path_buf(),
        };
        let lock = files::lock(&dir)?;
        let mem = Arc::new(mem);
        let found = recovery::recover(&dir, &mem, options.salvage)?;
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
            dir.path.display(),
            found.elapsed,
            found.segments,
            found.replayed
        );
        let shared = Arc::new(Shared::default());
        let (jobs, queue) = mpsc::channel();
        let writer = Writer::new(
            dir,
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

    /// The in-memory map the store reads from.
    pub fn memory(&self) -> &MemoryStore {
        &self.mem
    }

    /// How often the writer woke with nothing to do but an `--sync interval` fsync.
    #[cfg(test)]
    fn idle_wakeups(&self) -> u64 {
        (self.shared.idle_wakeups).load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Queues a write for the writer (its record built here, on the caller's thread); the
    /// receiver gets the answer once it is durable (or refused).
    fn submit(
        &self,
        write: &Write<'_>,
    ) -> Result<oneshot::Receiver<Result<(), StoreError>>, StoreError> {
        self.writable().map_err(StoreError::Unavailable)?;
        // A record's strings are at most 64 KiB each, so its frame is far below the log's
        // largest payload: no size check is needed beyond the record's own.
        let change = Change::of(write)?;
        let (ack, answer) = oneshot::channel();
        self.jobs
            .send(Job::Write(change, write.expected(), ack))
            .map_err(|_| StoreError::Unavailable(Outage::Closed))?;
        Ok(answer)
    }
}

impl Drop for LogStore {
    fn drop(&mut self) {
        self.close();
    }
}

impl UserStore for LogStore {
    fn get<R, F>(
        &self,
        id: UserId,
        read: F,
    ) -> impl Future<Output = Result<Option<R>, StoreError>> + Send
    where
        R: Send,
        F: FnOnce(UserView<'_>) -> R + Send,
    {
        ready(Ok(self.mem.get_now(id, read)))
    }

    /// Queues the write for the writer thread, which admits it (version, email) when it takes
    /// it into a batch, and waits for the answer: once the write is durable, or refused.
    fn write<'a>(
        &'a self,
        write: Write<'a>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'a {
        let queued = self.submit(&write);
        async move {
            match queued {
                // A dropped answer means the writer stopped (closed) before committing it.
                Ok(answer) => answer
                    .await
                    .unwrap_or(Err(StoreError::Unavailable(Outage::Closed))),
                Err(e) => Err(e),
            }
        }
    }

    fn list<F>(
        &self,
        after: Option<Cursor>,
        limit: usize,
        each: F,
    ) -> impl Future<Output = Result<Option<Cursor>, StoreError>> + Send
    where
        F: FnMut(UserView<'_>) + Send,
    {
        ready(Ok(self.mem.list_now(after, limit, each)))
    }

    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send {
        ready(Ok(self.mem.len() as u64))
    }

    /// Writes stop for good after a failed write or fsync, and at close.
    fn writable(&self) -> Result<(), Outage> {
        match self.shared.failure.get() {
            Some(&why) => Err(why),
            None => Ok(()),
        }
    }

    /// Commits the writes already queued, fsyncs, waits for a running snapshot, stops the
    /// writer and releases the directory's lock. Later writes get `503`; reads go on. Calling
    /// it again does nothing.
    fn close(&self) {
        let _ = self.jobs.send(Job::Close);
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        // After the join: the writer commits what was queued before it saw the close.
        let _ = self.shared.failure.set(Outage::Closed);
    }
}

#[cfg(test)]
mod tests;
