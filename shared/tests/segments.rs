//! Segmented results over the embedded backends (a real directory, a real SQLite file): the
//! segments hold the single file's events, the manifest publishes them, a re-stitch replaces
//! them whole, a stale finalizer cannot publish over a newer one, and erasure leaves nothing.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use flate2::read::GzDecoder;
use rrstitch::engine::SegmentLimits;
use rrstitch::index::{sqlite::SqliteIndex, SessionIndex};
use rrstitch::service::{Buckets, EraseRequest, ObjectRef, Options, Service};
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::{
    Encoding, Object, ObjectMeta, ObjectStore, ObjectWriter, Precondition, Result as StorageResult,
    StorageUrl,
};
use rrstitch::time::Millis;
use serde_json::Value;

const GUID: &str = "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33";

fn fixture_chunks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rrweb-form/chunks")
}

fn fixture_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_chunks())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Small segments, so the 243-event form recording makes several.
fn options() -> Options {
    Options {
        idle: Duration::from_secs(60),
        segments: Some(SegmentLimits::with_max_bytes(16 << 10)),
        ..Options::default()
    }
}

struct Env {
    _dir: tempfile::TempDir,
    bucket: PathBuf,
    results: PathBuf,
    svc: Service,
    clock: Arc<AtomicI64>,
}

fn env_with(results_store: Option<Arc<dyn ObjectStore>>) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    let results = dir.path().join("results");
    std::fs::create_dir_all(&bucket).unwrap();
    let index: Arc<dyn SessionIndex> =
        Arc::new(SqliteIndex::open(dir.path().join("index.sqlite")).unwrap());
    let results_store = results_store
        .unwrap_or_else(|| Arc::new(LocalStore::open(StorageUrl::Local(results.clone())).unwrap()));
    let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
    let c = clock.clone();
    let svc = Service::new(
        index,
        results_store,
        Arc::new(Buckets::default()),
        options(),
    )
    .with_clock(Arc::new(move || Millis(c.load(Ordering::SeqCst))));
    Env {
        _dir: dir,
        bucket,
        results,
        svc,
        clock,
    }
}

impl Env {
    async fn add(&self, names: &[String]) {
        for n in names {
            std::fs::copy(fixture_chunks().join(n), self.bucket.join(n)).unwrap();
            let object = ObjectRef {
                bucket: StorageUrl::Local(self.bucket.clone()),
                name: n.clone(),
                generation: None,
            };
            self.svc.ingest(&object).await.unwrap();
        }
    }

    async fn sweep(&self) -> rrstitch::service::SweepSummary {
        self.clock.fetch_add(61_000, Ordering::SeqCst);
        self.svc.sweep().await.unwrap()
    }

    fn single_file(&self) -> Value {
        read_json(&self.results.join(format!("{GUID}.json")))
    }

    fn manifest(&self) -> Value {
        read_json(&self.results.join(GUID).join("manifest.json"))
    }

    /// Every object under the session's folder, relative to it.
    fn folder(&self) -> Vec<String> {
        let root = self.results.join(GUID);
        let mut out = Vec::new();
        let mut dirs = vec![root.clone()];
        while let Some(dir) = dirs.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    let rel = path.strip_prefix(&root).unwrap();
                    out.push(rel.to_string_lossy().into_owned());
                }
            }
        }
        out.sort();
        out
    }

    /// The events of every segment the manifest lists, in order, checked against what the
    /// manifest says of each.
    fn segment_events(&self, manifest: &Value) -> Vec<Value> {
        let mut all = Vec::new();
        for info in manifest["segments"].as_array().unwrap() {
            let path = self.results.join(GUID).join(info["path"].as_str().unwrap());
            let stored = std::fs::read(&path).unwrap();
            let mut text = String::new();
            GzDecoder::new(&stored[..])
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(info["stored_bytes"], stored.len() as u64);
            assert_eq!(info["bytes"], text.len() as u64);
            let events: Vec<Value> = serde_json::from_str(&text).unwrap();
            assert_eq!(info["events"], events.len() as u64);
            let times: Vec<f64> = events
                .iter()
                .map(|e| e["timestamp"].as_f64().unwrap())
                .collect();
            let min = times.iter().cloned().fold(f64::INFINITY, f64::min);
            let max = times.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            assert_eq!(info["first_timestamp"].as_f64().unwrap(), min);
            assert_eq!(info["last_timestamp"].as_f64().unwrap(), max);
            let seekable = events.len() > 1 && events[0]["type"] == 4 && events[1]["type"] == 2;
            assert_eq!(info["seekable"], seekable, "{path:?}");
            all.extend(events);
        }
        all
    }
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[tokio::test]
async fn segments_hold_the_single_files_events_and_the_manifest_lists_them() {
    let e = env_with(None);
    e.add(&fixture_names()).await;
    let summary = e.sweep().await;
    assert_eq!(summary.finalized.len(), 1, "{summary:?}");

    let single = e.single_file();
    let manifest = e.manifest();
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["session_guid"], GUID);
    assert_eq!(manifest["metadata"], single["metadata"]);
    let segments = manifest["segments"].as_array().unwrap();
    assert!(segments.len() >= 3, "16 KiB segments: {}", segments.len());
    assert_eq!(segments[0]["seekable"], true);
    let generation = manifest["generation"].as_str().unwrap();
    assert_eq!(segments[1]["path"], format!("{generation}/00001.json.gz"));
    assert!(segments
        .iter()
        .all(|s| s["bytes"].as_u64().unwrap() <= 16 << 10));

    assert_eq!(
        Value::Array(e.segment_events(&manifest)),
        single["rrweb_data"],
        "the segments are the single file's events, in order"
    );
    assert_eq!(e.folder().len(), segments.len() + 1, "{:?}", e.folder());
}

