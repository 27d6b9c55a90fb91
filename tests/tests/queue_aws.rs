//! Queue mode on AWS, end to end through the real binaries and moto's SQS: chunks land in S3
//! and are ingested by the real `rrstitch-ingest` in Lambda mode; the real `rrstitch-finalize`
//! in queue mode dispatches on a scheduled event (sending to moto's queue through the SDK), and
//! the test plays the event source mapping — receive a batch, invoke the same binary with the
//! SQS event, delete what its `batchItemFailures` does not name — since moto's Lambda cannot
//! run our binary. A duplicate message changes nothing, an unknown session and junk are
//! acknowledged, and a worker whose S3 is unreachable reports the message as a batch item
//! failure, so it comes back after the visibility timeout and a healthy worker finalizes it.

use std::collections::BTreeSet;
use std::path::PathBuf;

use bytes::Bytes;
use rrstitch::engine::SessionGuid;
use rrstitch::index::dynamodb::DynamoIndex;
use rrstitch::index::{SessionIndex, SessionStatus};
use rrstitch::storage::s3::S3Store;
use rrstitch::storage::{ObjectStore, Precondition, StorageUrl};
use rrstitch_tests::bins;
use rrstitch_tests::lambda::RuntimeApi;
use rrstitch_tests::procs::Group;
use rrstitch_tests::{sqs, Moto};
use serde_json::{json, Value};

const GUID: &str = "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33";
const SMALL: [&str; 3] = ["queue-a", "queue-b", "queue-c"];
/// Seconds a received message stays hidden on the test queue: short, so a failed one is back
/// soon, yet longer than the broken worker takes to give up on S3 (about 5 s of SDK retries).
const VISIBILITY: u32 = 10;

fn fixture() -> PathBuf {
    rrstitch_tests::repo_root().join("fixtures/rrweb-form")
}

fn small_chunk(guid: &str) -> Vec<u8> {
    format!(
        r#"{{"session_guid":"{guid}","session_data":[{{"type":4,"timestamp":1746187850000,"data":{{"href":"https://example.com/","width":800,"height":600}}}},{{"type":3,"timestamp":1746187851000,"data":{{"source":1}}}}],"environment":"production"}}"#
    )
    .into_bytes()
}

/// An S3 notification as Lambda delivers it; keys form-URL-encoded.
fn s3_event(keys: &[String]) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .map(|key| {
            let encoded: String = key
                .bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                        (b as char).to_string()
                    }
                    _ => format!("%{b:02X}"),
                })
                .collect();
            json!({
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": "chunks", "arn": "arn:aws:s3:::chunks"},
                    "object": {"key": encoded, "size": 100, "eTag": format!("etag-{key}")}
                }
            })
        })
        .collect();
    json!({ "Records": records })
}

fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2025-05-02T12:30:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/rrstitch-sweep"],
        "detail": {}
    })
}

fn lambda(name: &str, api: &RuntimeApi, env: &[(String, String)]) -> Group {
    let mut all = env.to_vec();
    all.extend(api.env(name));
    Group::spawn(name, bins::command(name, &all))
}

async fn status(index: &DynamoIndex, guid: &str) -> Option<(SessionStatus, u64)> {
    index
        .session(&SessionGuid::parse(guid).unwrap())
        .await
        .unwrap()
        .map(|s| (s.status, s.finalize_count))
}

/// Polls as the event source mapping would until the queue stays empty; every poll's result.
async fn drain(moto: &Moto, queue: &str, api: &RuntimeApi) -> Vec<sqs::Poll> {
    let mut polls = Vec::new();
    loop {
        let poll = sqs::poll_once(moto, queue, api, 1).await;
        if poll.delivered == 0 {
            return polls;
        }
        polls.push(poll);
    }
}

