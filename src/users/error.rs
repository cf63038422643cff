//! Why a rule or a store refused what was asked, as the domain sees it (no HTTP here: the
//! statuses and messages are in the response module's one table).

use super::fields::Invalid;
use crate::store::{Outage, StoreError};

/// Every way an operation on users can fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The fields break a rule.
    Invalid(Invalid),
    /// No user has this id.
    NotFound,
    /// Another user has this email.
    EmailTaken,
    /// The caller's precondition (`If-Match`) names no version the user has now.
    PreconditionFailed,
    /// The change lost its race to other changes of the same user too many times in a row.
    Busy,
    /// The store cannot serve this now (the disk failed, the database is down, ...).
    Unavailable(Outage),
    /// An invariant broke (a stored user could not be read back): a bug, never the client's
    /// doing. The detail is for the log, not for the client.
    Internal(String),
}

impl From<Invalid> for Error {
    fn from(why: Invalid) -> Self {
        Error::Invalid(why)
    }
}

impl From<StoreError> for Error {
    /// A stale write that reaches here was not retried by the caller: for the client it is a
    /// busy user. (The change loops in [`super::service`] retry stale writes themselves.)
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => Error::Unavailable(why),
            StoreError::EmailTaken => Error::EmailTaken,
            StoreError::Stale => Error::Busy,
        }
    }
}
