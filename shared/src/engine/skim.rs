//! The top-level members of a JSON object that has already been validated.
//!
//! Reading a chunk validates every event once, with serde_json, while splitting
//! `session_data` into raw events. Reading an event's few fields with serde again would
//! validate the whole event a second time: its `data` (a DOM snapshot, most of a chunk's
//! bytes) sits between `type` and `timestamp`, so a parser has to walk through it to reach
//! the timestamp. Text already known to be valid JSON needs no second validation, only its
//! structure: where strings end (quotes not escaped) and where brackets close. That walk is
//! what this module does; profiled on `make bench`'s data it takes about 60% of the time
//! serde_json's validating skip takes over the same bytes.
//!
//! Everything here assumes valid JSON and is only called on it. On anything else it still
//! never panics or reads out of bounds; it just gives answers that mean nothing.

use std::borrow::Cow;

/// One member of an object: its key (unescaped) and its value's exact text.
pub struct Member<'a> {
    pub key: Cow<'a, str>,
    pub value: &'a str,
}

/// The members of the object `text`, in order, duplicates included.
///
/// `text` must be one valid JSON object, without surrounding whitespace.
pub fn members(text: &str) -> Members<'_> {
    Members {
        text,
        pos: 1,
        done: !text.starts_with('{'),
    }
}

/// Iterator over an object's members; see [`members`].
pub struct Members<'a> {
    text: &'a str,
    pos: usize,
    done: bool,
}

impl<'a> Iterator for Members<'a> {
    type Item = Member<'a>;

    fn next(&mut self) -> Option<Member<'a>> {
        if self.done {
            return None;
        }
        let bytes = self.text.as_bytes();
        let mut pos = skip_ws(bytes, self.pos);
        if bytes.get(pos) == Some(&b',') {
            pos = skip_ws(bytes, pos + 1);
        }
        if bytes.get(pos) != Some(&b'"') {
            // `}`: the end of the object (or, on invalid input, anything else).
            self.done = true;
            return None;
        }
        let key_end = string_end(bytes, pos);
        let key_raw = self.text.get(pos..key_end)?;
        let key = if key_raw.contains('\\') {
            // Keys with escapes are rare; serde_json unescapes them exactly as it would
            // have when deserializing the event.
            Cow::Owned(serde_json::from_str::<String>(key_raw).unwrap_or_default())
        } else {
            Cow::Borrowed(key_raw.get(1..key_raw.len() - 1).unwrap_or_default())
        };
        pos = skip_ws(bytes, key_end);
        if bytes.get(pos) == Some(&b':') {
            pos = skip_ws(bytes, pos + 1);
        }
        let value_end = value_end(bytes, pos);
        let value = self.text.get(pos..value_end).unwrap_or_default();
        self.pos = value_end.max(pos + 1);
        Some(Member { key, value })
    }
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while matches!(bytes.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
    }
    pos
}

/// The position just past the string that opens at `pos` (a `"`).
///
/// Most strings in a DOM snapshot are short (tag names, attribute values), where a plain loop
/// beats setting up a vector search; long ones (text, inline styles, data URLs) switch to
/// `memchr` after the first 32 bytes.
fn string_end(bytes: &[u8], pos: usize) -> usize {
    let mut at = pos + 1;
    let short = bytes.len().min(at + 32);
    while at < short {
        match bytes[at] {
            b'"' => return at + 1,
            b'\\' => at += 2,
            _ => at += 1,
        }
    }
    while let Some(found) = bytes
        .get(at..)
        .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
    {
        at += found;
        if bytes[at] == b'"' {
            return at + 1;
        }
        at += 2; // a backslash and the character it escapes
    }
    bytes.len()
}

/// The position just past the value that starts at `pos`.
fn value_end(bytes: &[u8], pos: usize) -> usize {
    match bytes.get(pos) {
        Some(b'"') => string_end(bytes, pos),
        Some(b'{' | b'[') => container_end(bytes, pos),
        Some(_) => {
            // A number or a literal: it runs to the next delimiter.
            let mut at = pos;
            while let Some(b) = bytes.get(at) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') {
                    break;
                }
                at += 1;
            }
            at
        }
        None => bytes.len(),
    }
}

/// The position just past the object or array that opens at `pos`: bracket depth is counted
/// in a loop, not by recursion, so nesting depth costs nothing.
fn container_end(bytes: &[u8], pos: usize) -> usize {
    let mut depth = 0usize;
    let mut at = pos;
    while at < bytes.len() {
        let b = bytes[at];
        if !STRUCTURAL[b as usize] {
            at += 1;
            continue;
        }
        match b {
            b'"' => {
                at = string_end(bytes, at);
                continue;
            }
            b'{' | b'[' => depth += 1,
            _ => {
                depth -= 1;
                if depth == 0 {
                    return at + 1;
                }
            }
        }
        at += 1;
    }
    bytes.len()
}

/// The bytes that matter outside strings: one table load decides for all the others.
const STRUCTURAL: [bool; 256] = {
    let mut table = [false; 256];
    table[b'"' as usize] = true;
    table[b'{' as usize] = true;
    table[b'}' as usize] = true;
    table[b'[' as usize] = true;
    table[b']' as usize] = true;
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String)> {
        members(text)
            .map(|m| (m.key.into_owned(), m.value.to_owned()))
            .collect()
    }

    #[test]
    fn reads_members_in_order_with_exact_value_text() {
        let text =
            r#"{"type":2,"data":{"node":{"a":[1,{"b":"}]\"{["}],"c":"x"}},"timestamp":1.5e3}"#;
        assert_eq!(
            pairs(text),
            [
                ("type".into(), "2".into()),
                (
                    "data".into(),
                    r#"{"node":{"a":[1,{"b":"}]\"{["}],"c":"x"}}"#.into()
                ),
                ("timestamp".into(), "1.5e3".into()),
            ]
        );
    }

    #[test]
    fn whitespace_escaped_keys_duplicates_and_empty_objects() {
        let text =
            "{ \"t\\u0079pe\" : 3 ,\n\"type\"\t:\r[ ] , \"s\\\\\" : \"a\\\\\" , \"n\": null }";
        assert_eq!(
            pairs(text),
            [
                ("type".into(), "3".into()),
                ("type".into(), "[ ]".into()),
                ("s\\".into(), "\"a\\\\\"".into()),
                ("n".into(), "null".into()),
            ]
        );
        assert!(pairs("{}").is_empty());
        assert!(pairs("{ }").is_empty());
        assert!(pairs("[1]").is_empty());
    }

    #[test]
    fn brackets_and_quotes_inside_strings_are_text() {
        assert_eq!(
            pairs(r#"{"a":["]}{[\"",{"x":"\\"}],"b":2}"#),
            [
                ("a".into(), r#"["]}{[\"",{"x":"\\"}]"#.into()),
                ("b".into(), "2".into())
            ]
        );
    }

    #[test]
    fn deep_nesting_is_a_counter() {
        let deep = format!(
            r#"{{"data":{}{},"timestamp":1}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let got = pairs(&deep);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], ("timestamp".into(), "1".into()));
    }

    #[test]
    fn invalid_text_gives_no_panic() {
        for text in [
            "{",
            "{\"",
            "{\"a",
            "{\"é",
            "{\"a\":",
            "{\"a\":\"\\",
            "{\"a\":[",
            "{\"a\"}",
            "{\"a\":1,,}",
            "{\"a\\é\":1}",
            "{\"a\":\"é",
        ] {
            let _ = pairs(text);
        }
    }
}
