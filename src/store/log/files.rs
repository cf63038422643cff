//! The data directory: what its files are called, how they are listed, new segments and the
//! lock file.

use super::fs::{Dir, FsFile, LockError, Open};
use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The lock file's name; it holds the pid of the userd that has the directory.
pub const LOCK: &str = "LOCK";

/// A segment's file name. The sequence number is zero-padded so names sort in log order.
pub fn segment_name(seq: u64) -> String {
    format!("segment-{seq:020}.log")
}

/// Where a segment is rewritten before it replaces the original (see recovery).
pub fn segment_temp_name(seq: u64) -> String {
    format!("segment-{seq:020}.log.tmp")
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
    /// Snapshots and segment rewrites that were under way when a userd stopped; never
    /// complete.
    pub temps: Vec<PathBuf>,
}

/// Lists the segments, snapshots and temporary files of `dir`.
pub fn list(dir: &Dir) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for name in dir.fs.list(&dir.path)? {
        let number = |prefix: &str, suffix: &str| -> Option<u64> {
            let digits = name.strip_prefix(prefix)?.strip_suffix(suffix)?;
            (digits.len() == 20).then(|| digits.parse().ok()).flatten()
        };
        let path = dir.join(&name);
        if let Some(seq) = number("segment-", ".log") {
            listing.segments.insert(seq, path);
        } else if let Some(covers) = number("snapshot-", ".snap") {
            listing.snapshots.insert(covers, path);
        } else if number("snapshot-", ".snap.tmp").is_some()
            || number("segment-", ".log.tmp").is_some()
        {
            listing.temps.push(path);
        }
    }
    Ok(listing)
}

/// Creates an empty segment and makes its name durable before anything is written to it.
pub fn create_segment(dir: &Dir, seq: u64) -> io::Result<Arc<dyn FsFile>> {
    let path = dir.join(&segment_name(seq));
    let file = dir
        .fs
        .open(&path, Open::CreateNew)
        .map_err(|e| with_path(e, "cannot create", &path))?;
    dir.sync()?;
    Ok(file)
}

/// Creates `dir` if it is missing and takes its lock file, or says who holds it.
///
/// The lock is an advisory `flock` on `dir/LOCK`, held as long as the returned file is open;
/// the kernel drops it when the process ends, however it ends, so a crash leaves no stale lock.
pub fn lock(dir: &Dir) -> io::Result<Arc<dyn FsFile>> {
    dir.fs
        .create_dir_all(&dir.path)
        .map_err(|e| with_path(e, "cannot create", &dir.path))?;
    let path = dir.join(LOCK);
    match dir.fs.lock(&path, &format!("{}\n", std::process::id())) {
        Ok(file) => Ok(file),
        Err(LockError::Held(holder)) => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            format!(
                "data directory {} is in use by another userd (pid {}, which holds {})",
                dir.path.display(),
                if holder.is_empty() {
                    "unknown"
                } else {
                    &holder
                },
                path.display()
            ),
        )),
        Err(LockError::Io(e)) => Err(with_path(e, "cannot lock", &path)),
    }
}

/// Adds what was being done, and to which path, to an I/O error.
pub fn with_path(e: io::Error, doing: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{doing} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::log::fs::RealFs;
    use std::fs::{self, File};

    fn real(path: &Path) -> Dir {
        Dir {
            fs: Arc::new(RealFs),
            path: path.to_path_buf(),
        }
    }

    #[test]
    fn names_sort_in_log_order_and_parse_back() {
        assert!(segment_name(9) < segment_name(10));
        let dir = std::env::temp_dir().join(format!("userd-files-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        for name in [
            segment_name(3),
            snapshot_name(3),
            temp_name(4),
            segment_temp_name(3),
            "notes.txt".into(),
        ] {
            File::create(dir.join(name)).unwrap();
        }
        let listing = list(&real(&dir)).unwrap();
        assert_eq!(listing.segments.keys().copied().collect::<Vec<_>>(), [3]);
        assert_eq!(listing.snapshots.keys().copied().collect::<Vec<_>>(), [3]);
        assert_eq!(listing.temps.len(), 2);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_lock_on_one_directory_is_refused() {
        let dir = std::env::temp_dir().join(format!("userd-lock-{}", std::process::id()));
        let first = lock(&real(&dir)).unwrap();
        let Err(err) = lock(&real(&dir)) else {
            panic!("a second lock was granted")
        };
        assert!(err.to_string().contains("in use by another userd"), "{err}");
        assert!(
            err.to_string().contains(&std::process::id().to_string()),
            "{err}"
        );
        drop(first);
        drop(lock(&real(&dir)).unwrap());
        fs::remove_dir_all(&dir).unwrap();
    }
}
