//! The fsync threads of `--sync always`, for disks whose fsyncs are slow.
//!
//! While fsyncs are fast, the writer runs them itself: the next batch gathers meanwhile, and
//! batches grow, so writes, fsyncs and thread switches per user stay few. When they are slow
//! (on this project's VMs an fdatasync swings between 0.1 and 4 ms), a request waits for the
//! rest of the running fsync and then a whole one of its own. So when the recent fsyncs
//! average over [`OVERLAP_AFTER`], fsyncs move to these threads: a batch that arrives while one
//! runs is written and, once that one has run for [`OVERLAP_AFTER`], gets its own fsync beside
//! it. Flushes that overlap complete far sooner than flushes in a row on such disks.
//!
//! # Safety of overlapping fsyncs
//!
//! A batch is durable once an fsync that started after its write returned succeeded. The
//! results are taken in the order the fsyncs were started, and the first failure stops the
//! store: nothing is acknowledged after it.
//!
//! Each thread fsyncs through its own open file description. The kernel reports a writeback
//! error once per open file description (`errseq`); two fsyncs through one description could
//! race, the later one taking the error and the earlier one returning success for the very
//! pages that failed. Through separate descriptions, each fsync sees every error that happened
//! since it last looked.

use super::fs::FsFile;
use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How many fsyncs may be in flight at once.
pub const IN_FLIGHT: usize = 2;

/// The fsync time above which fsyncs overlap, and how long one runs before a second starts
/// beside it.
const OVERLAP_AFTER: Duration = Duration::from_micros(500);

/// What an fsync thread reports back to the writer when one of its fsyncs is done.
#[derive(Debug)]
pub struct Synced {
    /// Which fsync thread.
    pub syncer: usize,
    /// Which fsync, in the order they were started.
    pub ticket: u64,
    /// How it went.
    pub result: io::Result<()>,
    /// How long it took.
    pub took: Duration,
}

/// One fsync to run, through the thread's own description of the active segment (opened by
/// the writer when the segment was made, so a snapshot deleting the segment meanwhile cannot
/// take the name away from under it).
struct Request {
    ticket: u64,
    file: Arc<dyn FsFile>,
}

/// An fsync started and not yet taken into account.
struct InFlight {
    ticket: u64,
    /// The log position (bytes written over all segments) it makes durable.
    upto: u64,
    started: Instant,
    result: Option<io::Result<()>>,
}

/// The fsync threads and the fsyncs in flight, in the order they were started.
pub struct Syncers {
    threads: Vec<(Sender<Request>, JoinHandle<()>)>,
    /// Each thread's own description of the active segment.
    files: Vec<Arc<dyn FsFile>>,
    idle: Vec<usize>,
    in_flight: VecDeque<InFlight>,
    next_ticket: u64,
    /// The log position the last fsync started covers.
    started_upto: u64,
    /// A moving average of recent fsync times, on these threads or the writer.
    typical: Duration,
}

impl Syncers {
    /// Starts [`IN_FLIGHT`] threads fsyncing the active segment through `files` (one
    /// description each); each reports to `events`.
    pub fn start<J: From<Synced> + Send + 'static>(
        events: Sender<J>,
        files: Vec<Arc<dyn FsFile>>,
    ) -> io::Result<Self> {
        let mut threads = Vec::new();
        for index in 0..IN_FLIGHT {
            let (requests, queue) = mpsc::channel();
            let events = events.clone();
            let thread = thread::Builder::new().name(format!("userd-fsync-{index}"));
            let handle = thread.spawn(move || run(index, queue, events))?;
            threads.push((requests, handle));
        }
        Ok(Syncers {
            threads,
            files,
            idle: (0..IN_FLIGHT).rev().collect(),
            in_flight: VecDeque::new(),
            next_ticket: 0,
            started_upto: 0,
            typical: Duration::ZERO,
        })
    }

    /// Counts one more fsync time in the average.
    pub fn timed(&mut self, took: Duration) {
        self.typical = (self.typical * 7 + took) / 8;
    }

    /// Returns true if and only if fsyncs are fast lately: the writer had better run them
    /// itself.
    pub fn fast(&self) -> bool {
        self.typical < OVERLAP_AFTER
    }

    /// Returns true if and only if an fsync could start now: a thread is free, and no fsync
    /// is running or the last one started [`OVERLAP_AFTER`] ago.
    pub fn can_start(&self) -> bool {
        !self.idle.is_empty()
            && self
                .in_flight
                .back()
                .is_none_or(|f| f.started.elapsed() >= OVERLAP_AFTER)
    }

    /// Hands the threads their descriptions of a new active segment.
    pub fn switch(&mut self, files: Vec<Arc<dyn FsFile>>) {
        self.files = files;
    }

    /// Starts an fsync of the active segment covering log position `upto`, if there is
    /// anything new to cover and a thread is idle.
    pub fn start_sync(&mut self, upto: u64) {
        if upto <= self.started_upto {
            return;
        }
        let Some(index) = self.idle.pop() else {
            return;
        };
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let file = self.files[index].clone();
        if self.threads[index]
            .0
            .send(Request { ticket, file })
            .is_err()
        {
            return; // the thread is gone: only at shutdown
        }
        self.started_upto = upto;
        self.in_flight.push_back(InFlight {
            ticket,
            upto,
            started: Instant::now(),
            result: None,
        });
    }

    /// Takes the result of fsync `ticket` from thread `index`. Returns the log position now
    /// durable, if it moved, or the first failed fsync's error, in the order they started.
    pub fn finished(
        &mut self,
        index: usize,
        ticket: u64,
        result: io::Result<()>,
        took: Duration,
    ) -> io::Result<Option<u64>> {
        self.idle.push(index);
        self.timed(took);
        if let Some(f) = self.in_flight.iter_mut().find(|f| f.ticket == ticket) {
            f.result = Some(result);
        }
        let mut durable = None;
        while self.in_flight.front().is_some_and(|f| f.result.is_some()) {
            let Some(InFlight { upto, result, .. }) = self.in_flight.pop_front() else {
                break;
            };
            if let Some(Err(e)) = result {
                return Err(e);
            }
            durable = Some(upto);
        }
        Ok(durable)
    }

    /// Stops the threads, after their running fsyncs.
    pub fn stop(self) {
        for (requests, handle) in self.threads {
            drop(requests);
            let _ = handle.join();
        }
    }
}

