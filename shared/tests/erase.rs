//! Erasure over the embedded backends (a real directory, a real SQLite file): what a delete
//! removes, that it stays removed (late chunks, redelivered events, reconcile), and how it
//! interleaves with a finalize. The racing finalizer is a second `Service` on the same index
//! file and directories, as a second process would be.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rrstitch::index::{sqlite::SqliteIndex, SessionIndex, SessionStatus};
use rrstitch::service::{
    Buckets, EraseReport, EraseRequest, IngestOutcome, ObjectRef, Options, Service, ServiceError,
};
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::{ObjectStore, Result as StorageResult, StorageUrl};
use rrstitch::time::Millis;
use support::{Around, Op, Wrapped};

const GUID: &str = "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33";

fn fixture_chunks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rrweb-form/chunks")
}

/// When a [`Hooked`] results store runs its hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// At the finalizer's read of the result's generation: after its claim, before its
    /// renewal (the fence).
    BeforeFence,
    /// When the finalizer opens its result writer: after the fence, before the write lands.
    AfterFence,
    /// Inside `SegmentsOut::publish`, at the manifest's write: the single file is written,
    /// the segments are stored, the manifest is about to be.
    Publish,
    /// As [`When::Publish`], and publish's listing of the session's folder that follows
    /// then fails, as the local store's whole-tree walk did when the erasure deleted files
    /// under it mid-walk.
    PublishThenListingFails,
}

type Hook = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

/// Runs a hook once, at one point of a finalize, around a local results store.
struct Hooked {
    when: When,
    hook: Mutex<Option<Hook>>,
    listing_failed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Around for Hooked {
    async fn before(&self, op: Op, name: &str, _: &LocalStore) -> StorageResult<()> {
        let at = match op {
            Op::Stat => When::BeforeFence,
            Op::Writer => When::AfterFence,
            Op::Put if name.ends_with("/manifest.json") => When::Publish,
            Op::List if self.when == When::PublishThenListingFails => {
                // Once: the listing right after the erasure.
                let erased = self.hook.lock().unwrap().is_none();
                let first = !self.listing_failed.swap(true, Ordering::SeqCst);
                return match erased && first {
                    true => Err(rrstitch::storage::StorageError::NotFound {
                        name: name.to_owned(),
                    }),
                    false => Ok(()),
                };
            }
            _ => return Ok(()),
        };
        let publishing = self.when == When::PublishThenListingFails && at == When::Publish;
        if at == self.when || publishing {
            let hook = self.hook.lock().unwrap().take();
            if let Some(hook) = hook {
                hook().await;
            }
        }
        Ok(())
    }
}

struct Env {
    dir: tempfile::TempDir,
    bucket: PathBuf,
    results: PathBuf,
    /// The eraser (and ingest): plain local stores.
    svc: Service,
    clock: Arc<AtomicI64>,
}

impl Env {
    fn new(options: Options) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let bucket = dir.path().join("bucket");
        let results = dir.path().join("results");
        std::fs::create_dir_all(&bucket).unwrap();
        let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
        let mut env = Env {
            svc: Service::new(
                Arc::new(SqliteIndex::open(dir.path().join("index.sqlite")).unwrap()),
                Arc::new(LocalStore::open(StorageUrl::Local(results.clone())).unwrap()),
                Arc::new(Buckets::default()),
                Options::default(),
            ),
            dir,
            bucket,
            results,
            clock,
        };
        env.svc = env.service(options, None);
        env
    }

    /// Another process's service on the same index and directories, its results store
    /// hooked if given.
    fn service(&self, options: Options, hooked: Option<Wrapped<Hooked>>) -> Service {
        let index: Arc<dyn SessionIndex> =
            Arc::new(SqliteIndex::open(self.dir.path().join("index.sqlite")).unwrap());
        let results: Arc<dyn ObjectStore> = match hooked {
            Some(h) => Arc::new(h),
            None => Arc::new(LocalStore::open(StorageUrl::Local(self.results.clone())).unwrap()),
        };
        let c = self.clock.clone();
        Service::new(index, results, Arc::new(Buckets::default()), options)
            .with_clock(Arc::new(move || Millis(c.load(Ordering::SeqCst))))
    }

