//! Prune: retention for local mode, what the buckets' lifecycle rules do in the cloud.
//!
//! In the cloud, `chunk_retention_days` (and optionally `results_retention_days`) are bucket
//! lifecycle rules: the bucket deletes objects by their age and rrstitch never sees it. A
//! local directory has no lifecycle, so `rrstitch prune --older-than 30d` does it, with the
//! index kept consistent (a lifecycle rule leaves index records of deleted chunks behind;
//! their TTL removes them later):
//!
//! - a session whose every chunk object is older than the cutoff (by modification time)
//!   loses its chunk objects and chunk records;
//! - if it has a result, the result and the session's document stay, unless `results` is set
//!   and the result is older than the cutoff too: then both go, the result whole (the single
//!   file, and the manifest and segments of a segmented one);
//! - without a result (never finalized) its document goes: there is nothing left to stitch;
//! - a session with any newer chunk, or under a finalizer's lease, is left whole (this is
//!   where prune is stricter than a lifecycle rule, which deletes chunk by chunk).
//!
//! Pruning is retention, not erasure: it writes no tombstone, so a chunk arriving later
//! simply starts a session again. Objects the index does not list (rejected ones) are not
//! touched. Only local directories are supported: object time is the file's mtime.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::{Result, Service, ServiceError};
use crate::engine::SessionGuid;
use crate::index::{SessionRecord, SessionStatus};
use crate::storage::{StorageError, StorageUrl};
use crate::time::Millis;

/// Most sessions one prune reads from the index listing.
const LISTING: usize = 1 << 30;

/// What a prune did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PruneReport {
    pub dry_run: bool,
    /// Sessions whose chunks were all older than the cutoff.
    pub sessions_pruned: u64,
    pub chunks_deleted: u64,
    pub chunk_records_deleted: u64,
    pub results_deleted: u64,
    /// Session documents removed (no result left to describe).
    pub sessions_forgotten: u64,
    /// Pruned sessions kept for their result.
    pub sessions_kept_for_result: u64,
    /// Sessions with a chunk newer than the cutoff, or being finalized: left whole.
    pub sessions_skipped: u64,
}

/// The modification time of a local object; `None` when it is gone.
fn mtime(path: &Path) -> Result<Option<Millis>> {
    match std::fs::metadata(path).and_then(|m| m.modified()) {
        Ok(t) => Ok(Some(Millis::of(t))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The file behind an object of a local bucket, or why prune cannot age it.
fn local_path(bucket: &StorageUrl, name: &str) -> Result<PathBuf> {
    match bucket {
        StorageUrl::Local(dir) => Ok(dir.join(name)),
        other => Err(ServiceError::InvalidRequest(format!(
            "prune is for local directories; {other} has lifecycle rules for retention \
             (chunk_retention_days, results_retention_days in infra/)"
        ))),
    }
}

fn bucket_url(text: &str) -> Result<StorageUrl> {
    StorageUrl::parse(text)
        .map(|(url, _)| url)
        .map_err(ServiceError::InvalidRequest)
}

impl Service {
    /// Prunes what is older than `older_than` (see the module docs).
    pub async fn prune(
        &self,
        older_than: Duration,
        results: bool,
        dry_run: bool,
    ) -> Result<PruneReport> {
        let cutoff = self.now().minus(older_than);
        let old = |t: Option<Millis>| t.is_none_or(|t| t < cutoff);
        let mut report = PruneReport {
            dry_run,
            ..PruneReport::default()
        };
        for session in self.index.sessions(LISTING).await? {
            if matches!(
                session.status,
                SessionStatus::Finalizing | SessionStatus::Deleted
            ) {
                report.sessions_skipped += 1;
                continue;
            }
            let chunks = self.index.chunks(&session.guid).await?;
            let mut paths = Vec::with_capacity(chunks.len());
            for c in &chunks {
                paths.push(local_path(&bucket_url(&c.bucket)?, &c.name)?);
            }
            let mut all_old = true;
            for p in &paths {
                all_old &= old(mtime(p)?);
            }
            if !all_old {
                report.sessions_skipped += 1;
                continue;
            }
            report.sessions_pruned += 1;
            let result = self.prunable_result(&session, results, &old)?;
            tracing::info!(session_guid = %session.guid, chunks = chunks.len(), result_too = result.is_some(), dry_run, "pruning session");
            if dry_run {
                report.chunks_deleted += paths.iter().filter(|p| p.exists()).count() as u64;
                report.chunk_records_deleted += chunks.len() as u64;
            } else {
                for c in &chunks {
                    let store = self.buckets.get_text(&c.bucket).await?;
                    report.chunks_deleted += u64::from(store.delete(&c.name).await?);
                }
                report.chunk_records_deleted += self.index.forget_chunks(&session.guid).await?;
            }
            let keep = session.result_object.is_some() && result.is_none();
            if keep {
                report.sessions_kept_for_result += 1;
                continue;
            }
            if let Some(name) = result {
                // The whole result: the single file, and the manifest and segments the
                // viewer would otherwise still list and serve.
                report.results_deleted += if dry_run {
                    self.existing_results(&session.guid, &name).await?
                } else {
                    self.delete_results(&session.guid, Some(&name)).await?
                };
            }
            report.sessions_forgotten += if dry_run {
                1
            } else {
                u64::from(self.index.forget_session(&session.guid).await?)
            };
        }
        tracing::info!(?report, "prune done");
        Ok(report)
    }

    /// How many of a session's result objects exist: what a prune would delete.
    async fn existing_results(&self, guid: &SessionGuid, recorded: &str) -> Result<u64> {
        let mut found = 0;
        for name in self.result_objects(guid, Some(recorded)).await? {
            match self.results.stat(&name).await {
                Ok(_) => found += 1,
                Err(StorageError::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(found)
    }

    /// The session's result object if `results` asks for old results and it is one.
    fn prunable_result(
        &self,
        session: &SessionRecord,
        results: bool,
        old: &impl Fn(Option<Millis>) -> bool,
    ) -> Result<Option<String>> {
        let Some(name) = session.result_object.as_ref().filter(|_| results) else {
            return Ok(None);
        };
        let time = mtime(&local_path(self.results.url(), name)?)?;
        Ok(old(time).then(|| name.clone()))
    }
}
