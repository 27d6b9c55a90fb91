//! `rrstitch view`: a local page that lists stitched sessions and replays them with rrweb.
//!
//! Serves on 127.0.0.1 only. The page (`viewer/`) and rrweb's own files are read from disk at
//! run time ([`assets`]): nothing is fetched from a CDN and no third-party code is compiled
//! in or committed.
//!
//! Routes: `/` the page, `/static/*` its files, `/vendor/rrweb/*` rrweb's `dist/`
//! ([`assets`]), `/api/sessions` the list ([`list`]), `/api/sessions/{guid}` one stitched
//! session ([`sessions`]), and for a session stitched with segments
//! ([`rrstitch::service::segments`]) `/api/sessions/{guid}/manifest.json` and
//! `/api/sessions/{guid}/segments/{generation}/{n}.json.gz` ([`segments`]), which the viewer
//! plays progressively. Segments are served as stored (gzip) with `Content-Encoding: gzip`, so
//! the browser inflates them and the server never holds more than one segment.
//!
//! Bound to 127.0.0.1, it still answers only requests addressed to a loopback name
//! ([`loopback`]). From a local directory it serves only regular files reached without a
//! symlink ([`state::inside`]), and it finds one session by its object's name, never by
//! reading the others.
//!
//! The modules depend downward only: this file wires the routes; [`list`] uses [`sessions`]
//! and [`segments`]; every route uses [`state`] (where the sessions come from, and the one
//! way to read them) and [`errors`], which use nothing of the viewer.

mod assets;
mod errors;
mod list;
mod loopback;
mod segments;
mod sessions;
mod state;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::routing::get;
use axum::Router;
use clap::Args;

use state::{AppState, Source};

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

pub async fn run(args: ViewArgs) -> Result<()> {
    let assets = assets::find_assets(args.assets.as_deref())?;
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
        .route("/", get(assets::index))
        .route("/static/{*file}", get(assets::static_file))
        .route("/vendor/rrweb/{*file}", get(assets::vendor_file))
        .route("/api/sessions", get(list::list_sessions))
        .route("/api/sessions/{guid}", get(sessions::one_session))
        .route(
            "/api/sessions/{guid}/manifest.json",
            get(segments::manifest),
        )
        .route(
            "/api/sessions/{guid}/segments/{*path}",
            get(segments::segment),
        )
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(
            port,
            loopback::loopback_only,
        ));
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
