//! Events nested deeper than serde_json reads by default (128 levels).
//!
//! The stitcher copies an event without building it, so a DOM snapshot nested 100,000 levels
//! deep stitches; a redactor that stopped at serde_json's limit dropped such a snapshot and
//! left the session unreplayable. Reading, walking, writing and freeing a tree are all
//! recursive (serde_json's parser and writer, the redactor's walk, `Value`'s drop), so such
//! an event is redacted whole on a thread whose stack is sized from the event's own nesting:
//! no depth limit but memory. Only events past the limit take this path (a thread per event
//! is far dearer than a parse); if the stack cannot be had, the caller drops the event and
//! counts it, failing closed.

use serde::Deserialize;
use serde_json::Value;

/// Stack per level of JSON nesting, twice what was measured: a snapshot 20,000 nodes deep
/// (40,000 levels) overflowed a debug build's parse, walk, write and drop at 1.5 KiB per
/// level and passed at 2 KiB (a release build needs less). The stack is reserved, not
/// touched: only what the walk reaches is ever paged in.
const STACK_PER_LEVEL: usize = 4 * 1024;
/// Stack for everything above the tree.
const STACK_BASE: usize = 1024 * 1024;

/// The deepest nesting of arrays and objects in `json` (valid JSON): brackets outside
/// strings, counted in one pass.
pub(crate) fn nesting(json: &str) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in json.as_bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Parses `json` with no depth limit and hands the tree to `work`, on a thread with stack
/// enough for both; `None` when the thread or its stack cannot be had (or `work` panicked).
pub(crate) fn with_tree<R: Send>(json: &str, work: impl FnOnce(Value) -> R + Send) -> Option<R> {
    let stack = nesting(json)
        .checked_mul(STACK_PER_LEVEL)?
        .checked_add(STACK_BASE)?;
    std::thread::scope(|scope| {
        let worker = std::thread::Builder::new()
            .name("rrstitch-redact-deep".into())
            .stack_size(stack)
            .spawn_scoped(scope, move || {
                let mut reader = serde_json::Deserializer::from_str(json);
                reader.disable_recursion_limit();
                let tree = Value::deserialize(&mut reader).ok()?;
                Some(work(tree))
            })
            .ok()?;
        worker.join().ok().flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_brackets_outside_strings() {
        assert_eq!(nesting("1"), 0);
        assert_eq!(nesting(r#"{"a":[1,{"b":"[[[{"}]}"#), 3);
        assert_eq!(nesting(r#"["\"[[", "\\", [[]]]"#), 3);
    }

    #[test]
    fn a_tree_past_serde_jsons_limit_is_read_walked_and_written() {
        let depth = 100_000;
        let json = format!("{}\"x\"{}", "[".repeat(depth), "]".repeat(depth));
        assert!(
            serde_json::from_str::<Value>(&json).is_err(),
            "past the default limit"
        );
        let out = with_tree(&json, |tree| serde_json::to_string(&tree).unwrap());
        assert_eq!(out.as_deref(), Some(json.as_str()));
    }
}
