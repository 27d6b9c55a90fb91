//! The one claim/lease driver: every [`SessionIndex`] operation, over any [`SessionStore`].
//!
//! Each write is optimistic: read the session with its revision, let [`super::protocol`]
//! decide, write only if the revision is unchanged; on a conflict wait ([`contention_pause`])
//! and start again, at most [`ATTEMPTS`] times. Every write also stamps the session with its
//! idle-index shard ([`super::shard`]), after making sure the store's shard mark covers this
//! process's shard count, so a query never misses a shard something was stamped into.
//!
//! The idle query reads every shard concurrently and merges (see [`Driver::due_sessions`]).

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::{self, StreamExt, TryStreamExt};
use tokio::sync::OnceCell;

use super::protocol::{self, Decision, SessionState};
use super::shard::Shards;
use super::store::{Due, DueEntry, NewChunk, SessionStore, Written};
use super::{
    new_token, ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, IndexError, Recorded,
    RejectRecord, Result, SessionIndex, SessionRecord, SessionStatus, Tombstoned,
};
use crate::engine::SessionGuid;
use crate::time::Millis;

/// Optimistic-concurrency attempts before contention is reported as transient: with the
/// jittered backoff between them (up to 1.28 s), about 15 s of trying.
pub const ATTEMPTS: usize = 20;

/// Shard queries in flight at once for one idle query or listing: enough to hide the round
/// trips of the default 64 shards × 2 queries (8 rounds), few enough not to burst a
/// backend's connection.
pub const FANOUT: usize = 16;

/// Waits before the next attempt of an optimistic write that lost a race (`attempt` counts
/// from 0): exponential backoff with full jitter, from 10 ms up to 1.28 s. Without it, writers
/// that collided retry in lockstep and collide again: 32 concurrent records of one session
/// saw about a fifth of them give up after 16 immediate retries.
pub(crate) async fn contention_pause(attempt: u32) {
    let cap_ms = 10u64 << attempt.min(7);
    let mut bytes = [0u8; 8];
    let _ = getrandom::getrandom(&mut bytes);
    let wait = u64::from_le_bytes(bytes) % (cap_ms + 1);
    tokio::time::sleep(Duration::from_millis(wait)).await;
}

