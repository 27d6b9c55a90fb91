//! One rrweb event as the stitcher holds it: its exact bytes and the few fields metadata
//! needs (`type`, `timestamp`, a Meta's `href`, an interaction's `source` and `type`), read
//! from the raw member values the validating pass captured. Its `data` stays a raw slice, for
//! the rare reader that needs more (a click's position, a console entry's level: see
//! [`crate::insights`]).

use std::sync::LazyLock;

use memchr::memmem;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::Number;

use crate::locate::object_around;
use crate::members::{Members, Name};
use crate::rrweb::{event_type, integer_text, MOUSE_CLICK, SOURCE_MOUSE_INTERACTION};

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
    /// An incremental snapshot's `data.source` (Mutation, MouseMove, ...).
    pub source: Option<i64>,
    /// A MouseInteraction's `data.type` (Click, DblClick, TouchEnd, ...).
    pub interaction: Option<i64>,
    /// The event's `data` member exactly as stored, unparsed.
    pub data: Option<&'a str>,
}

/// Turns what the validating pass found in one element into an event.
pub(crate) fn event<'a>(text: &'a str, members: Members<'a>) -> Result<Event<'a>, String> {
    if let Some(problem) = members.problem {
        return Err(problem.into());
    }
    let kind = members
        .kind
        .and_then(integer_text)
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
        source: None,
        interaction: None,
        data: members.data,
    };
    match (kind, members.data) {
        (event_type::META, Some(data)) => event.href = meta_href(data),
        (event_type::INCREMENTAL_SNAPSHOT, Some(data)) => {
            let (source, kind) = interaction(data)?;
            event.source = source;
            event.interaction = kind;
            event.is_click = source == Some(SOURCE_MOUSE_INTERACTION) && kind == Some(MOUSE_CLICK);
        }
        _ => {}
    }
    Ok(event)
}

fn meta_href(data: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Meta {
        href: Option<String>,
    }
    serde_json::from_str::<Meta>(data).ok()?.href
}

/// An incremental event's source, and a MouseInteraction's type; an error for a `data` that
/// names its `source` or `type` twice. rrweb's player (JavaScript's `JSON.parse`) takes the
/// last of two equal keys, so a `{"source":1,"source":5,…}` that was read here as its first
/// would be an Input to the replay and a mouse move to the redactor: it is refused instead,
/// as duplicate keys are at the top levels.
///
/// DOM mutations (source 0) are the largest events of a session, and rrweb writes `source`
/// first, so a leading `{"source":N` that is not a mouse interaction settles it without
/// parsing the rest — unless the rest could name `source` again: a member named `source` is
/// written with its letters (so holds `ource"`) or with a `\u` escape, and one SIMD search
/// for each rules both out.
fn interaction(text: &str) -> Result<(Option<i64>, Option<i64>), String> {
    // Built once: `memmem::find` builds its searcher on every call, a quarter of this
    // check's cost on events of a few hundred bytes (callgrind, 20 sessions of the 40k bench
    // profile: 36.7 M instructions in this function with `find`, 28.3 M with these).
    static SOURCE_AGAIN: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"ource\""));
    static ESCAPE: LazyLock<memmem::Finder<'static>> =
        LazyLock::new(|| memmem::Finder::new(b"\\u"));
    if let Some(rest) = text.strip_prefix("{\"source\":") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let next = rest.as_bytes().get(digits);
        if digits > 0 && matches!(next, Some(b',' | b'}')) {
            let tail = &rest.as_bytes()[digits..];
            let again = SOURCE_AGAIN.find(tail).is_some() || ESCAPE.find(tail).is_some();
            if let (Ok(source), false) = (rest[..digits].parse::<i64>(), again) {
                if source != SOURCE_MOUSE_INTERACTION {
                    return Ok((Some(source), None));
                }
            }
        }
    }
    let head = match serde_json::from_str::<Head<'_>>(text) {
        Ok(head) => head,
        Err(e) if e.to_string().starts_with(DUPLICATE) => return Err(e.to_string()),
        // Not an object: an event rrweb does not make, copied as it is.
        Err(_) => return Ok((None, None)),
    };
    let source = head.source.and_then(integer_text);
    let kind = head.kind.and_then(integer_text);
    // A MouseInteraction's `type` says which interaction (click, touch end, ...); another
    // source's `type` means something else and is not kept.
    match source {
        Some(SOURCE_MOUSE_INTERACTION) => Ok((source, kind)),
        _ => Ok((source, None)),
    }
}

/// The start of the error [`Head`] gives for a repeated member.
const DUPLICATE: &str = "has a duplicate";

/// The members of an incremental event's `data` that rrstitch reads, raw.
#[derive(Default)]
struct Head<'a> {
    source: Option<&'a str>,
    kind: Option<&'a str>,
}

impl<'de> Deserialize<'de> for Head<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Head<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an incremental event's data")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Head<'de>, A::Error> {
                let mut head = Head::default();
                while let Some(name) = map.next_key::<Name>()? {
                    let value = map.next_value::<&'de RawValue>()?.get();
                    let (slot, name) = match name {
                        Name::Source => (&mut head.source, "source"),
                        Name::Type => (&mut head.kind, "type"),
                        _ => continue,
                    };
                    if slot.replace(value).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "{DUPLICATE} `{name}` in `data`"
                        )));
                    }
                }
                Ok(head)
            }
        }
        d.deserialize_map(V)
    }
}
