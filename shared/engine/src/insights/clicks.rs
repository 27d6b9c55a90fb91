//! Rage and dead clicks: judged once the session's last event is known, over the clicks kept
//! in play order.
//!
//! Clicks are few (a person clicks a few times a minute), so they are kept, keyed by play
//! position, up to [`MAX_CLICKS`]; what answers a click (a DOM change, a scroll, a new page)
//! is kept only as [`Clusters`] of its timestamps, which is all the dead-click rule needs.

use std::collections::BTreeMap;

use serde_json::Number;

use super::clusters::{Clusters, Ms};

/// posthog-js' rage click rule: a click within this long of the previous one...
pub(crate) const RAGE_WITHIN_MS: f64 = 1_000.0;
/// ...and this close (`|dx| + |dy|`, pixels) extends a run...
pub(crate) const RAGE_WITHIN_PX: f64 = 30.0;
/// ...which is a rage click when it reaches this many clicks.
pub(crate) const RAGE_CLICKS: u32 = 3;
/// A click with nothing in response within this long is dead.
pub(crate) const DEAD_AFTER_MS: f64 = 2_500.0;

/// The most clicks judged. Past it, the clicks latest in play order are let go (so which
/// are kept does not depend on upload order) and a warning says rage and dead clicks were
/// judged over the first [`MAX_CLICKS`]; about 4 MiB at most.
pub(crate) const MAX_CLICKS: usize = 100_000;

/// One click: its position, if both coordinates are numbers, and its timestamp as written.
#[derive(Debug)]
struct Click {
    at: Option<(f64, f64)>,
    timestamp: Number,
}

/// What the judging found: counts, and the clicks to mark on the timeline.
#[derive(Debug, Default)]
pub(crate) struct Judged {
    pub(crate) rage: u64,
    pub(crate) dead: u64,
    /// `(timestamp, is_rage)` in play order: rage runs at their third click, dead clicks.
    pub(crate) marks: Vec<(Number, bool)>,
    /// Clicks let go past [`MAX_CLICKS`].
    pub(crate) dropped: u64,
    /// Whether response times were approximated (past [`super::clusters::MAX_CLUSTERS`]).
    pub(crate) approximate: bool,
}

/// Clicks and the timestamps of what responds to them.
#[derive(Debug)]
pub(crate) struct Clicks {
    /// Keyed by play position: timestamp, then stitched index (a stable sort's order).
    kept: BTreeMap<(Ms, u64), Click>,
    /// Clicks let go past [`MAX_CLICKS`].
    dropped: u64,
    responses: Clusters,
}

impl Default for Clicks {
    fn default() -> Self {
        Clicks {
            kept: BTreeMap::new(),
            dropped: 0,
            responses: Clusters::new(DEAD_AFTER_MS),
        }
    }
}

impl Clicks {
    pub(crate) fn click(&mut self, t: f64, seq: u64, timestamp: &Number, at: Option<(f64, f64)>) {
        let click = Click {
            at,
            timestamp: timestamp.clone(),
        };
        self.kept.insert((Ms(t), seq), click);
        if self.kept.len() > MAX_CLICKS {
            self.kept.pop_last();
            self.dropped += 1;
        }
    }

    /// An event that shows the page answered: a DOM mutation, a scroll, a selection, a new
    /// Meta or FullSnapshot.
    pub(crate) fn response(&mut self, t: f64) {
        self.responses.insert(t);
    }

    /// Judges every kept click; `last` is the session's latest timestamp (a click less than
    /// [`DEAD_AFTER_MS`] before it cannot be judged: the answer may simply not be recorded).
    pub(crate) fn judge(self, last: f64) -> Judged {
        let responses = self.responses.closed();
        let mut judged = Judged {
            dropped: self.dropped,
            approximate: responses.approximate(),
            ..Judged::default()
        };
        // The previous positioned click and the length of the run it ends.
        let mut previous: Option<(f64, (f64, f64))> = None;
        let mut run = 0;
        for ((t, _), click) in &self.kept {
            let t = t.0;
            if let Some((x, y)) = click.at {
                let extends = previous.is_some_and(|(pt, (px, py))| {
                    t - pt < RAGE_WITHIN_MS && (x - px).abs() + (y - py).abs() < RAGE_WITHIN_PX
                });
                run = if extends { run + 1 } else { 1 };
                if run == RAGE_CLICKS {
                    judged.rage += 1;
                    judged.marks.push((click.timestamp.clone(), true));
                }
                previous = Some((t, (x, y)));
            }
            let judgeable = t + DEAD_AFTER_MS <= last;
            if judgeable && !responses.any_within_gap_after(t) {
                judged.dead += 1;
                judged.marks.push((click.timestamp.clone(), false));
            }
        }
        judged
    }
}
