//! The seam for cross-cutting concerns: a layer wraps the application as a service, sees
//! every request and every response, and changes neither the handlers nor the bytes they send.

use crate::helpers::{
    create_request, error_body, ok_body, plain_request, serve_service, Conn, HEALTH_BODY,
};
use hyper::header::HeaderValue;
use hyper::Request;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use userd::response::ApiResponse;
use userd::server::{Layer, Peer, RequestBody, Service, Settings};
use userd::store::MemoryStore;
use userd::App;

/// A trivial layer: counts requests and names itself in a response header.
struct Tagged<S> {
    inner: S,
    seen: AtomicUsize,
}

struct Tag;

impl<S: Service> Layer<S> for Tag {
    type Service = Tagged<S>;

    fn layer(self, inner: S) -> Tagged<S> {
        Tagged {
            inner,
            seen: AtomicUsize::new(0),
        }
    }
}

impl<S: Service> Service for Tagged<S> {
    fn call<B: RequestBody>(
        &self,
        req: Request<B>,
        peer: Peer,
    ) -> impl Future<Output = ApiResponse> + Send {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        let answer = self.inner.call(req, peer);
        async move {
            let mut res = answer.await;
            let value = HeaderValue::from_str(&n.to_string()).expect("digits");
            res.headers_mut().insert("x-request-number", value);
            res
        }
    }
}

#[tokio::test]
async fn a_layer_sees_every_request_and_leaves_the_answers_alone() {
    let app = App::new(MemoryStore::new(4), 64 * 1024);
    let service: &'static Tagged<App<MemoryStore>> = Box::leak(Box::new(Tag.layer(app)));
    let server = serve_service(service, Settings::default()).await;
    let mut conn = Conn::connect(server.addr).await;

    let res = conn.roundtrip(plain_request("GET", "/health")).await;
    res.assert_json(200, HEALTH_BODY);
    assert_eq!(res.header("x-request-number"), Some("1"));

    let res = conn.roundtrip(create_request("Ann", "a@b")).await;
    assert_eq!(res.status, 201);
    assert_eq!(res.header("x-request-number"), Some("2"));
    let id = res.json()["data"]["id"].as_str().unwrap().to_owned();
    let doc = crate::helpers::data_of(&res);

    let res = conn
        .roundtrip(plain_request("GET", &format!("/users/{id}")))
        .await;
    res.assert_json(200, &ok_body(&doc));
    assert_eq!(res.header("etag"), Some("\"1\""));
    assert_eq!(res.header("x-request-number"), Some("3"));

    let res = conn.roundtrip(plain_request("GET", "/nope")).await;
    res.assert_json(404, &error_body("Not found"));
    assert_eq!(res.header("x-request-number"), Some("4"));

    assert_eq!(service.seen.load(Ordering::Relaxed), 4);
    // The application inside is the same one: its store has the user.
    assert_eq!(service.inner.store().len(), 1);
}
