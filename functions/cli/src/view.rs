//! `rrstitch view`: a local page that lists stitched sessions and replays them with rrweb.
//!
//! Serves on 127.0.0.1 only. The page (`viewer/`) and rrweb's own files (installed from npm
//! into `viewer/node_modules` by `make viewer`) are read from disk at run time: nothing is
//! fetched from a CDN and no third-party code is compiled in or committed.
//!
//! Routes: `/` the page, `/static/*` its files, `/vendor/rrweb/*` rrweb's `dist/`,
//! `/api/sessions` the list, `/api/sessions/{guid}` one stitched session, and for a session
//! stitched with segments ([`rrstitch::service::segments`]) `/api/sessions/{guid}/manifest.json` and
//! `/api/sessions/{guid}/segments/{generation}/{n}.json.gz`, which the viewer plays
//! progressively. Segments are served as stored (gzip) with `Content-Encoding: gzip`, so the
//! browser inflates them and the server never holds more than one segment.
//!
//! Bound to 127.0.0.1, it still answers only requests addressed to a loopback name
//! ([`loopback_only`]): a web page whose host name an attacker rebinds to 127.0.0.1 gets a
//! 421, not the user's sessions. From a local directory it serves only regular files reached
//! without a symlink ([`inside`]), and it finds one session by its object's name, never by
//! reading the others.

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;
use rrstitch::storage::{ObjectMeta, ObjectStore, StorageError, StorageUrl};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

#[derive(Args)]
pub struct ViewArgs {
    /// A stitched session file, a directory of them, or a results bucket (gs://…, s3://…).
    source: String,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8787)]
    port: u16,
    /// The viewer's files (default: `viewer/` of this checkout). Env: RRSTITCH_VIEWER_DIR.
    #[arg(long, env = "RRSTITCH_VIEWER_DIR")]
    assets: Option<PathBuf>,
}

/// Where the sessions come from.
pub(crate) enum Source {
    File(PathBuf),
    Store(Arc<dyn ObjectStore>, String),
}

pub(crate) struct AppState {
    pub(crate) source: Source,
    assets: PathBuf,
}

pub(crate) type Shared = Arc<AppState>;

pub async fn run(args: ViewArgs) -> Result<()> {
    let assets = find_assets(args.assets.as_deref())?;
    let local = Path::new(&args.source);
    let source = if !args.source.contains("://") && local.is_file() {
        Source::File(local.to_path_buf())
    } else {
        if !args.source.contains("://") && !local.is_dir() {
            bail!("{}: no such file or directory", args.source);
        }
        let (store, prefix) = rrstitch_edge::setup::open_bucket("view", &args.source).await?;
        Source::Store(store, prefix)
    };
    let state = Arc::new(AppState { source, assets });
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{}", args.port))?;
    let port = listener.local_addr()?.port();
    let app = Router::new()
        .route("/", get(index))
        .route("/static/{*file}", get(static_file))
        .route("/vendor/rrweb/{*file}", get(vendor_file))
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{guid}", get(one_session))
        .route(
            "/api/sessions/{guid}/manifest.json",
            get(crate::view_segments::manifest),
        )
        .route(
            "/api/sessions/{guid}/segments/{*path}",
            get(crate::view_segments::segment),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(port, loopback_only));
    // The first stdout line is the address, so scripts and tests can find a port-0 server.
    println!("viewer at http://{}/", listener.local_addr()?);
    eprintln!("serving {} (Ctrl-C to stop)", args.source);
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

/// Answers a request only when its `Host` is a loopback name (`127.0.0.1`, `localhost`,
/// `[::1]`), alone or with the port served: the 127.0.0.1 bind keeps other machines out, but
/// not a page in the user's browser whose own host name was rebound to 127.0.0.1 (DNS
/// rebinding), and that page sends its own name. Anything else is 421 Misdirected Request.
async fn loopback_only(State(port): State<u16>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if host.is_some_and(|h| is_loopback_host(h, port)) {
        return next.run(request).await;
    }
    (
        StatusCode::MISDIRECTED_REQUEST,
        "rrstitch view answers only http://127.0.0.1, http://localhost or http://[::1]",
    )
        .into_response()
}

fn is_loopback_host(host: &str, port: u16) -> bool {
    let (name, rest) = match host.find(']') {
        Some(end) if host.starts_with('[') => host.split_at(end + 1),
        _ => host.split_at(host.find(':').unwrap_or(host.len())),
    };
    let port_ok = match rest.strip_prefix(':') {
        None => rest.is_empty(),
        Some(p) => p.parse::<u16>() == Ok(port),
    };
    port_ok
        && ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(name))
}

fn find_assets(given: Option<&Path>) -> Result<PathBuf> {
    let mut candidates: Vec<PathBuf> = given.map(Path::to_path_buf).into_iter().collect();
    if given.is_none() {
        if let Ok(exe) = std::env::current_exe() {
            // target/{debug,release}/rrstitch → the checkout's viewer/
            for up in exe.ancestors().skip(1).take(4) {
                candidates.push(up.join("viewer"));
            }
        }
        candidates.push(PathBuf::from("viewer"));
    }
    for dir in &candidates {
        if dir.join("index.html").is_file() && dir.join("node_modules/rrweb/dist").is_dir() {
            return Ok(dir.clone());
        }
    }
    bail!(
        "viewer assets not found (looked in {}): run `make viewer` to install rrweb from npm, \
         or pass --assets DIR",
        candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "cjs" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        _ => "application/octet-stream",
    }
}

