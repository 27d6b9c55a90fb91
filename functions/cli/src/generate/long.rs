//! `rrstitch generate --session-bytes 210MB`: one long session with consistent checkouts.
//!
//! The viewer seeks by rebuilding from the nearest checkout (rrweb's Meta + FullSnapshot) and
//! replaying from there; that only equals "replay everything from the start" when every
//! checkout serializes exactly the DOM the preceding incremental events built, with the node
//! ids rrweb's mirror would still hold. So the events come from a model of the page
//! ([`super::page`]) that each mutation is applied to, and every `--checkout-every` events a
//! checkout is written from the model's current state.
//!
//! It writes chunk files as it goes ([`ChunkWriter`], about 512 KiB each, named by upload
//! time): the output is hundreds of megabytes and the debug binary must produce it in seconds,
//! so nothing but the model and the current chunk is held in memory.

use std::path::Path;

use anyhow::Result;

use super::chunk::ChunkWriter;
use super::page::Gen;

/// Writes one session of at least `target_bytes` of event JSON into `dir`, as chunk files.
pub fn write_long_session(
    dir: &Path,
    target_bytes: u64,
    checkout_every: usize,
    seed: u64,
    environment: &str,
    start_ms: i64,
) -> Result<()> {
    let mut gen = Gen::new(seed, start_ms);
    let guid = format!("long-{seed}");
    let mut out = ChunkWriter::new(dir, &guid, environment);
    let (mut total, mut events, mut checkouts) = (0u64, 0u64, 0u64);
    let mut event = String::new();
    let mut since_checkout = usize::MAX;
    while total < target_bytes {
        if since_checkout >= checkout_every.max(1) {
            // A checkout: Meta then FullSnapshot, one millisecond apart as rrweb records them.
            gen.t += 1;
            for part in 0..2 {
                event.clear();
                if part == 0 {
                    gen.meta(&mut event);
                } else {
                    gen.full_snapshot(&mut event);
                }
                total += event.len() as u64;
                out.push(&event, gen.t)?;
            }
            events += 2;
            checkouts += 1;
            since_checkout = 0;
        }
        event.clear();
        gen.incremental(&mut event);
        total += event.len() as u64;
        out.push(&event, gen.t)?;
        events += 1;
        since_checkout += 1;
    }
    out.flush(gen.t)?;
    eprintln!(
        "generate: session {guid}: {events} events, {checkouts} checkouts, {:.1} MiB of events, \
         {} files ({:.1} MiB) in {}",
        total as f64 / (1024.0 * 1024.0),
        out.files,
        out.bytes as f64 / (1024.0 * 1024.0),
        dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::page::{LIST, TITLE_TEXT};
    use super::*;

    /// Replays the written events against a tiny DOM of our own (id → text/class/value) and
    /// checks each checkout equals what the incremental events built: the property seeking
    /// relies on.
    #[test]
    fn every_checkout_serializes_the_dom_the_mutations_built() {
        let dir = tempfile::tempdir().unwrap();
        write_long_session(dir.path(), 3_000_000, 300, 7, "test", 1_746_187_850_000).unwrap();
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        let mut events = Vec::new();
        for n in &names {
            let v: serde_json::Value = serde_json::from_slice(&std::fs::read(n).unwrap()).unwrap();
            events.extend(v["session_data"].as_array().unwrap().iter().cloned());
        }
        // The state: list of (li id, text id, class, text), title, input.
        type State = (Vec<(u64, u64, String, String)>, String, String);
        let snapshot_state = |e: &serde_json::Value| -> State {
            let body = &e["data"]["node"]["childNodes"][1]["childNodes"][1];
            let title = body["childNodes"][0]["childNodes"][0]["textContent"]
                .as_str()
                .unwrap()
                .to_string();
            let input = body["childNodes"][1]["attributes"]["value"]
                .as_str()
                .unwrap()
                .to_string();
            let items = body["childNodes"][2]["childNodes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|li| {
                    (
                        li["id"].as_u64().unwrap(),
                        li["childNodes"][0]["id"].as_u64().unwrap(),
                        li["attributes"]["class"].as_str().unwrap().to_string(),
                        li["childNodes"][0]["textContent"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    )
                })
                .collect();
            (items, title, input)
        };
        let mut state: Option<State> = None;
        let mut checked = 0;
        let mut last_ts = 0;
        for e in &events {
            let ts = e["timestamp"].as_i64().unwrap();
            assert!(ts >= last_ts, "timestamps go backwards");
            last_ts = ts;
            match e["type"].as_u64().unwrap() {
                2 => {
                    let snap = snapshot_state(e);
                    if let Some(s) = &state {
                        assert_eq!(s, &snap, "checkout {checked} differs from the replayed DOM");
                        checked += 1;
                    }
                    state = Some(snap);
                }
                3 => {
                    let s = state.as_mut().unwrap();
                    let d = &e["data"];
                    match d["source"].as_u64().unwrap() {
                        5 => s.2 = d["text"].as_str().unwrap().to_string(),
                        0 => {
                            for t in d["texts"].as_array().unwrap() {
                                let (id, v) =
                                    (t["id"].as_u64().unwrap(), t["value"].as_str().unwrap());
                                if id == TITLE_TEXT {
                                    s.1 = v.to_string();
                                } else {
                                    s.0.iter_mut().find(|i| i.1 == id).unwrap().3 = v.to_string();
                                }
                            }
                            for a in d["attributes"].as_array().unwrap() {
                                let id = a["id"].as_u64().unwrap();
                                let class = a["attributes"]["class"].as_str().unwrap();
                                s.0.iter_mut().find(|i| i.0 == id).unwrap().2 = class.to_string();
                            }
                            for r in d["removes"].as_array().unwrap() {
                                let id = r["id"].as_u64().unwrap();
                                let before = s.0.len();
                                s.0.retain(|i| i.0 != id);
                                assert_eq!(s.0.len() + 1, before, "removed an unknown node");
                            }
                            for a in d["adds"].as_array().unwrap() {
                                let node = &a["node"];
                                let parent = a["parentId"].as_u64().unwrap();
                                if parent == LIST {
                                    assert_eq!(node["childNodes"], serde_json::json!([]));
                                    s.0.push((
                                        node["id"].as_u64().unwrap(),
                                        0,
                                        node["attributes"]["class"].as_str().unwrap().to_string(),
                                        String::new(),
                                    ));
                                } else {
                                    // The text of an item added just before, by its own add.
                                    let li = s.0.iter_mut().find(|i| i.0 == parent).unwrap();
                                    li.1 = node["id"].as_u64().unwrap();
                                    li.3 = node["textContent"].as_str().unwrap().to_string();
                                }
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        assert!(checked >= 5, "only {checked} checkouts checked");
    }
}
