//! Ingestion restrictions as the flow tests exercise them on each cloud: one rules document,
//! three chunks it refuses for different reasons, and a check — through the real CLI, reading
//! the cloud index — that each was recorded with the other rejected objects.

use serde_json::Value;

use crate::bins;

/// `RRSTITCH_RESTRICT` as a function's variable carries it: staging and `bot-*` sessions
/// dropped, canary sampled at 0 (so the outcome does not depend on a guid's hash).
pub const RULES: &str =
    r#"{"drop_environments": ["staging"], "drop_guids": ["bot-*"], "sample": {"canary": 0}}"#;

/// Chunks the rules refuse: (object name, body, the reject kind expected).
pub fn refused_chunks() -> Vec<(String, Vec<u8>, &'static str)> {
    [
        ("2025-05-02T13:00:00.000000+0000.json", "bot-1", "production", "restricted"),
        ("2025-05-02T13:00:01.000000+0000.json", "st-1", "staging", "restricted"),
        ("2025-05-02T13:00:02.000000+0000.json", "c-1", "canary", "sampled_out"),
    ]
    .into_iter()
    .map(|(name, guid, env, kind)| {
        let body = format!(
            r#"{{"session_guid":"{guid}","session_data":[{{"type":3,"timestamp":1746190800000,"data":{{"source":1}}}}],"environment":"{env}"}}"#
        );
        (name.to_owned(), body.into_bytes(), kind)
    })
    .collect()
}

/// Runs `rrstitch rejected --json` on `env`'s index and checks each refused chunk is there
/// with its kind; returns how many were found.
pub fn assert_refusals_recorded(env: &[(String, String)]) -> usize {
    let out = bins::succeeds(
        bins::command("rrstitch", env).args(["rejected", "--json", "--limit", "1000"]),
    );
    let rows: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let chunks = refused_chunks();
    for (name, _, kind) in &chunks {
        assert!(
            rows.iter()
                .any(|r| r["name"] == name.as_str() && r["kind"] == *kind),
            "{name} recorded as {kind}: {rows:?}"
        );
    }
    chunks.len()
}

/// Runs `rrstitch status --json` on `env`'s index and checks the refused chunks are counted
/// by reason among the last day's rejects: 2 restricted, 1 sampled out. Returns the status.
pub fn assert_status_counts_refusals(env: &[(String, String)]) -> Value {
    let out = bins::succeeds(bins::command("rrstitch", env).args(["status", "--json"]));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons = &status["rejects_24h"]["by_reason"];
    assert_eq!(reasons["restricted"], 2, "{status}");
    assert_eq!(reasons["sampled_out"], 1, "{status}");
    assert_eq!(status["rejects_24h"]["truncated"], false, "{status}");
    status
}
