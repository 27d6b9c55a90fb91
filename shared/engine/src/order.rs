//! The order a session's chunks are stitched in, and which of them are left out: the one
//! place that answers "where does ordering happen".
//!
//! 1. **Sort** by upload time: [`ChunkName`]'s `Ord` (the parsed instant, ties by the full
//!    object name), so the order is total and the same on every run and every backend.
//! 2. **One per object**: an object re-uploaded under its name (a new generation) is one
//!    chunk, read once as it is now ([`in_stitch_order`]).
//! 3. **One per payload**: a chunk whose `session_data` repeats an earlier chunk's byte for
//!    byte (an SDK retry under a new name) is skipped ([`Payloads`]); the stitcher asks as
//!    each chunk arrives, since only its bytes tell.
//! 4. **One per event**: an SDK that re-sends a buffer whose first upload did succeed makes
//!    a chunk that repeats some of the previous chunks' events, sometimes re-serialized
//!    (other key order, `1.0` for `1`), so byte-identical chunk dedup misses it. An event
//!    identical to one of the recent chunks' (same type, same timestamp, the same JSON
//!    value) is skipped ([`Recent`]). Events within one chunk are never compared: one SDK
//!    buffer does not repeat itself, so two equal events there are two events.

use std::collections::{HashSet, VecDeque};

use serde_json::Value;

use crate::chunk::Chunk;
use crate::event::Event;
use crate::name::ChunkName;

/// Sorts a session's chunks into stitch order and keeps one per object. `key` gives each
/// chunk's name and where it is stored (a bucket: the same name in two places is two
/// objects); of several entries for one object the first in the input is kept.
pub fn in_stitch_order<T>(mut chunks: Vec<T>, key: impl Fn(&T) -> (&ChunkName, &str)) -> Vec<T> {
    // Stable, so "first in the input" survives the sort.
    chunks.sort_by(|a, b| {
        let ((na, pa), (nb, pb)) = (key(a), key(b));
        na.cmp(nb).then_with(|| pa.cmp(pb))
    });
    chunks.dedup_by(|later, earlier| key(later) == key(earlier));
    chunks
}

/// The payloads already stitched in a session, by hash: 16 bytes per chunk, never the
/// events themselves.
#[derive(Debug, Default)]
pub struct Payloads {
    seen: HashSet<u128>,
}

impl Payloads {
    /// True the first time a payload is offered, false for a byte-identical repeat.
    pub fn first_time(&mut self, chunk: &Chunk<'_>) -> bool {
        self.seen.insert(chunk.data_hash())
    }
}

/// The events of the last few chunks stitched, kept to recognize an overlapping retry.
///
/// Bounded: at most [`Recent::WINDOW_BYTES`] of event text (the newest chunks first; a
/// chunk larger than that is remembered by hash only), so memory is a few MiB whatever the
/// session's size. A re-serialized repeat of an event outside the window is not caught;
/// a byte-identical one still is, by hash, for the chunks in the window.
#[derive(Debug, Default)]
pub struct Recent {
    chunks: VecDeque<Window>,
    bytes: usize,
    /// The latest timestamp stitched: an event after it repeats nothing.
    latest: Option<f64>,
}

/// One remembered event: timestamp, type, xxh3 of its bytes, and its span in the window's
/// text (`None` when it did not fit).
type Entry = (f64, i64, u64, Option<(usize, usize)>);

/// One stitched chunk's events: their text side by side, and an index sorted by
/// (timestamp, type) for the lookup.
#[derive(Debug, Default)]
struct Window {
    text: String,
    index: Vec<Entry>,
}

impl Recent {
    /// The most event text kept.
    pub const WINDOW_BYTES: usize = 8 << 20;

