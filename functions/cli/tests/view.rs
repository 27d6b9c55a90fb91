//! `rrstitch view` over plain sockets, no browser: which requests it answers (the Host it is
//! addressed by), which files it serves (regular files inside the results directory), and
//! what one session's lookup reads (its own object, never every session).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// The raw GET the end-to-end playback tests use too: one definition, no dependency on them.
#[path = "../../../tests/src/raw_http.rs"]
mod raw_http;

const GUID: &str = "6f1c2a9e-3b7d-4e51-9a8c-2d4b7e0f1a33";

/// A running `rrstitch view`, killed when dropped.
struct Viewer {
    child: Child,
    port: u16,
    _assets: tempfile::TempDir,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Viewer {
    /// `rrstitch view <source> --port 0` with a minimal assets folder (the page is not
    /// under test here, only the routes).
    fn start(source: &Path) -> Viewer {
        let assets = tempfile::tempdir().unwrap();
        std::fs::write(assets.path().join("index.html"), "<!doctype html>").unwrap();
        std::fs::create_dir_all(assets.path().join("node_modules/rrweb/dist")).unwrap();
        let mut child = Command::cargo_bin("rrstitch")
            .unwrap()
            .args(["view", source.to_str().unwrap(), "--port", "0", "--assets"])
            .arg(assets.path())
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .trim_start_matches("viewer at http://127.0.0.1:")
            .trim_end_matches('/')
            .parse()
            .unwrap_or_else(|_| panic!("no address in {line:?}"));
        Viewer {
            child,
            port,
            _assets: assets,
        }
    }

    /// `GET path` with the given `Host` header: status and body.
    fn get_as(&self, host: &str, path: &str) -> (u16, Vec<u8>) {
        let addr = format!("127.0.0.1:{}", self.port);
        let (head, body) = raw_http::get(&addr, host, path, &[]);
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body)
    }

    fn get(&self, path: &str) -> (u16, Vec<u8>) {
        self.get_as(&format!("127.0.0.1:{}", self.port), path)
    }

    /// The process's peak resident set (`VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

/// A stitched session with `pad` bytes of event data.
fn session(guid: &str, pad: usize) -> String {
    format!(
        r#"{{"session_guid":"{guid}","rrweb_data":[{{"type":3,"timestamp":1,"data":{{"p":"{}"}}}}],"metadata":{{"event_count":1}}}}"#,
        "x".repeat(pad)
    )
}

fn results_with_one_session() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::write(results.join(format!("{GUID}.json")), session(GUID, 10)).unwrap();
    (dir, results)
}

#[test]
fn only_requests_addressed_to_a_loopback_host_are_answered() {
    let (_dir, results) = results_with_one_session();
    let viewer = Viewer::start(&results);
    let port = viewer.port;
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        format!("localhost:{port}"),
        "localhost".to_string(),
        "LOCALHOST".to_string(),
        format!("[::1]:{port}"),
        "[::1]".to_string(),
    ] {
        let (status, body) = viewer.get_as(&host, "/api/sessions");
        assert_eq!(status, 200, "Host: {host}");
        assert!(
            String::from_utf8_lossy(&body).contains(GUID),
            "Host: {host}"
        );
    }
    // DNS rebinding: a page at attacker.example whose name now resolves to 127.0.0.1.
    for host in [
        "attacker.example".to_string(),
        format!("attacker.example:{port}"),
        format!("localhost.attacker.example:{port}"),
        format!("127.0.0.1.nip.io:{port}"),
        format!("127.0.0.1:{}", port.wrapping_add(1)),
        "127.0.0.1:notaport".to_string(),
    ] {
        for path in [
            "/".to_string(),
            "/api/sessions".to_string(),
            format!("/api/sessions/{GUID}"),
        ] {
            let (status, body) = viewer.get_as(&host, &path);
            assert!(
                status == 421 || status == 403,
                "Host: {host} GET {path} was answered {status}: {}",
                String::from_utf8_lossy(&body)
            );
            assert!(!String::from_utf8_lossy(&body).contains(GUID));
        }
    }
}

