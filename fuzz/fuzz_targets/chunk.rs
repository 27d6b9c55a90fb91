//! Any bytes as a chunk object: decoding and validation never panic, whatever validates
//! stitches into a document that parses as JSON with every event in it, each event's bytes
//! are exactly the `session_data` element serde_json finds (rrstitch locates them from the
//! members it captured in its one validating pass), and each event's `type` and `timestamp`
//! are what serde_json reads from it; the output is compact (a pretty-printed event is
//! written compact) and a leading byte order mark is stripped and noted.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;
use rrstitch_engine::{decode, parse, ChunkName, Limits, Stitcher};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_chunk_bytes: 1 << 20,
        max_decompressed_bytes: 1 << 20,
    };
    let Ok(text) = decode(data, false, &limits) else { return };
    let Ok(chunk) = parse(&text) else { return };
    // A leading byte order mark is stripped by parse (and noted); serde_json reads the rest.
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    assert_eq!(chunk.byte_order_mark, text.len() < text_len(data, &limits));
    let top: HashMap<String, &RawValue> =
        serde_json::from_str(text).expect("an accepted chunk is a JSON object");
    let elements: Vec<&RawValue> = serde_json::from_str(top["session_data"].get())
        .expect("an accepted chunk has a session_data array");
    let located: Vec<&str> = chunk.events.iter().map(|e| e.raw).collect();
    let expected: Vec<&str> = elements.iter().map(|e| e.get()).collect();
    assert_eq!(located, expected, "each event's bytes are its array element");
    for event in &chunk.events {
        let fields: HashMap<String, &RawValue> =
            serde_json::from_str(event.raw).expect("an accepted event is a JSON object");
        // An integer, or an integral number written as a float (`3.0`).
        let kind: f64 = serde_json::from_str(fields["type"].get()).expect("a numeric type");
        assert_eq!(kind, event.kind as f64);
        assert_eq!(
            serde_json::from_str::<serde_json::Number>(fields["timestamp"].get()).ok(),
            Some(event.timestamp.clone())
        );
    }
    let name = ChunkName::parse("2025-05-02T12:10:50.644423+0000.json").unwrap();
    let mut stitcher = Stitcher::new(Vec::new(), chunk.session_guid.clone()).unwrap();
    stitcher.push(&name, &chunk).unwrap();
    let (out, meta) = stitcher.finish().unwrap();
    assert_eq!(meta.event_count as usize, chunk.events.len());
    // The output is always well-formed JSON. Events are copied byte for byte, so numbers such
    // as `1e999` (valid JSON, past f64) pass through as they came: only when the input fits
    // serde_json's value model must the output too, with every event in it.
    let _: Box<RawValue> =
        serde_json::from_slice(&out).expect("stitched output is well-formed JSON");
    // Compact, always: no whitespace outside strings anywhere in the document.
    assert!(walk_is_compact(&out), "stitched output is compact");
    if serde_json::from_str::<serde_json::Value>(text).is_ok() {
        let doc: serde_json::Value = serde_json::from_slice(&out).expect("stitched output is JSON");
        assert_eq!(doc["rrweb_data"].as_array().map(Vec::len), Some(chunk.events.len()));
    }
});

/// The decoded text's length, BOM included (what `decode` gave before parse stripped it).
fn text_len(data: &[u8], limits: &Limits) -> usize {
    decode(data, false, limits).map_or(0, |t| t.len())
}

/// A byte-by-byte walk: no whitespace outside JSON strings.
fn walk_is_compact(bytes: &[u8]) -> bool {
    let (mut inside, mut escaped) = (false, false);
    for &b in bytes {
        if inside {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => inside = false,
                _ => {}
            }
        } else if b == b'"' {
            inside = true;
        } else if matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            return false;
        }
    }
    true
}
