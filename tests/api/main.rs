//! The behaviour of userd's API over real sockets: one test binary, one module per topic, run
//! against every store (`USERD_TEST_STORE`, see [`helpers`]).
//!
//! Every test starts its own server on an ephemeral port (see [`helpers::spawn_app`]) and talks
//! to it with a small raw HTTP/1.1 client, so that status lines, headers and body bytes can be
//! asserted exactly. The real executable and the durable store's crash and fault tests are in
//! `tests/process`.

mod concurrency;
mod create_user;
mod get_user;
mod health;
mod helpers;
mod layers;
mod limits;
mod list_users;
mod model;
mod props;
mod protocol;
mod request_body;
mod routing;
mod unique_email;
mod update_user;