#[tokio::test]
async fn dispatched_sessions_reach_finalize_through_sqs_and_are_finalized_once() {
    let moto = Moto::start();
    moto.create_bucket("chunks");
    moto.create_bucket("results");
    let index = DynamoIndex::on_emulator("rrstitch", &moto.endpoint).await;
    index.create_table().await.unwrap();
    let queue = sqs::create_queue(&moto, "rrstitch-finalize-jobs", VISIBILITY);
    let s3 = |bucket: &str| {
        S3Store::on_emulator(
            StorageUrl::S3 {
                bucket: bucket.into(),
            },
            &moto.endpoint,
        )
    };
    let chunks = s3("chunks").await.unwrap();
    let results = s3("results").await.unwrap();
    let mut env = moto.env();
    env.extend(
        [
            ("RRSTITCH_INDEX", "dynamodb"),
            ("RRSTITCH_DYNAMODB_TABLE", "rrstitch"),
            ("RRSTITCH_CHUNKS", "s3://chunks"),
            ("RRSTITCH_RESULTS", "s3://results"),
            ("RRSTITCH_IDLE_SECS", "0"),
            ("RRSTITCH_LOG_FORMAT", "json"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    let mut queue_env = env.clone();
    queue_env.push(("RRSTITCH_FINALIZE_MODE".into(), "queue".into()));
    queue_env.push(("RRSTITCH_FINALIZE_QUEUE".into(), queue.clone()));

    let mut names: Vec<String> = std::fs::read_dir(fixture().join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in &names {
        let body = std::fs::read(fixture().join("chunks").join(n)).unwrap();
        chunks
            .put(n, Bytes::from(body), Precondition::None)
            .await
            .unwrap();
    }
    for (i, guid) in SMALL.iter().enumerate() {
        let name = format!("2025-05-02T12:40:0{i}.000000+0000.json");
        chunks
            .put(&name, Bytes::from(small_chunk(guid)), Precondition::None)
            .await
            .unwrap();
        names.push(name);
    }
    let ingest_api = RuntimeApi::start().await;
    let _ingest = lambda("rrstitch-ingest", &ingest_api, &env);
    let reply = ingest_api
        .invoke(s3_event(&names))
        .await
        .expect("ingest succeeds");
    let outcomes = reply["objects"].as_array().unwrap();
    assert_eq!(outcomes.len(), 9, "{reply}");
    assert!(
        outcomes.iter().all(|o| o["outcome"] == "recorded"),
        "{reply}"
    );

    let api = RuntimeApi::start().await;
    let worker = lambda("rrstitch-finalize", &api, &queue_env);

    // The scheduled event dispatches: one message per idle session, nothing stitched.
    let dispatched = api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(dispatched["status"], 200, "{dispatched}");
    assert_eq!(dispatched["result"]["considered"], 4, "{dispatched}");
    assert_eq!(dispatched["result"]["published"], 4, "{dispatched}");
    assert_eq!(status(&index, GUID).await, Some((SessionStatus::Open, 0)));

    // The mapping hands the batch to the same binary: every session finalized, none failed.
    let polls = drain(&moto, &queue, &api).await;
    let bodies: Vec<String> = polls
        .iter()
        .flat_map(|p| p.bodies.iter())
        .map(|b| rrstitch::queue::parse_message(b.as_bytes()).expect("a finalize message"))
        .collect();
    let distinct: BTreeSet<&str> = bodies.iter().map(String::as_str).collect();
    let sessions: BTreeSet<&str> = SMALL.iter().copied().chain([GUID]).collect();
    assert_eq!(bodies.len(), 4, "one message per session: {bodies:?}");
    assert_eq!(distinct, sessions);
    assert!(polls.iter().all(|p| p.failed.is_empty()), "{polls:?}");
    for guid in &sessions {
        assert_eq!(
            status(&index, guid).await,
            Some((SessionStatus::Finalized, 1)),
            "{guid}"
        );
    }
    let result = results.get(&format!("{GUID}.json"), 1 << 30).await.unwrap();
    let v: Value = serde_json::from_slice(&result.body).unwrap();
    let full: Value =
        serde_json::from_slice(&std::fs::read(fixture().join("full.json")).unwrap()).unwrap();
    assert_eq!(v["rrweb_data"], full);

    // A duplicate, an unknown session and junk: all acknowledged (deleted), nothing changes.
    sqs::send(&moto, &queue, &json!({"session_guid": GUID}).to_string());
    sqs::send(&moto, &queue, r#"{"session_guid":"never-indexed"}"#);
    sqs::send(&moto, &queue, "not a finalize message");
    let polls = drain(&moto, &queue, &api).await;
    assert_eq!(
        polls.iter().map(|p| p.delivered).sum::<usize>(),
        3,
        "{polls:?}"
    );
    assert!(polls.iter().all(|p| p.failed.is_empty()), "{polls:?}");
    assert_eq!(
        status(&index, GUID).await,
        Some((SessionStatus::Finalized, 1))
    );
    let again = results.get(&format!("{GUID}.json"), 1 << 30).await.unwrap();
    assert_eq!(again.body, result.body);
    assert_eq!(
        again.meta.generation, result.meta.generation,
        "the duplicate did not rewrite the result"
    );
    assert!(
        sqs::receive(&moto, &queue, 0).is_empty(),
        "nothing left on the queue"
    );

    // A transient failure: a worker whose S3 is unreachable names the message in
    // batchItemFailures; it stays on the queue, comes back after the visibility timeout, and a
    // healthy worker finalizes it.
    let late = "2025-05-02T12:50:00.000000+0000.json".to_owned();
    chunks
        .put(
            &late,
            Bytes::from(small_chunk("queue-late")),
            Precondition::None,
        )
        .await
        .unwrap();
    ingest_api.invoke(s3_event(&[late])).await.unwrap();
    let broken_api = RuntimeApi::start().await;
    let mut broken_env = queue_env.clone();
    let dead = format!("http://127.0.0.1:{}", rrstitch_tests::free_port());
    broken_env.push(("AWS_ENDPOINT_URL_S3".into(), dead));
    let _broken = lambda("rrstitch-finalize", &broken_api, &broken_env);
    let dispatched = api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(
        dispatched["result"]["published"], 1,
        "only the new idle session: {dispatched}"
    );
    let failed = sqs::poll_once(&moto, &queue, &broken_api, 1).await;
    assert_eq!(failed.delivered, 1, "{failed:?}");
    assert_eq!(
        failed.failed.len(),
        1,
        "the transient failure is a batch item failure"
    );
    assert_eq!(
        status(&index, "queue-late").await,
        Some((SessionStatus::Open, 0))
    );
    // Hidden for the visibility timeout, then delivered again.
    assert!(
        sqs::receive(&moto, &queue, 0).is_empty(),
        "the failed message is hidden"
    );
    let retried = sqs::poll_once(&moto, &queue, &api, VISIBILITY + 3).await;
    assert_eq!(retried.delivered, 1, "{retried:?}");
    assert!(retried.failed.is_empty(), "{retried:?}");
    assert_eq!(
        status(&index, "queue-late").await,
        Some((SessionStatus::Finalized, 1))
    );
    assert!(results.get("queue-late.json", 1 << 20).await.is_ok());
    assert!(
        sqs::receive(&moto, &queue, 1).is_empty(),
        "deleted once it succeeded"
    );
    drop(worker);
}
