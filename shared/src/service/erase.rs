//! Erase: delete everything rrstitch holds about a session, and keep it deleted.
//!
//! Per session, in this order:
//! 1. **Tombstone** the session in the index ([`SessionIndex::tombstone`]). From here on
//!    ingest refuses its chunks (`deleted_session`, and deletes them), a sweep or a manual
//!    finalize cannot claim it, and a finalizer that claimed it *before* fails its fence (the
//!    renewal before its result write) and its completion.
//! 2. Delete the **chunk objects** the index lists (unless `keep_chunks`), and the **refused
//!    objects** whose bytes name the session (a chunk with its guid and a bad event:
//!    [`SessionIndex::rejected_of`](crate::index::SessionIndex::rejected_of)), then their
//!    **records**. Listing after the tombstone is complete: no chunk can be recorded since,
//!    and an object refused since names an erased session, so it is deleted on the spot.
//! 3. Delete the **results**: `<guid>.json`, `<guid>.json.gz`, the result the index recorded
//!    (if its name differs), and everything under `<guid>/` (the segments and their manifest).
//!
//! ## A delete racing a finalize
//! The tombstone comes first so that no finalize *starts* writing afterwards: its renewal
//! fails. One that renewed before the tombstone may still be writing; its write lands before
//! step 3 (deleted there), or fails its precondition (step 3 deleted the result it was
//! fenced on), or lands after step 3 on a result that did not exist. For that last case the
//! finalizer cleans up after itself: however it ends short of completing (its completion
//! fails on the tombstone, or a write or a listing fails mid-publish), it looks for the
//! tombstone and deletes the session's results, segments and manifest included
//! ([`Service::undo_result_of_erased`]), and reports the session erased rather than failed.
//! Every write it makes precedes that look, so either the look sees the tombstone or the
//! erasure's step 3 runs after the write. **Remaining window:** a
//! finalizer that dies between such a late write and that cleanup (or cannot reach the
//! index for its look) leaves a result behind;
//! running the delete again removes it (erasure is idempotent), and a results retention rule
//! bounds it otherwise.
//!
//! Chunks uploaded later than the tombstone's expiry (`RRSTITCH_TOMBSTONE_TTL_DAYS`, 400 by
//! default) start a new session. `keep_chunks` only keeps the chunks from *this* operation:
//! ingest and reconcile delete a refused chunk of an erased session unless
//! `RRSTITCH_KEEP_CHUNKS_OF_DELETED=1`.

use serde::{Deserialize, Serialize};

use super::{Result, Service, ServiceError};
use crate::engine::SessionGuid;
use crate::index::SessionStatus;

/// An erasure request as the edges take it (`POST /delete`, the Lambda `delete` event).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct EraseRequest {
    pub session_guids: Vec<String>,
    /// Leave the chunk objects in their bucket (their index records still go).
    #[serde(default)]
    pub keep_chunks: bool,
}

/// What erasing one session deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SessionErased {
    pub session_guid: String,
    /// Result objects deleted.
    pub results: u64,
    /// Chunk objects deleted.
    pub chunks: u64,
    /// Chunk objects left in place (`keep_chunks`), or already gone.
    pub chunks_kept: u64,
    /// Refused objects naming the session (a chunk with its guid and a bad event) deleted.
    pub rejected: u64,
    /// Refused objects naming the session left in place (`keep_chunks`), or already gone.
    pub rejected_kept: u64,
    /// Index records deleted: chunk records, and the session's own document (now a
    /// tombstone).
    pub index_records: u64,
    /// Nothing was left to delete: the session was erased before, or never existed.
    pub already_gone: bool,
}

/// One session that could not be erased; run the delete again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EraseFailure {
    pub session_guid: String,
    pub error: String,
    pub transient: bool,
}

/// What one erasure request did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EraseReport {
    pub erased: Vec<SessionErased>,
    pub failed: Vec<EraseFailure>,
}

impl EraseReport {
    /// Whether a retry could fix what failed (the edges answer 503 then).
    pub fn is_transient(&self) -> bool {
        self.failed.iter().any(|f| f.transient)
    }
}

/// An [`EraseRequest`] from a request body; the error says what is wrong with it.
pub fn erase_request(body: &[u8]) -> std::result::Result<EraseRequest, String> {
    let request: EraseRequest = serde_json::from_slice(body).map_err(|e| {
        format!("expected {{\"session_guids\": [\"…\"], \"keep_chunks\": false}}: {e}")
    })?;
    parse_guids(&request.session_guids).map_err(|e| e.to_string())?;
    Ok(request)
}

/// Parses every guid first, so a request with one bad guid erases nothing.
pub fn parse_guids<S: AsRef<str>>(guids: &[S]) -> Result<Vec<SessionGuid>> {
    if guids.is_empty() {
        return Err(ServiceError::InvalidRequest(
            "no session guids to delete".into(),
        ));
    }
    guids
        .iter()
        .map(|g| {
            SessionGuid::parse(g.as_ref()).map_err(|e| {
                ServiceError::InvalidRequest(format!("session guid {:?}: {e}", g.as_ref()))
            })
        })
        .collect()
}

