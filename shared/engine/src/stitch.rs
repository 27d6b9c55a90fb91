//! The stitch: chunks in, one compact session document out, streamed.
//!
//! The output is written as chunks arrive:
//! `{"session_guid":…,"rrweb_data":[` then every event's bytes, comma-separated, then
//! `],"metadata":{…}}`. Metadata goes last precisely so nothing has to be held back: memory
//! is one chunk (the caller's buffer) plus O(chunks) of bookkeeping, whatever the session's
//! size. Events are copied as the bytes they arrived as, so the output is the same JSON value
//! as a parse-and-concatenate of the inputs, without ever building a tree.
//!
//! The caller hands chunks over in order (see [`crate::order`]); the
//! stitcher only decides what to do with each: stitch it, skip it as a duplicate upload, or
//! refuse it as belonging to another session.

use std::io::{self, Write};
use std::sync::Arc;

use crate::chunk::Chunk;
use crate::compact::{compact_into, is_compact};
use crate::console::{ConsoleFile, ConsoleLog};
use crate::guid::SessionGuid;
use crate::insights::InsightsBuilder;
use crate::metadata::{Metadata, MetadataBuilder};
use crate::name::ChunkName;
use crate::order::{Payloads, Recent};
use crate::redact::{Redacted, Redactor, Rules};
use crate::segment::{Segment, Segmenter};

/// What became of one chunk handed to [`Stitcher::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Stitched,
    /// Same `session_data` bytes as an earlier chunk: skipped, listed in the metadata.
    Duplicate,
    /// The chunk names another session (an object replaced since it was indexed): skipped
    /// with a warning.
    ForeignSession,
}

/// Writes one session's stitched document into `W` as chunks are pushed.
pub struct Stitcher<W: Write> {
    out: W,
    guid: SessionGuid,
    wrote_event: bool,
    payloads: Payloads,
    recent: Recent,
    /// Reused for events that need compacting.
    scratch: Vec<u8>,
    meta: MetadataBuilder,
    /// What happened in the session, fed every event written; `None` when turned off.
    insights: Option<InsightsBuilder>,
    /// Also cuts the written events into segments, when asked to.
    segments: Option<Segmenter>,
    /// Also extracts the console entries, when asked to (with segments, beside them).
    console: Option<ConsoleLog>,
    /// Set by [`Stitcher::with_redaction`]: applied to each event before it is written.
    redactor: Option<Redactor>,
}

impl<W: Write> Stitcher<W> {
    /// Starts the document; the header is written at once.
    pub fn new(mut out: W, guid: SessionGuid) -> io::Result<Self> {
        out.write_all(b"{\"session_guid\":")?;
        serde_json::to_writer(&mut out, guid.as_str())?;
        out.write_all(b",\"rrweb_data\":[")?;
        Ok(Stitcher {
            out,
            guid,
            wrote_event: false,
            payloads: Payloads::default(),
            recent: Recent::default(),
            scratch: Vec::new(),
            meta: MetadataBuilder::default(),
            insights: Some(InsightsBuilder::default()),
            segments: None,
            console: None,
            redactor: None,
        })
    }

    /// Also writes every event into `segmenter`, as the same bytes as the single document.
    pub fn with_segments(mut self, segmenter: Segmenter) -> Self {
        self.segments = Some(segmenter);
        self
    }

    /// Also extracts every console entry written into `console` ([`crate::console`]), from
    /// the event's final bytes.
    pub fn with_console(mut self, console: ConsoleLog) -> Self {
        self.console = Some(console);
        self
    }

    /// Applies `rules` to every event pushed from now on (call before the first push):
    /// dropped events are neither written nor counted, rewritten ones are written compact,
    /// and the metadata gains a `redaction` object with what was removed.
    pub fn with_redaction(mut self, rules: Arc<Rules>) -> Self {
        self.redactor = Some(Redactor::new(rules));
        self
    }

    /// Leaves `metadata.insights` out: the stitch then does only what it did before
    /// insights existed, which is how their cost is measured (`make bench`).
    pub fn without_insights(mut self) -> Self {
        self.insights = None;
        self
    }