/// Serves `root/rel`, refusing anything that would leave `root`.
async fn serve_under(root: &Path, rel: &str) -> Response {
    let rel = Path::new(rel);
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return (StatusCode::BAD_REQUEST, "bad path").into_response();
    }
    let path = root.join(rel);
    match tokio::fs::read(&path).await {
        Ok(body) => ([(header::CONTENT_TYPE, content_type(&path))], body).into_response(),
        Err(_) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

async fn index(State(s): State<Shared>) -> Response {
    serve_under(&s.assets, "index.html").await
}

async fn static_file(State(s): State<Shared>, UrlPath(file): UrlPath<String>) -> Response {
    serve_under(&s.assets, &file).await
}

async fn vendor_file(State(s): State<Shared>, UrlPath(file): UrlPath<String>) -> Response {
    serve_under(&s.assets.join("node_modules/rrweb/dist"), &file).await
}

/// What the list needs of a stitched session; `rrweb_data` is skipped unparsed.
#[derive(Deserialize)]
struct Stitched<'a> {
    session_guid: String,
    #[serde(borrow)]
    #[allow(dead_code)]
    rrweb_data: &'a RawValue,
    metadata: Value,
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

/// Whether the object `name` may be served: any object of a cloud bucket, but of a local
/// directory only a regular file whose path has no symlink in it, so a link planted in the
/// results directory (`evil.json -> /home/me/.ssh/…`, a linked folder) serves nothing from
/// outside it.
pub(crate) fn inside(s: &AppState, name: &str) -> bool {
    let Source::Store(store, _) = &s.source else {
        return true;
    };
    let StorageUrl::Local(root) = store.url() else {
        return true;
    };
    let path = root.join(name);
    let regular = std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_file());
    regular
        && match (root.canonicalize(), path.canonicalize()) {
            (Ok(root), Ok(real)) => real == root.join(name),
            _ => false,
        }
}

/// Reads the object `name` (prefix included) of a bucket source, at most `limit` bytes;
/// `None` when it is not there or not [`inside`] the source. Every route reads through here.
pub(crate) async fn read_object(
    s: &AppState,
    name: &str,
    limit: u64,
) -> std::result::Result<Option<Vec<u8>>, StorageError> {
    let Source::Store(store, _) = &s.source else {
        return Ok(None);
    };
    if !inside(s, name) {
        return Ok(None);
    }
    match store.get(name, limit).await {
        Ok(object) => Ok(Some(object.body.to_vec())),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every object of a bucket source under its prefix that may be served ([`inside`]; nothing
/// for a file): one listing serves both the manifests and the single files.
pub(crate) async fn listing(s: &AppState) -> Result<Vec<ObjectMeta>> {
    match &s.source {
        Source::File(_) => Ok(Vec::new()),
        Source::Store(store, prefix) => {
            let mut listed = store.list(prefix).await?;
            listed.retain(|meta| inside(s, &meta.name));
            Ok(listed)
        }
    }
}

/// Every stitched session the source holds, by guid, but for the guids in `skip` (listed
/// from their manifests). `listed` is the source's [`listing`]. Only top-level objects are
/// sessions: `<guid>/…` holds segments; and only those named by their guid, the one name
/// [`one_session`] looks up.
async fn load_all(
    s: &AppState,
    listed: &[ObjectMeta],
    skip: &std::collections::HashSet<String>,
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

pub(crate) fn server_error(e: anyhow::Error) -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")).into_response()
}

/// A list row: what the viewer's table and filters need of a session's metadata.
pub(crate) fn row(guid: &str, m: &Value, manifest: bool) -> Value {
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

async fn list_sessions(State(s): State<Shared>) -> Response {
    // A segmented session's manifest carries its metadata: read that (a few KB) instead of
    // the single file, which can be hundreds of megabytes.
    let listed = match listing(&s).await {
        Ok(listed) => listed,
        Err(e) => return server_error(e),
    };
    let (mut rows, skip) = match crate::view_segments::manifest_rows(&s, &listed).await {
        Ok(found) => found,
        Err(e) => return server_error(e),
    };
    let all = match load_all(&s, &listed, &skip).await {
        Ok(all) => all,
        Err(e) => return server_error(e),
    };
    rows.extend(
        all.iter()
            .filter_map(|(_, body)| serde_json::from_slice::<Stitched<'_>>(body).ok())
            .map(|st| row(&st.session_guid, &st.metadata, false)),
    );
    Json(rows).into_response()
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

async fn one_session(State(s): State<Shared>, UrlPath(guid): UrlPath<String>) -> Response {
    match by_name(&s, &guid).await {
        Ok(Some(body)) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Ok(None) => (StatusCode::NOT_FOUND, format!("no session {guid}")).into_response(),
        Err(e) => server_error(e),
    }
}

#[cfg(test)]
mod tests {
    use super::is_loopback_host;

    #[test]
    fn only_loopback_names_on_the_served_port_pass() {
        for ok in [
            "127.0.0.1",
            "127.0.0.1:8787",
            "localhost",
            "LocalHost:8787",
            "[::1]",
            "[::1]:8787",
        ] {
            assert!(is_loopback_host(ok, 8787), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:8787",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:8787",
            "127.0.0.1:8788",
            "127.0.0.1:",
            "[::1]8787",
            "::1",
            "",
            "127.0.0.1:8787:8787",
        ] {
            assert!(!is_loopback_host(bad, 8787), "{bad}");
        }
    }
}
