//! The fsync threads of `--sync always`: fsyncs run beside the writer, so that a batch that
//! arrives while one fsync runs is written at once and its own fsync starts without waiting
//! for the running one to end. With one fsync at a time, a request waits on average for the
//! rest of the running fsync and then a whole one of its own; with two in flight, it mostly
//! waits for a whole one only.
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

use super::faults::Faults;
use super::files::segment_name;
use super::writer::Job;
use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::{self, JoinHandle};

/// How many fsyncs may be in flight at once.
pub const IN_FLIGHT: usize = 2;

/// One fsync to run: of segment `seq`, for the writes up to log position `upto`.
struct Request {
    ticket: u64,
    seq: u64,
}

/// An fsync started and not yet taken into account.
struct InFlight {
    ticket: u64,
    /// The log position (bytes written over all segments) it makes durable.
    upto: u64,
    result: Option<io::Result<()>>,
}

/// The fsync threads and the fsyncs in flight, in the order they were started.
pub struct Syncers {
    threads: Vec<(Sender<Request>, JoinHandle<()>)>,
    idle: Vec<usize>,
    in_flight: VecDeque<InFlight>,
    next_ticket: u64,
    /// The log position the last fsync started covers.
    started_upto: u64,
}

impl Syncers {
    /// Starts [`IN_FLIGHT`] threads fsyncing segments of `dir`; each reports to `events`.
    pub fn start(dir: PathBuf, events: Sender<Job>, faults: Option<Faults>) -> io::Result<Self> {
        let mut threads = Vec::new();
        for index in 0..IN_FLIGHT {
            let (requests, queue) = mpsc::channel();
            let (dir, events, faults) = (dir.clone(), events.clone(), faults.clone());
            let thread = thread::Builder::new().name(format!("userd-fsync-{index}"));
            let handle = thread.spawn(move || run(index, dir, queue, events, faults))?;
            threads.push((requests, handle));
        }
        Ok(Syncers {
            threads,
            idle: (0..IN_FLIGHT).rev().collect(),
            in_flight: VecDeque::new(),
            next_ticket: 0,
            started_upto: 0,
        })
    }

    /// Starts an fsync of segment `seq` covering log position `upto`, if there is anything new
    /// to cover and a thread is idle.
    pub fn start_sync(&mut self, seq: u64, upto: u64) {
        if upto <= self.started_upto {
            return;
        }
        let Some(index) = self.idle.pop() else {
            return;
        };
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        if self.threads[index].0.send(Request { ticket, seq }).is_err() {
            return; // the thread is gone: only at shutdown
        }
        self.started_upto = upto;
        self.in_flight.push_back(InFlight {
            ticket,
            upto,
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
    ) -> io::Result<Option<u64>> {
        self.idle.push(index);
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

/// An fsync thread: fsyncs what it is asked to through its own open file, and says so.
fn run(
    index: usize,
    dir: PathBuf,
    requests: Receiver<Request>,
    events: Sender<Job>,
    faults: Option<Faults>,
) {
    let mut open: Option<(u64, File)> = None;
    for Request { ticket, seq } in requests {
        let result = (|| {
            let file = match open.take() {
                Some((s, file)) if s == seq => file,
                _ => File::open(dir.join(segment_name(seq)))?,
            };
            let file = &open.insert((seq, file)).1;
            if let Some(e) = faults.as_ref().and_then(Faults::on_sync) {
                return Err(e);
            }
            file.sync_data()
        })();
        let done = Job::Synced {
            syncer: index,
            ticket,
            result,
        };
        if events.send(done).is_err() {
            return;
        }
    }
}
