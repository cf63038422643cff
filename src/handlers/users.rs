//! `POST /users` and `GET /users/{id}`.

use crate::response::{self, ApiError, ApiResponse};
use crate::store::{StoreError, UserStore};
use crate::users::{NewUser, UserId};
use bytes::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use std::borrow::Cow;

/// The body of `POST /users`. The fields borrow from the request body; only a string with an
/// escape (`\"`, `\n`, `\u00e9`, ...) is copied to unescape it. Unknown fields are ignored.
#[derive(Deserialize)]
struct CreateUser<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    email: Cow<'a, str>,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(why) => ApiError::Unavailable(why),
        }
    }
}

/// `POST /users`: 201 with the new user, whose JSON is serialized here once and kept.
pub(super) async fn create<S: UserStore>(store: &S, body: &Bytes) -> Result<ApiResponse, ApiError> {
    let req: CreateUser<'_> = super::json::parse(body)?;
    let user = NewUser::parse(&req.name, &req.email)?;
    let id = UserId::random();
    let doc = Bytes::from(user.to_json(id));
    store.insert(id, doc.clone()).await?;
    Ok(response::ok(StatusCode::CREATED, doc))
}

/// `GET /users/{id}`: 200 with the stored bytes, or 404 for an id no user has (including any
/// text that is not a canonical UUID).
pub(super) async fn get<S: UserStore>(store: &S, id: &str) -> Result<ApiResponse, ApiError> {
    let id = UserId::parse(id).ok_or(ApiError::UserNotFound)?;
    match store.get(id).await? {
        Some(doc) => Ok(response::ok(StatusCode::OK, doc)),
        None => Err(ApiError::UserNotFound),
    }
}
