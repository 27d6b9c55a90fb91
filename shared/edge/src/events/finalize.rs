//! What asks the finalize function for work, decoded into what the service takes.
//!
//! The finalize function is asked in more ways than ingest: HTTP routes with small JSON
//! bodies (`/finalize`, `/reconcile`), a Pub/Sub push of a finalize message (queue mode on
//! GCP), and on Lambda one payload type that is any of an EventBridge scheduled event, a
//! manual or reconcile request, an erasure, an SQS batch of finalize messages (queue mode on
//! AWS) or a Function URL request. [`FinalizeEvent`] is that payload, typed, so the runtime
//! decodes an invocation once and the function matches on what it is.

use std::time::Duration;

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use rrstitch::service::erase::{erase_request, EraseRequest};
use rrstitch::service::restitch::{restitch_request, RestitchRequest};

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

/// What a finalize Lambda invocation asks for, by the payload's shape; the first variant that
/// fits wins, in this order, and every payload fits the last one.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FinalizeEvent {
    /// A Function URL request: answered in its HTTP response shape.
    FunctionUrl(FunctionUrlRequest),
    /// `{"delete": {"session_guids": […], "keep_chunks": false}}`: an erasure (`Err` says
    /// what is wrong with the request).
    Erase {
        #[serde(deserialize_with = "erase")]
        delete: Result<EraseRequest, String>,
    },
    /// `{"restitch": {"all": true, "cursor": "…"}}` (or `since_secs`, `environment`,
    /// `session_guids`): stitch finalized sessions again (`Err` says what is wrong with the
    /// request).
    Restitch {
        #[serde(deserialize_with = "restitch")]
        restitch: Result<RestitchRequest, String>,
    },
    /// `{"session_guid": "…"}`: finalize one session now (`Err` for a guid that is not a
    /// string).
    Finalize {
        #[serde(deserialize_with = "session_guid")]
        session_guid: Result<String, String>,
    },
    /// `{"reconcile": true}`, optionally with `"since_secs": N` and the `"cursor"` a pass cut
    /// by its budget answered (`Err` when either is not what it should be).
    Reconcile {
        reconcile: True,
        #[serde(default = "no_window", deserialize_with = "since_secs")]
        since_secs: Result<Option<Duration>, String>,
        #[serde(default = "no_cursor", deserialize_with = "cursor")]
        cursor: Result<Option<String>, String>,
    },
    /// An SQS batch of finalize messages (queue mode's workers).
    Queued(SqsBatch),
    /// An EventBridge scheduled event: sweep.
    Scheduled(ScheduledEvent),
    /// `{"sweep": true}`: sweep.
    Sweep { sweep: True },
    /// Anything else: acknowledged with [`FinalizeEvent::unknown`], never retried, since no
    /// retry can make it one of the above.
    Unknown(Value),
}

impl FinalizeEvent {
    /// The error a payload of no known shape is answered with.
    pub fn unknown() -> EventError {
        EventError::UnknownPayload(
            "expected a scheduled event, {\"sweep\": true}, {\"reconcile\": true}, {\"restitch\": {…}}, {\"session_guid\": …} or an SQS event"
                .into(),
        )
    }
}

/// The JSON `true`, and nothing else: `{"reconcile": false}` is not a reconcile request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct True;

impl<'de> Deserialize<'de> for True {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match bool::deserialize(d)? {
            true => Ok(True),
            false => Err(serde::de::Error::custom("expected true")),
        }
    }
}

/// A Lambda Function URL request: the fields of `aws_lambda_events`' `LambdaFunctionUrlRequest`
/// that this function reads. That type also requires `requestContext.timeEpoch` and
/// `requestContext.http`, which a hand-made request (`aws lambda invoke`, the tests) leaves
/// out; a `requestContext` and a `rawPath` are what tell this shape from the others.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionUrlRequest {
    #[allow(dead_code)] // Present, whatever it holds: it is how the shape is told.
    request_context: serde::de::IgnoredAny,
    pub raw_path: String,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    is_base64_encoded: bool,
}

impl FunctionUrlRequest {
    /// The request body, decoded when the Function URL sent it base64-encoded.
    pub fn body(&self) -> Result<Vec<u8>, String> {
        use base64::Engine as _;
        let body = self.body.as_deref().unwrap_or("");
        if !self.is_base64_encoded {
            return Ok(body.as_bytes().to_vec());
        }
        base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| "body is not base64".to_owned())
    }
}