    fn hooked(&self, when: When, hook: Hook) -> Wrapped<Hooked> {
        let hook = Mutex::new(Some(hook));
        let listing_failed = Default::default();
        Wrapped::new(
            self.results.clone(),
            Hooked {
                when,
                hook,
                listing_failed,
            },
        )
    }

    fn object(&self, name: &str) -> ObjectRef {
        ObjectRef {
            bucket: StorageUrl::Local(self.bucket.clone()),
            name: name.into(),
            generation: None,
        }
    }

    fn copy_fixture(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(fixture_chunks())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        for n in &names {
            std::fs::copy(fixture_chunks().join(n), self.bucket.join(n)).unwrap();
        }
        names
    }

    async fn ingest_all(&self, names: &[String]) -> Vec<IngestOutcome> {
        let mut out = Vec::new();
        for n in names {
            out.push(self.svc.ingest(&self.object(n)).await.unwrap());
        }
        out
    }

    fn result_path(&self) -> PathBuf {
        self.results.join(format!("{GUID}.json"))
    }

    fn chunks_left(&self) -> usize {
        std::fs::read_dir(&self.bucket).unwrap().count()
    }

    async fn status(&self) -> Option<SessionStatus> {
        let g = rrstitch::engine::SessionGuid::parse(GUID).unwrap();
        self.svc.index.session(&g).await.unwrap().map(|s| s.status)
    }
}

