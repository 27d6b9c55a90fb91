//! Finalize over a queue (`RRSTITCH_FINALIZE_MODE=queue`): a dispatching sweep publishes one
//! message per idle session, and workers finalize one session per message.
//!
//! An inline sweep stitches every idle session in one process, so its throughput is one
//! instance's and a large backlog outlasts its budget. Dispatching only runs the index's idle
//! query and publishes, which takes seconds whatever the backlog; the platform then spreads
//! the messages over as many worker instances as it starts (Pub/Sub push to Cloud Run, an SQS
//! event source mapping on Lambda).
//!
//! Workers need no coordination: each message goes through the same claim a sweep makes
//! ([`ClaimMode::Idle`]), so the claim decides. A duplicate or late message, or one for a
//! session another worker holds, already finalized, or never indexed, is acknowledged with
//! nothing done; only a transient failure (storage or index unreachable) asks the platform to
//! deliver the message again. A session whose worker died is not lost either: its lease
//! expires and the next dispatch finds it idle again.

use futures::stream::{self, StreamExt};
use serde::Serialize;

use super::finalize::FinalizeReport;
use super::reconcile::RangeDone;
use super::{Result, Service, ServiceError};
use crate::engine::SessionGuid;
use crate::index::ClaimMode;
use crate::queue::{self, FinalizeQueue, Job, NameRange};
use crate::time::deadline;

/// What one dispatch did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DispatchSummary {
    /// Idle sessions the index offered.
    pub considered: usize,
    /// Messages the queue took: one per session.
    pub published: usize,
    /// Sessions whose message was not published; the next dispatch offers them again.
    pub failed: Vec<DispatchFailure>,
    /// Sessions not published because the sweep budget ran out.
    pub deferred: usize,
    /// Wall time of the dispatch.
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct DispatchFailure {
    pub session_guid: String,
    pub error: String,
    pub transient: bool,
}

/// What a worker did with one finalize message.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Delivery {
    /// The session was claimed, stitched and completed.
    Finalized(FinalizeReport),
    /// Nothing to do for this session now; the claim said so.
    Skipped { session_guid: String, reason: Skip },
    /// The message names no session: it never will, so it is acknowledged.
    Refused { error: String },
    /// Finalizing failed. Transient: the platform should deliver the message again.
    Failed {
        session_guid: String,
        error: String,
        transient: bool,
    },
    /// A reconcile range was checked (its rest, if the budget cut it, queued anew).
    Reconciled(Box<RangeDone>),
    /// Reconciling a range failed. Transient: deliver it again.
    RangeFailed {
        range: NameRange,
        error: String,
        transient: bool,
    },
}

/// Why a worker acknowledged a message without finalizing its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skip {
    /// Not idle any more (a chunk arrived since the dispatch), already finalized, or held by
    /// another worker's live lease: a duplicate or late message lands here.
    NotEligible,
    /// The index has no such session.
    UnknownSession,
    /// Another finalizer took the session over mid-stitch; it writes the result.
    Superseded,
    /// The session was erased mid-stitch; what this worker wrote of it was deleted.
    Erased,
}

impl Delivery {
    /// The kind of job the message held (`unknown` when it held none), for the metric.
    pub fn job(&self) -> &'static str {
        match self {
            Delivery::Finalized(_) | Delivery::Skipped { .. } | Delivery::Failed { .. } => {
                "finalize"
            }
            Delivery::Reconciled(_) | Delivery::RangeFailed { .. } => "reconcile",
            Delivery::Refused { .. } => "unknown",
        }
    }

    /// What the worker answered, for the metric: `done`, `skipped`, `refused` (acknowledged,
    /// never to be done), `retried` (delivered again) or `failed` (acknowledged; recorded).
    pub fn outcome(&self) -> &'static str {
        match self {
            Delivery::Finalized(_) | Delivery::Reconciled(_) => "done",
            Delivery::Skipped { .. } => "skipped",
            Delivery::Refused { .. } => "refused",
            _ if self.redeliver() => "retried",
            _ => "failed",
        }
    }

    /// Whether the platform should deliver the message again (a 5xx to a push, a batch item
    /// failure on SQS). Only a transient failure: anything else would fail, or do nothing,
    /// the same way every time, and be retried into the dead-letter queue.
    pub fn redeliver(&self) -> bool {
        matches!(
            self,
            Delivery::Failed {
                transient: true,
                ..
            } | Delivery::RangeFailed {
                transient: true,
                ..
            }
        )
    }
}

