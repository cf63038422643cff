//! Reading a file's frames, and telling a torn tail from damage.
//!
//! # Torn or damaged?
//!
//! Only the last segment can end in bytes that never reached the disk: a segment is fsynced
//! before the next one is created, snapshots are fsynced before they are renamed into place.
//! In the last segment, what a completed fdatasync covered is on the disk; what it did not may
//! be lost in any part (a power cut with a volatile disk cache, or a file system that writes a
//! later block before an earlier one, can keep later pages and lose earlier ones), and none of
//! it was acknowledged with `--sync always`. The writer says how far the last completed
//! fdatasync reached at the start of every batch (a `synced` record), so recovery can tell:
//!
//! - bytes that do not decode (a frame that runs past the end of the file, a bad length, a bad
//!   checksum, zeros where data never landed) in the last segment, beyond every offset that a
//!   later sound `synced` record says was covered, are a torn tail: cut, reported, and the
//!   start goes on (PostgreSQL treats the first invalid WAL record as the end of WAL for the
//!   same reason);
//! - anything else (bad bytes that a completed fdatasync covered, any bad record in an earlier
//!   segment or in a snapshot, a sound record of an unknown version) is damage: userd will not
//!   guess which acknowledged users it would lose, and stops (or, with `--salvage`, cuts).
//!
//! One case cannot be told apart: damage to the last bytes of the last segment after the last
//! `synced` record looks exactly like a torn append, and is cut as one.

use crate::store::log::files::with_path;
use crate::store::log::fs::{Dir, Open};
use crate::store::log::record::{Damage, Header, Record, HEADER_LEN};
use std::io;
use std::path::Path;

/// Where a file stops holding sound records, and why.
#[derive(Debug, Clone, Copy)]
pub(super) struct Bad {
    pub(super) offset: u64,
    pub(super) damage: Damage,
}

/// The outcome of reading one file's frames.
pub(super) struct Scan {
    pub(super) records: u64,
    /// The offset just past the last sound record.
    pub(super) sound_end: u64,
    pub(super) bad: Option<Bad>,
}

/// A file read front to back through a window of a few MiB, so that a snapshot of any size is
/// read in bounded memory.
struct Window {
    file: std::sync::Arc<dyn crate::store::log::fs::FsFile>,
    len: u64,
    /// The offset of `buf[0]` in the file.
    base: u64,
    buf: Vec<u8>,
}

impl Window {
    /// The `n` bytes at `offset` (not before the window's base), or fewer at the end of the file.
    fn get(&mut self, offset: u64, n: usize) -> io::Result<&[u8]> {
        let end = (offset + n as u64).min(self.len);
        if offset < self.base || end > self.base + self.buf.len() as u64 {
            let want = ((end - offset) as usize).max(4 << 20);
            self.buf.resize(want.min((self.len - offset) as usize), 0);
            let mut done = 0;
            while done < self.buf.len() {
                match self
                    .file
                    .read_at(&mut self.buf[done..], offset + done as u64)?
                {
                    0 => break,
                    k => done += k,
                }
            }
            self.buf.truncate(done);
            self.base = offset;
        }
        let from = (offset - self.base) as usize;
        let to = (from + (end - offset) as usize).min(self.buf.len());
        Ok(&self.buf[from..to])
    }
}

/// Reads every frame of `path`, handing each sound record to `on`, until the end of the file
/// or the first frame that is not sound (or that `on` refuses).
pub(super) fn scan(
    dir: &Dir,
    path: &Path,
    mut on: impl FnMut(Record<'_>) -> Result<(), Damage>,
) -> io::Result<Scan> {
    let file = (dir.fs.open(path, Open::Read)).map_err(|e| with_path(e, "cannot open", path))?;
    let len = file.len()?;
    let mut window = Window {
        file,
        len,
        base: 0,
        buf: Vec::new(),
    };
    let mut at = Scan {
        records: 0,
        sound_end: 0,
        bad: None,
    };
    let stop = |mut at: Scan, damage| {
        let offset = at.sound_end;
        at.bad = Some(Bad { offset, damage });
        Ok(at)
    };
    while at.sound_end < len {
        let head = window.get(at.sound_end, HEADER_LEN)?;
        let Ok(head) = <&[u8; HEADER_LEN]>::try_from(head) else {
            return stop(at, Damage::Incomplete);
        };
        let header = Header::parse(head);
        let Some(payload_len) = header.payload_len() else {
            return stop(at, Damage::Length);
        };
        let frame = window.get(at.sound_end, HEADER_LEN + payload_len)?;
        if frame.len() < HEADER_LEN + payload_len {
            return stop(at, Damage::Incomplete);
        }
        if let Err(damage) = header.decode(&frame[HEADER_LEN..]).and_then(&mut on) {
            return stop(at, damage);
        }
        at.records += 1;
        at.sound_end += (HEADER_LEN + payload_len) as u64;
    }
    Ok(at)
}

/// What follows a bad frame: whether any sound frame starts after it, and the furthest offset
/// that a sound `synced` record after it says a completed fdatasync covered.
///
/// Tries every offset: after damage the frames need not line up with anything.
fn after(bytes: &[u8], from: usize) -> (bool, u64) {
    let (mut any, mut synced) = (false, 0);
    for at in from..bytes.len().saturating_sub(HEADER_LEN) {
        let head: &[u8; HEADER_LEN] = bytes[at..at + HEADER_LEN].try_into().unwrap_or(&[0; 8]);
        let header = Header::parse(head);
        let Some(len) = header.payload_len() else {
            continue;
        };
        let payload = &bytes[at + HEADER_LEN..];
        if payload.len() < len {
            continue;
        }
        if let Ok(record) = header.decode(&payload[..len]) {
            any = true;
            if let Record::Synced { upto } = record {
                synced = synced.max(upto);
            }
        }
    }
    (any, synced)
}

/// Returns true if and only if `bad`, found in the last segment, lies in bytes that no
/// completed fdatasync covered: what a crash or a power cut leaves (see the module docs).
pub(super) fn is_torn(dir: &Dir, path: &Path, bad: &Bad) -> io::Result<bool> {
    match bad.damage {
        Damage::Incomplete | Damage::Length | Damage::Checksum => {
            let bytes = dir.fs.open(path, Open::Read)?.read_from(0)?;
            let (any, synced) = after(&bytes, bad.offset as usize + 1);
            Ok(!any || synced <= bad.offset)
        }
        _ => Ok(false),
    }
}
