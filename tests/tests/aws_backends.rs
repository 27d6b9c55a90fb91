//! The S3 storage adapter and the DynamoDB index adapter against moto, through the same
//! conformance suites the local adapters pass.

use bytes::Bytes;
use rrstitch::index::dynamodb::DynamoIndex;
use rrstitch::storage::s3::S3Store;
use rrstitch::storage::{Encoding, ObjectStore, Precondition, StorageUrl};
use rrstitch_tests::Moto;

#[tokio::test]
async fn s3_store_conforms() {
    let moto = Moto::start();
    moto.create_bucket("conformance");
    let url = StorageUrl::S3 {
        bucket: "conformance".into(),
    };
    let store = S3Store::on_emulator(url, &moto.endpoint).await.unwrap();
    rrstitch::storage::conformance::run_all(&store).await;
}

/// A segment is stored `Content-Encoding: gzip`, so a browser fetching it gets JSON; a plain
/// result carries no encoding.
#[tokio::test]
async fn s3_stores_segments_gzip_encoded() {
    let moto = Moto::start();
    moto.create_bucket("segments");
    let url = StorageUrl::S3 {
        bucket: "segments".into(),
    };
    let store = S3Store::on_emulator(url, &moto.endpoint).await.unwrap();
    for (name, encoding) in [
        ("g/x/00000.json.gz", Encoding::Gzip),
        ("g.json", Encoding::Identity),
    ] {
        store
            .put_encoded(
                name,
                Bytes::from_static(b"[]"),
                Precondition::None,
                encoding,
            )
            .await
            .unwrap();
        let headers = head(&moto.endpoint, &format!("/segments/{name}"));
        assert!(
            headers.contains("content-type: application/json"),
            "{headers}"
        );
        match encoding.header() {
            Some(e) => assert!(
                headers.contains(&format!("content-encoding: {e}")),
                "{headers}"
            ),
            None => assert!(!headers.contains("content-encoding"), "{headers}"),
        }
    }
}

/// A HEAD request's response headers, lower-cased. Raw, because an HTTP client that decodes
/// gzip (ureq) drops the very header this checks. moto checks that a request is signed, not
/// the signature.
fn head(endpoint: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let host = endpoint.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "HEAD {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nAuthorization: AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response.to_ascii_lowercase()
}

#[tokio::test]
async fn s3_lists_past_one_page() {
    let moto = Moto::start();
    moto.create_bucket("pages");
    let url = StorageUrl::S3 {
        bucket: "pages".into(),
    };
    let store = S3Store::on_emulator(url, &moto.endpoint).await.unwrap();
    // S3 pages at 1,000 keys.
    for i in 0..1_100 {
        store
            .put(
                &format!("p/{i:05}.json"),
                bytes::Bytes::from_static(b"{}"),
                rrstitch::storage::Precondition::None,
            )
            .await
            .unwrap();
    }
    let listed = store.list("p/").await.unwrap();
    assert_eq!(listed.len(), 1_100);
    assert_eq!(listed[1_099].name, "p/01099.json");
}

#[tokio::test]
async fn dynamodb_index_conforms() {
    let moto = Moto::start();
    let index = DynamoIndex::on_emulator("rrstitch", &moto.endpoint).await;
    index.create_table().await.unwrap();
    rrstitch::index::conformance::run_all(&index).await;
    let other = DynamoIndex::on_emulator("rrstitch", &moto.endpoint).await;
    rrstitch::index::conformance::claims_are_exclusive_across_handles(&index, &other).await;
    let endpoint = moto.endpoint.as_str();
    let sharded = |n| async move {
        DynamoIndex::on_emulator("resharded", endpoint)
            .await
            .with_shards(rrstitch::index::Shards::new(n))
    };
    let (four, eight, two) = (sharded(4).await, sharded(8).await, sharded(2).await);
    four.create_table().await.unwrap();
    rrstitch::index::conformance::resharding_strands_nothing(&four, &eight, &two).await;
}

#[tokio::test]
async fn unreachable_endpoints_are_transient_and_bounded() {
    let port = rrstitch_tests::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let store = S3Store::on_emulator(StorageUrl::S3 { bucket: "b".into() }, &endpoint)
        .await
        .unwrap();
    let err = store.get("x.json", 10).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let index = DynamoIndex::on_emulator("t", &endpoint).await;
    let guid = rrstitch::engine::SessionGuid::parse("g").unwrap();
    let err = rrstitch::index::SessionIndex::session(&index, &guid)
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// A missing bucket is named as such, not as a missing object.
#[tokio::test]
async fn a_missing_s3_bucket_is_said_to_be_missing() {
    let moto = Moto::start();
    let store = S3Store::on_emulator(
        StorageUrl::S3 {
            bucket: "never-made".into(),
        },
        &moto.endpoint,
    )
    .await
    .unwrap();
    let missing = |r: rrstitch::storage::StorageError| {
        assert_eq!(
            r.to_string(),
            "bucket \"s3://never-made\" does not exist",
            "{r:?}"
        );
    };
    missing(store.check_bucket().await.unwrap_err());
    missing(store.list("").await.unwrap_err());
    missing(
        store
            .put(
                "r.json",
                bytes::Bytes::from_static(b"{}"),
                rrstitch::storage::Precondition::None,
            )
            .await
            .unwrap_err(),
    );
}
