//! `rrstitch`: the batch job, the local serverless emulation, and the viewer.
//!
//! Thin by design: each subcommand parses its flags, builds adapters through
//! `rrstitch_edge::setup`, calls one service function and prints what it returned. The logic lives
//! in the library, where the cloud functions reuse it unchanged.

use anyhow::Result;
use clap::{Parser, Subcommand};
use rrstitch_edge::config::Settings;
use rrstitch_edge::telemetry::LogFormat;

mod backfill;
mod erase;
mod generate;
mod local;
mod progress;
mod prune;
mod restitch;
mod view;

#[derive(Parser)]
#[command(
    name = "rrstitch",
    version,
    about = "Stitch chunked rrweb recordings into complete sessions"
)]
struct Cli {
    /// Log format: `text`, or `json` with `severity` (Cloud Logging). Env: RRSTITCH_LOG_FORMAT.
    #[arg(long, global = true, value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Session index: `sqlite:PATH`, `firestore` or `dynamodb`. Env: RRSTITCH_INDEX.
    #[arg(long, global = true)]
    index: Option<String>,
    /// Results bucket or directory. Env: RRSTITCH_RESULTS.
    #[arg(long, global = true)]
    results: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Stitch every session in a bucket in one batch (no index needed).
    Backfill(backfill::BackfillArgs),
    /// Record chunk objects in the session index, as the ingest function does per event.
    Ingest(local::IngestArgs),
    /// Watch a directory: every new file is an ingest event; idle sessions are swept.
    Watch(local::WatchArgs),
    /// Finalize every idle session, as the scheduled finalize function does.
    Sweep(local::SweepArgs),
    /// Finalize one session now, idle or not.
    Finalize(local::FinalizeArgs),
    /// Ingest every chunk of the chunk bucket the index does not know (lost events).
    Reconcile(local::ReconcileArgs),
    /// Stitch finalized sessions again under the current rules (redaction, engine,
    /// insights); erased sessions never.
    Restitch(restitch::RestitchArgs),
    /// List the sessions in the index.
    Sessions(local::ListArgs),
    /// List the objects the index rejected, with reasons.
    Rejected(local::ListArgs),
    /// Where things stand: open sessions and the oldest idle one, finalizing ones and
    /// leases past due, the last day's rejects by reason, the last sweep, tombstones.
    Status(local::StatusArgs),
    /// Serve a page that lists stitched sessions and replays them with rrweb.
    View(view::ViewArgs),
    /// Write a synthetic bucket of realistic rrweb chunks (for demos and benchmarks).
    Generate(generate::GenerateArgs),
    /// Erase sessions: results, chunks and index records, and tombstone them so late chunks
    /// are refused.
    Delete(erase::DeleteArgs),
    /// Retention for local mode: delete chunks (and optionally results) older than a cutoff.
    Prune(prune::PruneArgs),
}

fn main() -> Result<()> {
    rrstitch_edge::alloc::tune();
    let cli = Cli::parse();
    let mut settings = Settings::from_env()?;
    if let Some(format) = &cli.log_format {
        settings.log_format = if format == "json" {
            LogFormat::Json
        } else {
            LogFormat::Text
        };
    }
    if let Some(index) = &cli.index {
        // The same values as `RRSTITCH_INDEX`.
        settings.index = rrstitch_edge::config::parse_index(index)?;
    }
    if let Some(results) = cli.results {
        settings.results = results;
    }
    rrstitch_edge::telemetry::init(
        settings.log_format,
        "warn",
        settings
            .metrics
            .clone()
            .unwrap_or(rrstitch_edge::telemetry::Metrics::Off),
    );
    if let Command::Generate(args) = &cli.command {
        return generate::run(args);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Backfill(args) => backfill::run(args, settings).await,
            Command::Ingest(args) => local::ingest(args, settings).await,
            Command::Watch(args) => local::watch(args, settings).await,
            Command::Sweep(args) => local::sweep(args, settings).await,
            Command::Finalize(args) => local::finalize(args, settings).await,
            Command::Reconcile(args) => local::reconcile(args, settings).await,
            Command::Restitch(args) => restitch::run(args, settings).await,
            Command::Sessions(args) => local::sessions(args, settings).await,
            Command::Rejected(args) => local::rejected(args, settings).await,
            Command::Status(args) => local::status(args, settings).await,
            Command::View(args) => view::run(args).await,
            Command::Delete(args) => erase::run(args, settings).await,
            Command::Prune(args) => prune::run(args, settings).await,
            Command::Generate(_) => unreachable!("handled before the runtime starts"),
        }
    })
}
