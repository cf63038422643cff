//! The data directory: what its files are called, how they are listed, the directory fsync
//! and the lock file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// The lock file's name; it holds the pid of the userd that has the directory.
pub const LOCK: &str = "LOCK";

/// A segment's file name. The sequence number is zero-padded so names sort in log order.
pub fn segment_name(seq: u64) -> String {
    format!("segment-{seq:020}.log")
}

/// The file name of the snapshot that covers every segment before `covers`.
pub fn snapshot_name(covers: u64) -> String {
    format!("snapshot-{covers:020}.snap")
}

/// Where that snapshot is written before it is complete and renamed.
pub fn temp_name(covers: u64) -> String {
    format!("snapshot-{covers:020}.snap.tmp")
}

/// The files of a data directory, by kind; anything else found there is left alone.
#[derive(Debug, Default)]
pub struct Listing {
    /// Log segments by sequence number.
    pub segments: BTreeMap<u64, PathBuf>,
    /// Snapshots by the first segment they do not cover.
    pub snapshots: BTreeMap<u64, PathBuf>,
    /// Snapshots that were being written when a userd stopped; never complete.
    pub temps: Vec<PathBuf>,
}

/// Lists the segments, snapshots and temporary files of `dir`.
pub fn list(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let number = |prefix: &str, suffix: &str| -> Option<u64> {
            let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            (digits.len() == 20).then(|| digits.parse().ok()).flatten()
        };
        if let Some(seq) = number("segment-", ".log") {
            listing.segments.insert(seq, entry.path());
        } else if let Some(covers) = number("snapshot-", ".snap") {
            listing.snapshots.insert(covers, entry.path());
        } else if number("snapshot-", ".snap.tmp").is_some() {
            listing.temps.push(entry.path());
        }
    }
    Ok(listing)
}

/// Makes the directory's entries (files created, renamed or removed in it) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates an empty segment and makes its name durable before anything is written to it.
pub fn create_segment(dir: &Path, seq: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(dir.join(segment_name(seq)))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Creates `dir` if it is missing and takes its lock file, or says who holds it.
///
/// The lock is an advisory `flock` on `dir/LOCK`, held as long as the returned file is open;
/// the kernel drops it when the process ends, however it ends, so a crash leaves no stale lock.
pub fn lock(dir: &Path) -> io::Result<File> {
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(|e| with_path(e, "cannot create", dir))?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent)?;
        }
    }
    let path = dir.join(LOCK);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| with_path(e, "cannot open", &path))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "data directory {} is in use by another userd (pid {}, which holds {})",
                    dir.display(),
                    if holder.is_empty() { "unknown" } else { holder },
                    path.display()
                ),
            ));
        }
        Err(fs::TryLockError::Error(e)) => return Err(with_path(e, "cannot lock", &path)),
    }
    // The pid is only for the message above; a failure to write it is no reason to stop.
    let _ = file
        .set_len(0)
        .and_then(|()| file.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0));
    Ok(file)
}

/// Adds what was being done, and to which path, to an I/O error.
pub fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_in_log_order_and_parse_back() {
        assert!(segment_name(9) < segment_name(10));
        let dir = std::env::temp_dir().join(format!("userd-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for name in [
            segment_name(3),
            snapshot_name(3),
            temp_name(4),
            "notes.txt".into(),
        ] {
            File::create(dir.join(name)).unwrap();
        }
        let listing = list(&dir).unwrap();
        assert_eq!(listing.segments.keys().copied().collect::<Vec<_>>(), [3]);
        assert_eq!(listing.snapshots.keys().copied().collect::<Vec<_>>(), [3]);
        assert_eq!(listing.temps.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_lock_on_one_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("userd-lock-{}", std::process::id()));
        let first = lock(&dir).unwrap();
        let err = lock(&dir).unwrap_err();
        assert!(err.to_string().contains("in use by another userd"), "{err}");
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(first);
        drop(lock(&dir).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
