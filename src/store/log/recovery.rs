//! Recovery at start: load the latest snapshot, replay the segments after it in order, cut a
//! torn tail, refuse (or with `--salvage`, cut) damage anywhere else, and make what was
//! recovered durable before anything is served.
//!
//! How a file's frames are read, and how a torn tail is told from damage, is in `scan`.
//!
//! # What was read is made durable
//!
//! The last segment is read through the page cache, which may hold what the disk does not:
//! records written but never fsynced (the process was killed), or, after a failed fdatasync,
//! pages that Linux kept in the cache marked clean, which a later fdatasync on a new file
//! descriptor would "succeed" without writing. Serving them, and acknowledging later writes
//! appended after them, would let a power cut take back what clients were shown. So the sound
//! part of the last segment is copied into a fresh file, fdatasynced, and renamed over the
//! segment (the directory fsynced) before the store opens: whatever recovery serves is then on
//! the disk.

use super::files::{self, with_path};
use super::fs::{Dir, FsFile, Open};
use super::record::{Damage, Record};
use super::snapshot;
use crate::store::MemoryStore;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod scan;

use scan::{is_torn, scan, Bad};

/// What recovery found and did, for the report at start, and where the writer goes on.
pub struct Recovery {
    /// Users in the store afterwards.
    pub users: usize,
    /// The snapshot loaded, and how many users it held.
    pub snapshot: Option<(PathBuf, u64)>,
    /// Segments replayed.
    pub segments: usize,
    /// Records replayed from them.
    pub replayed: u64,
    /// One line for every cut, deletion or rewrite recovery made.
    pub notes: Vec<String>,
    /// How long recovery took.
    pub elapsed: Duration,
    /// The segment to append to (durable as it stands), its sequence number and its length.
    pub active: (Arc<dyn FsFile>, u64, u64),
}

fn damaged(path: &Path, bad: &Bad) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "{} is damaged at offset {}: {}; refusing to start so as not to lose acknowledged \
             users. Restore the data directory from a backup, or start with --salvage to keep \
             the records before that offset and drop the rest of that file",
            path.display(),
            bad.offset,
            bad.damage
        ),
    )
}

/// Cuts `path` to `len` bytes and makes the cut durable.
fn cut(dir: &Dir, path: &Path, len: u64) -> io::Result<()> {
    let file = dir.fs.open(path, Open::Write)?;
    file.set_len(len)?;
    file.sync_data()
}

/// Loads the snapshot at `path` into `mem`; returns how many users it held, and whether it
/// was damaged (and `salvage` kept what came before the damage).
fn load_snapshot(
    dir: &Dir,
    path: &Path,
    covers: u64,
    mem: &MemoryStore,
    salvage: bool,
    notes: &mut Vec<String>,
) -> io::Result<(u64, bool)> {
    let (mut begun, mut ended, mut count) = (false, false, 0u64);
    let scan = scan(dir, path, |record| {
        match record {
            _ if ended => return Err(Damage::Misplaced("a record after the snapshot's end")),
            Record::SnapshotBegin { covers: c } if !begun && c == covers => begun = true,
            _ if !begun => return Err(Damage::Misplaced("the snapshot's header is missing")),
            Record::Create(..) => count += 1,
            Record::SnapshotEnd { count: n, .. } if n == count => ended = true,
            Record::SnapshotEnd { .. } => {
                return Err(Damage::Misplaced("the snapshot's count does not match"))
            }
            _ => return Err(Damage::Misplaced("a record a snapshot cannot hold")),
        }
        record.apply(mem);
        Ok(())
    })?;
    let bad = scan.bad.or((!ended).then_some(Bad {
        offset: scan.sound_end,
        damage: Damage::Misplaced("the snapshot ends before its end record"),
    }));
    match bad {
        None => Ok((count, false)),
        Some(bad) if salvage => {
            notes.push(format!(
                "salvage: {} is damaged at offset {} ({}); kept the {count} users before it",
                path.display(),
                bad.offset,
                bad.damage
            ));
            Ok((count, true))
        }
        Some(bad) => Err(damaged(path, &bad)),
    }
}

