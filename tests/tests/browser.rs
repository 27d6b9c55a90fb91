//! Replay fidelity, judged by rrweb itself in a real browser.
//!
//! `tests/browser/harness.mjs` records a scripted session with `rrweb.record` in Debian's
//! Chromium (playwright-core, pages on 127.0.0.1) and cuts it into timestamp-named chunks; the
//! real `rrstitch` binary ingests and sweeps them on the embedded default (directory + SQLite);
//! the harness then replays the stitched file with rrweb's `Replayer` to its end and compares
//! the replayed DOM with the live page's final DOM. Negative controls prove the comparison can
//! fail: without the first chunk (no FullSnapshot) and without a middle chunk (numbered marker
//! events recorded every 250 ms go missing).
//!
//! Needs `scripts/install-browser.sh` (make test runs it): without Chromium or the npm
//! packages these tests fail and say so; they never skip.

use std::path::{Path, PathBuf};

use rrstitch_tests::browser::{node, stitch, stitch_with, view};
use rrstitch_tests::form::{doubled, json_text, typed_values, FORM_RULES};
use rrstitch_tests::repo_root;
use serde_json::{json, Value};

/// A copy of `chunks` without the chunks at `drop` (indices in name order).
fn without(chunks: &Path, names: &[String], drop: &[usize], to: &Path) -> PathBuf {
    let dir = to.join("chunks");
    std::fs::create_dir_all(&dir).unwrap();
    for (i, name) in names.iter().enumerate() {
        if !drop.contains(&i) {
            std::fs::copy(chunks.join(name), dir.join(name)).unwrap();
        }
    }
    dir
}

/// Replays a stitched session to its end and compares it with the live page's final DOM.
fn replay_to_end(session: &Path, live: &Path) -> Value {
    node(&[
        "replay",
        "--session",
        session.to_str().unwrap(),
        "--live",
        live.to_str().unwrap(),
    ])
}

