//! Queue mode over the embedded backends (a real directory, a real SQLite file) and an
//! in-memory queue: the dispatcher publishes one message per idle session in bounded batches
//! and reports what the queue refused; a worker finalizes the session a message names once,
//! acknowledges duplicates, unknown sessions and junk, and asks for a transient failure to be
//! delivered again. The same paths run end to end on the emulators in
//! tests/tests/queue_gcp.rs and queue_aws.rs.

mod support;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rrstitch::engine::SessionGuid;
use rrstitch::index::{SessionIndex, SessionStatus};
use rrstitch::queue::{self, FinalizeQueue, Job, QueueError, Refused};
use rrstitch::service::{Buckets, Delivery, ObjectRef, Options, Service, Skip};
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::{Result as StorageResult, StorageError, StorageUrl};
use rrstitch::time::Millis;
use support::{Around, Op, Wrapped};

/// A queue that keeps what it is given, and can be told to refuse.
#[derive(Debug, Default)]
struct MemoryQueue {
    limit: usize,
    messages: Mutex<Vec<String>>,
    calls: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    /// Fail every call whose batch holds this session (transiently).
    fail_batch_of: Mutex<Option<String>>,
    /// Refuse this one session's entry (permanently), publish the rest.
    refuse: Mutex<Option<String>>,
}

#[async_trait]
impl FinalizeQueue for MemoryQueue {
    fn batch_limit(&self) -> usize {
        self.limit
    }

    async fn publish(&self, batch: &[Job]) -> Result<Vec<Refused>, QueueError> {
        assert!(batch.len() <= self.limit, "a batch over the queue's limit");
        self.calls.fetch_add(1, Ordering::SeqCst);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_in_flight.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        let fail = self.fail_batch_of.lock().unwrap().clone();
        if let Some(f) = fail {
            if batch.iter().any(|job| job.body().contains(&f)) {
                return Err(QueueError::Transient {
                    op: "publish",
                    source: "the queue is down".into(),
                });
            }
        }
        let refuse = self.refuse.lock().unwrap().clone();
        let mut refused = Vec::new();
        for job in batch {
            let Job::Finalize(guid) = job else {
                panic!("a dispatch publishes finalize jobs only: {job:?}")
            };
            if refuse.as_deref() == Some(guid.as_str()) {
                refused.push((
                    job.clone(),
                    QueueError::Permanent {
                        op: "publish",
                        source: "refused".into(),
                    },
                ));
            } else {
                self.messages.lock().unwrap().push(queue::message(guid));
            }
        }
        Ok(refused)
    }
}

/// Fails every stat, write and delete of the results store transiently while set, as an
/// unreachable bucket would.
struct Outage(Arc<AtomicBool>);

#[async_trait]
impl Around for Outage {
    async fn before(&self, op: Op, name: &str, _: &LocalStore) -> StorageResult<()> {
        let reads = matches!(op, Op::List | Op::Get | Op::GetHead);
        if self.0.load(Ordering::SeqCst) && !reads {
            return Err(StorageError::Transient {
                op: "put",
                name: name.into(),
                source: "connection refused".into(),
            });
        }
        Ok(())
    }
}

struct Env {
    _dir: tempfile::TempDir,
    bucket: std::path::PathBuf,
    results: std::path::PathBuf,
    index: Arc<dyn SessionIndex>,
    svc: Service,
    clock: Arc<AtomicI64>,
    results_down: Arc<AtomicBool>,
}

fn env() -> Env {
    let support::Scratch {
        dir,
        bucket,
        results,
        index,
    } = support::scratch();
    let results_down = Arc::new(AtomicBool::new(false));
    let store = Wrapped::new(results.clone(), Outage(results_down.clone()));
    let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
    let c = clock.clone();
    let options = Options {
        idle: Duration::from_secs(60),
        session_parallelism: 4,
        ..Options::default()
    };
    let svc = Service::new(
        index.clone(),
        Arc::new(store),
        Arc::new(Buckets::default()),
        options,
    )
    .with_clock(Arc::new(move || Millis(c.load(Ordering::SeqCst))));
    Env {
        _dir: dir,
        bucket,
        results,
        index,
        svc,
        clock,
        results_down,
    }
}

fn guid(i: usize) -> String {
    format!("session-{i:03}")
}

