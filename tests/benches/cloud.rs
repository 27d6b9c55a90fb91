//! The functions' throughput on the GCP emulators (fake-gcs-server, the Firestore and Pub/Sub
//! emulators), with the real release binaries, direct and behind a proxy adding 20 ms to every
//! storage and index request (cloud-like latency, `rrstitch_tests::latency`):
//!
//! 1. ingest: CloudEvents POSTed to one `rrstitch-ingest` at concurrency 1, 8 and 32, each for
//!    a chunk not seen before (read from GCS, recorded in Firestore): requests/s per instance;
//! 2. finalize in queue mode: `POST /sweep` on a `rrstitch-finalize` dispatches one Pub/Sub
//!    message per idle session (small sessions, 3 chunks each); the bench pulls them from a
//!    subscription of that topic and delivers each, as a push envelope, to a worker's
//!    `POST /pubsub/finalize`, `PER_WORKER` in flight per worker — what Cloud Run does with
//!    `finalize_queue_concurrency = 4`. Sessions finalized/s with one worker (direct and
//!    behind the proxy) and with 1, 2 and 4 workers behind the proxy (target: 4 workers
//!    ≥ 3× one).
//!
//! `cargo bench -p rrstitch-tests --bench cloud` (needs the release binaries; `make bench`
//! builds them). On a 2-core machine the emulators share the cores with the functions, so
//! direct figures are bounded by the emulators' CPU, not the functions'.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rrstitch::index::firestore::FirestoreIndex;
use rrstitch::index::SessionIndex;
use rrstitch_tests::bench::{hammer, push_envelopes};
use rrstitch_tests::bins::HttpFunction;
use rrstitch_tests::cloudevents::{object_data, FINALIZED};
use rrstitch_tests::{latency, FakeGcs, Firestore, PubSub};
use serde_json::json;

const DELAY: Duration = Duration::from_millis(20);
/// Requests per ingest run, by concurrency: long enough to be steady, bounded in time.
const INGEST_RUNS: [(usize, usize); 3] = [(1, 60), (8, 240), (32, 640)];
/// Sessions per finalize run, and chunks per session.
const SESSIONS: usize = 150;
const CHUNKS_PER_SESSION: usize = 3;
/// Requests a worker instance takes at once (`finalize_queue_concurrency`'s default).
const PER_WORKER: usize = 4;

/// A distinct chunk name for every `n`: an upload time `n` milliseconds into the day.
fn chunk_name(n: usize) -> String {
    format!(
        "2025-05-02T{:02}:{:02}:{:02}.{:06}+0000.json",
        (n / 3_600_000) % 24,
        (n / 60_000) % 60,
        (n / 1000) % 60,
        (n % 1000) * 1000
    )
}

/// A chunk of 20 rrweb-shaped events (a Meta, then incremental mouse moves).
fn chunk(guid: &str, seq: usize) -> Vec<u8> {
    let t0 = 1_746_187_850_000u64 + seq as u64 * 10_000;
    let mut events = vec![
        json!({"type": 4, "timestamp": t0, "data": {"href": "https://example.com/", "width": 1280, "height": 720}}),
    ];
    for i in 1..20u64 {
        events.push(json!({"type": 3, "timestamp": t0 + i * 100, "data": {"source": 1, "positions": [{"x": i * 7, "y": i * 3, "id": 42, "timeOffset": 0}]}}));
    }
    serde_json::to_vec(
        &json!({"session_guid": guid, "session_data": events, "environment": "bench"}),
    )
    .unwrap()
}

/// The emulators, and a proxy with latency in front of the storage and index ones.
struct Emulators {
    gcs: FakeGcs,
    firestore: Firestore,
    pubsub: PubSub,
    slow_gcs: SocketAddr,
    slow_firestore: SocketAddr,
    rt: tokio::runtime::Runtime,
}

