//! The Cloud Run images as `make image` builds them (`scripts/build-images.sh`: buildah, no
//! Docker engine), loaded with podman and held to Cloud Run's container contract: it listens
//! on `$PORT`, answers `/healthz`, handles a real storage CloudEvent against the emulators end
//! to end (ingest records the chunks, finalize's `/sweep` writes the stitched session), runs
//! as a non-root user, and exits 0 within 10 s of SIGTERM. Also: each archive is at most
//! 25 MB compressed, the binary carries no debug info, and the root filesystem has the CA
//! bundle (the GCS client verifies TLS against the system roots), a passwd entry for the user
//! and a world-writable /tmp. A negative control shows the run check fails for an image whose
//! shared libraries are missing.
//!
//! The archives must exist: `make test` runs `scripts/build-images.sh` before `cargo test`
//! (or `RRSTITCH_IMAGES_DIR` names another directory). podman (from `scripts/install-image-tools.sh`)
//! runs with a store of its own in a temp dir — vfs, runc, cgroupfs, host network — so it
//! touches no other container storage, and every container the test starts, and only those,
//! is removed when the test ends, panicking or not.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rrstitch_tests::cloudevents::{object_data, post, Reply, FINALIZED};
use rrstitch_tests::fixture::{self, GUID};
use rrstitch_tests::procs::port_open;
use rrstitch_tests::{free_port, repo_root, GcpStack};

const BINS: [&str; 2] = ["rrstitch-ingest", "rrstitch-finalize"];
const MAX_COMPRESSED_MB: f64 = 25.0;
/// Cloud Run's grace between SIGTERM and SIGKILL.
const SIGTERM_GRACE: Duration = Duration::from_secs(10);

fn images_dir() -> PathBuf {
    std::env::var_os("RRSTITCH_IMAGES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/images"))
}

fn archive(bin: &str) -> PathBuf {
    let path = images_dir().join(format!("{bin}.tar"));
    if !path.is_file() {
        panic!(
            "{} is missing: build the images first with `bash scripts/build-images.sh` \
             (`make image`; `make test` does it before the tests)",
            path.display()
        );
    }
    // The archive is what is tested; say so when it predates the binary it should hold.
    let binary = repo_root().join("target/release").join(bin);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if let (Some(a), Some(b)) = (modified(&path), modified(&binary)) {
        if a < b {
            eprintln!(
                "warning: {} is older than {}: run `bash scripts/build-images.sh` to test the current code",
                path.display(),
                binary.display()
            );
        }
    }
    path
}

/// podman with a store of its own, and the containers and image mounts it made, so that
/// dropping it (also while panicking) removes exactly those.
struct Podman {
    dir: tempfile::TempDir,
    containers: Mutex<Vec<String>>,
    mounts: Mutex<Vec<String>>,
}

