//! What asks the finalize function for work, decoded into what the service takes.
//!
//! The finalize function is asked in more ways than ingest: HTTP routes with small JSON
//! bodies (`/finalize`, `/reconcile`), a Pub/Sub push of a finalize message (queue mode on
//! GCP), and on Lambda one payload type that is any of an EventBridge scheduled event, a
//! manual or reconcile request, an erasure, an SQS batch of finalize messages (queue mode on
//! AWS) or a Function URL request.

use serde::Deserialize;
use serde_json::Value;

use super::{push_message, EventError};

/// The payload of a Pub/Sub push delivery, decoded from base64: what the finalize queue's push
/// subscription POSTs to `/pubsub/finalize` carries a finalize message there. `Err(NotPubSub)`
/// for a body that is not a push envelope, `Err(BadData)` for a payload that is missing or not
/// base64 (neither will ever decode: acknowledge it).
pub fn pubsub_push_data(body: &[u8]) -> Result<Vec<u8>, EventError> {
    use base64::Engine as _;
    let data = push_message(body)?
        .data
        .ok_or_else(|| EventError::BadData("the push message has no data".into()))?;
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map_err(|e| EventError::BadData(format!("message data is not base64: {e}")))
}

/// One message of an SQS event, as a Lambda event source mapping delivers a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    /// What a `batchItemFailures` entry names to have this one message delivered again.
    pub message_id: String,
    pub body: String,
}

/// Whether `event` is an SQS batch: `Records` whose every `eventSource` is `aws:sqs`.
pub fn is_sqs_event(event: &Value) -> bool {
    event
        .get("Records")
        .and_then(Value::as_array)
        .is_some_and(|records| {
            !records.is_empty()
                && records
                    .iter()
                    .all(|r| r.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        })
}

/// The messages of an SQS batch (see [`is_sqs_event`]); a record without a `messageId` or a
/// `body` is an error, since it could be neither finalized nor reported as failed.
pub fn sqs_messages(event: &Value) -> Result<Vec<SqsMessage>, EventError> {
    if !is_sqs_event(event) {
        return Err(EventError::UnknownPayload("not an SQS event".into()));
    }
    let records = event["Records"].as_array().expect("checked above");
    records
        .iter()
        .enumerate()
        .map(|(index, r)| {
            let field = |k: &str| {
                r.get(k)
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| EventError::BadRecord {
                        index,
                        reason: format!("SQS record without {k}"),
                    })
            };
            Ok(SqsMessage {
                message_id: field("messageId")?,
                body: field("body")?,
            })
        })
        .collect()
}

/// What a finalize Lambda invocation asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalizePayload {
    /// An EventBridge scheduled event, or `{"sweep": true}`.
    Sweep,
    /// `{"session_guid": "…"}`.
    Finalize,
    /// `{"reconcile": true}`, optionally with `"since_secs"`.
    Reconcile,
    /// An SQS batch of finalize messages (queue mode's workers).
    Queued,
}

/// Classifies a finalize Lambda payload by its shape; anything else is an error to
/// acknowledge, not to retry.
pub fn finalize_payload(event: &Value) -> Result<FinalizePayload, EventError> {
    if event.get("session_guid").is_some() {
        return Ok(FinalizePayload::Finalize);
    }
    if event.get("reconcile").and_then(Value::as_bool) == Some(true) {
        return Ok(FinalizePayload::Reconcile);
    }
    if is_sqs_event(event) {
        return Ok(FinalizePayload::Queued);
    }
    let scheduled = event.get("source").and_then(Value::as_str) == Some("aws.events")
        || event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
    if scheduled || event.get("sweep").and_then(Value::as_bool) == Some(true) {
        return Ok(FinalizePayload::Sweep);
    }
    Err(EventError::UnknownPayload(
        "expected a scheduled event, {\"sweep\": true}, {\"reconcile\": true}, {\"session_guid\": …} or an SQS event"
            .into(),
    ))
}

/// A reconcile request: an empty body, or `{"since_secs": N}` (other fields are ignored).
pub fn reconcile_request(body: &[u8]) -> Result<Option<std::time::Duration>, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Request {
        since_secs: Option<u64>,
    }
    serde_json::from_slice::<Request>(body)
        .map(|r| r.since_secs.map(std::time::Duration::from_secs))
        .map_err(|e| format!("expected {{\"since_secs\": N}} or nothing: {e}"))
}

