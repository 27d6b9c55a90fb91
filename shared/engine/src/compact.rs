//! Compact output, always: the seed says every output file is compact, and a chunk uploaded
//! pretty-printed (by a relay, a debugging SDK, Python's `json.dumps` defaults) would
//! otherwise be copied with its whitespace — the demo recording grew from 159 KB to 499 KB.
//!
//! An event is copied as is when it holds no whitespace outside its strings, which is what
//! SDKs write; only an event with some is rewritten, dropping exactly that whitespace and
//! keeping every other byte (strings, escapes, number forms) as it was. The check is a
//! bitmask scan, not a parse: serde_json has already validated the event, so only the
//! string boundaries matter.

use memchr::memchr2;

/// JSON's insignificant whitespace.
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

/// The end of the string whose opening quote is at `open` (the index of its closing
/// quote), in validated JSON.
fn string_end(bytes: &[u8], open: usize) -> usize {
    let mut at = open + 1;
    loop {
        let hit = at + memchr2(b'"', b'\\', &bytes[at..]).expect("validated JSON closes strings");
        if bytes[hit] == b'"' {
            return hit;
        }
        at = hit + 2; // an escape: skip the escaped byte (`\uXXXX`'s digits are plain bytes)
    }
}

/// Whether `raw` (one validated JSON value) has no whitespace outside its strings.
///
/// simdjson's first stage, reduced to one question: 64 bytes at a time, bitmasks of quotes,
/// backslashes and whitespace; escaped quotes found with the odd-backslash-run trick; the
/// in-string mask as the prefix XOR of the real quotes. The masks come from SSE2 compares
/// (the x86_64 baseline; a plain loop elsewhere), so this runs at several GB/s: a
/// quote-to-quote memchr walk cost a fifth of a stitch, and the plain loop a third.
pub fn is_compact(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut state = Scan::default();
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        if state.has_outside_ws(block.try_into().expect("64 bytes")) {
            return false;
        }
    }
    let rest = blocks.remainder();
    if rest.is_empty() {
        return true;
    }
    // Pad with a byte that is neither a quote, a backslash nor whitespace.
    let mut last = [b'0'; 64];
    last[..rest.len()].copy_from_slice(rest);
    !state.has_outside_ws(&last)
}

/// What carries from one 64-byte block to the next.
#[derive(Default)]
struct Scan {
    /// The block ended on an odd run of backslashes: its first byte is escaped.
    escaped: u64,
    /// All ones when the block ended inside a string.
    in_string: u64,
}

impl Scan {
    fn has_outside_ws(&mut self, block: &[u8; 64]) -> bool {
        let (quotes, backslashes, ws) = masks(block);
        let quotes = quotes & !self.escaped_bits(backslashes);
        let inside = prefix_xor(quotes) ^ self.in_string;
        self.in_string = ((inside as i64) >> 63) as u64;
        ws & !inside != 0
    }

    /// The bytes escaped by a backslash (simdjson's `find_escaped`).
    fn escaped_bits(&mut self, backslashes: u64) -> u64 {
        const EVEN: u64 = 0x5555_5555_5555_5555;
        let backslashes = backslashes & !self.escaped;
        let follows_escape = (backslashes << 1) | self.escaped;
        let odd_starts = backslashes & !EVEN & !follows_escape;
        let (even_starts, overflow) = odd_starts.overflowing_add(backslashes);
        self.escaped = u64::from(overflow);
        let invert = even_starts << 1;
        (EVEN ^ invert) & follows_escape
    }
}

/// Bitmasks of a block's quotes, backslashes and whitespace: bit i for byte i.
#[cfg(target_arch = "x86_64")]
fn masks(block: &[u8; 64]) -> (u64, u64, u64) {
    use std::arch::x86_64::{
        __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    };
    let (mut quotes, mut backslashes, mut ws) = (0u64, 0u64, 0u64);
    // SAFETY: SSE2 is part of the x86_64 baseline, so these intrinsics exist on every
    // x86_64 CPU; each unaligned load reads 16 bytes inside the 64-byte array.
    unsafe {
        let splat = |b: u8| _mm_set1_epi8(b as i8);
        let (quote, backslash) = (splat(b'"'), splat(b'\\'));
        let (space, newline, ret, tab) = (splat(b' '), splat(b'\n'), splat(b'\r'), splat(b'\t'));
        for i in 0..4 {
            let v = _mm_loadu_si128(block.as_ptr().add(16 * i).cast::<__m128i>());
            let bits = |m: __m128i| u64::from(_mm_movemask_epi8(m) as u16) << (16 * i);
            quotes |= bits(_mm_cmpeq_epi8(v, quote));
            backslashes |= bits(_mm_cmpeq_epi8(v, backslash));
            let blank = _mm_or_si128(
                _mm_or_si128(_mm_cmpeq_epi8(v, space), _mm_cmpeq_epi8(v, newline)),
                _mm_or_si128(_mm_cmpeq_epi8(v, ret), _mm_cmpeq_epi8(v, tab)),
            );
            ws |= bits(blank);
        }
    }
    (quotes, backslashes, ws)
}

