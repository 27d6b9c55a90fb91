//! Bulk work: reconcile over a large chunk bucket, windowed against unwindowed, and a
//! re-stitch of many sessions through the finalize queue (issue #24, item 5).
//!
//! 1. local: a directory of `RRSTITCH_BENCH_LOCAL_OBJECTS` (default 200,000) small chunk
//!    objects spread over 60 days, of which the last day's (1/60th) the index has never seen.
//!    The rest is indexed first by one unwindowed `rrstitch reconcile` (setup, its time is
//!    printed); then, from copies of that index, the release `rrstitch` runs
//!    `reconcile --since 1d --json` and `reconcile --json` under GNU time: objects listed,
//!    wall time and peak RSS of each, and the windowed/unwindowed ratios. Both passes recover
//!    the same new day.
//! 2. the same on fake-gcs-server with `RRSTITCH_BENCH_GCS_OBJECTS` (default 20,000) objects
//!    (the index is SQLite; the bucket is what differs), on its filesystem backend, the one
//!    that loads that many objects in reasonable time (each listing page there reads every
//!    object's metadata: the emulator's cost, the same for both passes).
//! 3. re-stitch through the queue: `RRSTITCH_BENCH_RESTITCH_SESSIONS` (default 2,000)
//!    finalized sessions of 3 chunks on the GCP emulators; `POST /restitch {"all": true}` on
//!    a queue-mode `rrstitch-finalize` re-opens them and publishes one finalize message each;
//!    the bench pulls them and delivers each as a push envelope to a worker's
//!    `POST /pubsub/finalize`, 4 in flight per worker, behind a proxy adding 20 ms to every
//!    storage and index request (as `--bench cloud` does). Sessions re-finalized/s with 1, 2
//!    and 4 workers (target: 4 workers ≥ 3× one).
//!
//! `RRSTITCH_BENCH_PARTS` (default `local,gcs,restitch`) picks parts. Needs the release
//! binaries (`make bench` builds them). Figures only: nothing here asserts on time.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rrstitch::index::firestore::FirestoreIndex;
use rrstitch::index::SessionIndex;
use rrstitch::time::Millis;
use rrstitch_tests::bench::{hammer, push_envelopes, timed, Timed};
use rrstitch_tests::bins::{self, HttpFunction};
use rrstitch_tests::{latency, FakeGcs, Firestore, PubSub};
use serde_json::{json, Value};

/// Days the bucket's chunks span, the last of them new to the index.
const DAYS: u64 = 60;
/// Chunks per session in the reconcile buckets, 5 s apart.
const CHUNKS_PER_SESSION: usize = 10;
const DELAY: Duration = Duration::from_millis(20);
/// Chunks per re-stitched session.
const RESTITCH_CHUNKS: usize = 3;
/// Requests a worker instance takes at once (`finalize_queue_concurrency`'s default).
const PER_WORKER: usize = 4;

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{var}={v}: not a number"))
        })
        .unwrap_or(default)
}

/// A chunk of 5 rrweb-shaped events: a Meta, then mouse moves.
fn chunk(guid: &str, t0: i64) -> String {
    let mut events = vec![format!(
        r#"{{"type":4,"timestamp":{t0},"data":{{"href":"https://example.com/","width":1280,"height":720}}}}"#
    )];
    for i in 1..5 {
        events.push(format!(
            r#"{{"type":3,"timestamp":{},"data":{{"source":1,"positions":[{{"x":{},"y":{},"id":42,"timeOffset":0}}]}}}}"#,
            t0 + i * 100,
            i * 7,
            i * 3
        ));
    }
    format!(
        r#"{{"session_guid":"{guid}","session_data":[{}],"environment":"bench"}}"#,
        events.join(",")
    )
}

/// A chunk name for an upload at `ms` (UTC), its microseconds made unique by `salt`.
fn name_at(ms: i64, salt: usize) -> String {
    let text = Millis(ms).to_rfc3339();
    format!(
        "{}.{:03}{:03}+0000.json",
        &text[..19],
        ms.rem_euclid(1000),
        salt % 1000
    )
}

/// A bucket's chunks: (name, body) of every chunk, the old ones (the index knows them)
/// first, then the new day's. Sessions of `CHUNKS_PER_SESSION` chunks; the old ones start
/// evenly over the 60 days up to 25 h ago, the new ones over the last 23 h.
struct Bucket {
    old: Vec<(String, String)>,
    new: Vec<(String, String)>,
}

