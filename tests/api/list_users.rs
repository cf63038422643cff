//! `GET /users?limit=N&cursor=C`: pages in creation order, opaque cursors, 400 for bad ones.

use crate::helpers::{data_of, spawn_app, TestApp};
use serde_json::value::RawValue;
use serde_json::Value;

/// One page: the documents (byte for byte, as `GET /users/{id}` has them) and the cursor.
async fn page(app: &TestApp, query: &str) -> (Vec<String>, Option<String>) {
    let res = app.get(&format!("/users{query}")).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.header("content-type"), Some("application/json"));
    let data = data_of(&res);
    #[derive(serde::Deserialize)]
    struct Page<'a> {
        #[serde(borrow)]
        users: Vec<&'a RawValue>,
        next_cursor: Option<String>,
    }
    let page: Page<'_> = serde_json::from_str(&data).expect("a page");
    let docs: Vec<String> = page.users.iter().map(|u| u.get().to_owned()).collect();
    // Exactly these two fields, in this order, with no white space.
    let cursor = serde_json::to_string(&page.next_cursor).unwrap();
    let joined = format!(r#"{{"users":[{}],"next_cursor":{cursor}}}"#, docs.join(","));
    assert_eq!(data, joined);
    (docs, page.next_cursor)
}

/// Walks every page with `limit`; returns the documents.
async fn walk(app: &TestApp, limit: usize) -> Vec<String> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?limit={limit}&cursor={c}"),
            None => format!("?limit={limit}"),
        };
        let (docs, next) = page(app, &query).await;
        assert!(docs.len() <= limit);
        all.extend(docs);
        match next {
            Some(c) => cursor = Some(c),
            None => return all,
        }
    }
}

#[tokio::test]
async fn an_empty_store_is_one_empty_page() {
    let app = spawn_app().await;
    let res = app.get("/users").await;
    res.assert_json(
        200,
        r#"{"ok":true,"data":{"users":[],"next_cursor":null},"error":null}"#,
    );
}

#[tokio::test]
async fn pages_list_every_user_once_in_creation_order() {
    let app = spawn_app().await;
    let mut docs = Vec::new();
    for i in 0..120 {
        docs.push(
            app.create_user(&format!("u{i}"), &format!("u{i}@x"))
                .await
                .1,
        );
    }
    // Without a limit: the first 50.
    let (first, next) = page(&app, "").await;
    assert_eq!(first, docs[..50]);
    assert!(next.is_some());
    for limit in [1, 7, 50, 119, 120, 1000] {
        assert_eq!(walk(&app, limit).await, docs, "limit {limit}");
    }
    // The last page says so: exactly 120 users fit in a page of 120.
    let (all, next) = page(&app, "?limit=120").await;
    assert_eq!((all.len(), next), (120, None));
}

#[tokio::test]
async fn bad_limits_and_cursors_are_400() {
    let app = spawn_app().await;
    app.create_user("Ann", "a@b").await;
    for q in [
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "limit=",
        "limit=1.5",
        "limit=%3",
        "limit=%G5",
        "li%6dit=x",
    ] {
        app.get(&format!("/users?{q}"))
            .await
            .assert_error(400, "limit must be a whole number from 1 to 1000");
    }
    for q in [
        "cursor=",
        "cursor=xyz",
        "cursor=00000000000000000000",
        "cursor=%41",
        "cursor=%ff",
    ] {
        app.get(&format!("/users?{q}"))
            .await
            .assert_error(400, "cursor must be a next_cursor this server returned");
    }
    // Unknown parameters are ignored.
    assert_eq!(app.get("/users?foo=bar&limit=1").await.status, 200);
}

/// Query names and values are percent-decoded (RFC 3986): `%35` is `5`, `li%6dit` is
/// `limit`, as a client library that escapes more than it must would send them.
#[tokio::test]
async fn percent_encoded_query_parameters_mean_what_they_encode() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_user(&format!("u{i}"), &format!("u{i}@x")).await;
    }
    let (plain, next) = page(&app, "?limit=2").await;
    assert_eq!(
        page(&app, "?limit=%32").await,
        (plain.clone(), next.clone())
    );
    assert_eq!(page(&app, "?li%6Dit=2").await, (plain, next.clone()));
    let cursor = next.unwrap();
    let encoded: String = cursor.bytes().map(|b| format!("%{b:02x}")).collect();
    assert_eq!(
        page(&app, &format!("?cursor={encoded}")).await,
        page(&app, &format!("?cursor={cursor}")).await
    );
}

/// Users deleted during a walk are skipped; users created during it come after the cursor
/// (so they are listed once or not at all); users that exist for the whole walk are listed
/// exactly once, in order.
#[tokio::test]
async fn the_cursor_stays_valid_across_creates_and_deletes() {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..40 {
        users.push(app.create_user(&format!("u{i}"), &format!("u{i}@x")).await);
    }
    let (first, cursor) = page(&app, "?limit=10").await;
    assert_eq!(first.len(), 10);
    // Delete the last user of the page (the cursor's own) and some later ones.
    for i in [9, 10, 20, 39] {
        let res = app.delete(&format!("/users/{}", users[i].0), None).await;
        assert_eq!(res.status, 204);
    }
    let (newcomer, _) = app.create_user("new", "new@x").await;
    let mut rest = Vec::new();
    let mut cursor = cursor;
    while let Some(c) = cursor {
        let (docs, next) = page(&app, &format!("?limit=10&cursor={c}")).await;
        rest.extend(docs);
        cursor = next;
    }
    let ids: Vec<String> = rest
        .iter()
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut expected: Vec<String> = (10..40)
        .filter(|i| ![10, 20, 39].contains(i))
        .map(|i| users[i].0.clone())
        .collect();
    expected.push(newcomer);
    assert_eq!(ids, expected);
}

/// A page shows a user's current document (after a PATCH), not the one it was created with.
#[tokio::test]
async fn pages_show_the_current_documents() {
    let app = spawn_app().await;
    let (id, _) = app.create_user("Ann", "a@b").await;
    let res = app
        .patch(&format!("/users/{id}"), r#"{"name":"Bea"}"#, None)
        .await;
    let (docs, _) = page(&app, "").await;
    assert_eq!(docs, [data_of(&res)]);
}

/// HEAD /users answers as GET does, without the body.
#[tokio::test]
async fn head_of_the_list_has_the_headers_only() {
    let app = spawn_app().await;
    let res = app.head("/users?limit=5").await;
    assert_eq!(res.status, 200);
    assert!(res.body.is_empty());
}
