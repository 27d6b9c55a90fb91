//! `rrstitch backfill`: the seed's batch job. Flag names follow the seed's script
//! (`--bucket`, `--output_dir`), with `--output-dir` and `--results` as well.

use anyhow::{bail, Result};
use clap::Args;
use rrstitch::service::backfill;
use rrstitch_edge::config::Settings;

use crate::progress::Bar;

#[derive(Args)]
pub struct BackfillArgs {
    /// The chunk bucket: a directory, gs://BUCKET[/prefix] or s3://BUCKET[/prefix].
    #[arg(long)]
    bucket: String,
    /// Where to write `<session_guid>.json` files (a local directory).
    /// (`--results URL` writes to a results bucket instead: gs://…, s3://… or a directory.)
    #[arg(long = "output_dir", alias = "output-dir")]
    output_dir: Option<String>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: BackfillArgs, settings: Settings) -> Result<()> {
    // `--results` is global (it also configures sweeps); `--output_dir` wins when given.
    let destination = args.output_dir.unwrap_or_else(|| settings.results.clone());
    let (source, prefix) = rrstitch_edge::setup::open_bucket("--bucket", &args.bucket).await?;
    let (results, results_prefix) =
        rrstitch_edge::setup::open_bucket("--output_dir", &destination).await?;
    let mut options = settings.options.clone();
    if !prefix.is_empty() {
        options.chunk_prefix = prefix;
    }
    if !results_prefix.is_empty() {
        options.results_prefix = results_prefix;
    }
    let bar = Bar::new();
    let summary = backfill(source, results, &options, &bar).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!("backfill {} -> {destination}", args.bucket);
        eprintln!("  objects listed:     {}", summary.objects_listed);
        eprintln!("  files processed:    {}", summary.files_processed);
        eprintln!("  ignored (not chunks): {}", summary.ignored);
        eprintln!("  rejected:           {}", summary.rejected);
        for (kind, n) in &summary.rejected_by_reason {
            eprintln!("    {kind}: {n}");
        }
        for r in summary.rejected_objects.iter().take(20) {
            eprintln!("    - {}: {}", r.name, r.reason);
        }
        if summary.rejected_objects.len() > 20 {
            eprintln!("    … and {} more", summary.rejected_objects.len() - 20);
        }
        eprintln!(
            "  duplicate chunks skipped: {}",
            summary.duplicate_chunks_skipped
        );
        eprintln!("  sessions written:   {}", summary.sessions_written);
        eprintln!("  events written:     {}", summary.events_written);
        eprintln!("  bytes written:      {}", summary.bytes_written);
        for f in summary.unreadable.iter().chain(&summary.sessions_failed) {
            eprintln!("  FAILED {}: {}", f.name, f.error);
        }
    }
    if !summary.complete() {
        bail!(
            "{} objects unreadable and {} sessions not written",
            summary.unreadable.len(),
            summary.sessions_failed.len()
        );
    }
    Ok(())
}
