//! Chunk object names: which objects are chunks, and the upload time a name carries.
//!
//! A browser SDK names each chunk by its upload time (`2025-05-02T12:10:50.644423+0000.json`).
//! That time is the only ordering a bucket gives us, so it is parsed strictly: a name that is
//! not a timestamp cannot be placed in a session and is rejected, never guessed at.
//!
//! Ordering is by the parsed instant (so `+0200` and `Z` names interleave correctly), ties by
//! the full object name, which makes the order total and the same on every run.

use std::cmp::Ordering;
use std::fmt;

use crate::reject::Reject;

/// What an object name says about the object, before its body is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameClass {
    /// Not a chunk candidate (wrong suffix, outside the prefix, a directory marker): counted
    /// as ignored, never as rejected.
    Ignored,
    /// A candidate whose name does not parse: rejected without reading the body.
    Rejected(Reject),
    /// A chunk name: time and compression are known.
    Chunk(ChunkName),
}

/// A parsed chunk object name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChunkName {
    /// The full object name (including any prefix), as the bucket knows it.
    object: String,
    /// The timestamp text exactly as it stands in the name; goes into `timestamp_list`.
    timestamp: String,
    /// The instant in nanoseconds since the Unix epoch (i128: years 0–9999 fit).
    instant_ns: i128,
    /// `.json.gz`: the body is gzip-compressed by name.
    gzip: bool,
}

impl ChunkName {
    /// Classifies an object name. `prefix` is the configured chunk prefix ("" for none).
    pub fn classify(object: &str, prefix: &str) -> NameClass {
        let Some(rest) = object.strip_prefix(prefix) else {
            return NameClass::Ignored;
        };
        let base = rest.rsplit('/').next().unwrap_or(rest);
        let (stem, gzip) = if let Some(stem) = base.strip_suffix(".json.gz") {
            (stem, true)
        } else if let Some(stem) = base.strip_suffix(".json") {
            (stem, false)
        } else {
            return NameClass::Ignored;
        };
        match parse_timestamp(stem) {
            Some(instant_ns) => NameClass::Chunk(ChunkName {
                object: object.to_owned(),
                timestamp: stem.to_owned(),
                instant_ns,
                gzip,
            }),
            None => NameClass::Rejected(Reject::BadName {
                stem: stem.to_owned(),
            }),
        }
    }

    /// Parses a name that must be a chunk; `None` when it is ignored or malformed.
    pub fn parse(object: &str) -> Option<ChunkName> {
        match Self::classify(object, "") {
            NameClass::Chunk(name) => Some(name),
            _ => None,
        }
    }

    pub fn object(&self) -> &str {
        &self.object
    }

    pub fn timestamp(&self) -> &str {
        &self.timestamp
    }

    pub fn instant_ns(&self) -> i128 {
        self.instant_ns
    }

    pub fn is_gzip(&self) -> bool {
        self.gzip
    }
}

impl Ord for ChunkName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.instant_ns
            .cmp(&other.instant_ns)
            .then_with(|| self.object.cmp(&other.object))
    }
}

