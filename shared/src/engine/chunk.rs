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
use std::io::Read;

use flate2::read::GzDecoder;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Number;

use super::guid::SessionGuid;
use super::reject::Reject;

/// rrweb event types (`EventType` in rrweb's types).
pub mod event_type {
    pub const DOM_CONTENT_LOADED: i64 = 0;
    pub const LOAD: i64 = 1;
    pub const FULL_SNAPSHOT: i64 = 2;
    pub const INCREMENTAL_SNAPSHOT: i64 = 3;
    pub const META: i64 = 4;
    pub const CUSTOM: i64 = 5;
    pub const PLUGIN: i64 = 6;
}

/// `IncrementalSource.MouseInteraction` and `MouseInteractions.Click` in rrweb.
const SOURCE_MOUSE_INTERACTION: i64 = 2;
const MOUSE_CLICK: i64 = 2;

/// Size limits applied before any parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The largest stored object accepted (compressed size for gzip bodies).
    pub max_chunk_bytes: u64,
    /// The largest body a gzip object may expand to: the guard against gzip bombs.
    pub max_decompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_chunk_bytes: 64 * 1024 * 1024,
            max_decompressed_bytes: 256 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Refuses an object by its stored size, before it is downloaded.
    pub fn check_size(&self, size: u64) -> Result<(), Reject> {
        if size > self.max_chunk_bytes {
            return Err(Reject::TooLarge {
                size,
                limit: self.max_chunk_bytes,
            });
        }
        Ok(())
    }
}

/// Turns stored bytes into JSON text: size cap, gzip (by name or by magic bytes, capped),
/// UTF-8 check. Borrows when no decompression is needed.
pub fn decode<'a>(
    raw: &'a [u8],
    gzip_by_name: bool,
    limits: &Limits,
) -> Result<Cow<'a, str>, Reject> {
    limits.check_size(raw.len() as u64)?;
    let bytes: Cow<'a, [u8]> = if gzip_by_name || raw.starts_with(&[0x1f, 0x8b]) {
        let cap = limits.max_decompressed_bytes;
        let mut out = Vec::new();
        GzDecoder::new(raw)
            .take(cap + 1)
            .read_to_end(&mut out)
            .map_err(|e| Reject::BadGzip {
                reason: e.to_string(),
            })?;
        if out.len() as u64 > cap {
            return Err(Reject::GzipTooLarge { limit: cap });
        }
        Cow::Owned(out)
    } else {
        Cow::Borrowed(raw)
    };
    if bytes.is_empty() {
        return Err(Reject::Empty);
    }
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(Reject::ByteOrderMark);
    }
    match bytes {
        Cow::Borrowed(b) => std::str::from_utf8(b).map(Cow::Borrowed),
        Cow::Owned(v) => String::from_utf8(v)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    }
    .map_err(|e| Reject::NotUtf8 {
        offset: e.valid_up_to(),
    })
}

/// One validated chunk, borrowing its events from the decoded text.
#[derive(Debug)]
pub struct Chunk<'a> {
    pub session_guid: SessionGuid,
    pub environment: String,
    /// The `session_data` events exactly as stored, first to last (without the brackets);
    /// its hash identifies duplicate uploads.
    pub session_data: &'a str,
    pub events: Vec<Event<'a>>,
}

/// One rrweb event: its exact bytes plus the fields metadata needs.
#[derive(Debug)]
pub struct Event<'a> {
    /// The event's JSON object exactly as stored, a slice of the chunk's text.
    pub raw: &'a str,
    pub kind: i64,
    pub timestamp: Number,
    /// A Meta event's `data.href`.
    pub href: Option<String>,
    /// An incremental MouseInteraction of type Click.
    pub is_click: bool,
}

impl Chunk<'_> {
    /// Identity of the event payload, for skipping an SDK's re-upload under a new name.
    pub fn data_hash(&self) -> u128 {
        xxhash_rust::xxh3::xxh3_128(self.session_data.as_bytes())
    }
}

