//! A sweep always answers: within its time budget when the index hangs, and early when the
//! index keeps failing. The index here is the real SQLite adapter behind a wrapper that makes
//! claims hang or fail, the two ways a cloud index goes wrong under a sweep.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use rrstitch::engine::SessionGuid;
use rrstitch::index::conformance::chunk;
use rrstitch::index::sqlite::SqliteIndex;
use rrstitch::index::{
    ChunkRecord, Claim, ClaimMode, ClaimOutcome, Completion, IndexError, Recorded, RejectRecord,
    Reopen, Result, SessionIndex, SessionPage, SessionRecord, Tombstoned,
};
use rrstitch::service::{Options, Service, Stop};
use rrstitch::time::Millis;

#[derive(Debug, Clone, Copy)]
enum Fault {
    Hang,
    Fail,
}

/// SQLite, except that claims hang forever or fail transiently.
#[derive(Debug)]
struct Faulty {
    inner: SqliteIndex,
    fault: Fault,
    claims: AtomicUsize,
}

#[async_trait]
impl SessionIndex for Faulty {
    async fn record_chunk_within(
        &self,
        chunk: &ChunkRecord,
        max_bytes: Option<u64>,
        now: Millis,
    ) -> Result<Recorded> {
        self.inner.record_chunk_within(chunk, max_bytes, now).await
    }
    async fn record_rejected(&self, r: &RejectRecord, now: Millis) -> Result<bool> {
        self.inner.record_rejected(r, now).await
    }
    async fn idle_sessions(
        &self,
        b: Millis,
        now: Millis,
        limit: usize,
    ) -> Result<Vec<SessionGuid>> {
        self.inner.idle_sessions(b, now, limit).await
    }
    async fn claim(
        &self,
        _: &SessionGuid,
        _: ClaimMode,
        _: Millis,
        _: Duration,
    ) -> Result<ClaimOutcome> {
        self.claims.fetch_add(1, Ordering::SeqCst);
        match self.fault {
            Fault::Hang => std::future::pending().await,
            Fault::Fail => Err(IndexError::Transient {
                op: "claim",
                source: "deadline exceeded".into(),
            }),
        }
    }
    async fn chunks(&self, guid: &SessionGuid) -> Result<Vec<ChunkRecord>> {
        self.inner.chunks(guid).await
    }
    async fn complete(&self, c: &Claim, r: &str, now: Millis) -> Result<Completion> {
        self.inner.complete(c, r, now).await
    }
    async fn renew(&self, c: &Claim, now: Millis, lease: Duration) -> Result<Option<Millis>> {
        self.inner.renew(c, now, lease).await
    }
    async fn release(&self, c: &Claim, now: Millis) -> Result<()> {
        self.inner.release(c, now).await
    }
    async fn session(&self, guid: &SessionGuid) -> Result<Option<SessionRecord>> {
        self.inner.session(guid).await
    }
    async fn sessions(&self, limit: usize) -> Result<Vec<SessionRecord>> {
        self.inner.sessions(limit).await
    }
    async fn rejected(&self, limit: usize) -> Result<Vec<RejectRecord>> {
        self.inner.rejected(limit).await
    }
    async fn rejected_since(&self, since: Millis, limit: usize) -> Result<Vec<RejectRecord>> {
        self.inner.rejected_since(since, limit).await
    }
    async fn counts(&self, now: Millis) -> Result<rrstitch::index::SessionCounts> {
        self.inner.counts(now).await
    }
    async fn tombstone(&self, g: &SessionGuid, now: Millis, ttl: Duration) -> Result<Tombstoned> {
        self.inner.tombstone(g, now, ttl).await
    }
    async fn forget_chunks(&self, guid: &SessionGuid) -> Result<u64> {
        self.inner.forget_chunks(guid).await
    }
    async fn rejected_of(&self, guid: &SessionGuid) -> Result<Vec<RejectRecord>> {
        self.inner.rejected_of(guid).await
    }
    async fn forget_rejected(&self, guid: &SessionGuid) -> Result<u64> {
        self.inner.forget_rejected(guid).await
    }
    async fn forget_session(&self, guid: &SessionGuid) -> Result<bool> {
        self.inner.forget_session(guid).await
    }
    async fn sessions_page(&self, after: Option<&str>, limit: usize) -> Result<SessionPage> {
        self.inner.sessions_page(after, limit).await
    }
    async fn reopen(&self, guid: &SessionGuid, now: Millis) -> Result<Reopen> {
        self.inner.reopen(guid, now).await
    }
    async fn bookmark(&self, name: &str) -> Result<Option<String>> {
        self.inner.bookmark(name).await
    }
    async fn set_bookmark(&self, name: &str, value: Option<&str>) -> Result<()> {
        self.inner.set_bookmark(name, value).await
    }
}

/// Ten idle sessions in a faulty index.
async fn service(fault: Fault, options: Options) -> (tempfile::TempDir, Arc<Faulty>, Service) {
    let dir = tempfile::tempdir().unwrap();
    let index = Arc::new(Faulty {
        inner: SqliteIndex::open(dir.path().join("index.sqlite")).unwrap(),
        fault,
        claims: AtomicUsize::new(0),
    });
    for i in 0..10 {
        let guid = SessionGuid::parse(&format!("session-{i}")).unwrap();
        index
            .record_chunk(&chunk(&guid, "2025-05-02T12:00:00Z", "1"), Millis(0))
            .await
            .unwrap();
    }
    let options = Options {
        idle: Duration::ZERO,
        ..options
    };
    let svc = support::service_on(index.clone(), &dir.path().join("results"), options);
    (dir, index, svc)
}

#[tokio::test]
async fn a_hanging_index_costs_a_sweep_its_budget_and_no_more() {
    let budget = Duration::from_millis(1500);
    let (_dir, index, svc) = service(
        Fault::Hang,
        Options {
            sweep_budget: budget,
            session_parallelism: 2,
            ..Options::default()
        },
    )
    .await;
    let started = Instant::now();
    let summary = svc.sweep().await.expect("a sweep answers");
    let took = started.elapsed();
    println!(
        "FIGURE sweep.hanging_index_seconds: {:.2}",
        took.as_secs_f64()
    );
    assert!(
        took >= budget && took < budget + Duration::from_millis(500),
        "{took:?}"
    );
    assert_eq!(summary.considered, 10);
    assert_eq!(summary.deferred, 10, "{summary:?}");
    assert_eq!(summary.stopped, Some(Stop::Budget));
    assert!(summary.finalized.is_empty());
    assert_eq!(
        index.claims.load(Ordering::SeqCst),
        2,
        "only the first two were tried"
    );
}

#[tokio::test]
async fn a_failing_index_trips_the_breaker() {
    let (_dir, index, svc) = service(
        Fault::Fail,
        Options {
            session_parallelism: 1,
            ..Options::default()
        },
    )
    .await;
    let summary = svc.sweep().await.expect("a sweep answers");
    assert_eq!(
        summary.failed.len(),
        rrstitch::service::finalize::BREAKER,
        "{summary:?}"
    );
    assert_eq!(summary.deferred, 10 - rrstitch::service::finalize::BREAKER);
    assert_eq!(summary.stopped, Some(Stop::IndexFailing));
    assert_eq!(
        index.claims.load(Ordering::SeqCst),
        rrstitch::service::finalize::BREAKER,
        "no claim after the breaker tripped"
    );
}