#[test]
fn symlinks_in_the_results_directory_are_never_followed() {
    let (dir, results) = results_with_one_session();
    // Outside the results directory: a session, a manifest and a segment the viewer must
    // not serve through links planted inside it.
    let outside = dir.path().join("outside");
    let other = "0a1b2c3d-0000-4000-8000-00000000beef";
    let linked_dir = "0a1b2c3d-0000-4000-8000-00000000d1d1";
    std::fs::create_dir_all(outside.join("gen")).unwrap();
    std::fs::write(outside.join("secret.json"), session(other, 10)).unwrap();
    std::fs::write(
        outside.join("manifest.json"),
        r#"{"format":1,"segments":[],"metadata":{"secret":"outside"}}"#,
    )
    .unwrap();
    std::fs::write(outside.join("gen/00000.json.gz"), b"outside segment").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.json"), results.join("evil.json")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("secret.json"),
        results.join(format!("{other}.json")),
    )
    .unwrap();
    std::fs::create_dir_all(results.join(GUID)).unwrap();
    std::os::unix::fs::symlink(
        outside.join("manifest.json"),
        results.join(GUID).join("manifest.json"),
    )
    .unwrap();
    std::os::unix::fs::symlink(&outside, results.join(linked_dir)).unwrap();

    let viewer = Viewer::start(&results);
    let (status, list) = viewer.get("/api/sessions");
    assert_eq!(status, 200);
    let list = String::from_utf8_lossy(&list);
    assert!(list.contains(GUID), "{list}");
    assert!(!list.contains(other), "a linked session is listed: {list}");
    assert!(
        !list.contains("outside"),
        "a linked manifest is listed: {list}"
    );
    for path in [
        format!("/api/sessions/{other}"),
        format!("/api/sessions/{GUID}/manifest.json"),
        format!("/api/sessions/{linked_dir}/manifest.json"),
        format!("/api/sessions/{linked_dir}/segments/gen/00000.json.gz"),
    ] {
        let (status, body) = viewer.get(&path);
        assert_eq!(
            status,
            404,
            "GET {path} followed a link: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // The regular file is still served.
    let (status, body) = viewer.get(&format!("/api/sessions/{GUID}"));
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains(GUID));
}

#[test]
fn an_unknown_session_is_looked_up_by_name_without_reading_the_others() {
    // 96 MB of other sessions: a lookup that reads them shows in the process's peak memory.
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("results");
    std::fs::create_dir_all(&results).unwrap();
    for i in 0..4 {
        let guid = format!("0a1b2c3d-0000-4000-8000-00000000000{i}");
        std::fs::write(
            results.join(format!("{guid}.json")),
            session(&guid, 24 << 20),
        )
        .unwrap();
    }
    // Not named by its guid: found by name only, so not found.
    std::fs::write(results.join("renamed.json"), session(GUID, 10)).unwrap();
    let viewer = Viewer::start(&results);
    let before = viewer.peak_rss_kib();
    for guid in ["0a1b2c3d-0000-4000-8000-0000000000ff", "not-a-guid"] {
        let (status, _) = viewer.get(&format!("/api/sessions/{guid}"));
        assert_eq!(status, 404, "{guid}");
    }
    let after = viewer.peak_rss_kib();
    eprintln!("view VmHWM: {before} KiB before, {after} KiB after two unknown lookups");
    assert!(
        after - before < 16 << 10,
        "two unknown lookups raised the peak by {} KiB (from {before} KiB)",
        after - before
    );
    let (status, _) = viewer.get(&format!("/api/sessions/{GUID}"));
    assert_eq!(
        status, 404,
        "a file not named by its guid is not looked for"
    );
    // A session named by its guid is still served.
    let known = "0a1b2c3d-0000-4000-8000-000000000002";
    let (status, body) = viewer.get(&format!("/api/sessions/{known}"));
    assert_eq!(status, 200);
    assert!(body.len() > 24 << 20);
}
