//! Queue mode on GCP, end to end through the real binaries and the Pub/Sub emulator: chunks
//! land in fake-gcs-server and are ingested by the real `rrstitch-ingest`; the real
//! `rrstitch-finalize` in queue mode dispatches on `POST /sweep` (publishing to the emulator's
//! topic over the REST API), and the emulator's push subscription delivers each message to the
//! same binary's `POST /pubsub/finalize`, which finalizes that one session. A duplicate message
//! changes nothing, an unknown session and junk are acknowledged, and a worker whose storage
//! is unreachable answers 503 so the emulator delivers again, until a healthy worker takes it.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rrstitch::engine::SessionGuid;
use rrstitch::index::firestore::FirestoreIndex;
use rrstitch::index::{SessionIndex, SessionStatus};
use rrstitch_tests::bins::HttpFunction;
use rrstitch_tests::cloudevents::post;
use rrstitch_tests::fixture::{self, small_chunk, GUID};
use rrstitch_tests::procs::Group;
use rrstitch_tests::{metrics, GcpStack, PubSub};
use serde_json::{json, Value};

const SMALL: [&str; 3] = ["queue-a", "queue-b", "queue-c"];

fn envelope(data: &[u8]) -> String {
    use base64::Engine as _;
    json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "messageId": "direct-1",
            "publishTime": "2025-05-02T12:30:00Z"
        },
        "subscription": "projects/rrstitch-test/subscriptions/finalize-push"
    })
    .to_string()
}

/// Log lines of `group` that contain every one of `words`.
fn log_lines(group: &Group, words: &[&str]) -> usize {
    std::fs::read_to_string(&group.log)
        .unwrap_or_default()
        .lines()
        .filter(|l| words.iter().all(|w| l.contains(w)))
        .count()
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: not within {timeout:?}");
}

struct Index {
    index: FirestoreIndex,
    rt: tokio::runtime::Runtime,
}

impl Index {
    fn status(&self, guid: &str) -> Option<(SessionStatus, u64)> {
        let guid = SessionGuid::parse(guid).unwrap();
        self.rt
            .block_on(self.index.session(&guid))
            .unwrap()
            .map(|s| (s.status, s.finalize_count))
    }
}

