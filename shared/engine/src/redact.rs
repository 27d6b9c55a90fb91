//! Redaction at stitch time: rules applied to each event as it streams past, so the stored
//! session never holds what they remove.
//!
//! Most events cannot be affected by any rule and are not even parsed: the decision is made
//! from the `type` and `source` the validating pass already read, plus a `memmem` scan for
//! `data:` when a data-URL threshold is set. Those events stay the exact bytes they arrived
//! as. An event that can be affected (a FullSnapshot, a Mutation, an Input, a Plugin event
//! when plugin names are listed, an event holding `data:`) is parsed, rewritten in place and
//! written compact — or, when no rule touched it, still copied as it was.
//!
//! Memory is bounded by what is masked, not by the DOM: the redactor keeps the set of node
//! ids inside masked elements (so text and attributes changed later by mutations, and
//! children added under them, are masked too), never a tree. A FullSnapshot (a checkout)
//! starts the set again.
//!
//! Masking replaces each character with `*` (whitespace of text is kept), as rrweb's own
//! defaults `maskInputFn` and `maskTextFn` do, so a replayed page keeps its layout.

mod rules;
mod selector;

use std::collections::HashSet;
use std::sync::Arc;

use memchr::memmem;
use serde::Serialize;
use serde_json::{Map, Value};

pub use rules::{Rules, RulesError};
pub use selector::Selector;

use crate::event::Event;
use crate::rrweb::{event_type, SOURCE_INPUT, SOURCE_MUTATION};

/// What a `data:` URL over the threshold becomes: a 1x1 transparent GIF, which any `src`,
/// `href` or `rr_dataURL` accepts, so the replay shows an empty box where the image was.
pub const PLACEHOLDER: &str =
    "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7";

/// rrweb-snapshot node types.
const NODE_ELEMENT: i64 = 2;
const NODE_TEXT: i64 = 3;

/// The form fields whose `value` holds what a user typed or chose.
const FORM_FIELDS: [&str; 4] = ["input", "textarea", "select", "option"];
/// Input types whose `value` is the page's own label, not user input (rrweb's
/// `maskAllInputs` leaves them too).
const LABEL_INPUTS: [&str; 3] = ["button", "submit", "reset"];

/// What became of one event.
#[derive(Debug, PartialEq)]
pub enum Redacted<'a> {
    /// No rule touched it: write its bytes as they are.
    Unchanged(&'a str),
    /// Rewritten: the event's new compact JSON.
    Replaced(String),
    /// Removed by a drop rule: not written.
    Dropped,
}

/// What redaction did to a session, for its metadata.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Counts {
    pub events_dropped: u64,
    /// Strings masked: text nodes, attribute values, Input events' text.
    pub values_masked: u64,
    pub data_urls_replaced: u64,
    /// Events that could not be parsed to be redacted (nested past serde_json's depth limit)
    /// and were dropped rather than written unredacted.
    pub events_unredactable: u64,
}

/// Applies [`Rules`] to one session's events, in order.
#[derive(Debug)]
pub struct Redactor {
    rules: Arc<Rules>,
    /// Ids of nodes inside masked elements (the elements themselves and every descendant
    /// seen), so later mutations of them are masked.
    masked: HashSet<i64>,
    counts: Counts,
    /// Events parsed: how the tests see that events no rule can touch are left unparsed.
    parsed: u64,
}

