//! The seam between the server and what it serves: a [`Service`] answers one request, and a
//! [`Layer`] wraps a service in another (request ids, metrics, access logs, rate limits,
//! tokens), so that a cross-cutting concern is added around the application, never inside
//! its handlers.
//!
//! The trait is userd's own rather than tower's: a service is shared by reference (the server
//! holds a `&'static` to it, so a request costs no refcount), answers every request (errors
//! are responses, so there is no error type to thread through), and is told who the client
//! is. Static dispatch all the way down: a stack of layers compiles to one function.

use crate::response::ApiResponse;
use bytes::Bytes;
use hyper::Request;
use std::future::Future;
use std::net::SocketAddr;

/// A request body a service can read: hyper's, or any other (tests and benches use
/// [`http_body_util::Full`]).
pub trait RequestBody: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static {}

impl<B: hyper::body::Body<Data = Bytes> + Send + Unpin + 'static> RequestBody for B {}

/// What the server knows of the connection a request came on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// The client's address, as the socket sees it (a proxy's, behind one).
    pub addr: SocketAddr,
}

/// Answers requests. Every request gets an answer: failures are responses too.
pub trait Service: Send + Sync + 'static {
    /// Answers `req`, which came from `peer`.
    fn call<B: RequestBody>(
        &self,
        req: Request<B>,
        peer: Peer,
    ) -> impl Future<Output = ApiResponse> + Send;
}

/// Wraps a service in another.
pub trait Layer<S> {
    /// The wrapped service.
    type Service: Service;

    /// Wraps `inner`.
    fn layer(self, inner: S) -> Self::Service;
}
