//! The header timeout: a client has `header_timeout` to send a request's head, counted from
//! when the connection starts waiting for it (so it also bounds an idle keep-alive connection).
//!
//! hyper can enforce this itself (`header_read_timeout` with a timer), but it arms a timer for
//! every request and polls the connection once more after every response to start it: about
//! 1 100 instructions, 11% of a whole GET measured with callgrind, which put userd's CPU per
//! GET above a bare hyper server's. Here one watchdog per connection does the same job: the
//! connection marks when it starts waiting for a head (its first read that finds nothing
//! after a response, or after it opened) and when a head arrives (the service is called), and
//! the watchdog wakes once per timeout period to compare. Per request that is two flag
//! updates and one clock read.
//!
//! Like hyper's, the bound covers the head only: a handler that takes long, or a request body
//! that trickles in, is not cut off by it.

use hyper::rt::{Read, ReadBufCursor, Write};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A connection's waiting state, shared by its IO, its service and its watchdog (all in the
/// connection's one task, so relaxed atomics suffice: they only need to be `Sync`).
#[derive(Default)]
pub(super) struct Deadline {
    /// When the connection began waiting for a request's head, as nanoseconds since [`epoch`]
    /// plus one; 0 while it is not waiting.
    waiting_since: AtomicU64,
    /// True from a request's head arriving to its response being ready: reads then are for a
    /// body or for noticing a hang-up, not for a head.
    in_request: AtomicBool,
}

fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

impl Deadline {
    /// A request's head has arrived.
    pub(super) fn head_received(&self) {
        self.in_request.store(true, Relaxed);
        self.waiting_since.store(0, Relaxed);
    }

    /// The request's response is ready; the next read that finds nothing starts the clock.
    pub(super) fn response_ready(&self) {
        self.in_request.store(false, Relaxed);
    }

    /// A read found nothing to read.
    fn read_blocked(&self) {
        if !self.in_request.load(Relaxed) && self.waiting_since.load(Relaxed) == 0 {
            let since = Instant::now().saturating_duration_since(epoch());
            self.waiting_since
                .store(since.as_nanos() as u64 + 1, Relaxed);
        }
    }

    /// When the connection started waiting for a head, if it is waiting.
    fn waiting_since(&self) -> Option<Instant> {
        match self.waiting_since.load(Relaxed) {
            0 => None,
            n => Some(epoch() + Duration::from_nanos(n - 1)),
        }
    }

    /// Completes when the connection has waited `timeout` for a head. It wakes once per
    /// period at most (a single timer entry per connection, re-armed lazily).
    pub(super) async fn expired(self: Arc<Self>, timeout: Duration) {
        let mut check = Instant::now() + timeout;
        loop {
            tokio::time::sleep_until(check.into()).await;
            let now = Instant::now();
            check = match self.waiting_since() {
                Some(since) if now.saturating_duration_since(since) >= timeout => return,
                Some(since) => since + timeout,
                None => now + timeout,
            };
        }
    }
}

/// A connection's IO, reporting reads that find nothing to its [`Deadline`].
pub(super) struct Watched<T> {
    io: T,
    deadline: Arc<Deadline>,
}

impl<T> Watched<T> {
    pub(super) fn new(io: T, deadline: Arc<Deadline>) -> Self {
        Watched { io, deadline }
    }
}

impl<T: Read + Unpin> Read for Watched<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let read = Pin::new(&mut self.io).poll_read(cx, buf);
        if read.is_pending() {
            self.deadline.read_blocked();
        }
        read
    }
}

impl<T: Write + Unpin> Write for Watched<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_waiting_for_a_head_expires() {
        let d = Arc::new(Deadline::default());
        d.read_blocked();
        let start = Instant::now();
        d.clone().expired(Duration::from_millis(100)).await;
        assert!(start.elapsed() >= Duration::from_millis(100));
    }

    #[tokio::test]
    async fn a_request_in_progress_does_not_expire() {
        let d = Arc::new(Deadline::default());
        d.read_blocked();
        d.head_received();
        // Reads during the request (a body, a hang-up check) do not start the clock.
        d.read_blocked();
        let waited = tokio::time::timeout(
            Duration::from_millis(300),
            d.clone().expired(Duration::from_millis(100)),
        )
        .await;
        assert!(waited.is_err(), "expired during a request");
        // Once the response is ready, waiting for the next head counts again.
        d.response_ready();
        d.read_blocked();
        d.clone().expired(Duration::from_millis(100)).await;
    }
}
