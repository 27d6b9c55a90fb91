//! Finalize: claim a session, re-stitch every chunk the index lists, write the result,
//! complete the claim. A sweep does this for every idle session; a manual finalize for one
//! session now. See [`crate::index`] for the claim/lease protocol this follows.

use std::collections::BTreeMap;

use futures::stream::{self, StreamExt};
use serde::Serialize;
use tracing::Instrument;

use super::assemble::{assemble, Source};
use super::{Result, Service, ServiceError};
use crate::engine::{ChunkName, SessionGuid};
use crate::index::{Claim, ClaimMode, ClaimOutcome, Completion};

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
    /// `finalized`, `reopened` (a chunk arrived mid-stitch) or `lost_claim`.
    pub completion: &'static str,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SweepSummary {
    /// Idle sessions the index offered.
    pub considered: usize,
    pub finalized: Vec<FinalizeReport>,
    /// Sessions another worker held, or that became busy since the query.
    pub skipped: usize,
    /// Sessions that failed; their claims were released for the next sweep.
    pub failed: Vec<SweepFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepFailure {
    pub session_guid: String,
    pub error: String,
    pub transient: bool,
}

impl Service {
    /// Finalizes every session idle for `options.idle`, up to `options.sweep_limit`.
    pub async fn sweep(&self) -> Result<SweepSummary> {
        let now = self.now();
        let idle_before = now.minus(self.options.idle);
        let guids = self
            .index
            .idle_sessions(idle_before, now, self.options.sweep_limit)
            .await?;
        let mut summary = SweepSummary {
            considered: guids.len(),
            ..SweepSummary::default()
        };
        let mode = ClaimMode::Idle { idle_before };
        let mut runs = stream::iter(guids)
            .map(|guid| async move {
                let outcome = self.claim_and_finalize(&guid, mode).await;
                (guid, outcome)
            })
            .buffer_unordered(self.options.session_parallelism.max(1));
        while let Some((guid, outcome)) = runs.next().await {
            match outcome {
                Ok(Some(report)) => summary.finalized.push(report),
                Ok(None) => summary.skipped += 1,
                Err(e) => {
                    tracing::error!(session_guid = %guid, error = %e, "finalize failed; will retry on a later sweep");
                    summary.failed.push(SweepFailure {
                        session_guid: guid.to_string(),
                        transient: e.is_transient(),
                        error: e.to_string(),
                    });
                }
            }
        }
        tracing::info!(
            considered = summary.considered,
            finalized = summary.finalized.len(),
            skipped = summary.skipped,
            failed = summary.failed.len(),
            "sweep done"
        );
        Ok(summary)
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

    /// `Ok(None)` when a sweep should just skip the session.
    async fn claim_and_finalize(
        &self,
        guid: &SessionGuid,
        mode: ClaimMode,
    ) -> Result<Option<FinalizeReport>> {
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
            ClaimOutcome::Busy { .. } | ClaimOutcome::NotEligible => return Ok(None),
        };
        match self.finalize_claimed(&claim).await {
            Ok(report) => Ok(Some(report)),
            Err(e) => {
                if let Err(release) = self.index.release(&claim, self.now()).await {
                    // The lease will expire on its own; the next sweep takes over then.
                    tracing::warn!(session_guid = %guid, error = %release, "could not release claim");
                }
                Err(e)
            }
        }
    }

    async fn finalize_claimed(&self, claim: &Claim) -> Result<FinalizeReport> {
        let guid = &claim.guid;
        let records = self.index.chunks(guid).await?;
        // One source per object name: a re-uploaded name (new generation) is read once, as
        // it is now.
        let mut by_name: BTreeMap<(String, String), ChunkName> = BTreeMap::new();
        for record in &records {
            match ChunkName::parse(&record.name) {
                Some(name) => {
                    by_name.insert((record.bucket.clone(), record.name.clone()), name);
                }
                None => {
                    tracing::warn!(chunk = %record.name, "indexed chunk has an unparsable name")
                }
            }
        }
        let mut sources = Vec::with_capacity(by_name.len());
        for ((bucket, _), name) in by_name {
            sources.push(Source {
                name,
                store: self.buckets.get_text(&bucket).await?,
            });
        }
        let object = self.options.result_name(guid);
        let span = tracing::info_span!("finalize", session_guid = %guid, chunks = sources.len());
        let assembled = assemble(self.results.as_ref(), &object, guid, sources, &self.options)
            .instrument(span)
            .await?;
        // The listing can be newer than the claim: a chunk recorded between the two is already
        // in this stitch. Every chunk record bumps the version by one, so the version of the
        // set stitched is its size; completing against it re-opens the session only for a
        // chunk this stitch did not see, never for one it did.
        let stitched = Claim {
            version: claim.version.max(records.len() as u64),
            ..claim.clone()
        };
        let completion = self.index.complete(&stitched, &object, self.now()).await?;
        let completion = match completion {
            Completion::Finalized => "finalized",
            Completion::Reopened => "reopened",
            Completion::LostClaim => "lost_claim",
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
        Ok(FinalizeReport {
            session_guid: guid.to_string(),
            result_object: object,
            chunks: meta.chunk_count,
            duplicate_chunks: meta.duplicate_chunks.len() as u64,
            missing_chunks: assembled.missing,
            events: meta.event_count,
            bytes: assembled.bytes,
            replayable: meta.replayable,
            warnings: meta.warnings.len(),
            completion,
        })
    }
}