fn names(recorded: &Value) -> Vec<String> {
    recorded["chunks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_string())
        .collect()
}

/// The harness records a session `guid` in the browser into `rec` (`checkout_ms`: rrweb's
/// checkoutEveryNms, 0 for none); its report.
fn record(rec: &Path, guid: &str, checkout_ms: u32) -> Value {
    node(&[
        "record",
        "--out",
        rec.to_str().unwrap(),
        "--guid",
        guid,
        "--checkout-ms",
        &checkout_ms.to_string(),
    ])
}

/// Records a session (`checkout_ms`: rrweb's checkoutEveryNms, 0 for none), stitches it and
/// checks the replay; then the negative controls.
fn fidelity(guid: &str, checkout_ms: u32) {
    let work = tempfile::tempdir().unwrap();
    let rec = work.path().join("rec");
    let recorded = record(&rec, guid, checkout_ms);
    assert_eq!(recorded["problems"], Value::Array(vec![]), "{recorded}");
    let names = names(&recorded);
    assert!(names.len() >= 5, "too few chunks to be a test: {recorded}");
    let markers = recorded["markers"].as_u64().unwrap();
    assert!(markers >= 10, "{recorded}");
    if checkout_ms > 0 {
        assert!(
            recorded["fullSnapshots"].as_u64().unwrap() >= 2,
            "checkoutEveryNms took no second snapshot: {recorded}"
        );
    }
    let chunks = rec.join("chunks");
    let live = rec.join("live.json");

    // The whole session: replays to the live page's final DOM, with every marker.
    let (file, stitched) = stitch(&work.path().join("all"), &chunks, guid);
    let meta = &stitched["metadata"];
    assert_eq!(meta["replayable"], true, "{meta}");
    assert_eq!(meta["chunk_count"], names.len(), "{meta}");
    assert_eq!(meta["event_count"], recorded["events"], "{meta}");
    let replay = replay_to_end(&file, &live);
    assert_eq!(
        replay["ok"], true,
        "replay differs from the live page: {replay:#}"
    );
    assert_eq!(replay["markers"]["count"], markers, "{replay}");
    println!(
        "FIGURE browser.{guid}: {} chunks, {} events, {} DOM lines equal, {} markers",
        names.len(),
        recorded["events"],
        replay["dom_lines"],
        markers
    );

    // Control 1: the first chunk (Meta + FullSnapshot) lost. rrstitch must say so, and the
    // replay must not match.
    let dir = without(&chunks, &names, &[0], &work.path().join("no-first"));
    let (file, stitched) = stitch(&work.path().join("no-first"), &dir, guid);
    assert_eq!(
        stitched["metadata"]["replayable"], false,
        "{}",
        stitched["metadata"]
    );
    let replay = replay_to_end(&file, &live);
    assert_eq!(
        replay["ok"], false,
        "a session without its first chunk replayed as a whole: {replay}"
    );
    if checkout_ms == 0 {
        // Nothing to rebuild the page from: the replayed DOM cannot match.
        assert!(replay["mismatch_count"].as_u64().unwrap() > 0, "{replay}");
    } else {
        // A later checkout's FullSnapshot rebuilds the page, so the end state may match: the
        // loss shows as the markers of the dropped stretch.
        assert!(
            !replay["markers"]["missing"].as_array().unwrap().is_empty(),
            "{replay}"
        );
    }

    // Control 2: a middle chunk lost: the markers show the gap.
    let middle = names.len() / 2;
    let dir = without(&chunks, &names, &[middle], &work.path().join("no-middle"));
    let (file, _) = stitch(&work.path().join("no-middle"), &dir, guid);
    let replay = replay_to_end(&file, &live);
    assert_eq!(
        replay["ok"], false,
        "a session without a middle chunk passed: {replay}"
    );
    assert!(
        !replay["markers"]["missing"].as_array().unwrap().is_empty(),
        "the markers did not show the dropped chunk: {replay}"
    );
}

#[test]
fn a_recorded_session_replays_to_the_live_page() {
    fidelity("browser-plain", 0);
}

#[test]
fn a_session_with_periodic_full_snapshots_replays_to_the_live_page() {
    fidelity("browser-checkout", 1500);
}

#[test]
fn the_viewer_lists_and_plays_a_stitched_session() {
    let work = tempfile::tempdir().unwrap();
    let rec = work.path().join("rec");
    let guid = "browser-viewer";
    record(&rec, guid, 0);
    let (file, stitched) = stitch(&work.path().join("all"), &rec.join("chunks"), guid);
    let results = file.parent().unwrap();

    let (server, url) = view(results);
    let shot = repo_root().join("target/browser/viewer.png");
    let _ = std::fs::remove_file(&shot);
    let seen = node(&[
        "viewer",
        "--url",
        &url,
        "--guid",
        guid,
        "--shot",
        shot.to_str().unwrap(),
    ]);
    assert_eq!(seen["ok"], true, "{seen:#}\n{}", server.tail());
    assert_eq!(seen["rows"], 1, "{seen}");
    assert!(
        shot.metadata().unwrap().len() > 10_000,
        "screenshot too small"
    );
    println!("FIGURE browser.viewer_screenshot: {}", shot.display());
    drop(server);

    // The console panel and the timeline's markers: a chunk of console entries inside the
    // recording's time, stitched as a single file (the page reads the entries from its
    // events) and segmented (from the console.jsonl.gz the stitch extracted).
    let first = stitched["metadata"]["first_event_timestamp"]
        .as_f64()
        .unwrap() as u64;
    let console = |t: u64, level: &str, text: &str| {
        json!({"type": 6, "timestamp": t, "data": {"plugin": "rrweb/console@1",
            "payload": {"level": level, "trace": [], "payload": [format!("\"{text}\"")]}}})
    };
    let events = [
        console(first + 300, "log", "hello"),
        console(first + 600, "error", "TypeError: boom"),
        console(first + 900, "warn", "careful"),
    ];
    let chunk = json!({"session_guid": guid, "session_data": events, "environment": "browser"});
    let chunks = rec.join("chunks");
    std::fs::write(
        chunks.join("2099-01-01T00:00:00.000000+0000.json"),
        chunk.to_string(),
    )
    .unwrap();
    for (mode, extra) in [
        ("file", vec![]),
        (
            "segments",
            vec![("RRSTITCH_SEGMENTS".to_string(), "1".to_string())],
        ),
    ] {
        let (file, _) = stitch_with(&work.path().join(mode), &chunks, guid, &extra);
        let (server, url) = view(file.parent().unwrap());
        let seen = node(&["console", "--url", &url, "--guid", guid, "--expect", "3"]);
        assert_eq!(seen["ok"], true, "{mode}: {seen:#}\n{}", server.tail());
        let levels: Vec<&str> = seen["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["level"].as_str().unwrap())
            .collect();
        assert_eq!(levels, ["log", "error", "warn"], "{mode}: {seen}");
        assert!(
            seen["entries"][1]["text"]
                .as_str()
                .unwrap()
                .ends_with("\"TypeError: boom\""),
            "{mode}: {seen}"
        );
        assert_eq!(
            seen["errors"].as_array().unwrap().len(),
            1,
            "{mode}: {seen}"
        );
        assert_eq!(seen["count"], "1 of 3", "{mode}: {seen}");
        let at = seen["current_ms"].as_f64().unwrap();
        assert!(
            (at - 600.0).abs() < 100.0,
            "{mode}: the click seeks to the error: {seen}"
        );
        assert!(
            seen["markers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m == "console_error"),
            "{mode}: {seen}"
        );
    }
}

/// Replays `plain` and `masked` (stitched from the recorded form with `rules`) with rrweb's
/// Replayer and checks the masked replay equals the live page's final DOM masked by the rules:
/// no typed value shows, and the select shows no chosen option (the plain replay, the
/// control, shows it). Returns the harness's answer.
fn assert_replay_masked(plain: &Path, masked: &Path, rules: &Path, typed: &[String]) -> Value {
    let fixture = repo_root().join("fixtures/rrweb-form");
    let replay = node(&[
        "redacted",
        "--plain",
        plain.to_str().unwrap(),
        "--redacted",
        masked.to_str().unwrap(),
        "--live",
        fixture.join("final_dom.html").to_str().unwrap(),
        "--expect",
        fixture.join("expect.json").to_str().unwrap(),
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(replay["ok"], true, "{replay:#}");
    let dom = replay["masked_dom"].to_string();
    for value in typed {
        assert!(
            !dom.contains(&json_text(value)),
            "{value:?} shows in the replay"
        );
    }
    assert!(dom.contains("Order form"), "unmasked text is kept: {dom}");
    let chosen = r#"shows=\"Green\""#;
    assert!(
        replay["plain_dom"].to_string().contains(chosen),
        "control: the plain replay shows the chosen option"
    );
    assert!(!dom.contains(chosen), "the chosen option shows: {dom}");
    replay
}

/// The recorded form (fixtures/rrweb-form), stitched by the real binary with
/// `RRSTITCH_REDACT` and without: the redacted session replays in Chromium to the live page's
/// final DOM with the masked parts masked and nothing else changed, and no typed value is
/// anywhere in its bytes. The unredacted session is the control for both: it replays to the
/// unmasked DOM and holds every typed value, so each check can fail.
/// The recorded form stitched without rules in a new work directory, and [`FORM_RULES`]
/// written there for `RRSTITCH_REDACT`.
struct Form {
    work: tempfile::TempDir,
    chunks: PathBuf,
    rules: PathBuf,
    plain_file: PathBuf,
    plain: Value,
}

const FORM_GUID: &str = "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33";

impl Form {
    fn stitched() -> Form {
        let work = tempfile::tempdir().unwrap();
        let rules = work.path().join("rules.json");
        std::fs::write(&rules, FORM_RULES).unwrap();
        let chunks = repo_root().join("fixtures/rrweb-form/chunks");
        let (plain_file, plain) = stitch(&work.path().join("plain"), &chunks, FORM_GUID);
        Form {
            work,
            chunks,
            rules,
            plain_file,
            plain,
        }
    }

    /// `chunks` stitched into `work/<name>` with the rules.
    fn redacted(&self, name: &str, chunks: &Path) -> (PathBuf, Value) {
        let redact = [(
            "RRSTITCH_REDACT".to_string(),
            self.rules.display().to_string(),
        )];
        stitch_with(&self.work.path().join(name), chunks, FORM_GUID, &redact)
    }
}

#[test]
fn a_redacted_form_replays_masked_and_leaks_no_typed_value() {
    let form = Form::stitched();
    let (plain_file, plain) = (&form.plain_file, &form.plain);
    let (masked_file, masked) = form.redacted("masked", &form.chunks);

    let typed = typed_values(plain);
    assert_eq!(
        typed.len(),
        6,
        "a name, an email, three items, a note: {typed:?}"
    );
    let plain_bytes = String::from_utf8(std::fs::read(plain_file).unwrap()).unwrap();
    let masked_bytes = String::from_utf8(std::fs::read(&masked_file).unwrap()).unwrap();
    for value in &typed {
        let value = json_text(value);
        assert!(
            plain_bytes.contains(&value),
            "control: {value:?} is in the unredacted output"
        );
        assert!(
            !masked_bytes.contains(&value),
            "{value:?} leaked into the redacted output"
        );
    }
    let counts = &masked["metadata"]["redaction"];
    assert!(counts["values_masked"].as_u64().unwrap() > 100, "{counts}");
    assert_eq!(
        masked["metadata"]["event_count"],
        plain["metadata"]["event_count"]
    );
    assert!(plain["metadata"].get("redaction").is_none());
    assert_replay_masked(plain_file, &masked_file, &form.rules, &typed);
}

/// The recorded form as two hostile relays deliver it: every integer written as a double
/// (`"id":67.0`, `"source":5.0`), and the last chunk (the typed note, the status line naming
/// the user) uploaded again under a name before the chunk holding the snapshot, so it is
/// stitched first while the player sorts it last. Both replay masked, as the form does.
#[test]
fn a_redacted_form_holds_with_doubled_numbers_and_a_chunk_named_first() {
    let form = Form::stitched();
    let (work, chunks) = (form.work.path(), &form.chunks);
    let typed = typed_values(&form.plain);
    let mut names: Vec<String> = std::fs::read_dir(chunks)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();

    let doubles = work.join("doubles");
    std::fs::create_dir_all(&doubles).unwrap();
    for name in &names {
        let chunk: Value =
            serde_json::from_slice(&std::fs::read(chunks.join(name)).unwrap()).unwrap();
        std::fs::write(doubles.join(name), doubled(chunk).to_string()).unwrap();
    }
    let late = without(chunks, &names, &[names.len() - 1], &work.join("late"));
    let first = "2025-05-02T12:10:50.000000+0000.json";
    assert!(
        first < names[0].as_str(),
        "named before the snapshot's chunk"
    );
    std::fs::copy(chunks.join(names.last().unwrap()), late.join(first)).unwrap();

    for (variant, dir) in [("doubles", &doubles), ("late", &late)] {
        let (file, masked) = form.redacted(variant, dir);
        let bytes = std::fs::read_to_string(&file).unwrap();
        for value in &typed {
            assert!(
                !bytes.contains(&json_text(value)),
                "{variant}: {value:?} leaked into the redacted output"
            );
        }
        let counts = &masked["metadata"]["redaction"];
        assert!(
            counts["values_masked"].as_u64().unwrap() > 100,
            "{variant}: {counts}"
        );
        let unknown = counts["values_masked_unknown_node"].as_u64().unwrap_or(0);
        assert_eq!(unknown > 0, variant == "late", "{variant}: {counts}");
        assert_replay_masked(&form.plain_file, &file, &form.rules, &typed);
        println!("FIGURE browser.redaction_{variant}: {counts}");
    }
}
