//! Every binary (the HTTP functions and the CLI) refuses, at start-up and naming the variable,
//! each setting that would make it do something else than asked (no redaction, a throwaway
//! index, a budget spent before it starts, a wrapped "forever"): it exits non-zero before
//! serving or opening anything. No emulator: the settings are read before any backend.

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rrstitch_tests::bins;

/// Runs `bin` with `env` until it exits (or 10 s, after which it is taken to have started):
/// its exit success, if it exited, and its stderr.
fn run(bin: &str, args: &[&str], env: &[(String, String)]) -> (Option<bool>, String) {
    let mut child = bins::command(bin, env)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status.success());
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

#[test]
fn every_binary_refuses_bad_settings_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let base = |var: &str, value: &str| -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            (
                "RRSTITCH_CHUNKS",
                dir.path().join("chunks").display().to_string(),
            ),
            (
                "RRSTITCH_RESULTS",
                dir.path().join("results").display().to_string(),
            ),
            (
                "RRSTITCH_INDEX",
                format!("sqlite:{}", dir.path().join("index.sqlite").display()),
            ),
            ("RRSTITCH_HTTP_HOST", "127.0.0.1".to_string()),
            ("PORT", "0".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.retain(|(k, _)| k != var);
        env.push((var.to_string(), value.to_string()));
        env
    };
    let mut wrong = Vec::new();
    let bins: [(&str, &[&str]); 3] = [
        ("rrstitch-ingest", &[]),
        ("rrstitch-finalize", &[]),
        ("rrstitch", &["sessions"]),
    ];
    for (bin, args) in bins {
        for (var, value) in [
            ("RRSTITCH_REDACT", ""),
            ("RRSTITCH_RESTRICT", ""),
            ("RRSTITCH_RESTRICT", r#"{"sample": {"production": 2}}"#),
            ("RRSTITCH_INDEX", "sqlite:"),
            ("RRSTITCH_SWEEP_BUDGET_SECS", "0"),
            ("PORT", "70000"),
            ("RRSTITCH_HTTP_HOST", "not-a-host"),
            ("RRSTITCH_TOMBSTONE_TTL_DAYS", "999999999999"),
            ("RRSTITCH_LEASE_SECS", "999999999999999"),
            ("RRSTITCH_IDLE_SECS", "999999999999999"),
            ("RRSTITCH_SWEEP_BUDGET_SECS", "999999999999999"),
        ] {
            let (exited, stderr) = run(bin, args, &base(var, value));
            match exited {
                None => wrong.push(format!("{bin} {var}={value:?}: started")),
                Some(true) => wrong.push(format!("{bin} {var}={value:?}: exited 0")),
                Some(false) if !stderr.contains(var) => wrong.push(format!(
                    "{bin} {var}={value:?}: the error does not name it: {}",
                    stderr.trim()
                )),
                Some(false) => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(
        !dir.path().join("index.sqlite").exists(),
        "an index was opened before the settings were checked"
    );
}
