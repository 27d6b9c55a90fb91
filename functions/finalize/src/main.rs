//! The finalize function:
//! - `POST /sweep` (Cloud Scheduler): finalize every idle session, or in queue mode
//!   (`RRSTITCH_FINALIZE_MODE=queue`) publish one finalize message per idle session;
//! - `POST /pubsub/finalize` (the finalize queue's push subscription): finalize the one session
//!   the message names (see `queue.rs`);
//! - `POST /finalize` with `{"session_guid": "…"}` (by hand): one session now, idle or not;
//! - `POST /reconcile` (Cloud Scheduler, daily), optionally `{"since_secs": N}`: ingest the
//!   chunks whose events were lost;
//! - `POST /delete` with `{"session_guids": […], "keep_chunks": false}` (by hand, or a
//!   privacy workflow): erase sessions (`Service::erase`); on Lambda, `{"delete": {…}}`;
//! - on AWS Lambda (`AWS_LAMBDA_RUNTIME_API` set): an EventBridge scheduled event (or
//!   `{"sweep": true}`) sweeps (or dispatches), `{"reconcile": true}` reconciles, an SQS batch
//!   of finalize messages is worked through (answering `batchItemFailures`), a `{"session_guid": …}`
//!   payload or a Function URL request finalizes one session, and anything else is
//!   acknowledged with an error in the answer, never retried: it can never succeed.
//!
//! Both are `Service::sweep` / `Service::finalize`; this file maps their results to HTTP:
//! 404 for an unknown session, 400 for a malformed request, 409 while another worker holds
//! the session, 503 on a transient failure. Access control is the platform's (Cloud Run IAM,
//! Lambda Function URL `AWS_IAM`): there is deliberately no anonymous path here.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use lambda_runtime::{service_fn, LambdaEvent};
use rrstitch::queue::FinalizeQueue;
use rrstitch::service::{Service, ServiceError, Stop};
use rrstitch_edge::config::Settings;
use rrstitch_edge::events::FinalizePayload;
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
    rrstitch_edge::telemetry::init(settings.log_format, "info");
    let app = Arc::new(App {
        svc: rrstitch_edge::setup::service(&settings).await?,
        queue: rrstitch_edge::setup::finalize_queue(&settings).await?,
    });
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| {
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
        .route("/delete", post(delete))
        .route("/pubsub/finalize", post(pubsub_finalize))
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

/// `(status, JSON body)` of a reconcile; the body may say `{"since_secs": N}`.
async fn run_reconcile(svc: &Service, body: &[u8]) -> (u16, Value) {
    let since = match rrstitch_edge::events::reconcile_request(body) {
        Ok(since) => since,
        Err(e) => return (400, json!({"error": e})),
    };
    match svc.reconcile(since).await {
        Ok(summary) if summary.failed.is_empty() => (200, json!(summary)),
        Ok(summary) => (500, json!(summary)),
        Err(e) => error(&e),
    }
}

/// `(status, JSON body)` of a manual finalize.
async fn run_finalize(svc: &Service, body: &[u8]) -> (u16, Value) {
    let guid = match rrstitch_edge::events::finalize_request(body) {
        Ok(guid) => guid,
        Err(e) => return (400, json!({"error": e})),
    };
    match svc.finalize(&guid).await {
        Ok(report) => (200, json!(report)),
        Err(e) => error(&e),
    }
}

/// `(status, JSON body)` of an erasure: 503 when a retry may finish it (erasure is
/// idempotent), 500 when part of it cannot succeed.
async fn run_delete(svc: &Service, body: &[u8]) -> (u16, Value) {
    let request = match rrstitch::service::erase::erase_request(body) {
        Ok(request) => request,
        Err(e) => return (400, json!({"error": e})),
    };
    match svc.erase(&request).await {
        Ok(report) if report.failed.is_empty() => (200, json!(report)),
        Ok(report) if report.is_transient() => (503, json!(report)),
        Ok(report) => (500, json!(report)),
        Err(e) => error(&e),
    }
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

async fn finalize(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(run_finalize(&app.svc, &body).await)
}

async fn reconcile(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(run_reconcile(&app.svc, &body).await)
}

async fn pubsub_finalize(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(queue::run_push(&app.svc, &body).await)
}

async fn delete(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    respond(run_delete(&app.svc, &body).await)
}

/// Dispatches a Lambda payload by its shape.
async fn on_lambda(app: &App, event: Value) -> Value {
    let svc = &app.svc;
    // A Function URL request: answer in its HTTP response shape.
    if event.get("requestContext").is_some() && event.get("rawPath").is_some() {
        let path = event["rawPath"].as_str().unwrap_or("/");
        let body = event["body"].as_str().unwrap_or("");
        let body = if event["isBase64Encoded"].as_bool() == Some(true) {
            match base64::engine::general_purpose::STANDARD.decode(body) {
                Ok(b) => b,
                Err(_) => return http_response((400, json!({"error": "body is not base64"}))),
            }
        } else {
            body.as_bytes().to_vec()
        };
        let result = match path {
            "/sweep" => run_sweep(app).await,
            "/reconcile" => run_reconcile(svc, &body).await,
            "/delete" => run_delete(svc, &body).await,
            "/" | "/finalize" => run_finalize(svc, &body).await,
            other => (404, json!({"error": format!("no route {other}")})),
        };
        return http_response(result);
    }
    if let Some(request) = event.get("delete") {
        let (status, body) = run_delete(svc, request.to_string().as_bytes()).await;
        return json!({"status": status, "result": body});
    }
    let (status, body) = match rrstitch_edge::events::finalize_payload(&event) {
        Ok(FinalizePayload::Finalize) => run_finalize(svc, event.to_string().as_bytes()).await,
        Ok(FinalizePayload::Reconcile) => run_reconcile(svc, event.to_string().as_bytes()).await,
        Ok(FinalizePayload::Sweep) => run_sweep(app).await,
        // The event source mapping reads `batchItemFailures` at the top of the answer.
        Ok(FinalizePayload::Queued) => return queue::run_sqs(svc, &event).await,
        Err(e) => {
            // Retrying cannot make it one of ours: answer, so Lambda does not retry it.
            tracing::error!(error = %e, payload = %truncated(&event), "payload acknowledged and ignored");
            (400, json!({"error": e.to_string()}))
        }
    };
    json!({"status": status, "result": body})
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

fn http_response((status, body): (u16, Value)) -> Value {
    json!({
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": body.to_string(),
    })
}