impl Redactor {
    pub fn new(rules: Arc<Rules>) -> Redactor {
        Redactor {
            rules,
            masked: HashSet::new(),
            counts: Counts::default(),
            parsed: 0,
        }
    }

    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Redacts one event.
    pub fn apply<'a>(&mut self, event: &Event<'a>) -> Redacted<'a> {
        let rules = Arc::clone(&self.rules);
        if rules.drop_event_types.contains(&event.kind) {
            self.counts.events_dropped += 1;
            return Redacted::Dropped;
        }
        let masks = rules.masks()
            && (event.kind == event_type::FULL_SNAPSHOT
                || (event.kind == event_type::INCREMENTAL_SNAPSHOT
                    && matches!(event.source, Some(SOURCE_MUTATION | SOURCE_INPUT))));
        let plugin = event.kind == event_type::PLUGIN && !rules.drop_plugins.is_empty();
        let data_urls = rules.data_url_max_bytes.is_some()
            && memmem::find(event.raw.as_bytes(), b"data:").is_some();
        if !(masks || plugin || data_urls) {
            return Redacted::Unchanged(event.raw);
        }
        self.parsed += 1;
        let Ok(mut value) = serde_json::from_str::<Value>(event.raw) else {
            // Only depth can fail here (the chunk was validated): an event we cannot read is
            // one we cannot redact, and it is not written.
            self.counts.events_unredactable += 1;
            return Redacted::Dropped;
        };
        if plugin && is_dropped_plugin(&value, &rules.drop_plugins) {
            self.counts.events_dropped += 1;
            return Redacted::Dropped;
        }
        let mut changed = false;
        if masks {
            let data = value.get_mut("data");
            changed |= match (event.kind, event.source, data) {
                (event_type::FULL_SNAPSHOT, _, Some(data)) => {
                    self.masked.clear();
                    match data.get_mut("node") {
                        Some(node) => self.node(&rules, node, false, None),
                        None => false,
                    }
                }
                (_, Some(SOURCE_MUTATION), Some(data)) => self.mutation(&rules, data),
                (_, Some(SOURCE_INPUT), Some(data)) => self.input(&rules, data),
                _ => false,
            };
        }
        if let Some(max) = rules.data_url_max_bytes {
            changed |= self.data_urls(&mut value, max);
        }
        if !changed {
            return Redacted::Unchanged(event.raw);
        }
        // A Value serializes; the `to_string` error is for maps with non-string keys.
        match serde_json::to_string(&value) {
            Ok(text) => Redacted::Replaced(text),
            Err(_) => {
                self.counts.events_unredactable += 1;
                Redacted::Dropped
            }
        }
    }

    /// Masks a string value in place with `how`, counting it when that changed it.
    fn mask(&mut self, value: &mut Value, how: fn(&str) -> String) -> bool {
        let Value::String(s) = value else {
            return false;
        };
        let masked = how(s);
        if masked == *s {
            return false;
        }
        *s = masked;
        self.counts.values_masked += 1;
        true
    }

    /// Walks a serialized node (rrweb-snapshot's `serializedNodeWithId`) and its children.
    /// `inherited`: an ancestor is masked. `parent_tag`: the parent element's tag, for a
    /// textarea's text child (its value as the page loaded it).
    fn node(
        &mut self,
        rules: &Rules,
        node: &mut Value,
        inherited: bool,
        parent_tag: Option<&str>,
    ) -> bool {
        let Some(obj) = node.as_object_mut() else {
            return false;
        };
        let kind = obj.get("type").and_then(Value::as_i64);
        let mut changed = false;
        let mut masked = inherited;
        let mut tag = None;
        match kind {
            Some(NODE_ELEMENT) => {
                let name = obj
                    .get("tagName")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if !masked {
                    let attrs = obj.get("attributes").and_then(Value::as_object);
                    masked = rules
                        .mask
                        .iter()
                        .any(|s| s.matches(&name, |a| attrs.and_then(|m| m.get(a))));
                }
                if let Some(Value::Object(attrs)) = obj.get_mut("attributes") {
                    let label = name == "input"
                        && attrs.get("type").and_then(Value::as_str).is_some_and(|t| {
                            LABEL_INPUTS.iter().any(|l| l.eq_ignore_ascii_case(t))
                        });
                    let field = FORM_FIELDS.contains(&name.as_str()) && !label;
                    changed |= self.attributes(rules, attrs, masked, field);
                }
                tag = Some(name);
            }
            Some(NODE_TEXT) => {
                let style = obj.get("isStyle").and_then(Value::as_bool) == Some(true);
                let textarea = parent_tag == Some("textarea") && rules.mask_inputs;
                if (masked && !style) || textarea {
                    if let Some(text) = obj.get_mut("textContent") {
                        // A textarea's text child is its value as the page loaded it.
                        let how = if textarea { mask_value } else { mask_text };
                        changed |= self.mask(text, how);
                    }
                }
            }
            _ => {}
        }
        if masked {
            if let Some(id) = obj.get("id").and_then(Value::as_i64) {
                self.masked.insert(id);
            }
        }
        if let Some(Value::Array(children)) = obj.get_mut("childNodes") {
            for child in children {
                changed |= self.node(rules, child, masked, tag.as_deref());
            }
        }
        changed
    }

    /// Masks an element's attributes: `value` of a form field under `mask_inputs`, and the
    /// rules' attributes (plus a form field's `value`) when the element is masked.
    fn attributes(
        &mut self,
        rules: &Rules,
        attrs: &mut Map<String, Value>,
        masked: bool,
        form_field: bool,
    ) -> bool {
        let mut changed = false;
        for (name, value) in attrs.iter_mut() {
            let name = name.to_ascii_lowercase();
            let is_value = name == "value" && form_field;
            let hit = (is_value && (rules.mask_inputs || masked))
                || (masked && rules.mask_attributes.contains(&name));
            if hit {
                changed |= self.mask(value, mask_value);
            }
        }
        changed
    }

    /// A Mutation's `adds`, `texts` and `attributes`.
    fn mutation(&mut self, rules: &Rules, data: &mut Value) -> bool {
        let mut changed = false;
        if let Some(Value::Array(adds)) = data.get_mut("adds") {
            // rrweb lists a parent before the nodes added under it, so one pass in order
            // sees every masked parent; the passes after it catch a list in another order.
            let mut unmasked = Vec::new();
            for (i, add) in adds.iter_mut().enumerate() {
                let masked_parent = self.parent_masked(add);
                if let Some(node) = add.get_mut("node") {
                    changed |= self.node(rules, node, masked_parent, None);
                }
                if !masked_parent {
                    unmasked.push(i);
                }
            }
            loop {
                let before = unmasked.len();
                let mut still = Vec::new();
                for i in unmasked {
                    let add = &mut adds[i];
                    if !self.parent_masked(add) {
                        still.push(i);
                    } else if let Some(node) = add.get_mut("node") {
                        changed |= self.node(rules, node, true, None);
                    }
                }
                unmasked = still;
                if unmasked.len() == before {
                    break;
                }
            }
        }
        if let Some(Value::Array(texts)) = data.get_mut("texts") {
            for text in texts {
                let id = text.get("id").and_then(Value::as_i64);
                if id.is_some_and(|id| self.masked.contains(&id)) {
                    if let Some(value) = text.get_mut("value") {
                        changed |= self.mask(value, mask_text);
                    }
                }
            }
        }
        if let Some(Value::Array(changes)) = data.get_mut("attributes") {
            for change in changes {
                let id = change.get("id").and_then(Value::as_i64);
                let masked = id.is_some_and(|id| self.masked.contains(&id));
                if let Some(Value::Object(attrs)) = change.get_mut("attributes") {
                    // No DOM is kept, so the tag is unknown: every `value` change is treated
                    // as a form field's under mask_inputs.
                    changed |= self.attributes(rules, attrs, masked, true);
                }
            }
        }
        changed
    }

    /// Whether a mutation add's `parentId` is a masked node.
    fn parent_masked(&self, add: &Value) -> bool {
        let parent = add.get("parentId").and_then(Value::as_i64);
        parent.is_some_and(|p| self.masked.contains(&p))
    }

    /// An Input event's `text`: masked under `mask_inputs`, or when its field is masked.
    fn input(&mut self, rules: &Rules, data: &mut Value) -> bool {
        let id = data.get("id").and_then(Value::as_i64);
        if !(rules.mask_inputs || id.is_some_and(|id| self.masked.contains(&id))) {
            return false;
        }
        match data.get_mut("text") {
            Some(text) => self.mask(text, mask_value),
            None => false,
        }
    }

    /// Replaces every string that is a `data:` URL longer than `max` bytes.
    fn data_urls(&mut self, value: &mut Value, max: usize) -> bool {
        match value {
            Value::String(s) if s.len() > max && s.starts_with("data:") => {
                *s = PLACEHOLDER.to_owned();
                self.counts.data_urls_replaced += 1;
                true
            }
            Value::Array(items) => items
                .iter_mut()
                .fold(false, |c, v| self.data_urls(v, max) | c),
            Value::Object(map) => map
                .values_mut()
                .fold(false, |c, v| self.data_urls(v, max) | c),
            _ => false,
        }
    }
}

/// Whether a Plugin event's `data.plugin` is one of `names`.
fn is_dropped_plugin(event: &Value, names: &[String]) -> bool {
    let plugin = event
        .get("data")
        .and_then(|d| d.get("plugin"))
        .and_then(Value::as_str);
    plugin.is_some_and(|p| names.iter().any(|n| n == p))
}

/// A form value or attribute: one `*` per character, as rrweb's default `maskInputFn` does.
pub fn mask_value(text: &str) -> String {
    "*".repeat(text.chars().count())
}

/// Text: each character but whitespace becomes `*`, as rrweb's default `maskTextFn` does, so
/// lines and words keep their breaks and a replayed page its layout.
pub fn mask_text(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_whitespace() { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests;
