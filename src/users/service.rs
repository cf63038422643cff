//! The Users service: every operation on users, read or write, goes through here.
//!
//! A write is decided once, here, into a [`Write`] that carries what every store needs (the
//! user's fields with its strings escaped, its version, the email key, the version the write
//! was decided on); the store only checks that version and the email's uniqueness, and
//! applies it. A change is read, decide, compare-and-swap: if another change got to the user
//! first, the store says so ([`StoreError::Stale`]) and the change starts over from the user's
//! new state, so that the caller's precondition is judged against what is really replaced.
//!
//! Reads hand the caller a [`UserView`] to render from, inside the store's read (the store may
//! hold a lock): the caller copies what it needs, nothing more.

use super::document::{escape, rfc3339};
use super::error::Error;
use super::fields::{email_key, NewUser, Patch};
use super::id::UserId;
use super::page::Cursor;
use crate::store::{StoreError, UserStore, UserView, Write};
use std::time::SystemTime;

/// How often a change to a user is retried when a concurrent change got there first, before
/// the caller is told the user is busy. Each retry means another writer made progress, so the
/// loop cannot spin without the store moving on; but a loser gains no place in line, so with
/// `n` clients changing one user at once a change fails after `k` attempts with odds of about
/// `((n - 1) / n)^k`. At 1024 that is below one in ten million for 64 clients on one user,
/// where 64 attempts failed one durable PATCH in 400 with 16.
const MAX_ATTEMPTS: usize = 1024;

/// The operations on users, over a store.
pub struct Users<S> {
    store: S,
}

/// A user's state read out of the store, to decide a change on.
struct Current {
    version: u32,
    created_at: String,
    name: String,
    email: String,
    email_key: String,
}

impl Current {
    fn of(user: UserView<'_>) -> Self {
        Current {
            version: user.version,
            created_at: user.created_at.to_owned(),
            name: user.name.to_owned(),
            email: user.email.to_owned(),
            email_key: user.email_key.to_owned(),
        }
    }
}

impl<S: UserStore> Users<S> {
    /// The service over `store`.
    pub fn new(store: S) -> Self {
        Users { store }
    }

    /// The store behind the service.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Calls `read` with user `id` (inside the store's read) and returns what it returns.
    #[inline]
    pub async fn get<R: Send>(
        &self,
        id: UserId,
        read: impl FnOnce(UserView<'_>) -> R + Send,
    ) -> Result<R, Error> {
        self.store.get(id, read).await?.ok_or(Error::NotFound)
    }

    /// Creates a user with a fresh id; returns what `then` makes of it as stored.
    pub async fn create<R>(
        &self,
        user: NewUser<'_>,
        then: impl FnOnce(&UserView<'_>) -> R,
    ) -> Result<R, Error> {
        let stamp = rfc3339(SystemTime::now());
        let (name, email) = (escape(user.name()), escape(user.email()));
        let key = email_key(user.email());
        let stamp = stamp.as_str();
        let view = UserView {
            id: UserId::random(),
            version: 1,
            created_at: stamp,
            updated_at: stamp,
            name: &name,
            email: &email,
            email_key: &key,
        };
        self.store.write(Write::Create(view)).await?;
        Ok(then(&view))
    }

    /// Applies `patch` to user `id` if `accepts` its current version (the caller's
    /// precondition); returns what `then` makes of the user as stored afterwards.
    pub async fn update<R>(
        &self,
        id: UserId,
        patch: Patch<'_>,
        accepts: impl Fn(u32) -> bool,
        then: impl FnOnce(&UserView<'_>) -> R,
    ) -> Result<R, Error> {
        let name = patch.name().map(escape);
        let email = patch.email().map(|e| (escape(e), email_key(e)));
        for _ in 0..MAX_ATTEMPTS {
            let current = self.get(id, Current::of).await?;
            if !accepts(current.version) {
                return Err(Error::PreconditionFailed);
            }
            let stamp = rfc3339(SystemTime::now());
            let (email, key) = match &email {
                Some((email, key)) => (&**email, &**key),
                None => (current.email.as_str(), current.email_key.as_str()),
            };
            let view = UserView {
                id,
                version: current.version.saturating_add(1),
                created_at: &current.created_at,
                updated_at: stamp.as_str(),
                name: name.as_deref().unwrap_or(&current.name),
                email,
                email_key: key,
            };
            let write = Write::Update {
                expected: current.version,
                user: view,
            };
            match self.store.write(write).await {
                Ok(()) => return Ok(then(&view)),
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Deletes user `id` if `accepts` its current version (the caller's precondition).
    pub async fn delete(&self, id: UserId, accepts: impl Fn(u32) -> bool) -> Result<(), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let version = self.get(id, |u| u.version).await?;
            if !accepts(version) {
                return Err(Error::PreconditionFailed);
            }
            let write = Write::Delete {
                id,
                expected: version,
            };
            match self.store.write(write).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Calls `each` with up to `limit` users created after `after`, in creation order;
    /// returns where the next page starts, if there are users after it.
    pub async fn list(
        &self,
        after: Option<Cursor>,
        limit: usize,
        each: impl FnMut(UserView<'_>) + Send,
    ) -> Result<Option<Cursor>, Error> {
        Ok(self.store.list(after, limit, each).await?)
    }
}