impl Podman {
    fn new() -> Podman {
        if Command::new("podman")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            panic!("podman is not installed: run `bash scripts/install-image-tools.sh`");
        }
        // Short: the run root holds unix sockets, whose paths may not pass 107 bytes.
        let dir = tempfile::Builder::new()
            .prefix("rrstitch-podman-")
            .tempdir_in(std::env::temp_dir())
            .expect("a temp dir for podman's store");
        Podman {
            dir,
            containers: Mutex::new(Vec::new()),
            mounts: Mutex::new(Vec::new()),
        }
    }

    fn command(&self) -> Command {
        let d = self.dir.path();
        let mut cmd = Command::new("podman");
        cmd.arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("run"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args([
                "--storage-driver",
                "vfs",
                "--cgroup-manager",
                "cgroupfs",
                // crun fails on these machines' hybrid cgroups.
                "--runtime",
                "runc",
                "--events-backend",
                "none",
            ])
            .stdin(Stdio::null());
        cmd
    }

    /// `podman ARGS`: its stdout, or its stderr as the error.
    fn try_run(&self, args: &[&str]) -> Result<String, String> {
        let out = self
            .command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running podman {args:?}: {e}"));
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(format!(
                "podman {} failed ({}): {}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn run(&self, args: &[&str]) -> String {
        self.try_run(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Loads a docker-archive; returns the image's id.
    fn load(&self, archive: &Path) -> String {
        let out = self.run(&["load", "--quiet", "--input", &archive.to_string_lossy()]);
        let name = out
            .lines()
            .filter_map(|l| l.split_once(':').map(|(_, n)| n.trim()))
            .find(|n| !n.is_empty())
            .unwrap_or_else(|| panic!("podman load {}: no image in {out:?}", archive.display()))
            .to_owned();
        self.run(&["image", "inspect", "--format", "{{.Id}}", &name])
    }

    /// The image's root filesystem, read-only, until the Podman is dropped.
    fn mount_image(&self, image: &str) -> PathBuf {
        let path = self.run(&["image", "mount", image]);
        self.mounts.lock().unwrap().push(image.to_owned());
        PathBuf::from(path)
    }

    /// Starts `image` as Cloud Run would (PORT and the environment, no arguments) with the
    /// flags these machines need, and waits until it listens on PORT. Err (with its logs) if it
    /// exits first or does not listen within 30 s.
    fn start(
        &self,
        image: &str,
        role: &str,
        env: &[(String, String)],
        extra: &[&str],
    ) -> Result<Container, String> {
        let name = format!(
            "rrstitch-images-test-{}-{role}-{}",
            std::process::id(),
            free_port()
        );
        let port = free_port();
        // Recorded before it exists, so that a half-started container is removed too.
        self.containers.lock().unwrap().push(name.clone());
        let mut args: Vec<String> = [
            "run",
            "--detach",
            "--name",
            &name,
            "--network",
            "host",
            "--ulimit",
            "nofile=4096:4096",
            "--ulimit",
            "nproc=4096:4096",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args.extend(["--env".into(), format!("PORT={port}")]);
        // Host network: bind loopback only, not every interface of the machine.
        args.extend(["--env".into(), "RRSTITCH_HTTP_HOST=127.0.0.1".into()]);
        args.extend(["--env".into(), "RUST_LOG=info".into()]);
        for (k, v) in env {
            args.extend(["--env".into(), format!("{k}={v}")]);
        }
        args.push(image.to_owned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.try_run(&args)?;
        let container = Container {
            name,
            port,
            url: format!("http://127.0.0.1:{port}"),
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            if port_open(port) {
                return Ok(container);
            }
            let (status, code) = self.state(&container);
            if status == "exited" || status == "stopped" {
                return Err(format!(
                    "{role} exited (code {code}) before listening on $PORT; logs:\n{}",
                    self.logs(&container)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "{role} does not listen on $PORT ({port}) after 30 s; logs:\n{}",
            self.logs(&container)
        ))
    }

    /// (status, exit code) of a container.
    fn state(&self, c: &Container) -> (String, i64) {
        let out = self.run(&[
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.State.Status}} {{.State.ExitCode}}",
            &c.name,
        ]);
        let (status, code) = out.split_once(' ').unwrap_or((&out, "-1"));
        (status.to_owned(), code.parse().unwrap_or(-1))
    }

    /// The container's last 30 lines of output (podman logs replays its stdout on stdout and
    /// its stderr on stderr).
    fn logs(&self, c: &Container) -> String {
        let out = match self.command().args(["logs", &c.name]).output() {
            Ok(out) => out,
            Err(e) => return format!("podman logs {}: {e}", c.name),
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// The uid and gid lines of the container's process, as the host kernel sees them.
    fn process_ids(&self, c: &Container) -> (Vec<u32>, Vec<u32>) {
        let pid = self.run(&[
            "inspect",
            "--type",
            "container",
            "--format",
            "{{.State.Pid}}",
            &c.name,
        ]);
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("/proc/{pid}/status of {}: {e}", c.name));
        let ids = |key: &str| -> Vec<u32> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
                .split_whitespace()
                .map(|n| n.parse().expect("a numeric id"))
                .collect()
        };
        (ids("Uid:"), ids("Gid:"))
    }

    /// SIGTERM, as Cloud Run sends it, with an idle keep-alive client connected; returns how
    /// long the container took to exit and its exit code (None: still running after 15 s).
    fn sigterm(&self, c: &Container) -> (Duration, Option<i64>) {
        let idle = std::net::TcpStream::connect(("127.0.0.1", c.port)).expect("an idle client");
        let start = Instant::now();
        self.run(&["kill", "--signal", "TERM", &c.name]);
        let mut exit = None;
        while start.elapsed() < SIGTERM_GRACE + Duration::from_secs(5) {
            let (status, code) = self.state(c);
            if status == "exited" || status == "stopped" {
                exit = Some(code);
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(idle);
        (start.elapsed(), exit)
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        for name in self.containers.lock().unwrap().drain(..) {
            let _ = self.try_run(&["rm", "--force", "--time", "0", &name]);
        }
        for image in self.mounts.lock().unwrap().drain(..) {
            let _ = self.try_run(&["image", "unmount", "--force", &image]);
        }
    }
}

struct Container {
    name: String,
    port: u16,
    url: String,
}

/// `gzip -c archive | wc -c`: about what a registry stores for the image's one layer.
fn gzipped_size(path: &Path) -> u64 {
    let mut child = Command::new("gzip")
        .arg("-c")
        .arg(path)
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let n =
        std::io::copy(child.stdout.as_mut().unwrap(), &mut std::io::sink()).expect("gzip output");
    assert!(
        child.wait().unwrap().success(),
        "gzip -c {}",
        path.display()
    );
    n
}

#[test]
fn archives_are_at_most_25_mb_compressed() {
    for bin in BINS {
        let path = archive(bin);
        let mb = gzipped_size(&path) as f64 / 1_000_000.0;
        let raw = std::fs::metadata(&path).unwrap().len() as f64 / 1_000_000.0;
        println!("FIGURE image.{bin}.compressed_mb {mb:.1}");
        println!("FIGURE image.{bin}.uncompressed_mb {raw:.1}");
        assert!(
            mb <= MAX_COMPRESSED_MB,
            "{}: {mb:.1} MB compressed, over {MAX_COMPRESSED_MB} MB",
            path.display()
        );
    }
}

/// The image's own configuration: a non-root user, the binary as the entrypoint.
fn check_config(podman: &Podman, image: &str, bin: &str) -> u32 {
    let user = podman.run(&["image", "inspect", "--format", "{{.Config.User}}", image]);
    let uid = user.split(':').next().unwrap_or("");
    let uid: u32 = uid
        .parse()
        .unwrap_or_else(|_| panic!("{bin}: the image's User is {user:?}, not a numeric uid (Cloud Run and runAsNonRoot want one)"));
    assert_ne!(uid, 0, "{bin}: the image runs as root (User {user:?})");
    let entrypoint = podman.run(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Entrypoint}}",
        image,
    ]);
    assert_eq!(
        entrypoint, r#"["/usr/local/bin/rrstitch-function"]"#,
        "{bin}"
    );
    let arch = podman.run(&[
        "image",
        "inspect",
        "--format",
        "{{.Os}}/{{.Architecture}}",
        image,
    ]);
    assert_eq!(
        arch, "linux/amd64",
        "{bin}: Cloud Run runs linux/amd64 images"
    );
    // Settings come from the service's environment (infra/gcp), PORT from Cloud Run: an image
    // default would silently win wherever the service forgot one.
    let env = podman.run(&[
        "image",
        "inspect",
        "--format",
        "{{json .Config.Env}}",
        image,
    ]);
    assert!(
        !env.contains("RRSTITCH_") && !env.contains("\"PORT="),
        "{bin}: the image sets {env}"
    );
    uid
}

/// What the root filesystem must hold besides what the run check exercises: returns the
/// problems found.
fn rootfs_problems(root: &Path, uid: u32) -> Vec<String> {
    let mut problems = Vec::new();
    let exe = root.join("usr/local/bin/rrstitch-function");
    match Command::new("readelf")
        .arg("-S")
        .arg("--wide")
        .arg(&exe)
        .output()
    {
        Ok(out) if out.status.success() => {
            let sections = String::from_utf8_lossy(&out.stdout);
            for s in [".debug_info", ".debug_line", ".debug_str", ".debug_abbrev"] {
                if sections.contains(s) {
                    problems.push(format!("the binary carries debug info ({s})"));
                }
            }
        }
        other => problems.push(format!("readelf -S {}: {other:?}", exe.display())),
    }
    // The GCS client (reqwest, rustls-platform-verifier) verifies TLS against the system's
    // roots: without the bundle, nothing on storage.googleapis.com can be trusted.
    let ca =
        std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt")).unwrap_or_default();
    let certs = ca.matches("-----BEGIN CERTIFICATE-----").count();
    if certs < 100 {
        problems.push(format!(
            "/etc/ssl/certs/ca-certificates.crt holds {certs} certificates"
        ));
    }
    let passwd = std::fs::read_to_string(root.join("etc/passwd")).unwrap_or_default();
    if !passwd
        .lines()
        .any(|l| l.split(':').nth(2) == Some(uid.to_string().as_str()))
    {
        problems.push(format!("no /etc/passwd entry for uid {uid}"));
    }
    if !std::fs::read_to_string(root.join("etc/group"))
        .unwrap_or_default()
        .contains(':')
    {
        problems.push("no /etc/group".into());
    }
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(root.join("tmp")) {
            Ok(m) if m.is_dir() && m.permissions().mode() & 0o7777 == 0o1777 => {}
            other => problems.push(format!("/tmp is not a 1777 directory: {other:?}")),
        }
    }
    problems
}

fn check_running_as_non_root(podman: &Podman, c: &Container, bin: &str) {
    let (uids, gids) = podman.process_ids(c);
    assert!(
        uids.iter().all(|&u| u != 0),
        "{bin}: the process runs with uids {uids:?}"
    );
    assert!(
        gids.iter().all(|&g| g != 0),
        "{bin}: the process runs with gids {gids:?}"
    );
}

fn check_healthz(c: &Container, bin: &str) {
    let r = ureq::get(&format!("{}/healthz", c.url))
        .timeout(Duration::from_secs(10))
        .call()
        .unwrap_or_else(|e| panic!("{bin}: GET /healthz: {e}"));
    assert_eq!(r.status(), 200, "{bin}: /healthz");
    assert_eq!(
        r.into_string().unwrap().trim(),
        "ok",
        "{bin}: /healthz body"
    );
}

fn check_sigterm(podman: &Podman, c: &Container, bin: &str) {
    let (took, exit) = podman.sigterm(c);
    println!(
        "FIGURE image.{bin}.sigterm_exit_secs {:.2}",
        took.as_secs_f64()
    );
    let code = exit.unwrap_or_else(|| {
        panic!(
            "{bin}: still running {took:?} after SIGTERM; logs:\n{}",
            podman.logs(c)
        )
    });
    assert!(
        took <= SIGTERM_GRACE,
        "{bin}: exited {took:?} after SIGTERM, past Cloud Run's {SIGTERM_GRACE:?}"
    );
    assert_eq!(
        code,
        0,
        "{bin}: exit code {code} after SIGTERM; logs:\n{}",
        podman.logs(c)
    );
}

/// A binary-mode storage CloudEvent, as Eventarc delivers it, POSTed to the container.
fn cloudevent(c: &Container, bucket: &str, name: &str, size: usize) -> Reply {
    post(
        &format!("{}/", c.url),
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", &format!("evt-{name}")),
            (
                "ce-source",
                &format!("//storage.googleapis.com/projects/_/buckets/{bucket}"),
            ),
            ("ce-type", FINALIZED),
            ("ce-subject", &format!("objects/{name}")),
            ("ce-time", "2025-05-02T12:10:50.700Z"),
            ("content-type", "application/json"),
        ],
        &object_data(bucket, name, size).to_string(),
    )
}

#[test]
fn images_keep_cloud_runs_container_contract() {
    let archives = BINS.map(archive);
    let stack = GcpStack::start();
    let podman = Podman::new();
    let started = Instant::now();
    let images = archives.each_ref().map(|a| podman.load(a));
    println!(
        "FIGURE image.load_secs {:.1}",
        started.elapsed().as_secs_f64()
    );

    for (bin, image) in BINS.iter().zip(&images) {
        let uid = check_config(&podman, image, bin);
        let root = podman.mount_image(image);
        let problems = rootfs_problems(&root, uid);
        assert!(problems.is_empty(), "{bin}: {problems:?}");
    }

    // Ingest: every fixture chunk, uploaded, then announced by a CloudEvent.
    let ingest = podman
        .start(&images[0], "ingest", &stack.env, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    check_healthz(&ingest, "rrstitch-ingest");
    check_running_as_non_root(&podman, &ingest, "rrstitch-ingest");
    for name in &fixture::chunk_names() {
        let body = fixture::chunk(name);
        stack.gcs.upload("chunks", name, &body);
        let reply = cloudevent(&ingest, "chunks", name, body.len());
        assert_eq!(
            (reply.status, reply.body["outcome"].as_str()),
            (200, Some("recorded")),
            "{name}: {}; logs:\n{}",
            reply.body,
            podman.logs(&ingest)
        );
    }

    // Finalize: Cloud Scheduler's sweep stitches the session into the results bucket.
    let finalize = podman
        .start(&images[1], "finalize", &stack.env, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    check_healthz(&finalize, "rrstitch-finalize");
    check_running_as_non_root(&podman, &finalize, "rrstitch-finalize");
    let swept = post(&format!("{}/sweep", finalize.url), &[], "");
    assert_eq!(
        swept.status,
        200,
        "{}; logs:\n{}",
        swept.body,
        podman.logs(&finalize)
    );
    assert_eq!(
        swept.body["finalized"][0]["session_guid"], GUID,
        "{}",
        swept.body
    );
    let result = stack.result(GUID);
    assert_eq!(result["session_guid"], GUID);
    assert_eq!(result["rrweb_data"], fixture::full_events());

    check_sigterm(&podman, &ingest, "rrstitch-ingest");
    check_sigterm(&podman, &finalize, "rrstitch-finalize");
}

/// The run check is not vacuous: the same image with its shared libraries hidden (an empty
/// tmpfs over /lib/x86_64-linux-gnu, as if the build had not copied what ldd lists; podman
/// copies the directory's content into a tmpfs unless told `notmpcopyup`) never listens, and
/// says why.
#[test]
fn an_image_without_its_shared_libraries_fails_the_run_check() {
    let archive = archive("rrstitch-ingest");
    let podman = Podman::new();
    let image = podman.load(&archive);
    let env = [("RRSTITCH_CHUNKS".to_owned(), "gs://chunks".to_owned())];
    let err = match podman.start(
        &image,
        "ingest-without-libs",
        &env,
        &[
            "--mount",
            "type=tmpfs,destination=/lib/x86_64-linux-gnu,notmpcopyup",
        ],
    ) {
        Ok(c) => panic!("{} listened without its libraries", c.name),
        Err(e) => e,
    };
    assert!(
        err.contains("error while loading shared libraries"),
        "unexpected failure: {err}"
    );
}
