//! The finalize function:
//! - `POST /sweep` (Cloud Scheduler): finalize every idle session, or in queue mode
//!   (`RRSTITCH_FINALIZE_MODE=queue`) publish one finalize message per idle session;
//! - `POST /pubsub/finalize` (the finalize queue's push subscription): finalize the one session
//!   the message names (see `queue.rs`);
//! - `POST /finalize` with `{"session_guid": "…"}` (by hand): one session now, idle or not;
//! - `POST /reconcile` (Cloud Scheduler, daily), optionally `{"since_secs": N, "cursor": "…"}`:
//!   ingest the chunks whose events were lost; a pass cut by its budget answers a `cursor`
//!   to pass back, and a request without one continues after the cursor the last such pass
//!   left in the index (`Service::reconcile_resumed`), so a schedule needs no state;
//! - `POST /restitch` with `{"all": true}`, `{"since_secs": N}` and/or `{"environment": "…"}`,
//!   or `{"session_guids": […]}`, and optionally the `"cursor"` a cut run answered: re-open
//!   finalized sessions and stitch them again under the current rules (in queue mode: publish
//!   one finalize message each); on Lambda, `{"restitch": {…}}`;
//! - `POST /delete` with `{"session_guids": […], "keep_chunks": false}` (by hand, or a
//!   privacy workflow): erase sessions (`Service::erase`); on Lambda, `{"delete": {…}}`;
//! - on AWS Lambda (`AWS_LAMBDA_RUNTIME_API` set): an EventBridge scheduled event (or
//!   `{"sweep": true}`) sweeps (or dispatches), `{"reconcile": true}` reconciles, an SQS batch
//!   of finalize messages is worked through (answering `batchItemFailures`), a `{"session_guid": …}`
//!   payload or a Function URL request finalizes one session, `{"restitch": {…}}` re-stitches,
//!   and anything else is acknowledged with an error in the answer, never retried: it can
//!   never succeed.
//!
//! Both are `Service::sweep` / `Service::finalize`; this file maps their results to HTTP:
//! 404 for an unknown session, 400 for a malformed request, 409 while another worker holds
//! the session, 503 on a transient failure. Access control is the platform's (Cloud Run IAM,
//! Lambda Function URL `AWS_IAM`): there is deliberately no anonymous path here.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use aws_lambda_events::lambda_function_urls::LambdaFunctionUrlResponse;
use aws_lambda_events::sqs::SqsBatchResponse;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lambda_runtime::{service_fn, LambdaEvent};
use rrstitch::queue::FinalizeQueue;
use rrstitch::service::erase::{erase_request, EraseRequest};
use rrstitch::service::restitch::{restitch_request, RestitchRequest};
use rrstitch::service::{Service, ServiceError, Stop};
use rrstitch_edge::config::Settings;
use rrstitch_edge::events::{self, FinalizeEvent, FunctionUrlRequest, ReconcileRequest};
use serde::Serialize;
use serde_json::{json, Value};

mod queue;

/// What every handler shares: the service, and in queue mode the queue a sweep dispatches to.
struct App {
    svc: Service,
    queue: Option<Arc<dyn FinalizeQueue>>,
}

#[tokio::main]
async fn main() -> Result<()> {
    rrstitch_edge::alloc::tune();
    let settings = Settings::from_env()?;
    rrstitch_edge::telemetry::init_function(&settings);
    let app = Arc::new(App {
        svc: rrstitch_edge::setup::service(&settings).await?,
        queue: rrstitch_edge::setup::finalize_queue(&settings).await?,
    });
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_runtime::run(service_fn(|event: LambdaEvent<FinalizeEvent>| {
            let app = app.clone();
            async move { Ok::<_, lambda_runtime::Error>(on_lambda(&app, event.payload).await) }
        }))
        .await
        .map_err(|e| anyhow!(e));
    }
    let app = Router::new()
        .route("/sweep", post(sweep))
        .route("/finalize", post(finalize))
        .route("/reconcile", post(reconcile))
        .route("/restitch", post(restitch))
        .route("/delete", post(delete))
        .route("/pubsub/finalize", post(pubsub_finalize))
        .route("/status", get(status))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(app);
    let app = rrstitch_edge::http::limit_body(app, 64 * 1024);
    rrstitch_edge::http::serve(app, &settings.http_addr, settings.serve).await?;
    Ok(())
}