    /// Whether `event` is identical to an event of a recent chunk.
    pub fn repeats(&self, event: &Event<'_>) -> bool {
        let ts = timestamp(event);
        if self.latest.is_none_or(|latest| ts > latest) {
            return false;
        }
        let hash = xxhash_rust::xxh3::xxh3_64(event.raw.as_bytes());
        let mut parsed: Option<Option<Value>> = None;
        for window in &self.chunks {
            let key = |e: &Entry| (e.0, e.1);
            let from = window.index.partition_point(|e| key(e) < (ts, event.kind));
            for &(t, kind, h, span) in &window.index[from..] {
                if (t, kind) != (ts, event.kind) {
                    break;
                }
                if h == hash {
                    return true;
                }
                let Some((start, end)) = span else { continue };
                // Not the same bytes: the same value, re-serialized? Parsed only now, for an
                // event whose type and timestamp already match one in the window.
                let new = parsed.get_or_insert_with(|| serde_json::from_str(event.raw).ok());
                let old = serde_json::from_str::<Value>(&window.text[start..end]).ok();
                if let (Some(new), Some(old)) = (new.as_ref(), old) {
                    if same_value(new, &old) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Remembers a stitched chunk's events (call after all of them were pushed).
    pub fn remember<'a>(&mut self, events: impl IntoIterator<Item = &'a Event<'a>>) {
        let mut window = self.spare();
        for event in events {
            let ts = timestamp(event);
            self.latest = Some(self.latest.map_or(ts, |l| l.max(ts)));
            let hash = xxhash_rust::xxh3::xxh3_64(event.raw.as_bytes());
            let span = (window.text.len() + event.raw.len() <= Self::WINDOW_BYTES).then(|| {
                let start = window.text.len();
                window.text.push_str(event.raw);
                (start, window.text.len())
            });
            window.index.push((ts, event.kind, hash, span));
        }
        window
            .index
            .sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        self.bytes += window.text.len();
        self.chunks.push_front(window);
        while self.bytes > Self::WINDOW_BYTES && self.chunks.len() > 1 {
            let old = self.chunks.pop_back().expect("more than one");
            self.bytes -= old.text.len();
        }
    }

    /// An empty window, reusing the oldest one's buffers once the window is full.
    fn spare(&mut self) -> Window {
        if self.chunks.len() < 4 {
            return Window::default();
        }
        let mut old = self.chunks.pop_back().expect("four chunks");
        self.bytes -= old.text.len();
        old.text.clear();
        old.index.clear();
        old
    }
}

fn timestamp(event: &Event<'_>) -> f64 {
    event.timestamp.as_f64().unwrap_or(f64::NAN)
}

/// JSON equality as a player sees it: objects by their members whatever the order, numbers
/// by value (`1.0` is `1`).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(x), Some(y)) => x == y,
            _ => x.as_f64() == y.as_f64(),
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_value(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_value(v, w)))
        }
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::parse;

    fn name(object: &str) -> ChunkName {
        ChunkName::parse(object).unwrap()
    }

    #[test]
    fn sorts_by_instant_and_keeps_one_per_object() {
        let chunks = vec![
            (name("2025-05-02T12:00:02Z.json"), "b", 1),
            (name("2025-05-02T14:00:00+0200.json"), "b", 2), // 12:00:00Z
            (name("2025-05-02T12:00:01Z.json"), "b", 3),
            (name("2025-05-02T12:00:02Z.json"), "b", 4), // the same object again
            (name("2025-05-02T12:00:02Z.json"), "a", 5), // the same name elsewhere
        ];
        let ordered = in_stitch_order(chunks, |(n, place, _)| (n, place));
        let got: Vec<i32> = ordered.iter().map(|(_, _, id)| *id).collect();
        assert_eq!(got, [2, 3, 5, 1]);
    }

    #[test]
    fn a_repeated_payload_is_seen_once() {
        let text = |env: &str, ts: u32| {
            format!(
                r#"{{"session_guid":"g","session_data":[{{"type":3,"timestamp":{ts}}}],"environment":"{env}"}}"#
            )
        };
        let (a, b, c) = (text("p", 1), text("q", 1), text("p", 2));
        let mut payloads = Payloads::default();
        assert!(payloads.first_time(&parse(&a).unwrap()));
        assert!(
            !payloads.first_time(&parse(&b).unwrap()),
            "same events, other envelope"
        );
        assert!(payloads.first_time(&parse(&c).unwrap()));
    }
}
