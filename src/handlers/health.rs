//! `GET /health`.

use crate::response::{self, ApiResponse, Envelope};
use bytes::Bytes;
use hyper::StatusCode;

/// The article's health answer, byte for byte.
const HEALTHY: &[u8] = br#"{"ok":true,"data":"ok","error":null}"#;

/// 200 `{"ok":true,"data":"ok","error":null}`: the process is up and serving.
pub(super) fn get() -> ApiResponse {
    response::json(StatusCode::OK, Envelope::whole(Bytes::from_static(HEALTHY)))
}
