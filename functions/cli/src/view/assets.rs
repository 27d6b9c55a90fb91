//! The viewer's own files: the page (`viewer/`) and rrweb's `dist/` (installed from npm into
//! `viewer/node_modules` by `make viewer`), read from disk at run time so nothing is fetched
//! from a CDN and no third-party code is compiled in or committed. Routes `/`, `/static/*`
//! and `/vendor/rrweb/*`.

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Result};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::Shared;

/// The viewer's directory: `given`, or the checkout's `viewer/` found from the binary's own
/// path, or `./viewer`; it must hold the page and rrweb's `dist/`.
pub(crate) fn find_assets(given: Option<&Path>) -> Result<PathBuf> {
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

/// `GET /`: the page.
pub(crate) async fn index(State(s): State<Shared>) -> Response {
    serve_under(&s.assets, "index.html").await
}

/// `GET /static/{file}`: the page's other files.
pub(crate) async fn static_file(
    State(s): State<Shared>,
    UrlPath(file): UrlPath<String>,
) -> Response {
    serve_under(&s.assets, &file).await
}

/// `GET /vendor/rrweb/{file}`: rrweb's `dist/`.
pub(crate) async fn vendor_file(
    State(s): State<Shared>,
    UrlPath(file): UrlPath<String>,
) -> Response {
    serve_under(&s.assets.join("node_modules/rrweb/dist"), &file).await
}
