//! What a stitched session says about itself: the seed's two fields, then facts a user wants
//! without replaying (duration, pages, clicks, whether it can replay at all) and warnings.
//!
//! Everything here is O(chunks) or O(distinct URLs), never O(events): it is accumulated as
//! events stream past and serialized once, after the last event.

use serde::Serialize;
use serde_json::Number;

use crate::chunk::Chunk;
use crate::event::Event;
use crate::name::ChunkName;
use crate::rrweb::event_type;

/// The `metadata` object of a stitched session, in output field order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metadata {
    pub environment: String,
    pub timestamp_list: Vec<String>,
    pub chunk_count: u64,
    pub event_count: u64,
    pub first_event_timestamp: Option<Number>,
    pub last_event_timestamp: Option<Number>,
    pub duration_ms: Number,
    pub full_snapshot_count: u64,
    pub urls: Vec<String>,
    pub click_count: u64,
    /// A Meta and a FullSnapshot come before the first incremental event: rrweb's Replayer
    /// needs both to build a DOM to apply increments to.
    pub replayable: bool,
    /// Chunks whose `session_data` repeated an earlier chunk's byte for byte (an SDK retry
    /// under a new name): skipped, and listed here rather than in `timestamp_list`.
    pub duplicate_chunks: Vec<String>,
    pub warnings: Vec<String>,
}

/// Accumulates [`Metadata`] while chunks stream through the stitcher.
#[derive(Debug, Default)]
pub(crate) struct MetadataBuilder {
    environment: Option<String>,
    timestamp_list: Vec<String>,
    event_count: u64,
    first_ts: Option<Number>,
    last_ts: Option<Number>,
    full_snapshot_count: u64,
    urls: Vec<String>,
    click_count: u64,
    seen_meta: bool,
    seen_full_snapshot: bool,
    replayable: Option<bool>,
    duplicate_chunks: Vec<String>,
    warnings: Vec<String>,
}

impl MetadataBuilder {
    pub(crate) fn duplicate(&mut self, name: &ChunkName) {
        self.duplicate_chunks.push(name.object().to_owned());
        self.warnings.push(format!(
            "chunk {name} repeats an earlier chunk's session_data byte for byte; skipped"
        ));
    }

    pub(crate) fn warn(&mut self, warning: String) {
        self.warnings.push(warning);
    }

    /// Records a chunk that is being stitched; call before its events are written.
    pub(crate) fn chunk(&mut self, name: &ChunkName, chunk: &Chunk<'_>) {
        self.timestamp_list.push(name.timestamp().to_owned());
        match &self.environment {
            None => self.environment = Some(chunk.environment.clone()),
            Some(env) if *env != chunk.environment => {
                self.warnings.push(format!(
                    "environment mismatch: chunk {name} says {:?}, the session uses {env:?}",
                    chunk.environment
                ));
            }
            Some(_) => {}
        }
        if let (Some(prev), Some(first)) = (&self.last_ts, chunk.events.first()) {
            if as_f64(&first.timestamp) < as_f64(prev) {
                self.warnings.push(format!(
                    "timestamps go backwards at chunk {name}: its first event is at {}, the previous chunk ended at {prev}",
                    first.timestamp
                ));
            }
        }
        for event in &chunk.events {
            self.event(event);
        }
    }

    fn event(&mut self, event: &Event<'_>) {
        self.event_count += 1;
        if self.first_ts.is_none() {
            self.first_ts = Some(event.timestamp.clone());
        }
        self.last_ts = Some(event.timestamp.clone());
        match event.kind {
            event_type::META => {
                self.seen_meta = true;
                if let Some(href) = &event.href {
                    if !self.urls.contains(href) {
                        self.urls.push(href.clone());
                    }
                }
            }
            event_type::FULL_SNAPSHOT => {
                self.seen_full_snapshot = true;
                self.full_snapshot_count += 1;
            }
            event_type::INCREMENTAL_SNAPSHOT => {
                if self.replayable.is_none() {
                    self.replayable = Some(self.seen_meta && self.seen_full_snapshot);
                }
                if event.is_click {
                    self.click_count += 1;
                }
            }
            _ => {}
        }
    }

    pub(crate) fn finish(self) -> Metadata {
        let duration_ms = match (&self.first_ts, &self.last_ts) {
            (Some(first), Some(last)) => difference(first, last),
            _ => Number::from(0),
        };
        let replayable = self
            .replayable
            .unwrap_or(self.seen_meta && self.seen_full_snapshot);
        let mut warnings = self.warnings;
        if !replayable {
            warnings.push(
                "not replayable: no Meta and FullSnapshot before the first incremental event"
                    .to_owned(),
            );
        }
        Metadata {
            environment: self.environment.unwrap_or_default(),
            chunk_count: self.timestamp_list.len() as u64,
            timestamp_list: self.timestamp_list,
            event_count: self.event_count,
            first_event_timestamp: self.first_ts,
            last_event_timestamp: self.last_ts,
            duration_ms,
            full_snapshot_count: self.full_snapshot_count,
            urls: self.urls,
            click_count: self.click_count,
            replayable,
            duplicate_chunks: self.duplicate_chunks,
            warnings,
        }
    }
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

/// `last - first`, never negative, an integer when both are integers (rrweb's usual case).
fn difference(first: &Number, last: &Number) -> Number {
    if let (Some(a), Some(b)) = (first.as_i64(), last.as_i64()) {
        return Number::from(b.saturating_sub(a).max(0));
    }
    let d = (as_f64(last) - as_f64(first)).max(0.0);
    Number::from_f64(d).unwrap_or_else(|| Number::from(0))
}
