//! Every error a client can see, its status and its message: the one table.
//!
//! # Error policy
//!
//! HTTP-level failures (no route, a method the route lacks, a body that is not JSON, ...) are
//! [`ApiError`]s made by the router and the handlers; failures of the domain and the stores
//! arrive as [`users::Error`] inside [`ApiError::Users`]. `ApiError::status_and_message`
//! alone decides what each is answered with. Client errors (4xx) carry a message written for
//! the client. Server errors (5xx) name what the operator must do (a full disk) or give
//! nothing away: an internal error is logged here in full and answered with a fixed message.
//! Errors on hot paths (an unknown user, an unknown path) cost no allocation: their bodies
//! are static bytes built at compile time.

use super::{json, ApiResponse, Envelope};
use crate::store::Outage;
use crate::users::{self, Invalid};
use bytes::Bytes;
use hyper::header::{HeaderValue, ALLOW};
use hyper::StatusCode;

/// Every way a request can fail, as a client sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No route has this path.
    NotFound,
    /// The path exists but not with this method; `allow` lists the methods it has.
    MethodNotAllowed {
        /// The value of the `Allow` header.
        allow: &'static str,
    },
    /// The body is not declared as `application/json`.
    UnsupportedMediaType,
    /// The body is larger than `--max-body`.
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is empty where JSON is required.
    EmptyBody,
    /// The body is not JSON (syntax error, invalid UTF-8, trailing bytes); the detail says where.
    MalformedJson(String),
    /// The body is JSON of the wrong shape (missing field, wrong type, not an object).
    InvalidShape(String),
    /// The body could not be read from the connection.
    BodyRead,
    /// A query parameter is not one this route takes.
    InvalidQuery(Query),
    /// `If-Match` is neither `*` nor a list of entity tags.
    InvalidIfMatch,
    /// The domain or the store refused.
    Users(users::Error),
}

/// Which query parameter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Query {
    /// `limit` of the user list.
    Limit,
    /// `cursor` of the user list.
    Cursor,
}

impl From<users::Error> for ApiError {
    fn from(e: users::Error) -> Self {
        ApiError::Users(e)
    }
}

impl From<Invalid> for ApiError {
    fn from(why: Invalid) -> Self {
        ApiError::Users(users::Error::Invalid(why))
    }
}

