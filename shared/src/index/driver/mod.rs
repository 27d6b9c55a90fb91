//! The one claim/lease driver: every [`SessionIndex`] operation, over any [`SessionStore`].
//!
//! Each write is optimistic: read the session with its revision, let [`super::protocol`]
//! decide, write only if the revision is unchanged; on a conflict wait and start again, at
//! most [`ATTEMPTS`] times (`retry`). Every write also stamps the session with its
//! idle-index shard ([`super::shard`]), after making sure the store's shard mark covers this
//! process's shard count, so a query never misses a shard something was stamped into
//! (`shard_mark`). The idle query reads every shard concurrently and merges (`due`).
//!
//! This file is the operations themselves, each a protocol decision handed to that loop or a
//! read passed through to the store; the three concepts they rest on have a module each.

mod counts;
mod due;
mod retry;
mod shard_mark;
#[cfg(test)]
mod tests;

pub use due::FANOUT;
pub use retry::ATTEMPTS;

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::protocol;
use super::shard::Shards;
use super::store::{NewChunk, SessionStore, Written};
use super::{
    new_token, ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, Recorded, RejectRecord,
    Reopen, Result, SessionCounts, SessionIndex, SessionPage, SessionRecord, SessionStatus,
    Tombstoned,
};
use crate::engine::SessionGuid;
use crate::time::Millis;
use retry::{optimistic, Attempt, Step};

/// A session index: the protocol driven over `S`.
#[derive(Debug)]
pub struct Driver<S> {
    store: S,
    shards: Shards,
    /// Set once this process has raised the store's shard mark to its count.
    mark_raised: OnceCell<()>,
}

impl<S: SessionStore> Driver<S> {
    /// The protocol over `store`, stamping sessions with the default shard count.
    pub fn over(store: S) -> Self {
        Driver {
            store,
            shards: Shards::default(),
            mark_raised: OnceCell::new(),
        }
    }

    /// The same index, stamping sessions with `shards`.
    pub fn with_shards(mut self, shards: Shards) -> Self {
        self.shards = shards;
        self.mark_raised = OnceCell::new();
        self
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn shards(&self) -> Shards {
        self.shards
    }
}

#[async_trait]
impl<S: SessionStore> SessionIndex for Driver<S> {
    async fn record_chunk_within(
        &self,
        chunk: &ChunkRecord,
        max_bytes: Option<u64>,
        now: Millis,
    ) -> Result<Recorded> {
        let new = NewChunk {
            record: chunk,
            at: now,
        };
        let step = self
            .drive("record_chunk", &chunk.guid, Some(new), |before| {
                protocol::record(before, chunk, max_bytes, now)
            })
            .await?;
        Ok(match step {
            // A full session refuses without writing, so the store never got to say whether
            // the chunk is known: a redelivery of one recorded before must stay AlreadyKnown,
            // never become a refusal of a chunk the result holds. The chunk record and its
            // session are written atomically, so a record there now was counted in the bytes
            // read, and one absent now can only be recorded later by a write that fits.
            Step::Done(over @ Recorded::OverQuota { .. }) => {
                if self.store.chunk_known(chunk).await? {
                    Recorded::AlreadyKnown
                } else {
                    over
                }
            }
            Step::Done(recorded) => recorded,
            Step::ChunkKnown => Recorded::AlreadyKnown,
        })
    }

    async fn record_rejected(&self, rejected: &RejectRecord, now: Millis) -> Result<bool> {
        self.store.record_rejected(rejected, now).await
    }

    async fn idle_sessions(
        &self,
        idle_before: Millis,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<SessionGuid>> {
        self.due_sessions(idle_before, now, limit).await
    }

    async fn claim(
        &self,
        guid: &SessionGuid,
        mode: ClaimMode,
        now: Millis,
        lease: Duration,
    ) -> Result<ClaimOutcome> {
        let token = new_token();
        self.update("claim", guid, |before| {
            protocol::claim(before, mode, now, lease, &token)
        })
        .await
    }

    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        self.store.chunks(guid).await
    }