/// How one driven write ended.
enum Step<T> {
    Done(T),
    /// The chunk to record was recorded before: nothing was written.
    ChunkKnown,
}

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

    /// How many shards a query must read: this process's count or, if larger, the most any
    /// writer has used.
    async fn scan(&self) -> Result<u32> {
        Ok(self.shards.scan(self.store.shard_mark().await?))
    }

    /// Before the first write stamped with our count: make the store's mark cover it.
    async fn ensure_mark(&self) -> Result<()> {
        self.mark_raised
            .get_or_try_init(|| async {
                self.store.raise_shard_mark(self.shards.count()).await?;
                tracing::debug!(
                    shards = self.shards.count(),
                    "index shard mark covers this writer"
                );
                Ok::<_, IndexError>(())
            })
            .await
            .map(|_| ())
    }

    /// Read, decide, write if unchanged; again on conflict.
    async fn drive<T>(
        &self,
        op: &'static str,
        guid: &SessionGuid,
        chunk: Option<NewChunk<'_>>,
        decide: impl Fn(Option<&SessionState>) -> Decision<T>,
    ) -> Result<Step<T>> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                contention_pause(attempt as u32 - 1).await;
            }
            let before = self.store.read(guid).await?;
            let (mut after, value) = match decide(before.as_ref().map(|b| &b.state)) {
                Decision::Done(value) => return Ok(Step::Done(value)),
                Decision::Write(after, value) => (*after, value),
            };
            after.shard = Some(self.shards.of(guid));
            self.ensure_mark().await?;
            let expected = before.as_ref().map(|b| &b.revision);
            match self.store.write(expected, &after, chunk).await? {
                Written::Written => return Ok(Step::Done(value)),
                Written::ChunkKnown => return Ok(Step::ChunkKnown),
                Written::Conflict => {
                    tracing::debug!(session_guid = %guid, op, attempt, "session changed under us; reading again")
                }
            }
        }
        tracing::warn!(session_guid = %guid, op, attempts = ATTEMPTS, "too much contention on one session; giving up for now");
        Err(IndexError::Transient {
            op,
            source: "too much contention on one session; retry".into(),
        })
    }

    /// [`Self::drive`] for a write without a chunk record.
    async fn update<T>(
        &self,
        op: &'static str,
        guid: &SessionGuid,
        decide: impl Fn(Option<&SessionState>) -> Decision<T>,
    ) -> Result<T> {
        match self.drive(op, guid, None, decide).await? {
            Step::Done(value) => Ok(value),
            Step::ChunkKnown => Err(IndexError::Permanent {
                op,
                source: "the store reported a chunk record for a write without one".into(),
            }),
        }
    }

    /// Sessions a sweep should claim, most overdue first: open ones idle since before
    /// `idle_before` and finalizing ones whose lease ran out before `now`, from every shard.
    ///
    /// How overdue a session is, is how long ago it passed its bound (`idle_before -
    /// last_chunk_at`, or `now - lease_until`), which makes the two kinds comparable. Each of
    /// the `2 × shards` sources is sorted by it, so the merge is exact in two rounds at most:
    /// first every source is asked for about twice its fair share of `limit`; a source that
    /// filled its share and whose last entry is more overdue than the `limit`-th entry overall
    /// may hold more that belong in the answer, and only those are asked again for `limit`.
    /// Reads stay near `2 × limit` unless a shard is skewed.
    pub async fn due_sessions(
        &self,
        idle_before: Millis,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<SessionGuid>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let shards = self.scan().await?;
        let bound = |due: Due| match due {
            Due::Idle => idle_before,
            Due::LeaseExpired => now,
        };
        let overdue = |due: Due, e: &DueEntry| bound(due).0.saturating_sub(e.at.0);
        let sources: Vec<(u32, Due)> = (0..shards)
            .flat_map(|s| [(s, Due::Idle), (s, Due::LeaseExpired)])
            .collect();
        let share = limit
            .div_ceil(shards as usize)
            .saturating_mul(2)
            .clamp(1, limit);
        let mut pages = self.fetch(sources, share, &bound).await?;

        let mut seen: Vec<i64> = pages
            .iter()
            .flat_map(|((_, due), entries)| entries.iter().map(|e| overdue(*due, e)))
            .collect();
        let cut = if seen.len() < limit {
            None
        } else {
            let (_, nth, _) = seen.select_nth_unstable_by(limit - 1, |a, b| b.cmp(a));
            Some(*nth)
        };
        let again: Vec<(u32, Due)> = pages
            .iter()
            .filter(|((_, due), entries)| {
                share < limit
                    && entries.len() >= share
                    && entries
                        .last()
                        .is_some_and(|last| cut.is_none_or(|c| overdue(*due, last) > c))
            })
            .map(|(source, _)| *source)
            .collect();
        let refetched = again.len();
        if !again.is_empty() {
            let more = self.fetch(again, limit, &bound).await?;
            pages.retain(|(source, _)| !more.iter().any(|(s, _)| s == source));
            pages.extend(more);
        }

        let mut merged: Vec<(i64, SessionGuid)> = pages
            .into_iter()
            .flat_map(|((_, due), entries)| {
                entries.into_iter().map(move |e| (overdue(due, &e), e.guid))
            })
            .collect();
        merged.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        // A session re-stamped into another shard between two shard queries shows up twice.
        let mut unique = HashSet::new();
        let out: Vec<SessionGuid> = merged
            .into_iter()
            .filter(|(_, g)| unique.insert(g.clone()))
            .map(|(_, g)| g)
            .take(limit)
            .collect();
        tracing::debug!(
            shards,
            share,
            refetched,
            found = out.len(),
            "idle query over every shard"
        );
        Ok(out)
    }

    /// One page from each source, [`FANOUT`] at a time.
    async fn fetch(
        &self,
        sources: Vec<(u32, Due)>,
        limit: usize,
        bound: &(impl Fn(Due) -> Millis + Sync),
    ) -> Result<Vec<((u32, Due), Vec<DueEntry>)>> {
        stream::iter(sources)
            .map(|(shard, due)| async move {
                let entries = self.store.due(shard, due, bound(due), limit).await?;
                Ok::<_, IndexError>(((shard, due), entries))
            })
            .buffer_unordered(FANOUT)
            .try_collect()
            .await
    }
}

