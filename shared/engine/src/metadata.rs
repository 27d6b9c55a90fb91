//! What a stitched session says about itself: the seed's two fields, then facts a user wants
//! without replaying (duration, pages, clicks, whether it can replay at all) and warnings.
//! Times and replayability are judged as rrweb's Replayer plays: in timestamp order.
//!
//! Everything here is O(chunks), O(FullSnapshots) or O(distinct URLs), never O(events): it is accumulated as
//! events stream past and serialized once, after the last event. The `insights` it carries
//! are bounded the same way (see [`crate::insights`] for their caps).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Number;

use crate::chunk::Chunk;
use crate::event::Event;
use crate::insights::{Insights, InsightsBuilder};
use crate::name::ChunkName;
use crate::redact::Counts;
use crate::rrweb::{self, event_type};

/// The `metadata` object of a stitched session, in output field order.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metadata {
    pub environment: String,
    pub timestamp_list: Vec<String>,
    pub chunk_count: u64,
    pub event_count: u64,
    /// The earliest event timestamp: where rrweb's Replayer, which orders events by
    /// timestamp, starts.
    pub first_event_timestamp: Option<Number>,
    /// The latest event timestamp, wherever it is in the array.
    pub last_event_timestamp: Option<Number>,
    /// The player's total time: latest minus earliest.
    pub duration_ms: Number,
    pub full_snapshot_count: u64,
    pub urls: Vec<String>,
    /// MouseInteractions of type Click only (the count since the first release; the
    /// PostHog-compatible count, which adds DblClick, ContextMenu and TouchEnd, is
    /// `insights.click_count`).
    pub click_count: u64,
    /// Played in timestamp order (as the Replayer does; a stable sort, so ties keep their
    /// array order), a Meta comes before a FullSnapshot that comes before the first
    /// incremental event: what the Replayer needs to build a DOM to apply increments to.
    pub replayable: bool,
    /// What happened in the session (clicks, activity, console, frustration); absent when
    /// the stitcher was told not to compute it ([`crate::Stitcher::without_insights`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub insights: Option<Insights>,
    /// Events whose timestamp is earlier than the event before them in the array, within a
    /// chunk or across a chunk boundary. The player reorders them; a count here says the
    /// recording's clock or the upload order is off.
    pub backwards_timestamps: u64,
    /// Chunks whose `session_data` repeated an earlier chunk's byte for byte (an SDK retry
    /// under a new name): skipped, and listed here rather than in `timestamp_list`.
    pub duplicate_chunks: Vec<String>,
    /// Events skipped as repeats of a recent chunk's (an overlapping retry).
    pub duplicate_events: u64,
    /// Events that arrived with whitespace outside their strings, written compact.
    pub compacted_events: u64,
    /// What redaction removed; present only when redaction rules are set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redaction: Option<Counts>,
    /// Where the session's bytes are, and whether a browser can load it whole.
    pub size: Size,
    pub warnings: Vec<String>,
}

/// Size diagnostics: what makes a session heavy, in output bytes.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Size {
    /// Bytes of all events (the `rrweb_data` array without its brackets and commas).
    pub event_bytes: u64,
    /// By event type name (`FullSnapshot`, `IncrementalSnapshot`, ...; a number when rrweb
    /// has no name for it).
    pub bytes_by_type: BTreeMap<String, u64>,
    /// Incremental snapshots by source (`Mutation`, `MouseMove`, `Input`, ...).
    pub bytes_by_source: BTreeMap<String, u64>,
    pub largest_event_bytes: u64,
    pub largest_event_type: Option<String>,
    /// Over [`BROWSER_LOAD_LIMIT`]: opening the single file in a browser will fail or
    /// exhaust the tab's memory.
    pub too_big_for_browser: bool,
}

/// The most event bytes a browser can reasonably load as one document. V8's longest string
/// is about 512 MiB (2^29 - 24 characters), so `fetch().text()` of a larger file fails
/// outright, and `JSON.parse` of a few hundred MB already takes gigabytes of heap.
pub const BROWSER_LOAD_LIMIT: u64 = 256 << 20;

/// Warnings of one kind listed before the rest are only counted.
const WARNINGS_PER_KIND: u64 = 5;

/// A position in play order: timestamp, then array index.
type PlayAt = (f64, u64);

