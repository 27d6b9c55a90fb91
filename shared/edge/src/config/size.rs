//! Byte sizes: the one grammar every size the project takes is written in, whether a variable
//! (`RRSTITCH_SEGMENT_BYTES`, `RRSTITCH_MAX_CHUNK_BYTES`, …) or a CLI flag
//! (`rrstitch generate --session-bytes`), and the settings that are sizes.
//!
//! Three parsers used to disagree (`8MiB` was a size to the configuration and `8MB` was not,
//! while the CLI took both); [`parse_bytes`] is the only one now.

use thiserror::Error;

use super::{ConfigError, Env};
use rrstitch::engine::{Limits, SegmentLimits};

/// Why a size was refused.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SizeError {
    #[error(
        "not a size: use bytes, or a number with KB/MB/GB (1000) or KiB/MiB/GiB (1024), e.g. 8MiB"
    )]
    Malformed,
    #[error("unknown unit {0:?}: use B, KB/MB/GB (1000) or KiB/MiB/GiB (1024)")]
    Unit(String),
    #[error("zero bytes: use a positive size")]
    Zero,
    #[error("more bytes than fit in 64 bits")]
    Overflow,
}

/// Parses a byte size: a whole or decimal number, an optional space, and an optional unit,
/// any case: `B`; `KB`, `MB`, `GB` (or `K`, `M`, `G`) in powers of 1000; `KiB`, `MiB`, `GiB`
/// in powers of 1024. `4096`, `500kB`, `210MB`, `8MiB`, `1.5GiB`. A fraction of a byte is
/// dropped. Zero, a negative number, an unknown unit and more than `u64::MAX` bytes are
/// refused.
pub fn parse_bytes(text: &str) -> Result<u64, SizeError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(fraction) || fraction.len() > 18 {
        return Err(SizeError::Malformed);
    }
    let unit_bytes: u128 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return Err(SizeError::Unit(unit.trim().to_owned())),
    };
    // Exact: whole.fraction × unit = (whole × 10^d + fraction) × unit / 10^d.
    let scale = 10u128.pow(fraction.len() as u32);
    let whole: u128 = whole.parse().map_err(|_| SizeError::Overflow)?;
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().map_err(|_| SizeError::Malformed)?
    };
    let bytes = whole
        .checked_mul(scale)
        .and_then(|n| n.checked_add(fraction))
        .and_then(|n| n.checked_mul(unit_bytes))
        .ok_or(SizeError::Overflow)?
        / scale;
    match u64::try_from(bytes) {
        Ok(0) => Err(SizeError::Zero),
        Ok(bytes) => Ok(bytes),
        Err(_) => Err(SizeError::Overflow),
    }
}

/// The largest segment `RRSTITCH_SEGMENT_BYTES` may ask for: what a browser can still load as
/// one document (the viewer reads no segment over 256 MiB, and `metadata.size` calls a session
/// past it too big for a browser). A larger segment is not progressive playback any more.
pub const MAX_SEGMENT_BYTES: u64 = 256 << 20;

/// `RRSTITCH_MAX_CHUNK_BYTES` and `RRSTITCH_MAX_DECOMPRESSED_BYTES`, or the engine's defaults.
pub(super) fn limits(env: &Env) -> Result<Limits, ConfigError> {
    let defaults = Limits::default();
    Ok(Limits {
        max_chunk_bytes: env.size(
            "RRSTITCH_MAX_CHUNK_BYTES",
            defaults.max_chunk_bytes,
            u64::MAX,
        )?,
        max_decompressed_bytes: env.size(
            "RRSTITCH_MAX_DECOMPRESSED_BYTES",
            defaults.max_decompressed_bytes,
            u64::MAX,
        )?,
    })
}

/// The per-session quota, `RRSTITCH_SESSION_MAX_BYTES`: off when unset. Zero is refused at
/// start-up rather than read as "off": a quota of nothing would refuse every chunk, and a
/// template that meant "none" should leave the variable out.
pub(super) fn session_max_bytes(env: &Env) -> Result<Option<u64>, ConfigError> {
    const VAR: &str = "RRSTITCH_SESSION_MAX_BYTES";
    match env.string(VAR) {
        None => Ok(None),
        Some(_) => env.size(VAR, u64::MAX, u64::MAX).map(Some),
    }
}