/// `(status, JSON body)` of a sweep: in queue mode, a dispatch.
async fn run_sweep(app: &App) -> (u16, Value) {
    if let Some(queue) = &app.queue {
        return queue::run_dispatch(&app.svc, queue.as_ref()).await;
    }
    match app.svc.sweep().await {
        // Failed sessions stay open for the next sweep; a 5xx makes the failure visible to the
        // scheduler. A sweep the budget cut short is a success: the next tick goes on.
        Ok(summary) if summary.stopped == Some(Stop::IndexFailing) => (503, json!(summary)),
        Ok(summary) if summary.failed.is_empty() => (200, json!(summary)),
        Ok(summary) => (500, json!(summary)),
        Err(e) => error(&e),
    }
}

/// `(status, JSON body)` of a reconcile, optionally of only the last `since` and from a
/// cursor (`Err`: what is wrong with the request). In queue mode the pass is cut into name
/// ranges published for the workers (`Service::reconcile_fan_out`).
async fn run_reconcile(app: &App, request: Result<ReconcileRequest, String>) -> (u16, Value) {
    let request = match request {
        Ok(request) => request,
        Err(e) => return bad_request(e),
    };
    let svc = &app.svc;
    if let Some(queue) = &app.queue {
        return match svc
            .reconcile_fan_out(queue.as_ref(), request.since, request.cursor.as_deref())
            .await
        {
            Ok(summary) if summary.failed.is_empty() => (200, json!(summary)),
            Ok(summary) if summary.failed.iter().any(|f| f.transient) => (503, json!(summary)),
            Ok(summary) => (500, json!(summary)),
            Err(e) => error(&e),
        };
    }
    // A schedule posts the same body every time: without a cursor the pass continues the
    // series the index keeps; with one, it is a caller's own pass.
    let summary = match request.cursor.as_deref() {
        None => svc.reconcile_resumed(request.since).await,
        Some(cursor) => svc.reconcile_from(request.since, Some(cursor)).await,
    };
    match summary {
        Ok(summary) if summary.failed.is_empty() => (200, json!(summary)),
        Ok(summary) => (500, json!(summary)),
        Err(e) => error(&e),
    }
}

/// `(status, JSON body)` of a re-stitch: inline, or in queue mode published to the queue. A
/// run cut by its budget is a success that answers a `cursor` to pass back; 503 when a retry
/// may fix a failure, 500 when not.
async fn run_restitch(app: &App, request: Result<RestitchRequest, String>) -> (u16, Value) {
    let request = match request {
        Ok(request) => request,
        Err(e) => return bad_request(e),
    };
    let queue = app.queue.as_deref();
    let progress = rrstitch::service::backfill::NoProgress;
    match app.svc.restitch(&request, queue, &progress).await {
        Ok(summary) if summary.failed.is_empty() => (200, json!(summary)),
        Ok(summary) if summary.is_transient() => (503, json!(summary)),
        Ok(summary) => (500, json!(summary)),
        Err(e) => error(&e),
    }
}

/// `(status, JSON body)` of a manual finalize of the session `guid` names.
async fn run_finalize(svc: &Service, guid: Result<String, String>) -> (u16, Value) {
    let report = match guid {
        Ok(guid) => svc.finalize(&guid).await,
        Err(e) => return bad_request(e),
    };
    match report {
        Ok(report) => (200, json!(report)),
        Err(e) => error(&e),
    }
}

/// `(status, JSON body)` of an erasure: 503 when a retry may finish it (erasure is
/// idempotent), 500 when part of it cannot succeed.
async fn run_delete(svc: &Service, request: Result<EraseRequest, String>) -> (u16, Value) {
    let request = match request {
        Ok(request) => request,
        Err(e) => return bad_request(e),
    };
    match svc.erase(&request).await {
        Ok(report) if report.failed.is_empty() => (200, json!(report)),
        Ok(report) if report.is_transient() => (503, json!(report)),
        Ok(report) => (500, json!(report)),
        Err(e) => error(&e),
    }
}

/// A request that could never succeed as sent.
fn bad_request(e: String) -> (u16, Value) {
    (400, json!({"error": e}))
}

pub(crate) fn error(e: &ServiceError) -> (u16, Value) {
    let status = rrstitch_edge::http::status_of(e).as_u16();
    if status >= 500 {
        tracing::error!(error = %e, "finalize failed");
    }
    (status, json!({"error": e.to_string()}))
}

fn respond((status, body): (u16, Value)) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, Json(body)).into_response()
}

