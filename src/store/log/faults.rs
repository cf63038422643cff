//! Test hooks: a file system that fails on cue ([`Faults`]), and named points where the
//! process may be made to crash ([`CrashPoint`]).
//!
//! Neither costs anything when unused: faults live in a file system layer that only tests put
//! under the store, and a crash point is one comparison of an `Option`.

use super::fs::{Fs, FsFile, LockError, Open, RealFs};
use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The error a fault makes the disk return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// `EIO`: the device failed.
    Io,
    /// `ENOSPC`: the file system is full.
    DiskFull,
}

impl FaultKind {
    fn error(self) -> io::Error {
        // Linux's numbers; std maps them to `ErrorKind` (ENOSPC to `StorageFull`), which is
        // all the writer looks at.
        const EIO: i32 = 5;
        const ENOSPC: i32 = 28;
        io::Error::from_raw_os_error(match self {
            FaultKind::Io => EIO,
            FaultKind::DiskFull => ENOSPC,
        })
    }
}

/// One armed fault: how many more operations succeed first, and the error after them.
type Armed = Option<(u64, FaultKind)>;

/// Faults to inject into a log store's segment writes and fsyncs, armed by a test while the
/// store serves; share it by cloning, and put [`Faults::fs`] under the store.
///
/// A write fault writes all of the buffer but its last byte and then fails, as a disk that
/// fills up mid-write does, so the segment is left with a torn tail for recovery to cut. An fsync
/// fault fails after the data reached the page cache, as a failing device does: the records
/// may or may not survive, and they are never acknowledged.
///
/// It can also make every fsync slow, as on a disk that flushes a write cache, so that tests
/// exercise the writer's overlapping fsyncs (see `sync.rs`) whatever the test machine's disk.
#[derive(Clone, Default, Debug)]
pub struct Faults(Arc<Mutex<State>>);

#[derive(Default, Debug)]
struct State {
    armed: [Armed; 2],
    sync_delay: Duration,
}

const WRITE: usize = 0;
const SYNC: usize = 1;

impl Faults {
    /// No faults armed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The real file system with these faults in its segment files.
    pub fn fs(&self) -> Arc<dyn Fs> {
        Arc::new(FaultFs {
            inner: RealFs,
            faults: self.clone(),
        })
    }

    /// Lets `after` more segment writes succeed, then fails the next one with `kind`.
    pub fn fail_write(&self, after: u64, kind: FaultKind) {
        self.arm(WRITE, after, kind);
    }

    /// Lets `after` more segment fsyncs succeed, then fails the next one with `kind`.
    pub fn fail_sync(&self, after: u64, kind: FaultKind) {
        self.arm(SYNC, after, kind);
    }

    /// Makes every segment fsync from now on take at least `delay` longer.
    pub fn slow_syncs(&self, delay: Duration) {
        self.state().sync_delay = delay;
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn arm(&self, which: usize, after: u64, kind: FaultKind) {
        self.state().armed[which] = Some((after, kind));
    }

    fn fire(&self, which: usize) -> Option<io::Error> {
        let armed = &mut self.state().armed;
        match armed[which] {
            Some((0, kind)) => {
                armed[which] = None;
                Some(kind.error())
            }
            Some((n, kind)) => {
                armed[which] = Some((n - 1, kind));
                None
            }
            None => None,
        }
    }
}

/// A file system whose segment files fail as [`Faults`] says.
struct FaultFs<F> {
    inner: F,
    faults: Faults,
}

/// A segment file under [`Faults`].
struct FaultFile {
    inner: Arc<dyn FsFile>,
    faults: Faults,
}

impl FsFile for FaultFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        if let Some(e) = self.faults.fire(WRITE) {
            // As a disk filling up mid-write would: part of the batch lands (here all but its
            // last byte, so that the last record is always torn), then the error.
            self.inner
                .write_all_at(&buf[..buf.len().saturating_sub(1)], offset)?;
            return Err(e);
        }
        self.inner.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        let delay = self.faults.state().sync_delay;
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        match self.faults.fire(SYNC) {
            Some(e) => Err(e),
            None => self.inner.sync_data(),
        }
    }
}

impl<F: Fs> Fs for FaultFs<F> {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        self.inner.create_dir_all(dir)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        self.inner.list(dir)
    }

    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn FsFile>> {
        let file = self.inner.open(path, how)?;
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.starts_with("segment-") && name.ends_with(".log") && how != Open::Read {
            return Ok(Arc::new(FaultFile {
                inner: file,
                faults: self.faults.clone(),
            }));
        }
        Ok(file)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        self.inner.remove(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.inner.sync_dir(dir)
    }

    fn lock(&self, path: &Path, holder: &str) -> Result<Arc<dyn FsFile>, LockError> {
        self.inner.lock(path, holder)
    }
}

/// A point in snapshotting where `--crash-at` makes userd abort, as if the power went or the
/// process was killed there: tests restart it and check that nothing acknowledged is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// The snapshot's temporary file is written and fsynced, not yet renamed.
    SnapshotWritten,
    /// The snapshot is renamed into place; the directory is not yet fsynced.
    SnapshotRenamed,
    /// The segments and snapshots the new snapshot covers are deleted.
    SnapshotCleaned,
}

const POINTS: [(CrashPoint, &str); 3] = [
    (CrashPoint::SnapshotWritten, "snapshot-written"),
    (CrashPoint::SnapshotRenamed, "snapshot-renamed"),
    (CrashPoint::SnapshotCleaned, "snapshot-cleaned"),
];

impl CrashPoint {
    /// Aborts the process if `armed` is this point.
    pub(super) fn check(self, armed: Option<CrashPoint>) {
        if armed == Some(self) {
            eprintln!("userd: crash point {self} reached; aborting");
            std::process::abort();
        }
    }
}

impl fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = POINTS
            .iter()
            .find(|(p, _)| p == self)
            .map_or("?", |(_, n)| n);
        f.write_str(name)
    }
}

impl FromStr for CrashPoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        POINTS
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(p, _)| *p)
            .ok_or_else(|| {
                let names: Vec<&str> = POINTS.iter().map(|(_, n)| *n).collect();
                format!("unknown crash point; one of: {}", names.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_fires_once_after_its_count() {
        let faults = Faults::new();
        faults.fail_sync(2, FaultKind::DiskFull);
        assert!(faults.fire(SYNC).is_none());
        assert!(faults.fire(SYNC).is_none());
        let err = faults.fire(SYNC).unwrap();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull);
        assert!(faults.fire(SYNC).is_none());
        assert!(faults.fire(WRITE).is_none());
    }

    #[test]
    fn crash_points_parse_from_their_names() {
        for (point, name) in POINTS {
            assert_eq!(name.parse::<CrashPoint>(), Ok(point));
            assert_eq!(point.to_string(), name);
        }
        assert!("nowhere".parse::<CrashPoint>().is_err());
    }
}