/// Builds the whole error envelope for a message that needs no JSON escaping, at compile time.
macro_rules! fixed {
    ($msg:literal) => {
        Message::Fixed(
            $msg,
            concat!(r#"{"ok":false,"data":null,"error":""#, $msg, r#""}"#).as_bytes(),
        )
    };
}

/// An error's message, in the form that costs least to send.
enum Message {
    /// The message and its whole envelope, made at compile time.
    Fixed(&'static str, &'static [u8]),
    /// A message that depends on the request.
    Text(String),
}

impl ApiError {
    /// The status and message of every error: the table.
    fn status_and_message(&self) -> (StatusCode, Message) {
        use users::Error as U;
        use Message::Text;
        use StatusCode as S;
        match self {
            ApiError::NotFound => (S::NOT_FOUND, fixed!("Not found")),
            ApiError::MethodNotAllowed { .. } => (S::METHOD_NOT_ALLOWED, fixed!("Method not allowed")),
            ApiError::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                fixed!("Content-Type must be application/json"),
            ),
            ApiError::PayloadTooLarge { limit } => (
                S::PAYLOAD_TOO_LARGE,
                Text(format!("Request body is larger than the limit of {limit} bytes")),
            ),
            ApiError::EmptyBody => (
                S::BAD_REQUEST,
                fixed!("Request body is empty; expected a JSON object"),
            ),
            ApiError::MalformedJson(detail) => (S::BAD_REQUEST, Text(format!("Malformed JSON: {detail}"))),
            ApiError::InvalidShape(detail) => (
                S::UNPROCESSABLE_ENTITY,
                Text(format!("Invalid request body: {detail}")),
            ),
            ApiError::BodyRead => (S::BAD_REQUEST, fixed!("Could not read the request body")),
            ApiError::InvalidQuery(Query::Limit) => (
                S::BAD_REQUEST,
                fixed!("limit must be a whole number from 1 to 1000"),
            ),
            ApiError::InvalidQuery(Query::Cursor) => (
                S::BAD_REQUEST,
                fixed!("cursor must be a next_cursor this server returned"),
            ),
            ApiError::InvalidIfMatch => (
                S::BAD_REQUEST,
                fixed!("If-Match must be * or a list of entity tags"),
            ),
            // The first and fourth are the article's, word for word.
            ApiError::Users(U::Invalid(why)) => (S::BAD_REQUEST, match why {
                Invalid::NameRequired => fixed!("Name is required"),
                Invalid::NameTooLong => fixed!("Name must be at most 200 characters"),
                Invalid::NameControl => fixed!("Name must not contain control characters"),
                Invalid::EmailInvalid => fixed!("Email looks invalid"),
                Invalid::EmailManyAt => fixed!("Email must contain exactly one @"),
                Invalid::EmailNoLocal => fixed!("Email needs a local part before the @"),
                Invalid::EmailNoDomain => fixed!("Email needs a domain after the @"),
                Invalid::EmailWhitespace => fixed!("Email must not contain whitespace"),
                Invalid::EmailTooLong => fixed!("Email must be at most 254 bytes"),
                Invalid::NothingToUpdate => {
                    fixed!("Nothing to update: give a name, an email or both")
                }
            }),
            ApiError::Users(U::NotFound) => (S::NOT_FOUND, fixed!("User not found")),
            ApiError::Users(U::EmailTaken) => (S::CONFLICT, fixed!("Email already exists")),
            ApiError::Users(U::PreconditionFailed) => (
                S::PRECONDITION_FAILED,
                fixed!("Precondition failed: the user's ETag does not match If-Match"),
            ),
            ApiError::Users(U::Busy) => (
                S::SERVICE_UNAVAILABLE,
                fixed!("The user is changing too often; try again"),
            ),
            ApiError::Users(U::Unavailable(outage)) => (S::SERVICE_UNAVAILABLE, match outage {
                Outage::DiskFull => fixed!(
                    "Disk full: userd cannot store new users until space is freed and it is restarted"
                ),
                Outage::StorageFailed => {
                    fixed!("Storage failure: userd cannot store new users until it is restarted")
                }
                Outage::Closed => fixed!("userd is shutting down and takes no more writes"),
                Outage::TooLarge => fixed!("The user is too large to store"),
            }),
            ApiError::Users(U::Internal(detail)) => {
                // The detail is for the operator; the client learns nothing of the internals.
                eprintln!("userd: internal error: {detail}");
                (S::INTERNAL_SERVER_ERROR, fixed!("Internal error"))
            }
        }
    }

    /// The status code this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            // An internal error logs when its message is made: do not make it just for this.
            ApiError::Users(users::Error::Internal(_)) => StatusCode::INTERNAL_SERVER_ERROR,
            other => other.status_and_message().0,
        }
    }

    /// The message a client reads in the envelope's `error`.
    pub fn message(&self) -> String {
        match self.status_and_message().1 {
            Message::Fixed(text, _) => text.to_owned(),
            Message::Text(text) => text,
        }
    }

    fn envelope(&self) -> (StatusCode, Envelope) {
        let (status, message) = self.status_and_message();
        let body = match message {
            Message::Fixed(_, whole) => Envelope::whole(Bytes::from_static(whole)),
            Message::Text(text) => Envelope::error(&text),
        };
        (status, body)
    }

    /// The whole response: status, headers and envelope.
    pub fn into_response(self) -> ApiResponse {
        let (status, body) = self.envelope();
        let mut res = json(status, body);
        if let ApiError::MethodNotAllowed { allow } = self {
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixed message is valid JSON in the envelope's exact shape, as `Envelope::error`
    /// would write it (no message needs escaping, so the compile-time bodies are exact).
    #[test]
    fn fixed_bodies_are_the_envelopes_of_their_messages() {
        let mut all = vec![
            ApiError::NotFound,
            ApiError::MethodNotAllowed { allow: "GET" },
            ApiError::UnsupportedMediaType,
            ApiError::EmptyBody,
            ApiError::BodyRead,
            ApiError::InvalidQuery(Query::Limit),
            ApiError::InvalidQuery(Query::Cursor),
            ApiError::InvalidIfMatch,
        ];
        for e in [
            users::Error::NotFound,
            users::Error::EmailTaken,
            users::Error::PreconditionFailed,
            users::Error::Busy,
            users::Error::Unavailable(Outage::DiskFull),
            users::Error::Unavailable(Outage::StorageFailed),
            users::Error::Unavailable(Outage::Closed),
            users::Error::Unavailable(Outage::TooLarge),
            users::Error::Invalid(Invalid::NameRequired),
            users::Error::Invalid(Invalid::EmailTooLong),
            users::Error::Invalid(Invalid::NothingToUpdate),
        ] {
            all.push(ApiError::Users(e));
        }
        for e in all {
            let body = e.envelope().1.to_bytes();
            let message = e.message();
            assert!(!message.is_empty(), "{e:?}");
            assert_eq!(body, Envelope::error(&message).to_bytes(), "{e:?}");
            assert!(e.status().is_client_error() || e.status().is_server_error());
        }
    }

    #[test]
    fn the_articles_messages_are_kept_word_for_word() {
        let m = |e: users::Error| ApiError::Users(e).message();
        assert_eq!(
            m(users::Error::Invalid(Invalid::NameRequired)),
            "Name is required"
        );
        assert_eq!(
            m(users::Error::Invalid(Invalid::EmailInvalid)),
            "Email looks invalid"
        );
        assert_eq!(m(users::Error::NotFound), "User not found");
        assert_eq!(
            ApiError::Users(users::Error::NotFound).status(),
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn an_internal_error_gives_no_internals_away() {
        let e = ApiError::Users(users::Error::Internal("secret detail".into()));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.message(), "Internal error");
    }
}
