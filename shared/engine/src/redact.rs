//! Redaction at stitch time: rules applied to each event as it streams past, so the stored
//! session never holds what they remove.
//!
//! Most events cannot be affected by any rule and are not even parsed: the decision is made
//! from the `type` and `source` the validating pass already read, plus a SIMD scan for a
//! `data:` scheme in any case (or a `\u` escape that could spell one) when a data-URL
//! threshold is set. Those events stay the exact bytes they arrived as. An event that can be affected (a FullSnapshot, a Mutation, an Input, a Plugin event
//! when plugin names are listed, an event holding `data:`) is parsed, rewritten in place and
//! written compact — or, when no rule touched it, still copied as it was.
//!
//! No tree is kept: the redactor keeps the set of node ids inside masked elements (so text
//! and attributes changed later by mutations, and children added under them, are masked
//! too), the ids of textareas and options and their text (what a user typed or chose), and
//! one bit per node id seen since the last FullSnapshot (a checkout starts all three again).
//! An event that names a node not seen yet — a chunk uploaded late by an SDK retry but named
//! before the chunk holding the snapshot is stitched before it, while the player sorts it
//! after — cannot be checked against the rules, so what a rule could cover in it is masked
//! (failing closed) and counted in `values_masked_unknown_node`.
//!
//! Every number read from an event goes through [`crate::rrweb::integer`], as the stitcher's
//! own reading does, so `"id":12.0` is node 12 here as it is to the player.
//!
//! Masking replaces each character with `*` (whitespace of text is kept), as rrweb's own
//! defaults `maskInputFn` and `maskTextFn` do, so a replayed page keeps its layout. Under
//! `mask_inputs` a `<select>`'s choice goes too: options lose `selected` (as with rrweb's
//! `maskInputOptions.select`) and their text is masked with their value, so neither the
//! snapshot nor a replay shows which was chosen.
//!
//! A FullSnapshot of any depth is redacted (see `redact/deep.rs`): the stitcher copies snapshots
//! nested 100,000 levels deep, and dropping one would leave the session unreplayable.
//!
//! What is not supported, and fails open or closed as said:
//! - masks keep a value's length (as rrweb's defaults do), so a masked `<select>` whose
//!   options differ in length still tells which was chosen to someone who knows the page;
//! - an attribute mutation's tag is unknown (no DOM is kept), so a `value` or `selected`
//!   change on any element is treated as a form field's (closed);
//! - ids are followed from the FullSnapshot in stitch order; what an event stitched before
//!   the snapshot says about a node is masked whatever the node is (closed), so such events
//!   lose public text too;
//! - text inside CSS, canvas commands, `Custom` events and plugin payloads other than the
//!   console are not read (open), as the README says.

mod deep;
mod ids;
mod mask;
mod rules;
mod selector;

use std::collections::HashSet;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use mask::{is_data_url, may_hold_data_url};
pub use mask::{mask_text, mask_value, PLACEHOLDER};
pub use rules::{Rules, RulesError};
pub use selector::Selector;

use crate::event::Event;
use crate::rrweb::{event_type, integer_value, SOURCE_INPUT, SOURCE_LOG, SOURCE_MUTATION};
use ids::IdSet;

/// rrweb-snapshot node types.
const NODE_ELEMENT: i64 = 2;
/// Text, CDATA and comment nodes: each holds its words in `textContent`.
const NODE_TEXT: i64 = 3;
const NODE_CDATA: i64 = 4;
const NODE_COMMENT: i64 = 5;

/// The form fields whose `value` holds what a user typed or chose.
const FORM_FIELDS: [&str; 4] = ["input", "textarea", "select", "option"];
/// Form fields whose text child is a value: a textarea's is what it held as the page loaded,
/// an option's the choice a `<select>` shows.
const TEXT_FIELDS: [&str; 2] = ["textarea", "option"];
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
    /// Of `values_masked`, those masked only because their event named a node not seen since
    /// the last FullSnapshot (an out-of-order upload): no rule could be checked for them.
    pub values_masked_unknown_node: u64,
    pub data_urls_replaced: u64,
    /// Events that could not be read to be redacted (nested deeper than the memory for a
    /// stack to walk them allows) and were dropped rather than written unredacted.
    pub events_unredactable: u64,
}

/// Applies [`Rules`] to one session's events, in order.
#[derive(Debug)]
pub struct Redactor {
    rules: Arc<Rules>,
    /// Ids of nodes inside masked elements (the elements themselves and every descendant
    /// seen), so later mutations of them are masked.
    masked: HashSet<i64>,
    /// Ids of textareas and options and of their text nodes (under `mask_inputs`), so text
    /// added or changed there later is masked as a value.
    field_text: HashSet<i64>,
    /// Every node id seen since the last FullSnapshot.
    known: IdSet,
    counts: Counts,
    /// Events parsed: how the tests see that events no rule can touch are left unparsed.
    parsed: u64,
}

