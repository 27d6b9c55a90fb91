//! The workspace's binaries, as built by `cargo build --workspace --bins --tests` (which
//! `make test` runs before the tests), started with a clean, explicit environment. Building the
//! bins together with the tests makes them share one feature set, so the cloud SDKs compile once
//! rather than once for the bins and again for the tests.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Duration;

use crate::procs::{port_open, Group};

/// Path of a workspace binary next to the running test's own profile directory.
pub fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = dir.join(name);
    if !bin.exists() {
        panic!(
            "{} is not built: run `cargo build --workspace --bins --tests` first (make test does)",
            bin.display()
        );
    }
    bin
}

/// A command for a workspace binary with no inherited rrstitch, cloud or AWS configuration.
pub fn command(name: &str, env: &[(String, String)]) -> Command {
    let mut cmd = Command::new(path(name));
    for (k, _) in std::env::vars() {
        if k.starts_with("RRSTITCH_")
            || k.starts_with("AWS_")
            || k.ends_with("_EMULATOR_HOST")
            || k == "PORT"
            || k == "GOOGLE_CLOUD_PROJECT"
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("RUST_LOG", "info");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `cmd` to the end and checks that it succeeded, failing the test with the command
/// and its stderr otherwise; returns its output. Every test that runs a binary as a step
/// (generate, backfill, ingest) goes through here.
pub fn succeeds(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not run: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An HTTP function (`rrstitch-ingest` or `rrstitch-finalize`) listening on a free port.
pub struct HttpFunction {
    pub url: String,
    pub group: Group,
}

impl HttpFunction {
    pub fn start(name: &str, env: &[(String, String)]) -> HttpFunction {
        let port = crate::free_port();
        let mut cmd = command(name, env);
        cmd.env("PORT", port.to_string())
            .env("RRSTITCH_HTTP_HOST", "127.0.0.1");
        let mut group = Group::spawn(name, cmd);
        group.wait_until(Duration::from_secs(30), || port_open(port));
        HttpFunction {
            url: format!("http://127.0.0.1:{port}"),
            group,
        }
    }
}
