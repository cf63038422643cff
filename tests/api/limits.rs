//! Connection settings: the header read timeout, the connection limit, graceful shutdown.

use crate::helpers::{
    assert_user, create_body, plain_request, spawn_app, spawn_app_with, user_from_created,
    HEALTH_BODY, IO_TIMEOUT,
};
use std::time::Duration;
use userd::server::Settings;

fn header_timeout_of_one_second() -> Settings {
    Settings {
        header_timeout: Duration::from_secs(1),
        ..Settings::default()
    }
}

/// A client that sends half a request line and stalls does not hold its connection forever
/// (slowloris). The bound is generous: this guards against "never", it measures nothing.
#[tokio::test]
async fn stalled_request_line_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(header_timeout_of_one_second(), 1024).await;
    let mut conn = app.connect().await;
    conn.send("GET /hea").await;
    assert!(
        conn.closed_within(Duration::from_secs(10)).await,
        "a stalled request line kept its connection open"
    );
    // The server itself is fine.
    app.get("/health").await.assert_json(200, HEALTH_BODY);
}

#[tokio::test]
async fn stalled_headers_are_closed_after_the_header_timeout() {
    let app = spawn_app_with(header_timeout_of_one_second(), 1024).await;
    let mut conn = app.connect().await;
    conn.send("POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: appl")
        .await;
    assert!(conn.closed_within(Duration::from_secs(10)).await);
}

/// The header timeout also bounds how long an idle kept-alive connection lives.
#[tokio::test]
async fn idle_kept_alive_connection_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(header_timeout_of_one_second(), 1024).await;
    let mut conn = app.connect().await;
    conn.roundtrip(plain_request("GET", "/health"))
        .await
        .assert_json(200, HEALTH_BODY);
    assert!(conn.closed_within(Duration::from_secs(10)).await);
}

/// A head dripped a byte at a time (each byte well within the timeout) is still cut off: the
/// timeout bounds the whole head, not the gap between bytes (slowloris).
#[tokio::test]
async fn head_dripped_byte_by_byte_is_closed_after_the_header_timeout() {
    let app = spawn_app_with(header_timeout_of_one_second(), 1024).await;
    let mut conn = app.connect().await;
    let start = std::time::Instant::now();
    for b in "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: "
        .bytes()
        .cycle()
    {
        if conn.try_send([b]).await.is_err() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "a dripping head kept its connection open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The timeout covers the head only: a body that arrives after it, or a keep-alive connection
/// that is busy with requests, is not cut off.
#[tokio::test]
async fn slow_body_after_a_timely_head_is_answered() {
    let app = spawn_app_with(header_timeout_of_one_second(), 1024).await;
    let mut conn = app.connect().await;
    let body = create_body("Slow", "slow@example.com");
    conn.send(format!(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    ))
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    conn.send(&body).await;
    let res = conn.read_response().await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Slow", "slow@example.com");
}

/// At the connection limit, a further client waits (in the listen backlog) instead of being
/// served or refused, and is served as soon as a slot frees up.
#[tokio::test]
async fn client_over_the_connection_limit_waits_for_a_free_slot() {
    let settings = Settings {
        max_connections: 1,
        ..Settings::default()
    };
    let app = spawn_app_with(settings, 1024).await;
    let mut first = app.connect().await;
    first
        .roundtrip(plain_request("GET", "/health"))
        .await
        .assert_json(200, HEALTH_BODY);

    let mut second = app.connect().await;
    second.send(plain_request("GET", "/health")).await;
    // While `first` holds the only slot, `second` is not served. (A correct server can never
    // fail this; a broken one might slip through on a very slow machine, never the reverse.)
    let early =
        tokio::time::timeout(Duration::from_millis(300), second.try_read_response("GET")).await;
    assert!(early.is_err(), "served over the limit: {early:?}");

    drop(first);
    second.read_response().await.assert_json(200, HEALTH_BODY);
}

/// A request in flight when shutdown begins still gets its answer; the server then stops.
/// `Expect: 100-continue` makes the timing deterministic: the `100 Continue` proves the
/// request is being handled, the refused connection proves shutdown has begun, and only then
/// is the body sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_in_flight_at_shutdown_is_answered() {
    let mut app = spawn_app().await;
    let body = create_body("Ann", "a@b");
    let mut conn = app.connect().await;
    conn.send(format!(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        body.len()
    ))
    .await;
    assert_eq!(conn.read_response().await.status, 100);

    app.begin_shutdown();
    app.wait_until_refusing().await;

    conn.send(&body).await;
    let res = conn.read_response().await;
    let (id, doc) = user_from_created(&res);
    assert_user(&doc, &id, "Ann", "a@b");
    // Shutting down: the connection is not kept alive after that answer.
    assert!(conn.closed_within(IO_TIMEOUT).await);
    app.stopped().await;
}

/// Idle kept-alive connections do not hold shutdown up: they are closed and the server stops
/// well before its shutdown deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_idle_connections() {
    let settings = Settings {
        shutdown_timeout: Duration::from_secs(60),
        ..Settings::default()
    };
    let app = spawn_app_with(settings, 1024).await;
    let mut conns = Vec::new();
    for _ in 0..3 {
        let mut c = app.connect().await;
        c.roundtrip(plain_request("GET", "/health"))
            .await
            .assert_json(200, HEALTH_BODY);
        conns.push(c);
    }
    // `shutdown` waits at most IO_TIMEOUT (10 s), far less than the 60 s deadline.
    app.shutdown().await;
    for c in &mut conns {
        assert!(c.closed_within(IO_TIMEOUT).await);
    }
}

/// The shutdown deadline bounds how long a stalled in-flight request can hold the server up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_deadline_bounds_a_stalled_request() {
    let settings = Settings {
        shutdown_timeout: Duration::from_millis(500),
        ..Settings::default()
    };
    let app = spawn_app_with(settings, 1024).await;
    let mut conn = app.connect().await;
    conn.send(
        "POST /users HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n",
    )
    .await;
    assert_eq!(conn.read_response().await.status, 100);
    // The body never comes; the server still stops (within IO_TIMEOUT, else `shutdown` panics).
    app.shutdown().await;
}

/// A server that was told to stop no longer accepts connections.
#[tokio::test]
async fn stopped_server_refuses_connections() {
    let app = spawn_app().await;
    app.get("/health").await.assert_json(200, HEALTH_BODY);
    let addr = app.addr;
    app.shutdown().await;
    crate::helpers::wait_until_refusing(addr).await;
}
