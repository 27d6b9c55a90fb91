//! The idle query: which sessions a sweep should claim, merged from every shard.
//!
//! Its own module because the merge is the driver's one piece of real arithmetic: each shard
//! and due kind is a sorted source, read concurrently, and the answer must be the exact
//! most-overdue `limit` across them without reading every source whole.

use std::collections::HashSet;

use futures::stream::{self, StreamExt, TryStreamExt};

use super::Driver;
use crate::engine::SessionGuid;
use crate::index::store::{Due, DueEntry, SessionStore};
use crate::index::{IndexError, Result};
use crate::time::Millis;

/// Shard queries in flight at once for one idle query or listing: enough to hide the round
/// trips of the default 64 shards × 2 queries (8 rounds), few enough not to burst a
/// backend's connection.
pub const FANOUT: usize = 16;

impl<S: SessionStore> Driver<S> {
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
            Due::LeaseExpired | Due::Tombstone => now,
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
