//! The checks every cloud's storage and index adapters take beyond the conformance suites
//! (paging, unreachable endpoints, a missing bucket), written once so the S3/DynamoDB and
//! GCS/Firestore tests (`aws_backends`, `gcp_backends`) are one suite run per cloud: each
//! test only makes its cloud's handles and says what its cloud names differently.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rrstitch::engine::SessionGuid;
use rrstitch::index::{self, SessionIndex};
use rrstitch::storage::{Encoding, ObjectStore, Precondition, StorageError};

/// The index conformance suite on one handle, claims raced across two, and resharding from
/// four shards to eight and back to two, each a handle on one fresh table.
pub async fn index_conforms(
    index: &dyn SessionIndex,
    other: &dyn SessionIndex,
    [four, eight, two]: [&dyn SessionIndex; 3],
) {
    index::conformance::run_all(index).await;
    index::conformance::claims_are_exclusive_across_handles(index, other).await;
    index::conformance::resharding_strands_nothing(four, eight, two).await;
}

/// Puts a segment (`Content-Encoding: gzip`) and a plain result (no encoding) with `body`,
/// handing each name and encoding to `check`, which reads back what the cloud stored.
pub async fn put_segment_and_result(
    store: &dyn ObjectStore,
    body: Bytes,
    mut check: impl FnMut(&str, Encoding),
) {
    for (name, encoding) in [
        ("g/x/00000.json.gz", Encoding::Gzip),
        ("g.json", Encoding::Identity),
    ] {
        store
            .put_encoded(name, body.clone(), Precondition::None, encoding)
            .await
            .unwrap();
        check(name, encoding);
    }
}

/// Puts `count` objects (more than the API's page) under `p/` and lists them all back.
pub async fn lists_past_one_page(store: &dyn ObjectStore, count: usize) {
    for i in 0..count {
        store
            .put(
                &format!("p/{i:05}.json"),
                Bytes::from_static(b"{}"),
                Precondition::None,
            )
            .await
            .unwrap();
    }
    let listed = store.list("p/").await.unwrap();
    assert_eq!(listed.len(), count);
    assert_eq!(listed[count - 1].name, format!("p/{:05}.json", count - 1));
    // A page larger than what the server answers at once is still one page, and the next
    // one starts right after it.
    let first = store.list_page("p/", None, count - 10).await.unwrap();
    assert_eq!(first.objects.len(), count - 10);
    assert_eq!(first.objects[..], listed[..count - 10]);
    let rest = store
        .list_page("p/", first.next.as_deref(), count)
        .await
        .unwrap();
    assert_eq!(rest.objects[..], listed[count - 10..]);
    assert_eq!(rest.next, None, "the last page says so");
}

/// A store and an index whose endpoint nothing listens on (made since `started`) fail with
/// transient errors, and within a minute.
pub async fn unreachable_is_transient_and_bounded(
    store: &dyn ObjectStore,
    index: &dyn SessionIndex,
    started: Instant,
) {
    let err = store.get("x.json", 10).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let err = index
        .session(&SessionGuid::parse("g").unwrap())
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// What a store on a bucket that does not exist answers to a bucket check, a listing and a
/// write, for the caller to check each names the bucket as missing.
pub async fn missing_bucket_errors(store: &dyn ObjectStore) -> [StorageError; 3] {
    [
        store.check_bucket().await.unwrap_err(),
        store.list("").await.unwrap_err(),
        store
            .put("r.json", Bytes::from_static(b"{}"), Precondition::None)
            .await
            .unwrap_err(),
    ]
}