/// Parses and validates decoded chunk text.
pub fn parse(text: &str) -> Result<Chunk<'_>, Reject> {
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
        events.push(event(text, members).map_err(|reason| Reject::BadEvent { index, reason })?);
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
    })
}

/// The session a chunk names, read from its first bytes without parsing the rest, when the
/// chunk starts `{"session_guid":"<guid>"` (as SDKs write it); `None` otherwise.
///
/// Only a grouping hint: a chunk found this way is still fully validated before it is
/// stitched, and one that fails is rejected then.
pub fn peek_guid(raw: &[u8]) -> Option<SessionGuid> {
    const KEY: &[u8] = b"\"session_guid\"";
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let skip = |s: &[u8]| -> usize { s.iter().take_while(|b| ws(b)).count() };
    let mut at = skip(raw);
    at += 1;
    if raw.get(at - 1) != Some(&b'{') {
        return None;
    }
    at += skip(&raw[at..]);
    if !raw[at..].starts_with(KEY) {
        return None;
    }
    at += KEY.len();
    at += skip(&raw[at..]);
    if raw.get(at) != Some(&b':') {
        return None;
    }
    at += 1;
    at += skip(&raw[at..]);
    if raw.get(at) != Some(&b'"') {
        return None;
    }
    at += 1;
    let len = raw[at..]
        .iter()
        .take(129)
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        .count();
    if raw.get(at + len) != Some(&b'"') {
        return None;
    }
    let guid = std::str::from_utf8(&raw[at..at + len]).ok()?;
    SessionGuid::parse(guid).ok()
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

/// The top level of a chunk. Each field is captured raw, so `null` and wrong types get a
/// precise reason instead of serde's generic message; unknown fields are skipped.
#[derive(Deserialize)]
struct Top<'a> {
    #[serde(borrow, default, deserialize_with = "some_raw")]
    session_guid: Option<&'a RawValue>,
    /// Split into events in the same pass that reads the top level.
    #[serde(borrow, default, deserialize_with = "some_events")]
    session_data: Option<EventsField<'a>>,
    #[serde(borrow, default, deserialize_with = "some_raw")]
    environment: Option<&'a RawValue>,
}

/// `session_data` as found: what each element holds, or the news that it is not an array.
enum EventsField<'a> {
    Array(Vec<Members<'a>>),
    NotArray,
}

/// What one `session_data` element holds, read in the validating pass: the raw values of
/// the members rrstitch needs, and the first and last member values, which locate the
/// event's own bytes. A problem that is not a JSON syntax error (not an object, a field
/// given twice) is kept here rather than failing the pass, so that a syntax error anywhere
/// in the chunk is still reported as such, as serde_json would.
#[derive(Debug, Default, PartialEq)]
struct Members<'a> {
    kind: Option<&'a str>,
    timestamp: Option<&'a str>,
    data: Option<&'a str>,
    first: Option<&'a str>,
    last: Option<&'a str>,
    problem: Option<&'static str>,
}

/// The member names rrstitch reads; serde_json hands them over unescaped, and a name it
/// cannot borrow (one with escapes) is compared without being allocated.
enum Name {
    Type,
    Timestamp,
    Data,
    Other,
}

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E>(self, name: &str) -> Result<Name, E> {
                Ok(match name {
                    "type" => Name::Type,
                    "timestamp" => Name::Timestamp,
                    "data" => Name::Data,
                    _ => Name::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an rrweb event")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut m = Members::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let value = map.next_value::<&'de RawValue>()?.get();
                    m.first.get_or_insert(value);
                    m.last = Some(value);
                    let (slot, duplicate) = match name {
                        Name::Type => (&mut m.kind, "duplicate field `type`"),
                        Name::Timestamp => (&mut m.timestamp, "duplicate field `timestamp`"),
                        Name::Data => (&mut m.data, "duplicate field `data`"),
                        Name::Other => continue,
                    };
                    if slot.replace(value).is_some() {
                        m.problem.get_or_insert(duplicate);
                    }
                }
                Ok(m)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Members<'de>, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Members::not_an_object())
            }
            fn visit_bool<E>(self, _: bool) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_i64<E>(self, _: i64) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_u64<E>(self, _: u64) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_f64<E>(self, _: f64) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_str<E>(self, _: &str) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
            fn visit_unit<E>(self) -> Result<Members<'de>, E> {
                Ok(Members::not_an_object())
            }
        }
        d.deserialize_any(V)
    }
}

