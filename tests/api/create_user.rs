//! `POST /users`: the created user, normalisation, validation, escapes.

use crate::helpers::{
    assert_user, create_body, is_canonical_uuid_v4, ok_body, spawn_app, user_from_created,
};
use std::collections::HashSet;

#[tokio::test]
async fn create_answers_201_with_the_user_in_exact_bytes() {
    let app = spawn_app().await;
    let res = app
        .post_json("/users", r#"{"name":"Ann","email":"ann@example.com"}"#)
        .await;
    assert_eq!(res.status, 201);
    let id = res.json()["data"]["id"].as_str().unwrap().to_owned();
    assert!(
        is_canonical_uuid_v4(&id),
        "id {id:?} is not a canonical UUID v4"
    );
    // Fields in the order id, name, email (the article's), then userd's own, inside the
    // envelope, nothing else.
    let v = res.json();
    let stamp = v["data"]["created_at"].as_str().unwrap();
    let expected = format!(
        r#"{{"ok":true,"data":{{"id":"{id}","name":"Ann","email":"ann@example.com","created_at":"{stamp}","updated_at":"{stamp}","version":1}},"error":null}}"#
    );
    res.assert_json(201, &expected);
    assert_eq!(res.header("etag"), Some("\"1\""));
    assert_eq!(
        res.header("location"),
        Some(format!("/users/{id}").as_str())
    );
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn every_created_user_gets_a_fresh_id() {
    let app = spawn_app().await;
    let mut ids = HashSet::new();
    for i in 0..50 {
        let (id, _) = app
            .create_user(&format!("user {i}"), &format!("u{i}@example.com"))
            .await;
        assert!(is_canonical_uuid_v4(&id), "{id:?}");
        assert!(ids.insert(id), "an id was issued twice");
    }
}

#[tokio::test]
async fn name_and_email_are_trimmed() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/users",
            r#"{"name":"  \t Ann Lee \n ","email":"  ann@example.com\t"}"#,
        )
        .await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Ann Lee", "ann@example.com");
}

/// `str::trim` (as in the article) trims Unicode white space too, e.g. NBSP and the
/// ideographic space.
#[tokio::test]
async fn unicode_white_space_is_trimmed() {
    let app = spawn_app().await;
    let (id, doc) = app
        .create_user("\u{a0}\u{3000}Zoë\u{2003}", "\u{2009}zoe@example.com\u{a0}")
        .await;
    assert_user(&doc, &id, "Zoë", "zoe@example.com");
}

#[tokio::test]
async fn empty_name_is_refused_with_name_is_required() {
    let app = spawn_app().await;
    for name in ["", " ", "\t\n\r ", "\u{a0}\u{3000}"] {
        let res = app.post_json("/users", create_body(name, "a@b.c")).await;
        res.assert_json(
            400,
            r#"{"ok":false,"data":null,"error":"Name is required"}"#,
        );
    }
    assert_eq!(app.user_count().await, 0, "a refused user was stored");
}

#[tokio::test]
async fn email_without_at_is_refused_with_email_looks_invalid() {
    let app = spawn_app().await;
    for email in ["", "   ", "ann.example.com", "ann(at)example.com"] {
        let res = app.post_json("/users", create_body("Ann", email)).await;
        res.assert_json(
            400,
            r#"{"ok":false,"data":null,"error":"Email looks invalid"}"#,
        );
    }
    assert_eq!(app.user_count().await, 0, "a refused user was stored");
}

/// Beyond the article's `@`: exactly one, something on each side, no white space, at most
/// 254 bytes; each refusal says which.
#[tokio::test]
async fn emails_need_one_at_between_a_local_part_and_a_domain() {
    let app = spawn_app().await;
    let long = format!("{}@b", "a".repeat(253));
    for (email, why) in [
        ("@", "Email needs a local part before the @"),
        (" @b ", "Email needs a local part before the @"),
        ("a@", "Email needs a domain after the @"),
        ("a@b@c", "Email must contain exactly one @"),
        ("a b@c", "Email must not contain whitespace"),
        ("a@b\tc", "Email must not contain whitespace"),
        ("a@b\u{a0}c", "Email must not contain whitespace"),
        (long.as_str(), "Email must be at most 254 bytes"),
    ] {
        let res = app.post_json("/users", create_body("Ann", email)).await;
        res.assert_error(400, why);
    }
    assert_eq!(app.user_count().await, 0, "a refused user was stored");
    for email in ["a@b", " ünï@cödé ", &long[1..]] {
        let (id, doc) = app.create_user("Ann", email).await;
        assert_user(&doc, &id, "Ann", email.trim());
    }
}

