//! The rules of the Users domain, free of HTTP: what an id is ([`id`]), what makes a user
//! valid and when two emails are one ([`fields`]), how a user is written as JSON
//! ([`document`]), what a page of the list is ([`page`]), and every operation on users as
//! read, decide, compare-and-swap ([`service`]), with the domain's own errors ([`error`]).

pub mod document;
pub mod error;
pub mod fields;
pub mod id;
pub mod page;
pub mod service;

pub use error::Error;
pub use fields::{email_key, Invalid, NewUser, Patch, EMAIL_MAX_BYTES, NAME_MAX_CHARS};
pub use id::{UserId, ID_LEN};
pub use page::{parse_limit, Cursor, DEFAULT_LIMIT, MAX_LIMIT};
pub use service::Users;