/// Rebuilds `mem` from the data directory `dir` (which the caller has locked).
pub fn recover(dir: &Dir, mem: &MemoryStore, salvage: bool) -> io::Result<Recovery> {
    let started = Instant::now();
    let listing = files::list(dir).map_err(|e| with_path(e, "cannot list", &dir.path))?;
    let mut notes = Vec::new();
    for temp in &listing.temps {
        dir.fs.remove(temp)?;
        notes.push(format!("removed the unfinished {}", temp.display()));
    }

    let mut snapshot = None;
    let mut rewrite = false;
    let base = match listing.snapshots.last_key_value() {
        Some((&covers, path)) => {
            let (users, damaged) = load_snapshot(dir, path, covers, mem, salvage, &mut notes)?;
            snapshot = Some((path.clone(), users));
            rewrite = damaged;
            covers
        }
        None => 1,
    };
    let covered = listing.snapshots.range(..base).count() + listing.segments.range(..base).count();
    if covered > 0 {
        // A crash between a snapshot's rename and the deletion of what it replaced.
        snapshot::remove_covered(dir, base)?;
        notes.push(format!("removed {covered} files that the snapshot covers"));
    }

    let segments: Vec<(u64, &PathBuf)> = listing
        .segments
        .range(base..)
        .map(|(&s, p)| (s, p))
        .collect();
    let mut replayed = 0;
    let mut expected = base;
    let mut last_len = 0;
    for (i, &(seq, path)) in segments.iter().enumerate() {
        if seq != expected {
            let gap = format!(
                "segments {expected} to {} are missing from {}",
                seq - 1,
                dir.path.display()
            );
            if !salvage {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{gap}; refusing to start (--salvage goes on without them)"),
                ));
            }
            notes.push(format!("salvage: {gap}; their records are lost"));
        }
        expected = seq + 1;
        let last = i + 1 == segments.len();
        let scan = scan(dir, path, |record| match record {
            Record::Create(..) | Record::Update(..) | Record::Delete(_) => {
                record.apply(mem);
                replayed += 1;
                Ok(())
            }
            Record::Synced { .. } => Ok(()),
            _ => Err(Damage::Misplaced("a snapshot record in a segment")),
        })?;
        last_len = scan.sound_end;
        let Some(bad) = scan.bad else { continue };
        let file_len = dir.fs.open(path, Open::Read)?.len()?;
        let what = if last && is_torn(dir, path, &bad)? {
            format!("cut a torn record ({})", bad.damage)
        } else if salvage {
            format!("salvage: cut damage ({})", bad.damage)
        } else {
            return Err(damaged(path, &bad));
        };
        if !last {
            cut(dir, path, bad.offset)?;
        }
        notes.push(format!(
            "{what} from {} at offset {}: {} bytes dropped",
            path.display(),
            bad.offset,
            file_len - bad.offset
        ));
    }

    let active = match segments.last() {
        Some(&(seq, _)) => (rewrite_durably(dir, seq, last_len)?, seq, last_len),
        None => (files::create_segment(dir, base)?, base, 0),
    };
    let active = if rewrite {
        // The damaged snapshot would be damaged again at the next start: replace it now with
        // one that covers everything recovered.
        let next = active.1 + 1;
        let file = files::create_segment(dir, next)?;
        let own = dir
            .fs
            .open(&dir.join(&files::segment_name(next)), Open::Write)?;
        let taken = snapshot::take(dir, next, mem, &own, None).map_err(|e| match e {
            snapshot::Failed::Snapshot(e) | snapshot::Failed::Segment(e) => e,
        })?;
        notes.push(format!(
            "salvage: wrote a fresh snapshot of {} users",
            taken.users
        ));
        (file, next, 0)
    } else {
        active
    };
    Ok(Recovery {
        users: mem.len(),
        snapshot,
        segments: segments.len(),
        replayed,
        notes,
        elapsed: started.elapsed(),
        active,
    })
}

/// Replaces segment `seq` with a copy of its first `len` bytes (its sound records) that is on
/// the disk: written to a fresh file, fdatasynced, renamed over the segment, the directory
/// fsynced (see the module docs). Returns the new segment, open to append to.
fn rewrite_durably(dir: &Dir, seq: u64, len: u64) -> io::Result<Arc<dyn FsFile>> {
    let path = dir.join(&files::segment_name(seq));
    let temp = dir.join(&files::segment_temp_name(seq));
    let old = dir.fs.open(&path, Open::Read)?;
    let copy = dir.fs.open(&temp, Open::Truncate)?;
    let mut buf = vec![0u8; (4 << 20).min(len as usize)];
    let mut at = 0;
    while at < len {
        let want = buf.len().min((len - at) as usize);
        let n = old.read_at(&mut buf[..want], at)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} got shorter while it was rewritten", path.display()),
            ));
        }
        copy.write_all_at(&buf[..n], at)?;
        at += n as u64;
    }
    copy.sync_data()?;
    dir.fs.rename(&temp, &path)?;
    dir.sync()?;
    dir.fs.open(&path, Open::Write)
}
