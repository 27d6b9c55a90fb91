//! Progressive playback of segmented sessions (issue #15), judged in Debian's Chromium.
//!
//! - A generated session of more than 200 MB (`rrstitch generate --session-bytes`), stitched
//!   with `RRSTITCH_SEGMENTS=on`, opens in the viewer with its first frame within 3 s, the
//!   page's JS heap under [`HEAP_BOUND_MB`] while it loads and plays, and a seek to 90 % shows
//!   the same DOM as rrweb replaying the whole single file from its first event (every later
//!   checkout dropped) to that time. Control: a manifest without the segment holding the 90 %
//!   point gives a different DOM.
//! - The real recordings in `fixtures/real/` (cut into several segments with a small
//!   `RRSTITCH_SEGMENT_BYTES`) reach the same final DOM through the viewer's segments as
//!   through their single files. Control: dropping a segment changes it.
//! - The list's filters (guid, URL, environment, duration) and warnings.
//!
//! Figures are printed as `FIGURE playback.*` lines for the README. Needs
//! `scripts/install-browser.sh`; fails (never skips) without it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use rrstitch_tests::browser::{harness, node, stitch_dirs, view, view_with};
use rrstitch_tests::{bins, repo_root};
use serde_json::{json, Value};

/// The bound on the viewer page's JS heap (V8 `usedSize` through CDP, sampled every 100 ms):
/// the 16 MiB playback window plus the replayed DOM and rrweb, with room to spare, and far
/// below the ~1 GB the whole 200 MB session costs in one Replayer.
const HEAP_BOUND_MB: f64 = 160.0;
const FIRST_FRAME_BOUND_MS: f64 = 3000.0;

/// The two tests each drive a browser and the big one measures time: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn read_json(path: &Path) -> Value {
    let body = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&body).unwrap()
}

/// Lines of two serialized DOMs that differ (by index), and how many.
fn dom_diff(a: &Path, b: &Path) -> (usize, Vec<Value>) {
    let (a, b) = (read_json(a), read_json(b));
    let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
    let mut diffs = Vec::new();
    for i in 0..a.len().max(b.len()) {
        if a.get(i) != b.get(i) {
            diffs.push(json!({"line": i, "a": a.get(i), "b": b.get(i)}));
        }
    }
    (diffs.len(), diffs.into_iter().take(5).collect())
}

/// Writes `manifest` without the segment at `drop` to `results/<guid>/manifest.json`,
/// returning the original to restore.
fn drop_segment(results: &Path, guid: &str, drop: usize) -> Vec<u8> {
    let path = results.join(guid).join("manifest.json");
    let original = std::fs::read(&path).unwrap();
    let mut manifest: Value = serde_json::from_slice(&original).unwrap();
    manifest["segments"].as_array_mut().unwrap().remove(drop);
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    original
}

/// The harness's `playback` (the viewer) or `reference` (rrweb on the whole single file)
/// command on one session, up to `at`, writing the DOM it reached to `dom`.
fn page(command: &str, url: &str, guid: &str, at: &str, dom: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        command,
        "--url",
        url,
        "--guid",
        guid,
        "--at",
        at,
        "--dom",
        dom.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    node(&args)
}

fn playback(url: &str, guid: &str, at: &str, dom: &Path, extra: &[&str]) -> Value {
    page("playback", url, guid, at, dom, extra)
}

fn reference(url: &str, guid: &str, at: &str, dom: &Path, whole: bool) -> Value {
    let extra: &[&str] = if whole { &["--whole", "1"] } else { &[] };
    page("reference", url, guid, at, dom, extra)
}

/// The last seekable segment starting at or before `abs` (what the viewer rebuilds from).
fn base_for(segments: &[Value], abs: i64) -> usize {
    let mut base = 0;
    for (i, s) in segments.iter().enumerate() {
        if s["first_timestamp"].as_i64().unwrap() > abs {
            break;
        }
        if s["seekable"] == true {
            base = i;
        }
    }
    base
}

