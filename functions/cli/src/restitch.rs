//! `rrstitch restitch`: stitch finalized sessions again under the current rules (after a
//! redaction change, an engine upgrade, or to give old sessions their insights), as the
//! finalize function's `POST /restitch` does. The logic is `Service::restitch`; in queue mode
//! (`RRSTITCH_FINALIZE_MODE=queue`) it publishes one finalize message per session instead.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use rrstitch::service::{RestitchRequest, Selection};
use rrstitch_edge::config::Settings;

use crate::progress::Bar;

#[derive(Args)]
#[command(group(
    clap::ArgGroup::new("selection")
        .required(true)
        .multiple(true)
        .args(["all", "since", "environment", "from"]),
))]
pub struct RestitchArgs {
    /// Every finalized session in the index.
    #[arg(long, conflicts_with_all = ["since", "environment", "from"])]
    all: bool,
    /// Only sessions whose last chunk arrived this recently, e.g. `2d`.
    #[arg(long, value_parser = humantime::parse_duration)]
    since: Option<Duration>,
    /// Only sessions of this environment (with `--since`: both).
    #[arg(long)]
    environment: Option<String>,
    /// The sessions named in FILE, one guid a line (`-`: standard input); blank lines and
    /// `#` comments are skipped.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["since", "environment"])]
    from: Option<String>,
    /// Continue where a run cut by its budget stopped: the cursor it answered.
    #[arg(long)]
    cursor: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

fn selection(args: &RestitchArgs) -> Result<Selection> {
    let Some(from) = &args.from else {
        return Ok(Selection::Index {
            since: args.since,
            environment: args.environment.clone(),
        });
    };
    let guids = crate::erase::guids_from(from)?;
    if guids.is_empty() {
        bail!("no session guids in {from}");
    }
    rrstitch::service::erase::parse_guids(&guids)?;
    Ok(Selection::Sessions(guids))
}

pub async fn run(args: RestitchArgs, settings: Settings) -> Result<()> {
    let request = RestitchRequest {
        selection: selection(&args)?,
        cursor: args.cursor.clone(),
    };
    let svc = rrstitch_edge::setup::service(&settings)
        .await
        .context("setting up the index and results bucket")?;
    let queue = rrstitch_edge::setup::finalize_queue(&settings)
        .await
        .context("opening the finalize queue")?;
    let bar = Bar::new();
    let summary = svc.restitch(&request, queue.as_deref(), &bar).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        eprintln!(
            "restitch ({}): {} listed, {} selected",
            summary.mode, summary.listed, summary.selected
        );
        if summary.mode == "queue" {
            eprintln!("  dispatched:         {}", summary.dispatched);
        } else {
            eprintln!(
                "  re-stitched:        {} ({} events, {} bytes)",
                summary.restitched, summary.events, summary.bytes
            );
        }
        eprintln!("  erased (skipped):   {}", summary.tombstoned);
        eprintln!("  left to the sweep:  {}", summary.left_to_sweep);
        eprintln!("  unknown:            {}", summary.unknown);
        eprintln!("  failed:             {}", summary.failed.len());
        for f in &summary.failed {
            eprintln!("    {}: {}", f.session_guid, f.error);
        }
        if let Some(cursor) = &summary.cursor {
            eprintln!(
                "the budget ran out with {} sessions left: continue with --cursor '{cursor}'",
                summary.deferred
            );
        }
    }
    if !summary.failed.is_empty() {
        bail!(
            "{} sessions could not be re-stitched; those re-opened are stitched by the next sweep",
            summary.failed.len()
        );
    }
    Ok(())
}
