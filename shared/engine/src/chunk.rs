//! Reading one chunk object: from stored bytes to validated events, without building trees.
//!
//! The body is `{"session_guid", "session_data": [events], "environment"}`. Events are never
//! deserialized into values: each is kept as the exact bytes it had (a slice of the input),
//! and only the few fields rrstitch needs (`type`, `timestamp`, a Meta's `href`, an
//! interaction's `source`/`type`) are read from it. All of that happens in serde_json's one
//! validating pass over the chunk: each event is visited as a map whose member values are
//! captured raw (slices of the input, nothing built), and the event's own bytes are the
//! stretch from the `{` before its first member to the `}` after its last. No byte is walked
//! twice. That is what lets the stitcher copy events byte for byte, and what keeps deep DOM
//! snapshots safe: serde_json skips over a value it does not deserialize with a loop, not
//! recursion, so a snapshot nested 100,000 levels deep is just bytes to it (its 128-level
//! limit applies only to typed deserialization, which never goes deeper than an event's
//! top-level members here).

use std::borrow::Cow;

use serde_json::value::RawValue;

use crate::event::{self, Event};
use crate::guid::SessionGuid;
use crate::locate::span;
use crate::members::{EventsField, Top};
use crate::reject::Reject;

/// One validated chunk, borrowing its events from the decoded text.
#[derive(Debug)]
pub struct Chunk<'a> {
    pub session_guid: SessionGuid,
    pub environment: String,
    /// The `session_data` events exactly as stored, first to last (without the brackets);
    /// its hash identifies duplicate uploads.
    pub session_data: &'a str,
    pub events: Vec<Event<'a>>,
    /// The text began with a UTF-8 byte order mark, stripped here: JSON forbids it, but
    /// editors and some relays write one, and refusing the chunk would lose all its events.
    pub byte_order_mark: bool,
}

impl Chunk<'_> {
    /// Identity of the event payload, for skipping an SDK's re-upload under a new name.
    pub fn data_hash(&self) -> u128 {
        xxhash_rust::xxh3::xxh3_128(self.session_data.as_bytes())
    }
}

/// Parses and validates decoded chunk text.
pub fn parse(text: &str) -> Result<Chunk<'_>, Reject> {
    let (text, byte_order_mark) = match text.strip_prefix('\u{feff}') {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    let first = text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .bytes()
        .next();
    let found = match first {
        Some(b'{') => None,
        Some(b'[') => Some("an array"),
        Some(b'"') => Some("a string"),
        Some(b'n') => Some("null"),
        Some(b't' | b'f') => Some("a boolean"),
        Some(b'-' | b'0'..=b'9') => Some("a number"),
        None => return Err(Reject::Empty),
        Some(_) => None, // not JSON at all: let the parser say where
    };
    if let Some(found) = found {
        return Err(Reject::NotAnObject { found });
    }
    let top: Top<'_> = serde_json::from_str(text).map_err(bad_json)?;

    let guid_raw = top.session_guid.ok_or(Reject::MissingField {
        field: "session_guid",
    })?;
    let guid: Cow<'_, str> = string_field(guid_raw, "session_guid")?;
    let session_guid = SessionGuid::parse(&guid)?;

    let env_raw = top.environment.ok_or(Reject::MissingField {
        field: "environment",
    })?;
    let environment = string_field(env_raw, "environment")?.into_owned();

    let raw_events = match top.session_data {
        None => {
            return Err(Reject::MissingField {
                field: "session_data",
            })
        }
        Some(EventsField::NotArray) => {
            return Err(Reject::WrongType {
                field: "session_data",
                expected: "an array of rrweb events",
            })
        }
        Some(EventsField::Array(events)) => events,
    };
    // A vector of its own, sized exactly: collecting straight from `raw_events` would reuse
    // its larger buffer in place and keep it for as long as the chunk lives.
    let mut events = Vec::with_capacity(raw_events.len());
    for (index, members) in raw_events.into_iter().enumerate() {
        events.push(
            event::event(text, members).map_err(|reason| Reject::BadEvent { index, reason })?,
        );
    }
    let session_data = match (events.first(), events.last()) {
        (Some(first), Some(last)) => span(text, first.raw, last.raw),
        _ => "",
    };

    Ok(Chunk {
        session_guid,
        environment,
        session_data,
        events,
        byte_order_mark,
    })
}

fn bad_json(e: serde_json::Error) -> Reject {
    Reject::BadJson {
        reason: e.to_string(),
    }
}