#[async_trait]
impl<S: SessionStore> SessionIndex for Driver<S> {
    async fn record_chunk(&self, chunk: &ChunkRecord, now: Millis) -> Result<Recorded> {
        let new = NewChunk {
            record: chunk,
            at: now,
        };
        let step = self
            .drive("record_chunk", &chunk.guid, Some(new), |before| {
                protocol::record(before, chunk, now)
            })
            .await?;
        Ok(match step {
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
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                contention_pause(attempt as u32 - 1).await;
            }
            let Some(before) = self.store.read(guid).await? else {
                return Ok(false);
            };
            // A tombstone is erasure's, not retention's, to remove: it expires by itself.
            if before.state.record.status == SessionStatus::Deleted {
                return Ok(false);
            }
            match self.store.remove(guid, &before.revision).await? {
                Written::Conflict => {
                    tracing::debug!(session_guid = %guid, attempt, "session changed under us; reading again")
                }
                _ => return Ok(true),
            }
        }
        Err(IndexError::Transient {
            op: "forget_session",
            source: "too much contention on one session; retry".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::conformance::{self, chunk};
    use super::super::memory::MemoryStore;
    use super::super::SessionStatus;
    use super::*;

    const LEASE: Duration = Duration::from_secs(60);
    const T0: Millis = Millis(1_700_000_000_000);

    fn at(secs: i64) -> Millis {
        Millis(T0.0 + secs * 1000)
    }

    fn guid(i: usize) -> SessionGuid {
        SessionGuid::parse(&format!("session-{i:04}")).unwrap()
    }

    fn index() -> Driver<MemoryStore> {
        Driver::over(MemoryStore::default())
    }

    async fn claimed(index: &Driver<MemoryStore>, g: &SessionGuid, now: Millis) -> Claim {
        match index.claim(g, ClaimMode::Force, now, LEASE).await.unwrap() {
            ClaimOutcome::Claimed(claim) => claim,
            other => panic!("not claimed: {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_memory_store_passes_the_conformance_suite() {
        let index = index();
        conformance::run_all(&index).await;
    }

    #[tokio::test]
    async fn resharding_strands_nothing_in_memory() {
        let store = Arc::new(MemoryStore::default());
        let four = Driver::over(store.clone()).with_shards(Shards::new(4));
        let eight = Driver::over(store.clone()).with_shards(Shards::new(8));
        let two = Driver::over(store.clone()).with_shards(Shards::new(2));
        conformance::resharding_strands_nothing(&four, &eight, &two).await;
        assert_eq!(store.shard_mark().await.unwrap(), Some(8));
    }

    #[tokio::test]
    async fn without_the_mark_a_smaller_count_would_strand_sessions() {
        // The control for the test above: what a 2-shard query alone misses.
        let index = index().with_shards(Shards::new(4));
        let guids: Vec<SessionGuid> = (0..24).map(guid).collect();
        for g in &guids {
            index
                .record_chunk(&chunk(g, "2025-05-02T12:00:00Z", "1"), at(0))
                .await
                .unwrap();
        }
        let mut in_two_shards = Vec::new();
        for shard in 0..2 {
            let page = index
                .store()
                .due(shard, Due::Idle, at(50), 1000)
                .await
                .unwrap();
            in_two_shards.extend(page.into_iter().map(|e| e.guid));
        }
        assert!(in_two_shards.len() < guids.len(), "{in_two_shards:?}");
        let two = index.with_shards(Shards::new(2));
        assert_eq!(
            two.due_sessions(at(50), at(50), 1000).await.unwrap().len(),
            24
        );
    }

    #[tokio::test]
    async fn every_write_stamps_the_shard_and_raises_the_mark_first() {
        let index = index().with_shards(Shards::new(8));
        let g = guid(1);
        assert_eq!(index.store().shard_mark().await.unwrap(), None);
        index
            .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
            .await
            .unwrap();
        assert_eq!(index.store().shard_mark().await.unwrap(), Some(8));
        let want = Some(Shards::new(8).of(&g));
        assert_eq!(index.store().state(&g).unwrap().shard, want);
        // A state stamped with another count (an older writer's) is re-stamped on any write.
        index.store().interfere(|s| s.shard = Some(77));
        let claim = claimed(&index, &g, at(1)).await;
        assert_eq!(index.store().state(&g).unwrap().shard, want);
        index.complete(&claim, "r.json", at(2)).await.unwrap();
        let done = index.store().state(&g).unwrap();
        assert_eq!(done.record.status, SessionStatus::Finalized);
        assert_eq!(done.shard, want, "finalized sessions keep their stamp");
    }

    #[tokio::test(start_paused = true)]
    async fn a_conflict_is_retried_with_a_fresh_read() {
        let index = index();
        let g = guid(2);
        index
            .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
            .await
            .unwrap();
        // Someone else records a chunk between our read and our write: the claim must be
        // decided again on the new version, not written from the stale read.
        index.store().interfere(|s| {
            s.record.version += 1;
            s.record.chunk_count += 1;
        });
        let claim = claimed(&index, &g, at(10)).await;
        assert_eq!(
            claim.version, 2,
            "the claim remembers the version it won on"
        );
        assert_eq!(index.store().counts(), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_chunk_landing_while_completing_reopens() {
        let index = index();
        let g = guid(3);
        index
            .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
            .await
            .unwrap();
        let claim = claimed(&index, &g, at(10)).await;
        index.store().interfere(|s| s.record.version += 1);
        assert_eq!(
            index.complete(&claim, "r.json", at(11)).await.unwrap(),
            Completion::Reopened
        );
        assert_eq!(
            index.session(&g).await.unwrap().unwrap().status,
            SessionStatus::Open
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_takeover_while_renewing_is_not_overwritten() {
        let index = index();
        let g = guid(4);
        index
            .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
            .await
            .unwrap();
        let claim = claimed(&index, &g, at(10)).await;
        // Between our read and our write another finalizer takes the session over.
        index
            .store()
            .interfere(|s| s.claim_token = Some("someone-else".into()));
        assert_eq!(index.renew(&claim, at(11), LEASE).await.unwrap(), None);
        assert_eq!(
            index.store().state(&g).unwrap().claim_token.as_deref(),
            Some("someone-else")
        );
        index.release(&claim, at(12)).await.unwrap();
        assert_eq!(
            index.session(&g).await.unwrap().unwrap().status,
            SessionStatus::Finalizing,
            "a stale release leaves the new claim alone"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn endless_contention_gives_up_as_transient_after_every_attempt() {
        let index = index();
        let g = guid(5);
        index
            .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(0))
            .await
            .unwrap();
        index.store().conflict_next(ATTEMPTS);
        let started = tokio::time::Instant::now();
        let err = index
            .claim(&g, ClaimMode::Force, at(1), LEASE)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{err}");
        assert!(err.to_string().contains("contention"), "{err}");
        assert_eq!(index.store().counts(), (1, ATTEMPTS));
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "backoff is bounded: {:?}",
            started.elapsed()
        );
        assert_eq!(
            index.session(&g).await.unwrap().unwrap().status,
            SessionStatus::Open
        );
        // One attempt fewer than the limit still lands.
        index.store().conflict_next(ATTEMPTS - 1);
        claimed(&index, &g, at(2)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_redelivered_chunk_is_known_even_after_a_conflict() {
        let index = index();
        let g = guid(6);
        let c = chunk(&g, "2025-05-02T12:00:00Z", "1");
        index.record_chunk(&c, at(0)).await.unwrap();
        index.store().conflict_next(2);
        let second = chunk(&g, "2025-05-02T12:00:10Z", "1");
        assert_eq!(
            index.record_chunk(&second, at(1)).await.unwrap(),
            Recorded::New { reopened: false }
        );
        assert_eq!(
            index.record_chunk(&c, at(2)).await.unwrap(),
            Recorded::AlreadyKnown
        );
        let s = index.session(&g).await.unwrap().unwrap();
        assert_eq!((s.chunk_count, s.version), (2, 2));
        assert_eq!(index.chunks(&g).await.unwrap().len(), 2);
    }

    /// Sessions with `last_chunk_at` = `at(t)` for each t, all in `shard` of `shards` when
    /// `skew` is set.
    async fn sessions_at(
        index: &Driver<MemoryStore>,
        times: impl IntoIterator<Item = i64>,
        skew: Option<u32>,
    ) -> Vec<(i64, SessionGuid)> {
        let mut made = Vec::new();
        let mut n = 0;
        for t in times {
            let g = loop {
                n += 1;
                let g = SessionGuid::parse(&format!("s{t}-{n}")).unwrap();
                if skew.is_none_or(|s| index.shards().of(&g) == s) {
                    break g;
                }
            };
            index
                .record_chunk(&chunk(&g, "2025-05-02T12:00:00Z", "1"), at(t))
                .await
                .unwrap();
            made.push((t, g));
        }
        made
    }

    #[tokio::test]
    async fn the_idle_query_merges_every_shard_oldest_first_within_the_limit() {
        let index = index().with_shards(Shards::new(8));
        let made = sessions_at(&index, 0..100, None).await;
        let idle = index.due_sessions(at(1000), at(1000), 10).await.unwrap();
        let oldest: Vec<SessionGuid> = made.iter().take(10).map(|(_, g)| g.clone()).collect();
        assert_eq!(idle, oldest);
        let all = index.due_sessions(at(50), at(1000), 1000).await.unwrap();
        assert_eq!(all.len(), 50, "only those idle since before the bound");
        assert!(index
            .due_sessions(at(1000), at(1000), 0)
            .await
            .unwrap()
            .is_empty());
    }

    #[tokio::test]
    async fn a_skewed_shard_is_read_again_so_the_merge_stays_exact() {
        let index = index().with_shards(Shards::new(8));
        // The ten oldest all live in shard 3; the rest are spread.
        let skewed = sessions_at(&index, 0..10, Some(3)).await;
        sessions_at(&index, 10..100, None).await;
        let idle = index.due_sessions(at(1000), at(1000), 10).await.unwrap();
        let want: Vec<SessionGuid> = skewed.into_iter().map(|(_, g)| g).collect();
        assert_eq!(
            idle, want,
            "a first round of 4 per shard would have missed 6"
        );
    }

    #[tokio::test]
    async fn expired_leases_and_idle_sessions_are_ranked_by_how_overdue_they_are() {
        let index = index().with_shards(Shards::new(4));
        let made = sessions_at(&index, [0, 10, 20], None).await;
        // The session idle since t=20 is claimed at t=30 and its finalizer dies: its lease
        // ran out at t=90, 410 s before now (t=500); the idle bound is t=200, so the others
        // are 200 and 190 s overdue.
        let dead = &made[2].1;
        claimed(&index, dead, at(30)).await;
        let order = index.due_sessions(at(200), at(500), 10).await.unwrap();
        assert_eq!(
            order,
            vec![dead.clone(), made[0].1.clone(), made[1].1.clone()]
        );
        let lease_until = index.session(dead).await.unwrap().unwrap().lease_until;
        assert_eq!(lease_until, Some(at(30).plus(LEASE)));
    }
}