/// A manual finalize request: `{"session_guid": "…"}`.
pub fn finalize_request(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Request {
        session_guid: String,
    }
    serde_json::from_slice::<Request>(body)
        .map(|r| r.session_guid)
        .map_err(|e| format!("expected {{\"session_guid\": \"…\"}}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pubsub_push_data_is_the_decoded_payload() {
        let body = json!({
            "message": {
                "data": "eyJzZXNzaW9uX2d1aWQiOiJhYmMifQ==",
                "attributes": {"session_guid": "abc"},
                "messageId": "7",
                "publishTime": "2025-05-02T12:10:51Z"
            },
            "subscription": "projects/p/subscriptions/finalize-push"
        });
        assert_eq!(
            pubsub_push_data(body.to_string().as_bytes()).unwrap(),
            br#"{"session_guid":"abc"}"#
        );
        let mut no_data = body.clone();
        no_data["message"].as_object_mut().unwrap().remove("data");
        assert!(matches!(
            pubsub_push_data(no_data.to_string().as_bytes()),
            Err(EventError::BadData(_))
        ));
        let mut bad = body.clone();
        bad["message"]["data"] = json!("%%%");
        assert!(matches!(
            pubsub_push_data(bad.to_string().as_bytes()),
            Err(EventError::BadData(_))
        ));
        assert!(matches!(
            pubsub_push_data(br#"{"session_guid":"abc"}"#),
            Err(EventError::NotPubSub(_))
        ));
    }

    #[test]
    fn sqs_batches_by_shape() {
        let record = |id: &str, body: &str| {
            json!({
                "messageId": id,
                "receiptHandle": "rh",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:rrstitch-finalize",
                "awsRegion": "us-east-1"
            })
        };
        let event = json!({"Records": [record("m1", "{}"), record("m2", "x")]});
        assert_eq!(finalize_payload(&event).unwrap(), FinalizePayload::Queued);
        let messages = sqs_messages(&event).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].message_id, "m2");
        assert_eq!(messages[1].body, "x");
        // S3 records, an empty batch and a record without an id are not SQS batches to take.
        let s3 = json!({"Records": [{"eventSource": "aws:s3"}]});
        assert!(!is_sqs_event(&s3));
        assert!(!is_sqs_event(&json!({"Records": []})));
        let mut nameless = event.clone();
        nameless["Records"][0]
            .as_object_mut()
            .unwrap()
            .remove("messageId");
        assert!(matches!(
            sqs_messages(&nameless),
            Err(EventError::BadRecord { index: 0, .. })
        ));
    }

    #[test]
    fn finalize_payloads_by_shape() {
        let scheduled =
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert_eq!(
            finalize_payload(&scheduled).unwrap(),
            FinalizePayload::Sweep
        );
        assert_eq!(
            finalize_payload(&json!({"sweep": true})).unwrap(),
            FinalizePayload::Sweep
        );
        assert_eq!(
            finalize_payload(&json!({"reconcile": true, "since_secs": 60})).unwrap(),
            FinalizePayload::Reconcile
        );
        assert_eq!(
            finalize_payload(&json!({"session_guid": "abc"})).unwrap(),
            FinalizePayload::Finalize
        );
        for junk in [
            json!({}),
            json!([1]),
            json!("sweep"),
            json!({"Records": []}),
        ] {
            assert!(matches!(
                finalize_payload(&junk),
                Err(EventError::UnknownPayload(_))
            ));
        }
        assert_eq!(reconcile_request(b"").unwrap(), None);
        assert_eq!(
            reconcile_request(br#"{"reconcile":true,"since_secs":120}"#).unwrap(),
            Some(std::time::Duration::from_secs(120))
        );
        assert!(reconcile_request(b"nope").is_err());
    }

    #[test]
    fn finalize_requests() {
        assert_eq!(
            finalize_request(br#"{"session_guid":"abc"}"#).unwrap(),
            "abc"
        );
        assert!(finalize_request(b"{}").is_err());
        assert!(finalize_request(b"abc").is_err());
    }
}