fn string_field<'a>(raw: &'a RawValue, field: &'static str) -> Result<Cow<'a, str>, Reject> {
    let wrong = || Reject::WrongType {
        field,
        expected: "a string",
    };
    if !raw.get().starts_with('"') {
        return Err(wrong());
    }
    // Borrowed when the string has no escapes; escapes need an owned copy.
    serde_json::from_str::<Cow<'a, str>>(raw.get()).map_err(|_| wrong())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk_text(events: &str) -> String {
        format!(r#"{{"session_guid":"s-1","session_data":[{events}],"environment":"prod"}}"#)
    }

    fn reject(text: &str) -> Reject {
        parse(text).expect_err("should be rejected")
    }

    #[test]
    fn reads_fields_and_keeps_event_bytes() {
        let text = chunk_text(
            r#"{"type":4,"data":{"href":"https://a.test/"},"timestamp":1},{"timestamp":2.5, "type":3,"data":{"source":2,"type":2,"id":9}}"#,
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.session_guid.as_str(), "s-1");
        assert_eq!(c.environment, "prod");
        assert_eq!(c.events.len(), 2);
        assert_eq!(c.events[0].href.as_deref(), Some("https://a.test/"));
        assert_eq!(
            c.events[1].raw,
            r#"{"timestamp":2.5, "type":3,"data":{"source":2,"type":2,"id":9}}"#
        );
        assert!(c.events[1].is_click);
        assert_eq!(c.events[1].timestamp.as_f64(), Some(2.5));
    }

    #[test]
    fn clicks_are_mouse_interactions_of_type_click_only() {
        let events = [
            (r#"{"source":2,"type":2,"id":1}"#, true),
            (r#"{"type":2,"source":2}"#, true),
            (r#"{"source":2,"type":1}"#, false),
            (r#"{"source":0,"adds":[]}"#, false),
            (r#"{"source":1,"positions":[]}"#, false),
        ];
        for (data, click) in events {
            let text = chunk_text(&format!(r#"{{"type":3,"timestamp":1,"data":{data}}}"#));
            assert_eq!(parse(&text).unwrap().events[0].is_click, click, "{data}");
        }
    }

    /// A relay that round-trips numbers through doubles writes `2.0`: still a click, read
    /// with the same integral rule as `type`.
    #[test]
    fn an_interactions_integral_float_source_and_type_are_read() {
        for data in [
            r#"{"source":2,"type":2.0,"id":1}"#,
            r#"{"source":2.0,"type":2}"#,
        ] {
            let text = chunk_text(&format!(r#"{{"type":3,"timestamp":1,"data":{data}}}"#));
            assert!(parse(&text).unwrap().events[0].is_click, "{data}");
        }
        let text = chunk_text(r#"{"type":3,"timestamp":1,"data":{"type":9.0,"source":2e0}}"#);
        let event = &parse(&text).unwrap().events[0];
        assert_eq!((event.source, event.interaction), (Some(2), Some(9)));
    }

    #[test]
    fn a_byte_order_mark_is_stripped_and_noted() {
        let text = format!("\u{feff}{}", chunk_text(r#"{"type":3,"timestamp":1}"#));
        let c = parse(&text).unwrap();
        assert!(c.byte_order_mark);
        assert_eq!(c.events[0].raw, r#"{"type":3,"timestamp":1}"#);
        assert!(!parse(&chunk_text("")).unwrap().byte_order_mark);
        // Only at the very start: one inside the text is still not JSON.
        assert!(matches!(reject(" \u{feff}{}"), Reject::BadJson { .. }));
    }

    #[test]
    fn an_integral_float_type_is_its_integer() {
        for (raw, kind) in [("3.0", 3), ("4e0", 4), ("2", 2), ("-0.0", 0)] {
            let text = chunk_text(&format!(r#"{{"type":{raw},"timestamp":1}}"#));
            assert_eq!(parse(&text).unwrap().events[0].kind, kind, "{raw}");
        }
        for raw in ["3.5", "1e300", "\"3\""] {
            let text = chunk_text(&format!(r#"{{"type":{raw},"timestamp":1}}"#));
            assert!(
                matches!(parse(&text), Err(Reject::BadEvent { .. })),
                "{raw}"
            );
        }
    }

    #[test]
    fn a_source_given_twice_in_data_is_refused() {
        // The player reads the last of two equal keys: the first is not what it plays.
        for data in [
            r#"{"source":1,"source":5,"text":"x","id":4}"#,
            r#"{"source":0,"texts":[],"source":5}"#,
            r#"{"source":2,"type":1,"type":2,"id":4}"#,
            r#"{"source":1,"\u0073ource":5,"text":"x","id":4}"#,
        ] {
            let text = chunk_text(&format!(r#"{{"type":3,"timestamp":1,"data":{data}}}"#));
            match parse(&text) {
                Err(Reject::BadEvent { index: 0, reason }) => {
                    assert!(reason.contains("duplicate"), "{data}: {reason}")
                }
                other => panic!("{data}: {other:?}"),
            }
        }
        // Nested `source` members are no duplicates; `source` in a text is no member.
        let text = chunk_text(
            r#"{"type":3,"timestamp":1,"data":{"source":0,"adds":[{"node":{"tagName":"source","attributes":{"source":"a"}}}],"texts":[{"value":"\"source\":5"}]}}"#,
        );
        assert_eq!(parse(&text).unwrap().events[0].source, Some(0));
        let text =
            chunk_text(r#"{"type":3.0,"timestamp":1,"data":{"source":2.0,"type":2.0,"id":4}}"#);
        assert!(
            parse(&text).unwrap().events[0].is_click,
            "doubles are integers here too"
        );
    }

    #[test]
    fn ignores_other_top_level_fields() {
        let text = r#"{"v":2,"session_guid":"g","extra":{"deep":[1,2]},"session_data":[],"environment":"e"}"#;
        assert!(parse(text).unwrap().events.is_empty());
    }

    #[test]
    fn names_the_missing_or_mistyped_field() {
        assert_eq!(
            reject(r#"{"session_data":[],"environment":"e"}"#),
            Reject::MissingField {
                field: "session_guid"
            }
        );
        assert_eq!(
            reject(r#"{"session_guid":"g","session_data":[]}"#),
            Reject::MissingField {
                field: "environment"
            }
        );
        assert_eq!(
            reject(r#"{"session_guid":"g","environment":"e"}"#),
            Reject::MissingField {
                field: "session_data"
            }
        );
        assert!(matches!(
            reject(r#"{"session_guid":7,"session_data":[],"environment":"e"}"#),
            Reject::WrongType {
                field: "session_guid",
                ..
            }
        ));
        assert!(matches!(
            reject(r#"{"session_guid":null,"session_data":[],"environment":"e"}"#),
            Reject::WrongType {
                field: "session_guid",
                ..
            }
        ));
        assert!(matches!(
            reject(r#"{"session_guid":"g","session_data":{},"environment":"e"}"#),
            Reject::WrongType {
                field: "session_data",
                ..
            }
        ));
        assert!(matches!(
            reject(r#"{"session_guid":"g","session_data":[],"environment":["e"]}"#),
            Reject::WrongType {
                field: "environment",
                ..
            }
        ));
    }

    #[test]
    fn names_the_bad_event_index() {
        let cases = [
            (r#"{"type":3,"timestamp":1},{"type":3}"#, 1, "timestamp"),
            (r#"{"type":"3","timestamp":1}"#, 0, "type"),
            (r#"{"type":3.5,"timestamp":1}"#, 0, "type"),
            (r#"{"type":3,"timestamp":"1"}"#, 0, "timestamp"),
            (
                r#"{"type":3,"timestamp":1},{"type":3,"timestamp":2},7"#,
                2,
                "object",
            ),
            (r#"null"#, 0, "object"),
            (r#"{"type":3,"type":3,"timestamp":1}"#, 0, "duplicate"),
        ];
        for (events, at, word) in cases {
            match reject(&chunk_text(events)) {
                Reject::BadEvent { index, reason } => {
                    assert_eq!(index, at, "{events}");
                    assert!(reason.contains(word), "{events}: {reason}");
                }
                other => panic!("{events}: {other:?}"),
            }
        }
    }

    #[test]
    fn hostile_bodies_get_a_reason() {
        assert!(matches!(reject(""), Reject::Empty));
        assert!(matches!(reject("   "), Reject::Empty));
        assert!(matches!(
            reject("[]"),
            Reject::NotAnObject { found: "an array" }
        ));
        assert!(matches!(
            reject("null"),
            Reject::NotAnObject { found: "null" }
        ));
        assert!(matches!(reject("\"s\""), Reject::NotAnObject { .. }));
        assert!(matches!(
            reject("{\"session_guid\":"),
            Reject::BadJson { .. }
        ));
        assert!(matches!(reject("<html>"), Reject::BadJson { .. }));
        assert!(matches!(
            reject(
                r#"{"session_guid":"g","session_guid":"h","session_data":[],"environment":"e"}"#
            ),
            Reject::BadJson { .. }
        ));
        assert!(matches!(
            reject(&chunk_text(r#"{"type":3,"timestamp":NaN}"#)),
            Reject::BadJson { .. }
        ));
        assert!(matches!(
            reject(&chunk_text(r#"{"type":3,"timestamp":Infinity}"#)),
            Reject::BadJson { .. }
        ));
        assert!(matches!(
            reject(r#"{"session_guid":"../x","session_data":[],"environment":"e"}"#),
            Reject::BadGuid { .. }
        ));
    }

    #[test]
    fn deep_nesting_is_just_bytes() {
        let depth = 100_000;
        let deep = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        let event = format!(r#"{{"type":2,"timestamp":5,"data":{{"node":{deep}}}}}"#);
        let text = chunk_text(&event);
        let c = parse(&text).unwrap();
        assert_eq!(c.events[0].raw, event);
        // Deep junk in an ignored top-level field is skipped as well.
        let text =
            format!(r#"{{"x":{deep},"session_guid":"g","session_data":[],"environment":"e"}}"#);
        assert!(parse(&text).is_ok());
    }

    #[test]
    fn duplicate_payloads_hash_alike() {
        let a = chunk_text(r#"{"type":3,"timestamp":1}"#);
        let b = a.replace("prod", "staging");
        let c = chunk_text(r#"{"type":3,"timestamp":2}"#);
        let (a, b, c) = (parse(&a).unwrap(), parse(&b).unwrap(), parse(&c).unwrap());
        assert_eq!(a.data_hash(), b.data_hash());
        assert_ne!(a.data_hash(), c.data_hash());
    }
}
