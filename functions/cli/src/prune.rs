//! `rrstitch prune`: retention for local mode (the cloud buckets have lifecycle rules).
//! The logic, and what is kept, is `Service::prune`.

use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use rrstitch_edge::config::Settings;

#[derive(Args)]
pub struct PruneArgs {
    /// Age past which raw chunks are deleted (by file modification time), e.g. `30d`.
    #[arg(long, value_parser = humantime::parse_duration)]
    older_than: Duration,
    /// Also delete results older than the cutoff whose chunks are all pruned. (Not
    /// `--results`: that is the global flag naming the results directory.)
    #[arg(long)]
    prune_results: bool,
    /// Say what would be deleted, delete nothing.
    #[arg(long)]
    dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: PruneArgs, settings: Settings) -> Result<()> {
    let svc = rrstitch_edge::setup::service(&settings)
        .await
        .context("setting up the index and results bucket")?;
    let report = svc
        .prune(args.older_than, args.prune_results, args.dry_run)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "{}{} sessions pruned: {} chunks, {} chunk records, {} results deleted; {} sessions forgotten, {} kept for their result, {} skipped (newer chunks or finalizing)",
            if report.dry_run { "dry run: " } else { "" },
            report.sessions_pruned,
            report.chunks_deleted,
            report.chunk_records_deleted,
            report.results_deleted,
            report.sessions_forgotten,
            report.sessions_kept_for_result,
            report.sessions_skipped,
        );
    }
    Ok(())
}
