//! Reconcile by window and by cursor: a windowed pass lists only from a margin before the
//! window's start (not the whole bucket), decides by instant whatever offset a name carries,
//! and a pass cut by its budget is finished by the next one, nothing missed or done twice.

mod support;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use rrstitch::index::{SessionIndex, RECONCILE_BOOKMARK};
use rrstitch::queue::{Job, NameRange};
use rrstitch::service::reconcile::{window_bound, ReconcileSummary, MOST_RANGES};
use rrstitch::service::{Buckets, Delivery, ObjectRef, Options, RangeDone, Service};
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::{ObjectStore, Page, Result as StorageResult, StorageUrl};
use rrstitch::time::Millis;
use support::{scratch, Around, MemoryQueue, Op, Wrapped};

/// The test's "now": 2027-01-15T08:00:00Z.
const NOW: Millis = Millis(1_800_000_000_000);

/// Counts what listings hand back, and slows head reads when asked (to cut a pass by its
/// budget at a known pace).
#[derive(Default)]
struct Watch {
    listed: Mutex<Vec<String>>,
    head_delay: Option<Duration>,
}

#[async_trait]
impl Around for Watch {
    async fn before(&self, op: Op, _name: &str, _inner: &LocalStore) -> StorageResult<()> {
        if let (Op::GetHead, Some(d)) = (op, self.head_delay) {
            tokio::time::sleep(d).await;
        }
        Ok(())
    }
    fn listed(&self, page: &Page) {
        let mut listed = self.listed.lock().unwrap();
        listed.extend(page.objects.iter().map(|m| m.name.clone()));
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    chunks: Arc<Wrapped<Watch>>,
    index: Arc<dyn SessionIndex>,
    svc: Service,
}

fn fixture(watch: Watch, options: Options) -> Fixture {
    let s = scratch();
    let chunks = Arc::new(Wrapped::new(&s.bucket, watch));
    let results = Arc::new(LocalStore::open(StorageUrl::Local(s.results.clone())).unwrap());
    let clock = Arc::new(AtomicI64::new(NOW.0));
    let options = Options {
        chunk_bucket: Some(StorageUrl::Local(s.bucket.clone())),
        ..options
    };
    let buckets = Buckets::with([chunks.clone() as Arc<dyn ObjectStore>]);
    let svc = Service::new(s.index.clone(), results, Arc::new(buckets), options)
        .with_clock(Arc::new(move || Millis(clock.load(Ordering::SeqCst))));
    Fixture {
        _dir: s.dir,
        chunks,
        index: s.index,
        svc,
    }
}

impl Fixture {
    /// Writes a chunk of session `guid` under `name`.
    fn put(&self, name: &str, guid: &str) {
        let body = format!(
            "{{\"session_guid\":\"{guid}\",\"session_data\":[{{\"type\":3,\"timestamp\":1}}],\"environment\":\"e\"}}"
        );
        std::fs::write(self.chunks.inner.root().join(name), body).unwrap();
    }

    fn object(&self, name: &str) -> ObjectRef {
        ObjectRef {
            bucket: self.chunks.inner.url().clone(),
            name: name.into(),
            generation: None,
        }
    }

    async fn recorded(&self, guid: &str) -> Vec<String> {
        let guid = rrstitch::engine::SessionGuid::parse(guid).unwrap();
        let mut names: Vec<String> = self
            .index
            .chunks(&guid)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.name)
            .collect();
        names.sort();
        names
    }
}

/// The name of a chunk uploaded at `instant` by a clock at UTC offset `offset_min` minutes:
/// its local time as text, and the offset.
fn name_at(instant: Millis, offset_min: i64) -> String {
    let local = Millis(instant.0 + offset_min * 60_000).to_rfc3339();
    let sign = if offset_min < 0 { '-' } else { '+' };
    let off = offset_min.abs();
    format!("{}{sign}{:02}{:02}.json", &local[..23], off / 60, off % 60)
}

const HOUR: i64 = 3_600_000;

