//! `GET /health`.

use crate::helpers::{spawn_app, HEALTH_BODY};

#[tokio::test]
async fn health_answers_200_with_the_articles_exact_body() {
    let app = spawn_app().await;
    let res = app.get("/health").await;
    res.assert_json(200, HEALTH_BODY);
    assert_eq!(res.version, "HTTP/1.1");
    assert_eq!(
        res.body_str(),
        r#"{"ok":true,"data":"ok","error":null}"#,
        "the literal the article documents"
    );
}

/// The route is matched on the path alone; a query string does not change the answer.
#[tokio::test]
async fn health_ignores_the_query_string() {
    let app = spawn_app().await;
    app.get("/health?verbose=1&x")
        .await
        .assert_json(200, HEALTH_BODY);
}

/// Load balancers often probe with HEAD: same status and headers as GET, no body.
#[tokio::test]
async fn head_health_has_the_get_headers_and_no_body() {
    let app = spawn_app().await;
    let get = app.get("/health").await;
    let head = app.head("/health").await;
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(HEALTH_BODY.len().to_string().as_str())
    );
    assert_eq!(head.stable_headers(), get.stable_headers());
}

/// The server keeps answering health checks on one connection (how balancers probe).
#[tokio::test]
async fn health_answers_every_probe_on_a_kept_alive_connection() {
    let app = spawn_app().await;
    let mut conn = app.connect().await;
    for _ in 0..5 {
        let res = conn
            .roundtrip("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .await;
        res.assert_json(200, HEALTH_BODY);
        assert_ne!(res.header("connection"), Some("close"));
    }
}
