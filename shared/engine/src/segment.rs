//! Segmented output: the stitched events cut into small gzip files a player can load one by
//! one, and the manifest that lists them.
//!
//! A browser cannot open a session of a few hundred MB as one JSON document (see
//! [`crate::metadata::BROWSER_LOAD_LIMIT`]); real players load blocks progressively and seek
//! from the nearest FullSnapshot. So beside the single file a stitch can write the same
//! events, in the same order and as the same bytes, as a series of segments, each a gzip'd
//! JSON array, cut where a player can start: before an rrweb checkout (a Meta, which the
//! recorder follows with a FullSnapshot) once a segment has some weight, and anywhere at a
//! byte or time cap so no segment grows past what a page loads in one go, but never between
//! a Meta and the FullSnapshot after it: those two start a seekable segment whatever their
//! size (a snapshot of a page with inlined images and styles reaches tens of MB, past any
//! sensible cap), else no segment would be seekable at all.
//!
//! Memory is one open segment's compressed bytes plus the finished segments the caller has
//! not uploaded yet: bounded by the byte cap, whatever the session's size.

use std::collections::VecDeque;
use std::io::{self, Write};

use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;
use serde_json::Number;

use crate::metadata::Metadata;
use crate::rrweb::event_type;

/// Where segments are cut.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SegmentLimits {
    /// A segment holding at least this many bytes ends before the next checkout (Meta).
    pub checkout_bytes: u64,
    /// A segment ends before the event that would take it past this many bytes (an event
    /// larger than the cap gets a segment of its own).
    pub max_bytes: u64,
    /// A segment ends before an event more than this many milliseconds after its first.
    pub max_span_ms: f64,
}

impl Default for SegmentLimits {
    fn default() -> Self {
        SegmentLimits {
            checkout_bytes: 1 << 20,
            max_bytes: 8 << 20,
            max_span_ms: 300_000.0,
        }
    }
}

impl SegmentLimits {
    /// Limits with `max_bytes` as the byte cap; checkouts cut at an eighth of it (1 MiB of
    /// the default 8 MiB), so a small cap still cuts at checkouts first.
    pub fn with_max_bytes(max_bytes: u64) -> Self {
        let max_bytes = max_bytes.max(1);
        SegmentLimits {
            checkout_bytes: (max_bytes / 8).max(1),
            max_bytes,
            ..SegmentLimits::default()
        }
    }
}

/// What the manifest says of one segment.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SegmentInfo {
    /// The segment's object, relative to the manifest's folder: `<generation>/NNNNN.json.gz`.
    pub path: String,
    /// The earliest and latest event timestamps inside the segment.
    pub first_timestamp: Number,
    pub last_timestamp: Number,
    pub events: u64,
    /// Bytes of the JSON array, uncompressed.
    pub bytes: u64,
    /// Bytes stored: the gzip stream.
    pub stored_bytes: u64,
    /// Starts with a Meta then a FullSnapshot: a player can start here without anything
    /// before it.
    pub seekable: bool,
}

/// One finished segment: its gzip'd body and what the manifest says of it.
#[derive(Debug)]
pub struct Segment {
    pub index: u32,
    pub body: Vec<u8>,
    pub info: SegmentInfo,
}

/// `<session_guid>/manifest.json`: every segment in order, and the session's metadata.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Manifest<'a> {
    pub format: u32,
    pub session_guid: &'a str,
    pub generation: &'a str,
    pub segments: &'a [SegmentInfo],
    /// The session's console entries ([`crate::console`]), when it logged any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console: Option<&'a crate::console::ConsoleInfo>,
    pub metadata: &'a Metadata,
}

/// The manifest format this engine writes.
pub const MANIFEST_FORMAT: u32 = 1;

/// A segment's object name inside the session's folder.
pub fn segment_path(generation: &str, index: u32) -> String {
    format!("{generation}/{index:05}.json.gz")
}

/// The segment being filled.
struct Open {
    gz: GzEncoder<Vec<u8>>,
    events: u64,
    /// JSON bytes written: the brackets, the commas and the events.
    bytes: u64,
    min: (f64, Number),
    max: (f64, Number),
    /// The first event's time, for the span cap.
    start: f64,
    first_kind: i64,
    second_kind: Option<i64>,
}

