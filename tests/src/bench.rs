//! Helpers the `cargo bench` targets share: POSTing many requests at a fixed concurrency,
//! Pub/Sub push envelopes of pulled messages, and a child process timed by GNU time.

use std::collections::VecDeque;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::emulators::Pulled;

/// A request for [`hammer`]: headers and body.
pub type Request = (Vec<(String, String)>, String);

/// POSTs each of `requests` (headers, body) with `concurrency` keep-alive clients per
/// target, `targets` round robin by client; returns the wall time. Every answer must be 200.
pub fn hammer(
    targets: &[String],
    concurrency: usize,
    requests: Vec<Request>,
    check: impl Fn(&Value) + Sync,
) -> Duration {
    let total = requests.len();
    let queue = Mutex::new(VecDeque::from(requests));
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        for client in 0..targets.len() * concurrency {
            let target = &targets[client % targets.len()];
            let (queue, done, check) = (&queue, &done, &check);
            s.spawn(move || {
                let agent = ureq::AgentBuilder::new()
                    .timeout(Duration::from_secs(120))
                    .build();
                loop {
                    let Some((headers, body)) = queue.lock().unwrap().pop_front() else {
                        return;
                    };
                    let mut req = agent.post(target);
                    for (k, v) in &headers {
                        req = req.set(k, v);
                    }
                    let reply = req
                        .send_string(&body)
                        .unwrap_or_else(|e| panic!("POST {target}: {e}"));
                    assert_eq!(reply.status(), 200);
                    check(&reply.into_json().unwrap());
                    done.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
    });
    assert_eq!(done.load(Ordering::SeqCst), total);
    started.elapsed()
}

/// Each pulled message as the push envelope Pub/Sub would POST to a worker.
pub fn push_envelopes(messages: &[Pulled], subscription: &str) -> Vec<Request> {
    messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            use base64::Engine as _;
            let body = json!({
                "message": {
                    "data": base64::engine::general_purpose::STANDARD.encode(&m.data),
                    "attributes": m.attributes,
                    "messageId": i.to_string(),
                    "publishTime": "2025-05-02T12:30:00Z"
                },
                "subscription": subscription,
            });
            (
                vec![("content-type".to_owned(), "application/json".to_owned())],
                body.to_string(),
            )
        })
        .collect()
}

/// What [`timed`] measured of a child process.
pub struct Timed {
    pub output: Output,
    pub wall: Duration,
    /// Peak resident set size, KiB (GNU time's "Maximum resident set size").
    pub peak_rss_kib: u64,
}

/// Runs `cmd` to the end under `/usr/bin/time -v`, which must succeed; its wall time and
/// peak RSS.
pub fn timed(cmd: &Command) -> Timed {
    let report = std::env::temp_dir().join(format!("rrstitch-bench-time-{}", std::process::id()));
    let mut wrapped = Command::new("/usr/bin/time");
    wrapped
        .arg("-v")
        .arg("-o")
        .arg(&report)
        .arg(cmd.get_program());
    wrapped.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapped.env(k, v),
            None => wrapped.env_remove(k),
        };
    }
    let started = Instant::now();
    let output = wrapped
        .output()
        .unwrap_or_else(|e| panic!("/usr/bin/time (GNU time) did not run {cmd:?}: {e}"));
    let wall = started.elapsed();
    assert!(
        output.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = std::fs::read_to_string(&report).expect("GNU time's report");
    let _ = std::fs::remove_file(&report);
    let peak_rss_kib = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|v| v.trim().parse().ok())
        .expect("a peak RSS in GNU time's report");
    Timed {
        output,
        wall,
        peak_rss_kib,
    }
}

/// Ingests every object of `names` from fake-gcs-server's `chunks` bucket into `index`, 16 at
/// a time, each one a new chunk: a bench's set-up. Answers the service (results in the
/// `results` bucket) for what the set-up does next.
pub async fn ingest_all(
    index: std::sync::Arc<dyn rrstitch::index::SessionIndex>,
    endpoint: &str,
    names: Vec<String>,
) -> std::sync::Arc<rrstitch::service::Service> {
    use rrstitch::service::{Buckets, IngestOutcome, ObjectRef, Options, Service};
    use rrstitch::storage::gcs::GcsStore;
    use rrstitch::storage::{ObjectStore, StorageUrl};
    use std::sync::Arc;
    let gs = |b: &str| StorageUrl::Gcs { bucket: b.into() };
    let chunks: Arc<dyn ObjectStore> =
        Arc::new(GcsStore::on_emulator(gs("chunks"), endpoint).unwrap());
    let svc = Arc::new(Service::new(
        index,
        Arc::new(GcsStore::on_emulator(gs("results"), endpoint).unwrap()),
        Arc::new(Buckets::with([chunks])),
        Options::default(),
    ));
    let permits = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for name in names {
        let (svc, permits) = (svc.clone(), permits.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire().await.unwrap();
            let outcome = svc
                .ingest(&ObjectRef {
                    bucket: StorageUrl::Gcs {
                        bucket: "chunks".into(),
                    },
                    name,
                    generation: None,
                })
                .await
                .unwrap();
            assert!(
                matches!(outcome, IngestOutcome::Recorded { .. }),
                "{outcome:?}"
            );
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
    svc
}
