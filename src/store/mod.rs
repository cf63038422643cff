//! Where users live: the [`UserStore`] trait and its backends.
//!
//! Handlers see only the trait, so a backend plugs in without touching them. Methods return
//! futures so that a backend may wait (for a disk flush, a database round trip); the in-memory
//! backend answers with futures that are ready at once, and static dispatch (the server is
//! generic over its store) means a read pays for no boxing and no virtual call.
//!
//! A user is stored as its JSON document, serialized once when it is written; reads hand out
//! those bytes (see [`memory`] for how they are kept).

use crate::users::{Cursor, UserId};
use bytes::Bytes;
use std::future::Future;

pub mod emails;
pub mod log;
pub mod memory;

pub use log::LogStore;
pub use memory::MemoryStore;

/// Why a store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The store refuses writes for now (for example after a failed disk flush); reads may go on.
    Unavailable(&'static str),
    /// Another user has this email (compared by [`crate::users::email_key`]).
    EmailTaken,
    /// The user is gone or its version is no longer the one the write expected: read again.
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

/// An email that a write takes (and, for an update, the one it lets go), as uniqueness keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailChange {
    /// The key the user had.
    pub old: String,
    /// The key the user gets; no other user may hold it.
    pub new: String,
}

/// A place to keep users.
///
/// Writes that change an existing user are compare-and-swap on its version: the caller read
/// the user, decided the change and gives the version it read; the store refuses with
/// [`StoreError::Stale`] if the user changed (or went) meanwhile. So the rules stay in
/// [`crate::users`] and the store needs no lock held across the caller's work.
pub trait UserStore: Send + Sync + 'static {
    /// Returns the user with this id, or `None` when there is none.
    fn get(&self, id: UserId) -> impl Future<Output = Result<Option<Stored>, StoreError>> + Send;

    /// Stores a new user's JSON document (version 1) under its (fresh, random) id, if and only
    /// if no user holds `email_key`; else [`StoreError::EmailTaken`]. Two racing creates with
    /// one key: exactly one succeeds.
    ///
    /// Returns once the user is as durable as the backend promises; a reader that starts after
    /// that sees the user.
    fn create(
        &self,
        id: UserId,
        email_key: String,
        doc: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Replaces the document of user `id`, whose version must still be `expected` (else
    /// [`StoreError::Stale`]); `doc` holds version `expected + 1`. With `email`, the user
    /// takes the new key first ([`StoreError::EmailTaken`] if another user holds it) and lets
    /// the old one go.
    fn update(
        &self,
        id: UserId,
        expected: u32,
        email: Option<EmailChange>,
        doc: Bytes,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes user `id`, whose version must still be `expected` (else [`StoreError::Stale`]),
    /// and lets its email (`email_key`, read with that version) go.
    fn delete(
        &self,
        id: UserId,
        expected: u32,
        email_key: String,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Up to `limit` users created after `after` (from the first user if `None`), in
    /// creation order. Users that exist for a whole walk of pages are each listed exactly
    /// once, whatever is created or deleted meanwhile.
    fn list(
        &self,
        after: Option<Cursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Page, StoreError>> + Send;

    /// How many users are stored.
    fn len(&self) -> usize;

    /// Returns true if and only if no user is stored.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
