//! A simulated disk for tests: files and names in memory that know what a completed fdatasync
//! (or directory fsync) made durable, and a power cut that keeps exactly that plus any subset
//! of what was not (as SQLite's crash tests model a disk).
//!
//! - A file's bytes are in pages of [`PAGE`] bytes. A write dirties the pages it touches; an
//!   fdatasync makes the file's current bytes durable and its pages clean. At a power cut a
//!   file keeps its durable bytes, and each dirty page independently survives whole, survives
//!   torn (a prefix of [`SECTOR`]-sized pieces new, the rest old), or is lost (old bytes, or
//!   zeros past the durable length, if a later page survives): later pages may survive where
//!   earlier ones did not.
//! - Names created, renamed and removed are durable after a directory fsync; at a power cut a
//!   prefix (in order) of the changes since then survives, as a journalling file system
//!   replays its journal.
//! - A failed fdatasync can be armed that does what Linux does after a writeback error: the
//!   dirty pages are marked clean without being written, so they read back from the cache but
//!   are not on the disk, and a later fdatasync succeeds without writing them.
//! - After a power cut (armed to happen after a number of operations, or now), every operation
//!   fails: the process that was using the disk is gone as far as the disk can tell.
//! - A killed process ([`SimDisk::kill_process`]) loses its open files, and nothing else: what
//!   it wrote stays in the cache for the next process to read, synced or not.

use super::fs::{Fs, FsFile, LockError, Open};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes in a simulated page: small, so that test logs of a few kilobytes span many pages.
pub const PAGE: usize = 512;

/// Bytes in a simulated sector: a torn page is whole sectors of new bytes, then old ones.
pub const SECTOR: usize = 64;

/// A small deterministic random number generator (xorshift64*), for crash images.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % n.max(1)
    }
}

#[derive(Clone, Default)]
struct SimFile {
    /// What a reader sees now (the page cache).
    data: Vec<u8>,
    /// What is on the disk.
    durable: Vec<u8>,
    /// Pages written since the last fdatasync.
    dirty: BTreeSet<usize>,
}

#[derive(Clone)]
enum DirOp {
    Link(PathBuf, u64),
    Unlink(PathBuf),
}

#[derive(Clone, Default)]
struct State {
    files: HashMap<u64, SimFile>,
    /// Names as the running process sees them, and as the disk has them.
    names: BTreeMap<PathBuf, u64>,
    durable_names: BTreeMap<PathBuf, u64>,
    /// Name changes since the last directory fsync, in order.
    changes: Vec<DirOp>,
    next_inode: u64,
    locked: HashSet<PathBuf>,
    /// Operations that change the disk so far, and the one at which the power goes.
    ops: u64,
    cut_at: Option<u64>,
    /// The disk as it was when the power went.
    at_cut: Option<Box<State>>,
    /// The next fdatasync fails and drops the dirty pages from the cache's care.
    lose_next_sync: bool,
    /// Which process the open files belong to: a killed process's files stop working.
    process: u64,
}

/// What a power cut does to one dirty page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// The page reached the disk.
    Kept,
    /// The page did not.
    Lost,
}

