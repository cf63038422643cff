//! Where users live: the [`UserStore`] trait, the [`Write`] every store applies, and the
//! backends.
//!
//! Storage knows no HTTP and no policy: the rules ([`crate::users`]) decide a write (the
//! user's fields, its version, its email key) and hand the store a [`Write`] that carries all
//! of it; the store checks the version the write was decided on and the uniqueness of the
//! email (the two things only the store can see atomically), and applies it. Readers get a
//! [`UserView`]: the rules render the JSON from its fields.
//!
//! Methods return futures so that a backend may wait (for a disk flush, a database round
//! trip); the in-memory backend answers with futures that are ready at once, and static
//! dispatch (the server is generic over its store) means a read pays for no boxing and no
//! virtual call.

use crate::users::id::UserId;
use crate::users::page::Cursor;
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

/// One user, as every store keeps it and the rules read and write it: the fields of its JSON
/// document, the strings already JSON-escaped (as they stand between the quotes), and the
/// uniqueness key of its email.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserView<'a> {
    /// The user's id.
    pub id: UserId,
    /// 1 at creation, one more with every change.
    pub version: u32,
    /// When the user was created, RFC 3339 (24 characters).
    pub created_at: &'a str,
    /// When the user last changed, RFC 3339 (24 characters).
    pub updated_at: &'a str,
    /// The name, JSON-escaped.
    pub name: &'a str,
    /// The email, JSON-escaped.
    pub email: &'a str,
    /// The email's uniqueness key: no two users hold one.
    pub email_key: &'a str,
}

/// A write as the rules decided it: everything a store needs to check and apply it, so that
/// no store reads a user to find out what changed. The email key a user lets go is the one
/// the store holds for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write<'a> {
    /// A new user under a fresh random id, at version 1.
    Create(UserView<'a>),
    /// A user's whole new state (at version `expected + 1`), if its version is still
    /// `expected`.
    Update {
        /// The version the change was decided on.
        expected: u32,
        /// The user after the change.
        user: UserView<'a>,
    },
    /// Remove user `id` if its version is still `expected`.
    Delete {
        /// The user.
        id: UserId,
        /// The version the delete was decided on.
        expected: u32,
    },
}

impl Write<'_> {
    /// The user the write is about.
    pub fn id(&self) -> UserId {
        match self {
            Write::Create(user) | Write::Update { user, .. } => user.id,
            Write::Delete { id, .. } => *id,
        }
    }

    /// The version the write was decided on (`None` for a create: no user yet).
    pub fn expected(&self) -> Option<u32> {
        match self {
            Write::Create(_) => None,
            Write::Update { expected, .. } | Write::Delete { expected, .. } => Some(*expected),
        }
    }

    /// The user's state once the write is applied (`None`: the user is gone).
    pub fn user(&self) -> Option<&UserView<'_>> {
        match self {
            Write::Create(user) | Write::Update { user, .. } => Some(user),
            Write::Delete { .. } => None,
        }
    }
}

/// The version check, for every store: a create needs a user that does not exist, an update
/// or a delete the version it was decided on. `current` is the user's version as the store
/// will have it when the write applies (`None`: no such user).
pub fn check(expected: Option<u32>, current: Option<u32>) -> Result<(), StoreError> {
    (expected == current).then_some(()).ok_or(StoreError::Stale)
}

/// A place to keep users.
///
/// Writes are compare-and-swap on the user's version: the caller read the user, decided the
/// change and says which version it decided on; the store refuses with [`StoreError::Stale`]
/// if the user changed (or went) meanwhile. So the rules stay in [`crate::users`] and the
/// store needs no lock held across the caller's work.
pub trait UserStore: Send + Sync + 'static {
    /// Calls `read` with user `id`, if there is one, and returns what it returns. A backend
    /// that keeps users in memory calls it under its read lock: `read` should only copy or
    /// render what it needs.
    fn get<R, F>(
        &self,
        id: UserId,
        read: F,
    ) -> impl Future<Output = Result<Option<R>, StoreError>> + Send
    where
        R: Send,
        F: FnOnce(UserView<'_>) -> R + Send;

    /// Checks `write` (see [`check`], and the email it takes) and applies it.
    ///
    /// Two racing writes that take one email key: at most one succeeds. Returns once the
    /// write is as durable as the backend promises; a reader that starts after that sees it.
    fn write<'a>(
        &'a self,
        write: Write<'a>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'a;

    /// Calls `each` with up to `limit` users created after `after` (from the first user if
    /// `None`), in creation order; returns where the next page starts, or `None` if there is
    /// no user after this page. Users that exist for a whole walk of pages are each listed
    /// exactly once, whatever is created or deleted meanwhile.
    fn list<F>(
        &self,
        after: Option<Cursor>,
        limit: usize,
        each: F,
    ) -> impl Future<Output = Result<Option<Cursor>, StoreError>> + Send
    where
        F: FnMut(UserView<'_>) + Send;

    /// How many users are stored.
    fn count(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// `Ok` if and only if the store can take writes now; else why not (readiness).
    fn writable(&self) -> Result<(), Outage>;

    /// Makes everything acknowledged durable and stops taking writes; reads may go on.
    /// Calling it again does nothing.
    fn close(&self);
}

/// Users for the tests of the stores: owned fields, lent out as [`UserView`]s.
#[cfg(test)]
pub(crate) mod testing {
    use super::UserView;
    use crate::users::id::UserId;

    /// A user with owned fields.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct TestUser {
        pub(crate) id: UserId,
        pub(crate) version: u32,
        pub(crate) created_at: String,
        pub(crate) updated_at: String,
        pub(crate) name: String,
        pub(crate) email: String,
        pub(crate) email_key: String,
    }

    impl TestUser {
        /// A user at version 1 whose email is its own key.
        pub(crate) fn new(name: &str, email: &str) -> Self {
            TestUser {
                id: UserId::random(),
                version: 1,
                created_at: "2026-12-04T03:29:13.123Z".into(),
                updated_at: "2026-12-04T03:29:13.123Z".into(),
                name: name.into(),
                email: email.into(),
                email_key: email.into(),
            }
        }

        /// The same user one version on, with another name and email.
        pub(crate) fn changed(&self, name: &str, email: &str) -> Self {
            TestUser {
                version: self.version + 1,
                updated_at: "2026-12-04T03:30:00.000Z".into(),
                name: name.into(),
                email: email.into(),
                email_key: email.into(),
                ..self.clone()
            }
        }

        /// The user as stores take and give it.
        pub(crate) fn view(&self) -> UserView<'_> {
            UserView {
                id: self.id,
                version: self.version,
                created_at: &self.created_at,
                updated_at: &self.updated_at,
                name: &self.name,
                email: &self.email,
                email_key: &self.email_key,
            }
        }

        /// The user a store hands out, owned.
        pub(crate) fn of(view: UserView<'_>) -> Self {
            TestUser {
                id: view.id,
                version: view.version,
                created_at: view.created_at.into(),
                updated_at: view.updated_at.into(),
                name: view.name.into(),
                email: view.email.into(),
                email_key: view.email_key.into(),
            }
        }
    }
}