/// Cuts a stream of events into gzip'd segments; see the module docs.
pub struct Segmenter {
    limits: SegmentLimits,
    generation: String,
    open: Option<Open>,
    /// A Meta held back until the next event shows whether a FullSnapshot follows it, so
    /// the two are placed (and the cut before them decided) together.
    meta: Option<(Number, Vec<u8>)>,
    next_index: u32,
    finished: VecDeque<Segment>,
}

impl Segmenter {
    /// `generation` names this stitch's set of segments (see [`segment_path`]).
    pub fn new(limits: SegmentLimits, generation: impl Into<String>) -> Self {
        Segmenter {
            limits,
            generation: generation.into(),
            open: None,
            meta: None,
            next_index: 0,
            finished: VecDeque::new(),
        }
    }

    pub fn generation(&self) -> &str {
        &self.generation
    }

    /// Appends one event's final bytes (compact JSON), cutting first if the limits say so.
    pub fn event(&mut self, kind: i64, timestamp: &Number, bytes: &[u8]) -> io::Result<()> {
        if let Some((meta_ts, meta)) = self.meta.take() {
            if kind == event_type::FULL_SNAPSHOT {
                // A checkout: one cut decision for the pair, then no cut between them.
                self.cut_before(event_type::META, &meta_ts, meta.len() + 1 + bytes.len())?;
                self.append(event_type::META, &meta_ts, &meta)?;
                return self.append(kind, timestamp, bytes);
            }
            self.place(event_type::META, &meta_ts, &meta)?;
        }
        if kind == event_type::META {
            self.meta = Some((timestamp.clone(), bytes.to_vec()));
            return Ok(());
        }
        self.place(kind, timestamp, bytes)
    }

    /// One event on its own: cut if the limits say so, then write it.
    fn place(&mut self, kind: i64, timestamp: &Number, bytes: &[u8]) -> io::Result<()> {
        self.cut_before(kind, timestamp, bytes.len())?;
        self.append(kind, timestamp, bytes)
    }

    /// Ends the open segment if `len` more bytes, starting with an event of `kind` at
    /// `timestamp`, should not go into it.
    fn cut_before(&mut self, kind: i64, timestamp: &Number, len: usize) -> io::Result<()> {
        let Some(open) = &self.open else {
            return Ok(());
        };
        let ts = timestamp.as_f64().unwrap_or(0.0);
        let checkout = kind == event_type::META && open.bytes >= self.limits.checkout_bytes;
        let full = open.bytes + 1 + len as u64 + 1 > self.limits.max_bytes;
        let long = ts - open.start > self.limits.max_span_ms;
        if checkout || full || long {
            self.cut()?;
        }
        Ok(())
    }

    /// Writes one event into the open segment, opening one if none is.
    fn append(&mut self, kind: i64, timestamp: &Number, bytes: &[u8]) -> io::Result<()> {
        let ts = timestamp.as_f64().unwrap_or(0.0);
        match &mut self.open {
            Some(open) => {
                open.gz.write_all(b",")?;
                open.gz.write_all(bytes)?;
                open.bytes += 1 + bytes.len() as u64;
                open.events += 1;
                if open.second_kind.is_none() {
                    open.second_kind = Some(kind);
                }
                if ts < open.min.0 {
                    open.min = (ts, timestamp.clone());
                }
                if ts > open.max.0 {
                    open.max = (ts, timestamp.clone());
                }
            }
            None => {
                let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
                gz.write_all(b"[")?;
                gz.write_all(bytes)?;
                self.open = Some(Open {
                    gz,
                    events: 1,
                    bytes: 1 + bytes.len() as u64,
                    min: (ts, timestamp.clone()),
                    max: (ts, timestamp.clone()),
                    start: ts,
                    first_kind: kind,
                    second_kind: None,
                });
            }
        }
        Ok(())
    }

    /// The next finished segment, oldest first, for the caller to store.
    pub fn take(&mut self) -> Option<Segment> {
        self.finished.pop_front()
    }

