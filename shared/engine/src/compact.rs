//! Compact output, always: the seed says every output file is compact, and a chunk uploaded
//! pretty-printed (by a relay, a debugging SDK, Python's `json.dumps` defaults) would
//! otherwise be copied with its whitespace — the demo recording grew from 159 KB to 499 KB.
//!
//! An event is copied as is when it holds no whitespace outside its strings, which is what
//! SDKs write; only an event with some is rewritten, dropping exactly that whitespace and
//! keeping every other byte (strings, escapes, number forms) as it was. The check is a
//! memchr-driven walk from quote to quote, not a parse: serde_json has already validated
//! the event, so only the string boundaries matter.

use memchr::{memchr2, memchr3};

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
pub fn is_compact(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    // A raw newline, return or tab cannot be inside a JSON string (they must be escaped), so
    // any of them settles it at memchr speed; only spaces need the string walk.
    if memchr3(b'\n', b'\r', b'\t', bytes).is_some() {
        return false;
    }
    let mut at = 0;
    while let Some(found) = memchr2(b'"', b' ', &bytes[at..]) {
        let hit = at + found;
        if bytes[hit] == b' ' {
            return false;
        }
        at = string_end(bytes, hit) + 1;
    }
    true
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