    pub fn guid(&self) -> &SessionGuid {
        &self.guid
    }

    /// Appends a chunk's events. Chunks must come in [`crate::order::in_stitch_order`].
    pub fn push(&mut self, name: &ChunkName, chunk: &Chunk<'_>) -> io::Result<Pushed> {
        if chunk.session_guid != self.guid {
            self.meta.warn(format!(
                "chunk {name} belongs to session {}, not {}; skipped",
                chunk.session_guid, self.guid
            ));
            return Ok(Pushed::ForeignSession);
        }
        if !self.payloads.first_time(chunk) {
            self.meta.duplicate(name);
            return Ok(Pushed::Duplicate);
        }
        self.meta.chunk(name, chunk);
        for event in &chunk.events {
            if self.recent.repeats(event) {
                self.meta.repeated_event(name);
                continue;
            }
            let redacted = match &mut self.redactor {
                Some(redactor) => redactor.apply(event),
                None => Redacted::Unchanged(event.raw),
            };
            let text = match &redacted {
                Redacted::Unchanged(raw) => *raw,
                Redacted::Replaced(text) => text.as_str(),
                Redacted::Dropped => continue,
            };
            self.meta.event(name, event);
            if let Some(insights) = &mut self.insights {
                insights.event(event);
            }
            if self.wrote_event {
                self.out.write_all(b",")?;
            }
            // The event's final bytes: as it arrived (or as redaction rewrote it), compact.
            let bytes: &[u8] = if is_compact(text) {
                text.as_bytes()
            } else {
                self.scratch.clear();
                compact_into(text, &mut self.scratch);
                self.meta.compacted(name);
                &self.scratch
            };
            self.out.write_all(bytes)?;
            self.meta.sized(event, bytes.len());
            if let Some(segments) = &mut self.segments {
                segments.event(event.kind, &event.timestamp, bytes)?;
            }
            if let Some(console) = &mut self.console {
                console.event(event.kind, &event.timestamp, bytes)?;
            }
            self.wrote_event = true;
        }
        self.recent.remember(&chunk.events);
        Ok(Pushed::Stitched)
    }

    /// Adds a warning that only the caller can know (a chunk the index listed is gone, one
    /// that no longer validates).
    pub fn warn(&mut self, warning: String) {
        self.meta.warn(warning);
    }

    /// The writer, for draining what has been written so far into a streaming upload.
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// The next finished segment, to store before more are cut (memory stays bounded only
    /// if the caller drains them as it goes).
    pub fn take_segment(&mut self) -> Option<Segment> {
        self.segments.as_mut()?.take()
    }

    /// Ends the last segment; [`Self::take_segment`] then hands it over. Call after the last
    /// chunk, before [`Self::finish`].
    pub fn end_segments(&mut self) -> io::Result<()> {
        match &mut self.segments {
            Some(segments) => segments.finish(),
            None => Ok(()),
        }
    }

    /// The console file, once the last chunk is pushed: `None` when not asked for or when
    /// the session logged nothing.
    pub fn finish_console(&mut self) -> io::Result<Option<ConsoleFile>> {
        match self.console.take() {
            Some(console) => console.finish(),
            None => Ok(None),
        }
    }

