//! The file system as the durable store uses it: every operation it makes on its data
//! directory goes through [`Fs`], so that tests can put a disk under it that fails on cue
//! ([`super::Faults`]) or loses power (the simulated disk of the tests).
//!
//! The store needs little: files it appends to at an offset, reads, truncates and fdatasyncs;
//! names it creates, renames and removes, made durable by an fsync of the directory; a lock.
//! Each operation is a system call or two, so a virtual call per operation costs nothing
//! measurable.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to open a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// An existing file, to read.
    Read,
    /// An existing file, to read and write.
    Write,
    /// A new file, to read and write; fails if the name exists.
    CreateNew,
    /// A file emptied or created, to write.
    Truncate,
}

/// An open file.
pub trait FsFile: Send + Sync {
    /// Reads into `buf` from `offset`; returns how many bytes were read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;

    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;

    /// The file's length.
    fn len(&self) -> io::Result<u64>;

    /// Returns true if and only if the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Cuts or extends the file to `len` bytes.
    fn set_len(&self, len: u64) -> io::Result<()>;

    /// `fdatasync`: once it returns `Ok`, what was written is on the disk.
    fn sync_data(&self) -> io::Result<()>;

    /// Reads the whole file from `offset` to its end.
    fn read_from(&self, offset: u64) -> io::Result<Vec<u8>> {
        let len = self.len()?;
        let mut out = vec![0u8; len.saturating_sub(offset) as usize];
        let mut done = 0;
        while done < out.len() {
            match self.read_at(&mut out[done..], offset + done as u64)? {
                0 => break,
                n => done += n,
            }
        }
        out.truncate(done);
        Ok(out)
    }
}

/// A file system, as the durable store uses it.
pub trait Fs: Send + Sync + 'static {
    /// Creates `dir` and its missing parents, making the new names durable.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;

    /// The names of the entries of `dir`.
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;

    /// Opens `path`.
    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn FsFile>>;

    /// Renames `from` to `to`, replacing `to` if it exists; durable after [`Fs::sync_dir`].
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;

    /// Removes `path`; durable after [`Fs::sync_dir`].
    fn remove(&self, path: &Path) -> io::Result<()>;

    /// Makes the entries of `dir` (names created, renamed, removed) durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;

    /// Takes an exclusive lock on `path` (created if missing) for as long as the returned file
    /// is open, and writes `holder` into it; or says what the holder wrote, if another
    /// process holds it.
    fn lock(&self, path: &Path, holder: &str) -> Result<Arc<dyn FsFile>, LockError>;
}

/// Why [`Fs::lock`] failed.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds the lock; what it wrote into the file.
    Held(String),
    /// The file could not be opened or locked.
    Io(io::Error),
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFs;

impl FsFile for File {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        FileExt::write_all_at(self, buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        File::set_len(self, len)
    }

    fn sync_data(&self) -> io::Result<()> {
        File::sync_data(self)
    }
}

impl Fs for RealFs {
    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        if dir.exists() {
            return Ok(());
        }
        fs::create_dir_all(dir)?;
        match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            Some(parent) => self.sync_dir(parent),
            None => Ok(()),
        }
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn FsFile>> {
        let mut o = OpenOptions::new();
        match how {
            Open::Read => o.read(true),
            Open::Write => o.read(true).write(true),
            Open::CreateNew => o.read(true).write(true).create_new(true),
            Open::Truncate => o.write(true).create(true).truncate(true),
        };
        Ok(Arc::new(o.open(path)?))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn lock(&self, path: &Path, holder: &str) -> Result<Arc<dyn FsFile>, LockError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(LockError::Io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                let text = FsFile::read_from(&file, 0).unwrap_or_default();
                return Err(LockError::Held(
                    String::from_utf8_lossy(&text).trim().to_owned(),
                ));
            }
            Err(fs::TryLockError::Error(e)) => return Err(LockError::Io(e)),
        }
        // What the holder wrote is only for the message of a second userd; a failure to write
        // it is no reason to stop.
        let _ = file
            .set_len(0)
            .and_then(|()| FileExt::write_all_at(&file, holder.as_bytes(), 0));
        Ok(Arc::new(file))
    }
}

/// A directory on a file system: where the durable store keeps its files.
#[derive(Clone)]
pub struct Dir {
    /// The file system.
    pub fs: Arc<dyn Fs>,
    /// The directory's path.
    pub path: PathBuf,
}

impl Dir {
    /// The path of `name` in the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Makes the directory's entries durable.
    pub fn sync(&self) -> io::Result<()> {
        self.fs.sync_dir(&self.path)
    }
}
