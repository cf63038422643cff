//! How a [`super::LogStore`] writes: the `--sync` mode, the compaction size, salvage, and
//! the test hooks.

use super::faults::CrashPoint;
use super::fs::{Fs, RealFs};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// When a write counts as durable; see the module docs for what each mode promises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// fdatasync before acknowledging, shared by concurrent writers.
    #[default]
    Always,
    /// fdatasync about every 100 ms.
    Interval,
    /// Leave it to the kernel.
    None,
}

impl FromStr for SyncMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(SyncMode::Always),
            "interval" => Ok(SyncMode::Interval),
            "none" => Ok(SyncMode::None),
            _ => Err("must be always, interval or none".into()),
        }
    }
}

impl fmt::Display for SyncMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncMode::Always => "always",
            SyncMode::Interval => "interval",
            SyncMode::None => "none",
        })
    }
}

/// How a [`super::LogStore`] writes.
#[derive(Clone)]
pub struct Options {
    /// When a write counts as durable (`--sync`).
    pub sync: SyncMode,
    /// Size past which the active segment is closed and a snapshot taken (`--compact-bytes`).
    pub compact_bytes: u64,
    /// Cut damaged files instead of refusing to start (`--salvage`).
    pub salvage: bool,
    /// For tests: abort the process at this point (`--crash-at`).
    pub crash_at: Option<CrashPoint>,
    /// The file system the data directory is on: the real one, or for tests one that fails
    /// on cue or loses power.
    pub fs: Arc<dyn Fs>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("sync", &self.sync)
            .field("compact_bytes", &self.compact_bytes)
            .field("salvage", &self.salvage)
            .field("crash_at", &self.crash_at)
            .finish_non_exhaustive()
    }
}

/// `--compact-bytes`' default: a snapshot about every half million users of ~100 bytes.
pub const DEFAULT_COMPACT_BYTES: u64 = 64 << 20;

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: SyncMode::Always,
            compact_bytes: DEFAULT_COMPACT_BYTES,
            salvage: false,
            crash_at: None,
            fs: Arc::new(RealFs),
        }
    }
}
