//! Criterion benches of the pieces every request goes through, from the route table to the
//! whole application answering one request.
//!
//! - `router`: matchit resolving a path and a method to an endpoint (a hit, the health check,
//!   a 404).
//! - `store`: the sharded in-memory store holding 100k users: a read that finds its user (and
//!   one that renders its document), a read that does not, an insert.
//! - `list_1000`: a page of 1000 users with 8, 64 and 512 shards (the time should not grow
//!   with the shard count).
//! - `body`: what `POST /users` does with its body: serde_json into borrowed fields, the
//!   domain's validation, the user's JSON.
//! - `app`: [`userd::App::handle`] answering `GET /users/{id}` and `POST /users`, with no socket
//!   and no HTTP parsing (that part is hyper's, and `scripts/bench.sh` measures it end to end).
//!
//! `cargo bench --bench hot_paths` measures (about a minute in all); `cargo test --benches`
//! runs every bench once, as a smoke test. `cargo bench --bench hot_paths -- store` runs one
//! group.

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use serde::Deserialize;
use std::borrow::Cow;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use userd::response::ApiResponse;
use userd::router::Router;
use userd::store::MemoryStore;
use userd::store::UserView;
use userd::users::document::{escape, json_len, rfc3339, write_json};
use userd::users::{NewUser, UserId};
use userd::App;

/// Users in the pre-filled store, as in a modest production table.
const PREFILL: usize = 100_000;

/// Shards: what `userd` picks on a 2-CPU machine (4 x CPUs).
const SHARDS: usize = 8;

/// A typical `POST /users` body: about the size the load scripts send.
const CREATE_BODY: &[u8] = br#"{"name":"Ada Lovelace","email":"ada.lovelace@example.com"}"#;

/// Largest request body, as `userd`'s default `--max-body`.
const MAX_BODY: usize = 64 * 1024;

/// A user of the fixture: its id, name and email (its email is its key).
struct BenchUser {
    id: UserId,
    name: String,
    email: String,
}

/// Every fixture user was created at this moment.
const STAMP: &str = "2026-12-04T03:29:13.123Z";

impl BenchUser {
    fn view(&self) -> UserView<'_> {
        UserView {
            id: self.id,
            version: 1,
            created_at: STAMP,
            updated_at: STAMP,
            name: &self.name,
            email: &self.email,
            email_key: &self.email,
        }
    }
}

/// Users made once and shared by every bench.
struct Fixture {
    users: Vec<BenchUser>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        users: (0..PREFILL)
            .map(|i| BenchUser {
                id: UserId::random(),
                name: format!("Bench User {i}"),
                email: format!("user{i}@example.com"),
            })
            .collect(),
    })
}

/// A store of `shards` shards holding every user of the fixture.
fn store_of(shards: usize) -> MemoryStore {
    let store = MemoryStore::new(shards);
    for user in &fixture().users {
        store.insert_now(&user.view());
    }
    store
}

/// A store holding every user of the fixture.
fn prefilled_store() -> MemoryStore {
    store_of(SHARDS)
}

/// Runs a future that is expected to be ready at once (the in-memory store and a `Full` body
/// never wait) with a single poll, so the bench measures the handler and no executor. Should
/// it ever wait, a current-thread tokio runtime finishes it.
fn drive<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(fut),
    }
}

/// Times `iters` calls of `routine`, in rounds of at most `round` calls. Each round starts from
/// a fresh state made by `setup`, and every call gets an input made by `input`; neither is
/// timed. This keeps benches that add users from growing the store without bound over the
/// millions of calls a measurement makes.
fn timed_rounds<S, I, O>(
    iters: u64,
    round: u64,
    mut setup: impl FnMut() -> S,
    mut input: impl FnMut(&S, u64) -> I,
    mut routine: impl FnMut(&S, I) -> O,
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = round.min(iters - done);
        let state = setup();
        let inputs: Vec<I> = (0..n).map(|i| input(&state, done + i)).collect();
        let mut outputs = Vec::with_capacity(inputs.len());
        let start = Instant::now();
        for input in inputs {
            outputs.push(routine(&state, input));
        }
        total += start.elapsed();
        // Outputs and state are dropped here, outside the timed loop.
        drop(outputs);
        drop(state);
        done += n;
    }
    total
}

fn router(c: &mut Criterion) {
    let router = Router::new();
    let user_path = format!("/users/{}", UserId::random());
    let mut g = c.benchmark_group("router");
    g.bench_function("get_user", |b| {
        b.iter(|| {
            router
                .route(black_box(&Method::GET), black_box(&user_path))
                .is_ok()
        })
    });
    g.bench_function("health", |b| {
        b.iter(|| {
            router
                .route(black_box(&Method::GET), black_box("/health"))
                .is_ok()
        })
    });
    g.bench_function("not_found", |b| {
        b.iter(|| {
            router
                .route(black_box(&Method::GET), black_box("/no/such/path"))
                .is_err()
        })
    });
    g.finish();
}

