//! The finalize queue as an SQS queue, sent to with `SendMessageBatch` (ten messages a call,
//! SQS's limit). The SDK configuration is the one S3 and DynamoDB use ([`crate::aws`]):
//! bounded retries and timeouts, `AWS_ENDPOINT_URL` for moto.

use async_trait::async_trait;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_sdk_sqs::Client;

use super::{FinalizeQueue, Job, QueueError, Refused};
use crate::aws::{failure, Failure};

/// SQS takes at most ten entries per `SendMessageBatch`.
const BATCH: usize = 10;

#[derive(Clone)]
pub struct SqsQueue {
    url: String,
    client: Client,
}

impl std::fmt::Debug for SqsQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsQueue").field("url", &self.url).finish()
    }
}

impl SqsQueue {
    /// The queue at `url`, with the SDK's default chain (credentials, region, endpoint).
    pub async fn connect(url: &str) -> Self {
        let shared = crate::aws::sdk_config().await;
        Self::with_client(url, Client::new(&shared))
    }

    /// The queue at `url` on an emulator at `endpoint`, with test credentials.
    pub async fn on_emulator(url: &str, endpoint: &str) -> Self {
        let shared = crate::aws::emulator_config(endpoint).await;
        Self::with_client(url, Client::new(&shared))
    }

    fn with_client(url: &str, client: Client) -> Self {
        SqsQueue {
            url: url.to_owned(),
            client,
        }
    }
}

#[async_trait]
impl FinalizeQueue for SqsQueue {
    fn batch_limit(&self) -> usize {
        BATCH
    }

    /// SQS answers per entry: an entry it refused is reported with its job, the rest are
    /// published. Entry ids are the positions in `batch` (ids must be unique within a call and
    /// at most 80 characters; guids may be 128).
    async fn publish(&self, batch: &[Job]) -> Result<Vec<Refused>, QueueError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let entries = batch
            .iter()
            .enumerate()
            .map(|(i, job)| {
                SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(job.body())
                    .build()
                    .expect("id and body are set")
            })
            .collect();
        let out = self
            .client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .send()
            .await
            .map_err(|e| {
                let source = format!(
                    "{}: {}",
                    self.url,
                    aws_sdk_sqs::error::DisplayErrorContext(&e)
                )
                .into();
                match failure(&e) {
                    Failure::Transient => QueueError::Transient { op: "send", source },
                    _ => QueueError::Permanent { op: "send", source },
                }
            })?;
        let mut refused = Vec::new();
        for entry in out.failed() {
            let Some(job) = entry.id().parse::<usize>().ok().and_then(|i| batch.get(i)) else {
                continue;
            };
            let source =
                format!("{}: {}", entry.code(), entry.message().unwrap_or("refused")).into();
            // A sender fault (too large, malformed) will fail again; anything else may not.
            let error = if entry.sender_fault() {
                QueueError::Permanent { op: "send", source }
            } else {
                QueueError::Transient { op: "send", source }
            };
            refused.push((job.clone(), error));
        }
        Ok(refused)
    }
}
