//! Metrics as log lines: what the functions did, counted and timed, at no cost on the request
//! path beyond the line itself.
//!
//! Each metric is one `tracing` event on the target [`TARGET`], with a `metric` field naming
//! its kind and the fields its [`Spec`] lists: dimensions (strings, a small closed set of
//! values each) and values (numbers). The platforms turn those lines into metrics without an
//! API call from us: Cloud Logging through log-based metrics over the JSON fields
//! (`infra/gcp/modules/rrstitch/metrics.tf.json`), CloudWatch through the Embedded Metric
//! Format directive the edge adds to the same line (`RRSTITCH_METRICS=emf`; see
//! `rrstitch_edge::telemetry`). [`SPECS`] is the one list both read, and the end-to-end tests
//! hold the Terraform of both clouds to the lines the functions actually write.

use std::time::Duration;

use crate::time::Millis;

/// The `tracing` target of every metric line (always enabled at `info`, whatever `RUST_LOG`
/// says, so a quieter log never silences a metric).
pub const TARGET: &str = "rrstitch::metrics";

/// What a value measures (CloudWatch's unit names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Bytes,
}

impl Unit {
    /// The unit as CloudWatch spells it.
    pub fn cloudwatch(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// One kind of metric line: the fields it always carries.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// The value of the line's `metric` field.
    pub metric: &'static str,
    /// String fields, each with a small closed set of values: labels on GCP, dimensions on
    /// CloudWatch.
    pub dimensions: &'static [&'static str],
    /// Number fields. A value that does not apply to a line (no stitch time for a session
    /// that was not stitched) is left out of it.
    pub values: &'static [(&'static str, Unit)],
}

/// Every kind of metric line, in one place.
pub const SPECS: &[Spec] = &[
    Spec {
        metric: "chunk",
        dimensions: &["outcome", "reason"],
        values: &[("chunks", Unit::Count)],
    },
    Spec {
        metric: "session",
        dimensions: &["outcome"],
        values: &[
            ("sessions", Unit::Count),
            ("stitch_seconds", Unit::Seconds),
            ("stitch_bytes", Unit::Bytes),
            ("freshness_seconds", Unit::Seconds),
        ],
    },
    Spec {
        metric: "queue_message",
        dimensions: &["job", "outcome"],
        values: &[("messages", Unit::Count)],
    },
    Spec {
        metric: "sweep",
        dimensions: &["mode"],
        values: &[
            ("sweeps", Unit::Count),
            ("sweep_seconds", Unit::Seconds),
            ("sweep_sessions", Unit::Count),
            ("sweep_deferred", Unit::Count),
        ],
    },
    Spec {
        metric: "reconcile",
        dimensions: &[],
        values: &[
            ("reconcile_checked", Unit::Count),
            ("reconcile_recovered", Unit::Count),
            ("reconcile_seconds", Unit::Seconds),
        ],
    },
];

/// The spec of the metric line kind `metric`.
pub fn spec(metric: &str) -> Option<&'static Spec> {
    SPECS.iter().find(|s| s.metric == metric)
}

/// What became of one object event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// A new chunk, recorded in the index.
    Recorded,
    /// This exact object was recorded before (a redelivered event).
    Duplicate,
    /// Refused for good (the reason is the reject's kind), kept in the bucket.
    Rejected,
    /// Not a chunk of ours: another suffix, prefix or bucket, or gone before it was read.
    Ignored,
    /// Could not be handled now; the platform delivers the event again if transient.
    Failed,
}

impl ChunkOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            ChunkOutcome::Recorded => "recorded",
            ChunkOutcome::Duplicate => "duplicate",
            ChunkOutcome::Rejected => "rejected",
            ChunkOutcome::Ignored => "ignored",
            ChunkOutcome::Failed => "failed",
        }
    }
}

/// One line per object event ingested. `reason` is `none` where there is none, since an
/// empty dimension value is not one CloudWatch takes.
pub fn chunk(outcome: ChunkOutcome, reason: &str) {
    let reason = if reason.is_empty() { "none" } else { reason };
    tracing::info!(
        target: TARGET,
        metric = "chunk",
        outcome = outcome.as_str(),
        reason,
        chunks = 1u64,
        "metric"
    );
}

