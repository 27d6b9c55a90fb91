//! The finalize queue port: where a dispatching sweep puts one message per idle session
//! (`RRSTITCH_FINALIZE_MODE=queue`), for finalize workers to take one session each.
//!
//! The queue carries only *which* session to look at, `{"session_guid": "…"}`: the index's
//! claim decides whether anything is done, so a message delivered twice, late, or for a
//! session another worker already finalized changes nothing (see [`crate::service::dispatch`]).
//! That is why publishing needs no deduplication and a redelivery is always safe.
//!
//! It also carries bulk work cut into pieces ([`Job::Reconcile`]: one range of chunk names to
//! reconcile), so a pass over a bucket too large for one process runs on the same workers.
//! Such a piece is idempotent as a whole: reconciling a range twice records nothing twice.
//!
//! Adapters: Pub/Sub over its REST API ([`pubsub`], honouring `PUBSUB_EMULATOR_HOST`) and SQS
//! through the AWS SDK ([`sqs`], honouring `AWS_ENDPOINT_URL`). Delivery to workers is the
//! platform's (a push subscription, a Lambda event source mapping), not this module's.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::engine::SessionGuid;
use crate::storage::BoxError;

#[cfg(feature = "gcp")]
pub mod pubsub;
#[cfg(feature = "aws")]
pub mod sqs;

/// Which queue carries finalize messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueSpec {
    /// A Pub/Sub topic, `projects/P/topics/T`.
    PubSub { topic: String },
    /// An SQS queue, by URL.
    Sqs { url: String },
}

impl QueueSpec {
    /// The cargo feature that compiles this queue in.
    pub fn feature(&self) -> &'static str {
        match self {
            QueueSpec::PubSub { .. } => "gcp",
            QueueSpec::Sqs { .. } => "aws",
        }
    }
}

#[derive(Debug, Error)]
pub enum QueueError {
    /// Worth retrying: no answer, a timeout, throttling, a 5xx.
    #[error("finalize queue {op}: transient failure: {source}")]
    Transient {
        op: &'static str,
        #[source]
        source: BoxError,
    },
    /// Retrying will not help: no such topic or queue, no permission, a refused request.
    #[error("finalize queue {op}: {source}")]
    Permanent {
        op: &'static str,
        #[source]
        source: BoxError,
    },
}

impl QueueError {
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Transient { .. })
    }

    /// The same error for another job of a batch that failed as a whole (the source is not
    /// `Clone`; its text is what is kept).
    fn copy_of(e: &QueueError) -> QueueError {
        let source = e.source_text().into();
        match e {
            QueueError::Transient { op, .. } => QueueError::Transient { op, source },
            QueueError::Permanent { op, .. } => QueueError::Permanent { op, source },
        }
    }

    fn source_text(&self) -> String {
        match self {
            QueueError::Transient { source, .. } | QueueError::Permanent { source, .. } => {
                source.to_string()
            }
        }
    }
}

/// A message one publish call did not take, and why.
pub type Refused = (Job, QueueError);

/// What one message asks a worker to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Job {
    /// Finalize this session if it is idle: `{"session_guid": "…"}`.
    Finalize(SessionGuid),
    /// Reconcile the chunk objects of one name range: `{"reconcile": {…}}`.
    Reconcile(NameRange),
}

/// A slice of the chunk bucket's names: those after `after` (from the prefix's start when
/// `None`) up to and including `through` (to the end when `None`). Consecutive ranges share
/// their bound, so a run of them covers every name exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub through: Option<String>,
    /// Only chunks uploaded at or after this instant (ms since the epoch), by their names:
    /// the window's start, fixed when the pass was cut into ranges.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
}

impl NameRange {
    /// Whether `name` (under the range's prefix) sorts inside the range.
    pub fn holds(&self, name: &str) -> bool {
        self.after.as_deref().is_none_or(|a| name > a)
            && self.through.as_deref().is_none_or(|t| name <= t)
    }
}

impl Job {
    /// The message body.
    pub fn body(&self) -> String {
        match self {
            Job::Finalize(guid) => message(guid),
            Job::Reconcile(range) => serde_json::json!({ "reconcile": range }).to_string(),
        }
    }

    /// Reads a message body: a finalize message (whose guid is checked) or a reconcile range.
    pub fn parse(body: &[u8]) -> Result<Job, String> {
        #[derive(Deserialize)]
        struct Reconcile {
            reconcile: NameRange,
        }
        if let Ok(Reconcile { reconcile }) = serde_json::from_slice::<Reconcile>(body) {
            return Ok(Job::Reconcile(reconcile));
        }
        let raw = parse_message(body)?;
        SessionGuid::parse(&raw)
            .map(Job::Finalize)
            .map_err(|e| e.to_string())
    }

    /// A short label for logs and message attributes.
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Finalize(_) => "finalize",
            Job::Reconcile(_) => "reconcile",
        }
    }
}

#[async_trait]
pub trait FinalizeQueue: Send + Sync + std::fmt::Debug {
    /// Most messages one [`FinalizeQueue::publish`] takes (Pub/Sub: 1,000; SQS: 10).
    fn batch_limit(&self) -> usize;

    /// Publishes one message per job in `batch` (at most [`Self::batch_limit`]).
    /// `Ok` lists the jobs the queue refused one by one (SQS answers per entry); `Err`
    /// means the call as a whole failed and none of the batch can be taken as published.
    async fn publish(&self, batch: &[Job]) -> Result<Vec<Refused>, QueueError>;
}

/// Publish calls in flight at once: enough to hide a publish round trip, few enough not to
/// be throttled by the queue service.
pub const PUBLISH_PARALLELISM: usize = 8;

