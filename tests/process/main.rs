//! Tests of userd as a process and of what only the durable store has: the real `userd`
//! executable (start-up line, flags, exit codes, signals), kill -9 under load, disk faults,
//! crashes in the middle of a snapshot, a second userd on one data directory.
//!
//! The behaviour of the API itself is `tests/api`, which runs against every store; this
//! binary runs once. It shares that suite's harness and client.

#[path = "../api/helpers/mod.rs"]
#[allow(dead_code)]
mod helpers;

mod binary;
mod durable;
