//! The serverless flow, run by hand: ingest, watch, sweep, finalize, and the index listings.
//!
//! Each command calls the same service function the cloud functions call; only the event
//! source differs (command-line paths, a directory watcher, a timer instead of a scheduler).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use futures::StreamExt;
use rrstitch::service::{IngestOutcome, ObjectRef, Service, ServiceError};
use rrstitch::storage::StorageUrl;
use rrstitch_edge::config::Settings;

#[derive(Args)]
pub struct IngestArgs {
    /// Chunk files, directories (every object in them), or bucket URLs (gs://b/prefix, s3://b).
    #[arg(required = true)]
    paths: Vec<String>,
    /// Print one JSON line per object instead of a summary.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct WatchArgs {
    /// The directory to watch (it plays the chunk bucket).
    dir: PathBuf,
    /// How long a session must be quiet before it is finalized.
    #[arg(long, value_parser = humantime::parse_duration)]
    idle: Option<Duration>,
    /// How often to sweep for idle sessions.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    sweep_every: Duration,
}

#[derive(Args)]
pub struct SweepArgs {
    /// How long a session must be quiet (default RRSTITCH_IDLE_SECS, 5m): `0s` finalizes all.
    #[arg(long, value_parser = humantime::parse_duration)]
    idle: Option<Duration>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ReconcileArgs {
    /// Only chunks uploaded this recently (by the time in their names), e.g. `2d`; all
    /// without it.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Continue after this name: the `cursor` a run cut by its budget answered.
    #[arg(long, conflicts_with = "resume")]
    cursor: Option<String>,
    /// Continue the scheduled series: after the cursor the last resumed pass left in the
    /// index, leaving this pass's own there (cleared when it finishes).
    #[arg(long)]
    resume: bool,
    /// The chunk bucket (default RRSTITCH_CHUNKS): a directory, gs://… or s3://….
    #[arg(long)]
    bucket: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct FinalizeArgs {
    /// The session to finalize.
    session_guid: String,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct ListArgs {
    #[arg(long, default_value_t = 100)]
    limit: usize,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    /// Print it as JSON (what the finalize service's `GET /status` answers).
    #[arg(long)]
    json: bool,
}

async fn service(settings: &Settings) -> Result<Service> {
    rrstitch_edge::setup::service(settings)
        .await
        .context("setting up the index and results bucket")
}

/// Tallies of an ingest run, printed at the end.
#[derive(Default)]
struct Tally {
    recorded: u64,
    reopened: u64,
    known: u64,
    ignored: u64,
    vanished: u64,
    rejected: BTreeMap<String, u64>,
    failed: u64,
}

impl Tally {
    fn add(&mut self, outcome: &Result<IngestOutcome, ServiceError>) {
        match outcome {
            Ok(IngestOutcome::Recorded { reopened, .. }) => {
                self.recorded += 1;
                self.reopened += u64::from(*reopened);
            }
            Ok(IngestOutcome::AlreadyKnown { .. }) => self.known += 1,
            Ok(IngestOutcome::Ignored { .. } | IngestOutcome::NotChunkBucket { .. }) => {
                self.ignored += 1
            }
            Ok(IngestOutcome::Vanished { .. }) => self.vanished += 1,
            Ok(IngestOutcome::Rejected { kind, .. }) => {
                *self.rejected.entry(kind.clone()).or_default() += 1
            }
            Ok(IngestOutcome::DeletedSession { .. }) => {
                let kind = rrstitch::service::ingest::DELETED_SESSION.to_owned();
                *self.rejected.entry(kind).or_default() += 1
            }
            Err(_) => self.failed += 1,
        }
    }

    fn line(&self) -> String {
        let rejected: u64 = self.rejected.values().sum();
        let mut line = format!(
            "{} recorded ({} re-opened a session), {} already known, {} rejected, {} ignored, {} vanished, {} failed",
            self.recorded, self.reopened, self.known, rejected, self.ignored, self.vanished, self.failed
        );
        if !self.rejected.is_empty() {
            let by: Vec<String> = self
                .rejected
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect();
            line.push_str(&format!(" [rejected by reason: {}]", by.join(", ")));
        }
        line
    }
}

/// Expands the command-line paths into object references.
async fn objects_of(svc: &Service, path: &str) -> Result<Vec<ObjectRef>> {
    let local = std::path::Path::new(path);
    if !path.contains("://") && local.is_file() {
        let abs = std::path::absolute(local)?;
        let dir = abs
            .parent()
            .context("a file has a parent directory")?
            .to_path_buf();
        let name = abs
            .file_name()
            .context("a file has a name")?
            .to_string_lossy()
            .into_owned();
        return Ok(vec![ObjectRef {
            bucket: StorageUrl::Local(dir),
            name,
            generation: None,
        }]);
    }
    if !path.contains("://") && !local.is_dir() {
        bail!("{path}: no such file or directory");
    }
    let (url, prefix) = StorageUrl::parse(path).map_err(anyhow::Error::msg)?;
    let store = svc.buckets.get(&url).await?;
    let listed = store.list(&prefix).await?;
    Ok(listed
        .into_iter()
        .map(|meta| ObjectRef {
            bucket: url.clone(),
            name: meta.name,
            generation: meta.generation,
        })
        .collect())
}

pub async fn ingest(args: IngestArgs, settings: Settings) -> Result<()> {
    let mut svc = service(&settings).await?;
    // The paths on the command line are the user's own choice of bucket.
    svc.options.chunk_bucket = None;
    let mut objects = Vec::new();
    for path in &args.paths {
        objects.extend(objects_of(&svc, path).await?);
    }
    let mut tally = Tally::default();
    let svc = &svc;
    let mut runs = futures::stream::iter(objects)
        .map(|object| async move { svc.ingest(&object).await.map_err(|e| (object, e)) })
        .buffer_unordered(8);
    while let Some(outcome) = runs.next().await {
        match outcome {
            Ok(o) => {
                if args.json {
                    println!("{}", serde_json::to_string(&o)?);
                }
                tally.add(&Ok(o));
            }
            Err((object, e)) => {
                tracing::error!(object = %object.name, error = %e, "ingest failed");
                tally.add(&Err(e));
            }
        }
    }
    eprintln!("ingest: {}", tally.line());
    if tally.failed > 0 {
        bail!(
            "{} objects could not be ingested (see errors above); run again to retry",
            tally.failed
        );
    }
    Ok(())
}

pub async fn sweep(args: SweepArgs, settings: Settings) -> Result<()> {
    let mut svc = service(&settings).await?;
    if let Some(idle) = args.idle {
        svc.options.idle = idle;
    }
    let summary = svc.sweep().await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for r in &summary.finalized {
            println!(
                "{} {}: {} chunks, {} events, {} bytes -> {} ({}{})",
                r.completion,
                r.session_guid,
                r.chunks,
                r.events,
                r.bytes,
                location(&svc, &r.result_object),
                if r.replayable {
                    "replayable"
                } else {
                    "NOT replayable"
                },
                if r.warnings > 0 {
                    format!(", {} warnings", r.warnings)
                } else {
                    String::new()
                },
            );
        }
        eprintln!(
            "sweep: {} idle sessions, {} stitched, {} skipped (busy), {} deleted meanwhile, {} failed",
            summary.considered,
            summary.finalized.len(),
            summary.skipped,
            summary.erased,
            summary.failed.len()
        );
    }
    if !summary.failed.is_empty() {
        bail!(
            "{} sessions failed to finalize; they stay open for the next sweep",
            summary.failed.len()
        );
    }
    Ok(())
}

pub async fn reconcile(args: ReconcileArgs, mut settings: Settings) -> Result<()> {
    if let Some(bucket) = args.bucket {
        settings.chunks = Some(bucket);
    }
    if settings.chunks.is_none() {
        bail!("reconcile needs the chunk bucket: --bucket or RRSTITCH_CHUNKS");
    }
    let svc = service(&settings).await?;
    let queue = rrstitch_edge::setup::finalize_queue(&settings)
        .await
        .context("opening the finalize queue")?;
    if let Some(queue) = queue {
        if args.resume {
            bail!("--resume continues an inline pass; in queue mode (RRSTITCH_FINALIZE_MODE=queue) the pass is cut into ranges for the workers, and needs no bookmark");
        }
        let summary = svc
            .reconcile_fan_out(queue.as_ref(), args.since, args.cursor.as_deref())
            .await?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        } else {
            eprintln!(
                "reconcile: {} ranges of chunk names published for the finalize workers ({} failed){}",
                summary.published,
                summary.failed.len(),
                summary
                    .from
                    .as_deref()
                    .map(|f| format!(", starting after {f}"))
                    .unwrap_or_default()
            );
        }
        if !summary.failed.is_empty() {
            bail!(
                "{} ranges were not published: run the pass again (ranges are idempotent)",
                summary.failed.len()
            );
        }
        return Ok(());
    }
    let summary = if args.resume {
        svc.reconcile_resumed(args.since).await?
    } else {
        svc.reconcile_from(args.since, args.cursor.as_deref())
            .await?
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!(
            "reconcile: {} objects, {} chunk candidates: {} known, {} recovered (in {} sessions), {} rejected, {} vanished, {} failed, {} left for the next run",
            summary.objects_listed,
            summary.candidates,
            summary.known,
            summary.recovered,
            summary.sessions_recovered,
            summary.rejected,
            summary.vanished,
            summary.failed.len(),
            summary.deferred
        );
        if summary.recovered > 0 {
            eprintln!("the recovered sessions are open again: the next sweep stitches them");
        }
        if let Some(from) = &summary.resumed_from {
            eprintln!("resumed after {from}");
        }
        match (&summary.cursor, args.resume) {
            (Some(_), true) => eprintln!("the budget ran out: continue with --resume"),
            (Some(cursor), false) => {
                eprintln!("the budget ran out: continue with --cursor '{cursor}'")
            }
            (None, _) => {}
        }
    }
    if !summary.failed.is_empty() {
        bail!(
            "{} objects could not be checked (see errors above); run again to retry",
            summary.failed.len()
        );
    }
    Ok(())
}

fn location(svc: &Service, object: &str) -> String {
    match svc.results.url() {
        StorageUrl::Local(dir) => dir.join(object).display().to_string(),
        url => format!("{url}/{object}"),
    }
}

pub async fn finalize(args: FinalizeArgs, settings: Settings) -> Result<()> {
    let svc = service(&settings).await?;
    let report = svc.finalize(&args.session_guid).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{} {}: {} chunks, {} events -> {}",
            report.completion,
            report.session_guid,
            report.chunks,
            report.events,
            location(&svc, &report.result_object)
        );
    }
    Ok(())
}