fn bucket(objects: usize) -> Bucket {
    let now = Millis::now().0;
    let sessions = objects.div_ceil(CHUNKS_PER_SESSION);
    let new_sessions = (sessions / DAYS as usize).max(1);
    let old_sessions = sessions - new_sessions;
    let hour = 3_600_000i64;
    let (old_from, old_to) = (now - DAYS as i64 * 24 * hour, now - 25 * hour);
    let (new_from, new_to) = (now - 23 * hour, now - hour / 60);
    let mut out = Bucket {
        old: Vec::new(),
        new: Vec::new(),
    };
    for s in 0..sessions {
        let (start, list) = if s < old_sessions {
            let step = (old_to - old_from) / old_sessions as i64;
            (old_from + s as i64 * step, &mut out.old)
        } else {
            let step = (new_to - new_from) / new_sessions as i64;
            (new_from + (s - old_sessions) as i64 * step, &mut out.new)
        };
        let guid = format!("bulk-{s:07}");
        for c in 0..CHUNKS_PER_SESSION {
            let t = start + c as i64 * 5_000;
            list.push((name_at(t, s), chunk(&guid, t)));
        }
    }
    let (old, new) = (out.old.len(), out.new.len());
    assert_eq!(old + new, sessions * CHUNKS_PER_SESSION);
    out
}

/// `rrstitch reconcile` with `args` and `env`, timed; its JSON summary.
fn reconcile(env: &[(String, String)], args: &[&str]) -> (Timed, Value) {
    let mut cmd = bins::command("rrstitch", env);
    cmd.env("RUST_LOG", "warn")
        .arg("reconcile")
        .arg("--json")
        .args(args);
    let run = timed(&cmd);
    let summary: Value = serde_json::from_slice(&run.output.stdout)
        .unwrap_or_else(|e| panic!("reconcile's JSON summary: {e}"));
    assert!(summary["cursor"].is_null(), "cut by its budget: {summary}");
    (run, summary)
}

/// Copies an SQLite index (and its WAL, if any) to `to`.
fn copy_index(from: &Path, to: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let (f, t) = (
            PathBuf::from(format!("{}{suffix}", from.display())),
            PathBuf::from(format!("{}{suffix}", to.display())),
        );
        let _ = std::fs::remove_file(&t);
        if f.exists() {
            std::fs::copy(&f, &t).unwrap();
        }
    }
}

/// Indexes the old chunks (one unwindowed reconcile), adds the new day (`add_new`), then
/// measures a windowed and an unwindowed pass, each from a copy of that index.
fn reconcile_pair(
    label: &str,
    work: &Path,
    env: &[(String, String)],
    objects: usize,
    new: usize,
    add_new: impl FnOnce(),
) {
    let base = work.join("base.db");
    let env_for = |db: &Path| {
        let mut env = env.to_vec();
        env.push(("RRSTITCH_INDEX".into(), format!("sqlite:{}", db.display())));
        env
    };
    let (setup, summary) = reconcile(&env_for(&base), &[]);
    assert_eq!(
        summary["recovered"].as_u64(),
        Some((objects - new) as u64),
        "{summary}"
    );
    println!(
        "{label}: indexing the {} old chunks (one unwindowed reconcile, setup): {:.1} s, {} MiB",
        objects - new,
        setup.wall.as_secs_f64(),
        setup.peak_rss_kib / 1024
    );
    add_new();

    println!(
        "{:<30} {:>10} {:>10} {:>10} {:>10}",
        "", "listed", "recovered", "seconds", "RSS MiB"
    );
    let mut figures = Vec::new();
    for (pass, args) in [
        ("windowed", &["--since", "1d"][..]),
        ("unwindowed", &[][..]),
    ] {
        let db = work.join(format!("{pass}.db"));
        copy_index(&base, &db);
        let (run, summary) = reconcile(&env_for(&db), args);
        assert_eq!(summary["recovered"].as_u64(), Some(new as u64), "{summary}");
        let listed = summary["objects_listed"].as_u64().unwrap();
        let secs = run.wall.as_secs_f64();
        let mib = run.peak_rss_kib as f64 / 1024.0;
        println!(
            "{:<30} {listed:>10} {:>10} {secs:>10.2} {mib:>10.1}",
            format!("{label}, {pass}"),
            new
        );
        println!("FIGURE bulk.reconcile.{label}.{pass}.objects_listed: {listed}");
        println!("FIGURE bulk.reconcile.{label}.{pass}.seconds: {secs:.2}");
        println!("FIGURE bulk.reconcile.{label}.{pass}.peak_rss_mib: {mib:.1}");
        figures.push((listed as f64, secs, mib));
    }
    let (w, u) = (figures[0], figures[1]);
    println!(
        "FIGURE bulk.reconcile.{label}.windowed_vs_unwindowed.listed: {:.3}",
        w.0 / u.0
    );
    println!(
        "FIGURE bulk.reconcile.{label}.windowed_vs_unwindowed.seconds: {:.3}",
        w.1 / u.1
    );
    println!(
        "FIGURE bulk.reconcile.{label}.windowed_vs_unwindowed.peak_rss: {:.3}",
        w.2 / u.2
    );
    for (pass, f) in [("windowed", w), ("unwindowed", u)] {
        println!(
            "{label}, {pass}: peak RSS {:.1} MiB (target <= 64 MiB) {}",
            f.2,
            if f.2 <= 64.0 { "MET" } else { "MISSED" }
        );
    }
    println!();
}

