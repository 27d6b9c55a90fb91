//! `GET /api/sessions`: the list, one row a session, from both kinds of output: a segmented
//! session's row comes from its manifest (a few KB) instead of its single file, which can be
//! hundreds of megabytes; every other session's from its single file. It sits above
//! [`super::segments`] and [`super::sessions`] and builds every row itself, so neither of
//! those knows about the other or about rows.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::errors::server_error;
use super::segments::manifests;
use super::sessions::{load_all, Stitched};
use super::state::{listing, Shared};

/// A list row: what the viewer's table and filters need of a session's metadata.
fn row(guid: &str, m: &Value, manifest: bool) -> Value {
    json!({
        "session_guid": guid,
        "environment": m["environment"],
        "duration_ms": m["duration_ms"],
        "event_count": m["event_count"],
        "chunk_count": m["chunk_count"],
        "first_event_timestamp": m["first_event_timestamp"],
        "last_event_timestamp": m["last_event_timestamp"],
        "replayable": m["replayable"],
        "warnings": m["warnings"],
        "urls": m["urls"],
        "manifest": manifest,
    })
}

pub(crate) async fn list_sessions(State(s): State<Shared>) -> Response {
    let listed = match listing(&s).await {
        Ok(listed) => listed,
        Err(e) => return server_error(e),
    };
    let found = match manifests(&s, &listed).await {
        Ok(found) => found,
        Err(e) => return server_error(e),
    };
    let skip = found.iter().map(|(guid, _)| guid.clone()).collect();
    let all = match load_all(&s, &listed, &skip).await {
        Ok(all) => all,
        Err(e) => return server_error(e),
    };
    let mut rows: Vec<Value> = found
        .iter()
        .map(|(guid, m)| row(guid, &m["metadata"], true))
        .collect();
    rows.extend(
        all.iter()
            .filter_map(|(_, body)| serde_json::from_slice::<Stitched<'_>>(body).ok())
            .map(|st| row(&st.session_guid, &st.metadata, false)),
    );
    Json(rows).into_response()
}
