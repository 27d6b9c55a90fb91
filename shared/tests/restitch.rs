//! Re-stitch on the embedded backends (a real directory, a real SQLite file): finalized
//! sessions are stitched again under the current options (here: insights, off when they were
//! first stitched), open and erased sessions are left alone, the selection filters hold, a run
//! cut by its budget is finished by the next from its cursor with every session stitched
//! exactly once more, and in queue mode each session gets the sweep's own message, which a
//! worker's claim turns into exactly one stitch however often it is delivered. The same paths
//! run through the real finalize function on the emulators (tests/tests/gcp_flow.rs,
//! queue_aws.rs).

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rrstitch::engine::SessionGuid;
use rrstitch::index::{SessionIndex, SessionStatus};
use rrstitch::queue;
use rrstitch::service::backfill::NoProgress;
use rrstitch::service::restitch::restitch_request;
use rrstitch::service::{
    Buckets, Delivery, EraseRequest, ObjectRef, Options, RestitchRequest, Selection, Service, Skip,
};
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::{Result as StorageResult, StorageUrl};
use rrstitch::time::Millis;
use support::{Around, MemoryQueue, Op, Wrapped};

/// Slows every result write, so a run's budget cuts it at a known pace.
struct SlowWrites(Duration);

#[async_trait]
impl Around for SlowWrites {
    async fn before(&self, op: Op, _name: &str, _: &LocalStore) -> StorageResult<()> {
        if matches!(op, Op::Writer | Op::Put) {
            tokio::time::sleep(self.0).await;
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
}

fn env(options: Options, write_delay: Duration) -> Env {
    let support::Scratch {
        dir,
        bucket,
        results,
        index,
    } = support::scratch();
    let store = Wrapped::new(results.clone(), SlowWrites(write_delay));
    let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
    let c = clock.clone();
    let options = Options {
        idle: Duration::from_secs(60),
        // Insights off for the first stitch: a re-stitch with them on must add them.
        insights: false,
        ..options
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
    }
}

fn guid(i: usize) -> String {
    format!("session-{i:03}")
}

impl Env {
    fn advance(&self, secs: i64) {
        self.clock.fetch_add(secs * 1000, Ordering::SeqCst);
    }

    /// One two-event chunk of session `guid` in `environment`, written and ingested.
    async fn chunk(&self, guid: &str, second: u32, environment: &str) {
        let name = format!(
            "2025-05-02T12:{:02}:{:02}.000000+0000.json",
            second / 60,
            second % 60
        );
        let body = format!(
            r#"{{"session_guid":"{guid}","session_data":[{{"type":4,"timestamp":1746187850000,"data":{{"href":"https://example.com/","width":800,"height":600}}}},{{"type":3,"timestamp":1746187851000,"data":{{"source":2,"type":2,"id":1,"x":1,"y":1}}}}],"environment":"{environment}"}}"#
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

    /// `n` sessions, stitched once by a sweep.
    async fn finalized(&self, n: usize) {
        for i in 0..n {
            self.chunk(&guid(i), i as u32, "production").await;
        }
        self.advance(120);
        let swept = self.svc.sweep().await.unwrap();
        assert_eq!(swept.finalized.len(), n, "{swept:?}");
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

    fn result(&self, guid: &str) -> serde_json::Value {
        let bytes = std::fs::read(self.results.join(format!("{guid}.json"))).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    fn has_insights(&self, guid: &str) -> bool {
        self.result(guid)["metadata"].get("insights").is_some()
    }

    /// The service as it is configured now: insights on.
    fn upgraded(&self) -> Service {
        let mut svc = self.svc.clone();
        svc.options.insights = true;
        svc
    }
}

fn everything() -> RestitchRequest {
    RestitchRequest {
        selection: Selection::all(),
        cursor: None,
    }
}

#[tokio::test]
async fn finalized_sessions_are_stitched_again_under_the_current_options() {
    let e = env(Options::default(), Duration::ZERO);
    e.finalized(4).await;
    assert!(!e.has_insights(&guid(0)), "stitched without insights first");
    // An erased session and one still open: neither is stitched by a re-stitch.
    e.svc
        .erase(&EraseRequest {
            session_guids: vec![guid(3)],
            keep_chunks: false,
        })
        .await
        .unwrap();
    e.chunk("session-open", 50, "production").await;

    let svc = e.upgraded();
    let summary = svc
        .restitch(&everything(), None, &NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.mode, "inline");
    assert_eq!(
        (summary.listed, summary.selected, summary.restitched),
        (5, 4, 3),
        "{summary:?}"
    );
    assert_eq!(summary.tombstoned, 1);
    assert_eq!(summary.left_to_sweep, 1, "the open session is the sweep's");
    assert_eq!((summary.deferred, summary.cursor.clone()), (0, None));
    assert!(summary.failed.is_empty(), "{:?}", summary.failed);
    assert!(summary.events >= 6 && summary.bytes > 0, "{summary:?}");
    for i in 0..3 {
        assert_eq!(e.status(&guid(i)).await, (SessionStatus::Finalized, 2));
        assert!(e.has_insights(&guid(i)), "{} re-stitched", guid(i));
    }
    let erased = e
        .index
        .session(&SessionGuid::parse(&guid(3)).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(erased.status, SessionStatus::Deleted, "the tombstone stays");
    assert!(!e.results.join(format!("{}.json", guid(3))).exists());
    assert_eq!(e.status("session-open").await, (SessionStatus::Open, 0));
}

#[tokio::test]
async fn the_selection_filters_and_the_named_sessions() {
    let e = env(Options::default(), Duration::ZERO);
    e.chunk("old-prod", 0, "production").await;
    e.chunk("old-staging", 1, "staging").await;
    e.advance(3600);
    e.chunk("new-prod", 2, "production").await;
    e.chunk("new-staging", 3, "staging").await;
    e.advance(120);
    assert_eq!(e.svc.sweep().await.unwrap().finalized.len(), 4);
    let svc = e.upgraded();
    let run = |body: &str| {
        let request = restitch_request(body.as_bytes()).unwrap();
        let svc = svc.clone();
        async move { svc.restitch(&request, None, &NoProgress).await.unwrap() }
    };
    // Within the last 10 minutes, of production: one session.
    let summary = run(r#"{"since_secs": 600, "environment": "production"}"#).await;
    assert_eq!(
        (summary.listed, summary.selected, summary.restitched),
        (4, 1, 1)
    );
    assert!(e.has_insights("new-prod") && !e.has_insights("old-prod"));
    let summary = run(r#"{"environment": "staging"}"#).await;
    assert_eq!(summary.restitched, 2);
    assert!(e.has_insights("old-staging") && e.has_insights("new-staging"));
    assert!(!e.has_insights("old-prod"));
    // Named: a known one, an unknown one; from a cursor that skips the first name.
    let summary =
        run(r#"{"session_guids": ["new-prod", "old-prod", "never-seen"], "cursor": "1"}"#).await;
    assert_eq!(
        (summary.listed, summary.restitched, summary.unknown),
        (2, 1, 1),
        "{summary:?}"
    );
    assert!(e.has_insights("old-prod"));
    assert_eq!(
        e.status("new-prod").await.1,
        2,
        "before the cursor: untouched"
    );
    let bad = svc
        .restitch(
            &RestitchRequest {
                selection: Selection::Sessions(vec!["a-1".into()]),
                cursor: Some("2".into()),
            },
            None,
            &NoProgress,
        )
        .await;
    assert!(bad.is_err(), "a cursor past the list is refused");
}

/// A run cut by its budget answers a cursor; runs that take it finish the index, and every
/// session ends stitched exactly once more: nothing missed, nothing done twice.
#[tokio::test]
async fn a_cut_restitch_is_finished_by_the_next_from_its_cursor() {
    const SESSIONS: usize = 14;
    let e = env(Options::default(), Duration::ZERO);
    e.finalized(SESSIONS).await;
    // Pages of four, two sessions at a time, each result write 120 ms: a 500 ms budget
    // (450 ms to take sessions) stitches a handful per run.
    let mut svc = e.upgraded();
    svc.options.sweep_limit = 4;
    svc.options.session_parallelism = 2;
    svc.options.sweep_budget = Duration::from_millis(500);
    let slow = Wrapped::new(e.results.clone(), SlowWrites(Duration::from_millis(120)));
    svc.results = Arc::new(slow);
    let (mut cursor, mut runs, mut restitched) = (None::<String>, 0, 0);
    loop {
        runs += 1;
        assert!(runs < 50, "the runs finish");
        let request = RestitchRequest {
            selection: Selection::all(),
            cursor: cursor.clone(),
        };
        let summary = svc.restitch(&request, None, &NoProgress).await.unwrap();
        assert!(summary.failed.is_empty(), "{:?}", summary.failed);
        restitched += summary.restitched;
        match summary.cursor {
            Some(next) => {
                assert!(summary.deferred > 0, "a cut run says what it left");
                assert!(
                    cursor.as_ref().is_none_or(|c| next > *c),
                    "the cursor moves on: {cursor:?} then {next:?}"
                );
                cursor = Some(next);
            }
            None => break,
        }
    }
    assert!(runs >= 2, "the budget cut the first run");
    assert_eq!(restitched, SESSIONS as u64);
    for i in 0..SESSIONS {
        assert_eq!(
            e.status(&guid(i)).await,
            (SessionStatus::Finalized, 2),
            "{} stitched exactly once more",
            guid(i)
        );
        assert!(e.has_insights(&guid(i)));
    }
}

/// The same cut over a list of named sessions: the cursor is a place in the list.
#[tokio::test]
async fn a_cut_list_is_finished_from_its_place() {
    const SESSIONS: usize = 9;
    let e = env(Options::default(), Duration::ZERO);
    e.finalized(SESSIONS).await;
    let mut svc = e.upgraded();
    svc.options.sweep_limit = 3;
    svc.options.session_parallelism = 1;
    svc.options.sweep_budget = Duration::from_millis(400);
    svc.results = Arc::new(Wrapped::new(
        e.results.clone(),
        SlowWrites(Duration::from_millis(120)),
    ));
    let names: Vec<String> = (0..SESSIONS).map(guid).collect();
    let (mut cursor, mut runs, mut restitched) = (None::<String>, 0, 0);
    loop {
        runs += 1;
        assert!(runs < 50, "the runs finish");
        let request = RestitchRequest {
            selection: Selection::Sessions(names.clone()),
            cursor: cursor.clone(),
        };
        let summary = svc.restitch(&request, None, &NoProgress).await.unwrap();
        restitched += summary.restitched;
        match summary.cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert!(runs >= 2, "the budget cut the first run");
    assert_eq!(restitched, SESSIONS as u64);
    for name in &names {
        assert_eq!(
            e.status(name).await,
            (SessionStatus::Finalized, 2),
            "{name}"
        );
    }
}

/// Queue mode: one sweep message per re-opened session, none for a tombstone; a worker's
/// claim stitches each once, acknowledges a duplicate, and leaves a session that got a new
/// chunk meanwhile to the sweep, which stitches it once it is idle.
#[tokio::test]
async fn queue_mode_publishes_the_sweeps_message_and_the_claim_decides() {
    let e = env(Options::default(), Duration::ZERO);
    e.finalized(5).await;
    e.svc
        .erase(&EraseRequest {
            session_guids: vec![guid(4)],
            keep_chunks: false,
        })
        .await
        .unwrap();
    let svc = e.upgraded();
    let queue = MemoryQueue::default();
    let summary = svc
        .restitch(&everything(), Some(&queue), &NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.mode, "queue");
    assert_eq!(
        (summary.dispatched, summary.restitched, summary.tombstoned),
        (4, 0, 1),
        "{summary:?}"
    );
    let messages = queue.messages.lock().unwrap().clone();
    let expected: Vec<Vec<u8>> = (0..4)
        .map(|i| queue::message(&SessionGuid::parse(&guid(i)).unwrap()).into_bytes())
        .collect();
    assert_eq!(messages, expected, "the sweep's message, once per session");
    for i in 0..4 {
        assert_eq!(e.status(&guid(i)).await, (SessionStatus::Open, 1));
    }
    // A late chunk for one of them before its message is worked.
    e.chunk(&guid(0), 200, "production").await;
    for message in &messages {
        svc.finalize_queued(message, None).await;
    }
    for i in 1..4 {
        assert_eq!(e.status(&guid(i)).await, (SessionStatus::Finalized, 2));
        assert!(e.has_insights(&guid(i)));
    }
    // Delivered again: the claim finds it finalized.
    let again = svc.finalize_queued(&messages[1], None).await;
    assert!(
        matches!(
            again,
            Delivery::Skipped {
                reason: Skip::NotEligible,
                ..
            }
        ),
        "{again:?}"
    );
    assert_eq!(e.status(&guid(1)).await.1, 2, "a duplicate changes nothing");
    // The session with the late chunk is not idle: the worker left it, the sweep takes it.
    assert_eq!(e.status(&guid(0)).await, (SessionStatus::Open, 1));
    e.advance(120);
    let swept = svc.sweep().await.unwrap();
    assert_eq!(swept.finalized.len(), 1);
    assert_eq!(e.status(&guid(0)).await, (SessionStatus::Finalized, 2));
    let tomb = e
        .index
        .session(&SessionGuid::parse(&guid(4)).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tomb.status, SessionStatus::Deleted);
}
