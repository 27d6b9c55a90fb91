//! The finalize queue port: where a dispatching sweep puts one message per idle session
//! (`RRSTITCH_FINALIZE_MODE=queue`), for finalize workers to take one session each.
//!
//! The queue carries only *which* session to look at, `{"session_guid": "…"}`: the index's
//! claim decides whether anything is done, so a message delivered twice, late, or for a
//! session another worker already finalized changes nothing (see [`crate::service::dispatch`]).
//! That is why publishing needs no deduplication and a redelivery is always safe.
//!
//! Adapters: Pub/Sub over its REST API ([`pubsub`], honouring `PUBSUB_EMULATOR_HOST`) and SQS
//! through the AWS SDK ([`sqs`], honouring `AWS_ENDPOINT_URL`). Delivery to workers is the
//! platform's (a push subscription, a Lambda event source mapping), not this module's.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
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
}

/// A session whose message one publish call did not take, and why.
pub type Refused = (SessionGuid, QueueError);

#[async_trait]
pub trait FinalizeQueue: Send + Sync + std::fmt::Debug {
    /// Most messages one [`FinalizeQueue::publish`] takes (Pub/Sub: 1,000; SQS: 10).
    fn batch_limit(&self) -> usize;

    /// Publishes one message per session in `batch` (at most [`Self::batch_limit`]).
    /// `Ok` lists the sessions the queue refused one by one (SQS answers per entry); `Err`
    /// means the call as a whole failed and none of the batch can be taken as published.
    async fn publish(&self, batch: &[SessionGuid]) -> Result<Vec<Refused>, QueueError>;
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
}
