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
