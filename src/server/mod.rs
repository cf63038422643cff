//! The listener, the accept loop, the HTTP/1 connection settings and graceful shutdown.
//!
//! The caller binds the listener and passes a shutdown future (so tests bind port 0 and stop
//! the server when they like): [`run`] accepts until that future completes, then stops
//! accepting, asks every open connection to finish its in-flight request and close, and waits
//! for them up to a deadline. What it serves is any [`Service`]: the application, or the
//! application wrapped in [`Layer`]s.

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

mod service;
mod supervisor;

pub use service::{Layer, Peer, RequestBody, Service};
use supervisor::Supervisor;

/// How the server treats connections.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Most connections served at once; the accept loop waits for a free slot beyond that, so
    /// further clients queue in the kernel's backlog instead of costing memory here.
    pub max_connections: usize,
    /// How long a client has to send a request's headers, counted from when the connection
    /// starts waiting for them (so it also bounds how long an idle keep-alive connection lives).
    pub header_timeout: Duration,
    /// How long shutdown waits for in-flight requests before it gives up on them.
    pub shutdown_timeout: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_connections: 10_000,
            header_timeout: Duration::from_secs(30),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// The HTTP/1 settings every connection is served with, each chosen on purpose.
fn http1_builder() -> http1::Builder {
    let mut b = http1::Builder::new();
    b
        // Clients (wrk, oha, nginx upstreams, browsers) reuse connections; that is most of the
        // speed of a small API.
        .keep_alive(true)
        // Pipelined clients send many requests in one write: answer them in one write too,
        // instead of one flush (and one syscall) per response.
        .pipeline_flush(true)
        // No `header_read_timeout` (nor the timer it needs): hyper's costs ~1 100 instructions
        // per request, 11% of a GET. `deadline` enforces the same bound (a slow or absent
        // head, an idle keep-alive connection) with one watchdog per connection.
        .header_read_timeout(None)
        // A client may shut down its sending side after the request (`curl` does with some
        // options, `nc -N` does): still answer the request instead of closing at once.
        .half_close(true);
    b
}

/// Serves `service` on `listener` until `shutdown` completes, then shuts down gracefully.
///
/// The service is `'static`: it lives as long as the process, so each request reaches it
/// through a plain reference instead of a shared refcount that every core would write.
pub async fn run<S: Service>(
    listener: TcpListener,
    service: &'static S,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) {
    let builder = http1_builder();
    let max = u32::try_from(settings.max_connections.max(1)).unwrap_or(u32::MAX);
    let slots = Arc::new(Semaphore::new(max as usize));
    let supervisor = Arc::new(Supervisor::new(settings.header_timeout));
    let ticking = tokio::spawn({
        let supervisor = supervisor.clone();
        async move { supervisor.run().await }
    });
    let mut shutdown = std::pin::pin!(shutdown);

    loop {
        // Take a connection slot before accepting (as mini-redis does), so that at the limit
        // new clients wait in the backlog rather than being accepted and starved.
        let slot = tokio::select! {
            biased;
            () = &mut shutdown => break,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break, // the semaphore is never closed
            },
        };
        let (stream, peer) = tokio::select! {
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, addr)) => (stream, Peer { addr }),
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
        };
        // Responses are small and written whole: send them now, not after the client's
        // delayed ACK (Nagle's algorithm would hold a pipelined tail for up to 40 ms).
        let _ = stream.set_nodelay(true);
        let control = supervisor.admit();
        let io = TokioIo::new(stream);
        let watched = control.clone();
        let serve = service_fn(move |req: Request<Incoming>| {
            watched.head_received();
            let watched = watched.clone();
            async move {
                let res = service.call(req, peer).await;
                watched.response_ready();
                Ok::<_, Infallible>(res)
            }
        });
        let conn = builder.serve_connection(io, serve);
        tokio::spawn(async move {
            let conn = std::pin::pin!(conn);
            // A connection error is the client's business (reset, bad request line); hyper
            // has already answered what it could.
            control.drive(conn, |c| c.graceful_shutdown()).await;
            drop(slot);
        });
    }

    drop(listener);
    supervisor.drain_all();
    // Every connection holds a slot: all of them back means every connection has ended.
    let all_closed = slots.acquire_many(max);
    if tokio::time::timeout(settings.shutdown_timeout, all_closed)
        .await
        .is_err()
    {
        eprintln!("userd: shutdown deadline passed; closing the remaining connections");
        supervisor.close_all();
    }
    ticking.abort();
}

/// What to do when `accept` fails. A connection that was reset before we took it is nothing
/// to worry about. Running out of file descriptors or memory is: log it and pause, so the loop
/// neither spins on the error nor exits (as axum's serve loop does).
async fn accept_error(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    ) {
        return;
    }
    eprintln!("userd: accept failed: {e}; pausing 100 ms");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// Completes on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = async {
        match signal(SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
