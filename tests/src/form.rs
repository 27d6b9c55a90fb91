//! The recorded form fixture (`fixtures/rrweb-form/`) as the redaction tests use it: the
//! rules that mask it, the values typed into it, and the leak check on a stored session.
//!
//! Needs nothing but serde_json, so the engine's own redaction test includes this file too
//! (`#[path]`): the two tests cannot disagree about what was typed.

use serde_json::Value;

/// The form's rules: every input, and the three elements that echo what was typed (the
/// status line names the user, the list and the log repeat the items).
pub const FORM_RULES: &str = r##"{"mask_inputs": true, "mask": [{"selector": "#status"}, {"selector": "ul#todo-list"}, {"selector": "#log"}]}"##;

/// The values typed into the form, key by key: the last `text` of each run of Input events
/// on one field that grew (a value picked at once, `green` of a select, is also a CSS colour
/// of the page), four characters or more (a two-letter value could occur anywhere).
pub fn typed_values(session: &Value) -> Vec<String> {
    let inputs: Vec<(i64, String)> = session["rrweb_data"]
        .as_array()
        .expect("a stitched session")
        .iter()
        .filter(|e| e["type"] == 3 && e["data"]["source"] == 5)
        .filter_map(|e| {
            Some((
                e["data"]["id"].as_i64()?,
                e["data"]["text"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let mut typed = Vec::new();
    for (i, (id, text)) in inputs.iter().enumerate() {
        let extended = inputs[i + 1..]
            .iter()
            .find(|(other, _)| other == id)
            .is_some_and(|(_, next)| next.starts_with(text.as_str()) && next != text);
        let grew = inputs[..i].iter().any(|(other, before)| {
            other == id && !before.is_empty() && text.starts_with(before.as_str()) && before != text
        });
        if !extended && grew && text.chars().count() >= 4 && !typed.contains(text) {
            typed.push(text.clone());
        }
    }
    typed
}

/// `value` with every integer written as a double (`12` → `12.0`), as a relay that
/// round-trips numbers through doubles writes it.
pub fn doubled(value: Value) -> Value {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(i) => serde_json::json!(i as f64),
            None => Value::Number(n),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(doubled).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, doubled(v))).collect())
        }
        other => other,
    }
}

/// A value as it appears inside a JSON string (a newline is `\n`).
pub fn json_text(value: &str) -> String {
    let quoted = serde_json::to_string(value).expect("a string serializes");
    quoted[1..quoted.len() - 1].to_owned()
}

/// The form stored by a function with [`FORM_RULES`]: every value typed in `plain` (the
/// unredacted session, which must hold them: the control) is absent from `stored`, which
/// still has every event and counts what it masked.
pub fn assert_form_redacted(plain: &Value, stored: &str) {
    let typed = typed_values(plain);
    assert!(
        typed.len() >= 5,
        "control: the form's typed values {typed:?}"
    );
    let plain_text = plain.to_string();
    for value in &typed {
        let value = json_text(value);
        assert!(plain_text.contains(&value), "control: {value:?} is typed");
        assert!(
            !stored.contains(&value),
            "{value:?} leaked into the stored session"
        );
    }
    let v: Value = serde_json::from_str(stored).expect("the stored session is JSON");
    assert_eq!(v["rrweb_data"].as_array().unwrap().len(), 243);
    let masked = v["metadata"]["redaction"]["values_masked"].as_u64();
    assert!(masked.is_some_and(|n| n > 100), "{}", v["metadata"]);
}