fn write_all(dir: &Path, chunks: &[(String, String)]) {
    for (name, body) in chunks {
        std::fs::write(dir.join(name), body).unwrap();
    }
}

fn bench_local(objects: usize) {
    let work = bins::path("rrstitch")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("bench/bulk-local");
    let _ = std::fs::remove_dir_all(&work);
    let (chunks, results) = (work.join("chunks"), work.join("results"));
    std::fs::create_dir_all(&chunks).unwrap();
    std::fs::create_dir_all(&results).unwrap();
    let started = Instant::now();
    let b = bucket(objects);
    write_all(&chunks, &b.old);
    println!(
        "local: {} chunk objects written in {:.1} s (work directory {})",
        b.old.len() + b.new.len(),
        started.elapsed().as_secs_f64(),
        work.display()
    );
    let env = vec![
        ("RRSTITCH_CHUNKS".to_owned(), chunks.display().to_string()),
        ("RRSTITCH_RESULTS".to_owned(), results.display().to_string()),
        ("RRSTITCH_SWEEP_BUDGET_SECS".to_owned(), "36000".to_owned()),
    ];
    let total = b.old.len() + b.new.len();
    reconcile_pair("local", &work, &env, total, b.new.len(), || {
        write_all(&chunks, &b.new)
    });
    let _ = std::fs::remove_dir_all(&work);
}

/// Uploads `chunks` to `bucket`, 16 at a time.
fn upload_all(gcs: &FakeGcs, bucket: &str, chunks: &[(String, String)]) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((name, body)) = chunks.get(i) else {
                    return;
                };
                gcs.upload(bucket, name, body.as_bytes());
            });
        }
    });
}

fn bench_gcs(objects: usize) {
    let work = bins::path("rrstitch")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("bench/bulk-gcs");
    let _ = std::fs::remove_dir_all(&work);
    let data = work.join("data");
    std::fs::create_dir_all(data.join("bulk")).unwrap();
    std::fs::create_dir_all(data.join("bulk-results")).unwrap();
    let started = Instant::now();
    let b = bucket(objects);
    write_all(&data.join("bulk"), &b.old);
    let gcs = FakeGcs::on_disk(&work.join("root"), Some(&data));
    println!(
        "fake-gcs-server (filesystem backend): started holding {} chunk objects in {:.1} s",
        b.old.len(),
        started.elapsed().as_secs_f64()
    );
    let env = vec![
        ("STORAGE_EMULATOR_HOST".to_owned(), gcs.endpoint.clone()),
        ("RRSTITCH_CHUNKS".to_owned(), "gs://bulk".to_owned()),
        (
            "RRSTITCH_RESULTS".to_owned(),
            "gs://bulk-results".to_owned(),
        ),
        ("RRSTITCH_SWEEP_BUDGET_SECS".to_owned(), "36000".to_owned()),
    ];
    let total = b.old.len() + b.new.len();
    reconcile_pair("gcs", &work, &env, total, b.new.len(), || {
        upload_all(&gcs, "bulk", &b.new)
    });
    let _ = std::fs::remove_dir_all(&work);
}

