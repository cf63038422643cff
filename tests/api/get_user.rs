//! `GET /users/{id}`.

use crate::helpers::{error_body, ok_body, spawn_app};

const USER_NOT_FOUND: &str = r#"{"ok":false,"data":null,"error":"User not found"}"#;

#[tokio::test]
async fn get_answers_200_with_the_same_bytes_as_create() {
    let app = spawn_app().await;
    let (id, doc) = app.create_user("Ann", "ann@example.com").await;
    let res = app.get(&format!("/users/{id}")).await;
    res.assert_json(200, &ok_body(&doc));
    // Read again: the stored bytes do not change.
    app.get(&format!("/users/{id}"))
        .await
        .assert_json(200, &ok_body(&doc));
}

/// Each id reads back its own user, not a neighbour's (many users share a shard).
#[tokio::test]
async fn each_id_reads_back_its_own_user() {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..300 {
        users.push(
            app.create_user(&format!("user {i}"), &format!("u{i}@x"))
                .await,
        );
    }
    let mut conn = app.connect().await;
    for (id, doc) in &users {
        let res = conn
            .roundtrip(format!("GET /users/{id} HTTP/1.1\r\nHost: x\r\n\r\n"))
            .await;
        res.assert_json(200, &ok_body(doc));
    }
}

#[tokio::test]
async fn unknown_id_is_404_user_not_found() {
    let app = spawn_app().await;
    app.create_user("Ann", "a@b").await;
    let res = app.get("/users/8a3c1d2e-5f6a-4b7c-8d9e-0f1a2b3c4d5e").await;
    res.assert_json(404, USER_NOT_FOUND);
    assert_eq!(res.body_str(), error_body("User not found"));
}

/// Only the canonical lowercase hyphenated form names a user; every other spelling of an
/// existing id (and anything that is not an id) is an id no user has.
#[tokio::test]
async fn non_canonical_ids_are_404_user_not_found() {
    let app = spawn_app().await;
    let (id, _) = app.create_user("Ann", "a@b").await;
    let percent_encoded_first_char = format!("%{:02x}{}", id.as_bytes()[0], &id[1..]);
    let spellings = [
        id.to_uppercase(),
        id.replace('-', ""),
        format!("%7B{id}%7D"),
        format!("urn:uuid:{id}"),
        format!("{id}0"),
        format!("0{id}"),
        id[..35].to_owned(),
        id.replace('-', "_"),
        percent_encoded_first_char,
        "not-a-uuid".to_owned(),
        "00000000-0000-0000-0000-000000000000".to_owned(),
        "gggggggg-gggg-4ggg-8ggg-gggggggggggg".to_owned(),
        "x".repeat(4096),
        "%00".to_owned(),
    ];
    for s in &spellings {
        let res = app.get(&format!("/users/{s}")).await;
        assert_eq!(res.status, 404, "GET /users/{s}");
        res.assert_json(404, USER_NOT_FOUND);
    }
    // The canonical spelling still works.
    assert_eq!(app.get(&format!("/users/{id}")).await.status, 200);
}

#[tokio::test]
async fn get_user_ignores_the_query_string() {
    let app = spawn_app().await;
    let (id, doc) = app.create_user("Ann", "a@b").await;
    app.get(&format!("/users/{id}?fields=name"))
        .await
        .assert_json(200, &ok_body(&doc));
}

#[tokio::test]
async fn head_user_has_the_get_headers_and_no_body() {
    let app = spawn_app().await;
    let (id, doc) = app.create_user("Ann", "a@b").await;
    let path = format!("/users/{id}");
    let get = app.get(&path).await;
    let head = app.head(&path).await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(ok_body(&doc).len().to_string().as_str())
    );
    assert_eq!(head.stable_headers(), get.stable_headers());
}

#[tokio::test]
async fn head_unknown_user_has_the_404_headers_and_no_body() {
    let app = spawn_app().await;
    let path = "/users/8a3c1d2e-5f6a-4b7c-8d9e-0f1a2b3c4d5e";
    let get = app.get(path).await;
    let head = app.head(path).await;
    assert_eq!(head.status, 404);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(USER_NOT_FOUND.len().to_string().as_str())
    );
    assert_eq!(head.stable_headers(), get.stable_headers());
}
