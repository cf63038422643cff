//! Where users live: the [`UserStore`] trait, the [`Write`] every store applies, and the
//! backends.
//!
//! Storage knows no HTTP and no policy: the rules ([`crate::users`]) decide a write (the
//! document, its version, the email keys it takes and lets go) and hand the store a [`Write`]
//! that carries all of it; the store checks the version the write was decided on and the
//! uniqueness of the email (the two things only the store can see atomically), and applies it.
//!
//! Methods return futures so that a backend may wait (for a disk flush, a database round
//! trip); the in-memory backend answers with futures that are ready at once, and static
//! dispatch (the server is generic over its store) means a read pays for no boxing and no
//! virtual call.

use crate::users::id::UserId;
use crate::users::page::Cursor;
use bytes::Bytes;
use std::future::Future;

pub mod log;
pub mod memory;

pub use log::LogStore;
pub use memory::MemoryStore;

/// Why a store cannot take writes (or serve at all) for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// The disk is full; writes are refused until space is freed and userd restarted.
    DiskFull,
    /// A write or fsync failed; writes are refused until userd is restarted.
    StorageFailed,
    /// The store is closed (userd is shutting down).
    Closed,
    /// The user's record would be larger than the store can hold.
    TooLarge,
}

/// Why a store did not do what was asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The store refuses this for now; reads may go on.
    Unavailable(Outage),
    /// Another user holds the email key the write takes.
    EmailTaken,
    /// The user is gone or its version is no longer the one the write was decided on: read
    /// again and decide again.
    Stale,
}

/// A stored user: its JSON document and its version (kept next to the document, so that an
/// `ETag` costs no parsing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The JSON document, as serialized when it was written.
    pub doc: Bytes,
    /// The version written in the document.
    pub version: u32,
}

/// A page of users in creation order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// The users' documents, oldest first.
    pub docs: Vec<Bytes>,
    /// Where the next page starts, or `None` if this page holds the last user.
    pub next: Option<Cursor>,
}

/// A write as the rules decided it: everything a store needs to check and apply it, so that
/// no store reads a document to find out what changed. The email key a user lets go is the
/// one the store holds for it: the store keeps each user's key beside its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// A new user under a fresh random id: `doc` holds version 1, `email_key` is the key it
    /// takes.
    Create {
        /// The new user.
        id: UserId,
        /// The uniqueness key of its email.
        email_key: String,
        /// Its JSON document.
        doc: Bytes,
    },
    /// User `id`'s whole new document, if its version is still `expected`; `doc` holds
    /// version `expected + 1`, `email_key` is the key of its (new or unchanged) email.
    Update {
        /// The user.
        id: UserId,
        /// The version the change was decided on.
        expected: u32,
        /// The uniqueness key of its email after the change.
        email_key: String,
        /// The new document.
        doc: Bytes,
    },
    /// Remove user `id` if its version is still `expected`.
    Delete {
        /// The user.
        id: UserId,
        /// The version the delete was decided on.
        expected: u32,
    },
}

impl Write {
    /// The user the write is about.
    pub fn id(&self) -> UserId {
        match self {
            Write::Create { id, .. } | Write::Update { id, .. } | Write::Delete { id, .. } => *id,
        }
    }

    /// The user's version once the write is applied (`None`: the user is gone).
    pub fn version_after(&self) -> Option<u32> {
        match self {
            Write::Create { .. } => Some(1),
            Write::Update { expected, .. } => Some(expected.wrapping_add(1)),
            Write::Delete { .. } => None,
        }
    }

    /// The email key the user holds once the write is applied (`None`: the user is gone).
    pub fn claims(&self) -> Option<&str> {
        match self {
            Write::Create { email_key, .. } | Write::Update { email_key, .. } => Some(email_key),
            Write::Delete { .. } => None,
        }
    }

    /// The document the write stores, if it stores one.
    pub fn doc(&self) -> Option<&Bytes> {
        match self {
            Write::Create { doc, .. } | Write::Update { doc, .. } => Some(doc),
            Write::Delete { .. } => None,
        }
    }

    /// The version check, for every store: a create needs a user that does not exist, an
    /// update or a delete the version it was decided on. `current` is the user's version as
    /// the store will have it when this write applies (`None`: no such user).
    pub fn check(&self, current: Option<u32>) -> Result<(), StoreError> {
        let ok = match self {
            Write::Create { .. } => current.is_none(),
            Write::Update { expected, .. } | Write::Delete { expected, .. } => {
                current == Some(*expected)
            }
        };
        ok.then_some(()).ok_or(StoreError::Stale)
    }
}

/// A place to keep users.
///
/// Writes are compare-and-swap on the user's version: the caller read the user, decided the
/// change and says which version it decided on; the store refuses with [`StoreError::Stale`]
/// if the user changed (or went) meanwhile. So the rules stay in [`crate::users`] and the
/// store needs no lock held across the caller's work.
pub trait UserStore: Send + Sync + 'static {
    /// Returns the user with this id, or `None` when there is none.
    fn get(&self, id: UserId) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;

    /// Checks `write` (see [`Write::check`] and the email it claims) and applies it.
    ///
    /// Two racing writes that take one email key: at most one succeeds. Returns once the
    /// write is as durable as the backend promises; a reader that starts after that sees it.
    fn write(&self, write: Write) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` users created after `after` (from the first user if `None`), in
    /// creation order. Users that exist for a whole walk of pages are each listed exactly
    /// once, whatever is created or deleted meanwhile.
    fn list(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// How many users are stored.
    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// `Ok` if and only if the store can take writes now; else why not (readiness).
    fn writable(&self) -> Result<(), Outage>;

    /// Makes everything acknowledged durable and stops taking writes; reads may go on.
    /// Calling it again does nothing.
    fn close(&self);
}
