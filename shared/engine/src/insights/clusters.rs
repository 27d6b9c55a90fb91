//! Timestamps grouped into runs whose consecutive gaps are at most `gap`, whatever order they
//! arrive in: the one structure behind active time (gap 5,000 ms) and dead clicks (gap
//! 2,500 ms).
//!
//! Sorting the timestamps and cutting where a gap exceeds `gap` gives the same groups as
//! single-linkage clustering, which can be built online: each cluster is kept as its first
//! and last timestamp, a new timestamp joins (and possibly bridges) its neighbours, or
//! starts a cluster of its own. Memory is the number of clusters, not of events: at most one
//! per `gap` of session time, so a day of activity is at most 17,280 at 5 s.
//!
//! Most timestamps arrive in order and land in or just after the cluster the previous one
//! touched, so that cluster is held outside the map (`open`) and extended without a map
//! operation; the map is searched only when a timestamp falls elsewhere.

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
    /// First timestamp of each cluster to its last, but for the open one.
    runs: BTreeMap<Ms, f64>,
    /// The cluster last touched, `(first, last)`, and where the next cluster in `runs`
    /// starts (infinity when none does).
    open: Option<(f64, f64, f64)>,
    /// Set once [`MAX_CLUSTERS`] forced a timestamp into a cluster it is not linked to.
    approximate: bool,
}

impl Clusters {
    pub(crate) fn new(gap: f64) -> Clusters {
        Clusters {
            gap,
            runs: BTreeMap::new(),
            open: None,
            approximate: false,
        }
    }

    /// Adds one timestamp.
    pub(crate) fn insert(&mut self, t: f64) {
        if let Some((first, last, next)) = &mut self.open {
            if *first <= t && t <= *last {
                return;
            }
            if t > *last && t - *last <= self.gap && *next - t > self.gap {
                *last = t;
                return;
            }
        }
        self.close();
        let first = self.insert_into_runs(t);
        let last = self.runs.remove(&first).unwrap_or(t);
        let next = self
            .runs
            .range((Excluded(first), Unbounded))
            .next()
            .map_or(f64::INFINITY, |(s, _)| s.0);
        self.open = Some((first.0, last, next));
    }

    /// Puts the open cluster back among the others, so the map holds every cluster.
    fn close(&mut self) {
        if let Some((first, last, _)) = self.open.take() {
            self.runs.insert(Ms(first), last);
        }
    }

    /// Adds `t` to the map of clusters; the first timestamp of the cluster that holds it.
    fn insert_into_runs(&mut self, t: f64) -> Ms {
        let before = self.runs.range(..=Ms(t)).next_back().map(|(s, e)| (*s, *e));
        if let Some((first, last)) = before {
            if t <= last {
                return first;
            }
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
                first
            }
            (Some((first, _)), None) => {
                self.runs.insert(first, t);
                first
            }
            (None, Some((next, last))) => {
                self.runs.remove(&next);
                self.runs.insert(Ms(t), last);
                Ms(t)
            }
            (None, None) => {
                self.runs.insert(Ms(t), t);
                Ms(t)
            }
        }
    }

    /// Every cluster, in the map: call once the last timestamp is in, before asking.
    pub(crate) fn closed(mut self) -> Closed {
        self.close();
        Closed(self)
    }
}

/// [`Clusters`] with every timestamp in, to be asked about.
#[derive(Debug)]
pub(crate) struct Closed(Clusters);

impl Closed {
    /// The sum over clusters of `max(1, last − first)`: a lone timestamp still lasts 1 ms.
    pub(crate) fn total_span(&self) -> f64 {
        self.0
            .runs
            .iter()
            .map(|(first, last)| (last - first.0).max(1.0))
            .sum()
    }

    /// Whether some timestamp lies in `(t, t + gap]`. The cluster starting last at or before
    /// `t + gap` is the only candidate: within a cluster no two neighbours are more than
    /// `gap` apart, so if it ends after `t`, its first timestamp after `t` is at most `gap`
    /// later; an earlier cluster ends more than `gap` before that one starts, so before `t`.
    pub(crate) fn any_within_gap_after(&self, t: f64) -> bool {
        self.0
            .runs
            .range(..=Ms(t + self.0.gap))
            .next_back()
            .is_some_and(|(_, last)| t < *last)
    }

    pub(crate) fn approximate(&self) -> bool {
        self.0.approximate
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.runs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters(gap: f64, ts: &[f64]) -> Closed {
        let mut c = Clusters::new(gap);
        for &t in ts {
            c.insert(t);
        }
        c.closed()
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

    proptest::proptest! {
        /// Any arrival order, the open cluster's shortcut included: the sorted definition's
        /// spans, and "a timestamp in (t, t + gap]" as a scan finds it.
        #[test]
        fn any_order_matches_the_definitions(
            ts in proptest::collection::vec(0u32..40_000, 0..80),
            asks in proptest::collection::vec(0u32..45_000, 0..20),
        ) {
            let ts: Vec<f64> = ts.into_iter().map(f64::from).collect();
            let c = clusters(2500.0, &ts);
            proptest::prop_assert_eq!(c.total_span(), spans_by_sorting(2500.0, &ts));
            for t in asks.into_iter().map(f64::from) {
                let scan = ts.iter().any(|&r| r > t && r <= t + 2500.0);
                proptest::prop_assert_eq!(c.any_within_gap_after(t), scan, "t = {}", t);
            }
        }
    }
}