#[test]
fn dispatched_sessions_are_pushed_to_finalize_workers_and_finalized_once() {
    let stack = GcpStack::start();
    let pubsub = PubSub::start();
    let topic = pubsub.create_topic("finalize-jobs");
    let dead_letters = pubsub.create_topic("finalize-jobs-dead-letter");
    // A copy of everything published, to count what the dispatcher sent.
    let audit = pubsub.create_pull_subscription("audit", &topic);
    let index = Index {
        index: FirestoreIndex::on_emulator(
            &stack.firestore.host,
            &stack.firestore.project,
            "rrstitch_sessions",
        ),
        rt: tokio::runtime::Runtime::new().unwrap(),
    };

    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let mut queue_env = stack.with(&[
        ("RRSTITCH_FINALIZE_MODE", "queue"),
        ("RRSTITCH_FINALIZE_TOPIC", &topic),
    ]);
    queue_env.extend(pubsub.env());
    let worker = HttpFunction::start("rrstitch-finalize", &queue_env);
    let push = pubsub.create_push_subscription(
        "finalize-push",
        &topic,
        &format!("{}/pubsub/finalize", worker.url),
        Some((&dead_letters, 20)),
    );

    for n in &fixture::chunk_names() {
        stack.ingest_chunk(&ingest, n, &fixture::chunk(n));
    }
    for (i, guid) in SMALL.iter().enumerate() {
        let name = format!("2025-05-02T12:40:0{i}.000000+0000.json");
        stack.ingest_chunk(&ingest, &name, &small_chunk(guid));
    }

    // The scheduled sweep dispatches: one message per idle session, nothing stitched by it.
    let started = Instant::now();
    let dispatched = post(&format!("{}/sweep", worker.url), &[], "");
    assert_eq!(dispatched.status, 200, "{}", dispatched.body);
    assert_eq!(dispatched.body["considered"], 4, "{}", dispatched.body);
    assert_eq!(dispatched.body["published"], 4, "{}", dispatched.body);
    assert!(
        dispatched.body.get("finalized").is_none(),
        "{}",
        dispatched.body
    );
    let published = pubsub.drain(&audit, Duration::from_secs(1));
    let guids: Vec<String> = published
        .iter()
        .map(|m| rrstitch::queue::parse_message(&m.data).expect("a finalize message"))
        .collect();
    let distinct: BTreeSet<&str> = guids.iter().map(String::as_str).collect();
    let sessions: BTreeSet<&str> = SMALL.iter().copied().chain([GUID]).collect();
    assert_eq!(guids.len(), 4, "one message per session: {guids:?}");
    assert_eq!(distinct, sessions);
    for m in &published {
        assert_eq!(
            m.attributes["session_guid"].as_str(),
            Some(rrstitch::queue::parse_message(&m.data).unwrap().as_str())
        );
    }

    // The push subscription hands each to the worker route, which finalizes it.
    wait_for(
        "every dispatched session finalized",
        Duration::from_secs(30),
        || {
            sessions
                .iter()
                .all(|g| index.status(g) == Some((SessionStatus::Finalized, 1)))
        },
    );
    println!(
        "FIGURE queue_gcp.dispatch_to_all_finalized_secs: {:.2}",
        started.elapsed().as_secs_f64()
    );
    let result = stack
        .gcs
        .download("results", &format!("{GUID}.json"))
        .expect("the fixture session's result");
    let v: Value = serde_json::from_slice(&result).unwrap();
    assert_eq!(v["rrweb_data"], fixture::full_events());
    for guid in SMALL {
        let v: Value = serde_json::from_slice(
            &stack
                .gcs
                .download("results", &format!("{guid}.json"))
                .expect("a small session's result"),
        )
        .unwrap();
        assert_eq!(v["rrweb_data"].as_array().unwrap().len(), 2, "{guid}");
    }
    assert_eq!(
        log_lines(&worker.group, &["session stitched"]),
        4,
        "each session stitched exactly once"
    );

    // A duplicate message through the emulator: delivered, acknowledged, nothing changes.
    pubsub.publish(
        &topic,
        &rrstitch::queue::message(&SessionGuid::parse(GUID).unwrap()).into_bytes(),
    );
    wait_for("the duplicate delivered", Duration::from_secs(15), || {
        log_lines(&worker.group, &["queued finalize skipped", GUID]) >= 1
    });
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        log_lines(&worker.group, &["queued finalize skipped", GUID]),
        1,
        "the duplicate was acknowledged once, not redelivered"
    );
    assert_eq!(index.status(GUID), Some((SessionStatus::Finalized, 1)));
    assert_eq!(
        stack
            .gcs
            .download("results", &format!("{GUID}.json"))
            .unwrap(),
        result,
        "the duplicate did not rewrite the result"
    );
    assert_eq!(log_lines(&worker.group, &["session stitched"]), 4);

    // Straight to the route: an unknown session and undecodable data are acknowledged (2xx),
    // a body that is no push envelope is refused (it is nobody's delivery).
    let route = format!("{}/pubsub/finalize", worker.url);
    let json_type = [("content-type", "application/json")];
    let unknown = post(
        &route,
        &json_type,
        &envelope(br#"{"session_guid":"never-indexed"}"#),
    );
    assert_eq!(unknown.status, 200, "{}", unknown.body);
    assert_eq!(unknown.body["outcome"], "skipped", "{}", unknown.body);
    assert_eq!(
        unknown.body["reason"], "unknown_session",
        "{}",
        unknown.body
    );
    let finalized = post(
        &route,
        &json_type,
        &envelope(format!(r#"{{"session_guid":"{}"}}"#, SMALL[0]).as_bytes()),
    );
    assert_eq!(finalized.status, 200, "{}", finalized.body);
    assert_eq!(
        finalized.body["reason"], "not_eligible",
        "{}",
        finalized.body
    );
    let junk = post(&route, &json_type, &envelope(b"not a finalize message"));
    assert_eq!(junk.status, 200, "{}", junk.body);
    assert_eq!(junk.body["outcome"], "refused", "{}", junk.body);
    let stray = post(&route, &json_type, r#"{"session_guid":"x"}"#);
    assert_eq!(stray.status, 400, "{}", stray.body);

    // A transient failure: a worker whose storage is unreachable answers 503, the emulator
    // delivers again; once the subscription points at a healthy worker the session is done.
    let dead_storage = format!("http://127.0.0.1:{}", rrstitch_tests::free_port());
    let mut broken_env = queue_env.clone();
    broken_env.retain(|(k, _)| k != "STORAGE_EMULATOR_HOST");
    broken_env.push(("STORAGE_EMULATOR_HOST".into(), dead_storage));
    let broken = HttpFunction::start("rrstitch-finalize", &broken_env);
    stack.ingest_chunk(
        &ingest,
        "2025-05-02T12:50:00.000000+0000.json",
        &small_chunk("queue-late"),
    );
    let direct = post(
        &format!("{}/pubsub/finalize", broken.url),
        &json_type,
        &envelope(br#"{"session_guid":"queue-late"}"#),
    );
    assert_eq!(direct.status, 503, "{}", direct.body);
    assert_eq!(direct.body["outcome"], "failed", "{}", direct.body);
    assert_eq!(direct.body["transient"], true, "{}", direct.body);
    assert_eq!(
        index.status("queue-late"),
        Some((SessionStatus::Open, 0)),
        "the claim was given back"
    );

    pubsub.set_push_endpoint(&push, &format!("{}/pubsub/finalize", broken.url));
    let again = post(&format!("{}/sweep", worker.url), &[], "");
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.body["published"], 1,
        "only the new idle session: {}",
        again.body
    );
    // The direct POST above failed once; two more are the emulator's push and its redelivery.
    wait_for(
        "a push and a redelivery failing on the broken worker",
        Duration::from_secs(30),
        || log_lines(&broken.group, &["queued finalize failed", "queue-late"]) >= 3,
    );
    assert_eq!(index.status("queue-late"), Some((SessionStatus::Open, 0)));
    pubsub.set_push_endpoint(&push, &format!("{}/pubsub/finalize", worker.url));
    wait_for(
        "the redelivered message finalized",
        Duration::from_secs(30),
        || index.status("queue-late") == Some((SessionStatus::Finalized, 1)),
    );
    assert!(stack.gcs.download("results", "queue-late.json").is_some());
    let audited = pubsub.drain(&audit, Duration::from_secs(1));
    // The duplicate published by hand, and the second dispatch's one message.
    assert_eq!(audited.len(), 2, "{audited:?}");

    // Re-stitch in queue mode: every finalized session re-opened and given the sweep's own
    // message, which the push subscription delivers and the worker's claim stitches once.
    let stitched = log_lines(&worker.group, &["session stitched"]);
    let restitch = post(
        &format!("{}/restitch", worker.url),
        &json_type,
        &json!({"all": true}).to_string(),
    );
    assert_eq!(restitch.status, 200, "{}", restitch.body);
    assert_eq!(restitch.body["mode"], "queue", "{}", restitch.body);
    assert_eq!(restitch.body["dispatched"], 5, "{}", restitch.body);
    assert_eq!(restitch.body["cursor"], Value::Null, "{}", restitch.body);
    let audited = pubsub.drain(&audit, Duration::from_secs(1));
    let guids: BTreeSet<String> = audited
        .iter()
        .map(|m| rrstitch::queue::parse_message(&m.data).expect("a finalize message"))
        .collect();
    assert_eq!((audited.len(), guids.len()), (5, 5), "one message each");
    let everyone: Vec<&str> = sessions.iter().copied().chain(["queue-late"]).collect();
    wait_for(
        "every session stitched once more",
        Duration::from_secs(30),
        || {
            everyone
                .iter()
                .all(|g| index.status(g) == Some((SessionStatus::Finalized, 2)))
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        log_lines(&worker.group, &["session stitched"]) - stitched,
        5,
        "each re-stitched exactly once"
    );

    // Backfill (DEPLOY.md): chunks no event ever recorded, worked through the queue by three
    // workers sharing the subscription, as Cloud Run instances share its pushes (the test
    // pulls and hands each message to a worker's push route, acknowledging a 2xx only). The
    // reconcile is cut into ranges of chunk names, one message each; then a dispatch has
    // every session finalized once.
    pubsub.stop_pushing(&push);
    let workers = [
        &worker,
        &HttpFunction::start("rrstitch-finalize", &queue_env),
        &HttpFunction::start("rrstitch-finalize", &queue_env),
    ];
    let bucket = fixture::backfill_bucket();
    for (name, guid) in &bucket {
        stack.gcs.upload("chunks", name, &small_chunk(guid));
    }
    let backfilled: BTreeSet<&str> = bucket.iter().map(|(_, g)| g.as_str()).collect();
    let reconciled_before: Vec<usize> = workers
        .iter()
        .map(|w| log_lines(&w.group, &["reconcile done"]))
        .collect();
    let fanned = post(&format!("{}/reconcile", worker.url), &json_type, "{}");
    assert_eq!(fanned.status, 200, "{}", fanned.body);
    let ranges = fanned.body["ranges"].as_u64().unwrap();
    assert!(ranges > 1, "{}", fanned.body);
    assert_eq!(fanned.body["published"], ranges, "{}", fanned.body);
    let audited = pubsub.drain(&audit, Duration::from_secs(1));
    assert_eq!(audited.len() as u64, ranges);
    assert!(audited.iter().all(|m| m.attributes["job"] == "reconcile"));
    let delivered = deliver_to(&pubsub, &push, &workers, ranges as usize);
    assert_eq!(delivered as u64, ranges, "each range delivered once");
    let reconciled: Vec<usize> = workers
        .iter()
        .zip(&reconciled_before)
        .map(|(w, before)| log_lines(&w.group, &["reconcile done"]) - before)
        .collect();
    assert_eq!(
        reconciled.iter().sum::<usize>() as u64,
        ranges,
        "{reconciled:?}"
    );
    assert!(
        reconciled.iter().all(|&n| n > 0),
        "every worker took ranges: {reconciled:?}"
    );
    for guid in &backfilled {
        let chunks = index
            .rt
            .block_on(index.index.chunks(&SessionGuid::parse(guid).unwrap()))
            .unwrap();
        assert_eq!(chunks.len(), 3, "{guid}");
    }
    let dispatched = post(&format!("{}/sweep", worker.url), &[], "");
    assert_eq!(dispatched.body["published"], 12, "{}", dispatched.body);
    assert_eq!(deliver_to(&pubsub, &push, &workers, 12), 12);
    for guid in &backfilled {
        assert_eq!(
            index.status(guid),
            Some((SessionStatus::Finalized, 1)),
            "{guid}"
        );
        assert!(stack
            .gcs
            .download("results", &format!("{guid}.json"))
            .is_some());
    }

    // Every log-based metric the module declares (infra/gcp/modules/rrstitch/metrics.tf) is
    // in what these functions wrote, each field of the right type.
    let mut logs = vec![ingest.group.log.as_path()];
    logs.extend(workers.iter().map(|w| w.group.log.as_path()));
    let lines = metrics::lines_of(&logs);
    let (target, declared) = metrics::gcp_declared();
    let checked = metrics::check_log_metrics(&lines, &target, &declared)
        .unwrap_or_else(|wrong| panic!("{}", wrong.join("\n")));
    assert_eq!(checked, 9);
}

/// Pulls `subscription` and hands each message, as a push envelope, to the next of
/// `workers` (all of a pull at once), acknowledging those answered 2xx, until `expected` are
/// acknowledged and then two quiet seconds pass (any more would be counted too); how many
/// were acknowledged. The emulator's immediate pulls can come back empty while messages
/// wait, so an empty pull alone does not end it.
fn deliver_to(
    pubsub: &PubSub,
    subscription: &str,
    workers: &[&HttpFunction],
    expected: usize,
) -> usize {
    let mut acknowledged = 0;
    let mut turn = 0;
    let started = Instant::now();
    let mut quiet = Instant::now();
    while acknowledged < expected || quiet.elapsed() < Duration::from_secs(2) {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{acknowledged} of {expected} messages delivered in 120 s"
        );
        let pulled = pubsub.pull(subscription, 12);
        if pulled.is_empty() {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        quiet = Instant::now();
        let answers: Vec<(String, u16)> = std::thread::scope(|scope| {
            let calls: Vec<_> = pulled
                .into_iter()
                .map(|(ack_id, data)| {
                    let url = format!("{}/pubsub/finalize", workers[turn % workers.len()].url);
                    turn += 1;
                    scope.spawn(move || {
                        let answer = post(
                            &url,
                            &[("content-type", "application/json")],
                            &envelope(&data),
                        );
                        (ack_id, answer.status)
                    })
                })
                .collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        let ok: Vec<String> = answers
            .into_iter()
            .filter(|(_, status)| (200..300).contains(status))
            .map(|(id, _)| id)
            .collect();
        acknowledged += ok.len();
        pubsub.acknowledge(subscription, &ok);
    }
    acknowledged
}