fn request(keep_chunks: bool) -> EraseRequest {
    EraseRequest {
        session_guids: vec![GUID.to_owned()],
        keep_chunks,
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn a_delete_after_the_write_removes_everything_and_a_second_finds_nothing() {
    let e = Env::new(Options::default());
    let names = e.copy_fixture();
    e.ingest_all(&names).await;
    e.svc.finalize(GUID).await.unwrap();
    assert!(e.result_path().exists());
    // A future segmented result, and a gzip one from a run with RRSTITCH_OUTPUT_GZIP.
    std::fs::create_dir_all(e.results.join(GUID)).unwrap();
    std::fs::write(e.results.join(GUID).join("0001.json"), b"{}").unwrap();
    std::fs::write(e.results.join(format!("{GUID}.json.gz")), b"x").unwrap();
    std::fs::write(e.results.join("other-session.json"), b"{}").unwrap();

    let report = e.svc.erase(&request(false)).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    let s = &report.erased[0];
    assert_eq!(s.session_guid, GUID);
    assert_eq!(s.results, 3, "json, json.gz and the segment");
    assert_eq!(s.chunks, names.len() as u64);
    assert_eq!(s.chunks_kept, 0);
    assert_eq!(
        s.index_records,
        names.len() as u64 + 1,
        "chunk records + session"
    );
    assert!(!s.already_gone);
    assert_eq!(e.chunks_left(), 0);
    let left = files_under(&e.results);
    assert!(
        left.len() == 1 && left[0].ends_with("other-session.json"),
        "only another session's result is left: {left:?}"
    );
    assert_eq!(e.status().await, Some(SessionStatus::Deleted));
    let g = rrstitch::engine::SessionGuid::parse(GUID).unwrap();
    assert!(e.svc.index.chunks(&g).await.unwrap().is_empty());
    let listed = e.svc.index.sessions(100).await.unwrap();
    assert!(listed.is_empty(), "a tombstone is not listed: {listed:?}");

    let again = e.svc.erase(&request(false)).await.unwrap();
    assert!(again.failed.is_empty());
    let s = &again.erased[0];
    assert!(s.already_gone, "{s:?}");
    assert_eq!((s.results, s.chunks, s.index_records), (0, 0, 0));
}

#[tokio::test]
async fn keep_chunks_keeps_the_objects_but_not_their_records() {
    let e = Env::new(Options::default());
    let names = e.copy_fixture();
    e.ingest_all(&names).await;
    let report = e.svc.erase(&request(true)).await.unwrap();
    let s = &report.erased[0];
    assert_eq!((s.chunks, s.chunks_kept), (0, names.len() as u64));
    assert_eq!(e.chunks_left(), names.len());
    let g = rrstitch::engine::SessionGuid::parse(GUID).unwrap();
    assert!(e.svc.index.chunks(&g).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_request_with_a_bad_guid_erases_nothing() {
    let e = Env::new(Options::default());
    let names = e.copy_fixture();
    e.ingest_all(&names).await;
    let bad = EraseRequest {
        session_guids: vec![GUID.to_owned(), "not a guid/..".to_owned()],
        keep_chunks: false,
    };
    let err = e.svc.erase(&bad).await.unwrap_err();
    assert!(matches!(err, ServiceError::InvalidRequest(_)), "{err}");
    assert_eq!(e.status().await, Some(SessionStatus::Open));
    assert_eq!(e.chunks_left(), names.len());
    assert!(matches!(
        e.svc.erase(&EraseRequest::default()).await,
        Err(ServiceError::InvalidRequest(_))
    ));
}

#[tokio::test]
async fn a_delete_before_the_claim_leaves_nothing_to_finalize() {
    let e = Env::new(Options {
        idle: Duration::ZERO,
        ..Options::default()
    });
    let names = e.copy_fixture();
    e.ingest_all(&names).await;
    e.svc.erase(&request(false)).await.unwrap();
    e.clock.fetch_add(3_600_000, Ordering::SeqCst);
    let sweep = e.svc.sweep().await.unwrap();
    assert_eq!(sweep.considered, 0, "{sweep:?}");
    let err = e.svc.finalize(GUID).await.unwrap_err();
    assert!(matches!(err, ServiceError::UnknownSession(_)), "{err}");
    assert!(!e.result_path().exists());
}

#[tokio::test]
async fn a_delete_between_claim_and_fence_stops_the_write() {
    let (e, _) = ingested(Options::default()).await;
    let hook = erasing(&e, false, |_| {});
    let finalizer = e.service(Options::default(), Some(e.hooked(When::BeforeFence, hook)));
    let err = finalizer.finalize(GUID).await.unwrap_err();
    assert!(matches!(err, ServiceError::Erased(_)), "{err}");
    assert!(!e.result_path().exists(), "the fence kept the result out");
    assert_eq!(e.status().await, Some(SessionStatus::Deleted));
    assert_eq!(e.chunks_left(), 0);
}

#[tokio::test]
async fn a_delete_after_the_fence_is_undone_by_the_finalizer_itself() {
    let (e, _) = ingested(Options::default()).await;
    let hook = erasing(&e, true, |report| {
        assert_eq!(report.erased[0].results, 0, "nothing written yet");
    });
    // Writing segments too: they and their manifest must go as well.
    let segmented = Options {
        segments: Some(rrstitch::engine::SegmentLimits::with_max_bytes(16 << 10)),
        ..Options::default()
    };
    let finalizer = e.service(segmented, Some(e.hooked(When::AfterFence, hook)));
    // The write lands after the erasure deleted the (absent) result; completing fails on
    // the tombstone, and the finalizer deletes what it wrote.
    let err = finalizer.finalize(GUID).await.unwrap_err();
    assert!(matches!(err, ServiceError::Erased(_)), "{err}");
    assert!(
        files_under(&e.results).is_empty(),
        "a finalizer that lost to an erasure must not leave its result or segments: {:?}",
        files_under(&e.results)
    );
    assert_eq!(e.status().await, Some(SessionStatus::Deleted));
}

#[tokio::test]
async fn late_and_redelivered_chunks_of_a_deleted_session_are_refused_and_deleted() {
    let e = Env::new(Options::default());
    let names = e.copy_fixture();
    e.ingest_all(&names[..3]).await;
    e.svc.erase(&request(false)).await.unwrap();
    // The rest arrive late; the first is uploaded (and announced) again.
    let outcomes = e.ingest_all(&names[3..]).await;
    std::fs::copy(fixture_chunks().join(&names[0]), e.bucket.join(&names[0])).unwrap();
    let again = e.svc.ingest(&e.object(&names[0])).await.unwrap();
    for o in outcomes.iter().chain([&again]) {
        assert!(
            matches!(o, IngestOutcome::DeletedSession { chunk_deleted: true, session_guid, .. } if session_guid == GUID),
            "{o:?}"
        );
    }
    assert_eq!(e.chunks_left(), 0, "refused chunks are deleted");
    let rejected = e.svc.index.rejected(100).await.unwrap();
    assert_eq!(rejected.len(), names.len() - 3 + 1, "{rejected:?}");
    assert!(rejected.iter().all(|r| r.kind == "deleted_session"));
    assert_eq!(e.status().await, Some(SessionStatus::Deleted));
    let g = rrstitch::engine::SessionGuid::parse(GUID).unwrap();
    assert!(e.svc.index.chunks(&g).await.unwrap().is_empty());
}

#[tokio::test]
async fn chunks_of_a_deleted_session_can_be_kept_when_refused() {
    let e = Env::new(Options {
        keep_chunks_of_deleted: true,
        ..Options::default()
    });
    let names = e.copy_fixture();
    e.svc.erase(&request(false)).await.unwrap();
    let outcomes = e.ingest_all(&names).await;
    assert!(outcomes.iter().all(|o| matches!(
        o,
        IngestOutcome::DeletedSession {
            chunk_deleted: false,
            ..
        }
    )));
    assert_eq!(e.chunks_left(), names.len());
    // Kept, not forgotten: the next erasure that does not keep them deletes them.
    let again = e.svc.erase(&request(false)).await.unwrap();
    assert_eq!(again.erased[0].rejected, names.len() as u64, "{again:?}");
    assert_eq!(e.chunks_left(), 0);
}

#[tokio::test]
async fn reconcile_does_not_bring_a_deleted_session_back() {
    let e = Env::new(Options::default());
    let names = e.copy_fixture();
    e.ingest_all(&names).await;
    e.svc.erase(&request(true)).await.unwrap();
    // The chunks were kept and the index forgot them: to reconcile they look like lost events.
    let mut svc = e.svc.clone();
    svc.options.chunk_bucket = Some(StorageUrl::Local(e.bucket.clone()));
    let summary = svc.reconcile(None).await.unwrap();
    assert_eq!(summary.recovered, 0, "{summary:?}");
    assert_eq!(summary.rejected, names.len() as u64);
    assert_eq!(e.status().await, Some(SessionStatus::Deleted));
    assert_eq!(e.chunks_left(), 0, "and their objects went this time");
}

#[tokio::test]
async fn after_the_tombstone_expires_a_chunk_starts_a_new_session() {
    let e = Env::new(Options {
        tombstone_ttl: Duration::from_secs(60),
        ..Options::default()
    });
    let names = e.copy_fixture();
    e.svc.erase(&request(false)).await.unwrap();
    e.clock.fetch_add(61_000, Ordering::SeqCst);
    let outcomes = e.ingest_all(&names[..1]).await;
    assert!(
        matches!(outcomes[0], IngestOutcome::Recorded { .. }),
        "{outcomes:?}"
    );
    assert_eq!(e.status().await, Some(SessionStatus::Open));
}

/// The form fixture ingested for [`GUID`].
/// A hook that erases the session (its results too, with `results`) as another process
/// would, then hands `check` the report.
fn erasing(e: &Env, results: bool, check: impl FnOnce(EraseReport) + Send + 'static) -> Hook {
    let eraser = e.svc.clone();
    Box::new(move || {
        Box::pin(async move {
            check(eraser.erase(&request(results)).await.unwrap());
        })
    })
}

async fn ingested(options: Options) -> (Env, Vec<String>) {
    let e = Env::new(options);
    let names = e.copy_fixture();
    e.ingest_all(&names).await;
    (e, names)
}

fn segmented() -> Options {
    Options {
        segments: Some(rrstitch::engine::SegmentLimits::with_max_bytes(16 << 10)),
        ..Options::default()
    }
}

/// Everything under `dir`, directories included: an erased session leaves not even an
/// empty `<guid>/<generation>/` folder.
fn entries_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries {
            let path = e.unwrap().path();
            out.push(path.display().to_string());
            if path.is_dir() {
                out.extend(entries_under(&path));
            }
        }
    }
    out
}

/// A finalizer writing segments, erased at `when` inside its publish: whatever publish
/// does next, nothing the finalizer wrote outlives the erasure, and the finalize says the
/// session was erased.
async fn erased_during_publish(when: When) -> ServiceError {
    let (e, _) = ingested(Options::default()).await;
    let hook = erasing(&e, false, |report| {
        assert!(report.failed.is_empty(), "{report:?}");
    });
    let finalizer = e.service(segmented(), Some(e.hooked(when, hook)));
    let err = finalizer.finalize(GUID).await.unwrap_err();
    assert!(
        entries_under(&e.results).is_empty(),
        "{when:?}: a finalizer that lost to an erasure during publish must not leave its \
         result, manifest or segments: {:?} ({err})",
        entries_under(&e.results)
    );
    assert_eq!(e.status().await, Some(SessionStatus::Deleted));
    assert_eq!(e.chunks_left(), 0);
    err
}

#[tokio::test]
async fn an_erasure_at_the_manifest_write_is_undone_by_the_finalizer() {
    let err = erased_during_publish(When::Publish).await;
    assert!(matches!(err, ServiceError::Erased(_)), "{err}");
}

#[tokio::test]
async fn an_erasure_during_publish_whose_listing_then_fails_leaves_nothing() {
    let err = erased_during_publish(When::PublishThenListingFails).await;
    assert!(matches!(err, ServiceError::Erased(_)), "{err}");
}

/// A sweep that loses a session to an erasure reports it as erased, not as a failure to
/// retry (`rrstitch sweep` exits 1 on failures).
#[tokio::test]
async fn a_sweep_racing_a_delete_counts_the_session_as_erased_not_failed() {
    let (e, _) = ingested(Options::default()).await;
    let hook = erasing(&e, false, |_| {});
    let sweeper = e.service(
        Options {
            idle: Duration::from_secs(60),
            ..segmented()
        },
        Some(e.hooked(When::PublishThenListingFails, hook)),
    );
    e.clock.fetch_add(61_000, Ordering::SeqCst);
    let summary = sweeper.sweep().await.unwrap();
    assert!(
        summary.failed.is_empty(),
        "an erased session is no failure: {:?}",
        summary.failed
    );
    assert_eq!(summary.erased, 1, "{summary:?}");
    assert!(entries_under(&e.results).is_empty());
}

/// Real races, no hooks: `SESSIONS` sessions finalized (with small segments, so publish
/// lists and deletes a lot) by one process while another erases each a little later, the
/// delays spread over a finalize's duration. Whatever the interleaving, an erased session
/// leaves nothing in the results directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_deletes_of_many_finalizing_sessions_leave_nothing() {
    const SESSIONS: usize = 24;
    let e = Env::new(Options::default());
    let mut names = Vec::new();
    let guids: Vec<String> = (0..SESSIONS)
        .map(|i| format!("6f1c2a9e-3b7d-4e51-9a8c-{i:012}"))
        .collect();
    for (i, guid) in guids.iter().enumerate() {
        for entry in std::fs::read_dir(fixture_chunks()).unwrap() {
            let entry = entry.unwrap();
            let text = std::fs::read_to_string(entry.path()).unwrap();
            let name = format!("s{i:02}/{}", entry.file_name().to_string_lossy());
            std::fs::create_dir_all(e.bucket.join(format!("s{i:02}"))).unwrap();
            std::fs::write(e.bucket.join(&name), text.replace(GUID, guid)).unwrap();
            names.push(name);
        }
    }
    e.ingest_all(&names).await;
    let small = Options {
        segments: Some(rrstitch::engine::SegmentLimits::with_max_bytes(2 << 10)),
        ..Options::default()
    };
    // How long one finalize takes here, on a session nobody erases.
    let timing = e.service(small.clone(), None);
    let started = std::time::Instant::now();
    timing.finalize(&guids[0]).await.unwrap();
    let took = started.elapsed();
    let finalizer = e.service(small, None);
    let mut tasks = Vec::new();
    for (i, guid) in guids.iter().enumerate() {
        let (f, g) = (finalizer.clone(), guid.clone());
        tasks.push(tokio::spawn(async move {
            let _ = f.finalize(&g).await;
            0
        }));
        let (eraser, g) = (e.svc.clone(), guid.clone());
        let delay = took.mul_f64(1.5 * i as f64 / SESSIONS as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let report = eraser
                .erase(&EraseRequest {
                    session_guids: vec![g],
                    keep_chunks: false,
                })
                .await
                .unwrap();
            report.failed.len()
        }));
    }
    let mut failed_erasures = 0;
    for t in tasks {
        failed_erasures += t.await.unwrap();
    }
    let left = |found: Vec<String>| -> Vec<&String> {
        guids
            .iter()
            .filter(|g| found.iter().any(|p| p.contains(g.as_str())))
            .collect()
    };
    let (objects, folders) = (
        left(files_under(&e.results)),
        left(entries_under(&e.results)),
    );
    assert!(
        failed_erasures == 0 && objects.is_empty() && folders.is_empty(),
        "of {SESSIONS} erased sessions, {failed_erasures} erasures failed, {} kept result \
         objects and {} kept folders (a finalize took {took:?}): {objects:?}",
        objects.len(),
        folders.len()
    );
}