/// A bucket of 30 days of hourly chunks: a one-day window lists the names from a margin
/// before its start on — two days' worth — not the month, and checks the day's.
#[tokio::test]
async fn a_window_lists_only_from_its_margin_on() {
    let f = fixture(Watch::default(), Options::default());
    let mut names = Vec::new();
    for h in 0..30 * 24 {
        let name = name_at(Millis(NOW.0 - h * HOUR - 1_000), 0);
        f.put(&name, &format!("s-{}", h / 24));
        names.push(name);
    }
    names.sort();
    let since = Duration::from_secs(24 * 3600);
    let bound = window_bound("", NOW.minus(since));
    let summary = f.svc.reconcile(Some(since)).await.unwrap();
    let listed = f.chunks.around.listed.lock().unwrap().clone();
    let expected: Vec<&String> = names.iter().filter(|n| **n > bound).collect();
    assert!(
        listed.iter().all(|n| *n > bound),
        "nothing before the bound {bound} is listed"
    );
    assert_eq!(listed.len(), expected.len(), "{summary:?}");
    assert_eq!(summary.objects_listed, expected.len() as u64);
    assert!(
        summary.objects_listed <= 2 * 24,
        "two days listed, not {} of {}",
        summary.objects_listed,
        names.len()
    );
    assert_eq!(summary.candidates, 24, "the day's chunks: {summary:?}");
    assert_eq!(summary.recovered, 24, "{summary:?}");
    assert_eq!(summary.cursor, None, "a finished pass answers no cursor");
}

/// Around the window's start, names with every real UTC offset (and the grammar's extreme,
/// −23:59) are in or out by the instant they stand for, not by their text.
#[tokio::test]
async fn offsets_from_minus_12_to_plus_14_are_in_or_out_by_instant() {
    let f = fixture(Watch::default(), Options::default());
    let since = Duration::from_secs(6 * 3600);
    let start = NOW.minus(since);
    let mut expect_in = Vec::new();
    let mut expect_out = Vec::new();
    let mut i = 0;
    for offset in [
        -23 * 60 - 59,
        -12 * 60,
        -9 * 60 - 30,
        -60,
        0,
        60,
        5 * 60 + 45,
        12 * 60 + 45,
        14 * 60,
    ] {
        for (delta_ms, inside) in [(-1_000, false), (-1, false), (0, true), (1_000, true)] {
            let name = name_at(Millis(start.0 + delta_ms), offset);
            let guid = format!("g-{i}");
            i += 1;
            f.put(&name, &guid);
            if inside {
                expect_in.push((name, guid));
            } else {
                expect_out.push((name, guid));
            }
        }
    }
    let summary = f.svc.reconcile(Some(since)).await.unwrap();
    assert_eq!(summary.recovered, expect_in.len() as u64, "{summary:?}");
    for (name, guid) in &expect_in {
        assert_eq!(
            f.recorded(guid).await,
            std::slice::from_ref(name),
            "{name} is in the window"
        );
    }
    for (name, guid) in &expect_out {
        assert!(
            f.recorded(guid).await.is_empty(),
            "{name} is before the window"
        );
    }
}

/// A fixture whose passes its budget cuts: 24 one-minute-apart chunks of 4 sessions in the
/// last hour, every third recorded by the event path; the other 16 are lost events.
async fn cut_fixture() -> (Fixture, Vec<String>, Vec<String>) {
    let watch = Watch {
        head_delay: Some(Duration::from_millis(40)),
        ..Watch::default()
    };
    let f = fixture(
        watch,
        Options {
            sweep_budget: Duration::from_millis(300),
            read_parallelism: 1,
            ..Options::default()
        },
    );
    let mut names = Vec::new();
    for i in 0..24 {
        let name = name_at(Millis(NOW.0 - (24 - i) * 60_000), 0);
        f.put(&name, &format!("s-{}", i % 4));
        names.push(name);
    }
    let mut missed = Vec::new();
    for (i, name) in names.iter().enumerate() {
        if i % 3 == 0 {
            f.svc.ingest(&f.object(name)).await.unwrap();
        } else {
            missed.push(name.clone());
        }
    }
    (f, names, missed)
}