impl Env {
    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// One two-event chunk of session `guid`, written and ingested.
    async fn session(&self, guid: &str, second: u32) {
        let name = format!(
            "2025-05-02T12:{:02}:{:02}.000000+0000.json",
            second / 60,
            second % 60
        );
        let body = format!(
            r#"{{"session_guid":"{guid}","session_data":[{{"type":4,"timestamp":1746187850000,"data":{{"href":"https://example.com/","width":800,"height":600}}}},{{"type":3,"timestamp":1746187851000,"data":{{"source":1}}}}],"environment":"production"}}"#
        );
        std::fs::write(self.bucket.join(&name), body).unwrap();
        self.svc
            .ingest(&ObjectRef {
                bucket: StorageUrl::Local(self.bucket.clone()),
                name,
                generation: None,
            })
            .await
            .unwrap();
    }

    async fn status(&self, guid: &str) -> (SessionStatus, u64) {
        let record = self
            .index
            .session(&SessionGuid::parse(guid).unwrap())
            .await
            .unwrap()
            .expect("the session is indexed");
        (record.status, record.finalize_count)
    }
}

fn body(guid: &str) -> Vec<u8> {
    queue::message(&SessionGuid::parse(guid).unwrap()).into_bytes()
}

#[tokio::test]
async fn dispatch_publishes_one_message_per_idle_session_in_bounded_batches() {
    let e = env();
    for i in 0..95 {
        e.session(&guid(i), i as u32).await;
    }
    e.advance(120);
    // One more session, still active: not idle, not published.
    e.session("still-active", 3000).await;
    let q = MemoryQueue {
        limit: 10,
        ..MemoryQueue::default()
    };
    let summary = e.svc.dispatch(&q).await.unwrap();
    assert_eq!(summary.considered, 95, "{summary:?}");
    assert_eq!(summary.published, 95, "{summary:?}");
    assert!(summary.failed.is_empty(), "{summary:?}");
    assert_eq!(
        q.calls.load(Ordering::SeqCst),
        10,
        "95 messages in batches of 10"
    );
    let most = q.most_in_flight.load(Ordering::SeqCst);
    assert!(
        (2..=rrstitch::queue::PUBLISH_PARALLELISM).contains(&most),
        "publish calls overlap, boundedly: {most} at once"
    );
    let published: Vec<String> = q
        .messages
        .lock()
        .unwrap()
        .iter()
        .map(|m| queue::parse_message(m.as_bytes()).unwrap())
        .collect();
    let distinct: BTreeSet<&String> = published.iter().collect();
    assert_eq!(distinct.len(), 95, "one message per session, none twice");
    assert_eq!(
        distinct,
        (0..95).map(guid).collect::<BTreeSet<_>>().iter().collect()
    );
    // Dispatching stitched nothing: every session is still open, nothing is in the results.
    assert_eq!(e.status(&guid(0)).await, (SessionStatus::Open, 0));
    assert!(!e.results.exists() || std::fs::read_dir(&e.results).unwrap().count() == 0);
    // `rrstitch status` sees the dispatch as the last sweep, and the sessions still open.
    let status = e.svc.status().await.unwrap();
    let last = status
        .last_sweep
        .as_ref()
        .expect("the dispatch recorded itself");
    assert_eq!(
        (last.mode.as_str(), last.sessions),
        ("queue", 95),
        "{last:?}"
    );
    assert_eq!(status.open, 96, "{status:?}");
}

#[tokio::test]
async fn what_the_queue_refuses_is_reported_and_offered_again() {
    let e = env();
    for i in 0..25 {
        e.session(&guid(i), i as u32).await;
    }
    e.advance(120);
    let q = MemoryQueue {
        limit: 10,
        ..MemoryQueue::default()
    };
    // The first batch fails as a whole (transient); one entry of another is refused.
    *q.fail_batch_of.lock().unwrap() = Some(guid(0));
    *q.refuse.lock().unwrap() = Some(guid(24));
    let summary = e.svc.dispatch(&q).await.unwrap();
    assert_eq!(summary.considered, 25);
    assert_eq!(summary.published, 14, "{summary:?}");
    assert_eq!(summary.failed.len(), 11, "{summary:?}");
    assert_eq!(summary.failed.iter().filter(|f| f.transient).count(), 10);
    let refused: Vec<&str> = summary
        .failed
        .iter()
        .filter(|f| !f.transient)
        .map(|f| f.session_guid.as_str())
        .collect();
    assert_eq!(refused, [guid(24)]);
    // Nothing was claimed: the next dispatch, with the queue back, offers all of them again.
    *q.fail_batch_of.lock().unwrap() = None;
    *q.refuse.lock().unwrap() = None;
    let again = e.svc.dispatch(&q).await.unwrap();
    assert_eq!((again.considered, again.published), (25, 25), "{again:?}");
}

