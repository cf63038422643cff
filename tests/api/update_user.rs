//! `PATCH /users/{id}` and `DELETE /users/{id}`: changes, versions, `ETag` and `If-Match`.

use crate::helpers::{assert_user_version, data_of, spawn_app};

/// A PATCH changes the fields given, keeps the others and `created_at`, and moves `version`,
/// `updated_at` and the `ETag` forward; GET then answers the new bytes.
#[tokio::test]
async fn patch_changes_the_fields_given_and_bumps_the_version() {
    let app = spawn_app().await;
    let (id, doc) = app.create_user("Ann", "ann@example.com").await;
    let created: serde_json::Value = serde_json::from_str(&doc).unwrap();
    let path = format!("/users/{id}");

    let res = app.patch(&path, r#"{"name":"  Ann Lee "}"#, None).await;
    assert_eq!(res.status, 200, "{res:?}");
    assert_eq!(res.header("etag"), Some("\"2\""));
    let v = assert_user_version(&data_of(&res), &id, "Ann Lee", "ann@example.com", 2);
    assert_eq!(v["created_at"], created["created_at"]);

    let res = app
        .patch(&path, r#"{"email":"LEE@example.com"}"#, None)
        .await;
    let new = data_of(&res);
    assert_user_version(&new, &id, "Ann Lee", "LEE@example.com", 3);
    assert_eq!(res.header("etag"), Some("\"3\""));

    let res = app
        .patch(&path, r#"{"name":"B","email":"b@example.com","x":1}"#, None)
        .await;
    let new = data_of(&res);
    assert_user_version(&new, &id, "B", "b@example.com", 4);
    let got = app.get(&path).await;
    assert_eq!(data_of(&got), new);
    assert_eq!(got.header("etag"), Some("\"4\""));
}

#[tokio::test]
async fn patch_validates_as_create_does() {
    let app = spawn_app().await;
    let (id, _) = app.create_user("Ann", "ann@example.com").await;
    let path = format!("/users/{id}");
    for (body, status, why) in [
        (
            r#"{}"#,
            400,
            "Nothing to update: give a name, an email or both",
        ),
        (
            r#"{"other":1}"#,
            400,
            "Nothing to update: give a name, an email or both",
        ),
        (r#"{"name":"  "}"#, 400, "Name is required"),
        (r#"{"email":"nope"}"#, 400, "Email looks invalid"),
        (
            r#"{"email":"a@b@c"}"#,
            400,
            "Email must contain exactly one @",
        ),
        (
            r#"{"name":"a\u0001"}"#,
            400,
            "Name must not contain control characters",
        ),
    ] {
        app.patch(&path, body, None).await.assert_error(status, why);
    }
    for body in [
        r#"{"name":1}"#,
        r#"{"name":null}"#,
        r#"{"name":"B","email":null}"#,
    ] {
        let res = app.patch(&path, body, None).await;
        res.assert_error_prefix(422, "Invalid request body: ");
    }
    let res = app.patch(&path, r#"["Ann"]"#, None).await;
    res.assert_error(422, "Invalid request body: expected a JSON object");
    let res = app.patch(&path, r#"{"name":"#, None).await;
    res.assert_error_prefix(400, "Malformed JSON: ");
    // Nothing changed.
    assert_eq!(app.get(&path).await.header("etag"), Some("\"1\""));
}

#[tokio::test]
async fn patch_and_delete_of_unknown_users_are_404() {
    let app = spawn_app().await;
    for path in [
        "/users/8a3c1d2e-5f6a-4b7c-8d9e-0f1a2b3c4d5e",
        "/users/not-an-id",
    ] {
        app.patch(path, r#"{"name":"B"}"#, None)
            .await
            .assert_error(404, "User not found");
        app.delete(path, None)
            .await
            .assert_error(404, "User not found");
    }
}

#[tokio::test]
async fn patch_needs_a_json_content_type() {
    let app = spawn_app().await;
    let (id, _) = app.create_user("Ann", "ann@example.com").await;
    let raw = format!(
        "PATCH /users/{id} HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\n{{\"name\":\"B\"}}"
    );
    app.request(raw)
        .await
        .assert_error(415, "Content-Type must be application/json");
}

/// DELETE answers 204 with no body; the user is gone (GET 404), a second DELETE is a 404,
/// and its email is free again.
#[tokio::test]
async fn delete_is_204_then_404() {
    let app = spawn_app().await;
    let (id, _) = app.create_user("Ann", "ann@example.com").await;
    let path = format!("/users/{id}");
    let res = app.delete(&path, None).await;
    assert_eq!(res.status, 204, "{res:?}");
    assert!(res.body.is_empty());
    assert_eq!(res.header("content-length"), None);
    app.get(&path).await.assert_error(404, "User not found");
    app.delete(&path, None)
        .await
        .assert_error(404, "User not found");
    assert_eq!(app.user_count().await, 0);
    app.create_user("Ann again", "ANN@example.com").await;
}

/// `If-Match` with the current `ETag` (or `*`, or a list holding it) lets a PATCH or DELETE
/// through; any other tag (a weak one, one that only reads as the same number, an empty list)
/// is a 412 that changes nothing; a field that is not `*` or a list of tags is a 400.
#[tokio::test]
async fn if_match_guards_patch_and_delete() {
    let app = spawn_app().await;
    let (id, _) = app.create_user("Ann", "ann@example.com").await;
    let path = format!("/users/{id}");
    for tag in ["1", "\"1", "*, \"1\"", "\"1\", *", "\"1\" \"2\"", "w/\"1\""] {
        let bad = "If-Match must be * or a list of entity tags";
        (app.patch(&path, r#"{"name":"B"}"#, Some(tag)).await).assert_error(400, bad);
        app.delete(&path, Some(tag)).await.assert_error(400, bad);
    }
    for tag in ["\"2\"", "W/\"1\"", "\"01\"", "\"+1\"", "\"x\"", "", ", ,"] {
        app.patch(&path, r#"{"name":"B"}"#, Some(tag))
            .await
            .assert_error(
                412,
                "Precondition failed: the user's ETag does not match If-Match",
            );
        app.delete(&path, Some(tag)).await.assert_error(
            412,
            "Precondition failed: the user's ETag does not match If-Match",
        );
    }
    assert_eq!(app.get(&path).await.header("etag"), Some("\"1\""));
    let res = app.patch(&path, r#"{"name":"B"}"#, Some("\"1\"")).await;
    assert_eq!(res.header("etag"), Some("\"2\""));
    let res = app
        .patch(&path, r#"{"name":"C"}"#, Some("\"7\", \"2\""))
        .await;
    assert_eq!(res.header("etag"), Some("\"3\""));
    let res = app.patch(&path, r#"{"name":"D"}"#, Some("*")).await;
    assert_eq!(res.header("etag"), Some("\"4\""));
    app.delete(&path, Some("\"3\"")).await.assert_error(
        412,
        "Precondition failed: the user's ETag does not match If-Match",
    );
    assert_eq!(app.delete(&path, Some("\"4\"")).await.status, 204);
}

/// Concurrent PATCHes with the same `If-Match`: exactly one wins, the others get 412.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_conditional_patches_let_exactly_one_through() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (id, _) = app.create_user("Ann", "ann@example.com").await;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (app, id) = (app.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let body = format!(r#"{{"name":"writer {t}"}}"#);
            app.patch(&format!("/users/{id}"), &body, Some("\"1\""))
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 412).count(),
        15,
        "{statuses:?}"
    );
}

/// Unconditional concurrent PATCHes all land: the version counts every one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_are_each_counted_in_the_version() {
    let app = std::sync::Arc::new(spawn_app().await);
    let (id, _) = app.create_user("Ann", "ann@example.com").await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (app, id) = (app.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let body = format!(r#"{{"name":"w{t} {i}"}}"#);
                let res = app.patch(&format!("/users/{id}"), &body, None).await;
                assert_eq!(res.status, 200, "{res:?}");
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = app.get(&format!("/users/{id}")).await;
    assert_eq!(got.header("etag"), Some("\"81\""));
}
