//! Emails are unique, compared trimmed and lowercased: 409 `Email already exists`.

use crate::helpers::{create_body, spawn_app};
use std::sync::Arc;

#[tokio::test]
async fn a_second_user_with_the_same_email_is_409() {
    let app = spawn_app().await;
    app.create_user("Ann", "ann@example.com").await;
    for email in ["ann@example.com", "  ANN@Example.com ", "Ann@EXAMPLE.COM"] {
        let res = app.post_json("/users", create_body("Other", email)).await;
        res.assert_error(409, "Email already exists");
    }
    assert_eq!(app.user_count().await, 1);
}

#[tokio::test]
async fn a_patch_onto_a_taken_email_is_409_and_changes_nothing() {
    let app = spawn_app().await;
    app.create_user("Ann", "ann@example.com").await;
    let (bob, _) = app.create_user("Bob", "bob@example.com").await;
    let path = format!("/users/{bob}");
    let res = app
        .patch(
            &path,
            r#"{"name":"Robert","email":"ANN@example.com"}"#,
            None,
        )
        .await;
    res.assert_error(409, "Email already exists");
    let got = app.get(&path).await;
    assert_eq!(got.json()["data"]["name"], "Bob");
    assert_eq!(got.header("etag"), Some("\"1\""));
    // A user may change the case of its own email.
    let res = app
        .patch(&path, r#"{"email":"BOB@example.com"}"#, None)
        .await;
    assert_eq!(res.status, 200, "{res:?}");
}

/// An email let go by a PATCH or a DELETE can be taken by another user.
#[tokio::test]
async fn emails_let_go_are_free_again() {
    let app = spawn_app().await;
    let (ann, _) = app.create_user("Ann", "ann@example.com").await;
    let res = app
        .patch(
            &format!("/users/{ann}"),
            r#"{"email":"ann2@example.com"}"#,
            None,
        )
        .await;
    assert_eq!(res.status, 200);
    let (carl, _) = app.create_user("Carl", "ann@example.com").await;
    app.post_json("/users", create_body("Dan", "ann2@example.com"))
        .await
        .assert_error(409, "Email already exists");
    assert_eq!(
        app.delete(&format!("/users/{carl}"), None).await.status,
        204
    );
    app.create_user("Eve", "ann@example.com").await;
}

/// Many clients create a user with one email at the same time: exactly one gets 201, every
/// other one 409, and one user is stored. Repeated on fresh emails to give the race chances.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_creates_of_one_email_give_exactly_one_201() {
    let app = Arc::new(spawn_app().await);
    for round in 0..20 {
        let start = Arc::new(tokio::sync::Barrier::new(8));
        let mut tasks = Vec::new();
        for t in 0..8 {
            let (app, start) = (app.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                let mut conn = app.connect().await;
                let email = if t % 2 == 0 {
                    "Race@x.io"
                } else {
                    " race@X.io"
                };
                let raw =
                    crate::helpers::create_request(&format!("r{t}"), &format!("{email}{round}"));
                start.wait().await;
                conn.roundtrip(raw).await
            }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            let res = t.await.unwrap();
            if res.status == 409 {
                res.assert_error(409, "Email already exists");
            }
            statuses.push(res.status);
        }
        assert_eq!(
            statuses.iter().filter(|&&s| s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|&&s| s == 409).count(),
            7,
            "{statuses:?}"
        );
    }
    assert_eq!(app.user_count().await, 20);
}

/// A PATCH and a create racing for one free email: exactly one gets it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_patch_and_a_create_racing_for_one_email_give_it_to_one() {
    let app = Arc::new(spawn_app().await);
    for round in 0..20 {
        let (ann, _) = app.create_user("Ann", &format!("ann{round}@x")).await;
        let email = format!("free{round}@x");
        let (a, e) = (app.clone(), email.clone());
        let patch = tokio::spawn(async move {
            let body = format!(r#"{{"email":"{e}"}}"#);
            a.patch(&format!("/users/{ann}"), &body, None).await.status
        });
        let (a, e) = (app.clone(), email.clone());
        let create =
            tokio::spawn(async move { a.post_json("/users", create_body("Bob", &e)).await.status });
        let statuses = [patch.await.unwrap(), create.await.unwrap()];
        assert!(
            statuses == [200, 409] || statuses == [409, 201],
            "round {round}: {statuses:?}"
        );
    }
}
