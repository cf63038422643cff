//! The writer's side of the disk: appending a batch, fsyncing, and the failure policy.

use super::{refuse, Writer};
use crate::store::log::{files, SyncMode};
use crate::store::{Outage, StoreError};
use std::io;
use std::time::Instant;

impl Writer {
    /// Writes the encoded batch at the end of the segment.
    pub(super) fn append(&mut self) -> io::Result<()> {
        self.file.write_all_at(&self.buf, self.pos)?;
        self.pos += self.buf.len() as u64;
        self.written += self.buf.len() as u64;
        self.dirty = true;
        self.counts[1] += 1;
        Ok(())
    }

    /// Fsyncs the active segment on this thread; everything written is then durable.
    pub(super) fn sync(&mut self) -> io::Result<()> {
        let started = Instant::now();
        self.file.sync_data()?;
        self.synced = self.pos;
        if let Some(syncers) = &mut self.syncers {
            syncers.timed(started.elapsed());
        }
        self.dirty = false;
        self.last_sync = Instant::now();
        self.counts[2] += 1;
        self.acknowledge(self.written);
        Ok(())
    }

    pub(super) fn sync_or_fail(&mut self, doing: &str) {
        if self.shared.failure.get().is_none() {
            if let Err(e) = self.sync() {
                self.fail(&e, doing, 0);
            }
        }
    }

    /// Records a failed write or fsync: from now on every write is refused. Returns why,
    /// for the answers.
    pub(super) fn fail(&mut self, e: &io::Error, doing: &str, refused: usize) -> Outage {
        let why = if e.kind() == io::ErrorKind::StorageFull {
            Outage::DiskFull
        } else {
            Outage::StorageFailed
        };
        let why = *self.shared.failure.get_or_init(|| why);
        let path = self.dir.join(&files::segment_name(self.seq));
        let refused = refused + self.pending.iter().map(|(_, b)| b.len()).sum::<usize>();
        for (_, mut batch) in std::mem::take(&mut self.pending) {
            refuse(&mut batch, &self.mem, why);
        }
        self.inflight.clear();
        for (_, waiters) in self.waiting.drain() {
            for waiter in waiters {
                let _ = waiter.send(Err(StoreError::Unavailable(why)));
            }
        }
        eprintln!(
            "userd: {doing} {} failed: {e}; {refused} pending writes refused, and every write \
             from now on until userd is restarted (reads go on)",
            path.display()
        );
        if self.options.sync != SyncMode::Always && doing != "write to" {
            eprintln!("userd: writes acknowledged since the last good fsync may be lost");
        }
        why
    }
}
