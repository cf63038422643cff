//! Reading a file's frames, and telling a torn tail from damage.
//!
//! # Torn or damaged?
//!
//! Only the last segment can end in a torn record: a segment is fsynced before the next one is
//! created. In the last segment, bytes that do not decode (a frame that runs past the end of
//! the file, a bad length, a bad checksum: what an interrupted append leaves, including the
//! zeros a file system may show where data never landed) are a torn tail if no sound frame
//! starts anywhere after them. Anything else (a bad record with sound records after it, any
//! bad record in an earlier segment or in a snapshot, a sound record of an unknown version)
//! is damage: userd will not guess which acknowledged users it would lose, and stops.
//!
//! One case cannot be told apart: damage to the very last record of the last segment looks
//! exactly like a torn append, and is cut as one.

use crate::store::log::files::with_path;
use crate::store::log::record::{Damage, Header, Record, HEADER_LEN};
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
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

/// Reads every frame of `path`, handing each sound record to `on`, until the end of the file
/// or the first frame that is not sound (or that `on` refuses).
pub(super) fn scan(
    path: &Path,
    mut on: impl FnMut(Record<'_>) -> Result<(), Damage>,
) -> io::Result<Scan> {
    let file = File::open(path).map_err(|e| with_path(e, "cannot open", path))?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut payload = Vec::new();
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
    while at.sound_end < file_len {
        if file_len - at.sound_end < HEADER_LEN as u64 {
            return stop(at, Damage::Incomplete);
        }
        let mut head = [0; HEADER_LEN];
        reader.read_exact(&mut head)?;
        let header = Header::parse(&head);
        let Some(len) = header.payload_len() else {
            return stop(at, Damage::Length);
        };
        let end = at.sound_end + (HEADER_LEN + len) as u64;
        if end > file_len {
            return stop(at, Damage::Incomplete);
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload)?;
        if let Err(damage) = header.decode(&payload).and_then(&mut on) {
            return stop(at, damage);
        }
        at.records += 1;
        at.sound_end = end;
    }
    Ok(at)
}

/// Returns true if and only if a sound frame starts somewhere in `path` after `from`.
///
/// Tries every offset: after damage the frames need not line up with anything.
fn sound_frame_after(path: &Path, from: u64) -> io::Result<bool> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut rest = Vec::new();
    file.read_to_end(&mut rest)?;
    for at in 0..rest.len().saturating_sub(HEADER_LEN) {
        let head: &[u8; HEADER_LEN] = rest[at..at + HEADER_LEN].try_into().unwrap_or(&[0; 8]);
        let header = Header::parse(head);
        let Some(len) = header.payload_len() else {
            continue;
        };
        let payload = &rest[at + HEADER_LEN..];
        if payload.len() >= len && header.decode(&payload[..len]).is_ok() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Returns true if and only if `bad`, found in the last segment, is what an interrupted append
/// leaves (see the module docs).
pub(super) fn is_torn(path: &Path, bad: &Bad) -> io::Result<bool> {
    match bad.damage {
        Damage::Incomplete | Damage::Length | Damage::Checksum => {
            Ok(!sound_frame_after(path, bad.offset + 1)?)
        }
        _ => Ok(false),
    }
}
