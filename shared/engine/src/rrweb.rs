//! The rrweb vocabulary rrstitch reads: event types and the incremental sources it
//! recognizes, as numbered in rrweb's `types` package. Kept in one place so a reader can
//! check them against rrweb's source at a glance.

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
/// `MouseInteractions.Click` in rrweb.
pub const MOUSE_CLICK: i64 = 2;

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
