//! The insights against their definitions, written here a second time the plain way (parse
//! every event, sort, walk): for any session, split into any chunks uploaded in any order,
//! the streaming computation gives exactly what the definitions say; and on real
//! recordings, the counts the recordings imply.

mod support;

use std::path::PathBuf;

use proptest::prelude::*;
use rrstitch_engine::{parse, ChunkName, SessionGuid, Stitcher};
use serde_json::{json, Value};
use support::{chunks_in_order, real_recordings, split_at, stitch_into};

/// One generated event: `kind` picks what it is, `id` keeps every event distinct (so no
/// chunk or event dedup applies), `x` and `level` vary clicks and console entries.
fn event_text(id: usize, ts: u64, kind: u8, x: u8, level: u8) -> String {
    let inc = |data: String| format!(r#"{{"type":3,"timestamp":{ts},"data":{data}}}"#);
    let levels = [
        "log",
        "info",
        "warn",
        "error",
        "assert",
        "countReset",
        "debug",
    ];
    match kind {
        0 => format!(
            r#"{{"type":4,"timestamp":{ts},"data":{{"href":"https://a.test/{id}","id":{id}}}}}"#
        ),
        1 => format!(r#"{{"type":2,"timestamp":{ts},"data":{{"node":{{}},"id":{id}}}}}"#),
        2 => inc(format!(r#"{{"source":0,"adds":[],"id":{id}}}"#)),
        3 => inc(format!(r#"{{"source":1,"positions":[],"id":{id}}}"#)),
        4 => inc(format!(
            r#"{{"source":2,"type":2,"id":{id},"x":{},"y":{}}}"#,
            x % 40,
            x / 40
        )),
        5 => inc(format!(
            r#"{{"source":2,"type":4,"id":{id},"x":{x},"y":0}}"#
        )),
        6 => inc(format!(r#"{{"source":2,"type":9,"id":{id}}}"#)),
        7 => inc(format!(r#"{{"source":3,"id":{id},"x":0,"y":{x}}}"#)),
        8 => inc(format!(r#"{{"source":5,"text":"t","id":{id}}}"#)),
        9 => inc(format!(r#"{{"source":14,"ranges":[],"id":{id}}}"#)),
        10 => format!(
            r#"{{"type":6,"timestamp":{ts},"data":{{"plugin":"rrweb/console@1","payload":{{"level":"{}","payload":["{id}"]}}}}}}"#,
            levels[level as usize % levels.len()]
        ),
        11 => inc(format!(r#"{{"source":2,"type":2,"id":{id}}}"#)),
        12 => inc(format!(r#"{{"source":2,"type":1,"id":{id},"x":0,"y":0}}"#)),
        _ => format!(r#"{{"type":5,"timestamp":{ts},"data":{{"tag":"t","id":{id}}}}}"#),
    }
}

/// Stitches `chunks` in the order given; the metadata's `insights` as JSON.
fn stitched_insights(chunks: &[Vec<String>]) -> Value {
    let mut s = Stitcher::new(Vec::new(), SessionGuid::parse("g").unwrap()).unwrap();
    for (i, events) in chunks.iter().enumerate() {
        let text = format!(
            r#"{{"session_guid":"g","session_data":[{}],"environment":"e"}}"#,
            events.join(",")
        );
        let name =
            ChunkName::parse(&format!("2025-05-02T12:{:02}:{:02}Z.json", i / 60, i % 60)).unwrap();
        s.push(&name, &parse(&text).unwrap()).unwrap();
    }
    serde_json::to_value(s.finish().unwrap().1.insights.unwrap()).unwrap()
}

/// The definitions of issue 23, applied to `events` in stitched order.
fn by_definition(events: &[Value]) -> Value {
    let ts = |e: &Value| e["timestamp"].as_f64().unwrap();
    let mut played: Vec<&Value> = events.iter().collect();
    played.sort_by(|a, b| ts(a).total_cmp(&ts(b))); // stable
    let inc = |e: &Value| e["type"] == 3;
    let source = |e: &Value| e["data"]["source"].as_i64();
    let count = |f: &dyn Fn(&Value) -> bool| events.iter().filter(|e| f(e)).count() as u64;
    let click_count = count(&|e| {
        inc(e)
            && source(e) == Some(2)
            && e["data"]["type"]
                .as_i64()
                .is_some_and(|k| [2, 3, 4, 9].contains(&k))
    });
    let keypress_count = count(&|e| inc(e) && source(e) == Some(5));
    let mouse_activity_count = count(&|e| inc(e) && matches!(source(e), Some(1 | 2 | 6)));
    let level = |e: &Value| {
        (e["type"] == 6 && e["data"]["plugin"] == "rrweb/console@1").then(|| {
            match e["data"]["payload"]["level"].as_str() {
                Some("error" | "assert") => "error",
                Some("warn" | "countReset") => "warn",
                _ => "log",
            }
        })
    };
    let first = played.first().map_or(0.0, |e| ts(e));
    let last = played.last().map_or(0.0, |e| ts(e));
    // Active time: runs in play order.
    let active: Vec<f64> = played
        .iter()
        .filter(|e| inc(e) && source(e).is_some_and(|s| [1, 2, 3, 4, 5, 6, 7, 12].contains(&s)))
        .map(|e| ts(e))
        .collect();
    let mut active_ms = 0.0;
    let mut run_start = None;
    for (i, &t) in active.iter().enumerate() {
        let start = *run_start.get_or_insert(t);
        if active.get(i + 1).is_none_or(|&next| next - t > 5000.0) {
            active_ms += (t - start).max(1.0);
            run_start = None;
        }
    }
    // Markers as (time, rank, kind).
    let mut markers: Vec<(f64, u8, &str, Value)> = Vec::new();
    let is_click = |e: &Value| inc(e) && source(e) == Some(2) && e["data"]["type"] == 2;
    let mut rage = 0;
    let mut previous: Option<(f64, f64, f64)> = None;
    let mut run = 0;
    for e in played.iter().filter(|e| is_click(e)) {
        let (Some(x), Some(y)) = (e["data"]["x"].as_f64(), e["data"]["y"].as_f64()) else {
            continue;
        };
        let t = ts(e);
        run = match previous {
            Some((pt, px, py)) if t - pt < 1000.0 && (x - px).abs() + (y - py).abs() < 30.0 => {
                run + 1
            }
            _ => 1,
        };
        if run == 3 {
            rage += 1;
            markers.push((t, 0, "rage_click", e["timestamp"].clone()));
        }
        previous = Some((t, x, y));
    }
    let responds = |e: &Value| {
        e["type"] == 4 || e["type"] == 2 || (inc(e) && matches!(source(e), Some(0 | 3 | 14)))
    };
    let mut dead = 0;
    for e in played.iter().filter(|e| is_click(e)) {
        let t = ts(e);
        let answered = events
            .iter()
            .any(|r| responds(r) && ts(r) > t && ts(r) <= t + 2500.0);
        if t + 2500.0 <= last && !answered {
            dead += 1;
            markers.push((t, 1, "dead_click", e["timestamp"].clone()));
        }
    }
    for e in played.iter().filter(|e| level(e) == Some("error")) {
        markers.push((ts(e), 2, "console_error", e["timestamp"].clone()));
    }
    markers.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    markers.truncate(200);
    let first_url = played
        .iter()
        .find(|e| e["type"] == 4)
        .map_or(Value::Null, |e| e["data"]["href"].clone());
    let duration = last - first;
    json!({
        "click_count": click_count,
        "keypress_count": keypress_count,
        "mouse_activity_count": mouse_activity_count,
        "active_ms": active_ms.round() as u64,
        "inactive_ms": (duration - active_ms).max(0.0).round() as u64,
        "console_log_count": count(&|e| level(e) == Some("log")),
        "console_warn_count": count(&|e| level(e) == Some("warn")),
        "console_error_count": count(&|e| level(e) == Some("error")),
        "rage_click_count": rage,
        "dead_click_count": dead,
        "first_url": first_url,
        "markers": markers
            .into_iter()
            .map(|(_, _, kind, timestamp)| json!({"kind": kind, "timestamp": timestamp}))
            .collect::<Vec<_>>(),
    })
}

/// Gaps that sit on every threshold of the rules (1,000, 2,500, 5,000 ms) and around them.
fn gap() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..300,
        prop::sample::select(vec![999u64, 1000, 1001, 2499, 2500, 2501, 4999, 5000, 5001]),
        0u64..7000,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any split, any upload order: the definitions' answer (over the stitched order, whose
    /// stable sort decides ties) — and, when no two events share a timestamp, the same
    /// insights as the session stitched whole.
    #[test]
    fn any_chunking_and_upload_order_gives_the_definitions(
        events in prop::collection::vec((gap(), 0u8..14, any::<u8>(), any::<u8>()), 1..150),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        keys in prop::collection::vec(any::<u32>(), 13),
    ) {
        let mut ts = 1_000_000u64;
        let texts: Vec<String> = events
            .iter()
            .enumerate()
            .map(|(id, &(gap, kind, x, level))| {
                ts += gap;
                event_text(id, ts, kind, x, level)
            })
            .collect();
        let chunks = split_at(&texts, cuts.iter().map(|c| c.index(texts.len())));
        // Uploaded out of order: chunk i goes where its key sorts.
        let mut order: Vec<usize> = (0..chunks.len()).collect();
        order.sort_by_key(|&i| keys[i]);
        let uploaded: Vec<Vec<String>> = order.iter().map(|&i| chunks[i].clone()).collect();
        let stitched: Vec<Value> = uploaded
            .iter()
            .flatten()
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        let got = stitched_insights(&uploaded);
        prop_assert_eq!(&got, &by_definition(&stitched));
        if events.iter().skip(1).all(|&(gap, ..)| gap > 0) {
            prop_assert_eq!(&got, &stitched_insights(&[texts]));
        }
    }
}

/// Real recordings: the counts that need no interpretation, against each original array.
#[test]
fn real_recordings_have_the_insights_their_events_imply() {
    for dir in real_recordings() {
        let guid = format!("real-{}", dir.file_name().unwrap().to_string_lossy());
        let stitcher = Stitcher::new(Vec::new(), SessionGuid::parse(&guid).unwrap()).unwrap();
        let (_, meta) = stitch_into(stitcher, &chunks_in_order(&dir.join("chunks")));
        let original = std::fs::read_to_string(dir.join("original.json")).unwrap();
        let events: Vec<Value> = serde_json::from_str(&original).unwrap();
        let got = serde_json::to_value(meta.insights.unwrap()).unwrap();
        assert_eq!(got, by_definition(&events), "{}", dir.display());
    }
}

/// The form recording (`fixtures/rrweb-form`), against counts made independently over its
/// `full.json` with Python (`json.load`, then: type 3, source 2, data.type in (2,3,4,9);
/// source 5; source in (1,2,6); runs of active timestamps cut at gaps over 5,000 ms).
#[test]
fn the_form_recording_has_the_counts_an_independent_count_finds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rrweb-form");
    let guid = SessionGuid::parse("6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33").unwrap();
    let stitcher = Stitcher::new(Vec::new(), guid).unwrap();
    let (_, meta) = stitch_into(stitcher, &chunks_in_order(&dir.join("chunks")));
    let insights = meta.insights.unwrap();
    assert_eq!(insights.click_count, 15);
    assert_eq!(insights.keypress_count, 128);
    assert_eq!(insights.mouse_activity_count, 80);
    assert_eq!(insights.active_ms, 3813);
    assert_eq!(insights.inactive_ms, 5003 - 3813);
    assert_eq!(
        insights.first_url.as_deref(),
        Some("http://127.0.0.1:34057/pages/form.html")
    );
    let full = std::fs::read_to_string(dir.join("full.json")).unwrap();
    let events: Vec<Value> = serde_json::from_str(&full).unwrap();
    assert_eq!(
        serde_json::to_value(&insights).unwrap(),
        by_definition(&events)
    );
}
