//! The ingest function. Fired once per new chunk object:
//! - on Cloud Run, by a Pub/Sub push of the chunk bucket's `OBJECT_FINALIZE` notification
//!   POSTed to `/pubsub` (the deployed path: its subscription has a dead-letter topic), or by
//!   an Eventarc `google.cloud.storage.object.v1.finalized` CloudEvent (binary or structured
//!   content mode) POSTed to `/`;
//! - on AWS Lambda (chosen when `AWS_LAMBDA_RUNTIME_API` is set), by an S3 notification.
//!
//! Everything it does is `Service::ingest`; this file only decodes the platform's event and
//! maps the outcome to what the platform understands: 2xx when the chunk is recorded or
//! permanently rejected (the rejection is in the index), 4xx for an event this function does
//! not handle, 5xx (or a failed invocation) on a transient failure, so the platform retries.

use std::sync::Arc;

use anyhow::{anyhow, Result};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use rrstitch::service::Service;
use rrstitch_edge::config::Settings;
use rrstitch_edge::events::{self, S3Payload};
use serde_json::{json, Value};

/// A storage event is a few KB; anything near this is not one.
const MAX_EVENT_BYTES: usize = 256 * 1024;

#[tokio::main]
async fn main() -> Result<()> {
    rrstitch_edge::alloc::tune();
    let settings = Settings::from_env()?;
    rrstitch_edge::telemetry::init_function(&settings);
    if settings.chunks.is_none() {
        anyhow::bail!(
            "RRSTITCH_CHUNKS is not set: the ingest function reads chunks from its configured \
             bucket only, and refuses events naming any other"
        );
    }
    let svc = Arc::new(rrstitch_edge::setup::service(&settings).await?);
    if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() {
        return lambda_runtime::run(service_fn(|event: LambdaEvent<S3Payload>| {
            let svc = svc.clone();
            async move { on_s3_event(&svc, event.payload).await }
        }))
        .await
        .map_err(|e| anyhow!(e));
    }
    let app = Router::new()
        .route("/", post(on_cloudevent))
        .route("/pubsub", post(on_pubsub))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(svc);
    let app = rrstitch_edge::http::limit_body(app, MAX_EVENT_BYTES);
    rrstitch_edge::http::serve(app, &settings.http_addr, settings.serve).await?;
    Ok(())
}

async fn on_cloudevent(
    State(svc): State<Arc<Service>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let object = match events::gcs_object_from_cloudevent(&headers, body.to_vec()) {
        Ok(object) => object,
        Err(e) => {
            tracing::warn!(error = %e, "event refused");
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    ingest(&svc, &object).await
}

/// A Pub/Sub push. Pub/Sub redelivers anything but a 2xx until the message goes to the
/// dead-letter topic, so everything that redelivery cannot change is answered 200.
async fn on_pubsub(State(svc): State<Arc<Service>>, body: axum::body::Bytes) -> Response {
    match events::gcs_object_from_pubsub_push(&body) {
        Ok(Some(object)) => ingest(&svc, &object).await,
        Ok(None) => {
            tracing::info!("not an OBJECT_FINALIZE notification; acknowledged");
            (StatusCode::OK, Json(json!({"outcome": "ignored"}))).into_response()
        }
        Err(e @ events::EventError::NotPubSub(_)) => {
            tracing::warn!(error = %e, "push refused");
            (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "notification cannot be ingested; acknowledged");
            (
                StatusCode::OK,
                Json(json!({"outcome": "refused", "error": e.to_string()})),
            )
                .into_response()
        }
    }
}

async fn ingest(svc: &Service, object: &rrstitch::service::ObjectRef) -> Response {
    match svc.ingest(object).await {
        Ok(outcome) => (StatusCode::OK, Json(json!(outcome))).into_response(),
        Err(e) => {
            tracing::error!(object = %object.name, error = %e, transient = e.is_transient(), "ingest failed");
            let status = rrstitch_edge::http::status_of(&e);
            (status, Json(json!({"error": e.to_string()}))).into_response()
        }
    }
}

/// A failed invocation, named for what went wrong (Lambda shows `errorType`; the default
/// would be the Rust type name of a boxed error).
fn failed(error_type: &str, message: String) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message: message,
    }
}

/// Every record of the notification is ingested; a transient failure of any fails the
/// invocation (Lambda retries it; records already done are recorded idempotently).
async fn on_s3_event(svc: &Service, event: S3Payload) -> Result<Value, Diagnostic> {
    let records = match events::s3_objects(&event) {
        Ok(records) => records,
        Err(e) => {
            // Not an S3 notification: no retry can make it one, so acknowledge it.
            tracing::error!(error = %e, "payload acknowledged and ignored");
            return Ok(json!({"outcome": "ignored", "error": e.to_string()}));
        }
    };
    let mut outcomes = Vec::new();
    let mut transient = None;
    for record in records {
        match record {
            Err(e) => {
                tracing::error!(error = %e, "malformed S3 record skipped");
                outcomes.push(json!({"outcome": "bad_record", "error": e.to_string()}));
            }
            Ok(object) => {
                match svc.ingest(&object).await {
                    Ok(outcome) => outcomes.push(json!(outcome)),
                    Err(e) if e.is_transient() => {
                        tracing::error!(object = %object.name, error = %e, "transient ingest failure; the invocation will fail");
                        transient = Some(e);
                    }
                    Err(e) => {
                        tracing::error!(object = %object.name, error = %e, "ingest failed");
                        outcomes.push(json!({"outcome": "failed", "name": object.name, "error": e.to_string()}));
                    }
                }
            }
        }
    }
    match transient {
        Some(e) => Err(failed("TransientIngestFailure", e.to_string())),
        None => Ok(json!({"objects": outcomes})),
    }
}
