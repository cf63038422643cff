//! Where users live: the [`UserStore`] trait and its backends.
//!
//! Handlers see only the trait, so a backend plugs in without touching them. Methods return
//! futures so that a backend may wait (for a disk flush, a database round trip); the in-memory
//! backend answers with futures that are ready at once, and static dispatch (the server is
//! generic over its store) means a read pays for no boxing and no virtual call.
//!
//! A user is stored as its JSON document, serialized once when it is written; reads hand out
//! those bytes (see [`memory`] for how they are kept).

use crate::users::UserId;
use bytes::Bytes;
use std::future::Future;

pub mod log;
pub mod memory;

pub use log::LogStore;
pub use memory::MemoryStore;

/// Why a store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The store refuses writes for now (for example after a failed disk flush); reads may go on.
    Unavailable(&'static str),
}

/// A place to keep users.
pub trait UserStore: Send + Sync + 'static {
    /// Returns the JSON document of the user with this id, or `None` when there is none.
    fn get(&self, id: UserId) -> impl Future<Output = Result<Option<Bytes>, StoreError>> + Send;

    /// Stores a new user's JSON document under its (fresh, random) id.
    ///
    /// Returns once the user is as durable as the backend promises; a reader that starts after
    /// that sees the user.
    fn insert(&self, id: UserId, doc: Bytes)
        -> impl Future<Output = Result<(), StoreError>> + Send;

    /// How many users are stored.
    fn len(&self) -> usize;

    /// Returns true if and only if no user is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