/// A simulated disk; see the module docs. Share it by cloning.
#[derive(Clone, Default)]
pub struct SimDisk(Arc<Mutex<State>>);

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The power goes just before the `n`-th operation from now that changes the disk.
    pub fn cut_after(&self, n: u64) {
        let mut s = self.state();
        s.cut_at = Some(s.ops + n);
    }

    /// The power goes now.
    pub fn cut_now(&self) {
        let mut s = self.state();
        let now = s.ops;
        s.cut_at = Some(now);
        Self::cut(&mut s);
    }

    /// Returns true if and only if the power has gone.
    pub fn is_cut(&self) -> bool {
        self.state().at_cut.is_some()
    }

    /// The process using the disk is killed (kill -9): its open files stop working, its locks
    /// go, and everything it wrote stays in the cache for the next one.
    pub fn kill_process(&self) {
        let mut s = self.state();
        s.process += 1;
        s.locked.clear();
    }

    /// The next fdatasync fails with EIO, as a failing device does, leaving the pages it
    /// should have written in the cache but marked clean (see the module docs).
    pub fn fail_next_sync_losing_pages(&self) {
        self.state().lose_next_sync = true;
    }

    fn cut(s: &mut State) {
        if s.at_cut.is_none() {
            let mut copy = s.clone();
            copy.at_cut = None;
            s.at_cut = Some(Box::new(copy));
        }
    }

    /// Counts an operation that changes the disk; fails once the power is gone.
    fn change(s: &mut State) -> io::Result<()> {
        if s.cut_at.is_some_and(|at| s.ops >= at) {
            Self::cut(s);
        }
        if s.at_cut.is_some() {
            return Err(eio());
        }
        s.ops += 1;
        Ok(())
    }

    /// The disk after the power came back with every name change since the last directory
    /// fsync, and each dirty page (counted from 0 in each file) kept or lost as `fate` says.
    pub fn after_power_cut_with(&self, mut fate: impl FnMut(usize) -> Fate) -> SimDisk {
        let s = self.state();
        let at = s.at_cut.as_deref().cloned().unwrap_or_else(|| s.clone());
        let mut files = HashMap::new();
        for inode in at.names.values() {
            let Some(file) = at.files.get(inode) else {
                continue;
            };
            let mut out = file.durable.clone();
            for (nth, &page) in file.dirty.iter().enumerate() {
                let range = page * PAGE..((page + 1) * PAGE).min(file.data.len());
                if fate(nth) == Fate::Lost || range.start >= range.end {
                    continue;
                }
                if out.len() < range.end {
                    out.resize(range.end, 0);
                }
                out[range.clone()].copy_from_slice(&file.data[range]);
            }
            let image = SimFile {
                data: out.clone(),
                durable: out,
                dirty: BTreeSet::new(),
            };
            files.insert(*inode, image);
        }
        SimDisk(Arc::new(Mutex::new(State {
            files,
            durable_names: at.names.clone(),
            names: at.names,
            next_inode: at.next_inode,
            ..State::default()
        })))
    }

    /// The disk after the power came back: what was durable when it went, plus what `rng`
    /// keeps of the rest (see the module docs). Everything on the new disk is durable.
    pub fn after_power_cut(&self, rng: &mut Rng) -> SimDisk {
        let s = self.state();
        let at = s.at_cut.as_deref().cloned().unwrap_or_else(|| s.clone());
        let mut names = at.durable_names.clone();
        let kept = rng.below(at.changes.len() as u64 + 1) as usize;
        for change in &at.changes[..kept] {
            match change {
                DirOp::Link(name, inode) => {
                    names.insert(name.clone(), *inode);
                }
                DirOp::Unlink(name) => {
                    names.remove(name);
                }
            }
        }
        let mut files = HashMap::new();
        for inode in names.values() {
            let Some(file) = at.files.get(inode) else {
                continue;
            };
            files.insert(*inode, crash_image(file, rng));
        }
        SimDisk(Arc::new(Mutex::new(State {
            files,
            durable_names: names.clone(),
            names,
            next_inode: at.next_inode,
            ..State::default()
        })))
    }

    /// The bytes of `path` as the running process sees them, if it exists.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.state();
        let inode = s.names.get(path)?;
        Some(s.files.get(inode)?.data.clone())
    }

    /// The names in the directory `dir`, as the running process sees them.
    pub fn names(&self, dir: &Path) -> Vec<String> {
        let s = self.state();
        s.names
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| Some(p.file_name()?.to_str()?.to_owned()))
            .collect()
    }

    /// Writes `bytes` as the whole of `path`, durably (to set up a test).
    pub fn put(&self, path: &Path, bytes: &[u8]) {
        let mut s = self.state();
        let inode = s.next_inode;
        s.next_inode += 1;
        let file = SimFile {
            data: bytes.to_vec(),
            durable: bytes.to_vec(),
            dirty: BTreeSet::new(),
        };
        s.files.insert(inode, file);
        s.names.insert(path.to_path_buf(), inode);
        s.durable_names.insert(path.to_path_buf(), inode);
    }
}

