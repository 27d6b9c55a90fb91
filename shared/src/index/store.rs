//! What a session index backend must provide: the port each adapter implements.
//!
//! An adapter knows how to store things, never what to decide: it reads a session's state
//! with a revision, writes a state only if the revision is still the one read (creating a
//! chunk record in the same atomic write, only if that record is new), and answers the
//! listing queries. The claim/lease protocol on top — the retry loop and every decision — is
//! [`super::driver::Driver`]'s, once for all adapters.

use std::fmt;

use async_trait::async_trait;

use super::protocol::SessionState;
use super::{ChunkRecord, RejectRecord, Result, SessionRecord, SessionStatus};
use crate::engine::SessionGuid;
use crate::time::Millis;

/// A session's state as read, with the revision a conditional write is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored<R> {
    pub state: SessionState,
    pub revision: R,
}

/// A chunk record to create together with a session write.
#[derive(Debug, Clone, Copy)]
pub struct NewChunk<'a> {
    pub record: &'a ChunkRecord,
    /// When it was recorded.
    pub at: Millis,
}

/// What a conditional write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    Written,
    /// The session's revision is no longer the one expected (or it exists where it was
    /// expected absent): nothing was written; read again.
    Conflict,
    /// The chunk record exists already (bucket + name + [`ChunkRecord::identity`]): nothing
    /// was written. Reported in preference to [`Written::Conflict`].
    ChunkKnown,
}

/// Which time-ranged query over a shard: the sweep's two, and the tombstones `status` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Due {
    /// `open`, `last_chunk_at` before the bound, oldest arrival first.
    Idle,
    /// `finalizing`, `lease_until` before the bound, earliest expiry first: its finalizer died.
    LeaseExpired,
    /// `deleted`, `lease_until` (the tombstone's expiry) before the bound. Never swept: only
    /// counted ([`super::SessionIndex::counts`]), so the tombstones are an index range too
    /// rather than a scan.
    Tombstone,
}

impl Due {
    pub fn status(self) -> SessionStatus {
        match self {
            Due::Idle => SessionStatus::Open,
            Due::LeaseExpired => SessionStatus::Finalizing,
            Due::Tombstone => SessionStatus::Deleted,
        }
    }
}

/// One session a sweep query found: `at` is its `last_chunk_at` ([`Due::Idle`]) or its
/// `lease_until` ([`Due::LeaseExpired`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueEntry {
    pub guid: SessionGuid,
    pub at: Millis,
}

#[async_trait]
pub trait SessionStore: Send + Sync + fmt::Debug {
    /// What a write is conditioned on: a counter, a document's update time.
    type Revision: Clone + Send + Sync + fmt::Debug;

    /// The session and its revision; `None` when there is none.
    async fn read(&self, guid: &SessionGuid) -> Result<Option<Stored<Self::Revision>>>;

    /// Writes `state` whole, only if the session's revision is still `expected` (`None`: only
    /// if there is no session yet), and with it, atomically, `chunk`'s record if given and
    /// not recorded yet. A session written without a `chunk` never answers
    /// [`Written::ChunkKnown`].
    async fn write(
        &self,
        expected: Option<&Self::Revision>,
        state: &SessionState,
        chunk: Option<NewChunk<'_>>,
    ) -> Result<Written>;

    /// Whether `chunk`'s record exists (bucket + name + [`ChunkRecord::identity`], as
    /// [`SessionStore::write`] would find it): one point read, for a chunk the quota refused.
    async fn chunk_known(&self, chunk: &ChunkRecord) -> Result<bool>;

    /// Records a refused object; false when it was already recorded.
    async fn record_rejected(&self, rejected: &RejectRecord, now: Millis) -> Result<bool>;

