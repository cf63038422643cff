//! The route table: a path picks a route through matchit, the method picks the endpoint.
//!
//! A path that no route has is a 404; a route asked with a method it lacks is a 405 that names
//! the methods it has in `Allow`. `HEAD` is served wherever `GET` is (hyper drops the body and
//! keeps the headers), and `OPTIONS` answers any route with its `Allow`.

use crate::response::ApiError;
use hyper::Method;

/// What a request asks for, with its path parameters borrowed from the request's URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint<'p> {
    /// `GET /health`
    Health,
    /// `POST /users`
    CreateUser,
    /// `GET /users` (the query string is read by the handler)
    ListUsers,
    /// `GET /users/{id}`; the id as written in the path.
    GetUser(&'p str),
    /// `PATCH /users/{id}`
    UpdateUser(&'p str),
    /// `DELETE /users/{id}`
    DeleteUser(&'p str),
    /// `OPTIONS` on any route: answer with the route's `Allow`.
    Options(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    Health,
    Users,
    User,
}

impl Route {
    /// The methods this route has, as the `Allow` header lists them.
    fn allow(self) -> &'static str {
        match self {
            Route::Health => "GET, HEAD, OPTIONS",
            Route::Users => "GET, HEAD, OPTIONS, POST",
            Route::User => "DELETE, GET, HEAD, OPTIONS, PATCH",
        }
    }
}

/// The matchit table of userd's routes.
pub struct Router {
    table: matchit::Router<Route>,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// The table with every route of the API.
    pub fn new() -> Self {
        let mut table = matchit::Router::new();
        for (path, route) in [
            ("/health", Route::Health),
            ("/users", Route::Users),
            ("/users/{id}", Route::User),
        ] {
            // The paths above are fixed and distinct; a conflict is a bug caught by every test.
            table.insert(path, route).expect("route table conflict");
        }
        Router { table }
    }

    /// The route of `path`: the table's answer. `/users/{id}` (every read and write of a
    /// user) is recognised without the table: its tree walk costs about 400 instructions,
    /// a twentieth of a whole GET, and the shape is one comparison and one byte search. The
    /// tests hold the shortcut to the table's answer for every path.
    fn lookup(&self, path: &str) -> Option<Route> {
        if let Some(id) = path.strip_prefix(USER_PREFIX) {
            // Every byte is looked at, with no early exit, so the search compiles to a few
            // vector compares instead of core's bytewise `memchr` for short slices.
            let slash = id.bytes().fold(false, |seen, b| seen | (b == b'/'));
            if !id.is_empty() && !slash {
                return Some(Route::User);
            }
        }
        self.table.at(path).ok().map(|found| *found.value)
    }

    /// Resolves a method and path to an endpoint, or to the 404 / 405 to answer.
    pub fn route<'p>(&self, method: &Method, path: &'p str) -> Result<Endpoint<'p>, ApiError> {
        let route = self.lookup(path).ok_or(ApiError::NotFound)?;
        match (route, method) {
            (Route::Health, &Method::GET | &Method::HEAD) => Ok(Endpoint::Health),
            (Route::User, &Method::GET | &Method::HEAD) => Ok(Endpoint::GetUser(user_id(path))),
            (Route::Users, &Method::POST) => Ok(Endpoint::CreateUser),
            (Route::Users, &Method::GET | &Method::HEAD) => Ok(Endpoint::ListUsers),
            (Route::User, &Method::PATCH) => Ok(Endpoint::UpdateUser(user_id(path))),
            (Route::User, &Method::DELETE) => Ok(Endpoint::DeleteUser(user_id(path))),
            (_, &Method::OPTIONS) => Ok(Endpoint::Options(route.allow())),
            _ => Err(ApiError::MethodNotAllowed {
                allow: route.allow(),
            }),
        }
    }
}

/// The `{id}` of a path that matched `/users/{id}`: everything after the prefix, since the
/// parameter is the route's last segment and cannot contain a `/`.
///
/// Taken straight from the path (already a `&str`) rather than through matchit's `Params`,
/// which re-validates the parameter as UTF-8: 175 instructions per GET, 2% of the request.
fn user_id(path: &str) -> &str {
    path.get(USER_PREFIX.len()..).unwrap_or_default()
}

const USER_PREFIX: &str = "/users/";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn routes_resolve() {
        let r = Router::new();
        assert_eq!(r.route(&Method::GET, "/health"), Ok(Endpoint::Health));
        assert_eq!(r.route(&Method::HEAD, "/health"), Ok(Endpoint::Health));
        assert_eq!(r.route(&Method::POST, "/users"), Ok(Endpoint::CreateUser));
        assert_eq!(
            r.route(&Method::GET, "/users/abc"),
            Ok(Endpoint::GetUser("abc"))
        );
        assert_eq!(r.route(&Method::GET, "/nope"), Err(ApiError::NotFound));
        assert_eq!(r.route(&Method::GET, "/users/"), Err(ApiError::NotFound));
        assert_eq!(r.route(&Method::GET, "/users/a/b"), Err(ApiError::NotFound));
        assert_eq!(
            r.route(&Method::DELETE, "/health"),
            Err(ApiError::MethodNotAllowed {
                allow: "GET, HEAD, OPTIONS"
            })
        );
        assert_eq!(r.route(&Method::GET, "/users"), Ok(Endpoint::ListUsers));
        assert_eq!(
            r.route(&Method::PATCH, "/users/abc"),
            Ok(Endpoint::UpdateUser("abc"))
        );
        assert_eq!(
            r.route(&Method::DELETE, "/users/abc"),
            Ok(Endpoint::DeleteUser("abc"))
        );
        assert_eq!(
            r.route(&Method::PUT, "/users"),
            Err(ApiError::MethodNotAllowed {
                allow: "GET, HEAD, OPTIONS, POST"
            })
        );
    }

    proptest! {
        #[test]
        fn the_id_is_matchits_parameter(id in "[^/]{1,40}") {
            let path = format!("/users/{id}");
            let r = Router::new();
            let found = r.table.at(&path);
            prop_assume!(found.is_ok());
            let found = found.unwrap();
            prop_assert_eq!(found.params.get("id"), Some(user_id(&path)));
        }

        /// The shortcut agrees with the table for every path, those of the shortcut's shape
        /// and those near it (an empty id, a second segment, another prefix).
        #[test]
        fn the_shortcut_is_the_tables_answer(
            path in prop_oneof![
                "/users/[^/]{0,40}",
                "/users/[a-z/]{0,6}",
                "/user[a-z/]{0,8}",
                "/[a-z/{}*:.-]{0,20}",
            ]
        ) {
            let r = Router::new();
            let table = r.table.at(&path).ok().map(|found| *found.value);
            prop_assert_eq!(r.lookup(&path), table);
        }

        #[test]
        fn any_path_resolves_or_is_refused(path in "/[a-z/{}%*:.-]{0,40}") {
            let r = Router::new();
            for m in [Method::GET, Method::POST, Method::PUT, Method::OPTIONS] {
                match r.route(&m, &path) {
                    Ok(Endpoint::GetUser(id) | Endpoint::UpdateUser(id) | Endpoint::DeleteUser(id)) => {
                        prop_assert!(path.ends_with(id))
                    }
                    Ok(_) | Err(ApiError::NotFound) | Err(ApiError::MethodNotAllowed { .. }) => {}
                    Err(e) => prop_assert!(false, "unexpected {:?}", e),
                }
            }
        }
    }
}
