//! The set of node ids the redactor has seen since the last FullSnapshot, so that an event
//! naming an id it has not seen (one uploaded in a chunk stitched before the snapshot that
//! made the node) can be masked rather than trusted.
//!
//! rrweb numbers nodes from 1 upwards, densely, per snapshot, so a bitset is one bit per node
//! of the page (a 100,000-node DOM is 12.5 KiB); an id past [`DENSE`] or below 0, which only
//! a hostile writer produces, goes to a hash set instead of growing the bitset to it.

use std::collections::HashSet;

/// Ids below this are kept as bits: at most 2 MiB of them.
const DENSE: i64 = 1 << 24;

#[derive(Debug, Default)]
pub(crate) struct IdSet {
    bits: Vec<u64>,
    other: HashSet<i64>,
}

impl IdSet {
    pub(crate) fn insert(&mut self, id: i64) {
        match usize::try_from(id) {
            Ok(i) if id < DENSE => {
                let word = i / 64;
                if word >= self.bits.len() {
                    self.bits.resize(word + 1, 0);
                }
                self.bits[word] |= 1 << (i % 64);
            }
            _ => {
                self.other.insert(id);
            }
        }
    }

    pub(crate) fn contains(&self, id: i64) -> bool {
        match usize::try_from(id) {
            Ok(i) if id < DENSE => self
                .bits
                .get(i / 64)
                .is_some_and(|w| w & (1 << (i % 64)) != 0),
            _ => self.other.contains(&id),
        }
    }

    /// Forgets every id, keeping the bitset's memory for the next snapshot.
    pub(crate) fn clear(&mut self) {
        self.bits.fill(0);
        self.other.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_and_stray_ids_are_remembered_until_cleared() {
        let mut ids = IdSet::default();
        for id in [0, 1, 63, 64, 1000, DENSE - 1, DENSE, i64::MAX, -1, i64::MIN] {
            assert!(!ids.contains(id), "{id}");
            ids.insert(id);
            assert!(ids.contains(id), "{id}");
        }
        assert!(!ids.contains(2) && !ids.contains(65) && !ids.contains(-2));
        assert_eq!(
            ids.bits.len(),
            (DENSE / 64) as usize,
            "a stray id does not grow the bits"
        );
        ids.clear();
        assert!(!ids.contains(1000) && !ids.contains(i64::MAX));
    }
}
