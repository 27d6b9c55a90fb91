//! Finalize: claim a session, re-stitch every chunk the index lists, write the result,
//! complete the claim. A sweep does this for every idle session; a manual finalize for one
//! session now. See [`crate::index`] for the claim/lease protocol this follows.

use std::future::Future;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tracing::Instrument;

use super::assemble::{assemble, Fence, Source};
use super::segments::manifest_name;
use super::{Result, Service, ServiceError};
use crate::engine::reject::OVER_QUOTA;
use crate::engine::{ChunkName, SessionGuid};
use crate::index::{Claim, ClaimMode, ClaimOutcome, Completion};
use crate::metrics::{self, SessionOutcome};
use crate::storage::{Precondition, StorageError};
use crate::time::{deadline, Millis};

/// What finalizing one session did.
#[derive(Debug, Clone, Serialize)]
pub struct FinalizeReport {
    pub session_guid: String,
    pub result_object: String,
    pub chunks: u64,
    pub duplicate_chunks: u64,
    pub missing_chunks: Vec<String>,
    pub events: u64,
    pub bytes: u64,
    pub replayable: bool,
    pub warnings: usize,
    /// `finalized`, or `reopened` (a chunk arrived mid-stitch: the next sweep stitches again).
    pub completion: &'static str,
    /// The upload time of the last chunk stitched (from its name), for the freshness metric.
    #[serde(skip)]
    pub last_chunk_at: Option<Millis>,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepSummary {
    /// Idle sessions the index offered.
    pub considered: usize,
    pub finalized: Vec<FinalizeReport>,
    /// Sessions another worker held, or that became busy since the query.
    pub skipped: usize,
    /// Sessions another finalizer took over mid-stitch (our lease ran out): it writes them.
    pub superseded: usize,
    /// Sessions erased while this sweep stitched them: what it wrote of them was deleted.
    /// An outcome, not a failure: there is nothing left to retry.
    pub erased: usize,
    /// Sessions that failed; their claims were released for the next sweep.
    pub failed: Vec<SweepFailure>,
    /// Idle sessions left for the next sweep: the budget ran out or the index kept failing.
    pub deferred: usize,
    /// Why the sweep stopped before it had tried every idle session.
    pub stopped: Option<Stop>,
    /// Wall time of the sweep.
    pub seconds: f64,
}

/// Why a sweep left sessions for the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    /// `RRSTITCH_SWEEP_BUDGET_SECS` was (nearly) spent.
    Budget,
    /// [`BREAKER`] sessions in a row failed on the index.
    IndexFailing,
}

/// Sessions in a row failing on the index after which a sweep stops claiming: each one
/// costs a full RPC timeout against a hanging index, and the next sweep will try again.
pub const BREAKER: usize = 3;