/// Accumulates [`Metadata`] while chunks stream through the stitcher.
#[derive(Debug, Default)]
pub(crate) struct MetadataBuilder {
    environment: Option<String>,
    timestamp_list: Vec<String>,
    event_count: u64,
    min_ts: Option<Number>,
    max_ts: Option<Number>,
    /// The previous event's timestamp in array order.
    prev_ts: Option<f64>,
    full_snapshot_count: u64,
    urls: Vec<String>,
    click_count: u64,
    first_meta: Option<PlayAt>,
    /// Every FullSnapshot's position: one per checkout, a handful per session.
    full_snapshots: Vec<PlayAt>,
    first_incremental: Option<PlayAt>,
    backwards_timestamps: u64,
    duplicate_chunks: Vec<String>,
    duplicate_events: u64,
    compacted_events: u64,
    size: Size,
    warnings: Vec<String>,
}

impl MetadataBuilder {
    /// Counts the bytes an event takes in the output.
    pub(crate) fn sized(&mut self, event: &Event<'_>, bytes: usize) {
        let bytes = bytes as u64;
        let size = &mut self.size;
        size.event_bytes += bytes;
        let type_name =
            || rrweb::type_name(event.kind).map_or_else(|| event.kind.to_string(), str::to_owned);
        // Looked up by &str first: a name is allocated once per session, not per event.
        let by_type = rrweb::type_name(event.kind).and_then(|n| size.bytes_by_type.get_mut(n));
        match by_type {
            Some(total) => *total += bytes,
            None => *size.bytes_by_type.entry(type_name()).or_default() += bytes,
        }
        if let Some(source) = event.source {
            let name = rrweb::source_name(source);
            match name.and_then(|n| size.bytes_by_source.get_mut(n)) {
                Some(total) => *total += bytes,
                None => {
                    let key = name.map_or_else(|| source.to_string(), str::to_owned);
                    *size.bytes_by_source.entry(key).or_default() += bytes;
                }
            }
        }
        if bytes > size.largest_event_bytes {
            size.largest_event_bytes = bytes;
            size.largest_event_type = Some(type_name());
        }
    }

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
        if chunk.byte_order_mark {
            self.warnings.push(format!(
                "chunk {name} starts with a UTF-8 byte order mark; stripped"
            ));
        }
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
    }

    /// An event of `chunk` that was skipped as a repeat.
    pub(crate) fn repeated_event(&mut self, name: &ChunkName) {
        self.duplicate_events += 1;
        if self.duplicate_events == 1 {
            self.warnings.push(format!(
                "chunk {name} repeats events of an earlier chunk (an overlapping retry); the repeats are skipped (count in duplicate_events)"
            ));
        }
    }

    /// An event written compact because it arrived with whitespace.
    pub(crate) fn compacted(&mut self, name: &ChunkName) {
        self.compacted_events += 1;
        if self.compacted_events == 1 {
            self.warnings.push(format!(
                "chunk {name} holds events with whitespace outside strings (pretty-printed); written compact (count in compacted_events)"
            ));
        }
    }

    /// An event that is being written.
    pub(crate) fn event(&mut self, name: &ChunkName, event: &Event<'_>) {
        let at: PlayAt = (as_f64(&event.timestamp), self.event_count);
        self.event_count += 1;
        if let Some(prev) = self.prev_ts {
            if at.0 < prev {
                self.backwards_timestamps += 1;
                if self.backwards_timestamps <= WARNINGS_PER_KIND {
                    self.warnings.push(format!(
                        "timestamps go backwards in chunk {name}: an event at {} follows one at {prev}",
                        event.timestamp
                    ));
                }
            }
        }
        self.prev_ts = Some(at.0);
        if self.min_ts.as_ref().is_none_or(|m| at.0 < as_f64(m)) {
            self.min_ts = Some(event.timestamp.clone());
        }
        if self.max_ts.as_ref().is_none_or(|m| at.0 > as_f64(m)) {
            self.max_ts = Some(event.timestamp.clone());
        }
        let earliest = |slot: &mut Option<PlayAt>| {
            if slot.is_none_or(|s| before(at, s)) {
                *slot = Some(at);
            }
        };
        match event.kind {
            event_type::META => {
                earliest(&mut self.first_meta);
                if let Some(href) = &event.href {
                    if !self.urls.contains(href) {
                        self.urls.push(href.clone());
                    }
                }
            }
            event_type::FULL_SNAPSHOT => {
                self.full_snapshots.push(at);
                self.full_snapshot_count += 1;
            }
            event_type::INCREMENTAL_SNAPSHOT => {
                earliest(&mut self.first_incremental);
                if event.is_click {
                    self.click_count += 1;
                }
            }
            _ => {}
        }
    }

    /// Whether, in play order, a FullSnapshot follows a Meta and precedes every increment.
    fn replayable(&self) -> bool {
        let Some(meta) = self.first_meta else {
            return false;
        };
        self.full_snapshots.iter().any(|&full| {
            before(meta, full) && self.first_incremental.is_none_or(|inc| before(full, inc))
        })
    }

    /// The metadata, with `insights` finished over the session's times when given.
    pub(crate) fn finish(
        self,
        redaction: Option<Counts>,
        insights: Option<InsightsBuilder>,
    ) -> Metadata {
        let duration_ms = match (&self.min_ts, &self.max_ts) {
            (Some(first), Some(last)) => difference(first, last),
            _ => Number::from(0),
        };
        let replayable = self.replayable();
        let mut size = self.size;
        size.too_big_for_browser = size.event_bytes > BROWSER_LOAD_LIMIT;
        let mut warnings = self.warnings;
        let insights = insights.map(|builder| {
            let last = self.max_ts.as_ref().map(as_f64);
            let (insights, limits) = builder.finish(as_f64(&duration_ms), last);
            warnings.extend(limits);
            insights
        });
        if size.too_big_for_browser {
            warnings.push(format!(
                "{} MiB of events: too big to load whole in a browser (over {} MiB)",
                size.event_bytes >> 20,
                BROWSER_LOAD_LIMIT >> 20
            ));
        }
        if self.backwards_timestamps > WARNINGS_PER_KIND {
            warnings.push(format!(
                "timestamps go backwards {} times in all (count in backwards_timestamps)",
                self.backwards_timestamps
            ));
        }
        if !replayable {
            warnings.push(
                "not replayable: played in timestamp order, no Meta then FullSnapshot comes before the first incremental event"
                    .to_owned(),
            );
        }
        Metadata {
            environment: self.environment.unwrap_or_default(),
            chunk_count: self.timestamp_list.len() as u64,
            timestamp_list: self.timestamp_list,
            event_count: self.event_count,
            first_event_timestamp: self.min_ts,
            last_event_timestamp: self.max_ts,
            duration_ms,
            full_snapshot_count: self.full_snapshot_count,
            urls: self.urls,
            click_count: self.click_count,
            replayable,
            insights,
            backwards_timestamps: self.backwards_timestamps,
            duplicate_chunks: self.duplicate_chunks,
            duplicate_events: self.duplicate_events,
            compacted_events: self.compacted_events,
            redaction,
            size,
            warnings,
        }
    }
}

