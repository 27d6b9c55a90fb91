//! Segmented results over the embedded backends (a real directory, a real SQLite file): the
//! segments hold the single file's events, the manifest publishes them, a re-stitch replaces
//! them whole, a stale finalizer cannot publish over a newer one, and erasure leaves nothing.

mod support;

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use flate2::read::GzDecoder;
use rrstitch::engine::SegmentLimits;
use rrstitch::service::{EraseRequest, Options};
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::{ObjectStore, Precondition, Result as StorageResult};
use serde_json::Value;
use support::{env_with, fixture_chunks, Around, Env, Op, Wrapped, GUID};

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

fn env(results_store: Option<Arc<dyn ObjectStore>>) -> Env {
    env_with(options(), results_store)
}

/// Copies `names` from the fixture into the bucket and ingests them.
async fn add(e: &Env, names: &[String]) {
    for n in names {
        std::fs::copy(fixture_chunks().join(n), e.bucket.join(n)).unwrap();
    }
    e.ingest_all(names).await;
}

/// A sweep once every session is idle.
async fn sweep(e: &Env) -> rrstitch::service::SweepSummary {
    e.advance(61);
    e.svc.sweep().await.unwrap()
}

fn manifest(e: &Env) -> Value {
    read_json(&e.results.join(GUID).join("manifest.json"))
}

/// Every object under the session's folder, relative to it.
fn folder(e: &Env) -> Vec<String> {
    under(&e.results.join(GUID), false)
}

/// The directories under `dir`, relative to it.
fn directories(dir: &Path) -> Vec<String> {
    under(dir, true)
}

