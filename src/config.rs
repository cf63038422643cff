//! Configuration: every flag, its environment twin and its default, read in this one place.

use crate::store::log::{self, CrashPoint, SyncMode};
use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// userd: a fast, sturdy Users API server.
///
/// Every flag can also be set through the environment variable named in its help; a flag on
/// the command line wins over the variable.
#[derive(Parser, Debug, Clone)]
#[command(name = "userd", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on; port 0 picks a free port (the real one is printed at start).
    #[arg(long, env = "USERD_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,

    /// Worker threads for the runtime [default: the CPUs this process may run on].
    #[arg(long, env = "USERD_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,

    /// Store shards, a power of two [default: 4 x the CPUs this process may run on, rounded up
    /// to a power of two, and at least 64].
    #[arg(long, env = "USERD_SHARDS", value_parser = parse_shards)]
    pub shards: Option<usize>,

    /// Largest request body accepted, in bytes; larger ones get 413.
    #[arg(long, env = "USERD_MAX_BODY", default_value_t = 64 * 1024)]
    pub max_body: usize,

    /// Keep users in memory only (they are gone when the process ends).
    #[arg(long, env = "USERD_IN_MEMORY")]
    pub in_memory: bool,

    /// Directory of the durable store: log segments, snapshots, a lock file (created if
    /// missing; unused with --in-memory).
    #[arg(long, env = "USERD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// When a write is acknowledged: `always` after an fdatasync (shared by concurrent
    /// writers), `interval` after the write with an fdatasync about every 100 ms, `none` after
    /// the write, leaving the flush to the OS.
    #[arg(long, env = "USERD_SYNC", default_value = "always")]
    pub sync: SyncMode,

    /// Log bytes after which userd starts a new segment and writes a snapshot of every user
    /// (then deletes the segments the snapshot replaces).
    #[arg(long, env = "USERD_COMPACT_BYTES", default_value_t = log::DEFAULT_COMPACT_BYTES,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub compact_bytes: u64,

    /// Start even if a file in the data directory is damaged: cut it at the damage, keeping
    /// every sound record before it (without this flag userd refuses to start).
    #[arg(long, env = "USERD_SALVAGE")]
    pub salvage: bool,

    /// For tests: abort the process at a named point of writing a snapshot.
    #[arg(long, env = "USERD_CRASH_AT", hide = true)]
    pub crash_at: Option<CrashPoint>,

    /// Most connections served at once; further clients wait in the listen backlog.
    #[arg(long, env = "USERD_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Seconds a client has to send a request's headers (also how long an idle keep-alive
    /// connection is kept open).
    #[arg(long, env = "USERD_HEADER_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,

    /// Seconds in-flight requests get to finish after SIGTERM or SIGINT.
    #[arg(long, env = "USERD_SHUTDOWN_TIMEOUT", default_value_t = 10)]
    pub shutdown_timeout: u64,
}

/// The least default shard count. Whatever the CPU count, a shard is the unit that stalls:
/// a map that grows rehashes under its shard's lock, and a snapshot copies one shard's index
/// at a time while writes to it wait. With 64 shards both stay under a millisecond at a
/// million users or more (measured: with 4 shards a growing store's POST p99 was 25% higher,
/// and snapshot waits reached 5 to 8 ms at 1.6 million users).
pub const MIN_DEFAULT_SHARDS: usize = 64;

fn parse_shards(s: &str) -> Result<usize, String> {
    let n: usize = s.parse().map_err(|e| format!("{e}"))?;
    if n == 0 || !n.is_power_of_two() || n > 1 << 16 {
        return Err("must be a power of two between 1 and 65536".into());
    }
    Ok(n)
}

/// The CPUs this process may run on (its affinity mask and cgroup quota, as the OS reports).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

impl Config {
    /// Reads the flags and environment of this process; exits with a usage message on error.
    pub fn from_env() -> Self {
        Config::parse()
    }

    /// Worker threads: `--threads`, or one per available CPU.
    pub fn worker_threads(&self) -> usize {
        self.threads.map_or_else(available_cpus, usize::from)
    }

    /// Store shards: `--shards`, or 4 x the available CPUs rounded up to a power of two, and
    /// at least [`MIN_DEFAULT_SHARDS`].
    pub fn shard_count(&self) -> usize {
        self.shards.unwrap_or_else(|| {
            (4 * available_cpus())
                .next_power_of_two()
                .max(MIN_DEFAULT_SHARDS)
        })
    }

    /// How long a client has to send a request's headers.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout)
    }

    /// How long shutdown waits for in-flight requests.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout)
    }

    /// How the durable store writes.
    pub fn log_options(&self) -> log::Options {
        log::Options {
            sync: self.sync,
            compact_bytes: self.compact_bytes,
            salvage: self.salvage,
            crash_at: self.crash_at,
            ..log::Options::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::try_parse_from(["userd"]).unwrap();
        assert_eq!(c.addr.to_string(), "127.0.0.1:3000");
        assert_eq!(c.max_body, 65536);
        assert!(c.shard_count().is_power_of_two());
        assert!(c.worker_threads() >= 1);
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.sync, SyncMode::Always);
        assert_eq!(c.compact_bytes, log::DEFAULT_COMPACT_BYTES);
        assert!(!c.in_memory && !c.salvage && c.crash_at.is_none());
    }

    #[test]
    fn sync_modes_and_crash_points_parse() {
        let c = Config::try_parse_from(["userd", "--sync", "interval"]).unwrap();
        assert_eq!(c.sync, SyncMode::Interval);
        assert!(Config::try_parse_from(["userd", "--sync", "sometimes"]).is_err());
        let c = Config::try_parse_from(["userd", "--crash-at", "snapshot-renamed"]).unwrap();
        assert_eq!(c.crash_at, Some(CrashPoint::SnapshotRenamed));
        assert!(Config::try_parse_from(["userd", "--compact-bytes", "0"]).is_err());
    }

    #[test]
    fn shards_must_be_a_power_of_two() {
        assert!(Config::try_parse_from(["userd", "--shards", "6"]).is_err());
        assert!(Config::try_parse_from(["userd", "--shards", "0"]).is_err());
        let c = Config::try_parse_from(["userd", "--shards", "64"]).unwrap();
        assert_eq!(c.shard_count(), 64);
    }

    #[test]
    fn threads_must_be_positive() {
        assert!(Config::try_parse_from(["userd", "--threads", "0"]).is_err());
    }
}
