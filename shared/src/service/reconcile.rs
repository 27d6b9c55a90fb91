//! Reconcile: the repair path for bucket events that never arrived.
//!
//! Notifications are at-least-once but not exactly reliable: S3 drops an asynchronous Lambda
//! event after its retries (unless a dead-letter queue catches it), Pub/Sub after its delivery
//! attempts, and two writes of one key can yield one notification. Reconcile lists the chunk
//! bucket and ingests every chunk object the index does not know, with the same validation and
//! the same idempotency as the event path, so running it again (or racing the event path)
//! changes nothing. Sessions it recovers chunks for are re-opened and the next sweep stitches
//! them.
//!
//! Cost: one listing, a ranged read of each chunk's first bytes (SDKs write `session_guid`
//! first, which says whose chunk it is), one index read per session, and a full ingest only
//! for what is missing. `since` bounds it to recent uploads by the time in their names, which
//! is what a daily run needs.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tokio::sync::Mutex;

use super::backfill::{Failure, HEAD_BYTES};
use super::{IngestOutcome, ObjectRef, Result, Service, ServiceError};
use crate::engine::{self, ChunkName, NameClass, SessionGuid};
use crate::storage::ObjectMeta;
use crate::time::deadline;

/// What one reconcile pass found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReconcileSummary {
    /// Objects under the chunk prefix.
    pub objects_listed: u64,
    /// Chunk candidates uploaded within `since` (all of them without it).
    pub candidates: u64,
    /// Already in the index (as chunks, or as refused objects seen again).
    pub known: u64,
    /// Chunks the index did not know, now recorded: these were lost events.
    pub recovered: u64,
    /// Sessions those chunks re-opened or created.
    pub sessions_recovered: u64,
    /// Objects refused (and recorded as such).
    pub rejected: u64,
    /// Objects gone between the listing and the read.
    pub vanished: u64,
    /// Objects that could not be checked; run again to retry.
    pub failed: Vec<Failure>,
    /// Candidates left unchecked because the budget ran out.
    pub deferred: u64,
    pub seconds: f64,
}

type Known = Arc<HashSet<(String, String)>>;

enum Checked {
    Known,
    Ingested(IngestOutcome),
    Failed(String, ServiceError),
    Deferred,
}

impl Service {
    /// Ingests every chunk object of the configured chunk bucket that the index does not
    /// know, among those uploaded within `since` (by the time in their names).
    pub async fn reconcile(&self, since: Option<Duration>) -> Result<ReconcileSummary> {
        let started = tokio::time::Instant::now();
        let url = self.options.chunk_bucket.clone().ok_or_else(|| {
            ServiceError::InvalidRequest(
                "reconcile needs the chunk bucket: set RRSTITCH_CHUNKS".into(),
            )
        })?;
        let store = self.buckets.get(&url).await?;
        let listed = store.list(&self.options.chunk_prefix).await?;
        let oldest_ns = since.map(|d| i128::from(self.now().minus(d).0) * 1_000_000);
        let mut summary = ReconcileSummary {
            objects_listed: listed.len() as u64,
            ..ReconcileSummary::default()
        };
        let candidates: Vec<(ChunkName, ObjectMeta)> = listed
            .into_iter()
            .filter_map(
                |meta| match ChunkName::classify(&meta.name, &self.options.chunk_prefix) {
                    NameClass::Chunk(name) => Some((name, meta)),
                    // A badly named object is never a chunk; its event, if it came, recorded
                    // the refusal, and the object stays in the bucket either way.
                    NameClass::Rejected(_) | NameClass::Ignored => None,
                },
            )
            .filter(|(name, _)| oldest_ns.is_none_or(|oldest| name.instant_ns() >= oldest))
            .collect();
        summary.candidates = candidates.len() as u64;

        let known: Mutex<HashMap<SessionGuid, Known>> = Mutex::new(HashMap::new());
        let last_start = deadline(started, self.options.sweep_budget.mul_f64(0.9));
        let mut checks = stream::iter(candidates)
            .map(|(name, meta)| {
                let (store, url, known) = (&store, &url, &known);
                async move {
                    if tokio::time::Instant::now() >= last_start {
                        return Checked::Deferred;
                    }
                    let object = ObjectRef {
                        bucket: url.clone(),
                        name: meta.name.clone(),
                        generation: meta.generation.clone(),
                    };
                    if !name.is_gzip() {
                        let head = match store.get_head(&meta.name, HEAD_BYTES).await {
                            Ok(head) => head,
                            Err(e) => return Checked::Failed(meta.name, e.into()),
                        };
                        if let Some(guid) = engine::peek_guid(&head) {
                            match self.known_chunks(known, &guid).await {
                                Ok(set) => {
                                    let key = (
                                        meta.name.clone(),
                                        meta.generation.clone().unwrap_or_default(),
                                    );
                                    if set.contains(&key) {
                                        return Checked::Known;
                                    }
                                }
                                Err(e) => return Checked::Failed(meta.name, e),
                            }
                        }
                    }
                    match self.ingest(&object).await {
                        Ok(outcome) => Checked::Ingested(outcome),
                        Err(e) => Checked::Failed(meta.name, e),
                    }
                }
            })
            .buffer_unordered(self.options.read_parallelism.max(1));
        let mut sessions = HashSet::new();
        while let Some(checked) = checks.next().await {
            match checked {
                Checked::Known | Checked::Ingested(IngestOutcome::AlreadyKnown { .. }) => {
                    summary.known += 1
                }
                Checked::Ingested(IngestOutcome::Recorded {
                    name, session_guid, ..
                }) => {
                    tracing::warn!(object = %name, session_guid, "reconcile recovered a chunk no event had recorded");
                    summary.recovered += 1;
                    sessions.insert(session_guid);
                }
                Checked::Ingested(
                    IngestOutcome::Rejected { .. } | IngestOutcome::DeletedSession { .. },
                ) => summary.rejected += 1,
                Checked::Ingested(IngestOutcome::Vanished { .. }) => summary.vanished += 1,
                Checked::Ingested(
                    IngestOutcome::Ignored { .. } | IngestOutcome::NotChunkBucket { .. },
                ) => {}
                Checked::Failed(name, e) => {
                    tracing::error!(object = %name, error = %e, "reconcile could not check an object");
                    summary.failed.push(Failure {
                        name,
                        error: e.to_string(),
                    });
                }
                Checked::Deferred => summary.deferred += 1,
            }
        }
        summary.sessions_recovered = sessions.len() as u64;
        summary.seconds = started.elapsed().as_secs_f64();
        tracing::info!(
            listed = summary.objects_listed,
            candidates = summary.candidates,
            known = summary.known,
            recovered = summary.recovered,
            rejected = summary.rejected,
            failed = summary.failed.len(),
            deferred = summary.deferred,
            "reconcile done"
        );
        Ok(summary)
    }

    /// The (name, generation) pairs the index holds for a session, read once per pass.
    async fn known_chunks(
        &self,
        cache: &Mutex<HashMap<SessionGuid, Known>>,
        guid: &SessionGuid,
    ) -> Result<Known> {
        if let Some(set) = cache.lock().await.get(guid) {
            return Ok(set.clone());
        }
        let set: Known = Arc::new(
            self.index
                .chunks(guid)
                .await?
                .into_iter()
                .map(|c| (c.name, c.generation))
                .collect(),
        );
        cache.lock().await.insert(guid.clone(), set.clone());
        Ok(set)
    }
}
