//! The real recording: stitching the fixture's six chunks gives rrweb's own event array,
//! byte for byte, and the seed's output shape.

mod support;

use std::path::PathBuf;

use rrstitch_engine::{SessionGuid, Stitcher};
use support::{chunks_in_order, real_recordings, stitch_into};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rrweb-form")
}

fn stitch_fixture() -> (Vec<u8>, rrstitch_engine::Metadata) {
    stitch_dir(
        &fixture().join("chunks"),
        "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33",
    )
}

/// Stitches every chunk in `dir` as session `guid`, in stitch order.
fn stitch_dir(dir: &std::path::Path, guid: &str) -> (Vec<u8>, rrstitch_engine::Metadata) {
    let stitcher = Stitcher::new(Vec::new(), SessionGuid::parse(guid).unwrap()).unwrap();
    stitch_into(stitcher, &chunks_in_order(dir))
}

#[test]
fn events_are_rrwebs_own_bytes() {
    let (out, _) = stitch_fixture();
    let full = std::fs::read_to_string(fixture().join("full.json")).unwrap();
    let out = String::from_utf8(out).unwrap();
    let start = out.find("\"rrweb_data\":").unwrap() + "\"rrweb_data\":".len();
    let end = out.rfind(",\"metadata\":").unwrap();
    assert_eq!(
        &out[start..end],
        full.trim(),
        "rrweb_data must be full.json byte for byte"
    );
}

#[test]
fn output_is_the_seed_shape_and_metadata_is_right() {
    let (out, meta) = stitch_fixture();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3);
    assert_eq!(v["session_guid"], "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33");
    assert_eq!(v["metadata"]["environment"], "production");
    assert_eq!(
        v["metadata"]["timestamp_list"],
        serde_json::json!([
            "2025-05-02T12:10:50.644191+0000",
            "2025-05-02T12:10:51.671003+0000",
            "2025-05-02T12:10:52.253586+0000",
            "2025-05-02T12:10:52.923524+0000",
            "2025-05-02T12:10:53.418676+0000",
            "2025-05-02T12:10:53.963547+0000"
        ])
    );
    // Facts recorded alongside the fixture.
    let expect: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("expect.json")).unwrap())
            .unwrap();
    assert_eq!(meta.event_count, expect["events"].as_u64().unwrap());
    assert_eq!(
        meta.first_event_timestamp.as_ref().unwrap().as_u64(),
        expect["first_timestamp"].as_u64()
    );
    assert_eq!(
        meta.last_event_timestamp.as_ref().unwrap().as_u64(),
        expect["last_timestamp"].as_u64()
    );
    assert!(meta.replayable);
    assert_eq!(meta.full_snapshot_count, 1);
    assert_eq!(meta.urls, ["http://127.0.0.1:34057/pages/form.html"]);
    assert!(meta.click_count > 0);
    assert!(meta.warnings.is_empty(), "{:?}", meta.warnings);
    // Compact, field order fixed: the whole document is exactly this.
    let full = std::fs::read_to_string(fixture().join("full.json")).unwrap();
    let expected = format!(
        "{{\"session_guid\":\"6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33\",\"rrweb_data\":{},\"metadata\":{}}}",
        full.trim(),
        serde_json::to_string(&meta).unwrap()
    );
    assert_eq!(String::from_utf8(out).unwrap(), expected);
    assert!(serde_json::to_string(&meta)
        .unwrap()
        .starts_with("{\"environment\":\"production\",\"timestamp_list\":["));
}

/// Stitches one real recording's chunks (`fixtures/real/<dir>/chunks`, see its SOURCE.md).
fn stitch_real(dir: &std::path::Path) -> (Vec<u8>, rrstitch_engine::Metadata) {
    let guid = format!("real-{}", dir.file_name().unwrap().to_string_lossy());
    stitch_dir(&dir.join("chunks"), &guid)
}

/// Fifteen real recordings (rrweb's own test events and player demo,
/// PostHog's and Highlight's fixtures): each stitches back to its original event array,
/// byte for byte, with the metadata the array implies.
#[test]
fn real_recordings_stitch_back_to_their_originals() {
    for dir in real_recordings() {
        let original = std::fs::read_to_string(dir.join("original.json")).unwrap();
        let (out, meta) = stitch_real(&dir);
        let out = String::from_utf8(out).unwrap();
        let start = out.find("\"rrweb_data\":").unwrap() + "\"rrweb_data\":".len();
        let end = out.rfind(",\"metadata\":").unwrap();
        assert_eq!(&out[start..end], original.trim(), "{}", dir.display());
        let events: Vec<serde_json::Value> = serde_json::from_str(&original).unwrap();
        assert_eq!(meta.event_count, events.len() as u64, "{}", dir.display());
        let ts: Vec<f64> = events
            .iter()
            .map(|e| e["timestamp"].as_f64().unwrap())
            .collect();
        let min = ts.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = ts.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        assert_eq!(
            meta.first_event_timestamp.as_ref().and_then(|n| n.as_f64()),
            Some(min),
            "{}",
            dir.display()
        );
        assert_eq!(
            meta.duration_ms.as_f64(),
            Some(max - min),
            "{}",
            dir.display()
        );
        let fulls = events.iter().filter(|e| e["type"] == 2).count() as u64;
        assert_eq!(meta.full_snapshot_count, fulls, "{}", dir.display());
        assert_eq!(meta.duplicate_events, 0, "{}", dir.display());
        // A recording without a FullSnapshot cannot replay; every other one here does.
        assert_eq!(
            meta.replayable,
            fulls > 0,
            "{}: {:?}",
            dir.display(),
            meta.warnings
        );
    }
}
