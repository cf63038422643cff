//! One task that watches every connection: the header timeout, and the signal to drain.
//!
//! hyper can time a head itself (`header_read_timeout` with a timer), and hyper-util can
//! drain connections (`GracefulShutdown`), but both cost every request: hyper arms a timer
//! per request, the drain watch and a per-connection timer are polled at every wake-up of the
//! connection, and together they came to about 1 500 instructions of a GET measured with
//! callgrind (a sixth of it). Here a connection only marks where it is (waiting for a head,
//! or serving a request) with plain stores, and a single supervisor task looks at all of them
//! a few times per timeout period: it counts the periods a connection has spent waiting, cuts
//! one that has waited too long, and tells every connection when the server drains. A request
//! pays two stores and one load; no clock is read and no timer is armed on its way.
//!
//! The bound is a count of ticks, so a connection is cut between `header_timeout` and one
//! tick (a tenth of it) later. Like hyper's, it covers the wait for a head only: a handler
//! that takes long, or a request body that trickles in, is not cut off by it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Poll, Waker};
use std::time::Duration;
use tokio::sync::Notify;

/// A connection is waiting for a request's head (between requests, or before the first).
const WAITING: u8 = 0;
/// A connection is serving a request: from its head's arrival to its response being ready.
const SERVING: u8 = 1;

/// Signal bit: finish the request in flight, if any, then close.
const DRAIN: u8 = 1;
/// Signal bit: close now (the head did not arrive in time, or the shutdown deadline passed).
const CLOSE: u8 = 2;

/// Ticks per timeout period: the precision of the bound.
const TICKS_PER_TIMEOUT: u32 = 10;

/// What a connection and the supervisor share.
#[derive(Default)]
pub(super) struct Control {
    /// [`WAITING`] or [`SERVING`], written by the connection.
    phase: AtomicU8,
    /// Ticks the connection has spent in its current wait; the connection resets it.
    ticks: AtomicU32,
    /// [`DRAIN`] and [`CLOSE`], set by the supervisor.
    signal: AtomicU8,
    /// The connection's task, to wake when a signal is set.
    waker: Mutex<Option<Waker>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Control {
    /// A request's head has arrived.
    pub(super) fn head_received(&self) {
        self.phase.store(SERVING, Relaxed);
    }

    /// The request's response is ready: the wait for the next head starts.
    pub(super) fn response_ready(&self) {
        self.ticks.store(0, Relaxed);
        self.phase.store(WAITING, Relaxed);
    }

    fn raise(&self, bit: u8) {
        self.signal.fetch_or(bit, Relaxed);
        if let Some(w) = lock(&self.waker).as_ref() {
            w.wake_by_ref();
        }
    }

    /// Drives `conn` (a connection's future) under this control: asks it to drain when the
    /// supervisor says so (`drain` is hyper's `graceful_shutdown`), and drops it when the
    /// supervisor says close. Completes when the connection ends either way.
    pub(super) async fn drive<C: Future>(
        &self,
        mut conn: Pin<&mut C>,
        drain: impl Fn(Pin<&mut C>),
    ) {
        let (mut waker_kept, mut drained) = (false, false);
        std::future::poll_fn(|cx| {
            if !waker_kept {
                // Kept once: the connection is polled by its own task, whose waker stays valid.
                *lock(&self.waker) = Some(cx.waker().clone());
                waker_kept = true;
            }
            let signal = self.signal.load(Relaxed);
            if signal & CLOSE != 0 {
                return Poll::Ready(());
            }
            if signal & DRAIN != 0 && !drained {
                drained = true;
                drain(conn.as_mut());
            }
            conn.as_mut().poll(cx).map(|_| ())
        })
        .await;
    }
}

/// Every open connection's [`Control`], and the supervisor's tick.
pub(super) struct Supervisor {
    /// Live connections (and, until the next tick prunes them, some that have ended).
    connections: Mutex<Vec<Weak<Control>>>,
    /// Wakes the supervisor when the first connection arrives (it sleeps while there is none).
    arrived: Notify,
    /// Ticks a connection may wait for a head.
    limit: u32,
    /// The tick.
    tick: Duration,
}

impl Supervisor {
    /// A supervisor for connections that have `header_timeout` to send each head.
    pub(super) fn new(header_timeout: Duration) -> Self {
        let tick = (header_timeout / TICKS_PER_TIMEOUT)
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        // Cut only after `limit` whole ticks: never before the timeout.
        let limit = header_timeout.as_nanos().div_ceil(tick.as_nanos().max(1));
        Supervisor {
            connections: Mutex::new(Vec::new()),
            arrived: Notify::new(),
            limit: u32::try_from(limit).unwrap_or(u32::MAX),
            tick,
        }
    }