    /// Closes the document and returns the writer with the session's metadata.
    pub fn finish(mut self) -> io::Result<(W, Metadata)> {
        let redaction = self.redactor.map(|r| r.counts().clone());
        let meta = self.meta.finish(redaction, self.insights);
        self.out.write_all(b"],\"metadata\":")?;
        serde_json::to_writer(&mut self.out, &meta)?;
        self.out.write_all(b"}")?;
        Ok((self.out, meta))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::parse;
    use serde_json::{Number, Value};

    fn name(ts: &str) -> ChunkName {
        ChunkName::parse(&format!("{ts}.json")).unwrap()
    }

    fn body(guid: &str, env: &str, events: &str) -> String {
        format!(r#"{{"session_guid":"{guid}","session_data":[{events}],"environment":"{env}"}}"#)
    }

    fn stitch(chunks: &[(&str, String)]) -> (String, Metadata) {
        let guid = SessionGuid::parse("g").unwrap();
        let mut s = Stitcher::new(Vec::new(), guid).unwrap();
        for (ts, text) in chunks {
            s.push(&name(ts), &parse(text).unwrap()).unwrap();
        }
        let (out, meta) = s.finish().unwrap();
        (String::from_utf8(out).unwrap(), meta)
    }

    const META: &str = r#"{"type":4,"data":{"href":"https://a.test/x"},"timestamp":100}"#;
    const FULL: &str = r#"{"type":2,"data":{"node":{}},"timestamp":101}"#;

    #[test]
    fn output_is_compact_and_in_field_order() {
        let (out, _) = stitch(&[
            (
                "2025-05-02T12:00:00Z",
                body("g", "prod", &format!("{META},{FULL}")),
            ),
            (
                "2025-05-02T12:00:01Z",
                body(
                    "g",
                    "prod",
                    r#"{"type":3,"timestamp":150,"data":{"source":2,"type":2}}"#,
                ),
            ),
        ]);
        let expected_start = format!(
            r#"{{"session_guid":"g","rrweb_data":[{META},{FULL},{{"type":3,"timestamp":150,"data":{{"source":2,"type":2}}}}],"metadata":{{"environment":"prod","timestamp_list":["2025-05-02T12:00:00Z","2025-05-02T12:00:01Z"],"chunk_count":2,"event_count":3,"first_event_timestamp":100,"last_event_timestamp":150,"duration_ms":50,"full_snapshot_count":1,"urls":["https://a.test/x"],"click_count":1,"replayable":true,"insights":{{"click_count":1,"keypress_count":0,"mouse_activity_count":1,"active_ms":1,"inactive_ms":49,"console_log_count":0,"console_warn_count":0,"console_error_count":0,"rage_click_count":0,"dead_click_count":0,"first_url":"https://a.test/x","markers":[]}},"backwards_timestamps":0,"duplicate_chunks":[],"duplicate_events":0,"compacted_events":0,"size":{{"event_bytes":{},"bytes_by_type":{{"FullSnapshot":{},"IncrementalSnapshot":55,"Meta":{}}},"bytes_by_source":{{"MouseInteraction":55}},"largest_event_bytes":{},"largest_event_type":"Meta","too_big_for_browser":false}},"warnings":[]}}}}"#,
            META.len() + FULL.len() + 55,
            FULL.len(),
            META.len(),
            META.len()
        );
        assert_eq!(out, expected_start);
        let _: Value = serde_json::from_str(&out).unwrap();
    }

    #[test]
    fn empty_session_is_valid_json() {
        let (out, meta) = stitch(&[("2025-05-02T12:00:00Z", body("g", "e", ""))]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["rrweb_data"], Value::Array(vec![]));
        assert_eq!(meta.event_count, 0);
        assert!(!meta.replayable);
    }

    #[test]
    fn duplicates_are_skipped_and_listed() {
        let events = format!("{META},{FULL}");
        let (out, meta) = stitch(&[
            ("2025-05-02T12:00:00Z", body("g", "prod", &events)),
            ("2025-05-02T12:00:05Z", body("g", "prod", &events)),
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["rrweb_data"].as_array().unwrap().len(), 2);
        assert_eq!(meta.timestamp_list, ["2025-05-02T12:00:00Z"]);
        assert_eq!(meta.duplicate_chunks, ["2025-05-02T12:00:05Z.json"]);
        assert_eq!(meta.chunk_count, 1);
        assert_eq!(meta.warnings.len(), 1, "{:?}", meta.warnings);
    }

    #[test]
    fn environment_mismatch_keeps_the_first_and_warns() {
        let (_, meta) = stitch(&[
            ("2025-05-02T12:00:00Z", body("g", "prod", META)),
            ("2025-05-02T12:00:01Z", body("g", "staging", FULL)),
        ]);
        assert_eq!(meta.environment, "prod");
        assert!(
            meta.warnings.iter().any(|w| w.contains("staging")),
            "{:?}",
            meta.warnings
        );
    }

    #[test]
    fn backwards_time_is_counted_and_times_are_min_and_max() {
        let (_, meta) = stitch(&[
            (
                "2025-05-02T12:00:00Z",
                body("g", "e", &format!("{META},{FULL}")),
            ),
            (
                "2025-05-02T12:00:01Z",
                body(
                    "g",
                    "e",
                    r#"{"type":3,"timestamp":50},{"type":3,"timestamp":400},{"type":3,"timestamp":300}"#,
                ),
            ),
        ]);
        assert!(
            meta.warnings.iter().any(|w| w.contains("backwards")),
            "{:?}",
            meta.warnings
        );
        // Across the boundary (101 -> 50) and inside the chunk (400 -> 300).
        assert_eq!(meta.backwards_timestamps, 2);
        assert_eq!(meta.first_event_timestamp, Some(Number::from(50)));
        assert_eq!(meta.last_event_timestamp, Some(Number::from(400)));
        assert_eq!(
            meta.duration_ms,
            Number::from(350),
            "the player's total time"
        );
    }

    #[test]
    fn replayable_is_judged_in_play_order() {
        let inc = |ts: u32| format!(r#"{{"type":3,"timestamp":{ts},"data":{{"source":1}}}}"#);
        let full = |ts: u32| format!(r#"{{"type":2,"data":{{"node":{{}}}},"timestamp":{ts}}}"#);
        let meta = |ts: u32| {
            format!(r#"{{"type":4,"data":{{"href":"https://a.test/x"}},"timestamp":{ts}}}"#)
        };
        let replayable = |events: Vec<String>| {
            let (_, m) = stitch(&[("2025-05-02T12:00:00Z", body("g", "e", &events.join(",")))]);
            m.replayable
        };
        assert!(replayable(vec![meta(100), full(101), inc(200)]));
        // Out of array order, in play order: the Replayer sorts, and rebuilds this fine.
        assert!(replayable(vec![meta(100), inc(200), full(101)]));
        assert!(replayable(vec![inc(200), full(101), meta(100)]));
        // Ties keep array order (a stable sort).
        assert!(replayable(vec![meta(100), full(100), inc(100)]));
        assert!(!replayable(vec![meta(100), inc(100), full(100)]));
        // An increment before any snapshot, a snapshot before the Meta, no Meta at all.
        assert!(!replayable(vec![meta(100), inc(150), full(300)]));
        assert!(!replayable(vec![full(100), meta(101), inc(200)]));
        assert!(!replayable(vec![full(101), inc(200)]));
        // A second checkout after the Meta rescues a snapshot that came too early.
        assert!(replayable(vec![full(99), meta(100), full(101), inc(200)]));
        let (_, no_meta) = stitch(&[(
            "2025-05-02T12:00:00Z",
            body("g", "e", &format!("{},{}", full(101), inc(200))),
        )]);
        assert!(no_meta
            .warnings
            .iter()
            .any(|w| w.contains("not replayable")));
    }

    #[test]
    fn pretty_printed_events_are_written_compact_and_counted() {
        let pretty = "{\n  \"type\": 3,\n  \"timestamp\": 150,\n  \"data\": {\"text\": \"a b\"}\n}";
        let (out, meta) = stitch(&[(
            "2025-05-02T12:00:00Z",
            body("g", "e", &format!("{META},{FULL},{pretty}")),
        )]);
        assert!(
            out.contains(r#"{"type":3,"timestamp":150,"data":{"text":"a b"}}"#),
            "{out}"
        );
        assert!(
            out.contains(META) && out.contains(FULL),
            "compact events are copied as is"
        );
        assert_eq!(meta.compacted_events, 1);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            serde_json::to_string(&v["rrweb_data"]).unwrap().len(),
            {
                let start = out.find("\"rrweb_data\":").unwrap() + "\"rrweb_data\":".len();
                let end = out.find(",\"metadata\"").unwrap();
                end - start
            },
            "the events array is exactly serde_json's compact form"
        );
    }

    #[test]
    fn a_byte_order_mark_is_stripped_with_a_warning() {
        let text = format!("\u{feff}{}", body("g", "e", &format!("{META},{FULL}")));
        let (out, meta) = stitch(&[("2025-05-02T12:00:00Z", text)]);
        assert_eq!(meta.event_count, 2);
        assert!(
            meta.warnings.iter().any(|w| w.contains("byte order mark")),
            "{:?}",
            meta.warnings
        );
        assert!(!out.contains('\u{feff}'));
    }

    /// An SDK re-sent its last buffer plus new events, re-serialized (other key order,
    /// `150.0` for `150`): the repeats are skipped, the new events kept.
    #[test]
    fn an_overlapping_retry_stitches_each_event_once() {
        let a1 = r#"{"type":3,"timestamp":150,"data":{"source":1,"x":1}}"#;
        let a2 = r#"{"type":3,"timestamp":160,"data":{"source":1,"x":2}}"#;
        let a2_again = r#"{"data":{"x":2.0,"source":1},"timestamp":160,"type":3}"#;
        let b = r#"{"type":3,"timestamp":170,"data":{"source":1,"x":3}}"#;
        // Same type and time as a2, other content: a distinct event, kept.
        let twin = r#"{"type":3,"timestamp":160,"data":{"source":1,"x":9}}"#;
        let (out, meta) = stitch(&[
            (
                "2025-05-02T12:00:00Z",
                body("g", "e", &format!("{META},{FULL},{a1},{a2}")),
            ),
            (
                "2025-05-02T12:00:05Z",
                body("g", "e", &format!("{a1},{a2_again},{twin},{b}")),
            ),
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        let events = v["rrweb_data"].as_array().unwrap();
        assert_eq!(events.len(), 6, "{out}");
        assert_eq!(meta.duplicate_events, 2);
        assert_eq!(meta.event_count, 6);
        assert!(out.contains(twin) && out.contains(b));
    }

    /// The segments hold exactly the single document's events, as the same bytes, in order.
    #[test]
    fn segments_are_the_document_cut_at_checkouts() {
        use crate::segment::{SegmentLimits, Segmenter};
        use flate2::read::GzDecoder;
        use std::io::Read;
        let pretty = "{ \"type\": 3, \"timestamp\": 150 }";
        let meta2 = r#"{"type":4,"data":{"href":"https://a.test/y"},"timestamp":300}"#;
        let full2 = r#"{"type":2,"data":{"node":{}},"timestamp":301}"#;
        let limits = SegmentLimits {
            checkout_bytes: 1,
            max_bytes: 1 << 20,
            max_span_ms: 1e9,
        };
        let guid = SessionGuid::parse("g").unwrap();
        let mut s = Stitcher::new(Vec::new(), guid)
            .unwrap()
            .with_segments(Segmenter::new(limits, "gen"));
        let chunks = [
            ("2025-05-02T12:00:00Z", format!("{META},{FULL},{pretty}")),
            ("2025-05-02T12:00:01Z", format!("{meta2},{full2}")),
        ];
        let mut segments = Vec::new();
        for (ts, events) in &chunks {
            s.push(&name(ts), &parse(&body("g", "e", events)).unwrap())
                .unwrap();
            segments.extend(std::iter::from_fn(|| s.take_segment()));
        }
        s.end_segments().unwrap();
        segments.extend(std::iter::from_fn(|| s.take_segment()));
        let (out, _) = s.finish().unwrap();
        let out = String::from_utf8(out).unwrap();
        assert_eq!(segments.len(), 2);
        assert!(segments.iter().all(|seg| seg.info.seekable));
        let texts: Vec<String> = segments
            .iter()
            .map(|seg| {
                let mut t = String::new();
                GzDecoder::new(&seg.body[..])
                    .read_to_string(&mut t)
                    .unwrap();
                t
            })
            .collect();
        let inner: Vec<&str> = texts.iter().map(|t| &t[1..t.len() - 1]).collect();
        let events = format!("[{}]", inner.join(","));
        let start = out.find("\"rrweb_data\":").unwrap() + "\"rrweb_data\":".len();
        let end = out.find(",\"metadata\"").unwrap();
        assert_eq!(events, out[start..end], "same bytes, same order");
        assert!(
            texts[0].contains(r#"{"type":3,"timestamp":150}"#),
            "compacted"
        );
    }

    #[test]
    fn urls_are_distinct_in_order_and_snapshots_counted() {
        let meta2 = r#"{"type":4,"data":{"href":"https://a.test/y"},"timestamp":300}"#;
        let events = format!("{META},{FULL},{meta2},{FULL},{META},{FULL}");
        let (_, meta) = stitch(&[("2025-05-02T12:00:00Z", body("g", "e", &events))]);
        assert_eq!(meta.urls, ["https://a.test/x", "https://a.test/y"]);
        assert_eq!(meta.full_snapshot_count, 3);
    }

    #[test]
    fn a_chunk_of_another_session_is_refused() {
        let guid = SessionGuid::parse("g").unwrap();
        let mut s = Stitcher::new(Vec::new(), guid).unwrap();
        let text = body("other", "e", META);
        let pushed = s.push(&name("2025-05-02T12:00:00Z"), &parse(&text).unwrap());
        assert_eq!(pushed.unwrap(), Pushed::ForeignSession);
        let (out, meta) = s.finish().unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v["rrweb_data"].as_array().unwrap().is_empty());
        assert_eq!(meta.warnings.len(), 2, "{:?}", meta.warnings);
    }

    #[test]
    fn redaction_drops_events_uncounted_and_reports_in_metadata() {
        let guid = SessionGuid::parse("g").unwrap();
        let rules = Rules::from_json(r#"{"mask_inputs": true, "drop_event_types": [5]}"#).unwrap();
        let mut s = Stitcher::new(Vec::new(), guid)
            .unwrap()
            .with_redaction(Arc::new(rules));
        let input = r#"{"type":3,"timestamp":150,"data":{"source":5,"text":"hunter2","id":7}}"#;
        let custom = r#"{"type":5,"timestamp":160,"data":{"tag":"t"}}"#;
        let text = body("g", "e", &format!("{META},{FULL},{input},{custom}"));
        s.push(&name("2025-05-02T12:00:00Z"), &parse(&text).unwrap())
            .unwrap();
        let (out, meta) = s.finish().unwrap();
        let out = String::from_utf8(out).unwrap();
        assert!(
            !out.contains("hunter2") && !out.contains("\"tag\""),
            "{out}"
        );
        assert!(
            out.contains(META) && out.contains(FULL),
            "untouched events are copied"
        );
        assert!(
            out.contains(
                r#"{"data":{"id":7,"source":5,"text":"*******"},"timestamp":150,"type":3}"#
            ),
            "{out}"
        );
        assert_eq!(meta.event_count, 3);
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["rrweb_data"].as_array().unwrap().len(), 3);
        assert_eq!(
            v["metadata"]["redaction"],
            serde_json::json!({"events_dropped": 1, "values_masked": 1, "values_masked_unknown_node": 0, "data_urls_replaced": 0, "events_unredactable": 0})
        );
        assert_eq!(
            meta.size.event_bytes as usize,
            out.find(",\"metadata\"").unwrap() - out.find('[').unwrap() - 2 - 2,
            "sizes count the bytes written (the array less its brackets and two commas)"
        );
    }

    #[test]
    fn float_timestamps_give_a_float_duration() {
        let (_, meta) = stitch(&[(
            "2025-05-02T12:00:00Z",
            body(
                "g",
                "e",
                r#"{"type":5,"timestamp":1.5},{"type":5,"timestamp":4}"#,
            ),
        )]);
        assert_eq!(meta.duration_ms.as_f64(), Some(2.5));
    }
}
