//! Queue mode on AWS, end to end through the real binaries and moto's SQS: chunks land in S3
//! and are ingested by the real `rrstitch-ingest` in Lambda mode; the real `rrstitch-finalize`
//! in queue mode dispatches on a scheduled event (sending to moto's queue through the SDK), and
//! the test plays the event source mapping — receive a batch, invoke the same binary with the
//! SQS event, delete what its `batchItemFailures` does not name — since moto's Lambda cannot
//! run our binary. A duplicate message changes nothing, an unknown session and junk are
//! acknowledged, and a worker whose S3 is unreachable reports the message as a batch item
//! failure, so it comes back after the visibility timeout and a healthy worker finalizes it.

use std::collections::BTreeSet;

use rrstitch::engine::SessionGuid;
use rrstitch::index::dynamodb::DynamoIndex;
use rrstitch::index::{SessionIndex, SessionStatus};
use rrstitch::storage::ObjectStore;
use rrstitch_tests::aws::{lambda, s3_event, scheduled_event, AwsStack};
use rrstitch_tests::fixture::{self, small_chunk, GUID};
use rrstitch_tests::lambda::RuntimeApi;
use rrstitch_tests::{metrics, sqs, Moto};
use serde_json::{json, Value};

const SMALL: [&str; 3] = ["queue-a", "queue-b", "queue-c"];
/// Seconds a received message stays hidden on the test queue: short, so a failed one is back
/// soon, yet longer than the broken worker takes to give up on S3 (about 5 s of SDK retries).
const VISIBILITY: u32 = 10;

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
    let stack = AwsStack::start().await;
    // The functions write EMF metric lines, as Terraform deploys them (infra/aws/metrics.tf).
    let env = &stack.with(&[("RRSTITCH_METRICS", "emf")]);
    let (moto, results) = (&stack.moto, &stack.results);
    let index = DynamoIndex::on_emulator("rrstitch", &moto.endpoint).await;
    let queue = sqs::create_queue(moto, "rrstitch-finalize-jobs", VISIBILITY);
    let mut queue_env = env.clone();
    queue_env.push(("RRSTITCH_FINALIZE_MODE".into(), "queue".into()));
    queue_env.push(("RRSTITCH_FINALIZE_QUEUE".into(), queue.clone()));

    let mut names = stack.upload_fixture().await;
    for (i, guid) in SMALL.iter().enumerate() {
        let name = format!("2025-05-02T12:40:0{i}.000000+0000.json");
        stack.put_chunk(&name, small_chunk(guid)).await;
        names.push(name);
    }
    let ingest_api = RuntimeApi::start().await;
    let ingest = lambda("rrstitch-ingest", &ingest_api, env);
    let reply = ingest_api
        .invoke(s3_event("chunks", &names))
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
    let polls = drain(moto, &queue, &api).await;
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
    assert_eq!(v["rrweb_data"], fixture::full_events());

    // A duplicate, an unknown session and junk: all acknowledged (deleted), nothing changes.
    sqs::send(moto, &queue, &json!({"session_guid": GUID}).to_string());
    sqs::send(moto, &queue, r#"{"session_guid":"never-indexed"}"#);
    sqs::send(moto, &queue, "not a finalize message");
    let polls = drain(moto, &queue, &api).await;
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
        sqs::receive(moto, &queue, 0).is_empty(),
        "nothing left on the queue"
    );

    // A transient failure: a worker whose S3 is unreachable names the message in
    // batchItemFailures; it stays on the queue, comes back after the visibility timeout, and a
    // healthy worker finalizes it.
    let late = "2025-05-02T12:50:00.000000+0000.json".to_owned();
    stack.put_chunk(&late, small_chunk("queue-late")).await;
    ingest_api
        .invoke(s3_event("chunks", &[late]))
        .await
        .unwrap();
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
    let failed = sqs::poll_once(moto, &queue, &broken_api, 1).await;
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
        sqs::receive(moto, &queue, 0).is_empty(),
        "the failed message is hidden"
    );
    let retried = sqs::poll_once(moto, &queue, &api, VISIBILITY + 3).await;
    assert_eq!(retried.delivered, 1, "{retried:?}");
    assert!(retried.failed.is_empty(), "{retried:?}");
    assert_eq!(
        status(&index, "queue-late").await,
        Some((SessionStatus::Finalized, 1))
    );
    assert!(results.get("queue-late.json", 1 << 20).await.is_ok());
    assert!(
        sqs::receive(moto, &queue, 1).is_empty(),
        "deleted once it succeeded"
    );

    // Re-stitch in queue mode (a direct invocation): every finalized session re-opened and
    // given the sweep's own message, which the mapping hands to the worker; each is stitched
    // exactly once more.
    let restitch = api
        .invoke(json!({"restitch": {"all": true}}))
        .await
        .unwrap();
    assert_eq!(restitch["status"], 200, "{restitch}");
    assert_eq!(restitch["result"]["mode"], "queue", "{restitch}");
    assert_eq!(restitch["result"]["dispatched"], 5, "{restitch}");
    assert_eq!(restitch["result"]["cursor"], Value::Null, "{restitch}");
    let polls = drain(moto, &queue, &api).await;
    assert_eq!(
        polls.iter().map(|p| p.delivered).sum::<usize>(),
        5,
        "{polls:?}"
    );
    assert!(polls.iter().all(|p| p.failed.is_empty()), "{polls:?}");
    for guid in sessions.iter().copied().chain(["queue-late"]) {
        assert_eq!(
            status(&index, guid).await,
            Some((SessionStatus::Finalized, 2)),
            "{guid}"
        );
    }

    // Backfill (DEPLOY.md): a bucket whose chunks no event ever recorded, worked through the
    // queue by three workers. The reconcile is cut into ranges of chunk names, one message
    // each; the workers record every chunk of their ranges; the dispatch that follows has
    // them finalize every session, once.
    let bucket = fixture::backfill_bucket();
    for (name, guid) in &bucket {
        stack.put_chunk(name, small_chunk(guid)).await;
    }
    let backfilled: BTreeSet<&str> = bucket.iter().map(|(_, g)| g.as_str()).collect();
    let fanned = api.invoke(json!({"reconcile": true})).await.unwrap();
    assert_eq!(fanned["status"], 200, "{fanned}");
    let ranges = fanned["result"]["ranges"].as_u64().unwrap();
    assert!(ranges > 1, "{fanned}");
    assert_eq!(fanned["result"]["published"], ranges, "{fanned}");
    let mut apis = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..3 {
        let api = RuntimeApi::start().await;
        workers.push(lambda("rrstitch-finalize", &api, &queue_env));
        apis.push(api);
    }
    let drain_all = || async {
        let (a, b, c) = tokio::join!(
            drain(moto, &queue, &apis[0]),
            drain(moto, &queue, &apis[1]),
            drain(moto, &queue, &apis[2])
        );
        [a, b, c]
    };
    let drained = drain_all().await;
    let polls: Vec<&sqs::Poll> = drained.iter().flatten().collect();
    assert!(polls.iter().all(|p| p.failed.is_empty()), "{polls:?}");
    assert_eq!(
        polls.iter().map(|p| p.delivered as u64).sum::<u64>(),
        ranges,
        "each range delivered once"
    );
    assert!(
        drained.iter().filter(|d| !d.is_empty()).count() >= 2,
        "the ranges were shared out among the workers"
    );
    for guid in &backfilled {
        assert_eq!(
            status(&index, guid).await,
            Some((SessionStatus::Open, 0)),
            "{guid}"
        );
        let chunks = index
            .chunks(&SessionGuid::parse(guid).unwrap())
            .await
            .unwrap();
        assert_eq!(chunks.len(), 3, "{guid}");
    }
    let dispatched = api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(dispatched["result"]["published"], 12, "{dispatched}");
    let drained = drain_all().await;
    assert_eq!(
        drained.iter().flatten().map(|p| p.delivered).sum::<usize>(),
        12
    );
    for guid in &backfilled {
        assert_eq!(
            status(&index, guid).await,
            Some((SessionStatus::Finalized, 1)),
            "{guid}"
        );
        let result = results.get(&format!("{guid}.json"), 1 << 20).await.unwrap();
        let v: Value = serde_json::from_slice(&result.body).unwrap();
        assert!(!v["rrweb_data"].as_array().unwrap().is_empty(), "{guid}");
    }

    // An inline sweep too, so both modes' sweep lines are there. Then every metric the
    // alarms and the dashboard read (infra/aws/metrics.tf) must be in what these functions
    // wrote, in a valid EMF directive.
    let inline_api = RuntimeApi::start().await;
    let inline = lambda("rrstitch-finalize", &inline_api, env);
    let swept = inline_api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(swept["status"], 200, "{swept}");
    let mut logs = vec![
        ingest.log.as_path(),
        worker.log.as_path(),
        inline.log.as_path(),
    ];
    logs.extend(workers.iter().map(|w| w.log.as_path()));
    let lines = metrics::lines_of(&logs);
    for mode in ["inline", "queue"] {
        let checked = metrics::check_emf(&lines, "rrstitch", &metrics::aws_declared(mode))
            .unwrap_or_else(|wrong| panic!("{mode}: {}", wrong.join("\n")));
        assert_eq!(checked, 8);
    }
    assert!(metrics::validate_emf_schema(&lines) > 20);
}
