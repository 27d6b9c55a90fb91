//! The fault suite: what the platform and the world do to rrstitch, on the real emulators
//! (fake-gcs-server, the Cloud Firestore emulator) through the real binaries.
//!
//! - events delivered 1–3 times each, shuffled, by concurrent senders, interleaved with sweeps;
//! - 4 finalizers sweeping the same sessions at once, as separate processes;
//! - a finalizer killed mid-stitch, after its claim and before its completion;
//! - Firestore and GCS down, and Firestore hanging, under the ingest function;
//! - a chunk deleted between ingest and finalize.
//!
//! Each test prints `FIGURE <name>: <value>` lines; `docs/RELIABILITY.md` quotes them.
//! `RRSTITCH_SOAK=1` (what `make soak` sets) scales the delivery test up tenfold.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::TcpListener;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rrstitch::engine::SessionGuid;
use rrstitch::index::firestore::FirestoreIndex;
use rrstitch::index::{SessionIndex, SessionStatus};
use rrstitch_tests::bins::{self, HttpFunction};
use rrstitch_tests::cloudevents::{binary_event, sweep, try_post, Reply};
use rrstitch_tests::procs::Group;
use rrstitch_tests::{FakeGcs, Firestore, GcpStack};
use serde_json::Value;
use tempfile::TempDir;

fn figure(name: &str, value: impl std::fmt::Display) {
    println!("FIGURE {name}: {value}");
}

/// A small deterministic generator (xorshift64*), so a failing order can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// The GCP stack plus a scratch directory (chunk copies, expected results).
struct Stack {
    gcp: GcpStack,
    dir: TempDir,
}

impl std::ops::Deref for Stack {
    type Target = GcpStack;
    fn deref(&self) -> &GcpStack {
        &self.gcp
    }
}

impl Stack {
    fn start() -> Stack {
        Stack {
            gcp: GcpStack::start(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn index(&self) -> FirestoreIndex {
        FirestoreIndex::on_emulator(
            &self.firestore.host,
            &self.firestore.project,
            "rrstitch_sessions",
        )
    }

    /// Writes sessions with the CLI's generator into `bucket/` and uploads them all.
    fn generate(&self, args: &[&str]) -> Vec<(String, usize)> {
        let bucket = self.dir.path().join("bucket");
        bins::succeeds(
            bins::command("rrstitch", &[])
                .arg("generate")
                .arg("--out")
                .arg(&bucket)
                .args(args),
        );
        self.upload_dir(&bucket)
    }

    fn upload_dir(&self, dir: &Path) -> Vec<(String, usize)> {
        let mut names: Vec<(String, usize)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().to_string_lossy().into_owned(),
                    e.metadata().unwrap().len() as usize,
                )
            })
            .collect();
        names.sort();
        for (name, _) in &names {
            self.gcs
                .upload("chunks", name, &std::fs::read(dir.join(name)).unwrap());
        }
        names
    }

    /// The stitch of every chunk in `bucket/`, by the batch job: what each result must equal.
    fn expected(&self) -> BTreeMap<String, Value> {
        let out = self.dir.path().join("expected");
        bins::succeeds(
            bins::command("rrstitch", &[])
                .arg("backfill")
                .arg("--bucket")
                .arg(self.dir.path().join("bucket"))
                .arg("--output-dir")
                .arg(&out),
        );
        std::fs::read_dir(&out)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let name = e.file_name().to_string_lossy().into_owned();
                let v = serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap();
                (name, v)
            })
            .collect()
    }

    /// Compares every expected session with its result; returns the chunks missing from results.
    fn check_results(&self, expected: &BTreeMap<String, Value>) -> usize {
        let mut lost = 0;
        for (name, want) in expected {
            let got = self
                .gcs
                .download("results", name)
                .unwrap_or_else(|| panic!("no result for {name}"));
            let got: Value = serde_json::from_slice(&got)
                .unwrap_or_else(|e| panic!("{name} is not whole JSON: {e}"));
            let have: HashSet<&Value> = got["metadata"]["timestamp_list"]
                .as_array()
                .unwrap()
                .iter()
                .collect();
            lost += want["metadata"]["timestamp_list"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|t| !have.contains(t))
                .count();
            assert_eq!(
                got["rrweb_data"], want["rrweb_data"],
                "{name}: events differ"
            );
            assert_eq!(
                got["metadata"]["timestamp_list"], want["metadata"]["timestamp_list"],
                "{name}"
            );
            assert_eq!(
                got["metadata"]["environment"],
                want["metadata"]["environment"]
            );
        }
        lost
    }
}