async fn sweep(State(app): State<Arc<App>>) -> Response {
    respond(run_sweep(&app).await)
}

/// What the index knows now (`rrstitch status --json`): behind the same IAM as every
/// other route, since it names sessions.
async fn status(State(app): State<Arc<App>>) -> Response {
    respond(run_status(&app.svc).await)
}

async fn run_status(svc: &Service) -> (u16, Value) {
    match svc.status().await {
        Ok(status) => (200, json!(status)),
        Err(e) => error(&e),
    }
}

async fn finalize(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(run_finalize(&app.svc, events::finalize_request(&body)).await)
}

async fn reconcile(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(run_reconcile(&app, events::reconcile_request(&body)).await)
}

async fn restitch(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(run_restitch(&app, restitch_request(&body)).await)
}

async fn pubsub_finalize(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(queue::run_push(&app.svc, app.queue.as_deref(), &body).await)
}

async fn delete(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(run_delete(&app.svc, erase_request(&body)).await)
}

/// What the finalize Lambda answers, in the shape its caller reads.
#[derive(Serialize)]
#[serde(untagged)]
enum LambdaAnswer {
    /// A direct invocation (schedule, manual, reconcile, re-stitch, erasure):
    /// `{"status", "result"}`.
    Invocation { status: u16, result: Value },
    /// A Function URL request: the HTTP response.
    Http(LambdaFunctionUrlResponse),
    /// An SQS batch: the event source mapping reads `batchItemFailures` at the top.
    Batch(SqsBatchResponse),
}

impl From<(u16, Value)> for LambdaAnswer {
    fn from((status, result): (u16, Value)) -> Self {
        LambdaAnswer::Invocation { status, result }
    }
}

/// Runs what a Lambda payload asks for.
async fn on_lambda(app: &App, event: FinalizeEvent) -> LambdaAnswer {
    let svc = &app.svc;
    match event {
        FinalizeEvent::FunctionUrl(request) => {
            LambdaAnswer::Http(http_response(on_function_url(app, &request).await))
        }
        FinalizeEvent::Erase { delete } => run_delete(svc, delete).await.into(),
        FinalizeEvent::Restitch { restitch } => run_restitch(app, restitch).await.into(),
        FinalizeEvent::Finalize { session_guid } => run_finalize(svc, session_guid).await.into(),
        FinalizeEvent::Reconcile {
            since_secs, cursor, ..
        } => run_reconcile(app, FinalizeEvent::reconcile_request(since_secs, cursor))
            .await
            .into(),
        FinalizeEvent::Queued(batch) => {
            LambdaAnswer::Batch(queue::run_sqs(svc, app.queue.as_deref(), batch).await)
        }
        FinalizeEvent::Scheduled(_) | FinalizeEvent::Sweep { .. } => run_sweep(app).await.into(),
        FinalizeEvent::Unknown(payload) => {
            // Retrying cannot make it one of ours: answer, so Lambda does not retry it.
            let e = FinalizeEvent::unknown();
            tracing::error!(error = %e, payload = %truncated(&payload), "payload acknowledged and ignored");
            (400, json!({"error": e.to_string()})).into()
        }
    }
}

/// `(status, JSON body)` of a Function URL request, routed by its path as the HTTP server
/// routes.
async fn on_function_url(app: &App, request: &FunctionUrlRequest) -> (u16, Value) {
    let body = match request.body() {
        Ok(body) => body,
        Err(e) => return bad_request(e),
    };
    let svc = &app.svc;
    match request.raw_path.as_str() {
        "/sweep" => run_sweep(app).await,
        "/reconcile" => run_reconcile(app, events::reconcile_request(&body)).await,
        "/delete" => run_delete(svc, erase_request(&body)).await,
        "/restitch" => run_restitch(app, restitch_request(&body)).await,
        "/status" => run_status(svc).await,
        "/" | "/finalize" => run_finalize(svc, events::finalize_request(&body)).await,
        other => (404, json!({"error": format!("no route {other}")})),
    }
}

/// A payload for a log line, cut to a readable length.
fn truncated(event: &Value) -> String {
    let mut text = event.to_string();
    if text.len() > 512 {
        let mut end = 512;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn http_response((status, body): (u16, Value)) -> LambdaFunctionUrlResponse {
    let mut response = LambdaFunctionUrlResponse::default();
    response.status_code = status.into();
    response.headers.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("application/json"),
    );
    response.body = Some(body.to_string());
    response
}
