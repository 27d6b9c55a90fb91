//! The segmented half of `rrstitch view`: a session's manifest and its gzip segments, passed
//! through as stored so the browser inflates them, plus the manifests the list reads so
//! listing never reads a segmented session's (large) single file.
//!
//! The format is the one a stitch writes with `RRSTITCH_SEGMENTS=1`: `<guid>/manifest.json`
//! lists the segments, `<guid>/<generation>/NNNNN.json.gz` are gzip'd JSON arrays of events
//! cut where a player can start (README, "Segmented output, for playback at any size"; the
//! cuts in [`rrstitch::engine::segment`], the layout and replacement in
//! [`rrstitch::service::segments`]).
//!
//! Every name comes from the URL, so both parts are checked before they reach the store: the
//! guid by the same rule ingest uses, the segment path component by component (plain names
//! of `[A-Za-z0-9._-]`, none starting with `.`, ending in `.json.gz`).

use anyhow::Result;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rrstitch::engine::console::CONSOLE_FILE;
use rrstitch::service::segments::MANIFEST;
use rrstitch::storage::ObjectMeta;
use serde_json::Value;

use super::errors::server_error;
use super::state::{read_object, AppState, Shared, Source};

/// The largest segment served; the writer caps segments at 8 MiB of JSON by default, so this
/// is far above anything it writes.
const MAX_SEGMENT_BYTES: u64 = 256 * 1024 * 1024;
const MAX_MANIFEST_BYTES: u64 = 64 * 1024 * 1024;

/// A segment (or the console file's) path relative to the manifest's folder, if it is one
/// the writer could have made.
fn safe_segment_path(path: &str) -> bool {
    (path.ends_with(".json.gz") || path.ends_with(CONSOLE_FILE))
        && path.split('/').all(|part| {
            !part.is_empty()
                && !part.starts_with('.')
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        })
}

fn valid_guid(guid: &str) -> bool {
    rrstitch::engine::SessionGuid::parse(guid).is_ok()
}

async fn get_object(s: &AppState, name: &str, limit: u64) -> Result<Option<Vec<u8>>> {
    let Source::Store(_, prefix) = &s.source else {
        return Ok(None);
    };
    Ok(read_object(s, &format!("{prefix}{name}"), limit).await?)
}

/// `GET /api/sessions/{guid}/manifest.json`: 404 when the session has no segments.
pub(crate) async fn manifest(State(s): State<Shared>, UrlPath(guid): UrlPath<String>) -> Response {
    if !valid_guid(&guid) {
        return (StatusCode::BAD_REQUEST, "bad session guid").into_response();
    }
    match get_object(&s, &format!("{guid}/{MANIFEST}"), MAX_MANIFEST_BYTES).await {
        // A re-stitch replaces the manifest: never let the browser keep an old one.
        Ok(Some(body)) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no manifest for {guid}")).into_response(),
        Err(e) => server_error(e),
    }
}

/// `GET /api/sessions/{guid}/segments/{path}`: one segment object (or the generation's
/// console file, JSON lines), gzip as stored.
pub(crate) async fn segment(
    State(s): State<Shared>,
    UrlPath((guid, path)): UrlPath<(String, String)>,
) -> Response {
    if !valid_guid(&guid) || !safe_segment_path(&path) {
        return (StatusCode::BAD_REQUEST, "bad segment path").into_response();
    }
    match get_object(&s, &format!("{guid}/{path}"), MAX_SEGMENT_BYTES).await {
        // A generation's objects never change (a re-stitch writes a new generation), so the
        // browser may keep them: a seek back re-reads from its cache.
        Ok(Some(body)) => {
            let cache = (header::CACHE_CONTROL, "private, max-age=3600, immutable");
            let json = if path.ends_with(CONSOLE_FILE) {
                (header::CONTENT_TYPE, "application/x-ndjson")
            } else {
                (header::CONTENT_TYPE, "application/json")
            };
            if body.starts_with(&[0x1f, 0x8b]) {
                ([json, (header::CONTENT_ENCODING, "gzip"), cache], body).into_response()
            } else {
                // A bucket that transcodes (GCS inflates a gzip-encoded object for a client
                // that did not ask for gzip) hands over plain JSON: say so, or the browser
                // would try to inflate it.
                ([json, cache], body).into_response()
            }
        }
        Ok(None) => (StatusCode::NOT_FOUND, format!("no segment {guid}/{path}")).into_response(),
        Err(e) => server_error(e),
    }
}

/// Every session with a manifest in `listed` (the source's listing), as its guid and parsed
/// manifest: the list makes their rows from the manifests' metadata and skips their single
/// files. A manifest that does not parse is logged and left to the single file.
pub(crate) async fn manifests(s: &AppState, listed: &[ObjectMeta]) -> Result<Vec<(String, Value)>> {
    let Source::Store(_, prefix) = &s.source else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for meta in listed {
        let rest = &meta.name[prefix.len()..];
        let Some(guid) = rest.strip_suffix(&format!("/{MANIFEST}")) else {
            continue;
        };
        if guid.contains('/') || !valid_guid(guid) {
            continue;
        }
        // None: replaced or erased between the listing and the read.
        let Some(body) = read_object(s, &meta.name, MAX_MANIFEST_BYTES).await? else {
            continue;
        };
        match serde_json::from_slice::<Value>(&body) {
            Ok(m) => found.push((guid.to_string(), m)),
            Err(e) => tracing::warn!(object = %meta.name, error = %e, "manifest unreadable"),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_paths_stay_inside_the_session_folder() {
        assert!(safe_segment_path("18c2f3a1b2c4d-3f2a/00000.json.gz"));
        assert!(safe_segment_path("18c2f3a1b2c4d-3f2a/console.jsonl.gz"));
        assert!(!safe_segment_path("18c2f3a1b2c4d-3f2a/other.jsonl.gz"));
        for bad in [
            "../x.json.gz",
            "a/../../b.json.gz",
            "/etc/x.json.gz",
            "a//b.json.gz",
            ".hidden/00000.json.gz",
            "gen/00000.json",
            "gen/0000 1.json.gz",
            "gen\\..\\x.json.gz",
        ] {
            assert!(!safe_segment_path(bad), "{bad} accepted");
        }
    }
}
