//! The writer's work between batches and at the end: the `--sync interval` fsync, segment
//! rotation and the snapshot it starts, and closing.

use super::{own_files, Writer, SYNC_INTERVAL};
use crate::store::log::snapshot::{self, Failed};
use crate::store::log::sync::IN_FLIGHT;
use crate::store::log::{files, SyncMode};
use std::io;
use std::thread::{self, JoinHandle};
use std::time::Duration;

impl Writer {
    /// Interval fsync, snapshot bookkeeping and rotation, between batches.
    pub(super) fn after_commit(&mut self) {
        if self.dirty
            && self.options.sync == SyncMode::Interval
            && self.last_sync.elapsed() >= SYNC_INTERVAL
        {
            self.sync_or_fail("fsync of");
        }
        if self.snapshot.as_ref().is_some_and(JoinHandle::is_finished) {
            self.reap_snapshot();
        }
        if self.pos >= self.options.compact_bytes
            && self.snapshot.is_none()
            && self.shared.failure.get().is_none()
        {
            if let Err(e) = self.rotate() {
                self.fail(&e, "rotation of", 0);
            }
        }
    }

    /// Starts the next segment and a snapshot covering every segment before it.
    pub(super) fn rotate(&mut self) -> io::Result<()> {
        // The old segment complete on disk first, so that only the last segment can be torn.
        self.sync()?;
        let next = self.seq + 1;
        self.file = files::create_segment(&self.dir, next)?;
        (self.seq, self.pos, self.stall) = (next, 0, Duration::ZERO);
        (self.segment_start, self.synced, self.marked) = (self.written, 0, 0);
        // Every thread that fsyncs the new segment gets a description of its own, opened now,
        // while the name surely exists (a later snapshot deletes it).
        if let Some(syncers) = &mut self.syncers {
            syncers.switch(own_files(&self.dir, next, IN_FLIGHT)?);
        }
        let mut own = own_files(&self.dir, next, 1)?;
        let active = own.pop().ok_or_else(|| io::Error::other("no file"))?;
        let (dir, mem, crash) = (self.dir.clone(), self.mem.clone(), self.options.crash_at);
        let thread = thread::Builder::new().name("userd-snapshot".into());
        let take = move || snapshot::take(&dir, next, &mem, &active, crash);
        self.snapshot = Some(thread.spawn(take)?);
        Ok(())
    }

    /// Waits for the snapshot thread and reports how it went. A failed snapshot loses
    /// nothing (the segments it would have replaced stay), so writes go on.
    pub(super) fn reap_snapshot(&mut self) {
        let Some(thread) = self.snapshot.take() else {
            return;
        };
        match thread.join() {
            Ok(Ok(t)) => eprintln!(
                "userd: snapshot of {} users ({} bytes) written in {:.1?}; {} old files \
                 removed; writes waited at most {:.1?} for it",
                t.users, t.bytes, t.elapsed, t.removed, self.stall
            ),
            Ok(Err(Failed::Snapshot(e))) => eprintln!(
                "userd: snapshot failed: {e}; the segments stay and the next rotation retries"
            ),
            Ok(Err(Failed::Segment(e))) => {
                self.fail(&e, "fsync (for a snapshot) of", 0);
            }
            Err(_) => eprintln!("userd: the snapshot thread panicked; the segments stay"),
        }
    }

    /// Fsyncs what is written, waits for the snapshot, and reports the writer's counts.
    pub(super) fn finish(mut self) {
        if self.dirty {
            self.sync_or_fail("final fsync of");
        }
        if let Some(syncers) = self.syncers.take() {
            syncers.stop();
        }
        self.reap_snapshot();
        let [users, writes, syncs, overlapped] = self.counts;
        eprintln!(
            "userd: log closed: {users} users in {writes} writes and {syncs} fdatasyncs \
             ({overlapped} on the fsync threads)"
        );
    }
}