/// How often `needle` occurs in the index's files (the database and its write-ahead log).
fn occurrences_in_index(dir: &Path, needle: &str) -> usize {
    let mut count = 0;
    for file in ["index.sqlite", "index.sqlite-wal"] {
        let Ok(bytes) = std::fs::read(dir.join(file)) else {
            continue;
        };
        count += bytes
            .windows(needle.len())
            .filter(|w| *w == needle.as_bytes())
            .count();
    }
    count
}

/// An erased session's rows do not linger in the SQLite file's free pages or its
/// write-ahead log: `strings` on the index finds no chunk name, no bucket, and the guid only
/// as often as a tombstone alone holds it.
#[tokio::test]
async fn an_erased_sessions_rows_leave_no_bytes_in_the_sqlite_files() {
    let (e, names) = ingested(Options::default()).await;
    e.svc.finalize(GUID).await.unwrap();
    let bucket = e.bucket.display().to_string();
    assert!(
        occurrences_in_index(e.dir.path(), &names[0]) > 0,
        "the test sees rows"
    );
    e.svc.erase(&request(false)).await.unwrap();

    // The same tombstone, in an index that never held the session.
    let fresh = Env::new(Options::default());
    fresh.svc.erase(&request(false)).await.unwrap();
    let tombstone_alone = occurrences_in_index(fresh.dir.path(), GUID);

    let chunk_names: usize = names
        .iter()
        .map(|n| occurrences_in_index(e.dir.path(), n))
        .sum();
    let buckets = occurrences_in_index(e.dir.path(), &bucket);
    let guids = occurrences_in_index(e.dir.path(), GUID);
    assert_eq!(
        (chunk_names, buckets, guids),
        (0, 0, tombstone_alone),
        "bytes of chunk names, of the bucket and of the guid left in the index files \
         after the erasure (the guid as often as a bare tombstone holds it)"
    );
}

