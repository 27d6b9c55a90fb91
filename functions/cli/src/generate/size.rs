//! The sizes `rrstitch generate --session-bytes` takes: decimal and binary units both, since a
//! test asks for "210MB" (the size that broke a browser) as often as for "2MiB".

use anyhow::{bail, Context, Result};

/// Parses `210MB`, `2MiB`, `500kB`, `1048576` (decimal and binary units).
pub fn parse_size(raw: &str) -> Result<u64> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let num: f64 = num
        .parse()
        .with_context(|| format!("{raw:?} is not a size like 210MB"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => bail!("unknown size unit {other:?} in {raw:?}"),
    };
    Ok((num * mult) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_both_unit_systems() {
        assert_eq!(parse_size("210MB").unwrap(), 210_000_000);
        assert_eq!(parse_size("2MiB").unwrap(), 2 * 1024 * 1024);
        assert_eq!(parse_size("1048576").unwrap(), 1_048_576);
        assert!(parse_size("12 parsecs").is_err());
    }
}
