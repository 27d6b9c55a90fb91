//! The service over the embedded backends (a real directory, a real SQLite file): the
//! ingest → sweep flow, redelivery, late chunks, vanished objects, streaming, the idle clock.

mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use rrstitch::index::SessionStatus;
use rrstitch::service::{IngestOutcome, Options, ServiceError};
use rrstitch::storage::local::LocalStore;
use rrstitch::storage::{ObjectMeta, ObjectWriter, Result as StorageResult, StorageUrl};
use support::{env_with, fixture_chunks, Around, Env, Wrapped, GUID};

fn env() -> Env {
    env_with(
        Options {
            idle: Duration::from_secs(60),
            ..Options::default()
        },
        None,
    )
}

fn full_events() -> serde_json::Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/rrweb-form/full.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

#[tokio::test]
async fn ingest_then_sweep_gives_the_full_recording() {
    let e = env();
    let names = e.copy_fixture(0);
    let outcomes = e.ingest_all(&names).await;
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            IngestOutcome::Recorded {
                reopened: false,
                ..
            }
        )),
        "{outcomes:?}"
    );

    // Not idle yet: nothing happens.
    let early = e.svc.sweep().await.unwrap();
    assert_eq!(early.considered, 0);
    assert!(!e.results.join(format!("{GUID}.json")).exists());

    e.advance(61);
    let summary = e.svc.sweep().await.unwrap();
    assert_eq!(summary.finalized.len(), 1);
    assert_eq!(summary.finalized[0].completion, "finalized");
    let v = e.result();
    assert_eq!(v["rrweb_data"], full_events());
    assert_eq!(v["metadata"]["chunk_count"], 6);
    let s = e
        .svc
        .index
        .session(&rrstitch::engine::SessionGuid::parse(GUID).unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(s.status, SessionStatus::Finalized);

    // A redelivered event changes nothing, and nothing is stitched again.
    let again = e.svc.ingest(&e.object(&names[2])).await.unwrap();
    assert!(
        matches!(again, IngestOutcome::AlreadyKnown { .. }),
        "{again:?}"
    );
    e.advance(120);
    assert_eq!(e.svc.sweep().await.unwrap().considered, 0);
}

#[tokio::test]
async fn a_late_chunk_reopens_and_the_next_sweep_includes_it() {
    let e = env();
    let first_five = e.copy_fixture(1);
    e.ingest_all(&first_five).await;
    e.advance(61);
    e.svc.sweep().await.unwrap();
    assert_eq!(e.result()["rrweb_data"].as_array().unwrap().len(), 243 - 40);

    let all = e.copy_fixture(0);
    let late = e.svc.ingest(&e.object(&all[5])).await.unwrap();
    assert!(
        matches!(late, IngestOutcome::Recorded { reopened: true, .. }),
        "{late:?}"
    );
    e.advance(61);
    let summary = e.svc.sweep().await.unwrap();
    assert_eq!(summary.finalized.len(), 1);
    assert_eq!(e.result()["rrweb_data"], full_events());
}

#[tokio::test]
async fn an_identical_re_upload_is_not_stitched_again() {
    let e = env();
    let names = e.copy_fixture(0);
    e.ingest_all(&names).await;
    e.advance(61);
    assert_eq!(e.svc.sweep().await.unwrap().finalized.len(), 1);
    // The same bytes written again under the same name: a new generation (mtime), no new data.
    let path = e.bucket.join(&names[2]);
    let bytes = std::fs::read(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    std::fs::write(&path, &bytes).unwrap();
    let f = std::fs::File::options().write(true).open(&path).unwrap();
    f.set_modified(before + Duration::from_secs(1)).unwrap();
    let again = e.svc.ingest(&e.object(&names[2])).await.unwrap();
    assert!(
        matches!(again, IngestOutcome::AlreadyKnown { .. }),
        "{again:?}"
    );
    e.advance(61);
    assert_eq!(
        e.svc.sweep().await.unwrap().considered,
        0,
        "nothing changed"
    );
    // Other bytes under that name are new data and stitched again.
    let mut changed: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    changed["session_data"].as_array_mut().unwrap().pop();
    std::fs::write(&path, serde_json::to_vec(&changed).unwrap()).unwrap();
    f.set_modified(before + Duration::from_secs(2)).unwrap();
    let changed = e.svc.ingest(&e.object(&names[2])).await.unwrap();
    assert!(
        matches!(changed, IngestOutcome::Recorded { reopened: true, .. }),
        "{changed:?}"
    );
    e.advance(61);
    assert_eq!(e.svc.sweep().await.unwrap().finalized.len(), 1);
}

#[tokio::test]
async fn manual_finalize_works_now_and_refuses_unknown_or_hostile_ids() {
    let e = env();
    let names = e.copy_fixture(0);
    e.ingest_all(&names).await;
    let report = e.svc.finalize(GUID).await.unwrap();
    assert_eq!(report.events, 243);
    assert_eq!(e.result()["rrweb_data"], full_events());
    assert!(matches!(
        e.svc.finalize("no-such-session").await,
        Err(ServiceError::UnknownSession(_))
    ));
    let hostile = e.svc.finalize("../../etc/passwd").await;
    assert!(
        matches!(hostile, Err(ServiceError::InvalidRequest(_))),
        "{hostile:?}"
    );
}

#[tokio::test]
async fn rejects_are_recorded_and_the_object_is_left_alone() {
    let e = env();
    let bad = "2025-05-02T12:10:59.000000+0000.json";
    let body = b"{\"session_guid\":\"x\",\"session_data\":[{\"type\":3}],\"environment\":\"e\"}";
    std::fs::write(e.bucket.join(bad), body).unwrap();
    let before = std::fs::metadata(e.bucket.join(bad))
        .unwrap()
        .modified()
        .unwrap();
    let outcome = e.svc.ingest(&e.object(bad)).await.unwrap();
    let IngestOutcome::Rejected { kind, reason, .. } = outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(kind, "bad_event");
    assert!(reason.contains("event 0"), "{reason}");
    assert_eq!(
        std::fs::read(e.bucket.join(bad)).unwrap(),
        body,
        "never modified"
    );
    assert_eq!(
        std::fs::metadata(e.bucket.join(bad))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    let rejected = e.svc.index.rejected(10).await.unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].name, bad);
    // A name that is not a timestamp is rejected without reading; a non-chunk is ignored.
    std::fs::write(e.bucket.join("notes.txt"), "x").unwrap();
    assert!(matches!(
        e.svc.ingest(&e.object("notes.txt")).await.unwrap(),
        IngestOutcome::Ignored { .. }
    ));
    std::fs::write(e.bucket.join("final.json"), "{}").unwrap();
    assert!(matches!(
        e.svc.ingest(&e.object("final.json")).await.unwrap(),
        IngestOutcome::Rejected { ref kind, .. } if kind == "bad_name"
    ));
}