#[test]
fn a_200_mb_session_plays_progressively_with_bounded_heap_and_seeks_exactly() {
    let _one = serial();
    harness();
    let began = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let chunks = work.path().join("chunks");
    bins::succeeds(
        bins::command("rrstitch", &[])
            .args(["generate", "--out", chunks.to_str().unwrap()])
            .args(["--session-bytes", "210MB", "--seed", "3"]),
    );
    let generated = began.elapsed();
    let guid = "long-3";
    let results = stitch_dirs(work.path(), &[&chunks], &[("RRSTITCH_SEGMENTS", "on")]);
    let stitched_in = began.elapsed() - generated;
    let single = results.join(format!("{guid}.json"));
    let single_bytes = std::fs::metadata(&single).unwrap().len();
    assert!(
        single_bytes >= 200_000_000,
        "the session is only {single_bytes} bytes"
    );
    let manifest = read_json(&results.join(guid).join("manifest.json"));
    let segments = manifest["segments"].as_array().unwrap().clone();
    let seekable = segments.iter().filter(|s| s["seekable"] == true).count();
    let stored: u64 = segments
        .iter()
        .map(|s| s["stored_bytes"].as_u64().unwrap())
        .sum();
    assert!(segments.len() >= 20, "{} segments", segments.len());
    assert!(seekable >= 10, "{seekable} seekable segments");

    let (server, url) = view(&results);
    let shot = repo_root().join("target/browser/playback.png");
    let viewer_dom = work.path().join("viewer-dom.json");
    // Opens the session, plays it at 200x for 6 s (long enough to move the window past its
    // budget at least once), then seeks to 90 %.
    let seen = playback(
        &url,
        guid,
        "0.9",
        &viewer_dom,
        &[
            "--play-ms",
            "6000",
            "--speed",
            "200",
            "--shot",
            shot.to_str().unwrap(),
        ],
    );
    assert_eq!(seen["ok"], true, "{seen:#}\n{}", server.tail());
    assert_eq!(seen["mode"], "segments", "{seen}");
    let first_frame = seen["first_frame_ms"].as_f64().unwrap();
    assert!(
        first_frame <= FIRST_FRAME_BOUND_MS,
        "first frame after {first_frame} ms: {seen:#}"
    );
    let heap = seen["heap_max_mb"].as_f64().unwrap();
    assert!(seen["heap_samples"].as_u64().unwrap() >= 20, "{seen}");
    assert!(heap <= HEAP_BOUND_MB, "JS heap reached {heap} MB: {seen:#}");
    let played = &seen["played"]["progress"];
    assert!(
        played["restarts"].as_u64().unwrap() >= 1,
        "playback never moved its window on, so the bound was not exercised: {seen:#}"
    );
    assert!(
        played["fetched_bytes"].as_u64().unwrap() < single_bytes / 2,
        "the viewer fetched most of the session: {seen:#}"
    );

    let reference_dom = work.path().join("reference-dom.json");
    let t = Instant::now();
    let reference_seen = reference(&url, guid, "0.9", &reference_dom, true);
    let reference_ms = t.elapsed().as_millis();
    assert_eq!(reference_seen["ok"], true, "{reference_seen:#}");
    assert_eq!(
        reference_seen["target_ms"], seen["target_ms"],
        "{reference_seen} vs {seen}"
    );
    assert!(
        reference_seen["checkouts"].as_u64().unwrap() >= 10,
        "{reference_seen}"
    );
    let lines = seen["dom_lines"].as_u64().unwrap();
    assert!(lines >= 20, "too small a DOM to compare: {seen}");
    let (diffs, sample) = dom_diff(&viewer_dom, &reference_dom);
    assert_eq!(
        diffs, 0,
        "seeking to 90 % differs from replaying the whole session: {sample:#?}"
    );

    // Control: without the segment holding the 90 % point the viewer rebuilds from an
    // earlier checkout and misses that stretch; the comparison must see it.
    let start = manifest["metadata"]["first_event_timestamp"]
        .as_i64()
        .unwrap();
    let target = start + seen["target_ms"].as_i64().unwrap();
    let at = base_for(&segments, target);
    assert!(at > 0, "the 90 % point is in the first segment");
    let original = drop_segment(&results, guid, at);
    let control_dom = work.path().join("control-dom.json");
    let control = playback(&url, guid, "0.9", &control_dom, &[]);
    std::fs::write(results.join(guid).join("manifest.json"), original).unwrap();
    let (control_diffs, _) = dom_diff(&control_dom, &reference_dom);
    assert!(
        control_diffs > 0,
        "dropping segment {at} left the DOM unchanged: the comparison cannot fail: {control}"
    );

    println!(
        "FIGURE playback.session: {single_bytes} bytes ({:.1} MB) single file, {} segments ({seekable} seekable), {:.1} MB stored gzip",
        single_bytes as f64 / 1e6,
        segments.len(),
        stored as f64 / 1e6
    );
    println!(
        "FIGURE playback.first_frame_ms: {first_frame:.0} (bound {FIRST_FRAME_BOUND_MS}; {} ms since navigation)",
        seen["first_frame_since_navigation_ms"]
    );
    println!(
        "FIGURE playback.heap_mb: max {heap} while loading and playing at 200x (bound {HEAP_BOUND_MB}; {} samples; {} window restarts; fetched {:.1} MB of {:.1} MB)",
        seen["heap_samples"],
        played["restarts"],
        played["fetched_bytes"].as_f64().unwrap() / 1e6,
        played["total_bytes"].as_f64().unwrap() / 1e6
    );
    println!(
        "FIGURE playback.seek_90: {} ms to seek in the viewer, {lines} DOM lines equal to a whole replay ({reference_ms} ms); control without segment {at}: {control_diffs} lines differ",
        seen["seek_ms"]
    );
    println!(
        "FIGURE playback.runtime: generate {:.1} s, ingest+sweep {:.1} s, total {:.1} s",
        generated.as_secs_f64(),
        stitched_in.as_secs_f64(),
        began.elapsed().as_secs_f64()
    );
}