impl Service {
    /// Erases `request.session_guids` (see the module docs). Idempotent: erasing again
    /// reports nothing left and succeeds. Sessions are erased one after another; a failure
    /// is reported and the rest are still tried.
    pub async fn erase(&self, request: &EraseRequest) -> Result<EraseReport> {
        let guids = parse_guids(&request.session_guids)?;
        let mut report = EraseReport::default();
        for guid in guids {
            match self.erase_one(&guid, request.keep_chunks).await {
                Ok(done) => report.erased.push(done),
                Err(e) => {
                    tracing::error!(session_guid = %guid, error = %e, "could not erase session; run the delete again");
                    report.failed.push(EraseFailure {
                        session_guid: guid.to_string(),
                        error: e.to_string(),
                        transient: e.is_transient(),
                    });
                }
            }
        }
        Ok(report)
    }

    async fn erase_one(&self, guid: &SessionGuid, keep_chunks: bool) -> Result<SessionErased> {
        // The result name the index recorded, read before the tombstone replaces it.
        let recorded_result = self
            .index
            .session(guid)
            .await?
            .filter(|s| s.status != SessionStatus::Deleted)
            .and_then(|s| s.result_object);
        let tomb = self
            .index
            .tombstone(guid, self.now(), self.options.tombstone_ttl)
            .await?;
        let mut done = SessionErased {
            session_guid: guid.to_string(),
            index_records: u64::from(tomb.had_session),
            ..SessionErased::default()
        };
        let chunks = self.index.chunks(guid).await?;
        let chunks = chunks.iter().map(|c| (c.bucket.as_str(), c.name.as_str()));
        (done.chunks, done.chunks_kept) = self.delete_objects(chunks, keep_chunks).await?;
        // Refused objects that name the session hold its data as much as its chunks do.
        let rejects = self.index.rejected_of(guid).await?;
        let rejects = rejects.iter().map(|r| (r.bucket.as_str(), r.name.as_str()));
        (done.rejected, done.rejected_kept) = self.delete_objects(rejects, keep_chunks).await?;
        done.index_records += self.index.forget_rejected(guid).await?;
        done.index_records += self.index.forget_chunks(guid).await?;
        done.results = self
            .delete_results(guid, recorded_result.as_deref())
            .await?;
        done.already_gone =
            done.index_records == 0 && done.chunks == 0 && done.rejected == 0 && done.results == 0;
        tracing::info!(
            session_guid = %guid,
            results = done.results,
            chunks = done.chunks,
            chunks_kept = done.chunks_kept,
            rejected = done.rejected,
            index_records = done.index_records,
            already_gone = done.already_gone,
            "session erased"
        );
        Ok(done)
    }

    /// Deletes (bucket, name) objects unless `keep`: how many were deleted, and how many
    /// were kept or already gone.
    async fn delete_objects(
        &self,
        objects: impl Iterator<Item = (&str, &str)>,
        keep: bool,
    ) -> Result<(u64, u64)> {
        let (mut deleted, mut kept) = (0, 0);
        for (bucket, name) in objects {
            if keep {
                kept += 1;
                continue;
            }
            let store = self.buckets.get_text(bucket).await?;
            if store.delete(name).await? {
                deleted += 1;
            } else {
                kept += 1;
            }
        }
        Ok((deleted, kept))
    }

    /// Every object a result of `guid` may be made of: `<guid>.json`, `<guid>.json.gz`, the
    /// result the index recorded (if its name differs), and everything under `<guid>/` (the
    /// segments and their manifest). The first three are named whether or not they exist,
    /// so a write landing after this listing is still deleted. Erasure and retention
    /// ([`super::prune`]) both go by this one list.
    pub(crate) async fn result_objects(
        &self,
        guid: &SessionGuid,
        recorded: Option<&str>,
    ) -> Result<Vec<String>> {
        let base = format!("{}{guid}", self.options.results_prefix);
        let mut names = vec![format!("{base}.json"), format!("{base}.json.gz")];
        if let Some(r) = recorded.filter(|r| !names.iter().any(|n| n == r)) {
            names.push(r.to_owned());
        }
        names.extend(
            self.results
                .list(&format!("{base}/"))
                .await?
                .into_iter()
                .map(|m| m.name),
        );
        Ok(names)
    }

    /// Deletes every result object of `guid`; how many there were.
    pub(crate) async fn delete_results(
        &self,
        guid: &SessionGuid,
        recorded: Option<&str>,
    ) -> Result<u64> {
        let mut deleted = 0;
        for name in self.result_objects(guid, recorded).await? {
            if self.results.delete(&name).await? {
                deleted += 1;
            }
        }
        Ok(deleted)
    }

    /// Called by a finalizer that failed (its completion, or anything before): if the
    /// session was erased meanwhile, the result it may just have written must not outlive
    /// the erasure. True when the session was erased (what was there is deleted).
    pub(crate) async fn undo_result_of_erased(
        &self,
        guid: &SessionGuid,
        object: &str,
    ) -> Result<bool> {
        let erased = self
            .index
            .session(guid)
            .await?
            .is_some_and(|s| s.status == SessionStatus::Deleted);
        if erased && self.delete_results(guid, Some(object)).await? > 0 {
            tracing::warn!(session_guid = %guid, result = %object, "session was erased while being finalized; deleted the result (and segments) this finalizer wrote");
        }
        Ok(erased)
    }
}
