//! The chunk file both generators write, in one place: its JSON (what a browser SDK uploads:
//! `session_guid`, `session_data`, `environment`) and its name (the upload time with
//! microseconds, `2025-05-02T12:10:50.644423+0000.json`), so the two cannot drift apart from
//! each other or from what ingest parses.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::Rng;
use rrstitch::time::Millis;

/// A chunk's JSON: `events` are already JSON, written as they are.
pub fn chunk_body<'a>(
    guid: &str,
    environment: &str,
    events: impl Iterator<Item = &'a str>,
) -> String {
    let mut body = format!("{{\"session_guid\":\"{guid}\",\"session_data\":[");
    for (i, e) in events.enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(e);
    }
    let _ = write!(body, "],\"environment\":\"{environment}\"}}");
    body
}

/// A chunk's name at `ms` (milliseconds since the epoch), `micros` (below 1000) making the
/// microseconds: `2025-05-02T12:10:50.644423+0000.json`.
pub fn chunk_name(ms: i64, micros: u32) -> String {
    let base = Millis(ms).to_rfc3339(); // …:50.644Z
    format!("{}{micros:03}+0000.json", base.trim_end_matches('Z'))
}

/// `2025-05-02T12:10:50.644423+0000.json`, unique within the bucket.
pub fn unique_name(used: &mut HashSet<String>, ms: i64, rng: &mut StdRng) -> String {
    loop {
        let name = chunk_name(ms, rng.gen_range(0..1000));
        if used.insert(name.clone()) {
            return name;
        }
    }
}

/// A chunk file is cut once its events pass this many bytes.
pub const CHUNK_BYTES: usize = 512 * 1024;

/// Accumulates one session's events into chunk files of about [`CHUNK_BYTES`], each named
/// just after its last event: for output too large to hold, only the current chunk is kept.
pub struct ChunkWriter<'a> {
    dir: &'a Path,
    guid: &'a str,
    environment: &'a str,
    events: String,
    count: usize,
    last_upload_ms: i64,
    /// Files written so far.
    pub files: u64,
    /// Bytes written so far.
    pub bytes: u64,
}

impl<'a> ChunkWriter<'a> {
    pub fn new(dir: &'a Path, guid: &'a str, environment: &'a str) -> Self {
        ChunkWriter {
            dir,
            guid,
            environment,
            events: String::with_capacity(CHUNK_BYTES + 64 * 1024),
            count: 0,
            last_upload_ms: 0,
            files: 0,
            bytes: 0,
        }
    }

    /// Adds an event (JSON) recorded at `t`; writes the chunk once it is full.
    pub fn push(&mut self, event: &str, t: i64) -> Result<()> {
        if !self.events.is_empty() {
            self.events.push(',');
        }
        self.events.push_str(event);
        self.count += 1;
        if self.events.len() >= CHUNK_BYTES {
            self.flush(t)?;
        }
        Ok(())
    }

    /// Writes the events held, if any, as a chunk uploaded just after `last_t`.
    pub fn flush(&mut self, last_t: i64) -> Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        // Uploaded just after its last event, strictly after the previous upload.
        let upload = (last_t + 100).max(self.last_upload_ms + 1);
        self.last_upload_ms = upload;
        let name = chunk_name(upload, (self.files % 1000) as u32);
        let body = chunk_body(
            self.guid,
            self.environment,
            std::iter::once(self.events.as_str()),
        );
        std::fs::write(self.dir.join(&name), &body).with_context(|| format!("writing {name}"))?;
        self.files += 1;
        self.bytes += body.len() as u64;
        self.events.clear();
        self.count = 0;
        Ok(())
    }
}
