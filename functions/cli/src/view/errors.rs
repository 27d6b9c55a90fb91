//! How a route answers a failure of the source: one place, so every route reports a storage
//! error the same way (500 with the error's chain as text).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

pub(crate) fn server_error(e: anyhow::Error) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response()
}
