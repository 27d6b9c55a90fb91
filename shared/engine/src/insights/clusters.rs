//! Timestamps grouped into runs whose consecutive gaps are at most `gap`, whatever order they
//! arrive in: the one structure behind active time (gap 5,000 ms) and dead clicks (gap
//! 2,500 ms).
//!
//! Sorting the timestamps and cutting where a gap exceeds `gap` gives the same groups as
//! single-linkage clustering, which can be built online: each cluster is kept as its first
//! and last timestamp, a new timestamp joins (and possibly bridges) its neighbours, or
//! starts a cluster of its own. Memory is the number of clusters, not of events: at most one
//! per `gap` of session time, so a day of activity is at most 17,280 at 5 s.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

/// Past this many clusters a new isolated timestamp joins its nearest cluster instead of
/// starting one, and [`Clusters::approximate`] says so: it takes over 100,000 gaps longer than
/// `gap` (more than five days of sparse activity at 5 s), which no recording of a person has.
pub(crate) const MAX_CLUSTERS: usize = 100_000;

/// A millisecond timestamp ordered totally (`f64::total_cmp`), so it can key a map. JSON has
/// no NaN, so the order is the numeric one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Ms(pub(crate) f64);

impl Eq for Ms {}

impl PartialOrd for Ms {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ms {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// Disjoint runs of timestamps, first to last.
#[derive(Debug)]
pub(crate) struct Clusters {
    gap: f64,
    /// First timestamp of each cluster to its last.
    runs: BTreeMap<Ms, f64>,
    /// Set once [`MAX_CLUSTERS`] forced a timestamp into a cluster it is not linked to.
    approximate: bool,
}

impl Clusters {
    pub(crate) fn new(gap: f64) -> Clusters {
        Clusters {
            gap,
            runs: BTreeMap::new(),
            approximate: false,
        }
    }

    /// Adds one timestamp.
    pub(crate) fn insert(&mut self, t: f64) {
        let before = self.runs.range(..=Ms(t)).next_back().map(|(s, e)| (*s, *e));
        if before.is_some_and(|(_, last)| t <= last) {
            return;
        }
        let after = self
            .runs
            .range((Excluded(Ms(t)), Unbounded))
            .next()
            .map(|(s, e)| (*s, *e));
        let mut joins_before = before.filter(|&(_, last)| t - last <= self.gap);
        let mut joins_after = after.filter(|&(first, _)| first.0 - t <= self.gap);
        if joins_before.is_none() && joins_after.is_none() && self.runs.len() >= MAX_CLUSTERS {
            self.approximate = true;
            match (before, after) {
                (Some(b), Some(a)) if a.0 .0 - t < t - b.1 => joins_after = Some(a),
                (Some(b), _) => joins_before = Some(b),
                (None, a) => joins_after = a,
            }
        }
        match (joins_before, joins_after) {
            (Some((first, _)), Some((next, last))) => {
                self.runs.remove(&next);
                self.runs.insert(first, last);
            }
            (Some((first, _)), None) => {
                self.runs.insert(first, t);
            }
            (None, Some((next, last))) => {
                self.runs.remove(&next);
                self.runs.insert(Ms(t), last);
            }
            (None, None) => {
                self.runs.insert(Ms(t), t);
            }
        }
    }

    /// The sum over clusters of `max(1, last − first)`: a lone timestamp still lasts 1 ms.
    pub(crate) fn total_span(&self) -> f64 {
        self.runs
            .iter()
            .map(|(first, last)| (last - first.0).max(1.0))
            .sum()
    }

    /// Whether some timestamp lies in `(t, t + gap]`. The cluster starting last at or before
    /// `t + gap` is the only candidate: within a cluster no two neighbours are more than
    /// `gap` apart, so if it ends after `t`, its first timestamp after `t` is at most `gap`
    /// later; an earlier cluster ends more than `gap` before that one starts, so before `t`.
    pub(crate) fn any_within_gap_after(&self, t: f64) -> bool {
        self.runs
            .range(..=Ms(t + self.gap))
            .next_back()
            .is_some_and(|(_, last)| t < *last)
    }

    pub(crate) fn approximate(&self) -> bool {
        self.approximate
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters(gap: f64, ts: &[f64]) -> Clusters {
        let mut c = Clusters::new(gap);
        for &t in ts {
            c.insert(t);
        }
        c
    }

    /// The definition itself, for comparison: sort, cut where a gap exceeds `gap`.
    fn spans_by_sorting(gap: f64, ts: &[f64]) -> f64 {
        let mut ts = ts.to_vec();
        ts.sort_by(f64::total_cmp);
        let mut total = 0.0;
        let mut i = 0;
        while i < ts.len() {
            let mut j = i;
            while j + 1 < ts.len() && ts[j + 1] - ts[j] <= gap {
                j += 1;
            }
            total += (ts[j] - ts[i]).max(1.0);
            i = j + 1;
        }
        total
    }

    #[test]
    fn any_arrival_order_gives_the_sorted_runs() {
        let ts = [
            0.0, 9000.0, 4000.0, 20000.0, 14000.0, 5000.0, 30000.0, 25000.0,
        ];
        let c = clusters(5000.0, &ts);
        assert_eq!(c.total_span(), spans_by_sorting(5000.0, &ts));
        assert_eq!(c.len(), 2, "0..14000 bridged by 9000, then 20000..30000");
        let mut reversed = ts;
        reversed.reverse();
        assert_eq!(clusters(5000.0, &reversed).total_span(), c.total_span());
    }

    #[test]
    fn a_gap_of_exactly_the_limit_links_and_one_more_does_not() {
        assert_eq!(clusters(5000.0, &[0.0, 5000.0]).total_span(), 5000.0);
        assert_eq!(clusters(5000.0, &[0.0, 5001.0]).total_span(), 2.0);
    }

    #[test]
    fn within_gap_after_is_open_at_t_and_closed_at_t_plus_gap() {
        let c = clusters(2500.0, &[1000.0]);
        assert!(c.any_within_gap_after(999.0));
        assert!(c.any_within_gap_after(-1500.0), "exactly t + gap");
        assert!(!c.any_within_gap_after(-1501.0));
        assert!(!c.any_within_gap_after(1000.0), "t itself does not count");
        let c = clusters(2500.0, &[0.0, 2000.0, 4000.0, 10000.0]);
        assert!(c.any_within_gap_after(3999.0));
        assert!(!c.any_within_gap_after(4000.0));
        assert!(c.any_within_gap_after(7500.0));
        assert!(!c.any_within_gap_after(7499.0));
    }
}
