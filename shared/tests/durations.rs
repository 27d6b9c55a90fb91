//! Durations too large for a millisecond count: a "forever" tombstone, lease, idle time or
//! sweep budget must mean "a very long time", never wrap into the past or panic. Options are
//! set directly here, past what configuration accepts, to hold the service to saturation.

mod support;

use std::time::Duration;

use rrstitch::engine::SessionGuid;
use rrstitch::index::{ClaimMode, ClaimOutcome};
use rrstitch::service::{EraseRequest, IngestOutcome, Options};
use support::{env_with, Env, GUID};

/// 999,999,999,999 days, the "forever": its milliseconds do not fit an i64.
const FOREVER: Duration = Duration::from_secs(999_999_999_999 * 86_400);

/// A service under `options` whose bucket holds the fixture's chunks, ingested when `ingest`.
async fn with_fixture(options: Options, ingest: bool) -> (Env, Vec<String>) {
    let e = env_with(options, None);
    let names = e.copy_fixture(0);
    if ingest {
        e.ingest_all(&names).await;
    }
    (e, names)
}

#[tokio::test]
async fn a_forever_tombstone_still_refuses_a_late_chunk() {
    let (e, names) = with_fixture(
        Options {
            tombstone_ttl: FOREVER,
            ..Options::default()
        },
        false,
    )
    .await;
    e.svc
        .erase(&EraseRequest {
            session_guids: vec![GUID.to_owned()],
            keep_chunks: true,
        })
        .await
        .unwrap();
    e.advance(86_400);
    let outcomes = e.ingest_all(&names[..1]).await;
    assert!(
        matches!(outcomes[0], IngestOutcome::DeletedSession { .. }),
        "a late chunk of an erased session was taken in: {outcomes:?}"
    );
}

#[tokio::test]
async fn a_huge_lease_is_not_expired_at_once() {
    let (e, _) = with_fixture(
        Options {
            lease: FOREVER,
            ..Options::default()
        },
        true,
    )
    .await;
    let guid = SessionGuid::parse(GUID).unwrap();
    let now = (e.svc.clock)();
    let first = e
        .svc
        .index
        .claim(&guid, ClaimMode::Force, now, FOREVER)
        .await
        .unwrap();
    assert!(matches!(first, ClaimOutcome::Claimed(_)), "{first:?}");
    e.advance(3600);
    let second = e
        .svc
        .index
        .claim(&guid, ClaimMode::Force, (e.svc.clock)(), FOREVER)
        .await
        .unwrap();
    assert!(
        matches!(second, ClaimOutcome::Busy { .. }),
        "a second finalizer took over a live lease: {second:?}"
    );
}

#[tokio::test]
async fn a_huge_idle_time_makes_no_session_idle() {
    let (e, _) = with_fixture(
        Options {
            idle: FOREVER,
            ..Options::default()
        },
        true,
    )
    .await;
    e.advance(86_400);
    let summary = e.svc.sweep().await.unwrap();
    assert_eq!(summary.considered, 0, "{summary:?}");
}

#[tokio::test]
async fn a_huge_sweep_budget_sweeps_and_reconciles_without_panicking() {
    let (mut e, names) = with_fixture(
        Options {
            idle: Duration::from_secs(60),
            sweep_budget: Duration::MAX,
            ..Options::default()
        },
        true,
    )
    .await;
    e.advance(61);
    let summary = e.svc.sweep().await.unwrap();
    assert_eq!(summary.finalized.len(), 1, "{summary:?}");
    e.svc.options.chunk_bucket = Some(rrstitch::storage::StorageUrl::Local(e.bucket.clone()));
    let reconciled = e.svc.reconcile(None).await.unwrap();
    assert_eq!(reconciled.candidates, names.len() as u64, "{reconciled:?}");
}
