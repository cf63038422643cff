//! userd: a Users API server that keeps the article's contract byte for byte and is built to be
//! the fastest, sturdiest way to run it.
//!
//! # Layout
//!
//! The files follow a request from the socket to the bytes that answer it:
//!
//! - [`config`]: flags and their environment twins, read in one place.
//! - [`server`]: the listener, the accept loop, hyper's HTTP/1 connection settings, the header
//!   timeout (one watchdog per connection), shutdown; and the seam everything else plugs into:
//!   a [`server::Service`] answers requests, a [`server::Layer`] wraps one in another.
//! - [`router`]: the matchit table: path to route, method to endpoint, 404 / 405 + `Allow`.
//! - [`handlers`]: HTTP glue only: check the request, borrow its input, call the Users
//!   service, write the answer. [`App`] is the application as a service.
//! - [`users`]: the rules of the domain, with no HTTP types: ids, validation and
//!   normalisation, the user's JSON, pages, and every operation as read, decide,
//!   compare-and-swap ([`users::Users`]), failing with the domain's own [`users::Error`].
//! - [`store`]: the [`store::UserStore`] trait, the [`store::Write`] every store applies, and
//!   the backends: the sharded in-memory map ([`store::MemoryStore`]) and the durable log that
//!   wraps it ([`store::LogStore`]). Storage knows no HTTP and no policy.
//! - [`response`]: the JSON envelope, the one writer of every body, and
//!   ([`response::errors`]) the one table from an error to a status and a message.
//!
//! Dependencies point down this list, never back up: the rules and the stores import nothing
//! of HTTP.

pub mod config;
pub mod handlers;
pub mod response;
pub mod router;
pub mod server;
pub mod store;
pub mod users;

pub use handlers::App;