/// What a power cut leaves of one file (see the module docs).
fn crash_image(file: &SimFile, rng: &mut Rng) -> SimFile {
    let mut out = file.durable.clone();
    // A truncation not yet made durable may or may not have reached the disk.
    if file.data.len() < out.len() && rng.below(2) == 0 {
        out.truncate(file.data.len());
    }
    for &page in &file.dirty {
        let start = page * PAGE;
        let end = ((page + 1) * PAGE).min(file.data.len());
        if start >= end {
            continue;
        }
        let new = match rng.below(4) {
            0 => continue, // lost
            1 => {
                let sectors = (end - start).div_ceil(SECTOR) as u64;
                let whole = rng.below(sectors) as usize;
                start..(start + whole * SECTOR).min(end)
            }
            _ => start..end,
        };
        if out.len() < new.end {
            out.resize(new.end, 0);
        }
        out[new.clone()].copy_from_slice(&file.data[new]);
    }
    SimFile {
        data: out.clone(),
        durable: out,
        dirty: BTreeSet::new(),
    }
}

/// An open file of a [`SimDisk`].
struct Handle {
    disk: SimDisk,
    inode: u64,
    /// The process that opened it.
    process: u64,
    /// The lock this handle holds, released when it is dropped.
    lock: Option<PathBuf>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut s = self.disk.state();
        if let Some(path) = self.lock.take().filter(|_| s.process == self.process) {
            s.locked.remove(&path);
        }
    }
}

impl Handle {
    /// The disk's state, if this file's process is alive.
    fn live(&self) -> io::Result<MutexGuard<'_, State>> {
        let s = self.disk.state();
        if s.process != self.process {
            return Err(eio());
        }
        Ok(s)
    }
}

impl FsFile for Handle {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let s = self.live()?;
        let data = &s.files.get(&self.inode).ok_or_else(eio)?.data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let mut s = self.live()?;
        SimDisk::change(&mut s)?;
        let file = s.files.get_mut(&self.inode).ok_or_else(eio)?;
        let (start, end) = (offset as usize, offset as usize + buf.len());
        if file.data.len() < end {
            file.data.resize(end, 0);
        }
        file.data[start..end].copy_from_slice(buf);
        file.dirty.extend(start / PAGE..end.div_ceil(PAGE));
        Ok(())
    }

    fn len(&self) -> io::Result<u64> {
        let s = self.live()?;
        Ok(s.files.get(&self.inode).ok_or_else(eio)?.data.len() as u64)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut s = self.live()?;
        SimDisk::change(&mut s)?;
        let file = s.files.get_mut(&self.inode).ok_or_else(eio)?;
        let len = len as usize;
        let from = len.min(file.data.len()) / PAGE;
        let to = len.max(file.data.len()).div_ceil(PAGE);
        file.data.resize(len, 0);
        file.dirty.extend(from..to);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut s = self.live()?;
        SimDisk::change(&mut s)?;
        let lose = std::mem::take(&mut s.lose_next_sync);
        let file = s.files.get_mut(&self.inode).ok_or_else(eio)?;
        let dirty = std::mem::take(&mut file.dirty);
        if lose {
            return Err(eio());
        }
        // Only dirty pages are written; a page marked clean by a failed fsync stays as the disk
        // had it (zeros, past the old end).
        file.durable.resize(file.data.len(), 0);
        for page in dirty {
            let range = page * PAGE..((page + 1) * PAGE).min(file.data.len());
            if range.start < range.end {
                file.durable[range.clone()].copy_from_slice(&file.data[range]);
            }
        }
        Ok(())
    }
}

