//! The `rrstitch` binary on temporary directories: what a user types, what they see.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use assert_cmd::prelude::*;
use predicates::prelude::*;

const GUID: &str = "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33";

fn fixture_chunks() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rrweb-form/chunks")
}

fn full_events() -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/rrweb-form/full.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn copy_fixture(to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(fixture_chunks()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// The binary, with the index and results inside `dir`, no ambient configuration.
fn rrstitch(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("rrstitch").unwrap();
    cmd.current_dir(dir)
        .env_remove("RRSTITCH_CHUNKS")
        .env_remove("RRSTITCH_RESULTS")
        .env_remove("RRSTITCH_INDEX")
        .env_remove("RUST_LOG")
        .env(
            "RRSTITCH_INDEX",
            format!("sqlite:{}", dir.join("index.sqlite").display()),
        )
        .env("RRSTITCH_RESULTS", dir.join("results"));
    cmd
}

/// A temporary directory whose `bucket/` holds the fixture's chunks, ingested and swept (so
/// the session is stitched), and the path of the session's result.
fn stitched_fixture() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    copy_fixture(&bucket);
    rrstitch(dir.path())
        .args(["ingest", "bucket"])
        .assert()
        .success();
    rrstitch(dir.path())
        .args(["sweep", "--idle", "0s"])
        .assert()
        .success();
    let result = dir.path().join("results").join(format!("{GUID}.json"));
    (dir, result)
}

/// Runs `cmd` to the end and checks it succeeded (else fails with its stderr).
fn succeeds(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn write_bad_inputs(bucket: &Path) {
    std::fs::write(
        bucket.join("2025-05-02T12:11:00.000000+0000.json"),
        "{\"session_guid\":",
    )
    .unwrap();
    std::fs::write(bucket.join("2025-05-02T12:11:01.000000+0000.json"), "[]").unwrap();
    std::fs::write(
        bucket.join("2025-05-02T12:11:02.000000+0000.json"),
        r#"{"session_guid":"../escape","session_data":[],"environment":"e"}"#,
    )
    .unwrap();
    std::fs::write(bucket.join("yesterday.json"), "{}").unwrap();
    std::fs::write(bucket.join("notes.txt"), "not a chunk").unwrap();
}

#[test]
fn backfill_stitches_a_bucket_and_reports_bad_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    copy_fixture(&bucket);
    write_bad_inputs(&bucket);
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&bucket)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();

    rrstitch(dir.path())
        .args(["backfill", "--bucket", "bucket", "--output_dir", "out"])
        .assert()
        .success()
        .stderr(predicate::str::contains("sessions written:   1"))
        .stderr(predicate::str::contains("rejected:           4"))
        .stderr(predicate::str::contains("ignored (not chunks): 1"))
        .stderr(predicate::str::contains("bad_json: 1"))
        .stderr(predicate::str::contains("not_an_object: 1"))
        .stderr(predicate::str::contains("bad_guid: 1"))
        .stderr(predicate::str::contains("bad_name: 1"));
    let v = read_json(&dir.path().join("out").join(format!("{GUID}.json")));
    assert_eq!(v["rrweb_data"], full_events());
    // Nothing escaped the output directory, and the bucket is untouched.
    assert_eq!(
        std::fs::read_dir(dir.path().join("out")).unwrap().count(),
        1
    );
    assert!(!dir.path().join("escape.json").exists());
    for (p, b) in before {
        assert_eq!(
            std::fs::read(&p).unwrap(),
            b,
            "{} was modified",
            p.display()
        );
    }

    // --output-dir (dashed) and --json work as well.
    let out = rrstitch(dir.path())
        .args([
            "backfill",
            "--bucket",
            "bucket",
            "--output-dir",
            "out2",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["sessions_written"], 1);
    assert_eq!(summary["rejected"], 4);
    assert_eq!(summary["files_processed"], 9);
}

/// What the bench compares: the same backfill with insights (the default) and with
/// `RRSTITCH_INSIGHTS=0`, and a bad value stops it naming the variable.
#[test]
fn backfill_writes_insights_unless_rrstitch_insights_is_0() {
    let dir = tempfile::tempdir().unwrap();
    copy_fixture(&dir.path().join("bucket"));
    let result = |out: &str| read_json(&dir.path().join(out).join(format!("{GUID}.json")));
    rrstitch(dir.path())
        .env_remove("RRSTITCH_INSIGHTS")
        .args(["backfill", "--bucket", "bucket", "--output-dir", "on"])
        .assert()
        .success();
    let on = result("on");
    assert_eq!(
        on["metadata"]["insights"]["click_count"], 15,
        "{}",
        on["metadata"]
    );
    rrstitch(dir.path())
        .env("RRSTITCH_INSIGHTS", "0")
        .args(["backfill", "--bucket", "bucket", "--output-dir", "off"])
        .assert()
        .success();
    let off = result("off");
    assert!(
        off["metadata"].get("insights").is_none(),
        "{}",
        off["metadata"]
    );
    assert_eq!(off["rrweb_data"], on["rrweb_data"]);
    rrstitch(dir.path())
        .env("RRSTITCH_INSIGHTS", "maybe")
        .args(["backfill", "--bucket", "bucket", "--output-dir", "bad"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("RRSTITCH_INSIGHTS"));
}

#[test]
fn backfill_of_a_missing_bucket_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    rrstitch(dir.path())
        .args([
            "backfill",
            "--bucket",
            "ftp://nowhere",
            "--output_dir",
            "out",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("unknown scheme"));
}

#[test]
fn ingest_sweep_sessions_finalize_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    copy_fixture(&bucket);
    write_bad_inputs(&bucket);
    rrstitch(dir.path())
        .args(["ingest", "bucket"])
        .assert()
        .success()
        .stderr(predicate::str::contains("6 recorded"))
        .stderr(predicate::str::contains("4 rejected"));
    // Idle default is 5 minutes: nothing is final yet.
    rrstitch(dir.path())
        .args(["sweep"])
        .assert()
        .success()
        .stderr(predicate::str::contains("0 idle sessions"));
    rrstitch(dir.path())
        .args(["sessions"])
        .assert()
        .success()
        .stdout(predicate::str::contains(GUID).and(predicate::str::contains("open")));
    rrstitch(dir.path())
        .args(["sweep", "--idle", "0s"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "finalized {GUID}: 6 chunks, 243 events"
        )));
    let result = dir.path().join("results").join(format!("{GUID}.json"));
    assert_eq!(read_json(&result)["rrweb_data"], full_events());
    rrstitch(dir.path())
        .args(["rejected"])
        .assert()
        .success()
        .stdout(
            predicate::str::contains("bad_guid").and(predicate::str::contains("yesterday.json")),
        );

    // Ingesting again is a redelivery: nothing new.
    rrstitch(dir.path())
        .args(["ingest", "bucket"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("0 recorded").and(predicate::str::contains("6 already known")),
        );
    // A manual finalize re-stitches now; an unknown session is a clear error.
    rrstitch(dir.path())
        .args(["finalize", GUID])
        .assert()
        .success();
    rrstitch(dir.path())
        .args(["finalize", "no-such-session"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not in the index"));
    // A single file can be ingested by path.
    let late = dir.path().join("late");
    std::fs::create_dir_all(&late).unwrap();
    std::fs::write(
        late.join("2025-05-02T12:20:00.000000+0000.json"),
        format!(r#"{{"session_guid":"{GUID}","session_data":[{{"type":5,"timestamp":1746188400000,"data":{{"tag":"late"}}}}],"environment":"production"}}"#),
    )
    .unwrap();
    rrstitch(dir.path())
        .args(["ingest", "late/2025-05-02T12:20:00.000000+0000.json"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "1 recorded (1 re-opened a session)",
        ));
    rrstitch(dir.path())
        .args(["sweep", "--idle", "0s"])
        .assert()
        .success();
    let v = read_json(&result);
    assert_eq!(v["rrweb_data"].as_array().unwrap().len(), 244);
    assert_eq!(v["rrweb_data"][243]["data"]["tag"], "late");
}

#[test]
fn json_logs_carry_severity() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    std::fs::write(bucket.join("2025-05-02T12:11:00.000000+0000.json"), "{").unwrap();
    let out = rrstitch(dir.path())
        .args(["--log-format", "json", "ingest", "bucket"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    let line = stderr
        .lines()
        .find(|l| l.starts_with('{'))
        .expect("a JSON log line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["severity"], "WARNING");
    assert_eq!(v["object"], "2025-05-02T12:11:00.000000+0000.json");
    assert_eq!(v["kind"], "bad_json");
}

/// The rules of the redaction test: inputs, a `.private` class, data URLs, the console.
const REDACT_RULES: &str = r#"{"mask_inputs": true, "mask": [{"selector": ".private"}], "data_url_max_bytes": 64, "drop_plugins": ["rrweb/console@1"]}"#;

/// A chunk of `guid` holding `events`, written to `bucket` under the upload instant `at`.
fn write_chunk(bucket: &Path, at: &str, guid: &str, events: &[serde_json::Value]) {
    let body =
        serde_json::json!({"session_guid": guid, "session_data": events, "environment": "e"});
    std::fs::write(
        bucket.join(format!("2025-05-02T{at}.000000+0000.json")),
        body.to_string(),
    )
    .unwrap();
}

/// A Meta and a FullSnapshot of `<body>` holding `body`, at `ts`: ids 1–3 are the document,
/// `<html>` and `<body>`.
fn page(ts: i64, body: serde_json::Value) -> [serde_json::Value; 2] {
    let html = serde_json::json!({"type": 2, "id": 2, "tagName": "html", "attributes": {}, "childNodes": [
        {"type": 2, "id": 3, "tagName": "body", "attributes": {}, "childNodes": body}]});
    [
        serde_json::json!({"type": 4, "timestamp": ts, "data": {"href": "https://a.test/", "width": 800, "height": 600}}),
        serde_json::json!({"type": 2, "timestamp": ts + 1, "data": {"initialOffset": {"left": 0, "top": 0},
            "node": {"type": 0, "id": 1, "childNodes": [html]}}}),
    ]
}

/// The leaks of issue #27, through the real binary with `RRSTITCH_REDACT` inline: numbers
/// written as doubles, a chunk named before the snapshot's, a chosen option, and the
/// smaller ones (textarea text by mutation, comments, `DATA:` URLs, console in other forms,
/// a snapshot nested past serde_json's limit, a `source` given twice).
#[test]
fn redaction_holds_for_doubles_late_chunks_selects_and_odd_events() {
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();

    // Every integer a double, as a relay that round-trips numbers through doubles writes.
    write_chunk(
        &bucket,
        "12:00:00",
        "doubles",
        &[
            json!({"type": 4.0, "timestamp": 1000.0, "data": {"href": "https://a.test/", "width": 800.0, "height": 600.0}}),
            json!({"type": 2.0, "timestamp": 1001.0, "data": {"initialOffset": {"left": 0.0, "top": 0.0}, "node":
            {"type": 0.0, "id": 1.0, "childNodes": [{"type": 2.0, "id": 2.0, "tagName": "html", "attributes": {}, "childNodes": [
                {"type": 2.0, "id": 3.0, "tagName": "body", "attributes": {}, "childNodes": [
                    {"type": 2.0, "id": 4.0, "tagName": "div", "attributes": {"class": "private"}, "childNodes": [
                        {"type": 3.0, "id": 5.0, "textContent": "secret-d1"}]},
                    {"type": 2.0, "id": 6.0, "tagName": "input", "attributes": {"value": "secret-d2"}, "childNodes": []}]}]}]}}}),
            json!({"type": 3.0, "timestamp": 1002.0, "data": {"source": 5.0, "text": "secret-d3", "isChecked": false, "id": 6.0}}),
            json!({"type": 3.0, "timestamp": 1003.0, "data": {"source": 0.0, "texts": [{"id": 5.0, "value": "secret-d4"}],
            "attributes": [], "removes": [], "adds": [{"parentId": 4.0, "nextId": null, "node": {"type": 3.0, "id": 7.0, "textContent": "secret-d5"}}]}}),
        ],
    );
    // An SDK retry: the chunk with later events is named before the snapshot's.
    write_chunk(
        &bucket,
        "12:01:00",
        "late",
        &[
            json!({"type": 3, "timestamp": 2005, "data": {"source": 0, "texts": [{"id": 5, "value": "secret-l1"}], "attributes": [], "removes": [], "adds": []}}),
        ],
    );
    let [meta, snapshot] = page(
        2000,
        json!([{"type": 2, "id": 4, "tagName": "p", "attributes": {"class": "private"},
        "childNodes": [{"type": 3, "id": 5, "textContent": "hidden"}]}]),
    );
    write_chunk(&bucket, "12:01:01", "late", &[meta, snapshot]);
    // A select whose choice is made in the snapshot and again by an Input event.
    let [meta, snapshot] = page(
        3000,
        json!([{"type": 2, "id": 4, "tagName": "select", "attributes": {"value": "green"}, "childNodes": [
        {"type": 2, "id": 5, "tagName": "option", "attributes": {"value": "red"}, "childNodes": [{"type": 3, "id": 6, "textContent": "Red"}]},
        {"type": 2, "id": 7, "tagName": "option", "attributes": {"value": "green", "selected": true}, "childNodes": [{"type": 3, "id": 8, "textContent": "secret-Green"}]}]}]),
    );
    write_chunk(
        &bucket,
        "12:02:00",
        "select",
        &[
            meta,
            snapshot,
            json!({"type": 3, "timestamp": 3005, "data": {"source": 5, "text": "green", "isChecked": false, "id": 4}}),
        ],
    );
    // The smaller leaks, and a `.private` subtree 200 levels deep.
    let mut deep = json!({"type": 3, "id": 99, "textContent": "secret-deep"});
    for i in 0..200 {
        deep = json!({"type": 2, "id": 100 + i, "tagName": "div", "attributes": {}, "childNodes": [deep]});
    }
    let image = format!("DATA:image/png;base64,{}", "A".repeat(100));
    let [meta, snapshot] = page(
        4000,
        json!([
        {"type": 2, "id": 4, "tagName": "div", "attributes": {"class": "private"}, "childNodes": [
            {"type": 5, "id": 5, "textContent": "secret-comment"}, deep]},
        {"type": 2, "id": 8, "tagName": "textarea", "attributes": {}, "childNodes": [{"type": 3, "id": 9, "textContent": "x"}]},
        {"type": 2, "id": 10, "tagName": "img", "attributes": {"src": image}, "childNodes": []}]),
    );
    write_chunk(
        &bucket,
        "12:03:00",
        "small",
        &[
            meta,
            snapshot,
            json!({"type": 3, "timestamp": 4005, "data": {"source": 0, "texts": [{"id": 9, "value": "secret-ta1"}], "attributes": [], "removes": [],
            "adds": [{"parentId": 8, "nextId": null, "node": {"type": 3, "id": 11, "textContent": "secret-ta2"}}]}}),
            json!({"type": 3, "timestamp": 4006, "data": {"source": 11, "level": "log", "payload": ["secret-log"], "trace": []}}),
            json!({"type": 6, "timestamp": 4007, "data": {"plugin": "rrweb/console@2", "payload": {"level": "log", "payload": ["secret-console"]}}}),
        ],
    );
    // A `source` given twice: the player would read the Input, not the mouse move.
    std::fs::write(
        bucket.join("2025-05-02T12:04:00.000000+0000.json"),
        r#"{"session_guid":"dup","session_data":[{"type":3,"timestamp":5000,"data":{"source":1,"source":5,"text":"secret-dup","id":4}}],"environment":"e"}"#,
    )
    .unwrap();

    let ingest = rrstitch(dir.path())
        .env("RRSTITCH_REDACT", REDACT_RULES)
        .args(["ingest", "bucket"])
        .assert()
        .success();
    rrstitch(dir.path())
        .env("RRSTITCH_REDACT", REDACT_RULES)
        .args(["sweep", "--idle", "0s"])
        .assert()
        .success();
    let results = dir.path().join("results");
    let mut figures = Vec::new();
    for (guid, masked, unknown, dropped) in [
        ("doubles", 5, 0, 0),
        ("late", 2, 1, 0),
        ("select", 7, 0, 0),
        ("small", 5, 0, 2),
    ] {
        let text = std::fs::read_to_string(results.join(format!("{guid}.json"))).unwrap();
        assert!(!text.contains("secret"), "{guid} leaks: {text}");
        // Only the metadata: a Value of the deep snapshot is past serde_json's depth limit.
        #[derive(serde::Deserialize)]
        struct Stored {
            metadata: serde_json::Value,
        }
        let v: Stored = serde_json::from_str(&text).unwrap();
        let counts = &v.metadata["redaction"];
        assert_eq!(counts["values_masked"], masked, "{guid}: {counts}");
        assert_eq!(
            counts["values_masked_unknown_node"], unknown,
            "{guid}: {counts}"
        );
        assert_eq!(counts["events_dropped"], dropped, "{guid}: {counts}");
        assert_eq!(counts["events_unredactable"], 0, "{guid}: {counts}");
        assert_eq!(v.metadata["replayable"], true, "{guid}");
        figures.push(format!("{guid} {counts}"));
    }
    let small = std::fs::read_to_string(results.join("small.json")).unwrap();
    assert!(!small.contains(&image) && small.contains("data:image/gif"));
    assert!(!std::fs::read_to_string(results.join("select.json"))
        .unwrap()
        .contains("\"selected\""));
    ingest.stderr(predicate::str::contains("1 rejected"));
    rrstitch(dir.path())
        .args(["rejected"])
        .assert()
        .success()
        .stdout(predicate::str::contains("duplicate `source`"));
    assert!(!results.join("dup.json").exists());
    println!("FIGURE cli.redaction_issue_27: {}", figures.join("; "));
}

#[test]
fn watch_ingests_new_files_and_sweeps() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let mut child = rrstitch(dir.path())
        .args(["watch", "bucket", "--idle", "1s", "--sweep-every", "500ms"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    copy_fixture(&bucket);
    let result = dir.path().join("results").join(format!("{GUID}.json"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stitched = None;
    while Instant::now() < deadline {
        if let Ok(bytes) = std::fs::read(&result) {
            if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                if v["rrweb_data"].as_array().map(Vec::len) == Some(243) {
                    stitched = Some(v);
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    let v = stitched.expect("watch stitched the session within 30 s");
    assert_eq!(v["rrweb_data"], full_events());
}

#[test]
fn generate_writes_replayable_sessions() {
    let dir = tempfile::tempdir().unwrap();
    rrstitch(dir.path())
        .args([
            "generate",
            "--out",
            "g",
            "--sessions",
            "3",
            "--events",
            "50",
            "--duplicates",
            "1",
        ])
        .assert()
        .success();
    rrstitch(dir.path())
        .args(["backfill", "--bucket", "g", "--output_dir", "out", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"sessions_written\": 3"))
        .stdout(predicate::str::contains("\"duplicate_chunks_skipped\": 1"));
    for entry in std::fs::read_dir(dir.path().join("out")).unwrap() {
        let v = read_json(&entry.unwrap().path());
        assert_eq!(v["metadata"]["replayable"], true, "{}", v["metadata"]);
        assert_eq!(v["metadata"]["event_count"], 52);
    }
}

#[test]
fn reconcile_ingests_what_no_event_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    copy_fixture(&bucket);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&bucket)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    // Two of the six events arrived.
    rrstitch(dir.path())
        .arg("ingest")
        .args(&names[..2])
        .assert()
        .success();
    let out = succeeds(
        rrstitch(dir.path())
            .args(["reconcile", "--json", "--bucket"])
            .arg(&bucket),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["recovered"], 4, "{summary}");
    assert_eq!(summary["known"], 2, "{summary}");
    assert_eq!(summary["sessions_recovered"], 1, "{summary}");
    assert_eq!(
        summary["cursor"],
        serde_json::Value::Null,
        "a finished pass"
    );
    // Again: nothing left to recover.
    rrstitch(dir.path())
        .args(["reconcile", "--bucket"])
        .arg(&bucket)
        .assert()
        .success()
        .stderr(predicate::str::contains("6 known, 0 recovered"));
    rrstitch(dir.path())
        .args(["sweep", "--idle", "0s"])
        .assert()
        .success();
    let v = read_json(&dir.path().join("results").join(format!("{GUID}.json")));
    assert_eq!(v["rrweb_data"], full_events());
    // From a cursor: only the names after it are looked at.
    let cursor = names[3].file_name().unwrap().to_str().unwrap().to_owned();
    let out = succeeds(
        rrstitch(dir.path())
            .args(["reconcile", "--json", "--cursor", &cursor, "--bucket"])
            .arg(&bucket),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["objects_listed"], 2, "{summary}");
    assert_eq!(summary["known"], 2, "{summary}");
    // The scheduled series: no bookmark yet, so from the start, and finished.
    let out = succeeds(
        rrstitch(dir.path())
            .args(["reconcile", "--json", "--resume", "--bucket"])
            .arg(&bucket),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["objects_listed"], 6, "{summary}");
    assert_eq!(
        summary["resumed_from"],
        serde_json::Value::Null,
        "{summary}"
    );
    rrstitch(dir.path())
        .args(["reconcile", "--resume", "--cursor", &cursor, "--bucket"])
        .arg(&bucket)
        .assert()
        .failure()
        .stderr(predicate::str::contains("--cursor"));
    // Without a bucket it says what it needs.
    rrstitch(dir.path())
        .arg("reconcile")
        .assert()
        .failure()
        .stderr(predicate::str::contains("--bucket or RRSTITCH_CHUNKS"));
}

/// Sets every file under `dir` (not recursing) to `age` old.
fn age_files(dir: &Path, age: Duration) {
    let then = std::time::SystemTime::now() - age;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let f = std::fs::File::options().write(true).open(&path).unwrap();
            f.set_modified(then).unwrap();
        }
    }
}

#[test]
fn delete_erases_a_session_from_stdin_and_refuses_its_late_chunks() {
    let (dir, result) = stitched_fixture();
    let bucket = dir.path().join("bucket");
    assert!(result.exists());

    let mut child = rrstitch(dir.path())
        .args(["delete", "--from", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        write!(stdin, "# ticket 17\n{GUID}\n\n").unwrap();
    }
    let done = child.wait_with_output().unwrap();
    assert!(done.status.success(), "{done:?}");
    let out = done.stdout;
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let erased = &report["erased"][0];
    assert_eq!(erased["session_guid"], GUID);
    assert_eq!(erased["results"], 1);
    assert_eq!(erased["chunks"], 6);
    assert_eq!(
        erased["index_records"], 7,
        "6 chunk records and the session"
    );
    assert_eq!(erased["already_gone"], false);
    assert!(!result.exists());
    assert_eq!(std::fs::read_dir(&bucket).unwrap().count(), 0);
    rrstitch(dir.path())
        .args(["sessions"])
        .assert()
        .success()
        .stdout(predicate::str::contains(GUID).not());

    // The same chunks uploaded again are refused, recorded and deleted.
    copy_fixture(&bucket);
    rrstitch(dir.path())
        .args(["ingest", "bucket"])
        .assert()
        .success()
        .stderr(predicate::str::contains("0 recorded").and(predicate::str::contains("6 rejected")))
        .stderr(predicate::str::contains("deleted_session: 6"));
    assert_eq!(std::fs::read_dir(&bucket).unwrap().count(), 0);
    // A second delete finds nothing left, by argument this time; a bad guid is an error.
    rrstitch(dir.path())
        .args(["delete", GUID])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!(
            "{GUID}: nothing left to delete"
        )));
    rrstitch(dir.path())
        .args(["delete"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no session guids"));
}

#[test]
fn prune_deletes_old_chunks_and_keeps_results_unless_asked() {
    let (dir, result) = stitched_fixture();
    let bucket = dir.path().join("bucket");
    let json = |args: &[&str]| -> serde_json::Value {
        let out = rrstitch(dir.path())
            .args(args)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).unwrap()
    };
    // Nothing is 30 days old yet.
    let fresh = json(&["prune", "--older-than", "30d", "--json"]);
    assert_eq!(fresh["sessions_pruned"], 0);
    assert_eq!(fresh["sessions_skipped"], 1);
    assert_eq!(std::fs::read_dir(&bucket).unwrap().count(), 6);

    age_files(&bucket, Duration::from_secs(40 * 86_400));
    let dry = json(&["prune", "--older-than", "30d", "--dry-run", "--json"]);
    assert_eq!(dry["chunks_deleted"], 6);
    assert_eq!(
        std::fs::read_dir(&bucket).unwrap().count(),
        6,
        "a dry run deletes nothing"
    );
    let pruned = json(&["prune", "--older-than", "30d", "--json"]);
    assert_eq!(pruned["chunks_deleted"], 6);
    assert_eq!(pruned["chunk_records_deleted"], 6);
    assert_eq!(pruned["sessions_kept_for_result"], 1);
    assert_eq!(std::fs::read_dir(&bucket).unwrap().count(), 0);
    assert!(result.exists(), "the result outlives its raw chunks");
    rrstitch(dir.path())
        .args(["sessions"])
        .assert()
        .success()
        .stdout(predicate::str::contains(GUID));

    // --prune-results: only a result older than the cutoff goes, and its session with it.
    let young = json(&["prune", "--older-than", "30d", "--prune-results", "--json"]);
    assert_eq!(young["results_deleted"], 0);
    assert!(result.exists());
    age_files(
        &dir.path().join("results"),
        Duration::from_secs(40 * 86_400),
    );
    let old = json(&["prune", "--older-than", "30d", "--prune-results", "--json"]);
    assert_eq!(old["results_deleted"], 1);
    assert_eq!(old["sessions_forgotten"], 1);
    assert!(!result.exists());
    rrstitch(dir.path())
        .args(["sessions"])
        .assert()
        .success()
        .stdout(predicate::str::contains(GUID).not());
}

/// `RRSTITCH_RESTRICT` through the real CLI on the SQLite index: chunks of a dropped
/// environment or guid pattern are refused as `restricted`, sessions outside their
/// environment's sample as `sampled_out` — every chunk of a session alike — and all of them
/// are recorded with the other rejected objects, never become sessions, and get the same
/// decision when delivered again. A bad document stops the process naming the variable.
#[test]
fn restrictions_and_sampling_refuse_chunks_before_they_are_recorded() {
    use rrstitch::engine::restrict::sampled_in;
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    copy_fixture(&bucket);
    let chunk = |name: &str, guid: &str, env: &str| {
        std::fs::write(
            bucket.join(name),
            format!(r#"{{"session_guid":"{guid}","session_data":[{{"type":3,"timestamp":1746188400000,"data":{{"source":1}}}}],"environment":"{env}"}}"#),
        )
        .unwrap();
    };
    let sampled: Vec<String> = (0..40).map(|i| format!("s-{i:02}")).collect();
    for (i, guid) in sampled.iter().enumerate() {
        chunk(
            &format!("2025-05-03T10:00:{i:02}.000000+0000.json"),
            guid,
            "canary",
        );
        chunk(
            &format!("2025-05-03T10:01:{i:02}.000000+0000.json"),
            guid,
            "canary",
        );
    }
    chunk(
        "2025-05-03T11:00:00.000000+0000.json",
        "bot-7",
        "production",
    );
    chunk("2025-05-03T11:00:01.000000+0000.json", "st-1", "staging");
    let rules =
        r#"{"drop_environments": ["staging"], "drop_guids": ["bot-*"], "sample": {"canary": 0.5}}"#;
    let kept: Vec<&String> = sampled.iter().filter(|g| sampled_in(g, 0.5)).collect();
    assert!(
        !kept.is_empty() && kept.len() < sampled.len(),
        "the sample splits the sessions: {} of {}",
        kept.len(),
        sampled.len()
    );
    let out_n = sampled.len() - kept.len();
    for _ in 0..2 {
        let out = rrstitch(dir.path())
            .env("RRSTITCH_RESTRICT", rules)
            .args(["ingest", "bucket"])
            .output()
            .unwrap();
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The fixture's 6 chunks stay (production is not sampled); on the second delivery
        // they, and the kept sessions' chunks, are already known.
        assert!(
            stderr.contains(&format!("{} rejected", 2 + 2 * out_n)),
            "{stderr}"
        );
    }
    let sessions = rrstitch(dir.path())
        .args(["sessions", "--limit", "1000"])
        .output()
        .unwrap();
    let sessions = String::from_utf8_lossy(&sessions.stdout);
    assert!(sessions.contains(GUID), "{sessions}");
    for guid in &sampled {
        assert_eq!(
            sessions.contains(guid.as_str()),
            kept.contains(&guid),
            "{guid}: kept exactly when sampled in\n{sessions}"
        );
    }
    assert!(
        !sessions.contains("bot-7") && !sessions.contains("st-1"),
        "{sessions}"
    );
    let rejected = rrstitch(dir.path())
        .args(["rejected", "--limit", "1000"])
        .output()
        .unwrap();
    let rejected = String::from_utf8_lossy(&rejected.stdout);
    assert_eq!(
        rejected.matches("(sampled_out)").count(),
        2 * out_n,
        "both chunks of every sampled-out session\n{rejected}"
    );
    assert_eq!(rejected.matches("(restricted)").count(), 2, "{rejected}");
    assert!(
        rejected.contains("drop_guids \"bot-*\"")
            && rejected.contains("drop_environments \"staging\""),
        "{rejected}"
    );

    for bad in [r#"{"sample": {"canary": 1.5}}"#, ""] {
        rrstitch(dir.path())
            .env("RRSTITCH_RESTRICT", bad)
            .args(["ingest", "bucket"])
            .assert()
            .failure()
            .stderr(predicate::str::contains("RRSTITCH_RESTRICT"));
    }
}

/// `rrstitch restitch`: a session stitched before insights existed (here: with them off)
/// gets them, an erased one is never stitched again, a list from stdin with a cursor takes
/// only what follows it, and a run without a selection is refused.
#[test]
fn restitch_gives_finalized_sessions_the_current_rules() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    copy_fixture(&bucket);
    rrstitch(dir.path())
        .args(["ingest", "bucket"])
        .assert()
        .success();
    rrstitch(dir.path())
        .env("RRSTITCH_INSIGHTS", "0")
        .args(["sweep", "--idle", "0s"])
        .assert()
        .success();
    let result = dir.path().join("results").join(format!("{GUID}.json"));
    assert!(read_json(&result)["metadata"].get("insights").is_none());
    // A second session, erased: its tombstone is listed and left alone.
    write_chunk(
        &bucket,
        "12:30:00",
        "erased-1",
        &page(1746189000000, serde_json::json!([]))[..],
    );
    rrstitch(dir.path())
        .args(["ingest", "bucket"])
        .assert()
        .success();
    rrstitch(dir.path())
        .args(["delete", "erased-1"])
        .assert()
        .success();

    let out = succeeds(
        rrstitch(dir.path())
            .env_remove("RRSTITCH_INSIGHTS")
            .args(["restitch", "--all", "--json"]),
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["mode"], "inline");
    assert_eq!(summary["listed"], 2, "{summary}");
    assert_eq!(summary["restitched"], 1, "{summary}");
    assert_eq!(summary["tombstoned"], 1, "{summary}");
    assert_eq!(summary["cursor"], serde_json::Value::Null);
    let v = read_json(&result);
    assert_eq!(
        v["metadata"]["insights"]["click_count"], 15,
        "{}",
        v["metadata"]
    );
    assert_eq!(
        v["rrweb_data"],
        full_events(),
        "the same events, stitched again"
    );
    assert!(!dir.path().join("results/erased-1.json").exists());

    // Named on stdin, from a cursor past the first name; the totals go to stderr.
    let mut child = rrstitch(dir.path())
        .args(["restitch", "--from", "-", "--cursor", "1"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        write!(stdin, "# after the redaction change\nnot-indexed\n{GUID}\n").unwrap();
    }
    let done = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(done.status.success(), "{stderr}");
    assert!(stderr.contains("1 listed, 1 selected"), "{stderr}");
    assert!(stderr.contains("re-stitched:        1"), "{stderr}");
    assert!(stderr.contains("unknown:            0"), "{stderr}");
    rrstitch(dir.path())
        .args(["sessions", "--json"])
        .assert()
        .success()
        .stdout(predicate::str::contains("\"finalize_count\": 3"));

    rrstitch(dir.path())
        .args(["restitch"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--all"));
    rrstitch(dir.path())
        .args(["restitch", "--all", "--since", "1d"])
        .assert()
        .failure();
}

/// `RRSTITCH_SESSION_MAX_BYTES` through the real CLI on the SQLite index: of three equal
/// chunks of one session under a quota two of them fit, exactly two are recorded whatever
/// the order they are read in, the third is refused as `over_quota` (again when delivered
/// again), listed by `rrstitch rejected` and kept; the stitched result says how many bytes
/// were refused. Zero stops the process naming the variable.
#[test]
fn a_session_past_its_quota_has_its_later_chunks_refused_and_its_result_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    std::fs::create_dir_all(&bucket).unwrap();
    let body = |i: usize| {
        format!(
            r#"{{"session_guid":"quota-1","session_data":[{{"type":3,"timestamp":174619440{i}000,"data":{{"source":1}}}}],"environment":"production"}}"#
        )
    };
    for i in 0..3 {
        std::fs::write(
            bucket.join(format!("2025-05-02T14:00:0{i}.000000+0000.json")),
            body(i),
        )
        .unwrap();
    }
    let size = body(0).len();
    let quota = (size * 5 / 2).to_string();
    for _ in 0..2 {
        let out = succeeds(
            rrstitch(dir.path())
                .env("RRSTITCH_SESSION_MAX_BYTES", &quota)
                .args(["ingest", "bucket"]),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("1 rejected") && stderr.contains("over_quota"),
            "{stderr}"
        );
    }
    let rejected = succeeds(rrstitch(dir.path()).args(["rejected"]));
    let rejected = String::from_utf8_lossy(&rejected.stdout);
    assert_eq!(rejected.matches("(over_quota)").count(), 1, "{rejected}");
    assert!(
        rejected.contains(&format!("quota of {quota} bytes"))
            || rejected.contains(&format!("{quota}-byte quota")),
        "{rejected}"
    );
    assert_eq!(std::fs::read_dir(&bucket).unwrap().count(), 3, "all kept");
    succeeds(
        rrstitch(dir.path())
            .env("RRSTITCH_SESSION_MAX_BYTES", &quota)
            .args(["sweep", "--idle", "0s"]),
    );
    let result = read_json(&dir.path().join("results").join("quota-1.json"));
    assert_eq!(
        result["metadata"]["chunk_count"], 2,
        "{}",
        result["metadata"]
    );
    let warnings = result["metadata"]["warnings"].to_string();
    assert!(
        warnings.contains(&format!("1 chunk(s), {size} bytes, refused over")),
        "{warnings}"
    );

    rrstitch(dir.path())
        .env("RRSTITCH_SESSION_MAX_BYTES", "0")
        .args(["ingest", "bucket"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("RRSTITCH_SESSION_MAX_BYTES"));
}
