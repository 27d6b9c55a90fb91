//! Stitched sessions as single files (`<guid>.json` or `.json.gz`): reading them for the list
//! and `GET /api/sessions/{guid}`, which finds one session by its object's name, never by
//! reading the others. Reads are capped at [`MAX_SESSION_BYTES`], stored or inflated.

use std::collections::HashSet;
use std::io::Read;

use anyhow::{bail, Context, Result};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use rrstitch::storage::{ObjectMeta, StorageError};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use super::errors::server_error;
use super::state::{read_object, AppState, Shared, Source};

/// What the list needs of a stitched session; `rrweb_data` is skipped unparsed.
#[derive(Deserialize)]
pub(crate) struct Stitched<'a> {
    pub(crate) session_guid: String,
    #[serde(borrow)]
    #[allow(dead_code)]
    rrweb_data: &'a RawValue,
    pub(crate) metadata: Value,
}

/// The largest single session the viewer reads from a bucket, stored or inflated: twice what
/// a browser can load as one document ([`rrstitch::engine::metadata::BROWSER_LOAD_LIMIT`]),
/// so one session's lookup never holds more than that. (The list still reads every single
/// file it shows, each under this cap.)
const MAX_SESSION_BYTES: u64 = 2 * rrstitch::engine::metadata::BROWSER_LOAD_LIMIT;

fn gunzip_if_needed(body: Vec<u8>) -> Result<Vec<u8>> {
    if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(body.as_slice())
            .take(MAX_SESSION_BYTES + 1)
            .read_to_end(&mut out)?;
        if out.len() as u64 > MAX_SESSION_BYTES {
            bail!("a session inflates past {MAX_SESSION_BYTES} bytes");
        }
        return Ok(out);
    }
    Ok(body)
}

/// Every stitched session the source holds, by guid, but for the guids in `skip` (listed
/// from their manifests). `listed` is the source's [`super::state::listing`]. Only top-level
/// objects are sessions: `<guid>/…` holds segments; and only those named by their guid, the
/// one name [`one_session`] looks up.
pub(crate) async fn load_all(
    s: &AppState,
    listed: &[ObjectMeta],
    skip: &HashSet<String>,
) -> Result<Vec<(String, Vec<u8>)>> {
    match &s.source {
        Source::File(path) => {
            let body = gunzip_if_needed(tokio::fs::read(path).await?)?;
            let guid = serde_json::from_slice::<Stitched<'_>>(&body)
                .with_context(|| format!("{} is not a stitched session", path.display()))?
                .session_guid;
            Ok(vec![(guid, body)])
        }
        Source::Store(_, prefix) => {
            let mut out = Vec::new();
            for meta in listed {
                let rest = &meta.name[prefix.len()..];
                let Some(stem) = rest
                    .strip_suffix(".json.gz")
                    .or_else(|| rest.strip_suffix(".json"))
                else {
                    continue;
                };
                if rest.contains('/') || skip.contains(stem) {
                    continue;
                }
                let body = match read_object(s, &meta.name, MAX_SESSION_BYTES).await {
                    Ok(Some(body)) => gunzip_if_needed(body)?,
                    Ok(None) => continue,
                    Err(e @ StorageError::TooLarge { .. }) => {
                        tracing::warn!(object = %meta.name, error = %e, "too large to view; skipped");
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                match serde_json::from_slice::<Stitched<'_>>(&body) {
                    Ok(st) if st.session_guid == stem => out.push((st.session_guid, body)),
                    Ok(st) => {
                        tracing::warn!(object = %meta.name, session_guid = %st.session_guid, "not named by its session's guid; skipped")
                    }
                    Err(e) => {
                        tracing::warn!(object = %meta.name, error = %e, "not a stitched session; skipped")
                    }
                }
            }
            Ok(out)
        }
    }
}

/// One session's single file, by name only: a results bucket names each session
/// `<guid>.json` (or `.json.gz`), so an unknown guid costs two lookups, never a read of every
/// session (which once took 173 MB for one request over 125 MB of results). A file source
/// is the one session it holds.
async fn by_name(s: &AppState, guid: &str) -> Result<Option<Vec<u8>>> {
    if rrstitch::engine::SessionGuid::parse(guid).is_err() {
        return Ok(None);
    }
    let prefix = match &s.source {
        Source::Store(_, prefix) => prefix,
        Source::File(_) => {
            let found = load_all(s, &[], &Default::default()).await?;
            return Ok(found.into_iter().find(|(g, _)| g == guid).map(|(_, b)| b));
        }
    };
    for ext in ["json", "json.gz"] {
        let name = format!("{prefix}{guid}.{ext}");
        if let Some(body) = read_object(s, &name, MAX_SESSION_BYTES).await? {
            return Ok(Some(gunzip_if_needed(body)?));
        }
    }
    Ok(None)
}

/// `GET /api/sessions/{guid}`: one stitched session, inflated if stored gzip'd.
pub(crate) async fn one_session(
    State(s): State<Shared>,
    UrlPath(guid): UrlPath<String>,
) -> Response {
    match by_name(&s, &guid).await {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no session {guid}")).into_response(),
        Err(e) => server_error(e),
    }
}