enum Run {
    Done(Result<Option<FinalizeReport>>),
    Deferred(Stop),
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepFailure {
    pub session_guid: String,
    pub error: String,
    pub transient: bool,
}

impl Service {
    /// Finalizes every session idle for `options.idle`, up to `options.sweep_limit`, within
    /// `options.sweep_budget`.
    ///
    /// Two things stop it taking more sessions: the budget (past four fifths of it no new
    /// session is claimed, and at its end sessions still in flight are abandoned: their
    /// leases expire and a later sweep takes them over, their writes fenced), and a circuit
    /// breaker (after [`BREAKER`] sessions in a row fail on the index, the index is taken to
    /// be down). Either way the summary says what was done and what was left.
    pub async fn sweep(&self) -> Result<SweepSummary> {
        let started = tokio::time::Instant::now();
        let budget = self.options.sweep_budget;
        let now = self.now();
        let idle_before = now.minus(self.options.idle);
        let guids = tokio::time::timeout(
            budget,
            self.index
                .idle_sessions(idle_before, now, self.options.sweep_limit),
        )
        .await
        .map_err(|_| self.budget_spent("idle_sessions"))??;
        let mut summary = SweepSummary {
            considered: guids.len(),
            ..SweepSummary::default()
        };
        let mode = ClaimMode::Idle { idle_before };
        let last_claim = deadline(started, budget.mul_f64(0.8));
        let index_failures = std::sync::atomic::AtomicUsize::new(0);
        let tripped = || index_failures.load(std::sync::atomic::Ordering::SeqCst) >= BREAKER;
        let mut runs = stream::iter(guids)
            .map(|guid| async {
                if tokio::time::Instant::now() >= last_claim {
                    return (guid, Run::Deferred(Stop::Budget));
                }
                if tripped() {
                    return (guid, Run::Deferred(Stop::IndexFailing));
                }
                let outcome = self.claim_and_finalize(&guid, mode).await;
                let index_down =
                    matches!(&outcome, Err(ServiceError::Index(e)) if e.is_transient());
                if index_down {
                    index_failures.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                } else if outcome.is_ok() {
                    index_failures.store(0, std::sync::atomic::Ordering::SeqCst);
                }
                (guid, Run::Done(outcome))
            })
            .buffer_unordered(self.options.session_parallelism.max(1));
        let deadline = deadline(started, budget);
        loop {
            let next = match tokio::time::timeout_at(deadline, runs.next()).await {
                Ok(Some(next)) => next,
                Ok(None) => break,
                Err(_) => {
                    // What is still in flight is abandoned, as a crash would: its leases
                    // expire, and the fence keeps its writes from ever replacing newer ones.
                    summary.deferred = summary.considered
                        - summary.finalized.len()
                        - summary.skipped
                        - summary.superseded
                        - summary.erased
                        - summary.failed.len();
                    summary.stopped = Some(Stop::Budget);
                    break;
                }
            };
            match next {
                (_, Run::Deferred(why)) => {
                    summary.deferred += 1;
                    summary.stopped.get_or_insert(why);
                }
                (_, Run::Done(Ok(Some(report)))) => summary.finalized.push(report),
                (_, Run::Done(Ok(None))) => summary.skipped += 1,
                (_, Run::Done(Err(ServiceError::Superseded(_)))) => summary.superseded += 1,
                (_, Run::Done(Err(ServiceError::Erased(_)))) => summary.erased += 1,
                (guid, Run::Done(Err(e))) => {
                    tracing::error!(session_guid = %guid, error = %e, "finalize failed; will retry on a later sweep");
                    summary.failed.push(SweepFailure {
                        session_guid: guid.to_string(),
                        transient: e.is_transient(),
                        error: e.to_string(),
                    });
                }
            }
        }
        summary.seconds = started.elapsed().as_secs_f64();
        metrics::sweep(
            "inline",
            started.elapsed(),
            summary.finalized.len(),
            summary.deferred,
        );
        self.record_sweep(
            "inline",
            started.elapsed(),
            summary.finalized.len(),
            summary.deferred,
            summary.failed.len(),
        )
        .await;
        tracing::info!(
            considered = summary.considered,
            finalized = summary.finalized.len(),
            skipped = summary.skipped,
            superseded = summary.superseded,
            erased = summary.erased,
            failed = summary.failed.len(),
            deferred = summary.deferred,
            stopped = ?summary.stopped,
            seconds = summary.seconds,
            "sweep done"
        );
        Ok(summary)
    }

    fn budget_spent(&self, op: &'static str) -> ServiceError {
        ServiceError::Index(crate::index::IndexError::Transient {
            op,
            source: format!(
                "no answer within the sweep budget ({:?})",
                self.options.sweep_budget
            )
            .into(),
        })
    }

    /// Finalizes one session now, idle or not.
    pub async fn finalize(&self, guid: &str) -> Result<FinalizeReport> {
        let guid =
            SessionGuid::parse(guid).map_err(|e| ServiceError::InvalidRequest(e.to_string()))?;
        match self.claim_and_finalize(&guid, ClaimMode::Force).await? {
            Some(report) => Ok(report),
            None => unreachable!("a forced claim is never merely ineligible"),
        }
    }

    /// `Ok(None)` when a sweep should just skip the session. A queued finalize
    /// ([`super::dispatch`]) takes the same path, one session per message.
    pub(super) async fn claim_and_finalize(
        &self,
        guid: &SessionGuid,
        mode: ClaimMode,
    ) -> Result<Option<FinalizeReport>> {
        let started = std::time::Instant::now();
        let now = self.now();
        let claim = match self
            .index
            .claim(guid, mode, now, self.options.lease)
            .await?
        {
            ClaimOutcome::Claimed(claim) => claim,
            ClaimOutcome::NotFound => return Err(ServiceError::UnknownSession(guid.to_string())),
            ClaimOutcome::Busy { lease_until } if mode == ClaimMode::Force => {
                return Err(ServiceError::Busy {
                    guid: guid.to_string(),
                    lease_until,
                })
            }
            ClaimOutcome::Busy { .. } | ClaimOutcome::NotEligible => {
                metrics::session(SessionOutcome::Unchanged, None);
                return Ok(None);
            }
        };
        let outcome = self.finalize_claimed(&claim).await;
        let outcome = match outcome {
            Err(e) => Err(self.unless_erased(guid, e).await),
            ok => ok,
        };
        record_metric(&outcome, started.elapsed(), self.now());
        match outcome {
            Ok(report) => Ok(Some(report)),
            // Nothing of ours to release: the session is another claim's now, or erased.
            Err(e @ (ServiceError::Superseded(_) | ServiceError::Erased(_))) => Err(e),
            // An index that just failed would most likely fail the release too (another full
            // RPC timeout when it hangs); the lease expires by itself.
            Err(e @ ServiceError::Index(_)) => Err(e),
            Err(e) => {
                if let Err(release) = self.index.release(&claim, self.now()).await {
                    // The lease will expire on its own; the next sweep takes over then.
                    tracing::warn!(session_guid = %guid, error = %release, "could not release claim");
                }
                Err(e)
            }
        }
    }

