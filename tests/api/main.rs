//! Integration tests of userd over real sockets: one test binary, one module per topic.
//!
//! Every test starts its own server on an ephemeral port (see [`helpers::spawn_app`]) and talks
//! to it with a small raw HTTP/1.1 client, so that status lines, headers and body bytes can be
//! asserted exactly. `binary` runs the real `userd` executable.

mod binary;
mod concurrency;
mod create_user;
mod durable;
mod get_user;
mod health;
mod helpers;
mod limits;
mod list_users;
mod model;
mod props;
mod protocol;
mod request_body;
mod routing;
mod unique_email;
mod update_user;
