//! `rrstitch generate`: a bucket of synthetic but realistically shaped rrweb chunks.
//!
//! The shapes follow what rrweb 2 records: every session opens with a Meta and a FullSnapshot,
//! then incremental events, cut into chunks named by upload time the way a browser SDK names
//! them. Output is deterministic for a given `--seed`. Two generators, one chunk format:
//! - [`sessions`]: many short sessions that overlap in time, with SDK retries and junk on
//!   request, for the stitch's throughput and robustness;
//! - [`long`]: one session of a given size whose checkouts match the DOM its mutations built
//!   ([`page`] models that DOM), for the viewer's progressive playback;
//! - [`chunk`]: the chunk JSON and names both write, so they cannot drift apart;
//! - [`size`]: the `--session-bytes` parser.

mod chunk;
mod long;
mod page;
mod sessions;
mod size;

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;

#[derive(Args, Clone)]
pub struct GenerateArgs {
    /// Directory to write chunk files into (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Number of sessions.
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Events per session (after the Meta and FullSnapshot).
    #[arg(long, default_value_t = 750)]
    events: usize,
    /// Average events per chunk (each chunk takes between half and one and a half of this).
    #[arg(long, default_value_t = 40)]
    events_per_chunk: usize,
    /// Nesting depth of the FullSnapshot's DOM tree.
    #[arg(long, default_value_t = 40)]
    depth: usize,
    /// Re-upload this many chunks under a new name, as an SDK retry would.
    #[arg(long, default_value_t = 0)]
    duplicates: usize,
    /// Also write this many malformed objects (bad JSON, bad names, hostile guids).
    #[arg(long, default_value_t = 0)]
    bad: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value = "production")]
    environment: String,
    /// Instead of `--sessions`: one long session of at least this much event JSON (`210MB`,
    /// `2MiB`), with consistent checkouts, for the viewer's progressive-playback tests.
    #[arg(long)]
    session_bytes: Option<String>,
    /// With `--session-bytes`: a checkout (Meta + FullSnapshot of the current DOM) every this
    /// many incremental events.
    #[arg(long, default_value_t = 3000)]
    checkout_every: usize,
}

/// Words for the text both generators write.
const WORDS: &[&str] = &[
    "cart", "checkout", "basket", "apples", "rice", "delivery", "profile", "settings", "search",
    "results", "product", "review", "shipping", "address", "payment", "summary", "order", "list",
];

/// 2025-05-02T12:10:50Z, the fixture's start, in milliseconds.
const START_MS: i64 = 1_746_187_850_000;

pub fn run(args: &GenerateArgs) -> Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    if let Some(size) = &args.session_bytes {
        let target = size::parse_size(size)?;
        return long::write_long_session(
            &args.out,
            target,
            args.checkout_every,
            args.seed,
            &args.environment,
            START_MS,
        );
    }
    sessions::write_sessions(args)
}