#[tokio::test]
async fn a_restitch_publishes_a_new_generation_and_deletes_the_old() {
    let e = env_with(None);
    let names = fixture_names();
    e.add(&names[..names.len() - 1]).await;
    e.sweep().await;
    let before = e.manifest();
    let old = before["generation"].as_str().unwrap().to_owned();
    let events_before = e.segment_events(&before).len();

    e.add(&names[names.len() - 1..]).await;
    let summary = e.sweep().await;
    assert_eq!(summary.finalized.len(), 1, "{summary:?}");
    let after = e.manifest();
    let new = after["generation"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(
        new > old.as_str(),
        "generations sort by time: {new} after {old}"
    );
    let left = e.folder();
    assert!(
        left.iter()
            .all(|p| p == "manifest.json" || p.starts_with(&format!("{new}/"))),
        "only the new generation is left: {left:?}"
    );
    assert_eq!(
        Value::Array(e.segment_events(&after)),
        e.single_file()["rrweb_data"]
    );
    assert!(
        e.segment_events(&after).len() > events_before,
        "the late chunk's events are in"
    );
}

#[tokio::test]
async fn erasure_deletes_the_segments_and_the_manifest() {
    let e = env_with(None);
    e.add(&fixture_names()).await;
    e.sweep().await;
    let segmented = e.folder().len() as u64;
    assert!(segmented > 1, "{:?}", e.folder());
    let report = e
        .svc
        .erase(&EraseRequest {
            session_guids: vec![GUID.into()],
            keep_chunks: false,
        })
        .await
        .unwrap();
    let erased = &report.erased[0];
    assert_eq!(
        erased.results,
        segmented + 1,
        "the single file too: {erased:?}"
    );
    assert!(e.folder().is_empty(), "{:?}", e.folder());
    assert!(!e.results.join(format!("{GUID}.json")).exists());
}

/// A results store that, whenever the finalizer opens its single-file writer (after its
/// fence), publishes a manifest of its own, as a newer finalizer would have.
#[derive(Debug)]
struct NewerPublisher {
    inner: LocalStore,
    published: Mutex<u32>,
}

#[async_trait]
impl ObjectStore for NewerPublisher {
    fn url(&self) -> &StorageUrl {
        self.inner.url()
    }
    async fn list(&self, prefix: &str) -> StorageResult<Vec<ObjectMeta>> {
        self.inner.list(prefix).await
    }
    async fn stat(&self, name: &str) -> StorageResult<ObjectMeta> {
        self.inner.stat(name).await
    }
    async fn get(&self, name: &str, limit: u64) -> StorageResult<Object> {
        self.inner.get(name, limit).await
    }
    async fn get_head(&self, name: &str, len: u64) -> StorageResult<Bytes> {
        self.inner.get_head(name, len).await
    }
    async fn put_encoded(
        &self,
        name: &str,
        body: Bytes,
        p: Precondition,
        e: Encoding,
    ) -> StorageResult<ObjectMeta> {
        self.inner.put_encoded(name, body, p, e).await
    }
    async fn writer(&self, name: &str, p: Precondition) -> StorageResult<Box<dyn ObjectWriter>> {
        if name.ends_with(".json") {
            let n = {
                let mut published = self.published.lock().unwrap();
                *published += 1;
                *published
            };
            let manifest = format!(
                r#"{{"format":1,"session_guid":"{GUID}","generation":"ffffffffffff-{n}","segments":[]}}"#
            );
            self.inner
                .put(
                    &format!("{GUID}/manifest.json"),
                    Bytes::from(manifest),
                    Precondition::None,
                )
                .await?;
        }
        self.inner.writer(name, p).await
    }
    async fn delete(&self, name: &str) -> StorageResult<bool> {
        self.inner.delete(name).await
    }
}

#[tokio::test]
async fn a_finalizer_never_publishes_over_a_newer_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let results_dir = dir.path().join("results-of-both");
    let store = Arc::new(NewerPublisher {
        inner: LocalStore::open(StorageUrl::Local(results_dir.clone())).unwrap(),
        published: Mutex::new(0),
    });
    let mut e = env_with(Some(store));
    e.results = results_dir;
    e.add(&fixture_names()).await;
    let summary = e.sweep().await;
    // Each attempt found a newer manifest at its publish and stitched again, until it gave
    // up: a transient failure, for the next sweep.
    assert!(summary.finalized.is_empty(), "{summary:?}");
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
    assert!(summary.failed[0].transient, "{summary:?}");
    assert_eq!(
        e.manifest()["generation"],
        "ffffffffffff-4",
        "the newest manifest stands"
    );
    assert_eq!(
        e.folder(),
        ["manifest.json"],
        "the stale stitch deleted the segments it wrote"
    );
}