    async fn complete(
        &self,
        claim: &Claim,
        result_object: &str,
        now: Millis,
    ) -> Result<Completion> {
        self.update("complete", &claim.guid, |before| {
            protocol::complete(before, claim, result_object, now)
        })
        .await
    }

    async fn renew(&self, claim: &Claim, now: Millis, lease: Duration) -> Result<Option<Millis>> {
        self.update("renew", &claim.guid, |before| {
            protocol::renew(before, claim, now, lease)
        })
        .await
    }

    async fn release(&self, claim: &Claim, _now: Millis) -> Result<()> {
        self.update("release", &claim.guid, |before| {
            protocol::release(before, claim)
        })
        .await
    }

    async fn session(&self, guid: &SessionGuid) -> Result<Option<SessionRecord>> {
        Ok(self.store.read(guid).await?.map(|s| s.state.record))
    }

    async fn sessions(&self, limit: usize) -> Result<Vec<SessionRecord>> {
        let shards = self.scan().await?;
        // Tombstones are no sessions to list; asking for a few more keeps the page full
        // unless erasures dominate the most recent activity.
        let mut listed = self
            .store
            .sessions(shards, limit.saturating_add(limit / 4 + 8))
            .await?;
        listed.retain(|s| s.status != SessionStatus::Deleted);
        listed.truncate(limit);
        Ok(listed)
    }

    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        self.store.rejected(limit).await
    }

    async fn rejected_since(&self, since: Millis, limit: usize) -> Result<Vec<RejectRecord>> {
        self.store.rejected_since(since, limit).await
    }

    async fn counts(&self, now: Millis) -> Result<SessionCounts> {
        self.count_sessions(now).await
    }

    async fn sessions_page(&self, after: Option<&str>, limit: usize) -> Result<SessionPage> {
        let limit = limit.max(1);
        let sessions = self.store.sessions_after(after, limit).await?;
        // A full page may have more after it; a short one is the end of the listing.
        let next = (sessions.len() >= limit)
            .then(|| sessions.last().map(|s| s.guid.to_string()))
            .flatten();
        Ok(SessionPage { sessions, next })
    }

    async fn bookmark(&self, name: &str) -> Result<Option<String>> {
        self.store.bookmark(name).await
    }

    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()> {
        self.store.set_bookmark(name, value).await
    }

    async fn reopen(&self, guid: &SessionGuid, _now: Millis) -> Result<Reopen> {
        let reopened = self.update("reopen", guid, protocol::reopen).await?;
        tracing::debug!(session_guid = %guid, ?reopened, "re-open for another stitch");
        Ok(reopened)
    }

    async fn tombstone(
        &self,
        guid: &SessionGuid,
        now: Millis,
        ttl: Duration,
    ) -> Result<Tombstoned> {
        let done = self
            .update("tombstone", guid, |before| {
                protocol::tombstone(before, guid, now, ttl)
            })
            .await?;
        tracing::info!(session_guid = %guid, had_session = done.had_session, already = done.already, until = %done.until, "session tombstoned");
        Ok(done)
    }

    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64> {
        self.store.forget_chunks(guid).await
    }

    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>> {
        self.store.rejected_of(guid).await
    }

    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64> {
        self.store.forget_rejected(guid).await
    }

    async fn forget_session(&self, guid: &SessionGuid) -> Result<bool> {
        optimistic("forget_session", guid, || async {
            let Some(before) = self.store.read(guid).await? else {
                return Ok(Attempt::Done(false));
            };
            // A tombstone is erasure's, not retention's, to remove: it expires by itself.
            if before.state.record.status == SessionStatus::Deleted {
                return Ok(Attempt::Done(false));
            }
            Ok(match self.store.remove(guid, &before.revision).await? {
                Written::Conflict => Attempt::Conflict,
                _ => Attempt::Done(true),
            })
        })
        .await
    }
}
