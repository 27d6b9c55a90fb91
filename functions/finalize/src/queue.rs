//! Queue mode's two edges (`RRSTITCH_FINALIZE_MODE=queue`), mapped to what each platform
//! understands:
//! - the dispatcher: the scheduled sweep, publishing one message per idle session (and the
//!   scheduled reconcile, publishing one message per range of chunk names);
//! - the workers: a Pub/Sub push to `POST /pubsub/finalize` (a 2xx acknowledges, anything
//!   else has Pub/Sub deliver again, then dead-letter), and an SQS batch on Lambda (the answer
//!   names the messages to deliver again in `batchItemFailures`; the event source mapping
//!   deletes the rest).
//!
//! Only a transient failure asks for another delivery: see `rrstitch::service::dispatch`.

use aws_lambda_events::sqs::SqsBatchResponse;
use rrstitch::queue::FinalizeQueue;
use rrstitch::service::{Delivery, Service};
use rrstitch_edge::events::{self, EventError, SqsBatch};
use serde_json::{json, Value};

/// `(status, JSON body)` of a dispatch: 200 when every idle session's message was published,
/// 503 when a retry could publish the rest (the scheduler's tick is that retry), 500 when not.
pub async fn run_dispatch(svc: &Service, queue: &dyn FinalizeQueue) -> (u16, Value) {
    match svc.dispatch(queue).await {
        Ok(summary) if summary.failed.is_empty() => (200, json!(summary)),
        Ok(summary) if summary.failed.iter().any(|f| f.transient) => (503, json!(summary)),
        Ok(summary) => (500, json!(summary)),
        Err(e) => crate::error(&e),
    }
}

/// `(status, JSON body)` of one Pub/Sub push delivery. `queue` takes the rest of a
/// reconcile range the budget cut.
pub async fn run_push(
    svc: &Service,
    queue: Option<&dyn FinalizeQueue>,
    body: &[u8],
) -> (u16, Value) {
    let message = match events::pubsub_push_data(body) {
        Ok(message) => message,
        // Not from Pub/Sub at all: say so to whoever sent it.
        Err(e @ EventError::NotPubSub(_)) => return (400, json!({"error": e.to_string()})),
        // From Pub/Sub but undecodable: redelivery cannot change it.
        Err(e) => {
            tracing::error!(error = %e, "push cannot be a finalize message; acknowledged");
            return (200, json!({"outcome": "refused", "error": e.to_string()}));
        }
    };
    let delivery = svc.finalize_queued(&message, queue).await;
    let status = if delivery.redeliver() { 503 } else { 200 };
    (status, json!(delivery))
}

/// The answer to an SQS batch: `batchItemFailures` names the messages to deliver again (the
/// event source mapping has `ReportBatchItemFailures`; it deletes the rest). Nothing else is
/// in the answer: Lambda reads it as a whole, and what was done with each message is in the
/// logs.
pub async fn run_sqs(
    svc: &Service,
    queue: Option<&dyn FinalizeQueue>,
    batch: SqsBatch,
) -> SqsBatchResponse {
    let mut answer = SqsBatchResponse::default();
    let messages = match events::sqs_messages(batch) {
        Ok(messages) => messages,
        Err(e) => {
            // A record without an id cannot be reported one by one; failing the invocation
            // would redeliver the whole batch until it dead-letters. Acknowledge it.
            tracing::error!(error = %e, "SQS batch cannot be read; acknowledged");
            return answer;
        }
    };
    let deliveries = svc
        .finalize_queued_batch(
            messages
                .into_iter()
                .map(|m| (m.message_id, m.body.into_bytes()))
                .collect(),
            queue,
        )
        .await;
    answer.set_failures(
        deliveries
            .iter()
            .filter(|(_, d)| d.redeliver())
            .map(|(id, _)| id.as_str()),
    );
    let finalized = deliveries
        .iter()
        .filter(|(_, d)| matches!(d, Delivery::Finalized(_)))
        .count();
    tracing::info!(
        messages = deliveries.len(),
        finalized,
        redeliver = answer.batch_item_failures.len(),
        "SQS batch done"
    );
    answer
}
