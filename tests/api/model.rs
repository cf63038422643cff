//! A model-based property test: random sequences of create, patch, delete and list against a
//! live server, each answer checked against a plain in-test model of the Users resource.

use crate::helpers::{assert_user_version, create_body, data_of, spawn_app, TestApp};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::value::RawValue;

/// A small pool, with case and space variants, so that emails collide often.
const EMAILS: [&str; 6] = ["a@x", " A@X ", "b@x", "B@x", "c@y", "d@y"];
const NAMES: [&str; 4] = ["Ann", "Bob", "  Cy ", "Dé"];

#[derive(Debug, Clone)]
enum Op {
    Create {
        name: usize,
        email: usize,
    },
    /// Patch the `user`-th user ever created (modulo), alive or not.
    Patch {
        user: usize,
        name: Option<usize>,
        email: Option<usize>,
        if_match: Option<u32>,
    },
    Delete {
        user: usize,
        if_match: Option<u32>,
    },
    List {
        limit: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let some = |n: usize| proptest::option::of(0..n);
    prop_oneof![
        3 => (0..NAMES.len(), 0..EMAILS.len()).prop_map(|(name, email)| Op::Create { name, email }),
        3 => (any::<usize>(), some(NAMES.len()), some(EMAILS.len()), proptest::option::of(0u32..4))
            .prop_map(|(user, name, email, if_match)| Op::Patch { user, name, email, if_match }),
        2 => (any::<usize>(), proptest::option::of(0u32..4))
            .prop_map(|(user, if_match)| Op::Delete { user, if_match }),
        2 => (1usize..5).prop_map(|limit| Op::List { limit }),
    ]
}

/// What the model knows of a user.
#[derive(Debug, Clone)]
struct User {
    id: String,
    name: String,
    email: String,
    version: u64,
    alive: bool,
    /// The document the server last answered for it.
    doc: String,
}

fn key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Runs `ops` on a fresh server and checks every answer against the model.
async fn check(app: &TestApp, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut users: Vec<User> = Vec::new();
    let taken = |users: &[User], k: &str, except: Option<&str>| {
        users
            .iter()
            .any(|u| u.alive && key(&u.email) == k && Some(u.id.as_str()) != except)
    };
    for op in ops {
        match op {
            Op::Create { name, email } => {
                let (name, email) = (NAMES[*name], EMAILS[*email]);
                let res = app.post_json("/users", create_body(name, email)).await;
                if taken(&users, &key(email), None) {
                    prop_assert_eq!(res.status, 409, "{:?}", res);
                } else {
                    prop_assert_eq!(res.status, 201, "{:?}", res);
                    let id = res.json()["data"]["id"].as_str().unwrap().to_owned();
                    let doc = data_of(&res);
                    assert_user_version(&doc, &id, name.trim(), email.trim(), 1);
                    users.push(User {
                        id,
                        name: name.trim().into(),
                        email: email.trim().into(),
                        version: 1,
                        alive: true,
                        doc,
                    });
                }
            }
            Op::Patch {
                user,
                name,
                email,
                if_match,
            } if !users.is_empty() => {
                let i = user % users.len();
                let mut body = serde_json::Map::new();
                if let Some(n) = name {
                    body.insert("name".into(), NAMES[*n].into());
                }
                if let Some(e) = email {
                    body.insert("email".into(), EMAILS[*e].into());
                }
                let tag = if_match.map(|v| format!("\"{v}\""));
                let path = format!("/users/{}", users[i].id);
                let res = app
                    .patch(
                        &path,
                        &serde_json::Value::Object(body).to_string(),
                        tag.as_deref(),
                    )
                    .await;
                let u = &users[i];
                // The body is checked first, then the user, then `If-Match`, then the email.
                let expected = if name.is_none() && email.is_none() {
                    400
                } else if !u.alive {
                    404
                } else if if_match.is_some_and(|v| u64::from(v) != u.version) {
                    412
                } else if email.is_some_and(|e| taken(&users, &key(EMAILS[e]), Some(&u.id))) {
                    409
                } else {
                    200
                };
                prop_assert_eq!(res.status, expected, "{:?} on {:?}: {:?}", op, u, res);
                if expected == 200 {
                    let u = &mut users[i];
                    if let Some(n) = name {
                        u.name = NAMES[*n].trim().into();
                    }
                    if let Some(e) = email {
                        u.email = EMAILS[*e].trim().into();
                    }
                    u.version += 1;
                    u.doc = data_of(&res);
                    assert_user_version(&u.doc, &u.id, &u.name, &u.email, u.version);
                    let etag = format!("\"{}\"", u.version);
                    prop_assert_eq!(res.header("etag"), Some(etag.as_str()));
                }
            }
            Op::Delete { user, if_match } if !users.is_empty() => {
                let i = user % users.len();
                let tag = if_match.map(|v| format!("\"{v}\""));
                let res = app
                    .delete(&format!("/users/{}", users[i].id), tag.as_deref())
                    .await;
                let u = &mut users[i];
                let expected = if !u.alive {
                    404
                } else if if_match.is_some_and(|v| u64::from(v) != u.version) {
                    412
                } else {
                    204
                };
                prop_assert_eq!(res.status, expected, "{:?} on {:?}", op, u);
                if expected == 204 {
                    u.alive = false;
                }
            }
            Op::List { limit } => {
                let alive: Vec<&str> = users
                    .iter()
                    .filter(|u| u.alive)
                    .map(|u| u.doc.as_str())
                    .collect();
                let mut listed = Vec::new();
                let mut query = format!("?limit={limit}");
                loop {
                    let res = app.get(&format!("/users{query}")).await;
                    prop_assert_eq!(res.status, 200);
                    let data = data_of(&res);
                    #[derive(serde::Deserialize)]
                    struct Page<'a> {
                        #[serde(borrow)]
                        users: Vec<&'a RawValue>,
                        next_cursor: Option<String>,
                    }
                    let page: Page<'_> = serde_json::from_str(&data).unwrap();
                    prop_assert!(page.users.len() <= *limit);
                    listed.extend(page.users.iter().map(|u| u.get().to_owned()));
                    match page.next_cursor {
                        Some(c) => query = format!("?limit={limit}&cursor={c}"),
                        None => break,
                    }
                }
                prop_assert_eq!(listed, alive);
            }
            _ => {}
        }
    }
    prop_assert_eq!(
        app.user_count().await,
        users.iter().filter(|u| u.alive).count()
    );
    // Every user reads back as the model has it.
    for u in &users {
        let res = app.get(&format!("/users/{}", u.id)).await;
        if u.alive {
            prop_assert_eq!(data_of(&res), u.doc.clone());
        } else {
            prop_assert_eq!(res.status, 404);
        }
    }
    Ok(())
}

#[test]
fn random_sequences_of_writes_and_lists_agree_with_the_model() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            rt.block_on(async {
                let app = spawn_app().await;
                let result = check(&app, &ops).await;
                app.shutdown().await;
                result
            })
        })
        .unwrap();
}
