//! The counts `rrstitch status` shows, from every shard's index ranges.
//!
//! Each number is a count query over a range the sweep already reads (or the tombstones'
//! range beside them), and each "oldest" is the first entry of one: six queries per shard,
//! run [`super::FANOUT`] at a time, whatever the number of sessions.

use futures::stream::{self, StreamExt, TryStreamExt};

use super::Driver;
use crate::index::store::{Due, DueEntry, SessionStore};
use crate::index::{IndexError, Result, SessionCounts};
use crate::time::Millis;

/// One shard's share of the counts.
#[derive(Default)]
struct ShardCounts {
    open: u64,
    oldest_open: Option<DueEntry>,
    finalizing: u64,
    past_due: u64,
    oldest_past_due: Option<DueEntry>,
    tombstones: u64,
}

impl<S: SessionStore> Driver<S> {
    pub(super) async fn count_sessions(&self, now: Millis) -> Result<SessionCounts> {
        let shards = self.scan().await?;
        let per_shard: Vec<ShardCounts> = stream::iter(0..shards)
            .map(|shard| self.count_shard(shard, now))
            .buffer_unordered(super::FANOUT)
            .try_collect()
            .await?;
        let earliest = |a: Option<DueEntry>, b: Option<DueEntry>| match (a, b) {
            (Some(a), Some(b)) => Some(if (b.at, &b.guid) < (a.at, &a.guid) {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        };
        Ok(per_shard
            .into_iter()
            .fold(SessionCounts::default(), |total, s| SessionCounts {
                open: total.open + s.open,
                oldest_open: earliest(total.oldest_open, s.oldest_open),
                finalizing: total.finalizing + s.finalizing,
                leases_past_due: total.leases_past_due + s.past_due,
                oldest_past_due: earliest(total.oldest_past_due, s.oldest_past_due),
                tombstones: total.tombstones + s.tombstones,
            }))
    }

    async fn count_shard(&self, shard: u32, now: Millis) -> Result<ShardCounts> {
        let store = &self.store;
        let (open, oldest_open, finalizing, past_due, oldest_past_due, tombstones) = tokio::try_join!(
            store.count_due(shard, Due::Idle, Millis::LATEST),
            store.due(shard, Due::Idle, Millis::LATEST, 1),
            store.count_due(shard, Due::LeaseExpired, Millis::LATEST),
            store.count_due(shard, Due::LeaseExpired, now),
            store.due(shard, Due::LeaseExpired, now, 1),
            store.count_due(shard, Due::Tombstone, Millis::LATEST),
        )?;
        Ok::<_, IndexError>(ShardCounts {
            open,
            oldest_open: oldest_open.into_iter().next(),
            finalizing,
            past_due,
            oldest_past_due: oldest_past_due.into_iter().next(),
            tombstones,
        })
    }
}
