//! What happened in a session, computed in the stitch's one pass: clicks, typing, activity,
//! console messages, frustration (rage and dead clicks), with the definitions PostHog users
//! know, so the numbers agree with theirs.
//!
//! Counts are over the events as stored: the stitcher feeds every event it writes, after
//! duplicates are skipped and redaction has dropped what it drops (redaction never changes
//! the fields read here: types, sources, positions, console levels). Rules about time are
//! over timestamps in the Replayer's play order (a stable sort by timestamp), which is not
//! the stitched order when chunks were uploaded out of order; so none of them walks the
//! events in sequence. Active time is the total span of [`Clusters`] of active timestamps;
//! dead clicks ask the clusters of response timestamps; rage clicks walk the kept clicks,
//! which a map holds in play order; the first URL is the earliest Meta's (the page the
//! player opens on, whatever order the chunks were uploaded in, rather than the first in
//! the array).
//!
//! Most events are not parsed again: the validating pass already read `type`, `source` and
//! a MouseInteraction's `type`. Only a Click's `data` (for `x`, `y`) and a Plugin event's
//! (for its name and level) are read here.
//!
//! Memory is bounded whatever the session's length: the clusters (one per 5 s or 2.5 s of
//! session time at most, capped at [`clusters::MAX_CLUSTERS`]), the clicks (capped at
//! [`clicks::MAX_CLICKS`]) and the earliest [`MAX_MARKERS`] console errors. A cap reached is
//! said in the metadata's warnings.

mod clicks;
mod clusters;

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Number;

use crate::event::Event;
use crate::rrweb::{event_type, interaction, source, CONSOLE_PLUGIN};
use clicks::Clicks;
use clusters::{Clusters, Ms};

/// The most markers listed: the earliest in play order.
pub const MAX_MARKERS: usize = 200;

/// A run of active events whose consecutive gaps are at most this long is one span of
/// activity.
pub const ACTIVE_GAP_MS: f64 = 5_000.0;

/// `metadata.insights`: what happened in the session.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Insights {
    /// MouseInteractions of type Click, ContextMenu, DblClick or TouchEnd.
    pub click_count: u64,
    /// Input events (a field's new value).
    pub keypress_count: u64,
    /// MouseMove, MouseInteraction and TouchMove events.
    pub mouse_activity_count: u64,
    /// Time with a person acting: runs of active events (mouse, scroll, resize, input,
    /// touch, media, drag) whose gaps are at most [`ACTIVE_GAP_MS`], each lasting
    /// `max(1, last − first)` ms, summed; rounded to whole milliseconds.
    pub active_ms: u64,
    /// The session's duration less `active_ms`, never below 0.
    pub inactive_ms: u64,
    pub console_log_count: u64,
    pub console_warn_count: u64,
    pub console_error_count: u64,
    /// Runs of 3 or more Clicks, each under 1 s and 30 px (|dx| + |dy|) from the previous
    /// one; a run counts once.
    pub rage_click_count: u64,
    /// Clicks with no DOM mutation, scroll, selection, Meta or FullSnapshot in the 2.5 s
    /// after them; clicks in the session's last 2.5 s are not judged.
    pub dead_click_count: u64,
    /// The `href` of the earliest Meta event in play order.
    pub first_url: Option<String>,
    /// Where the viewer's timeline marks something: the earliest [`MAX_MARKERS`] in play
    /// order.
    pub markers: Vec<Marker>,
}

/// One mark on the timeline.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Marker {
    pub kind: MarkerKind,
    pub timestamp: Number,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    RageClick,
    DeadClick,
    ConsoleError,
}

/// A console entry's level, as the insights count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Log,
    Warn,
    Error,
}