/// An EventBridge event from the `aws.events` source or of type `Scheduled Event`: what a
/// schedule rule delivers.
#[derive(Debug)]
pub struct ScheduledEvent(pub EventBridgeEvent);

impl<'de> Deserialize<'de> for ScheduledEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let event = EventBridgeEvent::deserialize(d)?;
        if event.source == "aws.events" || event.detail_type == "Scheduled Event" {
            Ok(ScheduledEvent(event))
        } else {
            Err(serde::de::Error::custom("not a scheduled event"))
        }
    }
}

/// An SQS event whose records all come from SQS (see [`is_sqs_event`]): an S3 notification or
/// an empty `Records` is not a batch to take.
#[derive(Debug)]
pub struct SqsBatch(pub SqsEvent);

impl<'de> Deserialize<'de> for SqsBatch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let event = SqsEvent::deserialize(d)?;
        if is_sqs_event(&event) {
            Ok(SqsBatch(event))
        } else {
            Err(serde::de::Error::custom("not an SQS event"))
        }
    }
}

/// Whether `event` is an SQS batch: `Records`, every one with `eventSource` `aws:sqs`.
pub fn is_sqs_event(event: &SqsEvent) -> bool {
    !event.records.is_empty()
        && event
            .records
            .iter()
            .all(|r| r.event_source.as_deref() == Some("aws:sqs"))
}

/// One message of an SQS event, as a Lambda event source mapping delivers a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsMessage {
    /// What a `batchItemFailures` entry names to have this one message delivered again.
    pub message_id: String,
    pub body: String,
}

/// The messages of an SQS batch; a record without a `messageId` or a `body` is an error,
/// since it could be neither finalized nor reported as failed.
pub fn sqs_messages(batch: SqsBatch) -> Result<Vec<SqsMessage>, EventError> {
    batch
        .0
        .records
        .into_iter()
        .enumerate()
        .map(|(index, r)| {
            let missing = |k: &str| EventError::BadRecord {
                index,
                reason: format!("SQS record without {k}"),
            };
            Ok(SqsMessage {
                message_id: r.message_id.ok_or_else(|| missing("messageId"))?,
                body: r.body.ok_or_else(|| missing("body"))?,
            })
        })
        .collect()
}

/// What a reconcile is asked to cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileRequest {
    /// Only chunks uploaded within this long (by the time in their names).
    pub since: Option<Duration>,
    /// Continue after this name: what a pass cut by its budget answered as its `cursor`, so
    /// a scheduler that passes it back walks a large bucket over several runs.
    pub cursor: Option<String>,
}

impl FinalizeEvent {
    /// The reconcile a [`FinalizeEvent::Reconcile`]'s fields ask for (`Err`: the first field
    /// that is wrong).
    pub fn reconcile_request(
        since_secs: Result<Option<Duration>, String>,
        cursor: Result<Option<String>, String>,
    ) -> Result<ReconcileRequest, String> {
        Ok(ReconcileRequest {
            since: since_secs?,
            cursor: cursor?,
        })
    }
}

/// A reconcile request: an empty body, or `{"since_secs": N, "cursor": "…"}`, both optional
/// (other fields are ignored).
pub fn reconcile_request(body: &[u8]) -> Result<ReconcileRequest, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ReconcileRequest::default());
    }
    #[derive(Deserialize)]
    struct Request {
        since_secs: Option<u64>,
        cursor: Option<String>,
    }
    serde_json::from_slice::<Request>(body)
        .map(|r| ReconcileRequest {
            since: r.since_secs.map(Duration::from_secs),
            cursor: r.cursor,
        })
        .map_err(reconcile_error)
}

fn reconcile_error(e: serde_json::Error) -> String {
    format!("expected {{\"since_secs\": N, \"cursor\": \"…\"}} (both optional) or nothing: {e}")
}

/// A manual finalize request: `{"session_guid": "…"}`, the shape of a finalize queue message,
/// so it is read as one.
pub fn finalize_request(body: &[u8]) -> Result<String, String> {
    rrstitch::queue::parse_message(body)
}

// The fields of the Lambda payloads whose value can be wrong once the key says what the
// payload is: the key decides the variant (as `{"session_guid": 5}` is still a finalize
// request), and the value's error is answered, as the HTTP route answers a bad body.

fn session_guid<'de, D: Deserializer<'de>>(d: D) -> Result<Result<String, String>, D::Error> {
    Ok(serde_json::from_value(Value::deserialize(d)?)
        .map_err(|e| format!("expected {{\"session_guid\": \"…\"}}: {e}")))
}