/// What a series of passes did together.
#[derive(Default)]
struct Series {
    runs: u64,
    recovered: u64,
    checked: u64,
    listed: u64,
}

impl Series {
    /// Adds one pass and checks its cursor moved on from `before`; true when it finished.
    fn add(&mut self, summary: &ReconcileSummary, before: Option<&String>) -> bool {
        self.runs += 1;
        assert!(summary.failed.is_empty(), "{summary:?}");
        self.recovered += summary.recovered;
        self.checked += summary.known + summary.recovered;
        self.listed += summary.objects_listed - summary.deferred;
        assert!(self.runs < 20, "the passes make progress");
        match &summary.cursor {
            Some(next) => {
                assert!(summary.deferred > 0, "a cut pass defers: {summary:?}");
                assert!(before.is_none_or(|c| next > c), "the cursor moves on");
                false
            }
            None => {
                assert_eq!(summary.deferred, 0, "{summary:?}");
                true
            }
        }
    }

    /// Together the passes recovered exactly the missed chunks, each checked and listed once.
    async fn assert_complete(&self, f: &Fixture, names: &[String], missed: &[String]) {
        assert!(self.runs >= 2, "the budget cut the first pass");
        assert_eq!(
            self.recovered,
            missed.len() as u64,
            "exactly the missed chunks"
        );
        assert_eq!(self.checked, names.len() as u64, "each chunk checked once");
        assert_eq!(
            self.listed,
            names.len() as u64,
            "each name listed once, but the cut ones"
        );
        for s in 0..4 {
            let guid = format!("s-{s}");
            let want: Vec<String> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 4 == s)
                .map(|(_, n)| n.clone())
                .collect();
            assert_eq!(f.recorded(&guid).await, want);
        }
    }
}

/// A pass cut by its budget answers a cursor; passes that take it finish the bucket, and
/// together they recover exactly the chunks no event recorded, each checked once. Passes
/// given a cursor leave the scheduled series' bookmark alone.
#[tokio::test]
async fn a_cut_pass_is_finished_by_the_next_from_its_cursor() {
    let (f, names, missed) = cut_fixture().await;
    let since = Some(Duration::from_secs(3600));
    let (mut cursor, mut series) = (None::<String>, Series::default());
    loop {
        let summary = f
            .svc
            .reconcile_from(since, cursor.as_deref())
            .await
            .unwrap();
        assert_eq!(summary.resumed_from, None);
        if series.add(&summary, cursor.as_ref()) {
            break;
        }
        cursor = summary.cursor.clone();
        assert_eq!(f.index.bookmark(RECONCILE_BOOKMARK).await.unwrap(), None);
    }
    series.assert_complete(&f, &names, &missed).await;
}

/// A schedule passes nothing along: each resumed pass continues after the cursor the last
/// one left in the index, the series finishes the bucket exactly as passed cursors do, a
/// finished pass clears the bookmark, and the next pass starts over.
#[tokio::test]
async fn scheduled_passes_continue_from_the_bookmark_and_then_start_over() {
    let (f, names, missed) = cut_fixture().await;
    let since = Some(Duration::from_secs(3600));
    let (mut left, mut series) = (None::<String>, Series::default());
    loop {
        let summary = f.svc.reconcile_resumed(since).await.unwrap();
        assert_eq!(summary.resumed_from, left, "it took the last pass's cursor");
        let bookmark = f.index.bookmark(RECONCILE_BOOKMARK).await.unwrap();
        assert_eq!(
            bookmark, summary.cursor,
            "it left its own (none when finished)"
        );
        if series.add(&summary, left.as_ref()) {
            break;
        }
        left = summary.cursor.clone();
    }
    series.assert_complete(&f, &names, &missed).await;

    // Finished: the next pass starts over (and is cut again by the same budget).
    let again = f.svc.reconcile_resumed(since).await.unwrap();
    assert_eq!(again.resumed_from, None);
    assert_eq!(again.recovered, 0, "nothing is recovered twice");
    assert!(again.known > 0, "{again:?}");
}

