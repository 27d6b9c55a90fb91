//! Serving the HTTP functions: bind, serve, and stop cleanly on SIGTERM (Cloud Run sends it
//! before stopping an instance; requests in flight finish first).

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};

/// Caps request bodies at `max` bytes.
///
/// A body announced larger than `max` (by `Content-Length`) is refused with 413 at once,
/// before a byte of it is read: the function never waits for, or buffers, an upload it would
/// refuse anyway. A body without a length is cut off at `max` while it streams.
pub fn limit_body(app: Router, max: usize) -> Router {
    app.layer(middleware::from_fn_with_state(max, refuse_announced))
        .layer(DefaultBodyLimit::max(max))
}

async fn refuse_announced(State(max): State<usize>, request: Request, next: Next) -> Response {
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match announced {
        Some(length) if length > max as u64 => {
            tracing::warn!(length, max, "request body too large; refused unread");
            (
                StatusCode::PAYLOAD_TOO_LARGE,
                Json(serde_json::json!({
                    "error": format!("request body of {length} bytes exceeds the limit of {max}")
                })),
            )
                .into_response()
        }
        _ => next.run(request).await,
    }
}

/// Serves `app` on `addr` (`host:port`) until SIGTERM or Ctrl-C.
pub async fn serve(app: Router, addr: &str) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown())
        .await
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