    /// A finalize that failed for any reason may have lost to an erasure, and may have
    /// written its result, segments or manifest after the erasure deleted the session's:
    /// whatever the failure (a lost claim, a listing or a write that failed mid-publish),
    /// what it wrote goes when the session is erased, and the failure is then
    /// [`ServiceError::Erased`], an outcome rather than something to retry. When the index
    /// cannot say, the original failure stands (the session stays claimable, and an erasure
    /// run after this finalize removes what it wrote).
    async fn unless_erased(&self, guid: &SessionGuid, failure: ServiceError) -> ServiceError {
        let object = self.options.result_name(guid);
        match self.undo_result_of_erased(guid, &object).await {
            Ok(true) => ServiceError::Erased(guid.to_string()),
            Ok(false) => failure,
            Err(e) => {
                tracing::warn!(session_guid = %guid, error = %e, failed = %failure, "could not check whether a failed finalize lost to an erasure");
                failure
            }
        }
    }

    async fn finalize_claimed(&self, claim: &Claim) -> Result<FinalizeReport> {
        let object = self.options.result_name(&claim.guid);
        for attempt in 1..=FENCE_ATTEMPTS {
            match self.stitch_fenced(claim, &object).await? {
                Fenced::Written(report) => return Ok(*report),
                Fenced::Superseded => {
                    tracing::warn!(
                        session_guid = %claim.guid,
                        "another finalizer took this session over; it writes the result, this stitch is dropped"
                    );
                    return Err(ServiceError::Superseded(claim.guid.to_string()));
                }
                Fenced::ResultChanged => tracing::info!(
                    session_guid = %claim.guid,
                    attempt,
                    "the result object changed while stitching; stitching again on the new one"
                ),
            }
        }
        Err(ServiceError::Storage(StorageError::Transient {
            op: "put",
            name: object,
            source: "the result object kept changing while this finalizer stitched".into(),
        }))
    }

    /// What the result must say about chunks its session was refused over its quota: a
    /// result that silently ends where the quota cut the recording would read as a short
    /// session. Summed from the session's `over_quota` reject records (each holds the chunk's
    /// size); asked only while a quota is configured, so a deployment without one pays no
    /// query per finalize (a quota turned off later stops the warning, not the refusals).
    async fn quota_warnings(&self, guid: &SessionGuid) -> Result<Vec<String>> {
        if self.options.session_max_bytes.is_none() {
            return Ok(Vec::new());
        }
        let refused: Vec<_> = self
            .index
            .rejected_of(guid)
            .await?
            .into_iter()
            .filter(|r| r.kind == OVER_QUOTA)
            .collect();
        if refused.is_empty() {
            return Ok(Vec::new());
        }
        let bytes: u64 = refused.iter().map(|r| r.size).sum();
        tracing::warn!(session_guid = %guid, chunks = refused.len(), bytes, "session has chunks refused over its quota");
        Ok(vec![format!(
            "{} chunk(s), {bytes} bytes, refused over the session's quota (over_quota): \
             kept in the bucket, not in this result",
            refused.len()
        )])
    }