pub async fn sessions(args: ListArgs, settings: Settings) -> Result<()> {
    let index = rrstitch::index::open(&settings.index).await?;
    let sessions = index.sessions(args.limit).await?;
    if args.json {
        let rows: Vec<serde_json::Value> = sessions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "session_guid": s.guid.as_str(),
                    "status": s.status.as_str(),
                    "environment": s.environment,
                    "chunk_count": s.chunk_count,
                    "first_chunk_time": s.first_chunk_time,
                    "last_chunk_time": s.last_chunk_time,
                    "last_chunk_at": s.last_chunk_at.to_rfc3339(),
                    "result_object": s.result_object,
                    "finalize_count": s.finalize_count,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    println!(
        "{:<38} {:<10} {:<12} {:>6} {:<32} {:<24} {:>5}",
        "SESSION", "STATUS", "ENVIRONMENT", "CHUNKS", "LAST CHUNK (name)", "LAST ARRIVAL", "RUNS"
    );
    for s in &sessions {
        println!(
            "{:<38} {:<10} {:<12} {:>6} {:<32} {:<24} {:>5}",
            s.guid.as_str(),
            s.status.as_str(),
            s.environment,
            s.chunk_count,
            s.last_chunk_time,
            s.last_chunk_at.to_rfc3339(),
            s.finalize_count
        );
    }
    eprintln!("{} sessions", sessions.len());
    Ok(())
}

pub async fn rejected(args: ListArgs, settings: Settings) -> Result<()> {
    let index = rrstitch::index::open(&settings.index).await?;
    let rejected = index.rejected(args.limit).await?;
    for r in &rejected {
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "bucket": r.bucket,
                    "name": r.name,
                    "kind": r.kind,
                    "reason": r.reason,
                    "session_guid": r.session_guid.as_ref().map(|g| g.as_str()),
                    "size": r.size,
                })
            );
        } else {
            println!("{}/{}: {} ({})", r.bucket, r.name, r.reason, r.kind);
        }
    }
    eprintln!("{} rejected objects", rejected.len());
    Ok(())
}

