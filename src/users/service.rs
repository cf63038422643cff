//! The Users service: every operation on users, read or write, goes through here.
//!
//! A write is decided once, here, into a [`Write`] that carries what every store needs (the
//! id, the version it was decided on, the email key, the document); the
//! store only checks that version and the email's uniqueness, and applies it. A change is
//! read, decide, compare-and-swap: if another change got to the user first, the store says
//! so ([`StoreError::Stale`]) and the change starts over from the user's new state, so that
//! the caller's precondition is judged against what is really replaced.

use super::document::{new_user_json, Doc};
use super::error::Error;
use super::fields::{email_key, NewUser, Patch};
use super::id::UserId;
use super::page::Cursor;
use crate::store::{Page, StoreError, Stored, UserStore, Write};
use bytes::Bytes;
use std::time::SystemTime;

/// How often a change to a user is retried when a concurrent change got there first, before
/// the caller is told the user is busy (each retry means another writer made progress).
const MAX_ATTEMPTS: usize = 64;

/// The operations on users, over a store.
pub struct Users<S> {
    store: S,
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

    /// The user with this id, as stored.
    #[inline]
    pub async fn get(&self, id: UserId) -> Result<Stored, Error> {
        self.store.get(id).await?.ok_or(Error::NotFound)
    }

    /// Creates a user with a fresh id; returns the id and the user as stored.
    pub async fn create(&self, user: NewUser<'_>) -> Result<(UserId, Stored), Error> {
        let id = UserId::random();
        let doc = Bytes::from(new_user_json(id, &user, SystemTime::now()));
        let write = Write::Create {
            id,
            email_key: email_key(user.email()),
            doc: doc.clone(),
        };
        self.store.write(write).await?;
        Ok((id, Stored { doc, version: 1 }))
    }

    /// Applies `patch` to user `id` if `accepts` its current version (the caller's
    /// precondition); returns the user as stored afterwards.
    pub async fn update(
        &self,
        id: UserId,
        patch: Patch<'_>,
        accepts: impl Fn(u32) -> bool,
    ) -> Result<Stored, Error> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.get(id).await?;
            if !accepts(current.version) {
                return Err(Error::PreconditionFailed);
            }
            let doc = parse_stored(&current)?;
            let next = doc.patched(&patch, SystemTime::now());
            let bytes = Bytes::from(next.to_json());
            let write = Write::Update {
                id,
                expected: current.version,
                email_key: email_key(&next.email),
                doc: bytes.clone(),
            };
            match self.store.write(write).await {
                Ok(()) => {
                    return Ok(Stored {
                        doc: bytes,
                        version: next.version,
                    })
                }
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Deletes user `id` if `accepts` its current version (the caller's precondition).
    pub async fn delete(&self, id: UserId, accepts: impl Fn(u32) -> bool) -> Result<(), Error> {
        for _ in 0..MAX_ATTEMPTS {
            let current = self.get(id).await?;
            if !accepts(current.version) {
                return Err(Error::PreconditionFailed);
            }
            let write = Write::Delete {
                id,
                expected: current.version,
            };
            match self.store.write(write).await {
                Ok(()) => return Ok(()),
                Err(StoreError::Stale) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Busy)
    }

    /// Up to `limit` users created after `after`, in creation order.
    pub async fn list(&self, after: Option<Cursor>, limit: usize) -> Result<Page, Error> {
        Ok(self.store.list(after, limit).await?)
    }
}

/// A stored document, read back; failing is a broken invariant (userd wrote it).
fn parse_stored(stored: &Stored) -> Result<Doc<'_>, Error> {
    Doc::parse(&stored.doc).ok_or_else(|| {
        Error::Internal(format!(
            "a stored user could not be read back: {:?}",
            String::from_utf8_lossy(&stored.doc)
        ))
    })
}
