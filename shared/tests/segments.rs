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

/// The text of the gzip object at `path`, checked against the sizes the manifest's `info`
/// gives for it (stored and uncompressed).
fn stored_text(path: &Path, info: &Value) -> String {
    let stored = std::fs::read(path).unwrap();
    let mut text = String::new();
    GzDecoder::new(&stored[..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(info["stored_bytes"], stored.len() as u64, "{path:?}");
    assert_eq!(info["bytes"], text.len() as u64, "{path:?}");
    text
}

/// The events of every segment the manifest lists, in order, checked against what the
/// manifest says of each.
fn segment_events(e: &Env, manifest: &Value) -> Vec<Value> {
    let mut all = Vec::new();
    for info in manifest["segments"].as_array().unwrap() {
        let path = e.results.join(GUID).join(info["path"].as_str().unwrap());
        let text = stored_text(&path, info);
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

/// A session that logs to the console: two chunks, a log, an error and a warning.
const CONSOLE_GUID: &str = "console-session";

fn console_chunk(n: u32, events: &[String]) -> (String, String) {
    let name = format!("2025-05-02T12:00:0{n}.000000+0000.json");
    let body = format!(
        r#"{{"session_guid":"{CONSOLE_GUID}","session_data":[{}],"environment":"prod"}}"#,
        events.join(",")
    );
    (name, body)
}

fn console_event(t: u64, level: &str, items: &str) -> String {
    format!(
        r#"{{"type":6,"data":{{"plugin":"rrweb/console@1","payload":{{"level":"{level}","trace":["at x (a.js:1:1)"],"payload":[{items}]}}}},"timestamp":{t}}}"#
    )
}

/// Writes the console session's chunks (the first `upto`) and ingests them.
async fn add_console(e: &Env, chunks: &[(String, String)]) {
    for (name, body) in chunks {
        std::fs::write(e.bucket.join(name), body).unwrap();
    }
    let names: Vec<String> = chunks.iter().map(|(n, _)| n.clone()).collect();
    e.ingest_all(&names).await;
}

fn console_chunks() -> Vec<(String, String)> {
    vec![
        console_chunk(
            0,
            &[
                r#"{"type":4,"data":{"href":"https://a.test/","width":800,"height":600},"timestamp":1000}"#.into(),
                r#"{"type":2,"data":{"node":{"type":0,"childNodes":[],"id":1},"initialOffset":{"left":0,"top":0}},"timestamp":1001}"#.into(),
                console_event(1500, "log", r#""\"hello\"","42""#),
            ],
        ),
        console_chunk(1, &[console_event(2500, "error", r#""\"TypeError: x is undefined\"""#)]),
        console_chunk(2, &[console_event(3500, "warn", r#""\"late\"""#)]),
    ]
}

/// The console lines of the manifest's console file, checked against what it says of it.
fn console_lines(e: &Env, manifest: &Value) -> Vec<Value> {
    let info = &manifest["console"];
    let path = e
        .results
        .join(CONSOLE_GUID)
        .join(info["path"].as_str().unwrap());
    let text = stored_text(&path, info);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(info["entries"], lines.len() as u64);
    lines
}

/// The stitch extracts the console into its generation, the manifest lists it, a re-stitch
/// replaces it with its generation, and erasure deletes it with the session.
#[tokio::test]
async fn console_entries_are_extracted_beside_the_segments() {
    let e = env(None);
    let chunks = console_chunks();
    add_console(&e, &chunks[..2]).await;
    sweep(&e).await;
    let manifest = read_json(&e.results.join(CONSOLE_GUID).join("manifest.json"));
    let generation = manifest["generation"].as_str().unwrap().to_owned();
    assert_eq!(
        manifest["console"]["path"],
        format!("{generation}/console.jsonl.gz"),
        "{manifest}"
    );
    assert_eq!(
        console_lines(&e, &manifest),
        [
            serde_json::json!({"timestamp": 1500, "level": "log", "message": "\"hello\" 42"}),
            serde_json::json!({"timestamp": 2500, "level": "error", "message": "\"TypeError: x is undefined\""}),
        ]
    );
    let insights = &manifest["metadata"]["insights"];
    assert_eq!(
        (
            &insights["console_log_count"],
            &insights["console_error_count"]
        ),
        (&Value::from(1), &Value::from(1))
    );

    add_console(&e, &chunks[2..]).await;
    sweep(&e).await;
    let after = read_json(&e.results.join(CONSOLE_GUID).join("manifest.json"));
    let new = after["generation"].as_str().unwrap();
    assert_ne!(new, generation);
    assert_eq!(console_lines(&e, &after).len(), 3, "the late warning is in");
    assert!(
        !e.results.join(CONSOLE_GUID).join(&generation).exists(),
        "the old generation's console file went with it"
    );

    e.svc
        .erase(&EraseRequest {
            session_guids: vec![CONSOLE_GUID.into()],
            keep_chunks: false,
        })
        .await
        .unwrap();
    assert!(
        !e.results.join(CONSOLE_GUID).exists(),
        "erased with the session"
    );
}

/// A redaction rule that drops the console plugin leaves nothing to extract: no file, and
/// the manifest names none.
#[tokio::test]
async fn a_dropped_console_plugin_is_never_extracted() {
    let rules =
        rrstitch::engine::redact::Rules::from_json(r#"{"drop_plugins": ["rrweb/console@1"]}"#)
            .unwrap();
    let e = env_with(
        Options {
            redact: Some(Arc::new(rules)),
            ..options()
        },
        None,
    );
    add_console(&e, &console_chunks()).await;
    sweep(&e).await;
    let manifest = read_json(&e.results.join(CONSOLE_GUID).join("manifest.json"));
    assert!(manifest.get("console").is_none(), "{manifest}");
    let files = under(&e.results.join(CONSOLE_GUID), false);
    assert!(
        files.iter().all(|f| !f.ends_with("console.jsonl.gz")),
        "{files:?}"
    );
    assert_eq!(manifest["metadata"]["insights"]["console_error_count"], 0);
}
