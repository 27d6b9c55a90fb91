//! The S3 storage adapter and the DynamoDB index adapter against moto, through the same
//! conformance suites the local adapters pass and the same cloud checks as GCS and Firestore
//! (`rrstitch_tests::backends`).

use bytes::Bytes;
use rrstitch::index::dynamodb::DynamoIndex;
use rrstitch_tests::aws::s3;
use rrstitch_tests::{backends, Moto};

#[tokio::test]
async fn s3_store_conforms() {
    let moto = Moto::start();
    moto.create_bucket("conformance");
    let store = s3(&moto.endpoint, "conformance").await;
    rrstitch::storage::conformance::run_all(&store).await;
}

/// A segment is stored `Content-Encoding: gzip`, so a browser fetching it gets JSON; a plain
/// result carries no encoding.
#[tokio::test]
async fn s3_stores_segments_gzip_encoded() {
    let moto = Moto::start();
    moto.create_bucket("segments");
    let store = s3(&moto.endpoint, "segments").await;
    backends::put_segment_and_result(&store, Bytes::from_static(b"[]"), |name, encoding| {
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
    })
    .await;
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
    let store = s3(&moto.endpoint, "pages").await;
    // S3 pages at 1,000 keys.
    backends::lists_past_one_page(&store, 1_100).await;
}

#[tokio::test]
async fn dynamodb_index_conforms() {
    let moto = Moto::start();
    let index = DynamoIndex::on_emulator("rrstitch", &moto.endpoint).await;
    index.create_table().await.unwrap();
    let other = DynamoIndex::on_emulator("rrstitch", &moto.endpoint).await;
    let endpoint = moto.endpoint.as_str();
    let sharded = |n| async move {
        DynamoIndex::on_emulator("resharded", endpoint)
            .await
            .with_shards(rrstitch::index::Shards::new(n))
    };
    let (four, eight, two) = (sharded(4).await, sharded(8).await, sharded(2).await);
    four.create_table().await.unwrap();
    backends::index_conforms(&index, &other, [&four, &eight, &two]).await;
}

#[tokio::test]
async fn unreachable_endpoints_are_transient_and_bounded() {
    let port = rrstitch_tests::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    let store = s3(&endpoint, "b").await;
    let index = DynamoIndex::on_emulator("t", &endpoint).await;
    backends::unreachable_is_transient_and_bounded(&store, &index, started).await;
}

/// A missing bucket is named as such, not as a missing object.
#[tokio::test]
async fn a_missing_s3_bucket_is_said_to_be_missing() {
    let moto = Moto::start();
    let store = s3(&moto.endpoint, "never-made").await;
    for r in backends::missing_bucket_errors(&store).await {
        assert_eq!(
            r.to_string(),
            "bucket \"s3://never-made\" does not exist",
            "{r:?}"
        );
    }
}
