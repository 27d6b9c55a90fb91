//! Event-level dedup (`order::Recent`) against what it must never do and what it must do:
//! legitimately distinct events — however many share a type and a timestamp, in any chunk
//! split — are all kept; an SDK's overlapping re-send, re-serialized, is stitched once.

mod support;

use proptest::prelude::*;
use rrstitch_engine::{parse, ChunkName, SessionGuid, Stitcher};
use serde_json::Value;
use support::split_at;

/// An event with a unique `id`, a timestamp from a small range (many ties) and one of a
/// few types, written in one of several key orders.
fn event_text(id: usize, kind: i64, ts: u64, order: u8) -> String {
    let data = format!(r#"{{"source":1,"id":{id}}}"#);
    match order % 3 {
        0 => format!(r#"{{"type":{kind},"timestamp":{ts},"data":{data}}}"#),
        1 => format!(r#"{{"data":{data},"timestamp":{ts},"type":{kind}}}"#),
        _ => format!(r#"{{"timestamp":{ts},"data":{data},"type":{kind}}}"#),
    }
}

/// The same event re-serialized: other key order, the timestamp and id as floats.
fn reserialized(id: usize, kind: i64, ts: u64) -> String {
    format!(r#"{{"data":{{"id":{id}.0,"source":1}},"type":{kind},"timestamp":{ts}.0}}"#)
}

fn stitch(chunks: &[Vec<String>]) -> (Vec<Value>, rrstitch_engine::Metadata) {
    let mut s = Stitcher::new(Vec::new(), SessionGuid::parse("g").unwrap()).unwrap();
    for (i, events) in chunks.iter().enumerate() {
        let text = format!(
            r#"{{"session_guid":"g","session_data":[{}],"environment":"e"}}"#,
            events.join(",")
        );
        let name = ChunkName::parse(&format!("2025-05-02T12:00:{:02}Z.json", i % 60)).unwrap();
        s.push(&name, &parse(&text).unwrap()).unwrap();
    }
    let (out, meta) = s.finish().unwrap();
    let v: Value = serde_json::from_slice(&out).unwrap();
    (v["rrweb_data"].as_array().unwrap().clone(), meta)
}

fn ids(events: &[Value]) -> Vec<u64> {
    events
        .iter()
        .map(|e| e["data"]["id"].as_f64().unwrap() as u64)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn distinct_events_are_never_dropped(
        events in prop::collection::vec((2i64..7, 0u64..20, any::<u8>()), 1..120),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let texts: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(id, &(kind, ts, order))| event_text(id, kind, ts, order))
            .collect();
        let chunks = split_at(&texts, cuts.iter().map(|c| c.index(texts.len())));
        let (out, meta) = stitch(&chunks);
        prop_assert_eq!(meta.duplicate_events, 0);
        prop_assert_eq!(ids(&out), (0..texts.len() as u64).collect::<Vec<_>>());
    }

    #[test]
    fn an_overlapping_resend_is_stitched_once(
        sizes in prop::collection::vec(1usize..30, 2..6),
        overlap in any::<prop::sample::Index>(),
    ) {
        // Chunks of increasing timestamps; the last one re-sends the tail of the one before,
        // re-serialized, ahead of its own new events.
        let mut chunks = Vec::new();
        let mut id = 0;
        for &n in &sizes {
            chunks.push((0..n).map(|_| { id += 1; (id, 1000 + id as u64 * 10) }).collect::<Vec<_>>());
        }
        let prev = chunks[chunks.len() - 2].clone();
        let k = overlap.index(prev.len()) + 1;
        let texts: Vec<Vec<String>> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut t: Vec<String> = Vec::new();
                if i == chunks.len() - 1 {
                    t.extend(prev[prev.len() - k..].iter().map(|&(id, ts)| reserialized(id, 3, ts)));
                }
                t.extend(c.iter().map(|&(id, ts)| event_text(id, 3, ts, 0)));
                t
            })
            .collect();
        let (out, meta) = stitch(&texts);
        prop_assert_eq!(meta.duplicate_events, k as u64);
        prop_assert_eq!(ids(&out), (1..=id as u64).collect::<Vec<_>>());
    }
}