impl Members<'_> {
    fn not_an_object() -> Self {
        Members {
            problem: Some("is not a JSON object"),
            ..Members::default()
        }
    }
}

fn some_events<'de, D: Deserializer<'de>>(d: D) -> Result<Option<EventsField<'de>>, D::Error> {
    struct Events;
    impl<'de> serde::de::Visitor<'de> for Events {
        type Value = EventsField<'de>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an array of rrweb events")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut events = Vec::with_capacity(seq.size_hint().unwrap_or(64));
            while let Some(members) = seq.next_element::<Members<'de>>()? {
                events.push(members);
            }
            Ok(EventsField::Array(events))
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            while map
                .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                .is_some()
            {}
            Ok(EventsField::NotArray)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(EventsField::NotArray)
        }
    }
    d.deserialize_any(Events).map(Some)
}

/// The stretch of `text` from the start of `first` to the end of `last`, both slices of it.
fn span<'a>(text: &'a str, first: &'a str, last: &'a str) -> &'a str {
    let base = text.as_ptr() as usize;
    let start = first.as_ptr() as usize - base;
    let end = last.as_ptr() as usize - base + last.len();
    &text[start..end]
}

fn some_raw<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Turns what the validating pass found in one element into an event.
fn event<'a>(text: &'a str, members: Members<'a>) -> Result<Event<'a>, String> {
    if let Some(problem) = members.problem {
        return Err(problem.into());
    }
    let kind = members
        .kind
        .and_then(|k| serde_json::from_str::<i64>(k).ok())
        .ok_or("has no integer `type`")?;
    let timestamp = members
        .timestamp
        .and_then(|t| serde_json::from_str::<Number>(t).ok())
        .ok_or("has no numeric `timestamp`")?;
    // An event with a `type` has a first and a last member.
    let raw = members
        .first
        .zip(members.last)
        .and_then(|(first, last)| object_around(text, first, last))
        .ok_or("could not be located in the chunk's text")?;
    let mut event = Event {
        raw,
        kind,
        timestamp,
        href: None,
        is_click: false,
    };
    match (kind, members.data) {
        (event_type::META, Some(data)) => event.href = meta_href(data),
        (event_type::INCREMENTAL_SNAPSHOT, Some(data)) => event.is_click = is_click(data),
        _ => {}
    }
    Ok(event)
}

/// The object whose first member's value is `first` and whose last member's value is `last`,
/// both slices of `text`, which serde_json has validated: back from `first` over
/// `{ "name" :` (the name may hold escaped quotes), forward from `last` to the `}`. `None`
/// only if `text` is not what serde_json validated.
fn object_around<'a>(text: &'a str, first: &str, last: &str) -> Option<&'a str> {
    let bytes = text.as_bytes();
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    let offset = |s: &str| (s.as_ptr() as usize).checked_sub(text.as_ptr() as usize);
    let back = |mut at: usize| {
        while at > 0 && ws(bytes[at - 1]) {
            at -= 1;
        }
        at
    };
    let expect = |at: usize, want: u8| (at > 0 && bytes[at - 1] == want).then(|| at - 1);

    let mut at = back(offset(first)?);
    at = expect(back(expect(at, b':')?), b'"')?;
    // The name's opening quote: the nearest quote before, not escaped (an even run of
    // backslashes before it).
    loop {
        let quote = memchr::memrchr(b'"', &bytes[..at])?;
        let backslashes = bytes[..quote]
            .iter()
            .rev()
            .take_while(|&&b| b == b'\\')
            .count();
        at = quote;
        if backslashes % 2 == 0 {
            break;
        }
    }
    let start = expect(back(at), b'{')?;

    let mut end = offset(last)? + last.len();
    while bytes.get(end).is_some_and(|&b| ws(b)) {
        end += 1;
    }
    (bytes.get(end) == Some(&b'}')).then(|| &text[start..=end])
}

