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

impl Millis {
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Millis(since.as_millis() as i64)
    }

    pub fn plus(self, d: Duration) -> Self {
        Millis(self.0.saturating_add(d.as_millis() as i64))
    }

    pub fn minus(self, d: Duration) -> Self {
        Millis(self.0.saturating_sub(d.as_millis() as i64))
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
    fn text_order_is_time_order() {
        let a = Millis(1_000).to_rfc3339();
        let b = Millis(1_746_187_850_644).to_rfc3339();
        assert!(a < b);
    }
}
