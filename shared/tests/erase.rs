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
    Buckets, EraseRequest, IngestOutcome, ObjectRef, Options, Service, ServiceError,
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
}

type Hook = Box<dyn FnOnce() -> futures::future::BoxFuture<'static, ()> + Send>;

/// Runs a hook once, at one point of a finalize, around a local results store.
struct Hooked {
    when: When,
    hook: Mutex<Option<Hook>>,
}

#[async_trait]
impl Around for Hooked {
    async fn before(&self, op: Op, _: &str, _: &LocalStore) -> StorageResult<()> {
        let at = match op {
            Op::Stat => When::BeforeFence,
            Op::Writer => When::AfterFence,
            _ => return Ok(()),
        };
        if at == self.when {
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
        Wrapped::new(self.results.clone(), Hooked { when, hook })
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
    let e = Env::new(Options::default());
    let names = e.copy_fixture();
    e.ingest_all(&names).await;
    let eraser = e.svc.clone();
    let hook: Hook = Box::new(move || {
        Box::pin(async move {
            eraser.erase(&request(false)).await.unwrap();
        })
    });
    let finalizer = e.service(Options::default(), Some(e.hooked(When::BeforeFence, hook)));
    let err = finalizer.finalize(GUID).await.unwrap_err();
    assert!(matches!(err, ServiceError::Superseded(_)), "{err}");
    assert!(!e.result_path().exists(), "the fence kept the result out");
    assert_eq!(e.status().await, Some(SessionStatus::Deleted));
    assert_eq!(e.chunks_left(), 0);
}

#[tokio::test]
async fn a_delete_after_the_fence_is_undone_by_the_finalizer_itself() {
    let e = Env::new(Options::default());
    let names = e.copy_fixture();
    e.ingest_all(&names).await;
    let eraser = e.svc.clone();
    let hook: Hook = Box::new(move || {
        Box::pin(async move {
            let report = eraser.erase(&request(true)).await.unwrap();
            assert_eq!(report.erased[0].results, 0, "nothing written yet");
        })
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
    assert!(matches!(err, ServiceError::Superseded(_)), "{err}");
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