/// Bitmasks of a block's quotes, backslashes and whitespace: bit i for byte i.
#[cfg(not(target_arch = "x86_64"))]
fn masks(block: &[u8; 64]) -> (u64, u64, u64) {
    let mask = |want: fn(u8) -> bool| {
        block
            .iter()
            .enumerate()
            .fold(0u64, |m, (i, &b)| m | (u64::from(want(b)) << i))
    };
    (mask(|b| b == b'"'), mask(|b| b == b'\\'), mask(is_ws))
}

/// Bit i is the XOR of bits 0..=i: set from an opening quote up to (not including) the
/// closing one.
fn prefix_xor(mut x: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        x ^= x << shift;
    }
    x
}

/// Appends `raw` (one validated JSON value) to `out` without whitespace outside strings.
pub fn compact_into(raw: &str, out: &mut Vec<u8>) {
    let bytes = raw.as_bytes();
    out.reserve(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let b = bytes[at];
        if b == b'"' {
            let end = string_end(bytes, at);
            out.extend_from_slice(&bytes[at..=end]);
            at = end + 1;
        } else {
            if !is_ws(b) {
                out.push(b);
            }
            at += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn compact(raw: &str) -> String {
        let mut out = Vec::new();
        compact_into(raw, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn compact_events_are_recognized_and_left_alone() {
        for raw in [
            r#"{"type":3,"data":{"text":"a b\tc"}}"#,
            r#"{"a":"say \"hi there\"","b":"\\"}"#,
            r#"{"k":"\\\" x"}"#,
            "{}",
        ] {
            assert!(is_compact(raw), "{raw}");
            assert_eq!(compact(raw), raw);
        }
    }

    #[test]
    fn whitespace_outside_strings_is_found_and_dropped() {
        let cases = [
            ("{\"type\": 3}", "{\"type\":3}"),
            (
                "{\n  \"a\": [1, 2],\n  \"b\": \"x y\"\n}",
                "{\"a\":[1,2],\"b\":\"x y\"}",
            ),
            ("{\"a\":\"q\\\"\" , \"b\":1}", "{\"a\":\"q\\\"\",\"b\":1}"),
            ("{\"a\":1.50e+3 }", "{\"a\":1.50e+3}"),
        ];
        for (raw, want) in cases {
            assert!(!is_compact(raw), "{raw}");
            assert_eq!(compact(raw), want);
        }
    }

    proptest! {
        /// Pretty-printing any value and compacting it gives serde_json's compact form, and
        /// the compact form is recognized as such.
        #[test]
        fn compacting_undoes_pretty_printing(value in any_json()) {
            let pretty = serde_json::to_string_pretty(&value).unwrap();
            let compact_text = serde_json::to_string(&value).unwrap();
            prop_assert_eq!(compact(&pretty), compact_text.clone());
            prop_assert!(is_compact(&compact_text));
            prop_assert_eq!(is_compact(&pretty), pretty == compact_text);
        }
    }

    proptest! {
        /// Long strings full of backslashes and quotes, so escapes and strings straddle the
        /// 64-byte blocks: the scan agrees with a byte-by-byte walk.
        #[test]
        fn the_block_scan_agrees_with_a_byte_walk(
            parts in prop::collection::vec(("[\\\\\" a]{0,90}", prop::sample::select(vec!["", " ", "\n", "\t"])), 1..8),
        ) {
            let items: Vec<String> = parts
                .iter()
                .map(|(text, ws)| format!("{ws}{}{ws}", serde_json::to_string(text).unwrap()))
                .collect();
            let raw = format!("[{}]", items.join(","));
            serde_json::from_str::<Value>(&raw).unwrap();
            prop_assert_eq!(is_compact(&raw), walk_is_compact(&raw), "{}", raw);
        }
    }

    /// The reference: a byte-by-byte walk with an in-string flag.
    fn walk_is_compact(raw: &str) -> bool {
        let (mut inside, mut escaped) = (false, false);
        for b in raw.bytes() {
            if inside {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => inside = false,
                    _ => {}
                }
            } else if b == b'"' {
                inside = true;
            } else if is_ws(b) {
                return false;
            }
        }
        true
    }

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(Value::from),
            "[ a\"\\\\\\n\t{}:,é]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z \"]{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }
}