/// Accumulates [`Insights`] as events stream past.
#[derive(Debug)]
pub(crate) struct InsightsBuilder {
    counts: Insights,
    /// Events seen, for play order's tie-break (a stable sort keeps stitched order).
    seq: u64,
    active: Clusters,
    clicks: Clicks,
    first_meta: Option<((Ms, u64), Option<String>)>,
    /// The earliest [`MAX_MARKERS`] console errors in play order.
    errors: BTreeMap<(Ms, u64), Number>,
}

impl Default for InsightsBuilder {
    fn default() -> Self {
        InsightsBuilder {
            counts: Insights::default(),
            seq: 0,
            active: Clusters::new(ACTIVE_GAP_MS),
            clicks: Clicks::default(),
            first_meta: None,
            errors: BTreeMap::new(),
        }
    }
}

impl InsightsBuilder {
    /// One event as written.
    pub(crate) fn event(&mut self, event: &Event<'_>) {
        let t = event.timestamp.as_f64().unwrap_or(0.0);
        let at = (Ms(t), self.seq);
        self.seq += 1;
        match event.kind {
            event_type::INCREMENTAL_SNAPSHOT => self.incremental(event, t, at),
            event_type::META => {
                self.clicks.response(t);
                if self
                    .first_meta
                    .as_ref()
                    .is_none_or(|(first, _)| at < *first)
                {
                    self.first_meta = Some((at, event.href.clone()));
                }
            }
            event_type::FULL_SNAPSHOT => self.clicks.response(t),
            event_type::PLUGIN => {
                let Some(level) = event.data.and_then(console_level) else {
                    return;
                };
                let counts = &mut self.counts;
                match level {
                    Level::Log => counts.console_log_count += 1,
                    Level::Warn => counts.console_warn_count += 1,
                    Level::Error => {
                        counts.console_error_count += 1;
                        self.errors.insert(at, event.timestamp.clone());
                        if self.errors.len() > MAX_MARKERS {
                            self.errors.pop_last();
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn incremental(&mut self, event: &Event<'_>, t: f64, at: (Ms, u64)) {
        let Some(src) = event.source else { return };
        if source::ACTIVE.contains(&src) {
            self.active.insert(t);
        }
        if source::RESPONSES.contains(&src) {
            self.clicks.response(t);
        }
        if matches!(
            src,
            source::MOUSE_MOVE | source::MOUSE_INTERACTION | source::TOUCH_MOVE
        ) {
            self.counts.mouse_activity_count += 1;
        }
        if src == source::INPUT {
            self.counts.keypress_count += 1;
        }
        let Some(kind) = event.interaction else {
            return;
        };
        if interaction::CLICKS.contains(&kind) {
            self.counts.click_count += 1;
        }
        if kind == interaction::CLICK {
            let position = event.data.and_then(click_position);
            self.clicks.click(t, at.1, &event.timestamp, position);
        }
    }

    /// The insights, given the session's duration and latest timestamp, with a warning for
    /// each bound that was reached.
    pub(crate) fn finish(self, duration_ms: f64, last: Option<f64>) -> (Insights, Vec<String>) {
        let mut insights = self.counts;
        let active_runs = self.active.closed();
        let active = active_runs.total_span().round();
        insights.active_ms = active as u64;
        insights.inactive_ms = (duration_ms.round() - active).max(0.0) as u64;
        let judged = last.map(|last| self.clicks.judge(last)).unwrap_or_default();
        let (dropped, responses_approximate) = (judged.dropped, judged.approximate);
        insights.rage_click_count = judged.rage;
        insights.dead_click_count = judged.dead;
        insights.first_url = self.first_meta.and_then(|(_, href)| href);
        let mut markers: Vec<(Ms, MarkerKind, Number)> = judged
            .marks
            .into_iter()
            .map(|(ts, rage)| {
                let kind = if rage {
                    MarkerKind::RageClick
                } else {
                    MarkerKind::DeadClick
                };
                (Ms(ts.as_f64().unwrap_or(0.0)), kind, ts)
            })
            .chain(
                self.errors
                    .into_iter()
                    .map(|((t, _), ts)| (t, MarkerKind::ConsoleError, ts)),
            )
            .collect();
        // By time, then kind: entries equal in both look the same, so upload order cannot
        // change the list.
        markers.sort_by_key(|m| (m.0, m.1));
        markers.truncate(MAX_MARKERS);
        insights.markers = markers
            .into_iter()
            .map(|(_, kind, timestamp)| Marker { kind, timestamp })
            .collect();
        let mut warnings = Vec::new();
        if dropped > 0 {
            warnings.push(format!(
                "insights: {dropped} clicks past the first {} in play order were not judged for rage or dead clicks",
                clicks::MAX_CLICKS
            ));
        }
        if active_runs.approximate() || responses_approximate {
            warnings.push(format!(
                "insights: over {} separate runs of activity; active time and dead clicks are approximate",
                clusters::MAX_CLUSTERS
            ));
        }
        (insights, warnings)
    }
}

/// A Click's `x` and `y`, when both are numbers.
fn click_position(data: &str) -> Option<(f64, f64)> {
    #[derive(Deserialize)]
    struct Position<'a> {
        #[serde(borrow)]
        x: Option<&'a RawValue>,
        #[serde(borrow)]
        y: Option<&'a RawValue>,
    }
    let p = serde_json::from_str::<Position<'_>>(data).ok()?;
    let number = |v: Option<&RawValue>| serde_json::from_str::<f64>(v?.get()).ok();
    Some((number(p.x)?, number(p.y)?))
}

/// A Plugin event's console level, when it is an `rrweb/console@1` entry: `error` and
/// `assert` are errors, `warn` and `countReset` warnings, anything else (a missing level
/// too) a log, as PostHog files them.
///
/// The console plugin writes `{"plugin":NAME,"payload":{"level":LEVEL,...` (its payloads,
/// the logged values and stack traces, come after), so that prefix is read without scanning
/// the rest; any other layout, or a string with escapes, is parsed.
fn console_level(data: &str) -> Option<Level> {
    let level = match leading_string(data, "{\"plugin\":\"") {
        Some((name, _)) if name != CONSOLE_PLUGIN => return None,
        Some((_, rest)) => match leading_string(rest, ",\"payload\":{\"level\":\"") {
            Some((level, _)) => Some(Cow::Borrowed(level)),
            None => parsed_console_level(data)?,
        },
        None => parsed_console_level(data)?,
    };
    Some(match level.as_deref() {
        Some("error" | "assert") => Level::Error,
        Some("warn" | "countReset") => Level::Warn,
        _ => Level::Log,
    })
}

/// After `prefix`, a string without escapes up to its closing quote, and what follows it.
fn leading_string<'a>(text: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = text.strip_prefix(prefix)?;
    let end = rest.find(['"', '\\'])?;
    (rest.as_bytes()[end] == b'"').then(|| (&rest[..end], &rest[end + 1..]))
}

/// [`console_level`] the long way: `None` when not a console entry, else its level if any.
fn parsed_console_level(data: &str) -> Option<Option<Cow<'_, str>>> {
    #[derive(Deserialize)]
    struct Plugin<'a> {
        #[serde(borrow)]
        plugin: Option<Cow<'a, str>>,
        #[serde(borrow)]
        payload: Option<&'a RawValue>,
    }
    #[derive(Deserialize)]
    struct Payload<'a> {
        #[serde(borrow)]
        level: Option<Cow<'a, str>>,
    }
    let plugin = serde_json::from_str::<Plugin<'_>>(data).ok()?;
    if plugin.plugin.as_deref() != Some(CONSOLE_PLUGIN) {
        return None;
    }
    Some(
        plugin
            .payload
            .and_then(|p| serde_json::from_str::<Payload<'_>>(p.get()).ok())
            .and_then(|p| p.level),
    )
}

#[cfg(test)]
mod tests;
