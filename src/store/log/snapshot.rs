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
//! effect (see [`super::record`]).

use super::faults::CrashPoint;
use super::files::{self, with_path};
use super::record::{self, Put, Record};
use crate::store::MemoryStore;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::Path;
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

/// Writes a snapshot of `mem` that covers the segments before `covers`, then deletes them.
///
/// Walks the store one shard at a time (see [`MemoryStore::for_each_in_shard`]): a write to
/// a shard waits at most for a copy of that shard's index, not for the walk or the disk.
pub fn take(
    dir: &Path,
    covers: u64,
    mem: &MemoryStore,
    crash: Option<CrashPoint>,
) -> io::Result<Taken> {
    let started = Instant::now();
    let temp = dir.join(files::temp_name(covers));
    let written = write(&temp, covers, mem).map_err(|e| {
        let _ = fs::remove_file(&temp);
        with_path(e, "cannot write the snapshot", &temp)
    })?;
    CrashPoint::SnapshotWritten.check(crash);

    let path = dir.join(files::snapshot_name(covers));
    fs::rename(&temp, &path).map_err(|e| with_path(e, "cannot rename", &temp))?;
    CrashPoint::SnapshotRenamed.check(crash);
    files::sync_dir(dir)?;

    let listing = files::list(dir)?;
    let covered = (listing.snapshots.range(..covers))
        .chain(listing.segments.range(..covers))
        .map(|(_, p)| p);
    let mut removed = 0;
    for old in covered {
        fs::remove_file(old).map_err(|e| with_path(e, "cannot remove", old))?;
        removed += 1;
    }
    CrashPoint::SnapshotCleaned.check(crash);
    files::sync_dir(dir)?;
    Ok(Taken {
        users: written.0,
        bytes: written.1,
        removed,
        elapsed: started.elapsed(),
    })
}

/// Writes and fsyncs the snapshot file; returns the users and bytes written.
fn write(path: &Path, covers: u64, mem: &MemoryStore) -> io::Result<(u64, u64)> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut frame = Vec::with_capacity(512);
    let (mut users, mut bytes) = (0u64, 0u64);
    let mut put = |frame: &[u8], out: &mut BufWriter<File>| {
        bytes += frame.len() as u64;
        out.write_all(frame)
    };
    record::encode(&mut frame, &Record::SnapshotBegin { covers });
    put(&frame, &mut out)?;
    let mut failed = Ok(());
    for shard in 0..mem.shard_count() {
        mem.for_each_in_shard(shard, |user| {
            if failed.is_ok() {
                frame.clear();
                let state = Put {
                    version: user.version,
                    email_key: user.email_key,
                    doc: user.doc,
                };
                record::encode(&mut frame, &Record::Create(user.id, user.seq, state));
                failed = put(&frame, &mut out);
                users += 1;
            }
        });
    }
    failed?;
    frame.clear();
    record::encode(&mut frame, &Record::SnapshotEnd { count: users });
    put(&frame, &mut out)?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_data()?;
    Ok((users, bytes))
}