/// One of the fixture's chunks with a bad event (a fractional `type`), still naming the
/// session first: refused at ingest, and holding the session's data all the same.
fn add_bad_chunk(e: &Env) -> String {
    let good = std::fs::read_dir(fixture_chunks())
        .unwrap()
        .map(|e| e.unwrap().path())
        .min()
        .unwrap();
    let text = std::fs::read_to_string(good).unwrap();
    assert!(text.contains(r#"{"type":"#));
    let bad = text.replacen(r#"{"type":4,"#, r#"{"type":4.5,"#, 1);
    assert_ne!(bad, text, "the fixture has a Meta event to break");
    let name = "2025-05-02T12:10:49.000000+0000.json".to_owned();
    std::fs::write(e.bucket.join(&name), bad).unwrap();
    name
}

#[tokio::test]
async fn erasure_deletes_the_rejected_chunks_that_name_the_session() {
    let (e, _) = ingested(Options::default()).await;
    let bad = add_bad_chunk(&e);
    let outcome = e.svc.ingest(&e.object(&bad)).await.unwrap();
    assert!(
        matches!(&outcome, IngestOutcome::Rejected { kind, .. } if kind == "bad_event"),
        "{outcome:?}"
    );
    let report = e.svc.erase(&request(false)).await.unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert!(
        !e.bucket.join(&bad).exists(),
        "a rejected chunk naming the erased session is deleted with it"
    );
    assert_eq!(e.chunks_left(), 0);
    let rejected = e.svc.index.rejected(100).await.unwrap();
    assert!(
        rejected.iter().all(|r| r.name != bad),
        "nor does its reject record outlive the erasure: {rejected:?}"
    );
}

#[tokio::test]
async fn reconcile_refuses_a_rejected_chunk_of_an_erased_session_as_deleted_session() {
    let (e, _) = ingested(Options::default()).await;
    let bad = add_bad_chunk(&e);
    e.svc.ingest(&e.object(&bad)).await.unwrap();
    // Kept by this erasure (or left by an older rrstitch): reconcile meets it again.
    e.svc.erase(&request(true)).await.unwrap();
    assert!(e.bucket.join(&bad).exists());
    let mut svc = e.svc.clone();
    svc.options.chunk_bucket = Some(StorageUrl::Local(e.bucket.clone()));
    let summary = svc.reconcile(None).await.unwrap();
    assert_eq!(summary.recovered, 0, "{summary:?}");
    let rejected = e.svc.index.rejected(100).await.unwrap();
    let record = rejected.iter().find(|r| r.name == bad);
    assert!(
        record.is_some_and(|r| r.kind == "deleted_session"),
        "refused as a chunk of a deleted session: {record:?}"
    );
    assert!(!e.bucket.join(&bad).exists(), "and deleted");
}

/// A chunk refused for its own faults after its session was erased is deleted on the spot,
/// like a valid late chunk of that session.
#[tokio::test]
async fn a_bad_chunk_of_an_erased_session_arriving_late_is_deleted() {
    let (e, _) = ingested(Options::default()).await;
    e.svc.erase(&request(false)).await.unwrap();
    let bad = add_bad_chunk(&e);
    let outcome = e.svc.ingest(&e.object(&bad)).await.unwrap();
    assert!(
        matches!(
            &outcome,
            IngestOutcome::DeletedSession {
                chunk_deleted: true,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert!(!e.bucket.join(&bad).exists());
}
