//! Recovery at start: load the latest snapshot, replay the segments after it in order, cut a
//! torn tail, refuse (or with `--salvage`, cut) damage anywhere else.
//!
//! How a file's frames are read, and how a torn tail is told from damage, is in `scan`.

use super::files::{self, with_path};
use super::record::{Damage, Record};
use super::snapshot;
use crate::store::MemoryStore;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod scan;

use scan::{is_torn, scan, Bad};

/// What recovery found and did, for the report at start, and where the writer goes on.
#[derive(Debug)]
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
    /// The segment to append to, its sequence number and the length of its sound records.
    pub active: (File, u64, u64),
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
fn cut(path: &Path, len: u64) -> io::Result<()> {
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(len)?;
    file.sync_all()
}

/// Loads the snapshot at `path` into `mem`; returns how many users it held, or `None` if it was
/// damaged and `salvage` kept what came before the damage.
fn load_snapshot(
    path: &Path,
    covers: u64,
    mem: &MemoryStore,
    salvage: bool,
    notes: &mut Vec<String>,
) -> io::Result<(u64, bool)> {
    let (mut begun, mut ended, mut count) = (false, false, 0u64);
    let scan = scan(path, |record| {
        match record {
            _ if ended => return Err(Damage::Misplaced("a record after the snapshot's end")),
            Record::SnapshotBegin { covers: c } if !begun && c == covers => begun = true,
            _ if !begun => return Err(Damage::Misplaced("the snapshot's header is missing")),
            Record::Create(..) => count += 1,
            Record::SnapshotEnd { count: n } if n == count => ended = true,
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
pub fn recover(dir: &Path, mem: &MemoryStore, salvage: bool) -> io::Result<Recovery> {
    let started = Instant::now();
    let listing = files::list(dir).map_err(|e| with_path(e, "cannot list", dir))?;
    let mut notes = Vec::new();
    for temp in &listing.temps {
        fs::remove_file(temp)?;
        notes.push(format!(
            "removed the unfinished snapshot {}",
            temp.display()
        ));
    }

    let mut snapshot = None;
    let mut rewrite = false;
    let base = match listing.snapshots.last_key_value() {
        Some((&covers, path)) => {
            let (users, damaged) = load_snapshot(path, covers, mem, salvage, &mut notes)?;
            snapshot = Some((path.clone(), users));
            rewrite = damaged;
            covers
        }
        None => 1,
    };
    remove_covered(dir, &listing, base, &mut notes)?;

    let segments: Vec<(u64, &PathBuf)> = listing
        .segments
        .range(base..)
        .map(|(&s, p)| (s, p))
        .collect();
    let mut replayed = 0;
    let mut expected = base;
    for (i, &(seq, path)) in segments.iter().enumerate() {
        if seq != expected {
            let gap = format!(
                "segments {expected} to {} are missing from {}",
                seq - 1,
                dir.display()
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
        let scan = scan(path, |record| match record {
            Record::Create(..) | Record::Update(..) | Record::Delete(_) => {
                record.apply(mem);
                Ok(())
            }
            _ => Err(Damage::Misplaced("a snapshot record in a segment")),
        })?;
        replayed += scan.records;
        let Some(bad) = scan.bad else { continue };
        let file_len = fs::metadata(path)?.len();
        let what = if i + 1 == segments.len() && is_torn(path, &bad)? {
            format!("cut a torn record ({})", bad.damage)
        } else if salvage {
            format!("salvage: cut damage ({})", bad.damage)
        } else {
            return Err(damaged(path, &bad));
        };
        cut(path, bad.offset)?;
        notes.push(format!(
            "{what} from {} at offset {}: {} bytes dropped",
            path.display(),
            bad.offset,
            file_len - bad.offset
        ));
    }

    let active = match segments.last() {
        Some(&(seq, path)) => {
            let file = OpenOptions::new().read(true).write(true).open(path)?;
            let len = file.metadata()?.len();
            (file, seq, len)
        }
        None => (files::create_segment(dir, base)?, base, 0),
    };
    let active = if rewrite {
        // The damaged snapshot would be damaged again at the next start: replace it now with
        // one that covers everything recovered.
        let next = active.1 + 1;
        let file = files::create_segment(dir, next)?;
        let taken = snapshot::take(dir, next, mem, None)?;
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

/// Deletes the snapshots older than the one loaded and the segments it covers: a crash between
/// a snapshot's rename and the deletion of what it replaced leaves them behind.
fn remove_covered(
    dir: &Path,
    listing: &files::Listing,
    base: u64,
    notes: &mut Vec<String>,
) -> io::Result<()> {
    let covered: Vec<&PathBuf> = (listing.snapshots.range(..base).map(|(_, p)| p))
        .chain(listing.segments.range(..base).map(|(_, p)| p))
        .collect();
    if covered.is_empty() {
        return Ok(());
    }
    // The snapshot's rename must be durable before the files it replaces are gone.
    files::sync_dir(dir)?;
    for path in &covered {
        fs::remove_file(path)?;
    }
    files::sync_dir(dir)?;
    notes.push(format!(
        "removed {} files that the snapshot covers",
        covered.len()
    ));
    Ok(())
}
