//! `/users` and `/users/{id}`: create, read, list, change, delete.

use super::precondition::IfMatch;
use crate::response::errors::Query;
use crate::response::{self, ApiError, ApiResponse};
use crate::store::UserStore;
use crate::users::{self, document, Cursor, NewUser, Patch, UserId, Users};
use bytes::{BufMut, Bytes, BytesMut};
use hyper::header::{HeaderMap, HeaderValue, LOCATION};
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

/// The body of `PATCH /users/{id}`: either field, or both. A field that is present must be a
/// string (`null` is refused as the wrong type, not taken as absent).
#[derive(Deserialize)]
struct PatchUser<'a> {
    #[serde(borrow, default)]
    name: Field<'a>,
    #[serde(borrow, default)]
    email: Field<'a>,
}

/// A field of a PATCH body: absent, or a string. Unlike an `Option`, it does not read `null`
/// as absent: serde calls it only for a field that is present, and it takes only strings.
#[derive(Default)]
enum Field<'a> {
    #[default]
    Absent,
    Given(Cow<'a, str>),
}

impl<'a> Field<'a> {
    fn get(&self) -> Option<&str> {
        match self {
            Field::Absent => None,
            Field::Given(text) => Some(text),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Field<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Borrowed<'b>(#[serde(borrow)] Cow<'b, str>);
        Borrowed::deserialize(d).map(|b| Field::Given(b.0))
    }
}

/// `POST /users`: 201 with the new user, its `ETag` and its `Location`.
pub(super) async fn create<S: UserStore>(
    users: &Users<S>,
    body: &Bytes,
) -> Result<ApiResponse, ApiError> {
    let req: CreateUser<'_> = super::json::parse(body)?;
    let user = NewUser::parse(&req.name, &req.email)?;
    let (id, body) = users
        .create(user, |u| (u.id, response::user_body(u)))
        .await?;
    let mut res = response::user(StatusCode::CREATED, body, 1);
    let mut location = BytesMut::with_capacity(7 + users::ID_LEN);
    location.put_slice(b"/users/");
    location.put_slice(&id.encode());
    if let Ok(value) = HeaderValue::from_maybe_shared(location.freeze()) {
        res.headers_mut().insert(LOCATION, value);
    }
    Ok(res)
}

/// `GET /users/{id}`: 200 with the user and its `ETag`, or 404 for an id no user has
/// (including any text that is not a canonical UUID). The body is rendered inside the store's
/// read, the headers after it.
pub(super) async fn get<S: UserStore>(users: &Users<S>, id: &str) -> Result<ApiResponse, ApiError> {
    let id = UserId::parse(id).ok_or(ApiError::Users(users::Error::NotFound))?;
    let (body, version) = users
        .get(id, |u| (response::user_body(&u), u.version))
        .await?;
    Ok(response::user(StatusCode::OK, body, version))
}

/// `PATCH /users/{id}`: 200 with the changed user and its new `ETag`.
pub(super) async fn update<S: UserStore>(
    users: &Users<S>,
    id: UserId,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<ApiResponse, ApiError> {
    let req: PatchUser<'_> = super::json::parse(body)?;
    let patch = Patch::parse(req.name.get(), req.email.get())?;
    let if_match = IfMatch::of(headers).map_err(|_| ApiError::InvalidIfMatch)?;
    let (body, version) = users
        .update(
            id,
            patch,
            |v| if_match.accepts(v),
            |u| (response::user_body(u), u.version),
        )
        .await?;
    Ok(response::user(StatusCode::OK, body, version))
}

/// `DELETE /users/{id}`: 204 with no body.
pub(super) async fn delete<S: UserStore>(
    users: &Users<S>,
    id: &str,
    headers: &HeaderMap,
) -> Result<ApiResponse, ApiError> {
    let id = UserId::parse(id).ok_or(ApiError::Users(users::Error::NotFound))?;
    let if_match = IfMatch::of(headers).map_err(|_| ApiError::InvalidIfMatch)?;
    users.delete(id, |v| if_match.accepts(v)).await?;
    Ok(response::empty(StatusCode::NO_CONTENT))
}

/// A query component with its percent-encoded octets decoded (RFC 3986, 2.1), or `None` if
/// an escape is broken or the octets are not UTF-8. `+` stays `+`: it means a space only in
/// HTML forms, whose encoding this API does not take.
fn percent_decoded(text: &str) -> Option<Cow<'_, str>> {
    if !text.contains('%') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            if !hex.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// `GET /users?limit=N&cursor=C`: a page of users in creation order, as
/// `{"users":[...],"next_cursor":"..."|null}`, the documents copied as stored.
pub(super) async fn list<S: UserStore>(
    users: &Users<S>,
    query: Option<&str>,
) -> Result<ApiResponse, ApiError> {
    let (mut limit, mut cursor) = (users::DEFAULT_LIMIT, None);
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let (name, value) = (percent_decoded(name), percent_decoded(value));
        match name.as_deref() {
            Some("limit") => {
                let parsed = value.as_deref().and_then(users::parse_limit);
                limit = parsed.ok_or(ApiError::InvalidQuery(Query::Limit))?;
            }
            Some("cursor") => {
                let parsed = value.as_deref().and_then(Cursor::parse);
                cursor = Some(parsed.ok_or(ApiError::InvalidQuery(Query::Cursor))?);
            }
            _ => {} // unknown parameters are ignored, as unknown body fields are
        }
    }
    let mut out = Vec::with_capacity(limit.min(64) * 256 + 48);
    out.extend_from_slice(b"{\"users\":[");
    let mut first = true;
    let next = users
        .list(cursor, limit, |u| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            document::write_json(&mut out, &u);
        })
        .await?;
    out.extend_from_slice(b"],\"next_cursor\":");
    match next {
        Some(next) => {
            out.push(b'"');
            out.extend_from_slice(next.encode().as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(response::ok(StatusCode::OK, Bytes::from(out)))
}

#[cfg(test)]
mod tests {
    use super::percent_decoded;

    #[test]
    fn query_components_are_percent_decoded() {
        assert_eq!(percent_decoded("limit").as_deref(), Some("limit"));
        assert_eq!(percent_decoded("li%6dit").as_deref(), Some("limit"));
        assert_eq!(percent_decoded("%35%30").as_deref(), Some("50"));
        assert_eq!(percent_decoded("a+b").as_deref(), Some("a+b"));
        assert_eq!(percent_decoded("%C3%A9").as_deref(), Some("\u{e9}"));
        for broken in ["%", "%3", "%G1", "%+1", "%ff"] {
            assert_eq!(percent_decoded(broken), None, "{broken:?}");
        }
    }
}
