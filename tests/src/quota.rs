//! The per-session quota as the flow tests exercise it on each cloud: three chunks of one
//! session under a quota two of them fit, the third refused as `over_quota`; a check —
//! through the real CLI, reading the cloud index — that the refusal was recorded with its
//! session and size; and one on the stitched result, which must say what was refused.

use serde_json::Value;

use crate::bins;

/// The session the quota cuts short.
pub const GUID: &str = "quota-1";

/// Bytes of padding in each chunk.
const PAD_BYTES: usize = 32 * 1024;

/// The session's three chunks, oldest first: (object name, body), all of one size.
pub fn chunks() -> Vec<(String, Vec<u8>)> {
    (0..3)
        .map(|i| {
            let name = format!("2025-05-02T14:00:0{i}.000000+0000.json");
            // Padded past the whole fixture session (about 40 KB), so a quota two and a half
            // of these chunks wide refuses only this session's third chunk, never the
            // fixture's, which the same functions ingest.
            let pad = "x".repeat(PAD_BYTES);
            let body = format!(
                r#"{{"session_guid":"{GUID}","session_data":[{{"type":5,"timestamp":174619440{i}000,"data":{{"tag":"pad","payload":"{pad}"}}}}],"environment":"production"}}"#
            );
            (name, body.into_bytes())
        })
        .collect()
}

/// The size of each chunk.
pub fn chunk_bytes() -> u64 {
    chunks()[0].1.len() as u64
}

/// `RRSTITCH_SESSION_MAX_BYTES` as a function's variable carries it: two and a half chunks,
/// so two fit and the third would cross the quota.
pub fn max_bytes() -> String {
    (chunk_bytes() * 5 / 2).to_string()
}

/// The outcome kinds ingest must answer for [`chunks`], in order.
pub const OUTCOMES: [&str; 3] = ["recorded", "recorded", "rejected"];

/// Runs `rrstitch rejected --json` on `env`'s index and checks the third chunk is there as
/// `over_quota`, naming its session, with its size.
pub fn assert_refusal_recorded(env: &[(String, String)]) {
    let out = bins::succeeds(
        bins::command("rrstitch", env).args(["rejected", "--json", "--limit", "1000"]),
    );
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (name, body) = &chunks()[2];
    let row = rows
        .iter()
        .find(|r| r["name"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} is recorded: {rows:?}"));
    assert_eq!(row["kind"], "over_quota", "{row}");
    assert_eq!(row["session_guid"], GUID, "{row}");
    assert_eq!(row["size"], body.len() as u64, "{row}");
    for (name, _) in &chunks()[..2] {
        assert!(
            !rows.iter().any(|r| r["name"] == name.as_str()),
            "{name} fit the quota: {rows:?}"
        );
    }
}

/// The stitched session holds the two chunks that fit, and its `metadata.warnings` says one
/// chunk of its size was refused over the quota.
pub fn assert_result_says_so(result: &Value) {
    assert_eq!(result["session_guid"], GUID);
    assert_eq!(
        result["metadata"]["chunk_count"], 2,
        "{}",
        result["metadata"]
    );
    let warnings = result["metadata"]["warnings"].as_array().unwrap();
    let expected = format!("1 chunk(s), {} bytes, refused over", chunk_bytes());
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().unwrap_or("").contains(&expected)),
        "{expected:?} in {warnings:?}"
    );
}