/// What became of one attempt to finalize a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionOutcome {
    /// Stitched, written, and the session completed.
    Written,
    /// Stitched and written, but a chunk came meanwhile: the session is open again.
    Reopened,
    /// Nothing to write: already finalized, not idle any more, or another worker's.
    Unchanged,
    /// Another finalizer took the session over mid-stitch; it writes the result.
    LostClaim,
    /// Erased meanwhile: what this finalize wrote of it was deleted.
    Deleted,
    /// Failed; the session stays claimable for a later attempt.
    Failed,
}

impl SessionOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionOutcome::Written => "written",
            SessionOutcome::Reopened => "reopened",
            SessionOutcome::Unchanged => "unchanged",
            SessionOutcome::LostClaim => "lost_claim",
            SessionOutcome::Deleted => "deleted",
            SessionOutcome::Failed => "failed",
        }
    }
}

/// What a written session measured.
#[derive(Debug, Clone, Copy)]
pub struct Stitched {
    /// From the claim to the completion.
    pub took: Duration,
    /// Bytes of the result.
    pub bytes: u64,
    /// The upload time of the session's last chunk (its name), when the names tell.
    pub last_chunk_at: Option<Millis>,
    /// When the result was complete.
    pub written_at: Millis,
}

impl Stitched {
    /// How long after its last chunk was uploaded the session's result was written: what a
    /// user waiting for a recording feels. Never negative (clocks of uploaders differ).
    pub fn freshness(&self) -> Option<f64> {
        self.last_chunk_at
            .map(|last| (self.written_at.0 - last.0).max(0) as f64 / 1e3)
    }
}

/// One line per finalize attempt; a written one carries its time, size and freshness (a
/// field that is `None` is left out of the line).
pub fn session(outcome: SessionOutcome, stitched: Option<&Stitched>) {
    tracing::info!(
        target: TARGET,
        metric = "session",
        outcome = outcome.as_str(),
        sessions = 1u64,
        stitch_seconds = stitched.map(|s| s.took.as_secs_f64()),
        stitch_bytes = stitched.map(|s| s.bytes),
        freshness_seconds = stitched.and_then(Stitched::freshness),
        "metric"
    );
}

/// One line per queue message a worker handled: `job` is `finalize`, `reconcile` or
/// `unknown`; `outcome` what the worker answered.
pub fn queue_message(job: &'static str, outcome: &'static str) {
    tracing::info!(
        target: TARGET,
        metric = "queue_message",
        job,
        outcome,
        messages = 1u64,
        "metric"
    );
}

/// One line per sweep (`mode` `inline`) or dispatch (`queue`): how long it took, how many
/// sessions it stitched or published, and how many it left for the next tick.
pub fn sweep(mode: &'static str, took: Duration, sessions: usize, deferred: usize) {
    tracing::info!(
        target: TARGET,
        metric = "sweep",
        mode,
        sweeps = 1u64,
        sweep_seconds = took.as_secs_f64(),
        sweep_sessions = sessions as u64,
        sweep_deferred = deferred as u64,
        "metric"
    );
}

/// One line per reconcile pass or range: objects checked, chunks recovered.
pub fn reconcile(took: Duration, checked: u64, recovered: u64) {
    tracing::info!(
        target: TARGET,
        metric = "reconcile",
        reconcile_checked = checked,
        reconcile_recovered = recovered,
        reconcile_seconds = took.as_secs_f64(),
        "metric"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_unique_and_fields_do_not_collide() {
        let mut seen = std::collections::BTreeSet::new();
        for spec in SPECS {
            assert!(seen.insert(spec.metric), "{} twice", spec.metric);
        }
        // A value name shared by two kinds would be two metrics under one name in CloudWatch.
        let mut values = std::collections::BTreeSet::new();
        for spec in SPECS {
            for (value, _) in spec.values {
                assert!(values.insert(*value), "value {value} in two kinds");
                assert!(!spec.dimensions.contains(value));
            }
        }
        assert_eq!(spec("session").unwrap().dimensions, &["outcome"]);
        assert!(spec("nope").is_none());
    }

    #[test]
    fn freshness_is_from_the_last_chunk_and_never_negative() {
        let s = Stitched {
            took: Duration::from_millis(1500),
            bytes: 10,
            last_chunk_at: Some(Millis(10_000)),
            written_at: Millis(72_500),
        };
        assert_eq!(s.freshness(), Some(62.5));
        let early = Stitched {
            written_at: Millis(9_000),
            ..s
        };
        assert_eq!(early.freshness(), Some(0.0));
        let unknown = Stitched {
            last_chunk_at: None,
            ..s
        };
        assert_eq!(unknown.freshness(), None);
    }
}