impl Fs for SimDisk {
    fn create_dir_all(&self, _dir: &Path) -> io::Result<()> {
        // Directories are implied by the names in them.
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        if self.is_cut() {
            return Err(eio());
        }
        Ok(self.names(dir))
    }

    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn FsFile>> {
        let mut s = self.state();
        let existing = s.names.get(path).copied();
        let inode = match (how, existing) {
            (Open::Read | Open::Write, Some(inode)) => inode,
            (Open::Read | Open::Write, None) => {
                return Err(io::Error::from(io::ErrorKind::NotFound));
            }
            (Open::CreateNew, Some(_)) => {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            (Open::Truncate, Some(inode)) => {
                SimDisk::change(&mut s)?;
                let file = s.files.get_mut(&inode).ok_or_else(eio)?;
                file.dirty.extend(0..file.data.len().div_ceil(PAGE));
                file.data.clear();
                inode
            }
            (Open::CreateNew | Open::Truncate, None) => {
                SimDisk::change(&mut s)?;
                let inode = s.next_inode;
                s.next_inode += 1;
                s.files.insert(inode, SimFile::default());
                s.names.insert(path.to_path_buf(), inode);
                s.changes.push(DirOp::Link(path.to_path_buf(), inode));
                inode
            }
        };
        let process = s.process;
        Ok(Arc::new(Handle {
            disk: self.clone(),
            inode,
            process,
            lock: None,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.state();
        SimDisk::change(&mut s)?;
        let inode = s
            .names
            .remove(from)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        s.names.insert(to.to_path_buf(), inode);
        s.changes.push(DirOp::Unlink(from.to_path_buf()));
        s.changes.push(DirOp::Link(to.to_path_buf(), inode));
        Ok(())
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        let mut s = self.state();
        SimDisk::change(&mut s)?;
        s.names
            .remove(path)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        s.changes.push(DirOp::Unlink(path.to_path_buf()));
        Ok(())
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        let mut s = self.state();
        SimDisk::change(&mut s)?;
        s.durable_names = s.names.clone();
        s.changes.clear();
        Ok(())
    }

    fn lock(&self, path: &Path, holder: &str) -> Result<Arc<dyn FsFile>, LockError> {
        let mut s = self.state();
        if !s.locked.insert(path.to_path_buf()) {
            return Err(LockError::Held(
                "another userd on the simulated disk".into(),
            ));
        }
        drop(s);
        let file = self.open(path, Open::Truncate).map_err(LockError::Io)?;
        file.write_all_at(holder.as_bytes(), 0)
            .map_err(LockError::Io)?;
        let (inode, process) = {
            let s = self.state();
            let inode = s
                .names
                .get(path)
                .copied()
                .ok_or_else(|| LockError::Io(eio()))?;
            (inode, s.process)
        };
        Ok(Arc::new(Handle {
            disk: self.clone(),
            inode,
            process,
            lock: Some(path.to_path_buf()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_power_cut_keeps_what_was_synced_and_maybe_more() {
        let disk = SimDisk::new();
        let dir = Path::new("/d");
        let path = dir.join("f");
        let file = disk.open(&path, Open::CreateNew).unwrap();
        file.write_all_at(&[1; 3 * PAGE], 0).unwrap();
        file.sync_data().unwrap();
        disk.sync_dir(dir).unwrap();
        file.write_all_at(&[2; 3 * PAGE], 3 * PAGE as u64).unwrap();
        disk.cut_now();
        assert!(
            file.write_all_at(&[3], 0).is_err(),
            "the disk works after the cut"
        );
        let (mut saw_hole, mut saw_all) = (false, false);
        for seed in 1..200 {
            let after = disk.after_power_cut(&mut Rng(seed));
            let bytes = after.read(&path).unwrap();
            assert_eq!(&bytes[..3 * PAGE], &[1; 3 * PAGE][..], "seed {seed}");
            let tail = &bytes[3 * PAGE..];
            assert!(tail.iter().all(|&b| b == 0 || b == 2), "seed {seed}");
            saw_all |= tail.len() == 3 * PAGE && tail.iter().all(|&b| b == 2);
            saw_hole |= tail.len() == 3 * PAGE && tail[..PAGE].iter().all(|&b| b == 0);
        }
        assert!(saw_hole && saw_all);
    }

    #[test]
    fn names_need_a_directory_fsync() {
        let disk = SimDisk::new();
        let dir = Path::new("/d");
        let file = disk.open(&dir.join("a"), Open::CreateNew).unwrap();
        file.write_all_at(b"x", 0).unwrap();
        file.sync_data().unwrap();
        disk.cut_now();
        let mut seen = HashSet::new();
        for seed in 1..50 {
            seen.insert(disk.after_power_cut(&mut Rng(seed)).names(dir).len());
        }
        assert_eq!(seen, HashSet::from([0, 1]));
    }

    #[test]
    fn a_failed_sync_leaves_pages_readable_but_not_durable() {
        let disk = SimDisk::new();
        let path = Path::new("/d/f");
        disk.put(path, b"");
        let file = disk.open(path, Open::Write).unwrap();
        file.write_all_at(b"lost", 0).unwrap();
        disk.fail_next_sync_losing_pages();
        assert!(file.sync_data().is_err());
        // A later fdatasync "succeeds" without writing them.
        file.sync_data().unwrap();
        assert_eq!(disk.read(path).unwrap(), b"lost");
        disk.cut_now();
        let after = disk.after_power_cut(&mut Rng(7));
        assert_eq!(after.read(path).unwrap(), b"\0\0\0\0");
    }
}