impl Emulators {
    /// The functions' environment for one Firestore collection, direct or behind the proxy.
    fn env(&self, slow: bool, collection: &str) -> Vec<(String, String)> {
        let (gcs, firestore) = if slow {
            (
                format!("http://{}", self.slow_gcs),
                self.slow_firestore.to_string(),
            )
        } else {
            (self.gcs.endpoint.clone(), self.firestore.host.clone())
        };
        [
            ("STORAGE_EMULATOR_HOST", gcs.as_str()),
            ("FIRESTORE_EMULATOR_HOST", firestore.as_str()),
            (
                "RRSTITCH_FIRESTORE_PROJECT",
                self.firestore.project.as_str(),
            ),
            ("RRSTITCH_FIRESTORE_COLLECTION", collection),
            ("RRSTITCH_INDEX", "firestore"),
            ("RRSTITCH_CHUNKS", "gs://chunks"),
            ("RRSTITCH_RESULTS", "gs://results"),
            ("RRSTITCH_IDLE_SECS", "0"),
            ("RRSTITCH_LOG_FORMAT", "json"),
            ("RUST_LOG", "warn"),
            ("PUBSUB_EMULATOR_HOST", self.pubsub.host.as_str()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// Ingest requests/s of one instance at each concurrency.
fn bench_ingest(e: &Emulators, slow: bool, next_chunk: &mut usize) -> Vec<(usize, f64)> {
    let ingest = HttpFunction::start("rrstitch-ingest", &e.env(slow, "ingest_bench"));
    let mut out = Vec::new();
    for (concurrency, requests) in INGEST_RUNS {
        let mut bodies = Vec::new();
        for i in 0..requests {
            let name = chunk_name(*next_chunk);
            *next_chunk += 1;
            let body = chunk(&format!("ingest-{}-{i}", *next_chunk / 3), i % 3);
            e.gcs.upload("chunks", &name, &body);
            let headers = [
                ("ce-specversion", "1.0"),
                ("ce-id", &format!("evt-{name}")),
                (
                    "ce-source",
                    "//storage.googleapis.com/projects/_/buckets/chunks",
                ),
                ("ce-type", FINALIZED),
                ("ce-subject", &format!("objects/{name}")),
                ("ce-time", "2025-05-02T12:10:50.700Z"),
                ("content-type", "application/json"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            bodies.push((
                headers,
                object_data("chunks", &name, body.len()).to_string(),
            ));
        }
        let wall = hammer(
            std::slice::from_ref(&format!("{}/", ingest.url)),
            concurrency,
            bodies,
            |v| assert_eq!(v["outcome"], "recorded", "{v}"),
        );
        out.push((concurrency, requests as f64 / wall.as_secs_f64()));
    }
    out
}

/// Indexes `SESSIONS` sessions of `CHUNKS_PER_SESSION` chunks in `collection` (in-process,
/// straight to the emulators: setup, not measured).
fn seed_sessions(e: &Emulators, collection: &str, next_chunk: &mut usize) {
    let mut objects = Vec::new();
    for s in 0..SESSIONS {
        let guid = format!("{collection}-{s:04}");
        for c in 0..CHUNKS_PER_SESSION {
            let name = chunk_name(*next_chunk);
            *next_chunk += 1;
            e.gcs.upload("chunks", &name, &chunk(&guid, c));
            objects.push(name);
        }
    }
    let gcs = e.gcs.endpoint.clone();
    let index = Arc::new(FirestoreIndex::on_emulator(
        &e.firestore.host,
        &e.firestore.project,
        collection,
    ));
    e.rt.block_on(async move {
        rrstitch_tests::bench::ingest_all(index.clone(), &gcs, objects).await;
        assert_eq!(index.sessions(SESSIONS + 1).await.unwrap().len(), SESSIONS);
    });
}

/// What one queue-mode finalize run measured.
struct FinalizeRun {
    dispatch: Duration,
    wall: Duration,
}

/// Dispatches `SESSIONS` idle sessions of a fresh collection and has `workers` instances
/// finalize them, `PER_WORKER` requests in flight each.
fn bench_finalize(
    e: &Emulators,
    slow: bool,
    workers: usize,
    next_chunk: &mut usize,
) -> FinalizeRun {
    let run = format!("fin_{}_{workers}", if slow { "slow" } else { "direct" });
    seed_sessions(e, &run, next_chunk);
    let topic = e.pubsub.create_topic(&format!("{run}-jobs"));
    let pulled = e
        .pubsub
        .create_pull_subscription(&format!("{run}-pull"), &topic);
    let mut env = e.env(slow, &run);
    env.extend([
        ("RRSTITCH_FINALIZE_MODE".to_owned(), "queue".to_owned()),
        ("RRSTITCH_FINALIZE_TOPIC".to_owned(), topic.clone()),
        ("RRSTITCH_RESULTS_PREFIX".to_owned(), format!("{run}/")),
    ]);
    let instances: Vec<HttpFunction> = (0..workers)
        .map(|_| HttpFunction::start("rrstitch-finalize", &env))
        .collect();

    let started = Instant::now();
    let reply = rrstitch_tests::cloudevents::post(&format!("{}/sweep", instances[0].url), &[], "");
    let dispatch = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["published"], SESSIONS, "{}", reply.body);
    let messages = e.pubsub.drain(&pulled, Duration::from_millis(500));
    assert_eq!(messages.len(), SESSIONS);
    let envelopes = push_envelopes(&messages, &pulled);
    let targets: Vec<String> = instances
        .iter()
        .map(|w| format!("{}/pubsub/finalize", w.url))
        .collect();
    let wall = hammer(&targets, PER_WORKER, envelopes, |v| {
        assert_eq!(v["outcome"], "finalized", "{v}")
    });
    FinalizeRun { dispatch, wall }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let gcs = FakeGcs::start();
    gcs.create_bucket("chunks");
    gcs.create_bucket("results");
    let firestore = Firestore::start();
    let pubsub = PubSub::start();
    let gcs_addr: SocketAddr = gcs.endpoint.trim_start_matches("http://").parse().unwrap();
    let fs_addr: SocketAddr = firestore.host.parse().unwrap();
    let slow_gcs = rt.block_on(latency::start(gcs_addr, DELAY));
    let slow_firestore = rt.block_on(latency::start(fs_addr, DELAY));
    let e = Emulators {
        gcs,
        firestore,
        pubsub,
        slow_gcs,
        slow_firestore,
        rt,
    };
    let mut next_chunk = 0;

    println!("rrstitch on the GCP emulators (release binaries); proxy = +{} ms per storage and index request", DELAY.as_millis());
    println!();
    println!("ingest, one instance: requests/s (each a new chunk: GCS read + Firestore record)");
    println!("{:<24} {:>10} {:>10} {:>10}", "", "c=1", "c=8", "c=32");
    for (label, slow) in [("emulators, direct", false), ("emulators + 20 ms", true)] {
        let figures = bench_ingest(&e, slow, &mut next_chunk);
        print!("{label:<24}");
        for (_, rps) in &figures {
            print!(" {rps:>10.1}");
        }
        println!();
        for (c, rps) in &figures {
            let mode = if slow { "proxy" } else { "direct" };
            println!("FIGURE cloud.ingest_rps.{mode}.c{c}: {rps:.1}");
        }
    }

    println!();
    println!(
        "finalize in queue mode: sessions/s ({SESSIONS} sessions of {CHUNKS_PER_SESSION} chunks, {PER_WORKER} in flight per worker)"
    );
    println!(
        "{:<24} {:>8} {:>14} {:>12} {:>9}",
        "", "workers", "dispatch", "sessions/s", "vs 1"
    );
    let mut one = None;
    let mut four = None;
    for (label, slow, workers) in [
        ("emulators, direct", false, 1),
        ("emulators + 20 ms", true, 1),
        ("emulators + 20 ms", true, 2),
        ("emulators + 20 ms", true, 4),
    ] {
        let run = bench_finalize(&e, slow, workers, &mut next_chunk);
        let rate = SESSIONS as f64 / run.wall.as_secs_f64();
        let base = if slow { *one.get_or_insert(rate) } else { rate };
        if slow && workers == 4 {
            four = Some(rate);
        }
        println!(
            "{label:<24} {workers:>8} {:>12.0}ms {rate:>12.1} {:>8.2}x",
            run.dispatch.as_secs_f64() * 1e3,
            rate / base
        );
        let mode = if slow { "proxy" } else { "direct" };
        println!("FIGURE cloud.finalize_sessions_per_sec.{mode}.w{workers}: {rate:.1}");
    }
    let scaling = four.unwrap() / one.unwrap();
    println!();
    println!(
        "4 workers vs 1 behind the proxy: {scaling:.2}x (target >= 3x) {}",
        if scaling >= 3.0 { "MET" } else { "MISSED" }
    );
}
