//! Snapshots: every user in memory written to one file, so that the segments before it can go.
//!
//! A snapshot is written as `snapshot-N.snap.tmp`, fsynced, renamed to `snapshot-N.snap`, and
//! the directory fsynced; only then are the segments before N (and older snapshots) deleted.
//! At every step the directory holds a complete way back to the last acknowledged state:
//! before the rename, the old snapshot and the segments; after it, the new snapshot and
//! segments from N on (the old files, if still there, are removed at the next start).
//!
//! The writer starts segment N before the snapshot is taken and applies every record to
//! memory before it acknowledges it, so the snapshot holds every record of the segments
//! before N, and perhaps some of segment N, which replay then applies a second time to no
//! effect (see [`super::record`]). With `--sync interval` and `none` a record of segment N is
//! applied before it is fsynced, so the snapshot may hold state that is not yet on the disk:
//! segment N is fdatasynced before the snapshot is renamed into place, so that a power cut can
//! never leave a snapshot that is ahead of the log it stands on.

use super::faults::CrashPoint;
use super::files::{self, with_path};
use super::fs::{Dir, FsFile, Open};
use super::record::{self, Body, Record};
use crate::store::MemoryStore;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What taking a snapshot did.
#[derive(Debug, Clone, Copy)]
pub struct Taken {
    /// Users written.
    pub users: u64,
    /// Size of the snapshot file.
    pub bytes: u64,
    /// Old segments and snapshots deleted.
    pub removed: usize,
    /// How long it took.
    pub elapsed: Duration,
}

/// Why a snapshot failed.
#[derive(Debug)]
pub enum Failed {
    /// Writing, renaming or cleaning up the snapshot failed: nothing is lost, the segments
    /// stay.
    Snapshot(io::Error),
    /// The fdatasync of the active segment failed: its data may be gone (the store must stop
    /// taking writes).
    Segment(io::Error),
}

/// Writes a snapshot of `mem` that covers the segments before `covers` (`active` is segment
/// `covers`, opened for this snapshot alone), then deletes them.
///
/// Walks the store one shard at a time (see [`MemoryStore::for_each_in_shard`]): a write to
/// a shard waits at most for a copy of that shard's index, not for the walk or the disk.
pub fn take(
    dir: &Dir,
    covers: u64,
    mem: &MemoryStore,
    active: &Arc<dyn FsFile>,
    crash: Option<CrashPoint>,
) -> Result<Taken, Failed> {
    let started = Instant::now();
    let temp = dir.join(&files::temp_name(covers));
    let written = write(dir, covers, mem).map_err(|e| {
        let _ = dir.fs.remove(&temp);
        Failed::Snapshot(with_path(e, "cannot write the snapshot", &temp))
    })?;
    CrashPoint::SnapshotWritten.check(crash);

    // Everything the snapshot holds is in segments before `covers`, which are on the disk, or
    // in `active`, which may not be yet.
    active.sync_data().map_err(Failed::Segment)?;
    let path = dir.join(&files::snapshot_name(covers));
    (dir.fs.rename(&temp, &path))
        .map_err(|e| Failed::Snapshot(with_path(e, "cannot rename", &temp)))?;
    CrashPoint::SnapshotRenamed.check(crash);
    let removed = remove_covered(dir, covers).map_err(Failed::Snapshot)?;
    CrashPoint::SnapshotCleaned.check(crash);
    Ok(Taken {
        users: written.0,
        bytes: written.1,
        removed,
        elapsed: started.elapsed(),
    })
}

/// Deletes the snapshots older than the one covering `covers` and the segments it covers,
/// once its rename is durable; returns how many files went.
pub fn remove_covered(dir: &Dir, covers: u64) -> io::Result<usize> {
    dir.sync()?;
    let listing = files::list(dir)?;
    let covered: Vec<_> = (listing.snapshots.range(..covers))
        .chain(listing.segments.range(..covers))
        .map(|(_, p)| p)
        .collect();
    for old in &covered {
        (dir.fs.remove(old)).map_err(|e| with_path(e, "cannot remove", old))?;
    }
    if !covered.is_empty() {
        dir.sync()?;
    }
    Ok(covered.len())
}

/// Writes and fsyncs the snapshot file; returns the users and bytes written.
fn write(dir: &Dir, covers: u64, mem: &MemoryStore) -> io::Result<(u64, u64)> {
    let file = dir
        .fs
        .open(&dir.join(&files::temp_name(covers)), Open::Truncate)?;
    let mut out = Vec::with_capacity(1 << 20);
    let (mut users, mut at) = (0u64, 0u64);
    let flush = |out: &mut Vec<u8>, at: &mut u64| -> io::Result<()> {
        file.write_all_at(out, *at)?;
        *at += out.len() as u64;
        out.clear();
        Ok(())
    };
    record::encode(&mut out, &Record::SnapshotBegin { covers });
    // The sequence number to carry on from, read before the walk: every user the walk finds
    // was numbered below it, and later users get at least it.
    let next_seq = mem.next_seq();
    let mut failed = Ok(());
    for shard in 0..mem.shard_count() {
        mem.for_each_in_shard(shard, |user| {
            if failed.is_err() {
                return;
            }
            let record = Record::Create(user.id(), user.seq(), Body::Stored(user));
            record::encode(&mut out, &record);
            users += 1;
            if out.len() >= 1 << 20 {
                failed = flush(&mut out, &mut at);
            }
        });
    }
    failed?;
    record::encode(
        &mut out,
        &Record::SnapshotEnd {
            count: users,
            next_seq,
        },
    );
    flush(&mut out, &mut at)?;
    file.sync_data()?;
    Ok((users, at))
}
