//! The route table: 404 for unknown paths, 405 with `Allow`, `OPTIONS`, `HEAD`.

use crate::helpers::{plain_request, spawn_app, HEALTH_BODY};

const NOT_FOUND: &str = r#"{"ok":false,"data":null,"error":"Not found"}"#;
const METHOD_NOT_ALLOWED: &str = r#"{"ok":false,"data":null,"error":"Method not allowed"}"#;
const SOME_ID: &str = "8a3c1d2e-5f6a-4b7c-8d9e-0f1a2b3c4d5e";

#[tokio::test]
async fn unknown_paths_are_404_not_found() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/nope",
        "/users/",
        "/users/a/b",
        "/health/",
        "/HEALTH",
        "/Users",
        "/users//x",
        "//users",
        "/health/x",
        &format!("/users/{SOME_ID}/"),
        "/%68ealth",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status, 404, "GET {path}");
        res.assert_json(404, NOT_FOUND);
        assert_eq!(res.header("allow"), None);
    }
}

/// A path no route has is a 404 whatever the method (never a 405).
#[tokio::test]
async fn unknown_paths_are_404_for_every_method() {
    let app = spawn_app().await;
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "BREW"] {
        let res = app.call(method, "/nope").await;
        assert_eq!(res.status, 404, "{method} /nope");
        res.assert_json(404, NOT_FOUND);
    }
}

/// The methods of `/users`.
const USERS_ALLOW: &str = "GET, HEAD, OPTIONS, POST";
/// The methods of `/users/{id}`.
const USER_ALLOW: &str = "DELETE, GET, HEAD, OPTIONS, PATCH";

#[tokio::test]
async fn known_paths_with_other_methods_are_405_with_allow() {
    let app = spawn_app().await;
    let user = format!("/users/{SOME_ID}");
    let cases = [
        ("POST", "/health", "GET, HEAD, OPTIONS"),
        ("PUT", "/health", "GET, HEAD, OPTIONS"),
        ("DELETE", "/health", "GET, HEAD, OPTIONS"),
        ("PATCH", "/health", "GET, HEAD, OPTIONS"),
        ("TRACE", "/health", "GET, HEAD, OPTIONS"),
        ("PUT", "/users", USERS_ALLOW),
        ("DELETE", "/users", USERS_ALLOW),
        ("PATCH", "/users", USERS_ALLOW),
        ("POST", &user, USER_ALLOW),
        ("PUT", &user, USER_ALLOW),
        ("BREW", &user, USER_ALLOW),
    ];
    for (method, path, allow) in cases {
        let res = app.call(method, path).await;
        assert_eq!(res.status, 405, "{method} {path}");
        res.assert_json(405, METHOD_NOT_ALLOWED);
        assert_eq!(res.header("allow"), Some(allow), "{method} {path}");
        assert_eq!(res.header_count("allow"), 1);
    }
}

/// A 405 is decided by the route alone: a POST to /health with a JSON body is still a 405.
#[tokio::test]
async fn post_with_a_json_body_to_health_is_405() {
    let app = spawn_app().await;
    let res = app
        .post_json("/health", r#"{"name":"Ann","email":"a@b"}"#)
        .await;
    res.assert_json(405, METHOD_NOT_ALLOWED);
    assert_eq!(res.header("allow"), Some("GET, HEAD, OPTIONS"));
    assert_eq!(app.user_count().await, 0);
}

#[tokio::test]
async fn options_is_204_with_the_routes_allow() {
    let app = spawn_app().await;
    let user = format!("/users/{SOME_ID}");
    for (path, allow) in [
        ("/health", "GET, HEAD, OPTIONS"),
        ("/users", USERS_ALLOW),
        (user.as_str(), USER_ALLOW),
        ("/users/anything", USER_ALLOW),
    ] {
        let res = app.options(path).await;
        assert_eq!(res.status, 204, "OPTIONS {path}: {res:?}");
        assert_eq!(res.header("allow"), Some(allow), "OPTIONS {path}");
        assert!(res.body.is_empty());
        assert_eq!(res.header("transfer-encoding"), None);
    }
}

/// A 204 has no body: the next pipelined response must follow it directly.
#[tokio::test]
async fn options_response_has_no_body_bytes_on_the_wire() {
    let app = spawn_app().await;
    let mut conn = app.connect().await;
    let mut raw = plain_request("OPTIONS", "/users");
    raw.extend(plain_request("GET", "/health"));
    conn.send(raw).await;
    let res = conn.read_responses(&["OPTIONS", "GET"]).await;
    assert_eq!(res[0].status, 204);
    assert_eq!(res[0].header("allow"), Some(USERS_ALLOW));
    res[1].assert_json(200, HEALTH_BODY);
}

/// HEAD answers wherever GET does, with the same status and headers (including the
/// `content-length` of the GET body) and no body, also for 404s and 405s.
#[tokio::test]
async fn head_has_the_get_status_and_headers_and_no_body() {
    let app = spawn_app().await;
    let (id, _) = app.create_user("Ann", "a@b").await;
    let user = format!("/users/{id}");
    let unknown = format!("/users/{SOME_ID}");
    for path in ["/health", &user, &unknown, "/nope", "/users/a/b", "/users"] {
        let get = app.get(path).await;
        let head = app.head(path).await;
        assert_eq!(head.status, get.status, "HEAD {path}");
        assert_eq!(head.stable_headers(), get.stable_headers(), "HEAD {path}");
        assert_eq!(
            head.header("content-length"),
            Some(get.body.len().to_string().as_str()),
            "HEAD {path}"
        );
        assert!(head.body.is_empty(), "HEAD {path}");
    }
}

/// A HEAD response carries no body bytes: pipelined after it, the next response parses.
#[tokio::test]
async fn head_response_has_no_body_bytes_on_the_wire() {
    let app = spawn_app().await;
    let mut conn = app.connect().await;
    let mut raw = plain_request("HEAD", "/health");
    raw.extend(plain_request("HEAD", "/nope"));
    raw.extend(plain_request("GET", "/health"));
    conn.send(raw).await;
    let res = conn.read_responses(&["HEAD", "HEAD", "GET"]).await;
    assert_eq!(res[0].status, 200);
    assert_eq!(res[1].status, 404);
    res[2].assert_json(200, HEALTH_BODY);
}