/// Whether segments are written (`RRSTITCH_SEGMENTS`) and where they are cut
/// (`RRSTITCH_SEGMENT_BYTES`, or the engine's defaults).
pub(super) fn segments(env: &Env) -> Result<Option<SegmentLimits>, ConfigError> {
    if !env.flag("RRSTITCH_SEGMENTS", false)? {
        return Ok(None);
    }
    const VAR: &str = "RRSTITCH_SEGMENT_BYTES";
    match env.string(VAR) {
        None => Ok(Some(SegmentLimits::default())),
        Some(_) => Ok(Some(SegmentLimits::with_max_bytes(env.size(
            VAR,
            SegmentLimits::default().max_bytes,
            MAX_SEGMENT_BYTES,
        )?))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::settings;

    #[test]
    fn every_spelling_of_a_size() {
        for (text, bytes) in [
            ("4096", 4096),
            (" 4096 ", 4096),
            ("1B", 1),
            ("500kB", 500_000),
            ("500KB", 500_000),
            ("500k", 500_000),
            ("210MB", 210_000_000),
            ("210mb", 210_000_000),
            ("210M", 210_000_000),
            ("2GB", 2_000_000_000),
            ("2g", 2_000_000_000),
            ("2KiB", 2048),
            ("2kib", 2048),
            ("2MiB", 2 << 20),
            ("8 MiB", 8 << 20),
            ("2GiB", 2 << 30),
            ("1.5GiB", 3 << 29),
            ("1.5KB", 1500),
            ("0.5KiB", 512),
            ("1.5", 1),
            ("18446744073709551615", u64::MAX),
        ] {
            assert_eq!(parse_bytes(text), Ok(bytes), "{text:?}");
        }
    }

    #[test]
    fn zero_garbage_and_overflow_are_refused() {
        for zero in ["0", "0MiB", "0.0GB", "0.4"] {
            assert_eq!(parse_bytes(zero), Err(SizeError::Zero), "{zero:?}");
        }
        for garbage in ["", "MiB", "-1", "1.2.3", ".5MB", "twelve"] {
            assert_eq!(
                parse_bytes(garbage),
                Err(SizeError::Malformed),
                "{garbage:?}"
            );
        }
        for unit in ["12 parsecs", "8TB", "8MIBS", "8 Mi", "1e6"] {
            assert!(
                matches!(parse_bytes(unit), Err(SizeError::Unit(_))),
                "{unit:?}"
            );
        }
        for huge in [
            "18446744073709551616",
            "18446744073709551615KB",
            "20000000000GiB",
            "999999999999999999999999999999999999999999",
        ] {
            assert_eq!(parse_bytes(huge), Err(SizeError::Overflow), "{huge:?}");
        }
    }

    #[test]
    fn segments_are_off_unless_asked_for_and_sized_in_bytes() {
        assert_eq!(settings(&[]).unwrap().options.segments, None);
        let on = settings(&[("RRSTITCH_SEGMENTS", "1")]).unwrap();
        assert_eq!(on.options.segments, Some(SegmentLimits::default()));
        let small = settings(&[
            ("RRSTITCH_SEGMENTS", "on"),
            ("RRSTITCH_SEGMENT_BYTES", "2MiB"),
        ])
        .unwrap();
        assert_eq!(small.options.segments.unwrap().max_bytes, 2 << 20);
        assert_eq!(small.options.segments.unwrap().checkout_bytes, 256 << 10);
        let plain = settings(&[
            ("RRSTITCH_SEGMENTS", "1"),
            ("RRSTITCH_SEGMENT_BYTES", "4096"),
        ])
        .unwrap();
        assert_eq!(plain.options.segments.unwrap().max_bytes, 4096);
        for bad in ["0", "8GB", "MiB", "-1"] {
            let err = settings(&[("RRSTITCH_SEGMENTS", "1"), ("RRSTITCH_SEGMENT_BYTES", bad)])
                .unwrap_err();
            assert_eq!(err.var, "RRSTITCH_SEGMENT_BYTES", "{bad}");
        }
    }

    #[test]
    fn segment_sizes_take_decimal_units_up_to_what_a_browser_loads() {
        let decimal = settings(&[
            ("RRSTITCH_SEGMENTS", "1"),
            ("RRSTITCH_SEGMENT_BYTES", "8MB"),
        ])
        .unwrap();
        assert_eq!(decimal.options.segments.unwrap().max_bytes, 8_000_000);
        let largest = settings(&[
            ("RRSTITCH_SEGMENTS", "1"),
            ("RRSTITCH_SEGMENT_BYTES", "256MiB"),
        ])
        .unwrap();
        assert_eq!(
            largest.options.segments.unwrap().max_bytes,
            MAX_SEGMENT_BYTES
        );
        let err = settings(&[
            ("RRSTITCH_SEGMENTS", "1"),
            ("RRSTITCH_SEGMENT_BYTES", "257MiB"),
        ])
        .unwrap_err();
        assert!(err.to_string().contains("at most"), "{err}");
    }

    #[test]
    fn the_session_quota_is_off_unless_set_and_never_zero() {
        assert_eq!(settings(&[]).unwrap().options.session_max_bytes, None);
        let set = settings(&[("RRSTITCH_SESSION_MAX_BYTES", "512MiB")]).unwrap();
        assert_eq!(set.options.session_max_bytes, Some(512 << 20));
        for bad in ["0", "0MiB", "lots", "-1"] {
            let err = settings(&[("RRSTITCH_SESSION_MAX_BYTES", bad)]).unwrap_err();
            assert_eq!(err.var, "RRSTITCH_SESSION_MAX_BYTES", "{bad:?}");
        }
    }

    #[test]
    fn chunk_size_limits_are_sizes() {
        let s = settings(&[
            ("RRSTITCH_MAX_CHUNK_BYTES", "32MiB"),
            ("RRSTITCH_MAX_DECOMPRESSED_BYTES", "1GB"),
        ])
        .unwrap();
        assert_eq!(s.options.limits.max_chunk_bytes, 32 << 20);
        assert_eq!(s.options.limits.max_decompressed_bytes, 1_000_000_000);
        let plain = settings(&[("RRSTITCH_MAX_CHUNK_BYTES", "67108864")]).unwrap();
        assert_eq!(plain.options.limits.max_chunk_bytes, 67_108_864);
        for (var, bad) in [
            ("RRSTITCH_MAX_CHUNK_BYTES", "0"),
            ("RRSTITCH_MAX_CHUNK_BYTES", "64 parsecs"),
            ("RRSTITCH_MAX_DECOMPRESSED_BYTES", "99999999999GiB"),
        ] {
            assert_eq!(settings(&[(var, bad)]).unwrap_err().var, var, "{bad}");
        }
    }
}
