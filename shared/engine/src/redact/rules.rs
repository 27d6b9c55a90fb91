//! The redaction rules file: a small JSON document, read once at startup, so a typo is a
//! startup error and never a session stitched without the masking its operator asked for.

use serde::Deserialize;

use super::selector::Selector;

/// Why a rules document was refused.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// Not JSON, an unknown key, a value of the wrong type.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    #[error("selector {selector:?}: {reason}")]
    Selector { selector: String, reason: String },
    #[error("data_url_max_bytes must be at least 1")]
    ZeroThreshold,
}

/// The document as written; unknown keys are refused so a misspelt rule is not silently off.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    mask_inputs: bool,
    #[serde(default)]
    mask: Vec<MaskFile>,
    #[serde(default)]
    data_url_max_bytes: Option<usize>,
    #[serde(default)]
    drop_event_types: Vec<i64>,
    #[serde(default)]
    drop_plugins: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MaskFile {
    selector: String,
    #[serde(default)]
    attributes: Vec<String>,
}

/// What to remove from a session while it is stitched.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rules {
    /// Mask every form value: Input events' `text`, `value` attributes of form fields, and
    /// the text of textareas and options (in snapshots and mutations); options lose
    /// `selected`, so no `<select>` shows what was chosen.
    pub mask_inputs: bool,
    /// Elements whose text (and listed attributes) are masked, with their descendants.
    pub mask: Vec<Selector>,
    /// Attributes masked on masked elements, the union of every rule's list: the redactor
    /// remembers which nodes are masked, not which rule masked them (memory is one id per
    /// masked node), so a later attribute mutation is masked by the union.
    pub mask_attributes: Vec<String>,
    /// `data:` URLs longer than this are replaced by a 1x1 placeholder.
    pub data_url_max_bytes: Option<usize>,
    /// Events of these `type`s are not written.
    pub drop_event_types: Vec<i64>,
    /// Plugin events (type 6) of these `data.plugin` names are not written. Console output
    /// is one thing however rrweb recorded it: naming any `rrweb/console@…` version drops
    /// every version of the console plugin and rrweb 0.9's legacy console events
    /// (IncrementalSnapshot source 11, `Log`) too, so a recorder upgrade or an old SDK does
    /// not bring the console back.
    pub drop_plugins: Vec<String>,
}

/// The plugin name prefix shared by every version of rrweb's console recorder.
const CONSOLE_PLUGIN: &str = "rrweb/console@";

impl Rules {
    /// Parses a rules document (see `docs/redact.example.json`).
    pub fn from_json(text: &str) -> Result<Rules, RulesError> {
        let file: File = serde_json::from_str(text)?;
        if file.data_url_max_bytes == Some(0) {
            return Err(RulesError::ZeroThreshold);
        }
        let mut rules = Rules {
            mask_inputs: file.mask_inputs,
            data_url_max_bytes: file.data_url_max_bytes,
            drop_event_types: file.drop_event_types,
            drop_plugins: file.drop_plugins,
            ..Rules::default()
        };
        for m in file.mask {
            let selector = Selector::parse(&m.selector).map_err(|reason| RulesError::Selector {
                selector: m.selector.clone(),
                reason,
            })?;
            rules.mask.push(selector);
            for a in m.attributes {
                let a = a.to_ascii_lowercase();
                if !rules.mask_attributes.contains(&a) {
                    rules.mask_attributes.push(a);
                }
            }
        }
        Ok(rules)
    }

    /// Whether console output is dropped, in every form rrweb records it (see
    /// [`Rules::drop_plugins`]).
    pub(crate) fn drops_console(&self) -> bool {
        self.drop_plugins
            .iter()
            .any(|p| p.starts_with(CONSOLE_PLUGIN))
    }

    /// Whether Plugin events named `plugin` are dropped.
    pub(crate) fn drops_plugin(&self, plugin: &str) -> bool {
        self.drop_plugins.iter().any(|p| p == plugin)
            || (plugin.starts_with(CONSOLE_PLUGIN) && self.drops_console())
    }

    /// Whether any rule masks content (and so FullSnapshots, mutations and inputs are read).
    pub(crate) fn masks(&self) -> bool {
        self.mask_inputs || !self.mask.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses() {
        let rules = Rules::from_json(include_str!("../../../../docs/redact.example.json"))
            .expect("docs/redact.example.json is valid");
        assert!(rules.mask_inputs);
        assert!(!rules.mask.is_empty());
    }

    #[test]
    fn a_full_document_parses() {
        let rules = Rules::from_json(
            r##"{"mask_inputs": true, "mask": [{"selector": ".secret", "attributes": ["title", "Alt"]}, {"selector": "#ssn", "attributes": ["title"]}],
                "data_url_max_bytes": 4096, "drop_event_types": [6], "drop_plugins": ["rrweb/console@1"]}"##,
        )
        .unwrap();
        assert!(rules.mask_inputs);
        assert_eq!(rules.mask.len(), 2);
        assert_eq!(rules.mask_attributes, ["title", "alt"]);
        assert_eq!(rules.data_url_max_bytes, Some(4096));
        assert_eq!(rules.drop_event_types, [6]);
        assert_eq!(rules.drop_plugins, ["rrweb/console@1"]);
        assert_eq!(Rules::from_json("{}").unwrap(), Rules::default());
    }

    #[test]
    fn config_errors_say_what_is_wrong() {
        let err = |text: &str| Rules::from_json(text).unwrap_err().to_string();
        assert!(err(r#"{"mask_input": true}"#).contains("unknown field `mask_input`"));
        assert!(err(r#"{"mask": [{"selector": "div > p"}]}"#).contains("\"div > p\""));
        assert!(err(r#"{"mask": [{"selector": ".a", "attrs": []}]}"#).contains("attrs"));
        assert!(err(r#"{"data_url_max_bytes": 0}"#).contains("at least 1"));
        assert!(err(r#"{"drop_event_types": ["6"]}"#).contains("invalid type"));
        assert!(err("not json").contains("expected"));
    }
}
