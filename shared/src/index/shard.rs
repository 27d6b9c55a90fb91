//! Which idle-index shard a session lives in.
//!
//! The idle query ("open sessions whose last chunk arrived before T", "finalizing sessions
//! whose lease ran out before T") is served by an index ordered by a timestamp that every
//! chunk write moves to *now*. Ordered by that timestamp alone, every write lands at the same
//! end of one sorted range: Firestore sustains about 500 writes/s into one such sequential
//! range, and a DynamoDB global secondary index partition about 1,000 WCU/s, however large
//! the table. Prefixing the index with a shard number spreads those writes over
//! [`Shards::count`] independent ranges (Firestore) or partitions (DynamoDB); the idle query
//! then asks every shard and merges (see [`super::driver`]).
//!
//! ## Resharding
//! A session's shard is stored on it and re-stamped with the current count on each of its
//! writes (every chunk, claim, renewal, completion). The store also keeps a high-water mark:
//! the largest shard count any writer has used ([`super::store::SessionStore::raise_shard_mark`],
//! raised before a writer's first write). Queries scan `0..max(count, mark)`, so after the
//! count changes in either direction no session is stranded in a shard nobody reads: more
//! shards are found because the mark rose before anything was stamped with them; fewer shards
//! still scan the old, larger range, while each session moves into the new range on its next
//! write. The mark is never lowered automatically (a process still running with the old count
//! could stamp into an old shard at any moment); an operator who shrank the count may lower it
//! by hand once every process runs the new count and `idle + lease` has passed, the time after
//! which every live session has been written (re-stamped) or finalized.

use crate::engine::SessionGuid;

/// The default shard count: sized by docs/SCALING.md for its target, 10,000 chunk writes/s.
///
/// Each chunk write moves its session's entry to the end of its shard's range. At 10,000
/// writes/s over 64 shards that is ~156 writes/s per shard: 0.31 of Firestore's ~500 writes/s
/// per sequential index range, and on DynamoDB (a delete and a put per move) 313 WCU/s, 0.31
/// of a partition's ~1,000; the model allows no ratio over 0.5 (32 shards would be 0.63). That
/// leaves room for claims, renewals and completions and for the hash's spread (within ±10 %
/// per shard, tested). More shards cost the sweep: it queries every shard twice (open,
/// expired leases), so 64 shards are 128 small queries per sweep.
pub const DEFAULT_SHARDS: u32 = 64;

/// Most shards one index may be configured with: a sweep queries each, so the cap bounds a
/// sweep's fan-out.
pub const MAX_SHARDS: u32 = 1024;

/// How many shards this process stamps sessions with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shards {
    count: u32,
}

impl Shards {
    /// `count` shards, clamped into `1..=MAX_SHARDS`.
    pub fn new(count: u32) -> Self {
        Shards {
            count: count.clamp(1, MAX_SHARDS),
        }
    }

    pub fn count(self) -> u32 {
        self.count
    }

    /// The shard `guid` is stamped with: a stable hash of the guid's text modulo the count.
    /// xxh3 is specified, so the value is the same on every machine and every release.
    pub fn of(self, guid: &SessionGuid) -> u32 {
        shard_of(guid.as_str(), self.count)
    }

    /// The shards a query must read, given the store's high-water mark.
    pub fn scan(self, mark: Option<u32>) -> u32 {
        self.count.max(mark.unwrap_or(0)).min(MAX_SHARDS)
    }
}

impl Default for Shards {
    fn default() -> Self {
        Shards::new(DEFAULT_SHARDS)
    }
}

fn shard_of(guid: &str, count: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(guid.as_bytes()) % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stream of v4-UUID-looking guids (splitmix64), so the test cannot flake.
    fn guids(n: usize) -> impl Iterator<Item = String> {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        (0..n).map(move |_| {
            let (a, b) = (next(), next());
            format!(
                "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
                a >> 32,
                (a >> 16) & 0xffff,
                a & 0xfff,
                0x8000 | (b >> 48) & 0x3fff,
                b & 0xffff_ffff_ffff
            )
        })
    }

    #[test]
    fn a_hundred_thousand_guids_spread_within_ten_percent_of_the_mean() {
        for count in [4, 8, DEFAULT_SHARDS, 64] {
            let shards = Shards::new(count);
            let mut per_shard = vec![0u32; count as usize];
            for g in guids(100_000) {
                per_shard[shards.of(&SessionGuid::parse(&g).unwrap()) as usize] += 1;
            }
            let mean = 100_000.0 / f64::from(count);
            let worst = per_shard
                .iter()
                .map(|n| (f64::from(*n) - mean).abs() / mean)
                .fold(0.0, f64::max);
            println!(
                "FIGURE index.shard_spread_worst_pct_{count}: {:.2}",
                worst * 100.0
            );
            for (shard, n) in per_shard.iter().enumerate() {
                let off = (f64::from(*n) - mean).abs() / mean;
                assert!(
                    off <= 0.10,
                    "{count} shards: shard {shard} has {n}, {:.1} % off the mean {mean}",
                    off * 100.0
                );
            }
        }
    }

    #[test]
    fn the_shard_is_stable_and_in_range() {
        let g = SessionGuid::parse("0b6a4a5e-4a30-4c1b-9d4e-2f3b1c7a9e10").unwrap();
        // Pinned: a release that changed the hash would move every stored session.
        assert_eq!(Shards::new(32).of(&g), 23);
        assert_eq!(Shards::new(1000).of(&g), 271);
        for count in [1, 2, 3, 7, 32, 1000] {
            assert!(Shards::new(count).of(&g) < count);
        }
        assert_eq!(Shards::new(1).of(&g), 0);
    }

    #[test]
    fn the_count_is_clamped_and_the_scan_covers_the_mark() {
        assert_eq!(Shards::new(0).count(), 1);
        assert_eq!(Shards::new(u32::MAX).count(), MAX_SHARDS);
        assert_eq!(Shards::new(8).scan(None), 8);
        assert_eq!(Shards::new(8).scan(Some(4)), 8);
        assert_eq!(Shards::new(2).scan(Some(4)), 4);
        assert_eq!(Shards::new(2).scan(Some(u32::MAX)), MAX_SHARDS);
    }
}