impl Redactor {
    pub fn new(rules: Arc<Rules>) -> Redactor {
        Redactor {
            rules,
            masked: HashSet::new(),
            field_text: HashSet::new(),
            known: IdSet::default(),
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
        let console = rules.drops_console()
            && event.kind == event_type::INCREMENTAL_SNAPSHOT
            && event.source == Some(SOURCE_LOG);
        if rules.drop_event_types.contains(&event.kind) || console {
            self.counts.events_dropped += 1;
            return Redacted::Dropped;
        }
        let masks = rules.masks()
            && (event.kind == event_type::FULL_SNAPSHOT
                || (event.kind == event_type::INCREMENTAL_SNAPSHOT
                    && matches!(event.source, Some(SOURCE_MUTATION | SOURCE_INPUT))));
        let plugin = event.kind == event_type::PLUGIN && !rules.drop_plugins.is_empty();
        let data_urls = rules.data_url_max_bytes.is_some() && may_hold_data_url(event.raw);
        if !(masks || plugin || data_urls) {
            return Redacted::Unchanged(event.raw);
        }
        self.parsed += 1;
        let redacted = match serde_json::from_str::<Value>(event.raw) {
            Ok(value) => Some(self.rewrite(&rules, event, value, masks, plugin)),
            // Only depth can fail here (the chunk was validated).
            Err(_) => deep::with_tree(event.raw, |value| {
                self.rewrite(&rules, event, value, masks, plugin)
            }),
        };
        redacted.unwrap_or_else(|| {
            // An event we cannot read is one we cannot redact, and it is not written.
            self.counts.events_unredactable += 1;
            Redacted::Dropped
        })
    }

    /// Applies the rules to a parsed event.
    fn rewrite<'a>(
        &mut self,
        rules: &Rules,
        event: &Event<'a>,
        mut value: Value,
        masks: bool,
        plugin: bool,
    ) -> Redacted<'a> {
        if plugin && is_dropped_plugin(&value, rules) {
            self.counts.events_dropped += 1;
            return Redacted::Dropped;
        }
        let mut changed = false;
        if masks {
            let data = value.get_mut("data");
            changed |= match (event.kind, event.source, data) {
                (event_type::FULL_SNAPSHOT, _, Some(data)) => {
                    self.masked.clear();
                    self.field_text.clear();
                    self.known.clear();
                    match data.get_mut("node") {
                        Some(node) => self.node(rules, node, false, false),
                        None => false,
                    }
                }
                (_, Some(SOURCE_MUTATION), Some(data)) => self.mutation(rules, data),
                (_, Some(SOURCE_INPUT), Some(data)) => self.input(rules, data),
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
    /// `inherited`: an ancestor is masked. `in_field`: the parent is a textarea or an option
    /// under `mask_inputs`, whose text is a value.
    fn node(&mut self, rules: &Rules, node: &mut Value, inherited: bool, in_field: bool) -> bool {
        let Some(obj) = node.as_object_mut() else {
            return false;
        };
        let kind = obj.get("type").and_then(integer_value);
        let id = obj.get("id").and_then(integer_value);
        let mut changed = false;
        let mut masked = inherited;
        let mut field = false;
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
                    let form_field = FORM_FIELDS.contains(&name.as_str()) && !label;
                    changed |= self.attributes(rules, attrs, masked, form_field);
                }
                field = rules.mask_inputs && TEXT_FIELDS.contains(&name.as_str());
            }
            Some(NODE_TEXT | NODE_CDATA | NODE_COMMENT) => {
                let style = obj.get("isStyle").and_then(Value::as_bool) == Some(true);
                if (masked && !style) || in_field {
                    if let Some(text) = obj.get_mut("textContent") {
                        let how = if in_field { mask_value } else { mask_text };
                        changed |= self.mask(text, how);
                    }
                }
                field = in_field;
            }
            _ => {}
        }
        if let Some(id) = id {
            self.known.insert(id);
            if masked {
                self.masked.insert(id);
            }
            if field {
                self.field_text.insert(id);
            }
        }
        if let Some(Value::Array(children)) = obj.get_mut("childNodes") {
            let in_field = field && kind == Some(NODE_ELEMENT);
            for child in children {
                changed |= self.node(rules, child, masked, in_field);
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
        if form_field && (rules.mask_inputs || masked) {
            // Which option is `selected` is the choice a user made: rrweb's own
            // `maskInputOptions.select` leaves it out, and so does this.
            let before = attrs.len();
            attrs.retain(|name, _| !name.eq_ignore_ascii_case("selected"));
            let removed = (before - attrs.len()) as u64;
            self.counts.values_masked += removed;
            changed |= removed > 0;
        }
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
            // A parent added by this same mutation is not unknown, wherever it is listed.
            for add in adds.iter() {
                if let Some(id) = add
                    .get("node")
                    .and_then(|n| n.get("id"))
                    .and_then(integer_value)
                {
                    self.known.insert(id);
                }
            }
            // rrweb lists a parent before the nodes added under it, so one pass in order
            // sees every masked parent; the passes after it catch a list in another order.
            let mut unmasked = Vec::new();
            for (i, add) in adds.iter_mut().enumerate() {
                let parent = self.parent(add);
                let masked_parent = parent.masked || parent.unknown;
                let before = self.counts.values_masked;
                if let Some(node) = add.get_mut("node") {
                    changed |= self.node(rules, node, masked_parent, parent.field);
                }
                if parent.unknown {
                    self.counts.values_masked_unknown_node += self.counts.values_masked - before;
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
                    if !self.parent(add).masked {
                        still.push(i);
                    } else if let Some(node) = add.get_mut("node") {
                        changed |= self.node(rules, node, true, false);
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
                let id = text.get("id").and_then(integer_value);
                let how: fn(&str) -> String = match id {
                    Some(id) if self.field_text.contains(&id) => mask_value,
                    Some(id) if self.masked.contains(&id) => mask_text,
                    Some(id) if self.known.contains(id) => continue,
                    _ => {
                        let masked = text
                            .get_mut("value")
                            .is_some_and(|v| self.mask(v, mask_text));
                        self.counts.values_masked_unknown_node += u64::from(masked);
                        changed |= masked;
                        continue;
                    }
                };
                if let Some(value) = text.get_mut("value") {
                    changed |= self.mask(value, how);
                }
            }
        }
        if let Some(Value::Array(changes)) = data.get_mut("attributes") {
            for change in changes {
                let id = change.get("id").and_then(integer_value);
                let unknown = !id.is_some_and(|id| self.known.contains(id));
                let masked = unknown || id.is_some_and(|id| self.masked.contains(&id));
                if let Some(Value::Object(attrs)) = change.get_mut("attributes") {
                    // No DOM is kept, so the tag is unknown: every `value` change is treated
                    // as a form field's under mask_inputs.
                    let before = self.counts.values_masked;
                    changed |= self.attributes(rules, attrs, masked, true);
                    if unknown {
                        self.counts.values_masked_unknown_node +=
                            self.counts.values_masked - before;
                    }
                }
            }
        }
        changed
    }

    /// What is known of a mutation add's `parentId`.
    fn parent(&self, add: &Value) -> Parent {
        match add.get("parentId").and_then(integer_value) {
            Some(p) => Parent {
                masked: self.masked.contains(&p),
                field: self.field_text.contains(&p),
                unknown: !self.known.contains(p),
            },
            None => Parent {
                masked: false,
                field: false,
                unknown: true,
            },
        }
    }

    /// An Input event's `text`: masked under `mask_inputs`, when its field is masked, or
    /// when its field was never seen (an out-of-order upload: no rule can be checked).
    fn input(&mut self, rules: &Rules, data: &mut Value) -> bool {
        let id = data.get("id").and_then(integer_value);
        let unknown = !id.is_some_and(|id| self.known.contains(id));
        let masked = id.is_some_and(|id| self.masked.contains(&id));
        if !(rules.mask_inputs || masked || unknown) {
            return false;
        }
        let changed = data
            .get_mut("text")
            .is_some_and(|t| self.mask(t, mask_value));
        if changed && unknown && !rules.mask_inputs {
            self.counts.values_masked_unknown_node += 1;
        }
        changed
    }

    /// Replaces every string that is a `data:` URL longer than `max` bytes.
    fn data_urls(&mut self, value: &mut Value, max: usize) -> bool {
        match value {
            Value::String(s) if s.len() > max && is_data_url(s) => {
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

/// What is known of a mutation add's parent.
struct Parent {
    masked: bool,
    /// A textarea or option under `mask_inputs`: text added under it is a value.
    field: bool,
    /// Not seen since the last FullSnapshot.
    unknown: bool,
}

/// Whether a Plugin event's `data.plugin` is one the rules drop.
fn is_dropped_plugin(event: &Value, rules: &Rules) -> bool {
    let plugin = event
        .get("data")
        .and_then(|d| d.get("plugin"))
        .and_then(Value::as_str);
    plugin.is_some_and(|p| rules.drops_plugin(p))
}

#[cfg(test)]
mod tests;