/// What [`publish_all`] did.
#[derive(Debug, Default)]
pub struct Published {
    /// Messages the queue took.
    pub published: usize,
    /// Jobs not published, and why.
    pub refused: Vec<Refused>,
    /// Jobs whose call had not answered when the deadline came (their fate is unknown: a
    /// publish may still land).
    pub unanswered: usize,
}

/// Publishes `jobs` in batches of the queue's size, [`PUBLISH_PARALLELISM`] calls at a time,
/// until `deadline` if one is given. A call that fails as a whole refuses its whole batch.
pub async fn publish_all(
    queue: &dyn FinalizeQueue,
    jobs: Vec<Job>,
    deadline: Option<tokio::time::Instant>,
) -> Published {
    use futures::stream::{self, StreamExt};
    let total = jobs.len();
    let batches: Vec<Vec<Job>> = jobs
        .chunks(queue.batch_limit().max(1))
        .map(<[Job]>::to_vec)
        .collect();
    let mut calls = stream::iter(batches)
        .map(|batch| async move {
            let outcome = queue.publish(&batch).await;
            (batch, outcome)
        })
        .buffer_unordered(PUBLISH_PARALLELISM);
    let mut done = Published::default();
    let mut answered = 0;
    loop {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, calls.next()).await {
                Ok(next) => next,
                Err(_) => {
                    done.unanswered = total - answered;
                    break;
                }
            },
            None => calls.next().await,
        };
        let Some((batch, outcome)) = next else { break };
        answered += batch.len();
        match outcome {
            Ok(refused) => {
                done.published += batch.len() - refused.len();
                done.refused.extend(refused);
            }
            Err(e) => {
                tracing::error!(messages = batch.len(), kind = batch[0].kind(), error = %e, "publishing to the finalize queue failed");
                let shared = std::sync::Arc::new(e);
                done.refused.extend(
                    batch
                        .into_iter()
                        .map(|job| (job, QueueError::copy_of(&shared))),
                );
            }
        }
    }
    done
}

/// The body of one finalize message: `{"session_guid": "…"}`, the same request a manual
/// `POST /finalize` takes.
pub fn message(guid: &SessionGuid) -> String {
    serde_json::json!({ "session_guid": guid.as_str() }).to_string()
}

/// The session a finalize message names. Its guid is checked by the worker, which acknowledges
/// a bad one: a message that can never name a session must not be redelivered.
pub fn parse_message(body: &[u8]) -> Result<String, String> {
    #[derive(Deserialize)]
    struct Message {
        session_guid: String,
    }
    serde_json::from_slice::<Message>(body)
        .map(|m| m.session_guid)
        .map_err(|e| format!("expected {{\"session_guid\": \"…\"}}: {e}"))
}

/// Opens the queue a [`QueueSpec`] names.
pub async fn open(spec: &QueueSpec) -> Result<Arc<dyn FinalizeQueue>, QueueError> {
    match spec {
        #[cfg(feature = "gcp")]
        QueueSpec::PubSub { topic } => Ok(Arc::new(pubsub::PubSubQueue::from_env(topic)?)),
        #[cfg(feature = "aws")]
        QueueSpec::Sqs { url } => Ok(Arc::new(sqs::SqsQueue::connect(url).await)),
        #[allow(unreachable_patterns)]
        other => Err(QueueError::Permanent {
            op: "open",
            source: crate::storage::not_in_this_build(
                &format!("{other:?} queues"),
                other.feature(),
            )
            .into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_round_trips_and_junk_is_refused() {
        let guid = SessionGuid::parse("6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33").unwrap();
        let body = message(&guid);
        assert_eq!(
            body,
            r#"{"session_guid":"6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33"}"#
        );
        assert_eq!(parse_message(body.as_bytes()).unwrap(), guid.as_str());
        assert!(parse_message(b"{}").is_err());
        assert!(parse_message(b"not json").is_err());
        assert!(parse_message(br#"{"session_guid": 7}"#).is_err());
    }

    #[test]
    fn jobs_round_trip_and_ranges_hold_their_names() {
        let guid = SessionGuid::parse("a-1").unwrap();
        assert_eq!(
            Job::parse(Job::Finalize(guid.clone()).body().as_bytes()),
            Ok(Job::Finalize(guid))
        );
        let range = NameRange {
            after: Some("c/2025-05-01T12:00:00".into()),
            through: Some("c/2025-05-01T13:00:00".into()),
            since_ms: Some(1_746_093_600_000),
        };
        let body = Job::Reconcile(range.clone()).body();
        assert_eq!(
            body,
            r#"{"reconcile":{"after":"c/2025-05-01T12:00:00","since_ms":1746093600000,"through":"c/2025-05-01T13:00:00"}}"#
        );
        assert_eq!(
            Job::parse(body.as_bytes()),
            Ok(Job::Reconcile(range.clone()))
        );
        assert!(range.holds("c/2025-05-01T12:00:00.000000+0000.json"));
        assert!(range.holds("c/2025-05-01T13:00:00"));
        assert!(!range.holds("c/2025-05-01T12:00:00"));
        assert!(!range.holds("c/2025-05-01T13:00:00.000000+0000.json"));
        let open = NameRange {
            after: None,
            through: None,
            since_ms: None,
        };
        assert_eq!(Job::Reconcile(open.clone()).body(), r#"{"reconcile":{}}"#);
        assert!(open.holds("anything"));
        assert!(Job::parse(br#"{"session_guid": "a/b"}"#).is_err());
        assert!(Job::parse(br#"{"reconcile": 5}"#).is_err());
    }
}
