//! `rrstitch delete`: erase sessions (results, chunks, index records) and tombstone them, as
//! the finalize function's `POST /delete` does. The logic is `Service::erase`.

use std::io::Read;

use anyhow::{bail, Context, Result};
use clap::Args;
use rrstitch::service::EraseRequest;
use rrstitch_edge::config::Settings;

#[derive(Args)]
pub struct DeleteArgs {
    /// Session guids to erase.
    session_guids: Vec<String>,
    /// Read more guids from FILE, one per line (`-`: standard input); blank lines and
    /// `#` comments are skipped.
    #[arg(long, value_name = "FILE")]
    from: Option<String>,
    /// Leave the chunk objects in their bucket (their index records still go).
    #[arg(long)]
    keep_chunks: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// The guids a `--from` list names: `FILE`, or standard input for `-`.
pub(crate) fn guids_from(from: &str) -> Result<Vec<String>> {
    let text = if from == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading session guids from standard input")?;
        text
    } else {
        std::fs::read_to_string(from).with_context(|| format!("reading {from}"))?
    };
    Ok(guids_in(&text).collect())
}

/// Guids from a list file's text: one a line, blank lines and `#` comments skipped.
fn guids_in(text: &str) -> impl Iterator<Item = String> + '_ {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
}

pub async fn run(args: DeleteArgs, settings: Settings) -> Result<()> {
    let mut guids = args.session_guids;
    if let Some(from) = &args.from {
        guids.extend(guids_from(from)?);
    }
    if guids.is_empty() {
        bail!("no session guids: name them, or pass --from FILE (or --from - for stdin)");
    }
    let svc = rrstitch_edge::setup::service(&settings)
        .await
        .context("setting up the index and results bucket")?;
    let report = svc
        .erase(&EraseRequest {
            session_guids: guids,
            keep_chunks: args.keep_chunks,
        })
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for s in &report.erased {
            if s.already_gone {
                println!("{}: nothing left to delete", s.session_guid);
            } else {
                println!(
                    "{}: deleted {} results, {} chunks ({} kept), {} rejected chunks ({} kept), {} index records",
                    s.session_guid,
                    s.results,
                    s.chunks,
                    s.chunks_kept,
                    s.rejected,
                    s.rejected_kept,
                    s.index_records
                );
            }
        }
        for f in &report.failed {
            eprintln!("{}: FAILED: {}", f.session_guid, f.error);
        }
    }
    if !report.failed.is_empty() {
        bail!(
            "{} of {} sessions could not be erased; run the delete again",
            report.failed.len(),
            report.failed.len() + report.erased.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::guids_in;

    #[test]
    fn a_list_file_skips_blanks_and_comments() {
        let got: Vec<String> = guids_in("a-1\n\n  # erasure ticket 7\n b-2 \n").collect();
        assert_eq!(got, vec!["a-1", "b-2"]);
    }
}
