//! userd: a Users API server that keeps the article's contract byte for byte and is built to be
//! the fastest, sturdiest way to run it.
//!
//! # Layout
//!
//! The files follow a request from the socket to the bytes that answer it:
//!
//! - [`config`]: flags and their environment twins, read in one place.
//! - [`server`]: the listener, the accept loop, hyper's HTTP/1 connection settings, the header
//!   timeout (one watchdog per connection), shutdown.
//! - [`router`]: the matchit table: path to route, method to endpoint, 404 / 405 + `Allow`.
//! - [`handlers`]: HTTP glue only: check the request, borrow its input, call the rules and the
//!   store, write the answer.
//! - [`users`]: the rules of the domain (ids, validation, normalisation, the user's JSON,
//!   unique emails, changes as compare-and-swap on the version, pages), with no HTTP types.
//! - [`store`]: the [`store::UserStore`] trait and its backends: the sharded in-memory map
//!   ([`store::MemoryStore`]) with its email index ([`store::emails`]), and the durable log
//!   that wraps it ([`store::LogStore`]).
//! - [`response`]: the JSON envelope and the one error type, [`response::ApiError`], mapped to a
//!   status and a body in one place.

pub mod config;
pub mod handlers;
pub mod response;
pub mod router;
pub mod server;
pub mod store;
pub mod users;

pub use handlers::App;
