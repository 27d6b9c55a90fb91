//! Request and response bodies under the limits: a size cap answered before a byte is read,
//! a body deadline answered 408, and a response body that keeps its request counted as in
//! flight until hyper has sent all of it.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper::body::{Frame, Incoming, SizeHint};

use super::connection::InFlight;

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

pub(super) fn body_timed_out(limit: Duration) -> Response {
    tracing::warn!(
        body_timeout_secs = limit.as_secs_f64(),
        "request body not received in time; answered 408"
    );
    let mut response = (
        StatusCode::REQUEST_TIMEOUT,
        Json(serde_json::json!({
            "error": format!("the request body did not arrive within {limit:?}")
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The error a request body's read fails with once its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub(super) struct BodyTimedOut;

/// A request body that fails once its deadline passes while the handler waits for it.
pub(super) struct DeadlineBody {
    pub(super) body: Incoming,
    pub(super) deadline: Pin<Box<tokio::time::Sleep>>,
    pub(super) timed_out: Arc<AtomicBool>,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.timed_out.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(BodyTimedOut.into())));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A response body that keeps its request in flight until hyper has taken all of it.
pub(super) struct Tracked {
    pub(super) body: Body,
    pub(super) _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
