//! Platform events, decoded into what the service takes: which object arrived, which session
//! to finalize, what a queue delivered.
//!
//! Split by direction, because the two functions receive different things:
//! - [`ingest`] — what announces a new chunk object: a GCS CloudEvent from Eventarc (binary or
//!   structured content mode), a Pub/Sub push of a GCS notification, an S3 notification
//!   delivered to Lambda;
//! - [`finalize`] — what asks the finalize function for work: an SQS batch of finalize
//!   messages, the finalize Lambda's payloads (scheduled event, manual and reconcile requests,
//!   Function URL requests), a Pub/Sub push of a finalize message, and the request bodies of
//!   the HTTP routes.
//!
//! Lambda payloads are typed (`aws_lambda_events` where its types fit, serde enums for the
//! shapes that are ours), so the runtime decodes each invocation once. Decoding is pure and
//! total — every input yields what it announces or an [`EventError`] saying what is wrong —
//! so it can be fuzzed (`fuzz/fuzz_targets/events.rs`), and so an edge can answer a malformed
//! event with a 4xx, or acknowledge it, instead of crashing.
//!
//! This file holds what both directions share: the error type and the Pub/Sub push envelope.

use serde::Deserialize;
use thiserror::Error;

pub mod finalize;
pub mod ingest;

pub use finalize::{
    finalize_request, is_sqs_event, pubsub_push_data, reconcile_request, sqs_messages,
    FinalizeEvent, FunctionUrlRequest, ReconcileRequest, SqsBatch, SqsMessage,
};
pub use ingest::{
    decode_s3_key, gcs_object_from_cloudevent, gcs_object_from_pubsub_push, s3_objects, S3Payload,
    GCS_FINALIZED, PUBSUB_FINALIZE,
};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum EventError {
    #[error("not a CloudEvent: {0}")]
    NotACloudEvent(String),
    #[error("unsupported event type {0:?}: this function handles {GCS_FINALIZED}")]
    UnsupportedType(String),
    #[error("event data is not a storage object: {0}")]
    BadData(String),
    #[error("S3 record {index}: {reason}")]
    BadRecord { index: usize, reason: String },
    #[error("not an S3 notification: {0}")]
    NotS3(String),
    #[error("not a Pub/Sub push message: {0}")]
    NotPubSub(String),
    #[error("not a payload this function handles: {0}")]
    UnknownPayload(String),
}

/// The message of a Pub/Sub push delivery, `{"message": {...}, "subscription": "…"}`: the
/// fields rrstitch reads. Both directions receive pushes: GCS notifications (ingest) and
/// finalize messages (finalize).
#[derive(Deserialize)]
struct PushMessage {
    #[serde(default)]
    attributes: std::collections::HashMap<String, String>,
    /// The payload, base64 (absent for a message with attributes only).
    #[serde(default)]
    data: Option<String>,
}

fn push_message(body: &[u8]) -> Result<PushMessage, EventError> {
    #[derive(Deserialize)]
    struct Envelope {
        message: PushMessage,
    }
    serde_json::from_slice::<Envelope>(body)
        .map(|e| e.message)
        .map_err(|e| EventError::NotPubSub(e.to_string()))
}