    /// Registers a new connection (waiting for its first head).
    pub(super) fn admit(&self) -> Arc<Control> {
        let control = Arc::new(Control::default());
        let mut all = lock(&self.connections);
        if all.is_empty() {
            self.arrived.notify_one();
        }
        all.push(Arc::downgrade(&control));
        control
    }

    /// Runs the tick until the task is dropped.
    pub(super) async fn run(&self) {
        let mut interval = tokio::time::interval(self.tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if self.tick_once() == 0 {
                self.arrived.notified().await;
                interval.reset();
            }
        }
    }

    /// One tick: counts a tick for every waiting connection and closes those past the limit.
    /// Returns how many connections are open.
    fn tick_once(&self) -> usize {
        let mut all = lock(&self.connections);
        all.retain(|weak| {
            let Some(c) = weak.upgrade() else {
                return false;
            };
            if c.phase.load(Relaxed) == WAITING && c.ticks.fetch_add(1, Relaxed) + 1 > self.limit {
                c.raise(CLOSE);
            }
            true
        });
        all.len()
    }

    /// Signals every open connection (`DRAIN` or `CLOSE`).
    fn signal_all(&self, bit: u8) {
        for c in lock(&self.connections).iter().filter_map(Weak::upgrade) {
            c.raise(bit);
        }
    }

    /// Asks every open connection to finish the request in flight and close.
    pub(super) fn drain_all(&self) {
        self.signal_all(DRAIN);
    }

    /// Closes every open connection now.
    pub(super) fn close_all(&self) {
        self.signal_all(CLOSE);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Context;

    fn waiting(s: &Supervisor) -> Arc<Control> {
        s.admit()
    }

    #[test]
    fn a_waiting_connection_is_closed_after_the_limit_and_not_before() {
        let s = Supervisor::new(Duration::from_secs(1));
        assert_eq!((s.limit, s.tick), (10, Duration::from_millis(100)));
        let c = waiting(&s);
        for _ in 0..10 {
            assert_eq!(s.tick_once(), 1);
            assert_eq!(c.signal.load(Relaxed), 0, "closed before the timeout");
        }
        s.tick_once();
        assert_eq!(c.signal.load(Relaxed), CLOSE);
    }

    #[test]
    fn a_connection_serving_a_request_is_not_counted() {
        let s = Supervisor::new(Duration::from_secs(1));
        let c = waiting(&s);
        for _ in 0..5 {
            s.tick_once();
        }
        c.head_received();
        for _ in 0..50 {
            s.tick_once();
        }
        assert_eq!(c.signal.load(Relaxed), 0);
        // The next wait starts from nothing.
        c.response_ready();
        for _ in 0..10 {
            s.tick_once();
        }
        assert_eq!(c.signal.load(Relaxed), 0);
        s.tick_once();
        assert_eq!(c.signal.load(Relaxed), CLOSE);
    }

    #[test]
    fn ended_connections_are_pruned_and_signals_reach_the_open_ones() {
        let s = Supervisor::new(Duration::from_secs(30));
        assert_eq!((s.limit, s.tick), (30, Duration::from_secs(1)));
        let (a, b) = (waiting(&s), waiting(&s));
        drop(b);
        assert_eq!(s.tick_once(), 1);
        s.drain_all();
        assert_eq!(a.signal.load(Relaxed), DRAIN);
        s.close_all();
        assert_eq!(a.signal.load(Relaxed), DRAIN | CLOSE);
        drop(a);
        assert_eq!(s.tick_once(), 0);
    }

    #[test]
    fn short_timeouts_tick_at_most_every_ten_milliseconds() {
        let s = Supervisor::new(Duration::from_millis(25));
        assert_eq!((s.limit, s.tick), (3, Duration::from_millis(10)));
    }

    #[tokio::test]
    async fn a_signal_wakes_and_ends_the_driven_connection() {
        let s = Supervisor::new(Duration::from_secs(1));
        let c = s.admit();
        let drained = std::sync::atomic::AtomicBool::new(false);
        let mut pending = std::pin::pin!(std::future::pending::<()>());
        let driven = c.drive(pending.as_mut(), |_| drained.store(true, Relaxed));
        let mut driven = std::pin::pin!(driven);
        // Polled once: it waits, with its waker kept.
        assert!(futures_poll(driven.as_mut()).is_pending());
        s.drain_all();
        assert!(futures_poll(driven.as_mut()).is_pending());
        assert!(drained.load(Relaxed), "the drain reached the connection");
        s.close_all();
        tokio::time::timeout(Duration::from_secs(5), driven)
            .await
            .expect("a closed connection ends");
    }

    fn futures_poll<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        let waker = Waker::noop();
        f.poll(&mut Context::from_waker(waker))
    }
}