fn since_secs<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Result<Option<Duration>, String>, D::Error> {
    Ok(
        serde_json::from_value::<Option<u64>>(Value::deserialize(d)?)
            .map(|s| s.map(Duration::from_secs))
            .map_err(reconcile_error),
    )
}

fn no_window() -> Result<Option<Duration>, String> {
    Ok(None)
}

fn cursor<'de, D: Deserializer<'de>>(d: D) -> Result<Result<Option<String>, String>, D::Error> {
    Ok(serde_json::from_value::<Option<String>>(Value::deserialize(d)?).map_err(reconcile_error))
}

fn no_cursor() -> Result<Option<String>, String> {
    Ok(None)
}

/// The core parses an erasure request from bytes (it is also `POST /delete`'s body), so the
/// small `delete` object is handed to it encoded.
fn erase<'de, D: Deserializer<'de>>(d: D) -> Result<Result<EraseRequest, String>, D::Error> {
    let request = Value::deserialize(d)?;
    Ok(erase_request(request.to_string().as_bytes()))
}

/// The core parses a re-stitch request from bytes (it is also `POST /restitch`'s body), so
/// the small `restitch` object is handed to it encoded.
fn restitch<'de, D: Deserializer<'de>>(d: D) -> Result<Result<RestitchRequest, String>, D::Error> {
    let request = Value::deserialize(d)?;
    Ok(restitch_request(request.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A finalize Lambda payload as the runtime decodes it.
    fn event(payload: Value) -> FinalizeEvent {
        serde_json::from_value(payload).expect("every JSON value is a FinalizeEvent")
    }

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
        let batch = json!({"Records": [record("m1", "{}"), record("m2", "x")]});
        let FinalizeEvent::Queued(queued) = event(batch.clone()) else {
            panic!("an SQS batch is Queued");
        };
        let messages = sqs_messages(queued).unwrap();
        assert_eq!(messages.len(), 2);
        assert_eq!(messages[1].message_id, "m2");
        assert_eq!(messages[1].body, "x");
        // S3 records, an empty batch and a record without an id are not SQS batches to take.
        let sqs = |v: Value| serde_json::from_value::<SqsEvent>(v).unwrap();
        assert!(!is_sqs_event(&sqs(
            json!({"Records": [{"eventSource": "aws:s3"}]})
        )));
        assert!(!is_sqs_event(&sqs(json!({"Records": []}))));
        let mut nameless = batch.clone();
        nameless["Records"][0]
            .as_object_mut()
            .unwrap()
            .remove("messageId");
        let FinalizeEvent::Queued(nameless) = event(nameless) else {
            panic!("a batch with a nameless record is still Queued");
        };
        assert!(matches!(
            sqs_messages(nameless),
            Err(EventError::BadRecord { index: 0, .. })
        ));
    }

    #[test]
    fn finalize_payloads_by_shape() {
        let scheduled =
            json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}});
        assert!(matches!(event(scheduled), FinalizeEvent::Scheduled(_)));
        assert!(matches!(
            event(json!({"sweep": true})),
            FinalizeEvent::Sweep { .. }
        ));
        assert!(matches!(
            event(json!({"reconcile": true, "since_secs": 60})),
            FinalizeEvent::Reconcile { since_secs: Ok(Some(d)), .. } if d == Duration::from_secs(60)
        ));
        assert!(matches!(
            event(json!({"session_guid": "abc"})),
            FinalizeEvent::Finalize { session_guid: Ok(g) } if g == "abc"
        ));
        for junk in [
            json!({}),
            json!([1]),
            json!("sweep"),
            json!({"Records": []}),
        ] {
            assert!(matches!(event(junk), FinalizeEvent::Unknown(_)));
        }
        assert_eq!(reconcile_request(b"").unwrap(), ReconcileRequest::default());
        assert_eq!(
            reconcile_request(br#"{"reconcile":true,"since_secs":120}"#).unwrap(),
            ReconcileRequest {
                since: Some(Duration::from_secs(120)),
                cursor: None
            }
        );
        assert_eq!(
            reconcile_request(br#"{"cursor":"chunks/2025-05-02T12:10:50+0000.json"}"#).unwrap(),
            ReconcileRequest {
                since: None,
                cursor: Some("chunks/2025-05-02T12:10:50+0000.json".into())
            }
        );
        assert!(reconcile_request(b"nope").is_err());
        assert!(reconcile_request(br#"{"cursor": 5}"#).is_err());
    }

    /// The key decides what a payload is, in the order the function has always checked them;
    /// a wrong value under it is that request's error, not an unknown payload.
    #[test]
    fn the_key_decides_and_a_bad_value_is_the_requests_error() {
        assert!(matches!(
            event(json!({"session_guid": 5, "sweep": true})),
            FinalizeEvent::Finalize {
                session_guid: Err(_)
            }
        ));
        assert!(matches!(
            event(json!({"session_guid": "abc", "reconcile": true})),
            FinalizeEvent::Finalize {
                session_guid: Ok(_)
            }
        ));
        assert!(matches!(
            event(json!({"reconcile": true, "since_secs": "soon"})),
            FinalizeEvent::Reconcile {
                since_secs: Err(_),
                ..
            }
        ));
        assert!(matches!(
            event(json!({"reconcile": true, "since_secs": null})),
            FinalizeEvent::Reconcile {
                since_secs: Ok(None),
                ..
            }
        ));
        assert!(matches!(
            event(json!({"reconcile": true, "cursor": "a.json"})),
            FinalizeEvent::Reconcile {
                since_secs: Ok(None),
                cursor: Ok(Some(c)),
                ..
            } if c == "a.json"
        ));
        assert!(matches!(
            event(json!({"reconcile": true, "cursor": 7})),
            FinalizeEvent::Reconcile { cursor: Err(_), .. }
        ));
        assert!(matches!(
            event(json!({"reconcile": false})),
            FinalizeEvent::Unknown(_)
        ));
        assert!(matches!(
            event(json!({"delete": {"session_guids": []}})),
            FinalizeEvent::Erase { delete: Err(_) }
        ));
        assert!(matches!(
            event(json!({"delete": {"session_guids": ["abc"]}, "session_guid": "x"})),
            FinalizeEvent::Erase { delete: Ok(_) }
        ));
        assert!(matches!(
            event(json!({"source": "aws.events", "detail-type": "Object Created", "detail": {}})),
            FinalizeEvent::Scheduled(_)
        ));
        assert!(matches!(
            event(json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {}})),
            FinalizeEvent::Unknown(_)
        ));
    }

    #[test]
    fn restitch_payloads() {
        use rrstitch::service::Selection;
        let FinalizeEvent::Restitch { restitch: Ok(all) } =
            event(json!({"restitch": {"all": true, "cursor": "g-7"}}))
        else {
            panic!("a re-stitch request");
        };
        assert_eq!(all.selection, Selection::all());
        assert_eq!(all.cursor.as_deref(), Some("g-7"));
        assert!(matches!(
            event(json!({"restitch": {"session_guids": ["a-1"]}, "session_guid": "x"})),
            FinalizeEvent::Restitch { restitch: Ok(_) }
        ));
        for bad in [
            json!({}),
            json!({"all": true, "since_secs": 5}),
            json!(true),
        ] {
            assert!(matches!(
                event(json!({ "restitch": bad })),
                FinalizeEvent::Restitch { restitch: Err(_) }
            ));
        }
    }

    #[test]
    fn function_url_requests() {
        let request = |body: &str, base64: bool| {
            json!({
                "version": "2.0",
                "rawPath": "/finalize",
                "rawQueryString": "",
                "headers": {"content-type": "application/json"},
                "requestContext": {"http": {"method": "POST", "path": "/finalize"}},
                "body": body,
                "isBase64Encoded": base64
            })
        };
        let FinalizeEvent::FunctionUrl(plain) = event(request(r#"{"session_guid":"a"}"#, false))
        else {
            panic!("a Function URL request");
        };
        assert_eq!(plain.raw_path, "/finalize");
        assert_eq!(plain.body().unwrap(), br#"{"session_guid":"a"}"#);
        let FinalizeEvent::FunctionUrl(encoded) = event(request("eyJhIjoxfQ==", true)) else {
            panic!("a Function URL request");
        };
        assert_eq!(encoded.body().unwrap(), br#"{"a":1}"#);
        let FinalizeEvent::FunctionUrl(bad) = event(request("%%%", true)) else {
            panic!("a Function URL request");
        };
        assert_eq!(bad.body().unwrap_err(), "body is not base64");
        // A rawPath without a requestContext is not one (here: a finalize request).
        assert!(matches!(
            event(json!({"rawPath": "/sweep", "session_guid": "abc"})),
            FinalizeEvent::Finalize { .. }
        ));
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