/// Names: at most 200 characters (not bytes), no control characters.
#[tokio::test]
async fn names_are_at_most_200_characters_without_control_characters() {
    let app = spawn_app().await;
    for (name, why) in [
        ("n".repeat(201), "Name must be at most 200 characters"),
        (
            "Ann\nLee".to_owned(),
            "Name must not contain control characters",
        ),
        (
            "A\u{0}".to_owned(),
            "Name must not contain control characters",
        ),
        (
            "A\u{7f}".to_owned(),
            "Name must not contain control characters",
        ),
        (
            "A\u{85}B".to_owned(),
            "Name must not contain control characters",
        ),
    ] {
        let res = app.post_json("/users", create_body(&name, "a@b")).await;
        res.assert_error(400, why);
    }
    // 200 two-byte characters are 400 bytes and still one name.
    let name = "é".repeat(200);
    let (id, doc) = app.create_user(&name, "a@b").await;
    assert_user(&doc, &id, &name, "a@b");
}

/// The article checks the name before the email.
#[tokio::test]
async fn name_is_checked_before_email() {
    let app = spawn_app().await;
    let res = app
        .post_json("/users", r#"{"name":"  ","email":"no-at-sign"}"#)
        .await;
    res.assert_error(400, "Name is required");
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let app = spawn_app().await;
    let res = app
        .post_json(
            "/users",
            r#"{"id":"00000000-0000-4000-8000-000000000000","name":"Ann","extra":{"deep":[1,2,{"x":null}]},"email":"a@b","admin":true}"#,
        )
        .await;
    let (id, doc) = user_from_created(&res);
    assert_ne!(
        id, "00000000-0000-4000-8000-000000000000",
        "client chose the id"
    );
    assert_user(&doc, &id, "Ann", "a@b");
}

/// Whatever order the client sends the fields in, the answer lists id, name, email.
#[tokio::test]
async fn fields_are_answered_in_the_order_id_name_email() {
    let app = spawn_app().await;
    let res = app
        .post_json("/users", r#"{"email":"a@b","name":"Ann"}"#)
        .await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Ann", "a@b");
}

/// JSON escapes are decoded on the way in and the value is written back the way serde_json
/// writes it: `"` and `\` escaped, everything else (non-ASCII, `/`, U+2028 included) as raw
/// UTF-8.
#[tokio::test]
async fn escapes_and_non_ascii_round_trip_as_serde_json_writes_them() {
    let app = spawn_app().await;
    let body =
        r#"{"name":"Q\" B\\ E\u00e9 S\ud83d\ude00 R é 日本 \/ \u2028 x","email":"a\u0040b"}"#;
    let res = app.post_json("/users", body).await;
    let (id, doc) = user_from_created(&res);
    let name = "Q\" B\\ Eé S😀 R é 日本 / \u{2028} x";
    assert_user(&doc, &id, name, "a@b");
    // The same, written out: only `"` and `\` are escaped.
    assert!(doc.starts_with(&format!(
        "{{\"id\":\"{id}\",\"name\":\"Q\\\" B\\\\ Eé S😀 R é 日本 / \u{2028} x\",\"email\":\"a@b\","
    )));
    let got = app.get(&format!("/users/{id}")).await;
    got.assert_json(200, &ok_body(&doc));
}

/// Control characters in a name, escaped or raw, are refused: they would come back as
/// escapes no client shows the same way.
#[tokio::test]
async fn control_characters_in_names_are_refused() {
    let app = spawn_app().await;
    for body in [
        r#"{"name":"a\u0001b","email":"x@y"}"#,
        r#"{"name":"a\tb","email":"x@y"}"#,
        r#"{"name":"a\u007f","email":"x@y"}"#,
    ] {
        let res = app.post_json("/users", body).await;
        res.assert_error(400, "Name must not contain control characters");
    }
}

/// The longest name and email are kept whole (no truncation).
#[tokio::test]
async fn long_fields_are_kept_whole() {
    let app = spawn_app().await;
    let name = "n".repeat(200);
    let email = format!("{}@example.com", "e".repeat(242));
    let (id, doc) = app.create_user(&name, &email).await;
    assert_user(&doc, &id, &name, &email);
    app.get(&format!("/users/{id}"))
        .await
        .assert_json(200, &ok_body(&doc));
}