/// The files (or the directories) under `root`, relative to it, sorted.
fn under(root: &Path, directories: bool) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let is_dir = path.is_dir();
            if is_dir == directories {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
            if is_dir {
                dirs.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The events of every segment the manifest lists, in order, checked against what the
/// manifest says of each.
fn segment_events(e: &Env, manifest: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for info in manifest["segments"].as_array().unwrap() {
        let path = e.results.join(GUID).join(info["path"].as_str().unwrap());
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

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

#[tokio::test]
async fn segments_hold_the_single_files_events_and_the_manifest_lists_them() {
    let e = env(None);
    add(&e, &fixture_names()).await;
    let summary = sweep(&e).await;
    assert_eq!(summary.finalized.len(), 1, "{summary:?}");

    let single = e.result();
    let manifest = manifest(&e);
    assert_eq!(manifest["format"], 1);
    assert_eq!(manifest["session_guid"], GUID);
    assert_eq!(manifest["metadata"], single["metadata"]);
    let insights = &manifest["metadata"]["insights"];
    assert!(
        insights["click_count"].as_u64().is_some_and(|n| n > 0),
        "the manifest carries the insights: {insights}"
    );
    assert_eq!(
        insights["first_url"], single["metadata"]["urls"][0],
        "one page in this recording"
    );
    let segments = manifest["segments"].as_array().unwrap();
    assert!(segments.len() >= 3, "16 KiB segments: {}", segments.len());
    assert_eq!(segments[0]["seekable"], true);
    let generation = manifest["generation"].as_str().unwrap();
    assert_eq!(segments[1]["path"], format!("{generation}/00001.json.gz"));
    assert!(segments
        .iter()
        .all(|s| s["bytes"].as_u64().unwrap() <= 16 << 10));

    assert_eq!(
        Value::Array(segment_events(&e, &manifest)),
        single["rrweb_data"],
        "the segments are the single file's events, in order"
    );
    assert_eq!(folder(&e).len(), segments.len() + 1, "{:?}", folder(&e));
}

/// `RRSTITCH_INSIGHTS=0` reaches the stitch: neither result says anything of insights.
#[tokio::test]
async fn insights_turned_off_are_left_out_of_both_results() {
    let e = env_with(
        Options {
            insights: false,
            ..options()
        },
        None,
    );
    add(&e, &fixture_names()).await;
    sweep(&e).await;
    assert!(e.result()["metadata"].get("insights").is_none());
    assert!(manifest(&e)["metadata"].get("insights").is_none());
}

#[tokio::test]
async fn a_restitch_publishes_a_new_generation_and_deletes_the_old() {
    let e = env(None);
    let names = fixture_names();
    add(&e, &names[..names.len() - 1]).await;
    sweep(&e).await;
    let before = manifest(&e);
    let old = before["generation"].as_str().unwrap().to_owned();
    let events_before = segment_events(&e, &before).len();

    add(&e, &names[names.len() - 1..]).await;
    let summary = sweep(&e).await;
    assert_eq!(summary.finalized.len(), 1, "{summary:?}");
    let after = manifest(&e);
    let new = after["generation"].as_str().unwrap();
    assert_ne!(new, old);
    assert!(
        new > old.as_str(),
        "generations sort by time: {new} after {old}"
    );
    let left = folder(&e);
    assert!(
        left.iter()
            .all(|p| p == "manifest.json" || p.starts_with(&format!("{new}/"))),
        "only the new generation is left: {left:?}"
    );
    assert_eq!(
        directories(&e.results.join(GUID)),
        [new],
        "the old generation's directory goes with its segments"
    );
    assert_eq!(
        Value::Array(segment_events(&e, &after)),
        e.result()["rrweb_data"]
    );
    assert!(
        segment_events(&e, &after).len() > events_before,
        "the late chunk's events are in"
    );
}

/// The whole fixture stitched into several segments; how many objects its folder holds.
async fn stitched(e: &Env) -> u64 {
    add(e, &fixture_names()).await;
    sweep(e).await;
    let segmented = folder(e).len() as u64;
    assert!(segmented > 1, "{:?}", folder(e));
    segmented
}

#[tokio::test]
async fn erasure_deletes_the_segments_and_the_manifest() {
    let e = env(None);
    let segmented = stitched(&e).await;
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
    assert!(folder(&e).is_empty(), "{:?}", folder(&e));
    assert!(!e.results.join(format!("{GUID}.json")).exists());
    assert!(
        !e.results.join(GUID).exists(),
        "no empty folders are left of an erased session: {:?}",
        directories(&e.results.join(GUID))
    );
}

/// `prune --prune-results` removes everything a result is made of: the single file, the
/// manifest and every segment (the viewer lists sessions by their manifests).
#[tokio::test]
async fn pruning_results_removes_the_segments_and_the_manifest() {
    let e = env(None);
    let segmented = stitched(&e).await;
    // The files are from now; the service's clock is weeks ahead, so a day's age is old.
    let dry = e
        .svc
        .prune(Duration::from_secs(86_400), true, true)
        .await
        .unwrap();
    assert_eq!(
        dry.results_deleted,
        segmented + 1,
        "a dry run counts what would go: {dry:?}"
    );
    assert_eq!(
        folder(&e).len() as u64,
        segmented,
        "a dry run deletes nothing"
    );
    let report = e
        .svc
        .prune(Duration::from_secs(86_400), true, false)
        .await
        .unwrap();
    assert_eq!(report.sessions_forgotten, 1, "{report:?}");
    assert!(
        folder(&e).is_empty(),
        "the manifest and segments of a pruned result: {:?}",
        folder(&e)
    );
    assert!(!e.results.join(format!("{GUID}.json")).exists());
    assert!(!e.results.join(GUID).exists(), "nor their folders");
    assert_eq!(report.results_deleted, segmented + 1, "{report:?}");
}

/// Whenever the finalizer opens its single-file writer (after its fence), publishes a
/// manifest of its own, as a newer finalizer would have.
#[derive(Default)]
struct NewerPublisher {
    published: Mutex<u32>,
}

#[async_trait]
impl Around for NewerPublisher {
    async fn before(&self, op: Op, name: &str, inner: &LocalStore) -> StorageResult<()> {
        if op != Op::Writer || !name.ends_with(".json") {
            return Ok(());
        }
        let n = {
            let mut published = self.published.lock().unwrap();
            *published += 1;
            *published
        };
        let manifest = format!(
            r#"{{"format":1,"session_guid":"{GUID}","generation":"ffffffffffff-{n}","segments":[]}}"#
        );
        let name = format!("{GUID}/manifest.json");
        inner
            .put(&name, Bytes::from(manifest), Precondition::None)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_finalizer_never_publishes_over_a_newer_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let results_dir = dir.path().join("results-of-both");
    let store = Arc::new(Wrapped::new(results_dir.clone(), NewerPublisher::default()));
    let mut e = env(Some(store));
    e.results = results_dir;
    add(&e, &fixture_names()).await;
    let summary = sweep(&e).await;
    // Each attempt found a newer manifest at its publish and stitched again, until it gave
    // up: a transient failure, for the next sweep.
    assert!(summary.finalized.is_empty(), "{summary:?}");
    assert_eq!(summary.failed.len(), 1, "{summary:?}");
    assert!(summary.failed[0].transient, "{summary:?}");
    assert_eq!(
        manifest(&e)["generation"],
        "ffffffffffff-4",
        "the newest manifest stands"
    );
    assert_eq!(
        folder(&e),
        ["manifest.json"],
        "the stale stitch deleted the segments it wrote"
    );
}
