//! Wall-clock instants as the index stores them.
//!
//! The engine never reads a clock; the service takes `now` as an argument so sweeps and
//! leases are testable. [`Millis`] is that argument: milliseconds since the Unix epoch, which
//! every index backend stores natively (SQLite integer, Firestore timestamp, DynamoDB number).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Millis(pub i64);

/// A duration in whole milliseconds, saturating: the one place a [`Duration`] becomes a
/// number. `as_millis() as i64` would wrap a "forever" TTL or lease into the past.
pub fn saturating_millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Millis {
    /// The latest instant every index backend stores: 9999-12-31T23:59:59.999Z (Firestore's
    /// timestamps end there). A deadline past it is this instant: "never", in practice.
    pub const LATEST: Millis = Millis(253_402_300_799_999);
    /// The earliest one: 0001-01-01T00:00:00.000Z.
    pub const EARLIEST: Millis = Millis(-62_135_596_800_000);

    pub fn now() -> Self {
        Self::of(SystemTime::now())
    }

    /// A wall-clock time (a file's modification time, say); before the epoch counts as it.
    pub fn of(t: SystemTime) -> Self {
        Millis(saturating_millis(
            t.duration_since(UNIX_EPOCH).unwrap_or_default(),
        ))
    }

    /// `self + d`, at most [`Millis::LATEST`]: a huge TTL, lease or idle time is a time far
    /// ahead, never a wrapped one in the past.
    pub fn plus(self, d: Duration) -> Self {
        Millis(
            self.0
                .saturating_add(saturating_millis(d))
                .min(Self::LATEST.0),
        )
    }

    /// `self - d`, at least [`Millis::EARLIEST`].
    pub fn minus(self, d: Duration) -> Self {
        Millis(
            self.0
                .saturating_sub(saturating_millis(d))
                .max(Self::EARLIEST.0),
        )
    }

    /// `2025-05-02T12:10:50.644Z`: sortable as text.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1000);
        let ms = self.0.rem_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    /// Parses what [`Millis::to_rfc3339`] writes (and any RFC 3339 time the engine accepts
    /// with a `Z` or `±HHMM` offset).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        crate::engine::name::parse_timestamp(s).map(|ns| Millis((ns / 1_000_000) as i64))
    }
}

/// How far ahead a deadline may be: `start + d` when `d` is under a century, else a century
/// on. `Instant + Duration` panics on overflow, which a huge `RRSTITCH_SWEEP_BUDGET_SECS`
/// once made every sweep do.
pub fn deadline(start: tokio::time::Instant, d: Duration) -> tokio::time::Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 86_400);
    start + d.min(FAR)
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// Year, month and day of `z` days since 1970-01-01: the inverse of the engine's
/// `days_from_civil` (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_back() {
        let t = Millis(1_746_187_850_644);
        assert_eq!(t.to_rfc3339(), "2025-05-02T12:10:50.644Z");
        assert_eq!(Millis::parse_rfc3339(&t.to_rfc3339()), Some(t));
        assert_eq!(Millis(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Millis(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn durations_past_an_i64_of_milliseconds_saturate() {
        let now = Millis(1_746_187_850_644);
        let forever = Duration::from_secs(999_999_999_999 * 86_400);
        assert_eq!(now.plus(forever), Millis::LATEST, "wrapped into the past");
        assert_eq!(now.plus(Duration::MAX), Millis::LATEST);
        assert_eq!(now.minus(forever), Millis::EARLIEST);
        assert_eq!(now.minus(Duration::MAX), Millis::EARLIEST);
        assert_eq!(
            Millis(i64::MAX).plus(Duration::from_secs(1)),
            Millis::LATEST
        );
        // Ordinary durations are exact.
        assert_eq!(now.plus(Duration::from_millis(1500)).0, now.0 + 1500);
        assert_eq!(now.minus(Duration::from_secs(300)).0, now.0 - 300_000);
        assert_eq!(Millis::LATEST.to_rfc3339(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Millis::EARLIEST.to_rfc3339(), "0001-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_deadline_never_overflows_an_instant() {
        let start = tokio::time::Instant::now();
        assert_eq!(
            deadline(start, Duration::from_secs(240)),
            start + Duration::from_secs(240)
        );
        assert!(deadline(start, Duration::MAX) > start + Duration::from_secs(86_400 * 365));
    }

    #[test]
    fn text_order_is_time_order() {
        let a = Millis(1_000).to_rfc3339();
        let b = Millis(1_746_187_850_644).to_rfc3339();
        assert!(a < b);
    }
}