    /// One fenced stitch: the result's generation, then the claim's renewal, then a write on
    /// that generation (see the fencing section of [`crate::index`]).
    async fn stitch_fenced(&self, claim: &Claim, object: &str) -> Result<Fenced> {
        let guid = &claim.guid;
        let records = self.index.chunks(guid).await?;
        let mut sources = Vec::with_capacity(records.len());
        for record in &records {
            let Some(name) = ChunkName::parse(&record.name) else {
                tracing::warn!(chunk = %record.name, "indexed chunk has an unparsable name");
                continue;
            };
            sources.push(Source {
                name,
                place: record.bucket.clone(),
                store: self.buckets.get_text(&record.bucket).await?,
            });
        }
        // The order is the fence: a generation read before a successful renewal predates
        // every write of any later claim.
        let fence = Fence {
            result: self.result_precondition(object).await?,
            manifest: match self.options.segments {
                Some(_) => {
                    self.result_precondition(&manifest_name(&self.options.results_prefix, guid))
                        .await?
                }
                None => Precondition::None,
            },
        };
        if self
            .index
            .renew(claim, self.now(), self.options.lease)
            .await?
            .is_none()
        {
            return Ok(Fenced::Superseded);
        }
        let warnings = self.quota_warnings(guid).await?;
        let last_chunk_at = sources
            .iter()
            .map(|s| s.name.instant_ns())
            .max()
            .map(|ns| Millis((ns / 1_000_000) as i64));
        let span = tracing::info_span!("finalize", session_guid = %guid, chunks = sources.len());
        let stitch = assemble(
            &self.results,
            object,
            guid,
            sources,
            fence,
            warnings,
            &self.options,
        )
        .instrument(span);
        let assembled = match self.renewing(claim, stitch).await {
            Err(ServiceError::Storage(StorageError::PreconditionFailed { .. })) => {
                return Ok(Fenced::ResultChanged)
            }

            other => other?,
        };
        // Complete against the chunk set this stitch listed, which may be newer than the claim.
        let stitched = claim.covering(&records);
        let completion = self.index.complete(&stitched, object, self.now()).await?;
        let completion = match completion {
            Completion::Finalized => "finalized",
            Completion::Reopened => "reopened",
            // Our write was fenced, so it was no newer claim's to lose; the newer claim
            // writes again after it (its precondition fails on ours). Unless the session was
            // erased meanwhile: then our result must go, which the caller sees to
            // ([`Service::unless_erased`]) on this as on every failure.
            Completion::LostClaim => return Ok(Fenced::Superseded),
        };
        let meta = &assembled.metadata;
        tracing::info!(
            session_guid = %guid,
            result = %object,
            chunks = meta.chunk_count,
            events = meta.event_count,
            bytes = assembled.bytes,
            completion,
            "session stitched"
        );
        Ok(Fenced::Written(Box::new(FinalizeReport {
            session_guid: guid.to_string(),
            result_object: object.to_owned(),
            chunks: meta.chunk_count,
            duplicate_chunks: meta.duplicate_chunks.len() as u64,
            missing_chunks: assembled.missing,
            events: meta.event_count,
            bytes: assembled.bytes,
            replayable: meta.replayable,
            warnings: meta.warnings.len(),
            completion,
            last_chunk_at,
        })))
    }

    /// The condition a result write must meet: the object is still the one there now.
    async fn result_precondition(&self, object: &str) -> Result<Precondition> {
        match self.results.stat(object).await {
            Ok(meta) => Ok(match meta.generation {
                Some(g) => Precondition::GenerationMatches(g),
                // Every adapter has generations; one without could not be fenced.
                None => Precondition::None,
            }),
            Err(StorageError::NotFound { .. }) => Ok(Precondition::DoesNotExist),
            Err(e) => Err(e.into()),
        }
    }

    /// Runs `work` while renewing the claim's lease every third of it, so a long stitch is
    /// not taken over while it makes progress. Renewal only saves work: correctness is the
    /// fence's, which holds however long `work` takes.
    async fn renewing<T>(&self, claim: &Claim, work: impl Future<Output = T>) -> T {
        let every = (self.options.lease / 3).max(Duration::from_millis(100));
        let renewals = async {
            loop {
                tokio::time::sleep(every).await;
                match self
                    .index
                    .renew(claim, self.now(), self.options.lease)
                    .await
                {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        tracing::warn!(session_guid = %claim.guid, "lease lost mid-stitch; the write will be fenced");
                        return std::future::pending().await;
                    }
                    Err(e) => {
                        tracing::warn!(session_guid = %claim.guid, error = %e, "could not renew the lease")
                    }
                }
            }
        };
        tokio::pin!(work);
        tokio::select! {
            out = &mut work => out,
            never = renewals => never,
        }
    }
}

/// How one fenced stitch ended.
enum Fenced {
    Written(Box<FinalizeReport>),
    /// Another claim holds the session now: it writes the result.
    Superseded,
    /// The result object changed between our read of it and our write: try again.
    ResultChanged,
}

/// Stitches one claim tries before giving up for this sweep: each retry means another
/// finalizer wrote the result meanwhile, which a live lease makes rare.
const FENCE_ATTEMPTS: usize = 4;

/// The session metric line of one claimed finalize's outcome.
fn record_metric(outcome: &Result<FinalizeReport>, took: Duration, now: Millis) {
    match outcome {
        Ok(report) => metrics::session(
            if report.completion == "reopened" {
                SessionOutcome::Reopened
            } else {
                SessionOutcome::Written
            },
            Some(&metrics::Stitched {
                took,
                bytes: report.bytes,
                last_chunk_at: report.last_chunk_at,
                written_at: now,
            }),
        ),
        Err(ServiceError::Superseded(_)) => metrics::session(SessionOutcome::LostClaim, None),
        Err(ServiceError::Erased(_)) => metrics::session(SessionOutcome::Deleted, None),
        Err(_) => metrics::session(SessionOutcome::Failed, None),
    }
}