impl PartialOrd for ChunkName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for ChunkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.object)
    }
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.f{0,9}](±HHMM|Z)` into nanoseconds since the epoch.
///
/// Hand-written rather than a date crate: the grammar is fixed and strict (no `±HH:MM`, no
/// space separator, no leap seconds), and strictness is the point.
pub fn parse_timestamp(s: &str) -> Option<i128> {
    let b = s.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        digits.iter().try_fold(0i64, |acc, &d| {
            d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0'))
        })
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos: i64 = 0;
    if b[i] == b'.' {
        let start = i + 1;
        let mut end = start;
        while end < b.len() && b[end].is_ascii_digit() {
            end += 1;
        }
        let digits = end - start;
        if digits > 9 {
            return None;
        }
        if digits > 0 {
            nanos = num(start..end)? * 10i64.pow(9 - digits as u32);
        }
        i = end;
    }
    let offset_secs: i64 = match &b[i..] {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() - i == 5 => {
            let (oh, om) = (num(i + 1..i + 3)?, num(i + 3..i + 5)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if *sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(i128::from(secs) * 1_000_000_000 + i128::from(nanos))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(object: &str) -> ChunkName {
        match ChunkName::classify(object, "") {
            NameClass::Chunk(c) => c,
            other => panic!("{object}: expected a chunk, got {other:?}"),
        }
    }

    #[test]
    fn parses_the_sdk_format() {
        let c = chunk("2025-05-02T12:10:50.644423+0000.json");
        assert_eq!(c.timestamp(), "2025-05-02T12:10:50.644423+0000");
        // 2025-05-02T12:10:50Z is 1746187850 seconds after the epoch.
        assert_eq!(c.instant_ns(), 1_746_187_850_644_423_000);
        assert!(!c.is_gzip());
    }

    #[test]
    fn fraction_of_zero_to_nine_digits_and_zulu() {
        let base = 1_746_187_850i128 * 1_000_000_000;
        assert_eq!(parse_timestamp("2025-05-02T12:10:50Z"), Some(base));
        assert_eq!(parse_timestamp("2025-05-02T12:10:50.Z"), Some(base));
        assert_eq!(
            parse_timestamp("2025-05-02T12:10:50.5Z"),
            Some(base + 500_000_000)
        );
        assert_eq!(
            parse_timestamp("2025-05-02T12:10:50.123456789+0000"),
            Some(base + 123_456_789)
        );
        assert_eq!(parse_timestamp("2025-05-02T12:10:50.1234567890Z"), None);
    }

    #[test]
    fn offsets_move_the_instant() {
        let utc = parse_timestamp("2025-05-02T12:10:50+0000").unwrap();
        let plus2 = parse_timestamp("2025-05-02T14:10:50+0200").unwrap();
        let minus0130 = parse_timestamp("2025-05-02T10:40:50-0130").unwrap();
        assert_eq!(utc, plus2);
        assert_eq!(utc, minus0130);
    }

    #[test]
    fn rejects_what_is_not_the_grammar() {
        for bad in [
            "2025-05-02 12:10:50+0000",
            "2025-05-02T12:10:50+00:00",
            "2025-05-02T12:10:50",
            "2025-13-02T12:10:50Z",
            "2025-02-29T12:10:50Z",
            "2025-05-02T24:00:00Z",
            "2025-05-02T12:10:60Z",
            "2025-05-02T12:10:50+2400",
            "2025-05-02T12:10:50Zjunk",
            "not-a-time",
            "",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad:?} should not parse");
        }
        assert!(
            parse_timestamp("2024-02-29T00:00:00Z").is_some(),
            "leap day"
        );
    }

    #[test]
    fn classifies_suffixes_prefixes_and_markers() {
        assert_eq!(ChunkName::classify("notes.txt", ""), NameClass::Ignored);
        assert_eq!(ChunkName::classify("dir/", ""), NameClass::Ignored);
        assert_eq!(
            ChunkName::classify("2025-05-02T12:10:50Z.json", "in/"),
            NameClass::Ignored
        );
        assert!(chunk("in/2025-05-02T12:10:50Z.json.gz").is_gzip());
        assert!(matches!(
            ChunkName::classify("in/yesterday.json", "in/"),
            NameClass::Rejected(Reject::BadName { .. })
        ));
        let c = match ChunkName::classify("in/2025-05-02T12:10:50Z.json", "in/") {
            NameClass::Chunk(c) => c,
            other => panic!("{other:?}"),
        };
        assert_eq!(c.object(), "in/2025-05-02T12:10:50Z.json");
    }

    #[test]
    fn orders_by_instant_then_name() {
        let mut names = [
            chunk("b/2025-05-02T12:00:00Z.json"),
            chunk("2025-05-02T13:30:00+0200.json"), // 11:30Z: first
            chunk("a/2025-05-02T12:00:00Z.json"),
        ];
        names.sort();
        let order: Vec<_> = names.iter().map(|n| n.object()).collect();
        assert_eq!(
            order,
            [
                "2025-05-02T13:30:00+0200.json",
                "a/2025-05-02T12:00:00Z.json",
                "b/2025-05-02T12:00:00Z.json"
            ]
        );
    }
}
