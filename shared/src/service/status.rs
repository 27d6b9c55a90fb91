//! What the index knows now: `rrstitch status`, and `GET /status` on the finalize service.
//!
//! The metrics say how things went over time; this says where things stand, from the one
//! place that knows: open sessions and the one idle longest (is the sweep keeping up?),
//! finalizing ones and leases past due (is a finalizer dying?), refused objects of the last
//! 24 hours by reason (is an SDK sending garbage?), the last sweep (is it running at all?),
//! and tombstones. Every number is a count query over an index range or one bounded read
//! ([`SessionIndex::counts`], [`SessionIndex::rejected_since`]), so it costs the same at a
//! thousand sessions as at a hundred million.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Result, Service};
use crate::index::{SessionIndex, SWEEP_BOOKMARK};
use crate::time::Millis;

/// How far back "recent" rejects go.
pub const REJECTS_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// At most this many recent rejects are read and counted by reason; past it the totals
/// are a floor ([`Rejects::truncated`]), and the `chunk` metric has the exact counts.
pub const REJECTS_READ: usize = 1000;

/// What the last sweep (or queue dispatch) did, as it left it in the index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastSweep {
    /// When it finished (RFC 3339).
    pub at: String,
    /// `inline` (a sweep that stitches) or `queue` (a dispatch that publishes).
    pub mode: String,
    pub seconds: f64,
    /// Sessions finalized (inline) or published (queue).
    pub sessions: usize,
    /// Sessions left for the next one: the budget ran out, or the index kept failing.
    pub deferred: usize,
    pub failed: usize,
}

/// The session that has waited longest in one state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Oldest {
    pub session_guid: String,
    /// When it started waiting: its last chunk's arrival, or its lease's expiry (RFC 3339).
    pub since: String,
    /// How long ago that was.
    pub seconds: f64,
}

/// Refused objects in the last [`REJECTS_WINDOW`].
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rejects {
    pub total: u64,
    /// Counts by reason (`bad_json`, `over_quota`, …).
    pub by_reason: BTreeMap<String, u64>,
    /// More than [`REJECTS_READ`] were refused: the counts are of the newest ones.
    pub truncated: bool,
}

/// Where things stand.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Status {
    /// When this was read (RFC 3339).
    pub at: String,
    /// The idle time a session waits before it is finalized.
    pub idle_seconds: u64,
    pub open: u64,
    /// The open session whose last chunk arrived longest ago. Older than the idle time plus
    /// a sweep interval or two means the sweep is not keeping up.
    pub oldest_open: Option<Oldest>,
    pub finalizing: u64,
    /// Finalizing sessions whose lease ran out: a finalizer died or stalls; the next sweep
    /// takes them over.
    pub leases_past_due: u64,
    pub oldest_past_due: Option<Oldest>,
    pub rejects_24h: Rejects,
    /// `None` when no sweep has recorded itself in this index yet.
    pub last_sweep: Option<LastSweep>,
    pub tombstones: u64,
}

/// Reads the status of `index` at `now`; `idle` is the configured idle time.
pub async fn status(index: &dyn SessionIndex, now: Millis, idle: Duration) -> Result<Status> {
    let (counts, rejects, last_sweep) = tokio::try_join!(
        index.counts(now),
        index.rejected_since(now.minus(REJECTS_WINDOW), REJECTS_READ),
        index.bookmark(SWEEP_BOOKMARK),
    )?;
    let oldest = |e: Option<crate::index::store::DueEntry>| {
        e.map(|e| Oldest {
            session_guid: e.guid.to_string(),
            since: e.at.to_rfc3339(),
            seconds: (now.0 - e.at.0).max(0) as f64 / 1000.0,
        })
    };
    let mut by_reason = BTreeMap::new();
    for r in &rejects {
        *by_reason.entry(r.kind.clone()).or_insert(0) += 1;
    }
    Ok(Status {
        at: now.to_rfc3339(),
        idle_seconds: idle.as_secs(),
        open: counts.open,
        oldest_open: oldest(counts.oldest_open),
        finalizing: counts.finalizing,
        leases_past_due: counts.leases_past_due,
        oldest_past_due: oldest(counts.oldest_past_due),
        rejects_24h: Rejects {
            total: rejects.len() as u64,
            by_reason,
            truncated: rejects.len() >= REJECTS_READ,
        },
        // An unreadable summary (an older or foreign value) is no summary, not a failure.
        last_sweep: last_sweep.and_then(|v| serde_json::from_str(&v).ok()),
        tombstones: counts.tombstones,
    })
}

impl Service {
    /// [`status`] of this service's index, now.
    pub async fn status(&self) -> Result<Status> {
        status(self.index.as_ref(), self.now(), self.options.idle).await
    }

    /// Leaves what a sweep or dispatch did in the index for [`status`]: one small write per
    /// tick. A failure to write it is logged, never the sweep's failure.
    pub(super) async fn record_sweep(
        &self,
        mode: &str,
        took: Duration,
        sessions: usize,
        deferred: usize,
        failed: usize,
    ) {
        let last = LastSweep {
            at: self.now().to_rfc3339(),
            mode: mode.to_owned(),
            seconds: took.as_secs_f64(),
            sessions,
            deferred,
            failed,
        };
        let value = serde_json::to_string(&last).expect("a summary serializes");
        if let Err(e) = self.index.set_bookmark(SWEEP_BOOKMARK, Some(&value)).await {
            tracing::warn!(error = %e, "could not record the sweep for `rrstitch status`");
        }
    }
}

impl fmt::Display for Status {
    /// The table `rrstitch status` prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let oldest = |o: &Option<Oldest>, what: &str| match o {
            Some(o) => format!("{} {what} {} ({})", o.session_guid, o.since, ago(o.seconds)),
            None => "-".to_owned(),
        };
        writeln!(f, "at                 {}", self.at)?;
        writeln!(f, "open               {}", self.open)?;
        writeln!(
            f,
            "  oldest idle      {}",
            oldest(&self.oldest_open, "last chunk")
        )?;
        writeln!(f, "  idle time        {} s", self.idle_seconds)?;
        writeln!(f, "finalizing         {}", self.finalizing)?;
        writeln!(f, "  leases past due  {}", self.leases_past_due)?;
        if self.oldest_past_due.is_some() {
            writeln!(
                f,
                "  oldest past due  {}",
                oldest(&self.oldest_past_due, "lease ran out")
            )?;
        }
        let plus = if self.rejects_24h.truncated { "+" } else { "" };
        writeln!(f, "rejects (24 h)     {}{plus}", self.rejects_24h.total)?;
        for (reason, n) in &self.rejects_24h.by_reason {
            writeln!(f, "  {reason:<16} {n}{plus}")?;
        }
        match &self.last_sweep {
            Some(s) => writeln!(
                f,
                "last sweep         {} ({}): {} sessions, {} deferred, {} failed, {:.1} s",
                s.at, s.mode, s.sessions, s.deferred, s.failed, s.seconds
            )?,
            None => writeln!(f, "last sweep         none recorded")?,
        }
        writeln!(f, "tombstones         {}", self.tombstones)
    }
}

/// `95 s ago`, `3.2 h ago`.
fn ago(seconds: f64) -> String {
    if seconds < 120.0 {
        format!("{seconds:.0} s ago")
    } else if seconds < 7200.0 {
        format!("{:.1} min ago", seconds / 60.0)
    } else {
        format!("{:.1} h ago", seconds / 3600.0)
    }
}
