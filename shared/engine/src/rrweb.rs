//! The rrweb vocabulary rrstitch reads: event types and the incremental sources it
//! recognizes, as numbered in rrweb's `types` package. Kept in one place so a reader can
//! check them against rrweb's source at a glance, and the one reading of an integer that
//! every field rrstitch takes a number from goes through.

use serde_json::{Number, Value};

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

/// `IncrementalSource.Mutation` in rrweb: DOM changes (adds, removes, texts, attributes).
pub const SOURCE_MUTATION: i64 = 0;
/// `IncrementalSource.MouseInteraction` in rrweb.
pub const SOURCE_MOUSE_INTERACTION: i64 = 2;
/// `IncrementalSource.Input` in rrweb: a form field's new value (`text`, `isChecked`).
pub const SOURCE_INPUT: i64 = 5;
/// `IncrementalSource.Log` in rrweb: console output recorded by rrweb 0.9's legacy console
/// recorder, before it became the `rrweb/console@1` plugin.
pub const SOURCE_LOG: i64 = 11;
/// `MouseInteractions.Click` in rrweb.
pub const MOUSE_CLICK: i64 = 2;

/// An integer as rrweb's player reads it: JavaScript has one number type, so `3`, `3.0` and
/// `3e0` are all 3 (what a relay that round-trips numbers through doubles writes); `3.5`, a
/// string or a float too large to be exact is none. Every integer rrstitch reads from an
/// event (its `type`, a `source`, a node's `type`, `id`, `parentId`, an interaction's `type`)
/// goes through this one function, so the stitcher and the redactor cannot read one event two
/// ways.
pub fn integer(number: &Number) -> Option<i64> {
    if let Some(n) = number.as_i64() {
        return Some(n);
    }
    // Integers up to 2^53 are exact in a double; past that `3.0`-style text is not one
    // integer but a range of them.
    const EXACT: f64 = 9_007_199_254_740_992.0;
    let f = number.as_f64()?;
    (f.fract() == 0.0 && f.abs() <= EXACT).then_some(f as i64)
}

/// [`integer`] of a value, `None` when it is not a number.
pub fn integer_value(value: &Value) -> Option<i64> {
    value.as_number().and_then(integer)
}

/// [`integer`] of a raw JSON value's text, as the validating pass captured it.
pub fn integer_text(raw: &str) -> Option<i64> {
    serde_json::from_str::<Number>(raw)
        .ok()
        .as_ref()
        .and_then(integer)
}

/// A name for an event type, for size diagnostics; `None` for one rrweb does not define.
pub fn type_name(kind: i64) -> Option<&'static str> {
    const NAMES: [&str; 7] = [
        "DomContentLoaded",
        "Load",
        "FullSnapshot",
        "IncrementalSnapshot",
        "Meta",
        "Custom",
        "Plugin",
    ];
    usize::try_from(kind)
        .ok()
        .and_then(|k| NAMES.get(k).copied())
}

/// A name for an incremental source (`IncrementalSource` in rrweb's types).
pub fn source_name(source: i64) -> Option<&'static str> {
    const NAMES: [&str; 17] = [
        "Mutation",
        "MouseMove",
        "MouseInteraction",
        "Scroll",
        "ViewportResize",
        "Input",
        "TouchMove",
        "MediaInteraction",
        "StyleSheetRule",
        "CanvasMutation",
        "Font",
        "Log",
        "Drag",
        "StyleDeclaration",
        "Selection",
        "AdoptedStyleSheet",
        "CustomElement",
    ];
    usize::try_from(source)
        .ok()
        .and_then(|k| NAMES.get(k).copied())
}

/// Incremental sources by name, and the sets the insights judge by
/// ([`crate::insights`]).
pub mod source {
    pub const MUTATION: i64 = super::SOURCE_MUTATION;
    pub const MOUSE_MOVE: i64 = 1;
    pub const MOUSE_INTERACTION: i64 = super::SOURCE_MOUSE_INTERACTION;
    pub const SCROLL: i64 = 3;
    pub const VIEWPORT_RESIZE: i64 = 4;
    pub const INPUT: i64 = super::SOURCE_INPUT;
    pub const TOUCH_MOVE: i64 = 6;
    pub const MEDIA_INTERACTION: i64 = 7;
    pub const DRAG: i64 = 12;
    pub const SELECTION: i64 = 14;
    /// What a person does (PostHog's active sources): time with these is active time.
    pub const ACTIVE: [i64; 8] = [
        MOUSE_MOVE,
        MOUSE_INTERACTION,
        SCROLL,
        VIEWPORT_RESIZE,
        INPUT,
        TOUCH_MOVE,
        MEDIA_INTERACTION,
        DRAG,
    ];
    /// What shows the page answered a click (with a Meta or FullSnapshot event).
    pub const RESPONSES: [i64; 3] = [MUTATION, SCROLL, SELECTION];
}

/// `MouseInteractions` in rrweb: a MouseInteraction event's `data.type`.
pub mod interaction {
    pub const CLICK: i64 = super::MOUSE_CLICK;
    pub const CONTEXT_MENU: i64 = 3;
    pub const DBL_CLICK: i64 = 4;
    pub const TOUCH_END: i64 = 9;
    /// What counts as a click in `insights.click_count`.
    pub const CLICKS: [i64; 4] = [CLICK, CONTEXT_MENU, DBL_CLICK, TOUCH_END];
}

/// The `data.plugin` of rrweb's console record plugin's events.
pub const CONSOLE_PLUGIN: &str = "rrweb/console@1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_numbers_read_as_integers_however_written() {
        for (raw, want) in [
            ("3", Some(3)),
            ("3.0", Some(3)),
            ("3e0", Some(3)),
            ("-0.0", Some(0)),
            ("30E-1", Some(3)),
            ("9007199254740992.0", Some(9_007_199_254_740_992)),
            ("3.5", None),
            ("1e300", None),
            ("18446744073709551615", None),
            ("\"3\"", None),
            ("null", None),
        ] {
            assert_eq!(integer_text(raw), want, "{raw}");
            let value: Value = serde_json::from_str(raw).unwrap();
            assert_eq!(integer_value(&value), want, "{raw} as a value");
        }
    }
}