    /// Sessions of `shard` in `due`'s status whose `due` time is before `before`, in that
    /// time's order, at most `limit`.
    async fn due(
        &self,
        shard: u32,
        due: Due,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<DueEntry>>;

    /// How many sessions [`SessionStore::due`] would find with no limit: one count query
    /// over the same index range, never the sessions themselves.
    async fn count_due(&self, shard: u32, due: Due, before: Millis) -> Result<u64>;

    /// Refused objects recorded at or after `since`, most recent first, at most `limit`.
    async fn rejected_since(&self, since: Millis, limit: usize) -> Result<Vec<RejectRecord>>;

    /// The largest shard count any writer stamped sessions with ([`super::shard`]).
    async fn shard_mark(&self) -> Result<Option<u32>>;

    /// Raises the shard mark to at least `count`, atomically (never lowers it).
    async fn raise_shard_mark(&self, count: u32) -> Result<()>;

    /// Every chunk recorded for a session.
    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>>;

    /// Sessions, most recently active first; `shards` is how many shards may be stamped, for
    /// stores whose listing is sharded too.
    async fn sessions(&self, shards: u32, limit: usize) -> Result<Vec<SessionRecord>>;

    /// Refused objects, most recent first.
    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>>;

    /// At most `limit` sessions (tombstones included) in the store's listing order, starting
    /// after the session whose guid is `after` (which need not exist any more): the pages of
    /// [`super::SessionIndex::sessions_page`], whose cursor is the last guid of a page.
    async fn sessions_after(&self, after: Option<&str>, limit: usize)
        -> Result<Vec<SessionRecord>>;

    /// Deletes every chunk record of `guid`; how many there were.
    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64>;

    /// Reject records naming `guid`.
    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>>;

    /// Deletes the reject records naming `guid`; how many there were.
    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64>;

    /// Deletes the session's document, only if its revision is still `expected`
    /// ([`Written::Conflict`] otherwise).
    async fn remove(&self, guid: &SessionGuid, expected: &Self::Revision) -> Result<Written>;

    /// The bookmark `name` (what a bulk job left for its next run); `None` when unset.
    async fn bookmark(&self, name: &str) -> Result<Option<String>>;

    /// Sets the bookmark `name` to `value`, or clears it (`None`). Last writer wins.
    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()>;
}

/// A store shared between several drivers (several processes' worth of handles, in tests).
#[async_trait]
impl<S: SessionStore> SessionStore for std::sync::Arc<S> {
    type Revision = S::Revision;

    async fn read(&self, guid: &SessionGuid) -> Result<Option<Stored<Self::Revision>>> {
        (**self).read(guid).await
    }
    async fn write(
        &self,
        expected: Option<&Self::Revision>,
        state: &SessionState,
        chunk: Option<NewChunk<'_>>,
    ) -> Result<Written> {
        (**self).write(expected, state, chunk).await
    }
    async fn chunk_known(&self, chunk: &ChunkRecord) -> Result<bool> {
        (**self).chunk_known(chunk).await
    }
    async fn record_rejected(&self, rejected: &RejectRecord, now: Millis) -> Result<bool> {
        (**self).record_rejected(rejected, now).await
    }
    async fn due(
        &self,
        shard: u32,
        due: Due,
        before: Millis,
        limit: usize,
    ) -> Result<Vec<DueEntry>> {
        (**self).due(shard, due, before, limit).await
    }
    async fn count_due(&self, shard: u32, due: Due, before: Millis) -> Result<u64> {
        (**self).count_due(shard, due, before).await
    }
    async fn rejected_since(&self, since: Millis, limit: usize) -> Result<Vec<RejectRecord>> {
        (**self).rejected_since(since, limit).await
    }
    async fn bookmark(&self, name: &str) -> Result<Option<String>> {
        (**self).bookmark(name).await
    }
    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()> {
        (**self).set_bookmark(name, value).await
    }
    async fn shard_mark(&self) -> Result<Option<u32>> {
        (**self).shard_mark().await
    }
    async fn raise_shard_mark(&self, count: u32) -> Result<()> {
        (**self).raise_shard_mark(count).await
    }
    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        (**self).chunks(guid).await
    }
    async fn sessions(&self, shards: u32, limit: usize) -> Result<Vec<SessionRecord>> {
        (**self).sessions(shards, limit).await
    }
    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        (**self).rejected(limit).await
    }
    async fn sessions_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<SessionRecord>> {
        (**self).sessions_after(after, limit).await
    }
    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64> {
        (**self).forget_chunks(guid).await
    }
    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>> {
        (**self).rejected_of(guid).await
    }
    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64> {
        (**self).forget_rejected(guid).await
    }
    async fn remove(&self, guid: &SessionGuid, expected: &Self::Revision) -> Result<Written> {
        (**self).remove(guid, expected).await
    }
}
