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

use std::collections::HashSet;

use crate::chunk::Chunk;
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