/// The real recordings replayed to their end: through segments in the viewer and through the
/// single file in a plain Replayer.
const FIXTURES: &[&str] = &[
    "posthog-hogflix",
    "rrweb-player-demoit",
    "rrweb-dialog-playback",
    "rrweb-multiple-fullsnapshot-events",
    "highlight-app",
    "rrweb-input",
];

/// One HTTP/1.1 GET over a plain socket: the response head as text and the body bytes, as
/// sent (no decoding).
fn raw_get(base: &str, path: &str) -> (String, Vec<u8>) {
    let addr = base.trim_start_matches("http://").trim_end_matches('/');
    rrstitch_tests::raw_http::get(addr, addr, path, &[("Accept-Encoding", "gzip")])
}

fn guid_of(chunks: &Path) -> String {
    let mut names: Vec<PathBuf> = std::fs::read_dir(chunks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    read_json(&names[0])["session_guid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn real_recordings_replay_the_same_through_segments_and_single_files_and_the_list_filters() {
    let _one = serial();
    harness();
    let began = Instant::now();
    let work = tempfile::tempdir().unwrap();
    let real = repo_root().join("fixtures/real");
    // The one without a FullSnapshot is listed (its warnings are part of the list test) but
    // not replayed.
    let names: Vec<&str> = FIXTURES
        .iter()
        .copied()
        .chain(["posthog-2022-no-fullsnapshot"])
        .collect();
    let dirs: Vec<PathBuf> = names.iter().map(|n| real.join(n).join("chunks")).collect();
    // Two generated sessions of another environment, for the environment filter.
    let staging = work.path().join("staging");
    bins::succeeds(
        bins::command("rrstitch", &[])
            .args(["generate", "--out", staging.to_str().unwrap()])
            .args([
                "--sessions",
                "2",
                "--events",
                "60",
                "--environment",
                "staging",
            ]),
    );
    let mut dir_refs: Vec<&Path> = dirs.iter().map(PathBuf::as_path).collect();
    dir_refs.push(&staging);
    let results = stitch_dirs(
        work.path(),
        &dir_refs,
        &[
            ("RRSTITCH_SEGMENTS", "on"),
            ("RRSTITCH_SEGMENT_BYTES", "2KiB"),
        ],
    );
    let (server, url) = view(&results);
    let mut multi = 0;
    let mut compared = Vec::new();
    for (name, dir) in FIXTURES.iter().zip(&dirs) {
        let guid = guid_of(dir);
        let manifest = read_json(&results.join(&guid).join("manifest.json"));
        let segments = manifest["segments"].as_array().unwrap().len();
        if segments >= 2 {
            multi += 1;
        }
        let via_segments = work.path().join(format!("{name}-segments.json"));
        let via_file = work.path().join(format!("{name}-file.json"));
        let seen = playback(&url, &guid, "end", &via_segments, &[]);
        assert_eq!(seen["mode"], "segments", "{name}: {seen}");
        let reference_seen = reference(&url, &guid, "end", &via_file, false);
        assert_eq!(reference_seen["target_ms"], seen["target_ms"], "{name}");
        let (diffs, sample) = dom_diff(&via_segments, &via_file);
        assert_eq!(
            diffs,
            0,
            "{name}: segments and single file differ: {sample:#?}\n{seen}\n{}",
            server.tail()
        );
        assert!(seen["dom_lines"].as_u64().unwrap() > 0, "{name}: {seen}");
        compared.push(format!(
            "{name} ({segments} segments, {} lines)",
            seen["dom_lines"]
        ));
    }
    assert!(
        multi >= 3,
        "too few fixtures cut into several segments: {compared:?}"
    );

    // Control: rrweb-player-demoit without its largest segment after the first two (its Meta
    // and FullSnapshot): a large DOM mutation, whose loss the final DOM must show.
    let guid = guid_of(&dirs[1]);
    let manifest = read_json(&results.join(&guid).join("manifest.json"));
    let segments = manifest["segments"].as_array().unwrap();
    let drop = (2..segments.len())
        .max_by_key(|&i| segments[i]["bytes"].as_u64().unwrap())
        .expect("rrweb-player-demoit has more than two segments");
    let original = drop_segment(&results, &guid, drop);
    let control_dom = work.path().join("control.json");
    playback(&url, &guid, "end", &control_dom, &[]);
    std::fs::write(results.join(&guid).join("manifest.json"), original).unwrap();
    let (control_diffs, _) = dom_diff(
        &control_dom,
        &work.path().join("rrweb-player-demoit-file.json"),
    );
    assert!(
        control_diffs > 0,
        "dropping segment {drop} of {guid} left its final DOM unchanged"
    );

    // The list: every session, filtered by each input; the expected rows come from the
    // single files' metadata, not from the page.
    let mut metas = Vec::new();
    for entry in std::fs::read_dir(&results).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let v = read_json(&path);
            metas.push((
                v["session_guid"].as_str().unwrap().to_string(),
                v["metadata"].clone(),
            ));
        }
    }
    metas.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(metas.len(), names.len() + 2, "{metas:?}");
    let with_url = metas
        .iter()
        .find_map(|(_, m)| m["urls"].as_array().and_then(|u| u.first()).cloned())
        .expect("a fixture with a URL");
    let with_url = with_url.as_str().unwrap();
    let url_part = &with_url[..with_url.len().min(24)];
    let env = "staging".to_string();
    let durations: Vec<f64> = metas
        .iter()
        .map(|(_, m)| m["duration_ms"].as_f64().unwrap_or(0.0))
        .collect();
    let mut sorted = durations.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median_s = (sorted[sorted.len() / 2] / 1000.0).floor();
    let guid_part = "hogflix";
    let cases = json!([
        {},
        {"guid": guid_part},
        {"url": url_part},
        {"env": env},
        {"min": median_s.to_string()},
        {"max": median_s.to_string()},
        {"guid": "no-such-session-at-all"},
    ]);
    let want = |keep: &dyn Fn(&str, &Value) -> bool| -> Vec<String> {
        let mut g: Vec<String> = metas
            .iter()
            .filter(|(g, m)| keep(g, m))
            .map(|(g, _)| g.clone())
            .collect();
        g.sort();
        g
    };
    let dur = |m: &Value| m["duration_ms"].as_f64();
    let expected = [
        want(&|_, _| true),
        want(&|g, _| g.to_lowercase().contains(&guid_part.to_lowercase())),
        want(&|_, m| {
            m["urls"].as_array().is_some_and(|u| {
                u.iter().any(|x| {
                    x.as_str()
                        .unwrap_or("")
                        .to_lowercase()
                        .contains(&url_part.to_lowercase())
                })
            })
        }),
        want(&|_, m| m["environment"] == env.as_str()),
        want(&|_, m| dur(m).is_some_and(|d| d >= median_s * 1000.0)),
        want(&|_, m| dur(m).is_some_and(|d| d <= median_s * 1000.0)),
        vec![],
    ];
    let listed = node(&["filters", "--url", &url, "--cases", &cases.to_string()]);
    assert_eq!(listed["ok"], true, "{listed:#}");
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(
            listed["results"][i],
            json!(want),
            "filter case {} gave the wrong rows",
            cases[i]
        );
    }
    // Each case must narrow something, or it proves nothing.
    for i in 1..expected.len() {
        assert!(
            expected[i].len() < expected[0].len(),
            "filter case {} keeps every session",
            cases[i]
        );
    }
    let warned: Vec<&Value> = listed["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["count"].as_u64().unwrap() > 0)
        .collect();
    for (guid, m) in &metas {
        let n = m["warnings"].as_array().map_or(0, Vec::len);
        let row = listed["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["guid"] == guid.as_str())
            .unwrap();
        assert_eq!(row["count"], n, "{guid}: {row}");
        assert_eq!(row["texts"].as_array().unwrap().len(), n, "{guid}: {row}");
    }
    assert!(!warned.is_empty(), "no fixture has warnings: {listed}");
    assert_eq!(listed["opened"]["player_shown"], false, "{listed}");

    println!(
        "FIGURE playback.fixtures: same final DOM through segments and single file: {}; control: {control_diffs} lines differ; {:.1} s",
        compared.join(", "),
        began.elapsed().as_secs_f64()
    );
}

/// The routes the progressive viewer reads, without a browser: the manifest, a segment served
/// as stored gzip with the headers a `fetch(...).json()` needs, the list built from the
/// manifest, and paths that must not reach the store.
#[test]
fn view_serves_manifests_and_gzip_segments_and_refuses_paths_outside_a_session() {
    let work = tempfile::tempdir().unwrap();
    let chunks = repo_root().join("fixtures/real/rrweb-player-demoit/chunks");
    let guid = guid_of(&chunks);
    let results = stitch_dirs(
        work.path(),
        &[&chunks],
        &[
            ("RRSTITCH_SEGMENTS", "on"),
            ("RRSTITCH_SEGMENT_BYTES", "2KiB"),
        ],
    );
    // A file beside the results that a path escaping the session folder would reach.
    std::fs::write(work.path().join("secret.json.gz"), b"not for the viewer").unwrap();
    let (server, url) = view(&results);
    let get = |path: &str| match ureq::get(&format!("{url}{path}")).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}\n{}", server.tail()),
    };

    let r = get(&format!("api/sessions/{guid}/manifest.json"));
    assert_eq!(r.status(), 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let manifest: Value = r.into_json().unwrap();
    let segments = manifest["segments"].as_array().unwrap();
    assert!(segments.len() >= 3, "{manifest}");
    let mut events = 0;
    for seg in segments {
        let r = get(&format!(
            "api/sessions/{guid}/segments/{}",
            seg["path"].as_str().unwrap()
        ));
        assert_eq!(r.status(), 200);
        // ureq inflates gzip (and drops the header): the bytes on the wire are checked raw.
        let body: Value = r.into_json().unwrap();
        assert_eq!(
            body.as_array().unwrap().len() as u64,
            seg["events"].as_u64().unwrap()
        );
        events += seg["events"].as_u64().unwrap();
    }
    assert_eq!(
        events,
        manifest["metadata"]["event_count"].as_u64().unwrap()
    );
    let (head, body) = raw_get(
        &url,
        &format!(
            "/api/sessions/{guid}/segments/{}",
            segments[0]["path"].as_str().unwrap()
        ),
    );
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("\r\ncontent-encoding: gzip\r\n"), "{head}");
    assert!(
        head.contains("\r\ncontent-type: application/json\r\n"),
        "{head}"
    );
    assert!(body.starts_with(&[0x1f, 0x8b]), "not gzip on the wire");
    // An object a bucket hands over inflated (GCS transcoding) is served as plain JSON.
    let last = segments.last().unwrap()["path"].as_str().unwrap();
    std::fs::write(results.join(&guid).join(last), b"[]").unwrap();
    let (head, body) = raw_get(&url, &format!("/api/sessions/{guid}/segments/{last}"));
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(!head.contains("content-encoding"), "{head}");
    assert_eq!(body, b"[]");

    let list: Value = get("api/sessions").into_json().unwrap();
    let rows = list.as_array().unwrap();
    assert_eq!(rows.len(), 1, "segment objects listed as sessions: {list}");
    assert_eq!(rows[0]["session_guid"], guid.as_str());
    assert_eq!(rows[0]["manifest"], true);
    assert_eq!(rows[0]["urls"], manifest["metadata"]["urls"]);
    assert_eq!(rows[0]["duration_ms"], manifest["metadata"]["duration_ms"]);

    for bad in [
        format!("api/sessions/{guid}/segments/..%2F..%2Fsecret.json.gz"),
        format!("api/sessions/{guid}/segments/x/..%2F..%2F..%2Fsecret.json.gz"),
        format!("api/sessions/{guid}/segments/.hidden/00000.json.gz"),
        format!("api/sessions/{guid}/segments/{}", "manifest.json"),
        "api/sessions/..%2Fsecret/manifest.json".to_string(),
    ] {
        let status = get(&bad).status();
        assert_eq!(status, 400, "{bad} answered {status}");
    }
    assert_eq!(
        get("api/sessions/no-such-session/manifest.json").status(),
        404
    );
    assert_eq!(
        get(&format!("api/sessions/{guid}/segments/nope/00000.json.gz")).status(),
        404
    );
}

