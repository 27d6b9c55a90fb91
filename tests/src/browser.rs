//! What the browser tests share: `tests/browser/harness.mjs` (Debian's Chromium through
//! playwright-core), the real `rrstitch` binary stitching on the embedded default, and
//! `rrstitch view` on a port-0 address.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::procs::Group;
use crate::{bins, repo_root};

/// The harness script, after checking Chromium and the npm packages are installed: without
/// them the browser tests fail and say so; they never skip.
pub fn harness() -> PathBuf {
    let root = repo_root();
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: run scripts/install-browser.sh (make test does)"
    );
    for needed in [
        "viewer/node_modules/rrweb/dist/rrweb.umd.min.cjs",
        "tests/browser/node_modules/playwright-core/package.json",
    ] {
        assert!(
            root.join(needed).exists(),
            "{needed} is missing: run scripts/install-browser.sh (make test does)"
        );
    }
    root.join("tests/browser/harness.mjs")
}

/// Runs `node harness.mjs <args>` and parses the JSON line it prints.
pub fn node(args: &[&str]) -> Value {
    let out = Command::new("node")
        .arg(harness())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("node is installed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "harness {args:?} failed\n{stdout}\n{stderr}"
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON from harness {args:?}:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).unwrap()
}

/// `rrstitch ingest` of each of `chunk_dirs`, then one `rrstitch sweep --idle 0s`, on the
/// embedded default in `work` (plus `extra` env, e.g. `RRSTITCH_SEGMENTS=on`). Returns the
/// results directory.
pub fn stitch_dirs(work: &Path, chunk_dirs: &[&Path], extra: &[(&str, &str)]) -> PathBuf {
    let results = work.join("results");
    let mut env = vec![
        (
            "RRSTITCH_INDEX".to_string(),
            format!("sqlite:{}", work.join("index.sqlite").display()),
        ),
        (
            "RRSTITCH_RESULTS".to_string(),
            results.display().to_string(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut runs: Vec<Vec<String>> = chunk_dirs
        .iter()
        .map(|d| vec!["ingest".to_string(), d.display().to_string()])
        .collect();
    runs.push(vec!["sweep".into(), "--idle".into(), "0s".into()]);
    for args in runs {
        bins::succeeds(bins::command("rrstitch", &env).args(&args));
    }
    results
}

/// `rrstitch ingest` + `rrstitch sweep --idle 0s` over `chunks`; returns the stitched session.
pub fn stitch(work: &Path, chunks: &Path, guid: &str) -> (PathBuf, Value) {
    stitch_with(work, chunks, guid, &[])
}

/// [`stitch`] with more environment (`RRSTITCH_REDACT`).
pub fn stitch_with(
    work: &Path,
    chunks: &Path,
    guid: &str,
    extra: &[(String, String)],
) -> (PathBuf, Value) {
    let extra: Vec<(&str, &str)> = extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let results = stitch_dirs(work, &[chunks], &extra);
    let file = results.join(format!("{guid}.json"));
    let body =
        std::fs::read(&file).unwrap_or_else(|e| panic!("{} was not written: {e}", file.display()));
    (file, serde_json::from_slice(&body).unwrap())
}

/// `rrstitch view <source> --port 0`, running until dropped, and its address.
pub fn view(source: &Path) -> (Group, String) {
    view_with(source.to_str().unwrap(), &[])
}

/// `rrstitch view <source> --port 0` for any source (a directory, `gs://…`) with `env`
/// (an emulator's), running until dropped, and its address.
pub fn view_with(source: &str, env: &[(String, String)]) -> (Group, String) {
    let mut cmd = bins::command("rrstitch", env);
    cmd.args(["view", source, "--port", "0"])
        .env("RRSTITCH_VIEWER_DIR", repo_root().join("viewer"));
    let mut server = Group::spawn("rrstitch-view", cmd);
    let mut url = String::new();
    let log_path = server.log.clone();
    server.wait_until(Duration::from_secs(20), || {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        match log.lines().find_map(|l| l.strip_prefix("viewer at ")) {
            Some(u) => {
                url = u.trim().to_string();
                true
            }
            None => false,
        }
    });
    (server, url)
}
