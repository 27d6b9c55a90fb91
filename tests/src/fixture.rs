//! The recorded form (`fixtures/rrweb-form/`) as the flow and queue tests feed it to a
//! deployment: its session guid, its six chunks in upload order, the events a stitch of them
//! must give, a late chunk that re-opens the session, and a tiny session of two events. One
//! definition for every cloud's tests, so the AWS and GCP flows assert the same numbers
//! about the same input.

use std::path::PathBuf;

use serde_json::Value;

/// The recorded session's guid.
pub const GUID: &str = "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33";

/// The fixture's directory.
pub fn dir() -> PathBuf {
    crate::repo_root().join("fixtures/rrweb-form")
}

/// The chunks' names, in upload order.
pub fn chunk_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir().join("chunks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// One chunk's bytes.
pub fn chunk(name: &str) -> Vec<u8> {
    std::fs::read(dir().join("chunks").join(name)).unwrap()
}

/// The stitched session's events: what `rrweb_data` of a result must equal.
pub fn full_events() -> Value {
    serde_json::from_slice(&std::fs::read(dir().join("full.json")).unwrap()).unwrap()
}

/// A chunk uploaded after the session was stitched, with one event (the 244th): its name and
/// body.
pub fn late_chunk() -> (String, String) {
    (
        "2025-05-02T12:20:00.000000+0000.json".to_owned(),
        format!(
            r#"{{"session_guid":"{GUID}","session_data":[{{"type":5,"timestamp":1746188400000,"data":{{"tag":"late"}}}}],"environment":"production"}}"#
        ),
    )
}

/// The one chunk of a small session `guid`: a Meta and a mouse move.
pub fn small_chunk(guid: &str) -> Vec<u8> {
    format!(
        r#"{{"session_guid":"{guid}","session_data":[{{"type":4,"timestamp":1746187850000,"data":{{"href":"https://example.com/","width":800,"height":600}}}},{{"type":3,"timestamp":1746187851000,"data":{{"source":1}}}}],"environment":"production"}}"#
    )
    .into_bytes()
}

/// A bucket no event ever indexed, for the backfill tests: 12 sessions (`backfill-00` …)
/// of 3 small chunks, spread over three days and several hours of each. `(name, guid)`.
pub fn backfill_bucket() -> Vec<(String, String)> {
    let mut chunks = Vec::new();
    for i in 0..12 {
        for c in 0..3 {
            let name = format!(
                "2025-05-{:02}T{:02}:1{c}:00.000000+0000.json",
                3 + i / 4,
                (i % 4) * 5 + c
            );
            chunks.push((name, format!("backfill-{i:02}")));
        }
    }
    chunks
}
