//! One rrweb event as the stitcher holds it: its exact bytes and the few fields metadata
//! needs (`type`, `timestamp`, a Meta's `href`, an interaction's `source` and `type`), read
//! from the raw member values the validating pass captured. Its `data` stays a raw slice, for
//! the rare reader that needs more (a click's position, a console entry's level: see
//! [`crate::insights`]).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Number;

use crate::locate::object_around;
use crate::members::Members;
use crate::rrweb::{event_type, MOUSE_CLICK, SOURCE_MOUSE_INTERACTION};

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

/// An integer written as one (`3`) or as an integral float (`3.0`, `3e0`: what a relay that
/// round-trips numbers through doubles writes); `3.5` is none. The one rule for every
/// integer rrstitch reads from an event.
pub(crate) fn integral(raw: &str) -> Option<i64> {
    // Plain digits, the usual case, without a trip through serde_json's deserializer.
    if let Ok(n) = raw.parse::<i64>() {
        return Some(n);
    }
    if let Ok(n) = serde_json::from_str::<i64>(raw) {
        return Some(n);
    }
    let f = serde_json::from_str::<f64>(raw).ok()?;
    // Event types are small; the range check keeps the cast exact.
    (f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)
}

/// Turns what the validating pass found in one element into an event.
pub(crate) fn event<'a>(text: &'a str, members: Members<'a>) -> Result<Event<'a>, String> {
    if let Some(problem) = members.problem {
        return Err(problem.into());
    }
    let kind = members
        .kind
        .and_then(integral)
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
            (event.source, event.interaction) = interaction(data);
            event.is_click = event.source == Some(SOURCE_MOUSE_INTERACTION)
                && event.interaction == Some(MOUSE_CLICK);
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

/// An incremental event's source, and a MouseInteraction's type. DOM mutations (source 0)
/// are the largest events of a session, and rrweb writes `source` first, so a leading
/// `{"source":N` that is not a mouse interaction settles it without scanning the rest.
fn interaction(text: &str) -> (Option<i64>, Option<i64>) {
    #[derive(Deserialize)]
    struct Interaction<'a> {
        #[serde(borrow)]
        source: Option<&'a RawValue>,
        #[serde(borrow, rename = "type")]
        kind: Option<&'a RawValue>,
    }
    if let Some(rest) = text.strip_prefix("{\"source\":") {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let next = rest.as_bytes().get(digits);
        if digits > 0 && matches!(next, Some(b',' | b'}')) {
            if let Ok(source) = rest[..digits].parse::<i64>() {
                if source != SOURCE_MOUSE_INTERACTION {
                    return (Some(source), None);
                }
            }
        }
    }
    let Ok(i) = serde_json::from_str::<Interaction<'_>>(text) else {
        return (None, None);
    };
    let source = i.source.and_then(|s| integral(s.get()));
    let kind = i.kind.and_then(|k| integral(k.get()));
    match source {
        Some(SOURCE_MOUSE_INTERACTION) => (source, kind),
        _ => (source, None),
    }
}