impl Service {
    /// Publishes one finalize message per session idle for `options.idle` (up to
    /// `options.sweep_limit`), in batches of the queue's size, [`queue::PUBLISH_PARALLELISM`] at a
    /// time, within `options.sweep_budget`.
    ///
    /// A session whose message the queue refused stays idle, so the next dispatch offers it
    /// again; one published twice (a worker not done before the next tick) is finalized
    /// once: the second message finds it claimed or finalized.
    pub async fn dispatch(&self, queue: &dyn FinalizeQueue) -> Result<DispatchSummary> {
        let started = tokio::time::Instant::now();
        let deadline = deadline(started, self.options.sweep_budget);
        let now = self.now();
        let guids = tokio::time::timeout_at(
            deadline,
            self.index
                .idle_sessions(now.minus(self.options.idle), now, self.options.sweep_limit),
        )
        .await
        .map_err(|_| self.dispatch_budget_spent())??;
        let mut summary = DispatchSummary {
            considered: guids.len(),
            ..DispatchSummary::default()
        };
        let jobs = guids.into_iter().map(Job::Finalize).collect();
        let done = queue::publish_all(queue, jobs, Some(deadline)).await;
        summary.published = done.published;
        summary.deferred = done.unanswered;
        summary
            .failed
            .extend(done.refused.iter().map(|(job, e)| failure(job, e)));
        summary.seconds = started.elapsed().as_secs_f64();
        crate::metrics::sweep(
            "queue",
            started.elapsed(),
            summary.published,
            summary.deferred,
        );
        self.record_sweep(
            "queue",
            started.elapsed(),
            summary.published,
            summary.deferred,
            summary.failed.len(),
        )
        .await;
        tracing::info!(
            considered = summary.considered,
            published = summary.published,
            failed = summary.failed.len(),
            deferred = summary.deferred,
            seconds = summary.seconds,
            "dispatch done"
        );
        Ok(summary)
    }

    fn dispatch_budget_spent(&self) -> ServiceError {
        ServiceError::Index(crate::index::IndexError::Transient {
            op: "idle_sessions",
            source: format!(
                "no answer within the sweep budget ({:?})",
                self.options.sweep_budget
            )
            .into(),
        })
    }

    /// A worker's handling of one message body: a finalize message (`{"session_guid": "…"}`)
    /// claims the session as a sweep would, stitches, completes; a reconcile range is
    /// reconciled, its rest (when the budget cuts it) published back to `queue`.
    pub async fn finalize_queued(
        &self,
        body: &[u8],
        queue: Option<&dyn FinalizeQueue>,
    ) -> Delivery {
        let delivery = self.handle_job(body, queue).await;
        crate::metrics::queue_message(delivery.job(), delivery.outcome());
        delivery
    }

    async fn handle_job(&self, body: &[u8], queue: Option<&dyn FinalizeQueue>) -> Delivery {
        match Job::parse(body) {
            Ok(Job::Finalize(guid)) => self.finalize_one_queued(guid).await,
            Ok(Job::Reconcile(range)) => match self.reconcile_queued(range.clone(), queue).await {
                Ok(done) => Delivery::Reconciled(Box::new(done)),
                Err(e) => {
                    let transient = e.is_transient();
                    tracing::error!(after = range.after.as_deref().unwrap_or(""), error = %e, transient, "queued reconcile failed");
                    Delivery::RangeFailed {
                        range,
                        error: e.to_string(),
                        transient,
                    }
                }
            },
            Err(error) => {
                tracing::error!(%error, "queue message refused; acknowledged");
                Delivery::Refused { error }
            }
        }
    }

    async fn finalize_one_queued(&self, guid: SessionGuid) -> Delivery {
        let idle_before = self.now().minus(self.options.idle);
        let skipped = |reason| Delivery::Skipped {
            session_guid: guid.to_string(),
            reason,
        };
        let delivery = match self
            .claim_and_finalize(&guid, ClaimMode::Idle { idle_before })
            .await
        {
            Ok(Some(report)) => Delivery::Finalized(report),
            Ok(None) => skipped(Skip::NotEligible),
            Err(ServiceError::UnknownSession(_)) => skipped(Skip::UnknownSession),
            Err(ServiceError::Superseded(_)) => skipped(Skip::Superseded),
            Err(ServiceError::Erased(_)) => skipped(Skip::Erased),
            Err(e) => Delivery::Failed {
                session_guid: guid.to_string(),
                transient: e.is_transient(),
                error: e.to_string(),
            },
        };
        match &delivery {
            Delivery::Failed {
                error, transient, ..
            } => {
                tracing::error!(session_guid = %guid, %error, transient, redeliver = delivery.redeliver(), "queued finalize failed")
            }
            Delivery::Skipped { reason, .. } => {
                tracing::info!(session_guid = %guid, ?reason, "queued finalize skipped; acknowledged")
            }
            _ => {}
        }
        delivery
    }

    /// Handles a batch of messages (an SQS event), `options.session_parallelism` at a time;
    /// each answer keeps its message's id.
    pub async fn finalize_queued_batch<I: Send>(
        &self,
        messages: Vec<(I, Vec<u8>)>,
        queue: Option<&dyn FinalizeQueue>,
    ) -> Vec<(I, Delivery)> {
        stream::iter(messages)
            .map(|(id, body)| async move {
                let delivery = self.finalize_queued(&body, queue).await;
                (id, delivery)
            })
            .buffer_unordered(self.options.session_parallelism.max(1))
            .collect()
            .await
    }
}

fn failure(job: &Job, e: &queue::QueueError) -> DispatchFailure {
    DispatchFailure {
        session_guid: match job {
            Job::Finalize(guid) => guid.to_string(),
            other => other.body(),
        },
        error: e.to_string(),
        transient: e.is_transient(),
    }
}