fn meta_href(data: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Meta {
        href: Option<String>,
    }
    serde_json::from_str::<Meta>(data).ok()?.href
}

/// Whether an incremental event is a click. DOM mutations (source 0) are the largest events
/// of a session, and rrweb writes `source` first, so a leading `{"source":N` that is not a
/// mouse interaction settles it without scanning the rest.
fn is_click(text: &str) -> bool {
    #[derive(Deserialize)]
    struct Interaction {
        source: Option<i64>,
        #[serde(rename = "type")]
        kind: Option<i64>,
    }
    if let Some(rest) = text.strip_prefix("{\"source\":") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let next = rest.as_bytes().get(digits);
        if digits > 0
            && matches!(next, Some(b',' | b'}'))
            && rest[..digits].parse::<i64>().ok() != Some(SOURCE_MOUSE_INTERACTION)
        {
            return false;
        }
    }
    serde_json::from_str::<Interaction>(text)
        .map(|i| i.source == Some(SOURCE_MOUSE_INTERACTION) && i.kind == Some(MOUSE_CLICK))
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peeks_the_guid_of_an_sdk_shaped_chunk_only() {
        let g = |s: &str| peek_guid(s.as_bytes()).map(|g| g.to_string());
        assert_eq!(
            g(r#"{"session_guid":"abc-1","session_data":[]}"#).as_deref(),
            Some("abc-1")
        );
        assert_eq!(
            g(" {\n \"session_guid\" : \"x.y_z\" , broken").as_deref(),
            Some("x.y_z")
        );
        // Anything else is left to the full parse.
        assert_eq!(g(r#"{"environment":"p","session_guid":"abc"}"#), None);
        assert_eq!(g(r#"{"session_guid":"a\u0062"}"#), None);
        assert_eq!(g(r#"{"session_guid":"../x"}"#), None);
        assert_eq!(g(r#"{"session_guid":"__x__"}"#), None);
        assert_eq!(g(r#"{"session_guid":"unterminated"#), None);
        assert_eq!(
            g(&format!(r#"{{"session_guid":"{}"}}"#, "a".repeat(129))),
            None
        );
        assert_eq!(g(""), None);
    }
    use std::io::Write;

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
    fn decode_checks_size_gzip_utf8_and_bom() {
        let limits = Limits {
            max_chunk_bytes: 100,
            max_decompressed_bytes: 1_000,
        };
        assert_eq!(decode(b"{}", false, &limits).unwrap(), "{}");
        assert!(matches!(
            decode(&[b' '; 101], false, &limits),
            Err(Reject::TooLarge { size: 101, .. })
        ));
        assert_eq!(decode(b"", false, &limits), Err(Reject::Empty));
        assert_eq!(
            decode(b"\xEF\xBB\xBF{}", false, &limits),
            Err(Reject::ByteOrderMark)
        );
        assert_eq!(
            decode(b"{\"a\":\"\xff\"}", false, &limits),
            Err(Reject::NotUtf8 { offset: 6 })
        );

        let gz = |body: &[u8]| {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        };
        // By magic bytes, whatever the name says.
        assert_eq!(
            decode(&gz(b"{\"k\":1}"), false, &limits).unwrap(),
            "{\"k\":1}"
        );
        // A bomb: 50 bytes that expand past the cap.
        let bomb = gz(&vec![b' '; 5_000]);
        assert!(bomb.len() <= 100);
        assert_eq!(
            decode(&bomb, true, &limits),
            Err(Reject::GzipTooLarge { limit: 1_000 })
        );
        assert!(matches!(
            decode(b"not gzip at all", true, &limits),
            Err(Reject::BadGzip { .. })
        ));
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

    /// serde's derive over the event text: the reference for which members an event has.
    #[derive(Deserialize)]
    struct SerdeHead<'a> {
        #[serde(rename = "type", borrow, default, deserialize_with = "some_raw")]
        kind: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "some_raw")]
        timestamp: Option<&'a RawValue>,
        #[serde(borrow, default, deserialize_with = "some_raw")]
        data: Option<&'a RawValue>,
    }

    fn serde_head(text: &str) -> Result<[Option<&str>; 3], ()> {
        let h: SerdeHead<'_> = serde_json::from_str(text).map_err(|_| ())?;
        Ok([h.kind, h.timestamp, h.data].map(|v| v.map(RawValue::get)))
    }

    /// What the validating pass reads from one event, and the bytes it takes for the event.
    fn pass_head(text: &str) -> Result<([Option<&str>; 3], Option<&str>), ()> {
        let m: Members<'_> = serde_json::from_str(text).map_err(|_| ())?;
        if m.problem.is_some() {
            return Err(());
        }
        let raw = m.first.zip(m.last).map(|(f, l)| object_around(text, f, l));
        Ok(([m.kind, m.timestamp, m.data], raw.flatten()))
    }

    fn ws() -> impl proptest::strategy::Strategy<Value = &'static str> {
        proptest::sample::select(vec!["", " ", "\n", "\t ", "\r\n"])
    }

    /// An object of members with keys that matter, near misses, escapes and duplicates.
    fn object_text(
        value: impl proptest::strategy::Strategy<Value = String>,
    ) -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop::sample::select(vec![
            "type",
            "timestamp",
            "data",
            "t\\u0079pe",
            "x",
            "types",
            "",
            "da\\\"ta",
        ]);
        prop::collection::vec((key, value, ws()), 0..6).prop_map(|members| {
            let members: Vec<String> = members
                .into_iter()
                .map(|(k, v, w)| format!("{w}\"{k}\"{w}:{w}{v}{w}"))
                .collect();
            format!("{{{}}}", members.join(","))
        })
    }

    /// JSON text for any value, with whitespace, escapes and brackets inside strings.
    fn json_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            prop::sample::select(vec![
                "0",
                "-12",
                "3.5",
                "1e3",
                "-2.5E-3",
                "true",
                "false",
                "null",
                "9007199254740993",
            ])
            .prop_map(str::to_owned),
            prop::collection::vec(
                prop::sample::select(vec![
                    "a", "\\\"", "\\\\", "\\n", "\\u0079", "]", "}", "{", "[", ",", ":", "é", "😀",
                    " ",
                ]),
                0..6
            )
            .prop_map(|parts| format!("\"{}\"", parts.concat())),
        ];
        leaf.prop_recursive(5, 64, 6, |inner| {
            prop_oneof![
                prop::collection::vec((inner.clone(), ws()), 0..5).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(v, w)| format!("{w}{v}{w}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                object_text(inner),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4_000))]
        #[test]
        fn the_validating_pass_reads_events_as_serde_does(text in object_text(json_text())) {
            serde_json::from_str::<&RawValue>(&text).expect("the generator writes valid JSON");
            let pass = pass_head(&text);
            proptest::prop_assert_eq!(pass.map(|(head, _)| head), serde_head(&text), "{}", text);
            if let Ok((_, raw)) = pass {
                // An object with members is located exactly; `{}` has nothing to locate.
                let want = (text.trim() != "{}").then_some(text.as_str());
                proptest::prop_assert_eq!(raw, want, "{}", text);
            }
        }

        /// Whitespace and escaped names around events in a real array: each event's bytes
        /// are exactly the array element serde_json sees.
        #[test]
        fn events_are_located_exactly_in_their_array(
            events in proptest::collection::vec(object_text(json_text()), 1..4),
            w in ws(),
        ) {
            let events: Vec<String> = events
                .into_iter()
                .map(|e| format!(r#"{{{w}"t\u0079pe"{w}:{w}3,"timestamp":1,"x":{e}{w}}}"#))
                .collect();
            let text = format!(
                r#"{{"session_guid":"g","session_data":[{w}{}{w}],"environment":"e"}}"#,
                events.join(&format!("{w},{w}"))
            );
            let chunk = parse(&text).expect("valid events");
            let raw: Vec<&str> = chunk.events.iter().map(|e| e.raw).collect();
            proptest::prop_assert_eq!(raw, events.iter().map(String::as_str).collect::<Vec<_>>());
        }
    }
}