#[tokio::test]
async fn vanished_and_missing_objects_lose_nothing_else() {
    let e = env();
    let gone = e
        .svc
        .ingest(&e.object("2025-05-02T12:00:00.000000+0000.json"))
        .await
        .unwrap();
    assert!(matches!(gone, IngestOutcome::Vanished { .. }), "{gone:?}");

    let names = e.copy_fixture(0);
    e.ingest_all(&names).await;
    std::fs::remove_file(e.bucket.join(&names[3])).unwrap();
    let report = e.svc.finalize(GUID).await.unwrap();
    assert_eq!(report.missing_chunks, vec![names[3].clone()]);
    let v = e.result();
    assert_eq!(v["metadata"]["chunk_count"], 5);
    assert!(v["metadata"]["warnings"]
        .to_string()
        .contains("no longer exists"));
    assert_eq!(v["rrweb_data"].as_array().unwrap().len(), 243 - 40);
}

#[tokio::test]
async fn gzip_output_is_the_same_document() {
    let e = env_with(
        Options {
            output_gzip: true,
            ..Options::default()
        },
        None,
    );
    let names = e.copy_fixture(0);
    e.ingest_all(&names).await;
    let report = e.svc.finalize(GUID).await.unwrap();
    assert_eq!(report.result_object, format!("{GUID}.json.gz"));
    let gz = std::fs::read(e.results.join(&report.result_object)).unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut text)
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["rrweb_data"], full_events());
}

/// Records the size of every part written and counts the bytes read.
#[derive(Default)]
struct Recording {
    parts: Arc<Mutex<Vec<usize>>>,
    read: Arc<AtomicU64>,
}

fn recording(root: PathBuf) -> Wrapped<Recording> {
    Wrapped::new(root, Recording::default())
}

struct RecordingWriter {
    inner: Box<dyn ObjectWriter>,
    parts: Arc<Mutex<Vec<usize>>>,
}

#[async_trait]
impl ObjectWriter for RecordingWriter {
    async fn write(&mut self, data: Bytes) -> StorageResult<()> {
        self.parts.lock().unwrap().push(data.len());
        self.inner.write(data).await
    }
    async fn finish(self: Box<Self>) -> StorageResult<ObjectMeta> {
        self.inner.finish().await
    }
    async fn abort(self: Box<Self>) {
        self.inner.abort().await
    }
}

#[async_trait]
impl Around for Recording {
    fn read(&self, bytes: usize) {
        self.read.fetch_add(bytes as u64, Ordering::SeqCst);
    }
    fn writer(&self, inner: Box<dyn ObjectWriter>) -> Box<dyn ObjectWriter> {
        Box::new(RecordingWriter {
            inner,
            parts: self.parts.clone(),
        })
    }
}