pub async fn status(args: StatusArgs, settings: Settings) -> Result<()> {
    let index = rrstitch::index::open(&settings.index).await?;
    let status = rrstitch::service::status::status(
        index.as_ref(),
        rrstitch::time::Millis::now(),
        settings.options.idle,
    )
    .await
    .context("reading the index")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{status}");
    }
    Ok(())
}

/// Ingests files as they appear in `dir` (once they have been quiet for a moment, so a file
/// still being copied is not read half-written) and sweeps idle sessions on a timer.
pub async fn watch(args: WatchArgs, settings: Settings) -> Result<()> {
    use notify::{RecursiveMode, Watcher};

    let mut svc = service(&settings).await?;
    if let Some(idle) = args.idle {
        svc.options.idle = idle;
    }
    svc.options.chunk_bucket = None;
    let svc = Arc::new(svc);
    let dir = std::path::absolute(&args.dir)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let bucket = StorageUrl::Local(dir.clone());

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event {
            if event.kind.is_create() || event.kind.is_modify() {
                for path in event.paths {
                    let _ = tx.send(path);
                }
            }
        }
    })?;
    watcher.watch(&dir, RecursiveMode::Recursive)?;

    // What is already there counts as arriving now.
    let existing = objects_of(&svc, &dir.display().to_string()).await?;
    for object in existing {
        log_outcome(&object.name, svc.ingest(&object).await);
    }
    eprintln!(
        "watching {} (sweeping every {:?}, idle {:?}); Ctrl-C to stop",
        dir.display(),
        args.sweep_every,
        svc.options.idle
    );

    const QUIET: Duration = Duration::from_millis(300);
    let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut sweep_timer = tokio::time::interval(args.sweep_every);
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            Some(path) = rx.recv() => { pending.insert(path, Instant::now()); }
            _ = tick.tick() => {
                let ready: Vec<PathBuf> = pending
                    .iter()
                    .filter(|(_, at)| at.elapsed() >= QUIET)
                    .map(|(p, _)| p.clone())
                    .collect();
                for path in ready {
                    pending.remove(&path);
                    if !path.is_file() {
                        continue;
                    }
                    let Ok(rel) = path.strip_prefix(&dir) else { continue };
                    let name = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
                    let object = ObjectRef { bucket: bucket.clone(), name, generation: None };
                    log_outcome(&object.name, svc.ingest(&object).await);
                }
            }
            _ = sweep_timer.tick() => {
                match svc.sweep().await {
                    Ok(summary) => for r in &summary.finalized {
                        eprintln!("{} {}: {} chunks, {} events -> {}", r.completion, r.session_guid, r.chunks, r.events, location(&svc, &r.result_object));
                    },
                    Err(e) => tracing::error!(error = %e, "sweep failed"),
                }
            }
            _ = &mut shutdown => {
                eprintln!("stopping");
                return Ok(());
            }
        }
    }
}

fn log_outcome(name: &str, outcome: Result<IngestOutcome, ServiceError>) {
    match outcome {
        Ok(o) => tracing::debug!(object = name, outcome = ?o, "ingested"),
        Err(e) => {
            tracing::error!(object = name, error = %e, "ingest failed; will not retry until the file changes")
        }
    }
}
