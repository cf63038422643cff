//! HTTP glue: each handler checks what HTTP requires of the request, borrows its input, calls
//! the Users service ([`crate::users::Users`]) and writes the answer. No rule of the domain
//! lives here.
//!
//! [`App`] is the whole application as a [`Service`], independent of any socket: the server
//! drives it over hyper connections (wrapped in whatever layers `main` puts around it),
//! benches and tests call it directly.

mod health;
mod json;
mod precondition;
mod users;

use crate::response::{self, ApiError, ApiResponse};
use crate::router::{Endpoint, Router};
use crate::server::{Peer, RequestBody, Service};
use crate::store::UserStore;
use crate::users::{UserId, Users};
use bytes::Bytes;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Request, StatusCode};
use std::future::Future;

/// The application: the route table, the Users service and the request limits.
pub struct App<S> {
    router: Router,
    users: Users<S>,
    /// Largest request body accepted, in bytes (`--max-body`).
    max_body: usize,
}

impl<S: UserStore> App<S> {
    /// An application serving `store`, refusing request bodies over `max_body` bytes.
    pub fn new(store: S, max_body: usize) -> Self {
        App {
            router: Router::new(),
            users: Users::new(store),
            max_body,
        }
    }

    /// The store behind the application.
    pub fn store(&self) -> &S {
        self.users.store()
    }

    /// Answers one request. Never fails: every error becomes its envelope here.
    pub async fn handle<B: RequestBody>(&self, mut req: Request<B>) -> ApiResponse {
        // Route on borrowed parts: a GET never takes the request apart (moving its head out
        // costs a copy of a few hundred bytes per request).
        let answer = match self.router.route(req.method(), req.uri().path()) {
            Ok(Endpoint::GetUser(id)) => users::get(&self.users, id).await,
            Ok(Endpoint::CreateUser) => match self.body(&mut req).await {
                Ok(body) => users::create(&self.users, &body).await,
                Err(e) => Err(e),
            },
            // The rarer writes and the list run as boxed futures: their state (a document being
            // changed, a page) would otherwise grow the future of every request, GETs included,
            // and each move of it. The id is parsed before the body is read, since it borrows
            // from the request.
            Ok(Endpoint::UpdateUser(id)) => match UserId::parse(id) {
                Some(id) => Box::pin(self.update(&mut req, id)).await,
                None => Err(ApiError::Users(crate::users::Error::NotFound)),
            },
            Ok(Endpoint::DeleteUser(id)) => {
                Box::pin(users::delete(&self.users, id, req.headers())).await
            }
            Ok(Endpoint::ListUsers) => Box::pin(users::list(&self.users, req.uri().query())).await,
            Ok(Endpoint::Health) => Ok(health::get()),
            Ok(Endpoint::Options(allow)) => Ok(options(allow)),
            Err(e) => Err(e),
        };
        // A GET has no body: on the hot path this is one check.
        if !req.body().is_end_stream() {
            let waits_for_continue = json::expects_continue(req.headers());
            json::drain_unread(req.body_mut(), waits_for_continue).await;
        }
        answer.unwrap_or_else(ApiError::into_response)
    }

    /// `PATCH /users/{id}`: the body, then the change.
    async fn update<B: RequestBody>(
        &self,
        req: &mut Request<B>,
        id: UserId,
    ) -> Result<ApiResponse, ApiError> {
        let body = self.body(req).await?;
        users::update(&self.users, id, req.headers(), &body).await
    }

    /// The request's JSON body: the head checked (415, 413), then the body read (413, 400).
    async fn body<B: RequestBody>(&self, req: &mut Request<B>) -> Result<Bytes, ApiError> {
        json::check_head(req.headers())?;
        json::read_body(req.body_mut(), self.max_body).await
    }
}

impl<S: UserStore> Service for App<S> {
    fn call<B: RequestBody>(
        &self,
        req: Request<B>,
        _peer: Peer,
    ) -> impl Future<Output = ApiResponse> + Send {
        self.handle(req)
    }
}

/// `OPTIONS`: 204 with the route's methods in `Allow`.
fn options(allow: &'static str) -> ApiResponse {
    let mut res = response::empty(StatusCode::NO_CONTENT);
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    res
}