/// An fsync thread: fsyncs what it is asked to through the description it is handed, and says
/// so.
fn run<J: From<Synced>>(index: usize, requests: Receiver<Request>, events: Sender<J>) {
    for Request { ticket, file } in requests {
        let started = Instant::now();
        let result = file.sync_data();
        let done = Synced {
            syncer: index,
            ticket,
            result,
            took: started.elapsed(),
        };
        if events.send(done.into()).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn syncers_over_a_segment(tag: &str) -> (Syncers, mpsc::Receiver<Synced>, PathBuf) {
        let dir = std::env::temp_dir().join(format!("userd-sync-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("segment");
        let files = (0..IN_FLIGHT)
            .map(|_| -> Arc<dyn FsFile> { Arc::new(std::fs::File::create(&path).unwrap()) })
            .collect();
        let (events, queue) = mpsc::channel();
        let mut syncers = Syncers::start(events, files).unwrap();
        for _ in 0..32 {
            syncers.timed(Duration::from_millis(5));
        }
        assert!(!syncers.fast());
        (syncers, queue, dir)
    }

    /// Starts two overlapping fsyncs (the second once the first has run long enough).
    fn start_two(syncers: &mut Syncers) {
        syncers.start_sync(100);
        assert!(!syncers.can_start(), "a second fsync started at once");
        std::thread::sleep(OVERLAP_AFTER);
        assert!(syncers.can_start());
        syncers.start_sync(200);
        assert!(!syncers.can_start(), "more than {IN_FLIGHT} in flight");
    }

    #[test]
    fn results_count_in_the_order_the_fsyncs_started() {
        let (mut syncers, _events, dir) = syncers_over_a_segment("order");
        start_two(&mut syncers);
        let took = Duration::ZERO;
        // The later fsync returning first proves nothing about the writes the earlier covers...
        assert_eq!(syncers.finished(1, 1, Ok(()), took).unwrap(), None);
        // ...until the earlier one returns too.
        assert_eq!(syncers.finished(0, 0, Ok(()), took).unwrap(), Some(200));
        syncers.stop();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failure_of_an_earlier_fsync_wins_over_a_later_success() {
        let (mut syncers, _events, dir) = syncers_over_a_segment("fail");
        start_two(&mut syncers);
        let took = Duration::ZERO;
        assert_eq!(syncers.finished(1, 1, Ok(()), took).unwrap(), None);
        let eio = io::Error::from_raw_os_error(5);
        assert!(syncers.finished(0, 0, Err(eio), took).is_err());
        syncers.stop();
        std::fs::remove_dir_all(dir).unwrap();
    }

    /// A snapshot may delete the segment an fsync is about to cover: the thread fsyncs the
    /// description it was handed when the segment was made, so the name going away cannot
    /// fail it (and with it the whole store).
    #[test]
    fn an_fsync_thread_still_syncs_a_segment_whose_name_is_gone() {
        let (mut syncers, events, dir) = syncers_over_a_segment("gone");
        std::fs::remove_file(dir.join("segment")).unwrap();
        syncers.start_sync(10);
        let done = events.recv().unwrap();
        assert!(done.result.is_ok(), "{:?}", done.result);
        syncers.stop();
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_threads_fsync_and_report_back() {
        let (mut syncers, events, dir) = syncers_over_a_segment("threads");
        syncers.start_sync(10);
        let Ok(Synced {
            syncer,
            ticket,
            result,
            ..
        }) = events.recv()
        else {
            panic!("no report");
        };
        assert!(result.is_ok());
        assert_eq!(
            syncers
                .finished(syncer, ticket, result, Duration::ZERO)
                .unwrap(),
            Some(10)
        );
        syncers.stop();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