#[tokio::test]
async fn results_stream_out_in_parts_bounded_by_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = recording(dir.path().join("r"));
    let parts = store.around.parts.clone();
    let part_size = 8 * 1024;
    let e = env_with(
        Options {
            part_size,
            ..Options::default()
        },
        Some(Arc::new(store)),
    );
    let names = e.copy_fixture(0);
    e.ingest_all(&names).await;
    let report = e.svc.finalize(GUID).await.unwrap();
    let parts = parts.lock().unwrap().clone();
    let largest_chunk = names
        .iter()
        .map(|n| std::fs::metadata(e.bucket.join(n)).unwrap().len() as usize)
        .max()
        .unwrap();
    assert!(
        parts.len() >= 4,
        "a 40 KB result in 8 KB parts is written as it goes: {parts:?}"
    );
    assert!(
        parts.iter().all(|&p| p <= part_size + largest_chunk),
        "no part holds more than the part size plus one chunk: {parts:?}"
    );
    assert_eq!(parts.iter().sum::<usize>() as u64, report.bytes);
}

/// Backfill learns an SDK-shaped chunk's session from its first bytes, so each such chunk is
/// downloaded whole once (to stitch it), not twice; a chunk that does not start with its guid
/// is still grouped, by a full read.
#[tokio::test]
async fn backfill_downloads_each_sdk_chunk_once() {
    use rrstitch::service::backfill::{backfill, NoProgress, HEAD_BYTES};
    let dir = tempfile::tempdir().unwrap();
    let source = recording(dir.path().join("bucket"));
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let mut total = 0;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(fixture_chunks()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_owned();
        total += std::fs::copy(&path, bucket.join(&name)).unwrap();
        names.push(name);
    }
    // One chunk with its fields in another order: its head names no session.
    names.sort();
    let reordered = bucket.join(&names[0]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&reordered).unwrap()).unwrap();
    let text = format!(
        r#"{{"environment":{},"session_data":{},"session_guid":{}}}"#,
        v["environment"], v["session_data"], v["session_guid"]
    );
    std::fs::write(&reordered, &text).unwrap();
    let reordered_len = std::fs::metadata(&reordered).unwrap().len();
    total += reordered_len
        - std::fs::metadata(fixture_chunks().join(&names[0]))
            .unwrap()
            .len();

    let read = source.around.read.clone();
    let out = dir.path().join("out");
    let results = Arc::new(LocalStore::open(StorageUrl::Local(out.clone())).unwrap());
    let summary = backfill(Arc::new(source), results, &Options::default(), &NoProgress)
        .await
        .unwrap();
    assert_eq!(summary.sessions_written, 1, "{summary:?}");
    assert_eq!(summary.rejected, 0, "{summary:?}");
    let stitched: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join(format!("{GUID}.json"))).unwrap()).unwrap();
    assert_eq!(stitched["rrweb_data"], full_events());

    // Every chunk's head (all are longer than HEAD_BYTES), every chunk whole once to stitch
    // it, and the reordered one whole once more to group it.
    let heads = names.len() as u64 * HEAD_BYTES;
    assert_eq!(
        read.load(Ordering::SeqCst),
        total + heads + reordered_len,
        "bytes read from a {total}-byte bucket"
    );
}

/// `rrstitch status` reads where things stand from the index: an open session and how long
/// it has idled, the last day's rejects by reason, and the sweep that finalized it.
#[tokio::test]
async fn status_says_where_things_stand() {
    let e = env();
    let names = e.copy_fixture(0);
    e.ingest_all(&names).await;
    let bad = "2025-05-02T12:10:59.000000+0000.json";
    std::fs::write(e.bucket.join(bad), b"{\"session_guid\":").unwrap();
    std::fs::write(e.bucket.join("final.json"), "{}").unwrap();
    for name in [bad, "final.json"] {
        e.svc.ingest(&e.object(name)).await.unwrap();
    }
    e.advance(30);

    let before = e.svc.status().await.unwrap();
    assert_eq!((before.open, before.finalizing), (1, 0), "{before:?}");
    let oldest = before.oldest_open.as_ref().expect("the open session");
    assert_eq!(oldest.session_guid, GUID);
    assert!((30.0..31.0).contains(&oldest.seconds), "{oldest:?}");
    assert_eq!(before.rejects_24h.total, 2);
    assert_eq!(
        before.rejects_24h.by_reason,
        [("bad_json".to_owned(), 1), ("bad_name".to_owned(), 1)].into()
    );
    assert_eq!(before.last_sweep, None, "no sweep ran yet");
    assert!(before.to_string().contains("none recorded"), "{before}");

    e.advance(31);
    e.svc.sweep().await.unwrap();
    let after = e.svc.status().await.unwrap();
    assert_eq!((after.open, after.finalizing), (0, 0), "{after:?}");
    assert_eq!(after.oldest_open, None);
    let sweep = after
        .last_sweep
        .as_ref()
        .expect("the sweep recorded itself");
    assert_eq!((sweep.mode.as_str(), sweep.sessions), ("inline", 1));
    // The rejects were refused 61 s ago: still in the window; a day later they are not.
    assert_eq!(after.rejects_24h.total, 2);
    e.advance(24 * 3600);
    assert_eq!(e.svc.status().await.unwrap().rejects_24h.total, 0);
    let table = after.to_string();
    for line in [
        "open               0",
        "rejects (24 h)     2",
        "(inline): 1 sessions",
    ] {
        assert!(table.contains(line), "{line:?} not in\n{table}");
    }
}
