//! Finalize's bounded-parallel reads against a sequential read, on fake-gcs-server.
//!
//! One session of ~300 chunks is uploaded to the GCS emulator and indexed; then the same
//! session is finalized (read, stitched, written back to the emulator) with
//! `read_parallelism = 1` (the baseline: one chunk after another) and with the default.
//! Twice: straight to the emulator, where a request costs well under a millisecond, and
//! through a proxy adding 20 ms per request, which is closer to a real bucket's latency.
//! Figures are medians of 3 runs, as ratios against the sequential baseline of the same run.
//!
//! `cargo bench -p rrstitch-tests --bench finalize` (needs `target/release/rrstitch`;
//! `make bench` builds it).

use std::sync::Arc;
use std::time::{Duration, Instant};

use rrstitch::index::sqlite::SqliteIndex;
use rrstitch::service::{Buckets, ObjectRef, Options, Service};
use rrstitch::storage::gcs::GcsStore;
use rrstitch::storage::{ObjectStore, StorageUrl};
use rrstitch_tests::{bins, latency, FakeGcs};

const RUNS: usize = 3;

fn gs(bucket: &str) -> StorageUrl {
    StorageUrl::Gcs {
        bucket: bucket.into(),
    }
}

async fn finalize_time(
    endpoint: &str,
    index: &std::path::Path,
    guid: &str,
    parallelism: usize,
) -> Duration {
    let chunks: Arc<dyn ObjectStore> =
        Arc::new(GcsStore::on_emulator(gs("chunks"), endpoint).unwrap());
    let results = Arc::new(GcsStore::on_emulator(gs("results"), endpoint).unwrap());
    let svc = Service::new(
        Arc::new(SqliteIndex::open(index).unwrap()),
        results,
        Arc::new(Buckets::with([chunks])),
        Options {
            read_parallelism: parallelism,
            ..Options::default()
        },
    );
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let report = svc.finalize(guid).await.unwrap();
        times.push(started.elapsed());
        assert!(report.chunks >= 250, "{report:?}");
    }
    times.sort();
    times[RUNS / 2]
}

fn main() {
    let gcs = FakeGcs::start();
    gcs.create_bucket("chunks");
    gcs.create_bucket("results");
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("bucket");
    bins::succeeds(
        bins::command("rrstitch", &[])
            .args([
                "generate",
                "--sessions",
                "1",
                "--events",
                "6000",
                "--events-per-chunk",
                "20",
                "--seed",
                "5",
                "--out",
            ])
            .arg(&bucket),
    );
    let mut names: Vec<String> = std::fs::read_dir(&bucket)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut bytes = 0;
    for n in &names {
        let body = std::fs::read(bucket.join(n)).unwrap();
        bytes += body.len();
        gcs.upload("chunks", n, &body);
    }

    let rt = tokio::runtime::Runtime::new().unwrap();
    let index = dir.path().join("index.sqlite");
    let guid = rt.block_on(async {
        let chunks: Arc<dyn ObjectStore> =
            Arc::new(GcsStore::on_emulator(gs("chunks"), &gcs.endpoint).unwrap());
        let svc = Service::new(
            Arc::new(SqliteIndex::open(&index).unwrap()),
            Arc::new(GcsStore::on_emulator(gs("results"), &gcs.endpoint).unwrap()),
            Arc::new(Buckets::with([chunks])),
            Options::default(),
        );
        let mut guid = String::new();
        for n in &names {
            let outcome = svc
                .ingest(&ObjectRef {
                    bucket: gs("chunks"),
                    name: n.clone(),
                    generation: None,
                })
                .await
                .unwrap();
            if let rrstitch::service::IngestOutcome::Recorded { session_guid, .. } = outcome {
                guid = session_guid;
            }
        }
        guid
    });
    let parallel = Options::default().read_parallelism;
    println!(
        "finalize of one session: {} chunks, {:.1} MB, on fake-gcs-server (median of {RUNS})",
        names.len(),
        bytes as f64 / 1e6
    );
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "endpoint",
        "sequential",
        format!("parallel={parallel}"),
        "speedup"
    );
    let upstream: std::net::SocketAddr =
        gcs.endpoint.trim_start_matches("http://").parse().unwrap();
    let slow = rt.block_on(latency::start(upstream, Duration::from_millis(20)));
    for (label, endpoint) in [
        ("emulator, direct".to_owned(), gcs.endpoint.clone()),
        (
            "emulator + 20 ms per request".to_owned(),
            format!("http://{slow}"),
        ),
    ] {
        let seq = rt.block_on(finalize_time(&endpoint, &index, &guid, 1));
        let par = rt.block_on(finalize_time(&endpoint, &index, &guid, parallel));
        println!(
            "{label:<34} {:>10.0}ms {:>10.0}ms {:>7.1}x",
            seq.as_secs_f64() * 1e3,
            par.as_secs_f64() * 1e3,
            seq.as_secs_f64() / par.as_secs_f64()
        );
    }
}
