//! The GCS storage adapter against fake-gcs-server and the Firestore index adapter against the
//! official Cloud Firestore emulator, through the same conformance suites the local and AWS
//! adapters pass and the same cloud checks as S3 and DynamoDB (`rrstitch_tests::backends`).

use bytes::Bytes;
use rrstitch::index::firestore::FirestoreIndex;
use rrstitch::storage::gcs::GcsStore;
use rrstitch::storage::{ObjectStore, Precondition, StorageUrl};
use rrstitch_tests::emulators::percent;
use rrstitch_tests::{backends, FakeGcs, Firestore};

fn gs(bucket: &str) -> StorageUrl {
    StorageUrl::Gcs {
        bucket: bucket.into(),
    }
}

#[tokio::test]
async fn gcs_store_conforms() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("conformance");
    let store = GcsStore::on_emulator(gs("conformance"), &gcs.endpoint).unwrap();
    rrstitch::storage::conformance::run_all(&store).await;
}

#[tokio::test]
async fn gcs_lists_past_one_page() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("pages");
    let store = GcsStore::on_emulator(gs("pages"), &gcs.endpoint).unwrap();
    // The JSON API pages at 1,000 objects.
    backends::lists_past_one_page(&store, 1_050).await;
}

/// A segment is stored `Content-Encoding: gzip`, so a browser fetching it gets JSON; a plain
/// result carries no encoding.
#[tokio::test]
async fn gcs_stores_segments_gzip_encoded() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("segments");
    let store = GcsStore::on_emulator(gs("segments"), &gcs.endpoint).unwrap();
    let gz = [
        0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    backends::put_segment_and_result(&store, Bytes::copy_from_slice(&gz), |name, encoding| {
        let url = format!("{}/storage/v1/b/segments/o/{}", gcs.endpoint, percent(name));
        let meta: serde_json::Value = ureq::get(&url).call().unwrap().into_json().unwrap();
        // fake-gcs-server keeps no content type from a multipart upload; only the encoding
        // is checked here.
        match encoding.header() {
            Some(e) => assert_eq!(meta["contentEncoding"], e, "{meta}"),
            None => assert!(
                meta["contentEncoding"].as_str().unwrap_or("").is_empty(),
                "{meta}"
            ),
        }
    })
    .await;
}

/// A result bigger than one part goes up as a resumable upload and arrives whole.
#[tokio::test]
async fn gcs_streams_a_multi_part_object() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("big");
    let store = GcsStore::on_emulator(gs("big"), &gcs.endpoint).unwrap();
    let piece: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut writer = store
        .writer("big.json", Precondition::DoesNotExist)
        .await
        .unwrap();
    for _ in 0..20 {
        writer.write(Bytes::from(piece.clone())).await.unwrap();
    }
    let meta = writer.finish().await.unwrap();
    assert_eq!(meta.size, 20_000_000);
    let body = gcs.download("big", "big.json").expect("uploaded");
    assert_eq!(body.len(), 20_000_000);
    assert!(body.chunks(1_000_000).all(|c| c == piece.as_slice()));
}

#[tokio::test]
async fn firestore_index_conforms() {
    let fs = Firestore::start();
    let index = FirestoreIndex::on_emulator(&fs.host, &fs.project, "rrstitch_sessions");
    let other = FirestoreIndex::on_emulator(&fs.host, &fs.project, "rrstitch_sessions");
    let sharded = |n| {
        FirestoreIndex::on_emulator(&fs.host, &fs.project, "resharded")
            .with_shards(rrstitch::index::Shards::new(n))
    };
    let (four, eight, two) = (sharded(4), sharded(8), sharded(2));
    backends::index_conforms(&index, &other, [&four, &eight, &two]).await;
}

#[tokio::test]
async fn unreachable_backends_are_transient_and_bounded() {
    let port = rrstitch_tests::free_port();
    let started = std::time::Instant::now();
    let store = GcsStore::on_emulator(gs("b"), &format!("127.0.0.1:{port}")).unwrap();
    let index = FirestoreIndex::on_emulator(&format!("127.0.0.1:{port}"), "p", "s");
    backends::unreachable_is_transient_and_bounded(&store, &index, started).await;
}

/// A missing bucket is named as such, not as a missing object.
#[tokio::test]
async fn a_missing_gcs_bucket_is_said_to_be_missing() {
    let gcs = FakeGcs::start();
    let store = GcsStore::on_emulator(gs("never-made"), &gcs.endpoint).unwrap();
    for r in backends::missing_bucket_errors(&store).await {
        assert!(
            matches!(&r, rrstitch::storage::StorageError::NoSuchBucket { bucket } if bucket == "gs://never-made"),
            "{r:?}"
        );
        assert_eq!(r.to_string(), "bucket \"gs://never-made\" does not exist");
    }
    gcs.create_bucket("made");
    let there = GcsStore::on_emulator(gs("made"), &gcs.endpoint).unwrap();
    there
        .check_bucket()
        .await
        .expect("an existing bucket passes");
}
