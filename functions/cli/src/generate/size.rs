//! The sizes `rrstitch generate --session-bytes` takes: decimal and binary units both, since a
//! test asks for "210MB" (the size that broke a browser) as often as for "2MiB".

use anyhow::Result;

/// Parses `210MB`, `2MiB`, `500kB`, `1048576`: the one size grammar of every size the
/// project takes ([`rrstitch_edge::config::parse_bytes`]).
pub fn parse_size(raw: &str) -> Result<u64> {
    rrstitch_edge::config::parse_bytes(raw).map_err(|e| anyhow::anyhow!("{raw:?}: {e}"))
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