#[tokio::test]
async fn a_worker_finalizes_once_and_acknowledges_duplicates_unknowns_and_junk() {
    let e = env();
    e.session("a-session", 1).await;
    e.advance(120);
    let first = e.svc.finalize_queued(&body("a-session"), None).await;
    let Delivery::Finalized(report) = &first else {
        panic!("not finalized: {first:?}");
    };
    assert_eq!(report.events, 2);
    assert!(!first.redeliver());
    assert_eq!(e.status("a-session").await, (SessionStatus::Finalized, 1));
    let result = e.results.join("a-session.json");
    let written = std::fs::read(&result).unwrap();
    let modified = std::fs::metadata(&result).unwrap().modified().unwrap();

    // The same message again (a redelivery, or the next tick's dispatch): nothing changes.
    let duplicate = e.svc.finalize_queued(&body("a-session"), None).await;
    assert!(
        matches!(
            duplicate,
            Delivery::Skipped {
                reason: Skip::NotEligible,
                ..
            }
        ),
        "{duplicate:?}"
    );
    assert!(!duplicate.redeliver());
    assert_eq!(e.status("a-session").await, (SessionStatus::Finalized, 1));
    assert_eq!(std::fs::read(&result).unwrap(), written);
    assert_eq!(
        std::fs::metadata(&result).unwrap().modified().unwrap(),
        modified
    );

    // A session the index never saw, and messages that name none: acknowledged.
    let unknown = e.svc.finalize_queued(&body("no-such-session"), None).await;
    assert!(
        matches!(
            unknown,
            Delivery::Skipped {
                reason: Skip::UnknownSession,
                ..
            }
        ),
        "{unknown:?}"
    );
    for junk in [
        &b"not json"[..],
        br#"{"guid":"x"}"#,
        br#"{"session_guid":"../etc"}"#,
    ] {
        let d = e.svc.finalize_queued(junk, None).await;
        assert!(matches!(d, Delivery::Refused { .. }), "{d:?}");
        assert!(!d.redeliver());
    }

    // A message that arrives while the session is active again (a late chunk after the
    // dispatch) does nothing: the session is not idle; a later dispatch offers it.
    e.session("a-session", 2).await;
    let late = e.svc.finalize_queued(&body("a-session"), None).await;
    assert!(
        matches!(
            late,
            Delivery::Skipped {
                reason: Skip::NotEligible,
                ..
            }
        ),
        "{late:?}"
    );
    assert_eq!(e.status("a-session").await, (SessionStatus::Open, 1));
}

#[tokio::test]
async fn a_transient_failure_is_delivered_again_and_the_next_delivery_finalizes() {
    let e = env();
    e.session("flaky-session", 1).await;
    e.advance(120);
    e.results_down.store(true, Ordering::SeqCst);
    let failed = e.svc.finalize_queued(&body("flaky-session"), None).await;
    assert!(
        matches!(
            failed,
            Delivery::Failed {
                transient: true,
                ..
            }
        ),
        "{failed:?}"
    );
    assert!(
        failed.redeliver(),
        "a transient failure must be delivered again"
    );
    // The claim was given back: the redelivery can take the session at once.
    assert_eq!(e.status("flaky-session").await, (SessionStatus::Open, 0));
    e.results_down.store(false, Ordering::SeqCst);
    let retried = e.svc.finalize_queued(&body("flaky-session"), None).await;
    assert!(matches!(retried, Delivery::Finalized(_)), "{retried:?}");
    assert_eq!(
        e.status("flaky-session").await,
        (SessionStatus::Finalized, 1)
    );
}

#[tokio::test]
async fn a_batch_keeps_each_answer_with_its_message() {
    let e = env();
    for i in 0..6 {
        e.session(&guid(i), i as u32).await;
    }
    e.advance(120);
    let mut messages: Vec<(String, Vec<u8>)> =
        (0..6).map(|i| (format!("m{i}"), body(&guid(i)))).collect();
    messages.push(("dup".into(), body(&guid(0))));
    messages.push(("junk".into(), b"{}".to_vec()));
    let answers = e.svc.finalize_queued_batch(messages, None).await;
    assert_eq!(answers.len(), 8);
    let finalized: BTreeSet<&str> = answers
        .iter()
        .filter(|(_, d)| matches!(d, Delivery::Finalized(_)))
        .map(|(id, _)| id.as_str())
        .collect();
    // m0 and dup race for one session: exactly one of them stitches it.
    assert_eq!(finalized.len(), 6, "{answers:?}");
    assert!(finalized.is_superset(&["m1", "m2", "m3", "m4", "m5"].into()));
    assert!(answers.iter().all(|(_, d)| !d.redeliver()), "{answers:?}");
    for i in 0..6 {
        assert_eq!(e.status(&guid(i)).await, (SessionStatus::Finalized, 1));
    }
}
