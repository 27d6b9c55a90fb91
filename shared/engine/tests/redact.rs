//! Redaction on real recordings: the recorded form loses every value it typed and nothing it
//! did not have to, and every real fixture stays a valid session with the same events.

mod support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rrstitch_engine::redact::Rules;
use rrstitch_engine::{decode, parse, Limits, Metadata, Stitcher};
use serde_json::Value;
use support::{chunks_in_order, stitch_into};

/// Shared with the browser and cloud redaction tests, so they agree on what was typed.
#[allow(dead_code)]
#[path = "../../../tests/src/form.rs"]
mod form;
use form::{json_text, typed_values, FORM_RULES};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures")
}

/// Stitches every chunk in `dir` as one session, with `rules` if given.
fn stitch_dir(dir: &Path, rules: Option<&str>) -> (String, Metadata) {
    let chunks = chunks_in_order(dir);
    let first = decode(&chunks[0].1, false, &Limits::default()).unwrap();
    let guid = parse(&first).unwrap().session_guid;
    let mut stitcher = Stitcher::new(Vec::new(), guid).unwrap();
    if let Some(rules) = rules {
        stitcher = stitcher.with_redaction(Arc::new(Rules::from_json(rules).unwrap()));
    }
    let (out, meta) = stitch_into(stitcher, &chunks);
    (String::from_utf8(out).unwrap(), meta)
}

/// The event texts of a stitched document, each as its exact bytes.
fn event_texts(out: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(out).unwrap();
    // Compact output: re-serializing each event gives its bytes only if it was compact and
    // in key order, so slice the array instead, with serde_json's raw values.
    #[derive(serde::Deserialize)]
    struct Doc<'a> {
        #[serde(borrow)]
        rrweb_data: Vec<&'a serde_json::value::RawValue>,
    }
    let doc: Doc = serde_json::from_str(out).unwrap();
    assert_eq!(
        doc.rrweb_data.len(),
        v["rrweb_data"].as_array().unwrap().len()
    );
    doc.rrweb_data.iter().map(|r| r.get().to_owned()).collect()
}

#[test]
fn no_typed_value_of_the_form_survives_anywhere_in_the_output() {
    let dir = fixtures().join("rrweb-form/chunks");
    let (plain, plain_meta) = stitch_dir(&dir, None);
    let typed = typed_values(&serde_json::from_str(&plain).unwrap());
    assert_eq!(
        typed.len(),
        6,
        "a name, an email, three items, a note: {typed:?}"
    );
    for value in &typed {
        // The control: without rules every value is there, so the check below can fail.
        assert!(
            plain.contains(&json_text(value)),
            "{value:?} is in the unredacted output"
        );
    }
    let (redacted, meta) = stitch_dir(&dir, Some(FORM_RULES));
    for value in &typed {
        assert!(!redacted.contains(&json_text(value)), "{value:?} leaked");
        let words = value.split_whitespace().filter(|w| w.len() >= 5);
        for word in words {
            assert!(!redacted.contains(word), "{word:?} of {value:?} leaked");
        }
    }
    assert!(!redacted.contains("Torvalds") && !redacted.contains("torvalds"));
    assert_eq!(meta.event_count, plain_meta.event_count);
    let counts = meta
        .redaction
        .as_ref()
        .expect("redaction counts with rules");
    assert!(counts.values_masked > 100, "{counts:?}");
    assert_eq!(counts.events_dropped, 0);
    assert!(plain_meta.redaction.is_none());
    assert!(
        !plain.contains("\"redaction\""),
        "no rules, no redaction key"
    );
    let v: Value = serde_json::from_str(&redacted).unwrap();
    assert!(
        v["metadata"]["redaction"]["values_masked"]
            .as_u64()
            .unwrap()
            > 100
    );
}

/// Every real fixture, redacted with rules that hit each of its kinds of event: valid JSON,
/// the same number of events, and every event no rule could touch still byte for byte.
#[test]
fn real_fixtures_stay_valid_with_every_event_and_untouched_events_keep_their_bytes() {
    let rules = r#"{"mask_inputs": true, "mask": [{"selector": "div", "attributes": ["title"]}, {"selector": "p"}], "data_url_max_bytes": 64}"#;
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures().join("real"))
        .unwrap()
        .map(|e| e.unwrap().path().join("chunks"))
        .filter(|p| p.is_dir())
        .collect();
    dirs.push(fixtures().join("rrweb-form/chunks"));
    dirs.sort();
    assert!(dirs.len() >= 10, "{dirs:?}");
    let mut masked = 0;
    for dir in &dirs {
        let (plain, plain_meta) = stitch_dir(dir, None);
        let (redacted, meta) = stitch_dir(dir, Some(rules));
        let (before, after) = (event_texts(&plain), event_texts(&redacted));
        assert_eq!(before.len(), after.len(), "{}", dir.display());
        assert_eq!(meta.event_count, plain_meta.event_count);
        assert_eq!(meta.full_snapshot_count, plain_meta.full_snapshot_count);
        assert_eq!(meta.replayable, plain_meta.replayable);
        for (b, a) in before.iter().zip(&after) {
            let e: Value = serde_json::from_str(b).unwrap();
            let touchable = e["type"] == 2
                || (e["type"] == 3 && matches!(e["data"]["source"].as_i64(), Some(0 | 5)))
                || b.contains("data:");
            if !touchable {
                assert_eq!(a, b, "{}: an event no rule touches changed", dir.display());
            }
            let a: Value = serde_json::from_str(a).unwrap();
            assert_eq!((&a["type"], &a["timestamp"]), (&e["type"], &e["timestamp"]));
        }
        masked += meta.redaction.unwrap().values_masked;
    }
    assert!(masked > 0);
}