/// The same routes over a results bucket on fake-gcs-server: `rrstitch backfill` writes the
/// segments there (stored with `Content-Encoding: gzip`) and `rrstitch view gs://…` serves
/// them; whether the bucket hands the bytes over as stored or inflated, the browser must get
/// JSON it can read.
#[test]
fn view_serves_segments_from_a_gcs_results_bucket() {
    let gcs = rrstitch_tests::FakeGcs::start();
    gcs.create_bucket("results");
    let chunks = repo_root().join("fixtures/real/posthog-hogflix/chunks");
    let guid = guid_of(&chunks);
    let mut env = gcs.env();
    env.extend(
        [
            ("RRSTITCH_SEGMENTS", "on"),
            ("RRSTITCH_SEGMENT_BYTES", "2KiB"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    bins::succeeds(
        bins::command("rrstitch", &env)
            .args(["backfill", "--bucket", chunks.to_str().unwrap()])
            .args(["--results", "gs://results/out/"]),
    );
    let (server, url) = view_with("gs://results/out/", &gcs.env());
    let list: Value = ureq::get(&format!("{url}api/sessions"))
        .call()
        .unwrap_or_else(|e| panic!("{e}\n{}", server.tail()))
        .into_json()
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list[0]["manifest"], true, "{list}");
    let manifest: Value = ureq::get(&format!("{url}api/sessions/{guid}/manifest.json"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let segments = manifest["segments"].as_array().unwrap();
    assert!(segments.len() >= 3, "{manifest}");
    let mut events = 0;
    for seg in segments {
        let path = format!(
            "/api/sessions/{guid}/segments/{}",
            seg["path"].as_str().unwrap()
        );
        let (head, body) = raw_get(&url, &path);
        let head = head.to_ascii_lowercase();
        assert!(
            head.starts_with("http/1.1 200"),
            "{head}\n{}",
            server.tail()
        );
        // Labelled gzip exactly when it is gzip.
        assert_eq!(
            head.contains("\r\ncontent-encoding: gzip\r\n"),
            body.starts_with(&[0x1f, 0x8b]),
            "{head}"
        );
        let parsed: Value = ureq::get(&format!("{url}{}", &path[1..]))
            .call()
            .unwrap()
            .into_json()
            .unwrap();
        events += parsed.as_array().unwrap().len() as u64;
    }
    assert_eq!(
        events,
        manifest["metadata"]["event_count"].as_u64().unwrap()
    );
    println!(
        "FIGURE playback.gcs: {} segments served from gs://results/out/",
        segments.len()
    );
}