/// Play order: by timestamp, ties by position in the array.
fn before(a: PlayAt, b: PlayAt) -> bool {
    a.0 < b.0 || (a.0 == b.0 && a.1 < b.1)
}

fn as_f64(n: &Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

/// `last - first` (never negative: they are the min and max), an integer when both are
/// integers (rrweb's usual case).
fn difference(first: &Number, last: &Number) -> Number {
    if let (Some(a), Some(b)) = (first.as_i64(), last.as_i64()) {
        return Number::from(b.saturating_sub(a).max(0));
    }
    let d = (as_f64(last) - as_f64(first)).max(0.0);
    Number::from_f64(d).unwrap_or_else(|| Number::from(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::parse;

    #[test]
    fn sizes_are_counted_by_type_and_source_and_the_browser_limit_is_flagged() {
        let text = r#"{"session_guid":"g","session_data":[{"type":3,"timestamp":1,"data":{"source":0,"adds":[]}},{"type":3,"timestamp":2,"data":{"source":1,"positions":[]}},{"type":9,"timestamp":3}],"environment":"e"}"#;
        let chunk = parse(text).unwrap();
        let mut m = MetadataBuilder::default();
        m.sized(&chunk.events[0], 100);
        m.sized(&chunk.events[1], 10);
        m.sized(&chunk.events[2], 1);
        let size = m.finish(None, None).size;
        assert_eq!(size.event_bytes, 111);
        assert_eq!(size.bytes_by_type["IncrementalSnapshot"], 110);
        assert_eq!(
            size.bytes_by_type["9"], 1,
            "an unnamed type is counted by number"
        );
        assert_eq!(size.bytes_by_source["Mutation"], 100);
        assert_eq!(size.bytes_by_source["MouseMove"], 10);
        assert_eq!(
            size.largest_event_type.as_deref(),
            Some("IncrementalSnapshot")
        );
        assert!(!size.too_big_for_browser);

        let mut m = MetadataBuilder::default();
        m.sized(&chunk.events[0], BROWSER_LOAD_LIMIT as usize + 1);
        let meta = m.finish(None, None);
        assert!(meta.size.too_big_for_browser);
        assert!(
            meta.warnings.iter().any(|w| w.contains("too big")),
            "{:?}",
            meta.warnings
        );
    }
}
