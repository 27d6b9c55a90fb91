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
    let out = rrstitch(dir.path())
        .args(["reconcile", "--json", "--bucket"])
        .arg(&bucket)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["recovered"], 4, "{summary}");
    assert_eq!(summary["known"], 2, "{summary}");
    assert_eq!(summary["sessions_recovered"], 1, "{summary}");
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