    /// Ends the open segment, if any: call once after the last event, then [`Self::take`]
    /// the rest.
    pub fn finish(&mut self) -> io::Result<()> {
        if let Some((ts, meta)) = self.meta.take() {
            self.place(event_type::META, &ts, &meta)?;
        }
        self.cut()
    }

    fn cut(&mut self) -> io::Result<()> {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        open.gz.write_all(b"]")?;
        let body = open.gz.finish()?;
        let index = self.next_index;
        self.next_index += 1;
        let info = SegmentInfo {
            path: segment_path(&self.generation, index),
            first_timestamp: open.min.1,
            last_timestamp: open.max.1,
            events: open.events,
            bytes: open.bytes + 1,
            stored_bytes: body.len() as u64,
            seekable: open.first_kind == event_type::META
                && open.second_kind == Some(event_type::FULL_SNAPSHOT),
        };
        self.finished.push_back(Segment { index, body, info });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use serde_json::Value;
    use std::io::Read;

    fn ev(kind: i64, ts: i64, pad: usize) -> String {
        format!(
            r#"{{"type":{kind},"timestamp":{ts},"data":{{"p":"{}"}}}}"#,
            "x".repeat(pad)
        )
    }

    fn run(limits: SegmentLimits, events: &[(i64, i64, usize)]) -> Vec<(SegmentInfo, Vec<Value>)> {
        let mut s = Segmenter::new(limits, "g1");
        let mut out = Vec::new();
        for &(kind, ts, pad) in events {
            s.event(kind, &Number::from(ts), ev(kind, ts, pad).as_bytes())
                .unwrap();
            while let Some(seg) = s.take() {
                out.push(seg);
            }
        }
        s.finish().unwrap();
        while let Some(seg) = s.take() {
            out.push(seg);
        }
        out.into_iter()
            .map(|seg| {
                let mut text = String::new();
                GzDecoder::new(&seg.body[..])
                    .read_to_string(&mut text)
                    .unwrap();
                assert_eq!(
                    seg.info.bytes,
                    text.len() as u64,
                    "bytes is the JSON length"
                );
                assert_eq!(seg.info.stored_bytes, seg.body.len() as u64);
                let v: Vec<Value> = serde_json::from_str(&text).unwrap();
                assert_eq!(seg.info.events, v.len() as u64);
                (seg.info, v)
            })
            .collect()
    }

    const META: i64 = event_type::META;
    const FULL: i64 = event_type::FULL_SNAPSHOT;
    const INC: i64 = event_type::INCREMENTAL_SNAPSHOT;

    #[test]
    fn cuts_before_a_checkout_once_a_segment_has_weight() {
        let limits = SegmentLimits {
            checkout_bytes: 300,
            max_bytes: 1 << 20,
            max_span_ms: 1e9,
        };
        let segs = run(
            limits,
            &[
                (META, 1, 0),
                (FULL, 2, 100),
                (INC, 3, 0),
                // Under 300 bytes so far: a checkout here does not cut.
                (META, 4, 0),
                (FULL, 5, 100),
                (INC, 6, 0),
                // Now over: cut.
                (META, 7, 0),
                (FULL, 8, 0),
                (INC, 9, 0),
            ],
        );
        let counts: Vec<u64> = segs.iter().map(|(i, _)| i.events).collect();
        assert_eq!(counts, [6, 3]);
        assert!(segs.iter().all(|(i, _)| i.seekable));
        assert_eq!(segs[1].0.path, "g1/00001.json.gz");
        assert_eq!(segs[1].0.first_timestamp, Number::from(7));
        assert_eq!(segs[1].1[0]["type"], 4);
    }

    #[test]
    fn a_byte_cap_cuts_anywhere_and_the_next_segment_is_not_seekable() {
        let limits = SegmentLimits {
            checkout_bytes: 1 << 20,
            max_bytes: 300,
            max_span_ms: 1e9,
        };
        let mut events = vec![(META, 1, 0), (FULL, 2, 50)];
        events.extend((3..20).map(|t| (INC, t, 40)));
        let segs = run(limits, &events);
        assert!(segs.len() > 2, "{}", segs.len());
        assert!(segs[0].0.seekable);
        assert!(segs[1..].iter().all(|(i, _)| !i.seekable));
        assert!(segs.iter().all(|(i, _)| i.bytes <= 300));
        let total: u64 = segs.iter().map(|(i, _)| i.events).sum();
        assert_eq!(total, events.len() as u64, "no event lost or repeated");
        // Order is kept across segments.
        let times: Vec<i64> = segs
            .iter()
            .flat_map(|(_, v)| v.iter().map(|e| e["timestamp"].as_i64().unwrap()))
            .collect();
        assert_eq!(times, (1..20).collect::<Vec<_>>());
    }

    #[test]
    fn an_event_over_the_cap_gets_a_segment_of_its_own() {
        let limits = SegmentLimits {
            checkout_bytes: 1 << 20,
            max_bytes: 100,
            max_span_ms: 1e9,
        };
        let segs = run(limits, &[(INC, 1, 0), (INC, 2, 500), (INC, 3, 0)]);
        let counts: Vec<u64> = segs.iter().map(|(i, _)| i.events).collect();
        assert_eq!(counts, [1, 1, 1]);
    }

    #[test]
    fn a_time_cap_cuts_and_times_are_min_and_max() {
        let limits = SegmentLimits {
            checkout_bytes: 1 << 20,
            max_bytes: 1 << 20,
            max_span_ms: 1000.0,
        };
        let segs = run(
            limits,
            &[
                (META, 500, 0),
                (FULL, 400, 0),
                (INC, 900, 0),
                (INC, 1600, 0),
            ],
        );
        let counts: Vec<u64> = segs.iter().map(|(i, _)| i.events).collect();
        assert_eq!(counts, [3, 1]);
        assert_eq!(segs[0].0.first_timestamp, Number::from(400));
        assert_eq!(segs[0].0.last_timestamp, Number::from(900));
    }

    #[test]
    fn a_meta_and_its_full_snapshot_stay_together_whatever_the_caps() {
        // A snapshot over the byte cap, arriving in a segment that already holds events (under
        // the checkout weight), and again after a long gap: each checkout still starts a
        // segment of its own that a player can seek to.
        let limits = SegmentLimits {
            checkout_bytes: 1 << 20,
            max_bytes: 300,
            max_span_ms: 1000.0,
        };
        let segs = run(
            limits,
            &[
                (META, 1, 0),
                (FULL, 2, 1000),
                (INC, 3, 0),
                (META, 4, 0),
                (FULL, 5, 1000),
                (INC, 6, 0),
                (META, 7, 0),
                (FULL, 5000, 1000),
                (INC, 5001, 0),
            ],
        );
        let kinds: Vec<Vec<i64>> = segs
            .iter()
            .map(|(_, v)| v.iter().map(|e| e["type"].as_i64().unwrap()).collect())
            .collect();
        assert_eq!(
            kinds,
            [
                vec![META, FULL],
                vec![INC],
                vec![META, FULL],
                vec![INC],
                vec![META, FULL],
                vec![INC]
            ],
            "a Meta was cut from its FullSnapshot"
        );
        assert_eq!(segs.iter().filter(|(i, _)| i.seekable).count(), 3);
    }

    #[test]
    fn a_meta_without_a_snapshot_is_an_ordinary_event() {
        let limits = SegmentLimits {
            checkout_bytes: 1,
            max_bytes: 1 << 20,
            max_span_ms: 1e9,
        };
        let segs = run(
            limits,
            &[(INC, 1, 0), (META, 2, 0), (INC, 3, 0), (META, 4, 0)],
        );
        let counts: Vec<u64> = segs.iter().map(|(i, _)| i.events).collect();
        assert_eq!(counts, [1, 2, 1], "checkouts cut, the last Meta is kept");
        assert!(segs.iter().all(|(i, _)| !i.seekable));
    }

    #[test]
    fn nothing_in_nothing_out() {
        assert!(run(SegmentLimits::default(), &[]).is_empty());
    }
}