/// A bookmark left under another chunk prefix (the prefix changed since) is set aside, not
/// taken as a bound and not an error: the pass starts over and clears it.
#[tokio::test]
async fn a_bookmark_outside_the_prefix_is_set_aside() {
    let f = fixture(
        Watch::default(),
        Options {
            chunk_prefix: "chunks/".into(),
            ..Options::default()
        },
    );
    f.index
        .set_bookmark(RECONCILE_BOOKMARK, Some("other/x.json"))
        .await
        .unwrap();
    let summary = f.svc.reconcile_resumed(None).await.unwrap();
    assert_eq!(summary.resumed_from, None);
    assert_eq!(summary.cursor, None);
    assert_eq!(f.index.bookmark(RECONCILE_BOOKMARK).await.unwrap(), None);
}

/// A cursor from another bucket's layout is refused, not silently treated as a bound.
#[tokio::test]
async fn a_cursor_outside_the_prefix_is_refused() {
    let f = fixture(
        Watch::default(),
        Options {
            chunk_prefix: "chunks/".into(),
            ..Options::default()
        },
    );
    let err = f
        .svc
        .reconcile_from(None, Some("other/x.json"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("cursor"), "{err}");
}

/// Works a queue of messages to the end as `workers` concurrent workers would, each message
/// handled by `svc` with the queue to continue on; every delivery's answer.
async fn work_queue(svc: &Service, queue: &MemoryQueue, workers: usize) -> Vec<Delivery> {
    let mut answers = Vec::new();
    loop {
        let messages = queue.take();
        if messages.is_empty() {
            return answers;
        }
        let round = futures::stream::iter(messages)
            .map(|body| async move { svc.finalize_queued(&body, Some(queue)).await })
            .buffer_unordered(workers)
            .collect::<Vec<_>>()
            .await;
        answers.extend(round);
    }
}

fn ranges_of(messages: &[Vec<u8>]) -> Vec<NameRange> {
    messages
        .iter()
        .map(|m| match Job::parse(m) {
            Ok(Job::Reconcile(range)) => range,
            other => panic!("a reconcile range: {other:?}"),
        })
        .collect()
}

/// Together the ranges recovered `missed` chunks and checked each of `chunks` once.
fn assert_recovered_once(done: &[&RangeDone], missed: u64, chunks: usize) {
    let sum = |f: fn(&ReconcileSummary) -> u64| done.iter().map(|d| f(&d.summary)).sum::<u64>();
    assert_eq!(sum(|s| s.recovered), missed, "exactly the missed chunks");
    assert_eq!(
        sum(|s| s.known + s.recovered),
        chunks as u64,
        "each chunk checked once"
    );
}

fn reconciled(answers: &[Delivery]) -> Vec<&RangeDone> {
    answers
        .iter()
        .map(|d| match d {
            Delivery::Reconciled(done) => done.as_ref(),
            other => panic!("a reconciled range: {other:?}"),
        })
        .collect()
}

/// Queue mode: a pass over the whole bucket (30 days of hourly chunks, two thirds of them
/// lost events) is cut into name ranges that follow one another with no gap, and
/// three workers taking them in parallel recover exactly the lost chunks; delivering every
/// range again recovers nothing. A windowed pass is cut from its margin on.
#[tokio::test]
async fn a_fanned_out_pass_is_finished_by_several_workers_range_by_range() {
    let f = fixture(Watch::default(), Options::default());
    let mut names = Vec::new();
    let mut missed = 0;
    for h in 0..30 * 24 {
        let name = name_at(Millis(NOW.0 - h * HOUR - 1_000), 0);
        f.put(&name, &format!("s-{}", h / 24));
        if h % 3 == 0 {
            f.svc.ingest(&f.object(&name)).await.unwrap();
        } else {
            missed += 1;
        }
        names.push(name);
    }
    let queue = MemoryQueue::default();
    let fanned = f.svc.reconcile_fan_out(&queue, None, None).await.unwrap();
    assert!(fanned.failed.is_empty(), "{fanned:?}");
    let messages = queue.take();
    let ranges = ranges_of(&messages);
    assert_eq!(ranges.len(), fanned.ranges);
    assert_eq!(fanned.published, fanned.ranges);
    // 721 hours in at most MOST_RANGES ranges: three hours a range.
    assert!(
        (200..=MOST_RANGES as usize + 1).contains(&ranges.len()),
        "{}",
        ranges.len()
    );
    assert_eq!(ranges[0].after, None, "from the bucket's start");
    assert_eq!(ranges.last().unwrap().through, None, "to its end");
    for pair in ranges.windows(2) {
        assert_eq!(pair[0].through, pair[1].after, "no gap, no overlap");
    }
    for name in &names {
        assert_eq!(ranges.iter().filter(|r| r.holds(name)).count(), 1, "{name}");
    }
    // The fan-out itself read one page of the listing, not the bucket.
    assert!(f.chunks.around.listed.lock().unwrap().len() <= 1_000);

    queue.messages.lock().unwrap().extend(messages.clone());
    let answers = work_queue(&f.svc, &queue, 3).await;
    let done = reconciled(&answers);
    assert_eq!(done.len(), ranges.len(), "each range once, none continued");
    assert_recovered_once(&done, missed, names.len());
    for day in [0, 17, 29] {
        let guid = format!("s-{day}");
        assert_eq!(f.recorded(&guid).await.len(), 24, "{guid}");
    }

    // Every range delivered again: nothing new.
    queue.messages.lock().unwrap().extend(messages);
    let again = work_queue(&f.svc, &queue, 3).await;
    assert_eq!(
        reconciled(&again)
            .iter()
            .map(|d| d.summary.recovered)
            .sum::<u64>(),
        0
    );

    // A one-day window is cut from its margin on, and each range keeps the window's start.
    let since = Duration::from_secs(24 * 3600);
    f.svc
        .reconcile_fan_out(&queue, Some(since), None)
        .await
        .unwrap();
    let windowed = ranges_of(&queue.take());
    assert!((48..=50).contains(&windowed.len()), "{}", windowed.len());
    assert_eq!(
        windowed[0].after.as_deref(),
        Some(window_bound("", NOW.minus(since)).as_str())
    );
    assert!(windowed
        .iter()
        .all(|r| r.since_ms == Some(NOW.minus(since).0)));
}

/// A range the budget cuts publishes its rest as a new message; the workers finish the
/// ranges with the lost chunks recovered exactly once and nothing checked twice.
#[tokio::test]
async fn a_range_cut_by_the_budget_continues_as_a_new_message() {
    let (f, names, missed) = cut_fixture().await;
    let queue = MemoryQueue::default();
    f.svc
        .reconcile_fan_out(&queue, Some(Duration::from_secs(3600)), None)
        .await
        .unwrap();
    let first = ranges_of(&queue.messages.lock().unwrap()).len();
    let answers = work_queue(&f.svc, &queue, 2).await;
    let done = reconciled(&answers);
    let continued = done.iter().filter(|d| d.continued.is_some()).count();
    assert!(continued >= 1, "the budget cut a range");
    assert_eq!(done.len(), first + continued, "each rest delivered once");
    assert_recovered_once(&done, missed.len() as u64, names.len());
    for d in &done {
        if let Some(rest) = &d.continued {
            assert_eq!(rest.through, d.range.through);
            assert!(rest.after > d.range.after, "the rest starts further on");
        }
    }
}

/// A range that cannot get anywhere within the budget is handed back to the platform
/// (delivered again), never re-published as itself forever.
#[tokio::test]
async fn a_range_that_makes_no_progress_is_delivered_again() {
    let f = fixture(
        Watch::default(),
        Options {
            sweep_budget: Duration::ZERO,
            ..Options::default()
        },
    );
    f.put(&name_at(Millis(NOW.0 - HOUR), 0), "s-0");
    let svc = &f.svc;
    let queue = MemoryQueue::default();
    let range = NameRange {
        after: None,
        through: None,
        since_ms: None,
    };
    let body = Job::Reconcile(range).body();
    let answer = svc.finalize_queued(body.as_bytes(), Some(&queue)).await;
    assert!(answer.redeliver(), "{answer:?}");
    assert!(queue.take().is_empty(), "nothing re-published");
}