/// Runs `rrstitch <args>` to completion and parses its `--json` output.
fn cli_json(env: &[(String, String)], args: &[&str]) -> Value {
    let out = bins::succeeds(bins::command("rrstitch", env).args(args));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "rrstitch {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Delivers one event per entry of `deliveries` from `senders` threads; every `sweep_every`
/// deliveries the sender sweeps too. Returns every finalize report the sweeps made.
fn deliver(
    ingest: &HttpFunction,
    finalize: &HttpFunction,
    deliveries: Vec<(String, usize)>,
    senders: usize,
    sweep_every: usize,
) -> Vec<(String, u64)> {
    let queue = Mutex::new(deliveries.into_iter().enumerate().collect::<Vec<_>>());
    let reports = Mutex::new(Vec::new());
    let record = |reply: &Reply| {
        assert_eq!(reply.status, 200, "sweep: {}", reply.body);
        let mut reports = reports.lock().unwrap();
        for r in reply.body["finalized"].as_array().unwrap() {
            // The chunk set a stitch covered: the chunks stitched plus those skipped as
            // re-uploads of earlier ones (a late re-upload changes the set, and the result's
            // `duplicate_chunks`, without changing `chunks`).
            let set = r["chunks"].as_u64().unwrap() + r["duplicate_chunks"].as_u64().unwrap();
            reports.push((r["session_guid"].as_str().unwrap().to_owned(), set));
        }
    };
    std::thread::scope(|s| {
        for _ in 0..senders {
            s.spawn(|| loop {
                let Some((i, (name, size))) = queue.lock().unwrap().pop() else {
                    return;
                };
                let reply = binary_event(ingest, "chunks", &name, size);
                assert_eq!(reply.status, 200, "{name}: {}", reply.body);
                let outcome = reply.body["outcome"].as_str().unwrap_or_default();
                assert!(
                    ["recorded", "already_known"].contains(&outcome),
                    "{name}: {}",
                    reply.body
                );
                if i % sweep_every == 0 {
                    record(&sweep(finalize));
                }
            });
        }
    });
    // Sweep until nothing is left.
    loop {
        let reply = sweep(finalize);
        record(&reply);
        if reply.body["considered"] == 0 {
            break;
        }
    }
    reports.into_inner().unwrap()
}

#[test]
fn at_least_once_shuffled_delivery_loses_nothing() {
    let soak = std::env::var("RRSTITCH_SOAK").is_ok_and(|v| v == "1");
    let sessions = if soak { "400" } else { "40" };
    let stack = Stack::start();
    let fixture = rrstitch_tests::repo_root().join("fixtures/rrweb-form/chunks");
    for e in std::fs::read_dir(&fixture).unwrap() {
        let e = e.unwrap();
        std::fs::create_dir_all(stack.dir.path().join("bucket")).unwrap();
        std::fs::copy(
            e.path(),
            stack.dir.path().join("bucket").join(e.file_name()),
        )
        .unwrap();
    }
    let chunks = stack.generate(&[
        "--sessions",
        sessions,
        "--events",
        "250",
        "--events-per-chunk",
        "10",
        "--depth",
        "20",
        "--duplicates",
        "5",
        "--seed",
        "7",
    ]);
    assert!(chunks.len() >= 1_000, "{} chunks", chunks.len());
    let expected = stack.expected();

    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut deliveries = Vec::new();
    for c in &chunks {
        for _ in 0..=rng.below(3) {
            deliveries.push(c.clone());
        }
    }
    rng.shuffle(&mut deliveries);
    let delivered = deliveries.len();

    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let finalize = HttpFunction::start("rrstitch-finalize", &stack.env);
    let started = Instant::now();
    let reports = deliver(&ingest, &finalize, deliveries, 4, 150);
    let elapsed = started.elapsed();

    let lost = stack.check_results(&expected);
    // A session is stitched once per distinct chunk set: chunk sets only grow, so a second
    // stitch of a set of the same size is a redundant one.
    let mut by_session: HashMap<&str, Vec<u64>> = HashMap::new();
    for (guid, n) in &reports {
        by_session.entry(guid).or_default().push(*n);
    }
    let redundant: usize = by_session
        .values()
        .map(|counts| counts.len() - counts.iter().collect::<HashSet<_>>().len())
        .sum();
    let redundant_sessions = by_session
        .values()
        .filter(|counts| counts.len() > counts.iter().collect::<HashSet<_>>().len())
        .count();

    figure("delivery.chunks", chunks.len());
    figure("delivery.sessions", expected.len());
    figure("delivery.events_delivered", delivered);
    figure("delivery.stitches", reports.len());
    figure("delivery.lost_chunks", lost);
    figure("delivery.redundant_stitches", redundant);
    figure("delivery.sessions_stitched_redundantly", redundant_sessions);
    figure("delivery.seconds", format!("{:.1}", elapsed.as_secs_f64()));
    assert_eq!(lost, 0, "chunks lost");
    assert_eq!(
        redundant, 0,
        "sessions stitched without a change: {by_session:?}"
    );
    assert_eq!(
        by_session.len(),
        expected.len(),
        "every session was stitched"
    );
}

#[test]
fn racing_finalizers_write_each_session_once() {
    let stack = Stack::start();
    let chunks = stack.generate(&[
        "--sessions",
        "30",
        "--events",
        "400",
        "--events-per-chunk",
        "20",
        "--seed",
        "11",
    ]);
    let expected = stack.expected();
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    std::thread::scope(|s| {
        for part in chunks.chunks(chunks.len().div_ceil(4)) {
            let ingest = &ingest;
            s.spawn(move || {
                for (name, size) in part {
                    let reply = binary_event(ingest, "chunks", name, *size);
                    assert_eq!(reply.body["outcome"], "recorded", "{}", reply.body);
                }
            });
        }
    });

    // Four sweeps, four processes, the same idle sessions.
    let env = stack.env.clone();
    let outputs: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| s.spawn(|| cli_json(&env, &["sweep", "--idle", "0s", "--json"])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut writers: HashMap<String, usize> = HashMap::new();
    let mut skipped = 0;
    for out in &outputs {
        for r in out["finalized"].as_array().unwrap() {
            assert_eq!(r["completion"], "finalized", "{r}");
            *writers
                .entry(r["session_guid"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        skipped += out["skipped"].as_u64().unwrap();
        assert!(out["failed"].as_array().unwrap().is_empty(), "{out}");
    }
    let twice = writers.values().filter(|&&n| n > 1).count();
    figure("race.sweepers", 4);
    figure("race.sessions", expected.len());
    figure("race.sessions_finalized", writers.len());
    figure("race.sessions_written_twice", twice);
    figure("race.claims_refused", skipped);
    assert_eq!(twice, 0, "{writers:?}");
    assert_eq!(writers.len(), expected.len());
    assert_eq!(stack.check_results(&expected), 0);
}

#[test]
fn a_finalizer_killed_mid_stitch_is_finished_after_its_lease() {
    let stack = Stack::start();
    stack.generate(&[
        "--sessions",
        "1",
        "--events",
        "24000",
        "--events-per-chunk",
        "60",
        "--seed",
        "3",
    ]);
    let expected = stack.expected();
    let (file, _) = expected.iter().next().unwrap();
    let guid = SessionGuid::parse(file.trim_end_matches(".json")).unwrap();
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let names = stack.upload_dir(&stack.dir.path().join("bucket"));
    for (name, size) in &names {
        let reply = binary_event(&ingest, "chunks", name, *size);
        assert_eq!(reply.body["outcome"], "recorded", "{}", reply.body);
    }

    let lease = 4;
    let env = stack.with(&[
        ("RRSTITCH_LEASE_SECS", &lease.to_string()),
        ("RRSTITCH_READ_PARALLELISM", "1"),
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let index = stack.index();
    let status = || {
        rt.block_on(index.session(&guid))
            .unwrap()
            .expect("session indexed")
    };
    let mut finalizer = Group::spawn("rrstitch-finalize-victim", {
        let mut c = bins::command("rrstitch", &env);
        c.args(["finalize", guid.as_str()]);
        c
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while status().status != SessionStatus::Finalizing {
        assert!(
            Instant::now() < deadline,
            "never claimed: {}",
            finalizer.tail()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let claimed_at = Instant::now();
    finalizer.kill();
    let after_crash = status();
    assert_eq!(
        after_crash.status,
        SessionStatus::Finalizing,
        "the finalizer finished before it could be killed; make the session bigger"
    );
    assert!(
        stack.gcs.download("results", file).is_none(),
        "no result may appear from a killed finalizer"
    );

    // While the dead finalizer's lease lasts, sweeps leave the session alone.
    let early = cli_json(&env, &["sweep", "--idle", "0s", "--json"]);
    assert!(early["finalized"].as_array().unwrap().is_empty(), "{early}");

    // After it expires, the next sweep claims and finishes it.
    std::thread::sleep(Duration::from_secs(lease + 1).saturating_sub(claimed_at.elapsed()));
    let late = cli_json(&env, &["sweep", "--idle", "0s", "--json"]);
    assert_eq!(
        late["finalized"][0]["session_guid"],
        guid.as_str(),
        "{late}"
    );
    assert_eq!(status().status, SessionStatus::Finalized);
    assert_eq!(stack.check_results(&expected), 0);
    figure("crash.chunks", names.len());
    figure(
        "crash.recovered_after_seconds",
        format!("{:.1}", claimed_at.elapsed().as_secs_f64()),
    );
}

#[test]
fn failing_dependencies_make_ingest_fail_retryably_and_recover() {
    let stack = Stack::start();
    let fixture = rrstitch_tests::repo_root().join("fixtures/rrweb-form/chunks");
    let names = stack.upload_dir(&fixture);
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let (first, size) = &names[0];

    // Firestore down: 5xx (Eventarc retries), quickly.
    let Stack {
        gcp: GcpStack {
            gcs,
            mut firestore,
            env,
        },
        dir,
    } = stack;
    let port = firestore.port;
    firestore.group.stop();
    let started = Instant::now();
    let down = binary_event(&ingest, "chunks", first, *size);
    let firestore_down = started.elapsed();
    assert!((500..600).contains(&down.status), "{down:?}");

    // Back on the same address: the retried event is recorded.
    let firestore = Firestore::start_on(port);
    let back = binary_event(&ingest, "chunks", first, *size);
    assert_eq!(back.body["outcome"], "recorded", "{back:?}");

    // GCS down: 5xx too, nothing recorded.
    let (second, size2) = &names[1];
    let mut gcs = gcs;
    gcs.group.stop();
    let started = Instant::now();
    let down = binary_event(&ingest, "chunks", second, *size2);
    let gcs_down = started.elapsed();
    assert!((500..600).contains(&down.status), "{down:?}");

    // Firestore hanging (accepts connections, never answers): 5xx within a bounded time.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_host = hang.local_addr().unwrap().to_string();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in hang.incoming().take(8) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    let hung_gcs = FakeGcs::start();
    hung_gcs.create_bucket("chunks");
    // Functions refuse to start on a missing bucket.
    hung_gcs.create_bucket("results");
    hung_gcs.upload(
        "chunks",
        first,
        &std::fs::read(fixture.join(first)).unwrap(),
    );
    let mut hung_env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "FIRESTORE_EMULATOR_HOST" && k != "STORAGE_EMULATOR_HOST")
        .cloned()
        .collect();
    hung_env.push(("FIRESTORE_EMULATOR_HOST".into(), hang_host));
    hung_env.extend(hung_gcs.env());
    let hung_ingest = HttpFunction::start("rrstitch-ingest", &hung_env);
    let started = Instant::now();
    let hung = try_post(
        &format!("{}/", hung_ingest.url),
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "hang-1"),
            (
                "ce-source",
                "//storage.googleapis.com/projects/_/buckets/chunks",
            ),
            ("ce-type", rrstitch_tests::cloudevents::FINALIZED),
            ("content-type", "application/json"),
        ],
        &rrstitch_tests::cloudevents::object_data("chunks", first, *size).to_string(),
    )
    .expect("the function answers");
    let firestore_hung = started.elapsed();
    assert!((500..600).contains(&hung.status), "{hung:?}");
    assert!(
        firestore_hung < Duration::from_secs(90),
        "{firestore_hung:?}"
    );

    figure("deps.firestore_down_answer_ms", firestore_down.as_millis());
    figure("deps.gcs_down_answer_ms", gcs_down.as_millis());
    figure(
        "deps.firestore_hung_answer_s",
        format!("{:.1}", firestore_hung.as_secs_f64()),
    );
    drop((firestore, dir, held));
}

#[test]
fn a_chunk_deleted_before_finalize_is_reported_and_the_rest_stitched() {
    let stack = Stack::start();
    let fixture = rrstitch_tests::repo_root().join("fixtures/rrweb-form/chunks");
    let names = stack.upload_dir(&fixture);
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let finalize = HttpFunction::start("rrstitch-finalize", &stack.env);
    for (name, size) in &names {
        assert_eq!(binary_event(&ingest, "chunks", name, *size).status, 200);
    }
    let (gone, _) = &names[2];
    stack.gcs.delete("chunks", gone);
    let swept = sweep(&finalize);
    let report = &swept.body["finalized"][0];
    assert_eq!(report["missing_chunks"][0], gone.as_str(), "{}", swept.body);
    let guid = report["session_guid"].as_str().unwrap();
    let result: Value = serde_json::from_slice(
        &stack
            .gcs
            .download("results", &format!("{guid}.json"))
            .unwrap(),
    )
    .unwrap();
    let warnings = result["metadata"]["warnings"].to_string();
    assert!(warnings.contains(gone.as_str()), "{warnings}");
    assert_eq!(
        result["metadata"]["timestamp_list"]
            .as_array()
            .unwrap()
            .len(),
        names.len() - 1
    );
    let gone_events: usize =
        serde_json::from_slice::<Value>(&std::fs::read(fixture.join(gone)).unwrap()).unwrap()
            ["session_data"]
            .as_array()
            .unwrap()
            .len();
    let full: Value = serde_json::from_slice(
        &std::fs::read(rrstitch_tests::repo_root().join("fixtures/rrweb-form/full.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        result["rrweb_data"].as_array().unwrap().len(),
        full.as_array().unwrap().len() - gone_events
    );
    figure("vanished.missing_reported", 1);
}

/// Which of the two finalizers of [`superseded_finalizer`] finishes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    /// The newer claim writes and completes while the superseded one is paused.
    Newer,
    /// The superseded finalizer resumes and writes first, while the newer one is paused.
    Superseded,
}

/// A finalizer (A) claims a session and stitches slowly (every storage request of its goes
/// through a proxy adding latency), then pauses past its lease, as a frozen instance does. A
/// chunk lands, and a sweep (B) takes the session over. Whichever finishes first, once both
/// are done the result must hold every chunk and the session be finalized.
fn superseded_finalizer(first: First) {
    let stack = Stack::start();
    let bucket = stack.dir.path().join("bucket");
    bins::command("rrstitch", &[])
        .args(["generate", "--sessions", "1", "--events", "1800"])
        .args(["--events-per-chunk", "60", "--seed", "21", "--out"])
        .arg(&bucket)
        .status()
        .unwrap();
    let expected = stack.expected();
    let (file, _) = expected.iter().next().unwrap();
    let guid = SessionGuid::parse(file.trim_end_matches(".json")).unwrap();
    // Hold the last chunk back: it lands while A is paused.
    let late_dir = stack.dir.path().join("late");
    std::fs::create_dir_all(&late_dir).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&bucket)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let late = names.pop().unwrap();
    std::fs::rename(bucket.join(&late), late_dir.join(&late)).unwrap();
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    for (name, size) in stack.upload_dir(&bucket) {
        assert_eq!(
            binary_event(&ingest, "chunks", &name, size).body["outcome"],
            "recorded"
        );
    }
    std::fs::rename(late_dir.join(&late), bucket.join(&late)).unwrap();

    let rt = tokio::runtime::Runtime::new().unwrap();
    let gcs_addr = format!("127.0.0.1:{}", stack.gcs.port).parse().unwrap();
    let slow = rt.block_on(rrstitch_tests::latency::start(
        gcs_addr,
        Duration::from_millis(60),
    ));
    let lease = "2";
    let slow_env = stack.with(&[
        ("STORAGE_EMULATOR_HOST", &format!("http://{slow}")),
        ("RRSTITCH_LEASE_SECS", lease),
        ("RRSTITCH_READ_PARALLELISM", "1"),
    ]);
    let index = stack.index();
    let session = || {
        rt.block_on(index.session(&guid))
            .unwrap()
            .expect("session indexed")
    };
    let lease_expired = || {
        let s = session();
        s.status == SessionStatus::Finalizing
            && s.lease_until
                .is_some_and(|u| u < rrstitch::time::Millis::now())
    };
    let chunks_in_result = || -> usize {
        let got: Value =
            serde_json::from_slice(&stack.gcs.download("results", file).expect("a result"))
                .unwrap();
        got["metadata"]["timestamp_list"].as_array().unwrap().len()
    };

    // A claims, then freezes mid-stitch.
    let mut a = Group::spawn("rrstitch-finalize-superseded", {
        let mut c = bins::command("rrstitch", &slow_env);
        c.args(["finalize", guid.as_str(), "--json"]);
        c
    });
    a.wait_until(Duration::from_secs(60), || {
        session().status == SessionStatus::Finalizing
    });
    // Past its fence (it renews its lease before it reads a chunk), so that resumed it
    // would write, not merely notice it lost.
    let claimed = session().lease_until;
    a.wait_until(Duration::from_secs(30), || session().lease_until != claimed);
    a.pause();
    assert!(
        stack.gcs.download("results", file).is_none(),
        "A wrote before it could be paused; make the session bigger"
    );
    // A chunk lands; A's lease runs out.
    stack
        .gcs
        .upload("chunks", &late, &std::fs::read(bucket.join(&late)).unwrap());
    let reply = binary_event(
        &ingest,
        "chunks",
        &late,
        std::fs::metadata(bucket.join(&late)).unwrap().len() as usize,
    );
    assert_eq!(reply.body["outcome"], "recorded", "{}", reply.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lease_expired() {
        assert!(Instant::now() < deadline, "A's lease never ran out");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut b = match first {
        First::Newer => {
            // B takes over and finishes while A is frozen.
            let swept = cli_json(
                &stack.with(&[("RRSTITCH_LEASE_SECS", lease)]),
                &["sweep", "--idle", "0s", "--json"],
            );
            assert_eq!(
                swept["finalized"][0]["session_guid"],
                guid.as_str(),
                "{swept}"
            );
            assert_eq!(
                chunks_in_result(),
                names.len() + 1,
                "B stitched every chunk"
            );
            None
        }
        First::Superseded => {
            // B takes over, slowly, and freezes too; A resumes and writes first.
            let mut b = Group::spawn("rrstitch-sweep-newer", {
                let mut c = bins::command("rrstitch", &slow_env);
                c.args(["sweep", "--idle", "0s", "--json"]);
                c
            });
            b.wait_until(Duration::from_secs(60), || !lease_expired());
            b.pause();
            Some(b)
        }
    };
    a.resume();
    let a_status = a.wait();
    assert!(
        !a_status.success(),
        "the superseded finalizer must not report success: {}",
        a.tail()
    );
    let a_log = std::fs::read_to_string(&a.log).unwrap();
    assert!(a_log.contains("took the session over"), "{a_log}");
    if let Some(b) = b.as_mut() {
        assert_eq!(
            chunks_in_result(),
            names.len(),
            "A (superseded) finished first and wrote its older stitch"
        );
        b.resume();
        assert!(b.wait().success(), "{}", b.tail());
    }
    // Settled: every chunk is in the result, and the index agrees.
    assert_eq!(chunks_in_result(), names.len() + 1, "a stale stitch won");
    assert_eq!(stack.check_results(&expected), 0);
    let settled = session();
    assert_eq!(settled.status, SessionStatus::Finalized);
    assert_eq!(settled.chunk_count as usize, names.len() + 1);
    figure(
        &format!("fence.{first:?}_first.chunks_in_result"),
        chunks_in_result(),
    );
}

#[test]
fn a_superseded_finalizer_cannot_replace_a_newer_result() {
    superseded_finalizer(First::Newer);
}

#[test]
fn a_superseded_finalizer_that_writes_first_is_overwritten() {
    superseded_finalizer(First::Superseded);
}

/// One session's chunks all at once: 300 chunks of one session, 32 requests in flight, as a
/// busy SDK behind a fast network delivers them. Every record touches the one session
/// document, so this is the index's worst case for contention.
#[test]
fn a_hot_session_is_ingested_with_few_retries_and_no_loss() {
    let stack = Stack::start();
    let chunks = stack.generate(&[
        "--sessions",
        "1",
        "--events",
        "3000",
        "--events-per-chunk",
        "10",
        "--seed",
        "5",
    ]);
    assert!(chunks.len() >= 280, "{} chunks", chunks.len());
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let queue = Mutex::new(chunks.clone());
    let answers = Mutex::new(Vec::new());
    let started = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..32 {
            s.spawn(|| loop {
                let Some((name, size)) = queue.lock().unwrap().pop() else {
                    return;
                };
                let reply = binary_event(&ingest, "chunks", &name, size);
                answers.lock().unwrap().push((name, size, reply.status));
            });
        }
    });
    let elapsed = started.elapsed();
    let answers = answers.into_inner().unwrap();
    let failed: Vec<_> = answers.iter().filter(|(_, _, s)| *s >= 500).collect();
    // What failed is retried, as the platform would: nothing may be lost.
    for (name, size, _) in &failed {
        let reply = binary_event(&ingest, "chunks", name, *size);
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let index = stack.index();
    let sessions = rt.block_on(index.sessions(10)).unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].chunk_count as usize,
        chunks.len(),
        "every chunk recorded once"
    );
    let rate = failed.len() as f64 / answers.len() as f64;
    figure("hot_session.requests", answers.len());
    figure("hot_session.concurrency", 32);
    figure("hot_session.5xx", failed.len());
    figure("hot_session.5xx_percent", format!("{:.1}", rate * 100.0));
    figure(
        "hot_session.seconds",
        format!("{:.1}", elapsed.as_secs_f64()),
    );
    assert!(
        rate <= 0.02,
        "{} of {} answered 5xx",
        failed.len(),
        answers.len()
    );
}

/// A sweep against an index that accepts connections and never answers returns within its
/// budget, with a 5xx, instead of after every RPC's deadline and retries.
#[test]
fn a_sweep_against_a_hanging_index_answers_within_its_budget() {
    let stack = Stack::start();
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_host = hang.local_addr().unwrap().to_string();
    let _held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in hang.incoming().take(16) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(120));
    });
    let env = stack.with(&[
        ("FIRESTORE_EMULATOR_HOST", &hang_host),
        ("RRSTITCH_SWEEP_BUDGET_SECS", "4"),
    ]);
    let finalize = HttpFunction::start("rrstitch-finalize", &env);
    let started = Instant::now();
    let reply = sweep(&finalize);
    let took = started.elapsed();
    figure("hanging_index.sweep_budget_s", 4);
    figure(
        "hanging_index.sweep_answer_s",
        format!("{:.1}", took.as_secs_f64()),
    );
    assert!((500..600).contains(&reply.status), "{reply:?}");
    assert!(
        took < Duration::from_secs(6),
        "a 4 s budget, answered after {took:?}"
    );
}
