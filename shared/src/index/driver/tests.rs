//! The driver over the in-memory store: the conformance suite, and what only a store that can
//! be made to interfere (conflicts, takeovers, skewed shards) shows.

use std::sync::Arc;

use std::time::Duration;

use super::retry::ATTEMPTS;
use super::Driver;
use crate::engine::SessionGuid;
use crate::index::conformance::{self, chunk};
use crate::index::memory::MemoryStore;
use crate::index::shard::Shards;
use crate::index::store::{Due, SessionStore};
use crate::index::{
    Claim, ClaimMode, ClaimOutcome, Completion, Recorded, SessionIndex, SessionStatus,
};
use crate::time::Millis;

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