/// A distinct chunk name for every `n`: an upload time `n` milliseconds into a day of 2025.
fn restitch_chunk_name(n: usize) -> String {
    name_at(1_746_144_000_000 + n as i64, 0)
}

/// The functions' environment behind the latency proxy, for one Firestore collection.
fn slow_env(
    slow_gcs: std::net::SocketAddr,
    slow_firestore: std::net::SocketAddr,
    firestore: &Firestore,
    pubsub: &PubSub,
    collection: &str,
) -> Vec<(String, String)> {
    [
        ("STORAGE_EMULATOR_HOST", format!("http://{slow_gcs}")),
        ("FIRESTORE_EMULATOR_HOST", slow_firestore.to_string()),
        ("RRSTITCH_FIRESTORE_PROJECT", firestore.project.clone()),
        ("RRSTITCH_FIRESTORE_COLLECTION", collection.to_owned()),
        ("RRSTITCH_INDEX", "firestore".to_owned()),
        ("RRSTITCH_CHUNKS", "gs://chunks".to_owned()),
        ("RRSTITCH_RESULTS", "gs://results".to_owned()),
        ("RRSTITCH_IDLE_SECS", "0".to_owned()),
        ("RRSTITCH_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
        ("PUBSUB_EMULATOR_HOST", pubsub.host.clone()),
        ("RRSTITCH_SWEEP_BUDGET_SECS", "36000".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The re-stitched sessions' chunks, `RESTITCH_CHUNKS` each, and their guids.
fn restitch_chunks(sessions: usize) -> (Vec<(String, String)>, Vec<String>) {
    let mut chunks = Vec::new();
    let mut guids = Vec::new();
    for s in 0..sessions {
        let guid = format!("restitch-{s:05}");
        for c in 0..RESTITCH_CHUNKS {
            let n = chunks.len();
            chunks.push((
                restitch_chunk_name(n),
                chunk(&guid, 1_746_144_000_000 + c as i64 * 10_000),
            ));
        }
        guids.push(guid);
    }
    (chunks, guids)
}

/// Indexes the chunks `names` (already in the bucket) and finalizes the sessions `guids` in
/// `collection`, in-process and straight to the emulators (setup, not measured).
fn seed_finalized(
    rt: &tokio::runtime::Runtime,
    gcs: &FakeGcs,
    firestore: &Firestore,
    collection: &str,
    names: Vec<String>,
    guids: Vec<String>,
) {
    let sessions = guids.len();
    let endpoint = gcs.endpoint.clone();
    let index = Arc::new(FirestoreIndex::on_emulator(
        &firestore.host,
        &firestore.project,
        collection,
    ));
    let all = guids;
    rt.block_on(async move {
        let svc = rrstitch_tests::bench::ingest_all(index.clone(), &endpoint, names).await;
        let permits = Arc::new(tokio::sync::Semaphore::new(16));
        let mut tasks = tokio::task::JoinSet::new();
        for guid in all {
            let (svc, permits) = (svc.clone(), permits.clone());
            tasks.spawn(async move {
                let _permit = permits.acquire().await.unwrap();
                svc.finalize(&guid).await.unwrap();
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
        assert_eq!(index.sessions(sessions + 1).await.unwrap().len(), sessions);
    });
}

fn bench_restitch(rt: &tokio::runtime::Runtime, sessions: usize) {
    let data = bins::path("rrstitch")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("bench/bulk-restitch");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(data.join("chunks")).unwrap();
    std::fs::create_dir_all(data.join("results")).unwrap();
    let started = Instant::now();
    let (chunks, guids) = restitch_chunks(sessions);
    write_all(&data.join("chunks"), &chunks);
    let names = chunks.into_iter().map(|(n, _)| n).collect();
    let gcs = &FakeGcs::start_with(Some(&data));
    let firestore = Firestore::start();
    let pubsub = PubSub::start();
    let gcs_addr = gcs.endpoint.trim_start_matches("http://").parse().unwrap();
    let slow_gcs = rt.block_on(latency::start(gcs_addr, DELAY));
    let slow_firestore = rt.block_on(latency::start(firestore.host.parse().unwrap(), DELAY));
    let collection = "restitch_bench";
    seed_finalized(rt, gcs, &firestore, collection, names, guids);
    println!(
        "re-stitch: {sessions} sessions of {RESTITCH_CHUNKS} chunks loaded, indexed and finalized in {:.1} s (setup)",
        started.elapsed().as_secs_f64()
    );
    println!(
        "re-stitch through the queue, emulators + {} ms: sessions re-finalized/s ({PER_WORKER} in flight per worker)",
        DELAY.as_millis()
    );
    println!(
        "{:>8} {:>14} {:>12} {:>12} {:>9}",
        "workers", "dispatch", "workers' s", "sessions/s", "vs 1"
    );
    let mut one = None;
    let mut four = None;
    for workers in [1, 2, 4] {
        let run = format!("restitch_w{workers}");
        let topic = pubsub.create_topic(&format!("{run}-jobs"));
        let pulled = pubsub.create_pull_subscription(&format!("{run}-pull"), &topic);
        let mut env = slow_env(slow_gcs, slow_firestore, &firestore, &pubsub, collection);
        env.extend([
            ("RRSTITCH_FINALIZE_MODE".to_owned(), "queue".to_owned()),
            ("RRSTITCH_FINALIZE_TOPIC".to_owned(), topic.clone()),
        ]);
        let instances: Vec<HttpFunction> = (0..workers)
            .map(|_| HttpFunction::start("rrstitch-finalize", &env))
            .collect();
        let started = Instant::now();
        let reply = rrstitch_tests::cloudevents::post(
            &format!("{}/restitch", instances[0].url),
            &[("content-type", "application/json")],
            &json!({"all": true}).to_string(),
        );
        let dispatch = started.elapsed();
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["dispatched"], sessions, "{}", reply.body);
        assert!(reply.body["cursor"].is_null(), "{}", reply.body);
        let messages = pubsub.drain(&pulled, Duration::from_millis(500));
        assert_eq!(messages.len(), sessions);
        let targets: Vec<String> = instances
            .iter()
            .map(|w| format!("{}/pubsub/finalize", w.url))
            .collect();
        let wall = hammer(
            &targets,
            PER_WORKER,
            push_envelopes(&messages, &pulled),
            |v| assert_eq!(v["outcome"], "finalized", "{v}"),
        );
        let rate = sessions as f64 / wall.as_secs_f64();
        let base = *one.get_or_insert(rate);
        if workers == 4 {
            four = Some(rate);
        }
        println!(
            "{workers:>8} {:>12.0}ms {:>11.1}s {rate:>12.1} {:>8.2}x",
            dispatch.as_secs_f64() * 1e3,
            wall.as_secs_f64(),
            rate / base
        );
        println!(
            "FIGURE bulk.restitch.dispatch_ms.w{workers}: {:.0}",
            dispatch.as_secs_f64() * 1e3
        );
        println!("FIGURE bulk.restitch.sessions_per_sec.proxy.w{workers}: {rate:.1}");
    }
    let scaling = four.unwrap() / one.unwrap();
    println!("FIGURE bulk.restitch.w4_vs_w1: {scaling:.2}");
    println!(
        "4 workers vs 1 behind the proxy: {scaling:.2}x (target >= 3x) {}",
        if scaling >= 3.0 { "MET" } else { "MISSED" }
    );
}

fn main() {
    let parts =
        std::env::var("RRSTITCH_BENCH_PARTS").unwrap_or_else(|_| "local,gcs,restitch".to_owned());
    let parts: Vec<&str> = parts.split(',').map(str::trim).collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    println!("rrstitch bulk work (release binaries)");
    println!();
    if parts.contains(&"local") {
        bench_local(count("RRSTITCH_BENCH_LOCAL_OBJECTS", 200_000));
    }
    if parts.contains(&"gcs") {
        bench_gcs(count("RRSTITCH_BENCH_GCS_OBJECTS", 20_000));
    }
    if parts.contains(&"restitch") {
        bench_restitch(&rt, count("RRSTITCH_BENCH_RESTITCH_SESSIONS", 2_000));
    }
    println!();
    println!(
        "bulk bench: {:.0} s in all",
        started.elapsed().as_secs_f64()
    );
}