fn store(c: &mut Criterion) {
    let users = &fixture().users;
    let store = prefilled_store();
    let mut g = c.benchmark_group("store");
    g.bench_function("get_hit", |b| {
        // Walk the ids in a fixed stride so reads spread over shards and chunks.
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 7919) % users.len();
            store.get_now(black_box(users[i].id), |u| u.version)
        })
    });
    g.bench_function("get_and_render", |b| {
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 7919) % users.len();
            store.get_now(black_box(users[i].id), |u| {
                let mut out = Vec::with_capacity(json_len(&u));
                write_json(&mut out, &u);
                out
            })
        })
    });
    g.bench_function("get_miss", |b| {
        let misses: Vec<UserId> = (0..1024).map(|_| UserId::random()).collect();
        let mut i = 0usize;
        b.iter(|| {
            i = (i + 1) % misses.len();
            store.get_now(black_box(misses[i]), |u| u.version)
        })
    });
    drop(store);
    g.bench_function("insert_into_100k", |b| {
        b.iter_custom(|iters| {
            timed_rounds(
                iters,
                200_000,
                prefilled_store,
                |_, _| UserId::random(),
                |store, id| {
                    let user = UserView {
                        id,
                        ..users[0].view()
                    };
                    store.insert_now(black_box(&user))
                },
            )
        })
    });
    g.finish();
}

/// A page of 1000 users from the middle of 100 000, with 8, 64 and 512 shards: a k-way merge
/// of the shards' creation orders, so the time grows with the page, not with the shard count
/// times the page (which listing each shard's next 1000 before a sort would cost).
fn list(c: &mut Criterion) {
    let mut g = c.benchmark_group("list_1000");
    for shards in [8, 64, 512] {
        let store = store_of(shards);
        // A cursor in the middle of the store.
        let mut cursor = None;
        for _ in 0..50 {
            cursor = store.list_now(cursor, 1000, |_| {});
        }
        g.bench_function(format!("{shards}_shards"), |b| {
            b.iter(|| {
                let mut n = 0;
                let next = store.list_now(black_box(cursor), 1000, |u| n += u.name.len());
                (n, next)
            })
        });
    }
    g.finish();
}

/// The body of `POST /users` as a handler would read it: fields borrowed from the body unless
/// an escape forces a copy, unknown fields ignored.
#[derive(Deserialize)]
struct CreateUserBody<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    email: Cow<'a, str>,
}

/// A new user's document, as a create renders it.
fn render(id: UserId, user: &NewUser<'_>) -> Vec<u8> {
    let stamp = rfc3339(std::time::SystemTime::now());
    let (name, email) = (escape(user.name()), escape(user.email()));
    let view = UserView {
        id,
        version: 1,
        created_at: stamp.as_str(),
        updated_at: stamp.as_str(),
        name: &name,
        email: &email,
        email_key: &email,
    };
    let mut out = Vec::with_capacity(json_len(&view));
    write_json(&mut out, &view);
    out
}

fn body(c: &mut Criterion) {
    let id = UserId::random();
    let mut g = c.benchmark_group("body");
    g.bench_function("serde_borrowed", |b| {
        b.iter(|| {
            let body: CreateUserBody<'_> =
                serde_json::from_slice(black_box(CREATE_BODY)).expect("valid JSON");
            body.name.len() + body.email.len()
        })
    });
    g.bench_function("new_user_parse", |b| {
        b.iter(|| {
            NewUser::parse(
                black_box("  Ada Lovelace "),
                black_box("ada.lovelace@example.com"),
            )
            .is_ok()
        })
    });
    g.bench_function("to_json", |b| {
        let user = NewUser::parse("Ada Lovelace", "ada.lovelace@example.com").expect("valid");
        b.iter(|| render(black_box(id), &black_box(user)))
    });
    g.bench_function("parse_validate_serialize", |b| {
        b.iter(|| {
            let body: CreateUserBody<'_> =
                serde_json::from_slice(black_box(CREATE_BODY)).expect("valid JSON");
            let user = NewUser::parse(&body.name, &body.email).expect("valid");
            render(black_box(id), &user)
        })
    });
    g.finish();
}

fn get_request(id: UserId) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::GET)
        .uri(format!("/users/{id}"))
        .body(Full::new(Bytes::new()))
        .expect("a valid request")
}

fn post_request() -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri("/users")
        .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .header("content-length", CREATE_BODY.len())
        .body(Full::new(Bytes::from_static(CREATE_BODY)))
        .expect("a valid request")
}

fn app(c: &mut Criterion) {
    let users = &fixture().users;
    let app = App::new(prefilled_store(), MAX_BODY);

    // Check once that the benches measure the successful path, not an error envelope.
    let res: ApiResponse = drive(app.handle(get_request(users[0].id)));
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "GET /users/{{id}} of a stored user"
    );
    let res: ApiResponse = drive(app.handle(post_request()));
    assert_eq!(res.status(), StatusCode::CREATED, "POST /users");

    let mut g = c.benchmark_group("app");
    g.bench_function("get_user", |b| {
        let mut i = 0usize;
        b.iter_batched(
            || {
                i = (i + 7919) % users.len();
                get_request(users[i].id)
            },
            |req| drive(app.handle(req)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("get_user_miss", |b| {
        b.iter_batched(
            || get_request(UserId::random()),
            |req| drive(app.handle(req)),
            BatchSize::SmallInput,
        )
    });
    drop(app);
    g.bench_function("create_user", |b| {
        b.iter_custom(|iters| {
            timed_rounds(
                iters,
                100_000,
                || App::new(MemoryStore::new(SHARDS), MAX_BODY),
                |_, _| post_request(),
                |app, req| drive(app.handle(req)),
            )
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .without_plots()
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = router, store, list, body, app
}
criterion_main!(hot_paths);
