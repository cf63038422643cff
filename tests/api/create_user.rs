//! `POST /users`: the created user, normalisation, validation, escapes.

use crate::helpers::{
    create_body, is_canonical_uuid_v4, ok_body, spawn_app, user_doc, user_from_created,
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
    // Fields in the order id, name, email, inside the envelope, nothing else.
    let expected = format!(
        r#"{{"ok":true,"data":{{"id":"{id}","name":"Ann","email":"ann@example.com"}},"error":null}}"#
    );
    res.assert_json(201, &expected);
    assert_eq!(app.user_count(), 1);
}

#[tokio::test]
async fn every_created_user_gets_a_fresh_id() {
    let app = spawn_app().await;
    let mut ids = HashSet::new();
    for i in 0..50 {
        let (id, _) = app.create_user(&format!("user {i}"), "u@example.com").await;
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
    assert_eq!(doc, user_doc(&id, "Ann Lee", "ann@example.com"));
}

/// `str::trim` (as in the article) trims Unicode white space too, e.g. NBSP and the
/// ideographic space.
#[tokio::test]
async fn unicode_white_space_is_trimmed() {
    let app = spawn_app().await;
    let (id, doc) = app
        .create_user("\u{a0}\u{3000}Zoë\u{2003}", "\u{2009}zoe@example.com\u{a0}")
        .await;
    assert_eq!(doc, user_doc(&id, "Zoë", "zoe@example.com"));
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
    assert_eq!(app.user_count(), 0, "a refused user was stored");
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
    assert_eq!(app.user_count(), 0, "a refused user was stored");
}

/// The only rule on the email is the article's: it contains an `@`.
#[tokio::test]
async fn any_email_with_an_at_is_accepted() {
    let app = spawn_app().await;
    for email in ["@", " @ ", "a@", "@b", "a@b@c", "ünï@cödé"] {
        let (id, doc) = app.create_user("Ann", email).await;
        assert_eq!(doc, user_doc(&id, "Ann", email.trim()));
    }
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
    assert_eq!(doc, user_doc(&id, "Ann", "a@b"));
}

/// Whatever order the client sends the fields in, the answer lists id, name, email.
#[tokio::test]
async fn fields_are_answered_in_the_order_id_name_email() {
    let app = spawn_app().await;
    let res = app
        .post_json("/users", r#"{"email":"a@b","name":"Ann"}"#)
        .await;
    let id = res.json()["data"]["id"].as_str().unwrap().to_owned();
    res.assert_json(
        201,
        &format!(r#"{{"ok":true,"data":{{"id":"{id}","name":"Ann","email":"a@b"}},"error":null}}"#),
    );
}

/// JSON escapes are decoded on the way in and the value is written back the way serde_json
/// writes it: `"` and `\` and control characters escaped, everything else (non-ASCII included)
/// as raw UTF-8.
#[tokio::test]
async fn escapes_and_non_ascii_round_trip_as_serde_json_writes_them() {
    let app = spawn_app().await;
    let body = r#"{"name":"Q\" B\\ N\n E\u00e9 S\ud83d\ude00 R é 日本","email":"a\u0040b"}"#;
    let res = app.post_json("/users", body).await;
    let (id, doc) = user_from_created(&res);
    let name = "Q\" B\\ N\n Eé S😀 R é 日本";
    assert_eq!(doc, user_doc(&id, name, "a@b"));
    // The same, written out: only `"`, `\` and the newline are escaped.
    assert_eq!(
        doc,
        format!(r#"{{"id":"{id}","name":"Q\" B\\ N\n Eé S😀 R é 日本","email":"a@b"}}"#)
    );
    let got = app.get(&format!("/users/{id}")).await;
    got.assert_json(200, &ok_body(&doc));
}

/// Control characters come back as serde_json's escapes (`\t`, `\u0001`, ...); `\/`, DEL and
/// U+2028 come back unescaped.
#[tokio::test]
async fn control_characters_are_written_back_escaped() {
    let app = spawn_app().await;
    let body = r#"{"name":"a\u0001b\u001fc\td\re\bf\fg\/h\u007fi\u2028j","email":"x@y"}"#;
    let res = app.post_json("/users", body).await;
    let (id, doc) = user_from_created(&res);
    assert_eq!(
        doc,
        format!(
            "{{\"id\":\"{id}\",\"name\":\"a\\u0001b\\u001fc\\td\\re\\bf\\fg/h\u{7f}i\u{2028}j\",\"email\":\"x@y\"}}"
        )
    );
    app.get(&format!("/users/{id}"))
        .await
        .assert_json(200, &ok_body(&doc));
}

/// Long names are kept whole (no truncation), well under the body limit.
#[tokio::test]
async fn long_fields_are_kept_whole() {
    let app = spawn_app().await;
    let name = "n".repeat(20_000);
    let email = format!("{}@example.com", "e".repeat(20_000));
    let (id, doc) = app.create_user(&name, &email).await;
    assert_eq!(doc, user_doc(&id, &name, &email));
    app.get(&format!("/users/{id}"))
        .await
        .assert_json(200, &ok_body(&doc));
}
