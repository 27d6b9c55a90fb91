//! The JSON documents the environment carries: redaction rules (`RRSTITCH_REDACT`) and
//! ingestion restrictions (`RRSTITCH_RESTRICT`), inline or as a file path. Both are read and
//! checked once at start-up, because a bad or missing document must stop the process rather
//! than stitch unmasked sessions or record chunks its operator meant to drop.

use super::{ConfigError, Env};
use rrstitch::engine::redact::Rules;
use rrstitch::engine::restrict::Restrictions;

/// Reads `RRSTITCH_REDACT` ([`Env::document`]): a missing file or a bad rule stops the
/// process rather than stitching unmasked sessions.
pub(super) fn redact_rules(env: &Env) -> Result<Option<Rules>, ConfigError> {
    const VAR: &str = "RRSTITCH_REDACT";
    let Some((origin, text)) = env.document(VAR)? else {
        return Ok(None);
    };
    Rules::from_json(&text).map(Some).map_err(|e| ConfigError {
        var: VAR,
        reason: format!("{origin}: {e}"),
    })
}

/// Reads `RRSTITCH_RESTRICT` ([`Env::document`]): a bad document stops the process rather
/// than recording chunks its operator meant to drop.
pub(super) fn restrictions(env: &Env) -> Result<Option<Restrictions>, ConfigError> {
    const VAR: &str = "RRSTITCH_RESTRICT";
    let Some((origin, text)) = env.document(VAR)? else {
        return Ok(None);
    };
    Restrictions::from_json(&text)
        .map(Some)
        .map_err(|e| ConfigError {
            var: VAR,
            reason: format!("{origin}: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::settings;

    #[test]
    fn restrictions_come_inline_or_from_a_file_and_bad_ones_stop_start_up() {
        assert!(settings(&[]).unwrap().options.restrict.is_none());
        let inline = settings(&[(
            "RRSTITCH_RESTRICT",
            r#"{"drop_environments": ["staging"], "sample": {"production": 0.25}}"#,
        )])
        .unwrap();
        let rules = inline.options.restrict.unwrap();
        assert_eq!(rules.drop_environments, ["staging"]);
        assert_eq!(rules.sample.get("production"), Some(&0.25));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restrict.json");
        std::fs::write(&path, r#"{"drop_guids": ["bot-*"]}"#).unwrap();
        let file = settings(&[("RRSTITCH_RESTRICT", path.to_str().unwrap())]).unwrap();
        assert_eq!(file.options.restrict.unwrap().drop_guids.len(), 1);
        for bad in [
            r#"{"sample": {"production": 2}}"#,
            r#"{"drop_guid": ["x"]}"#,
            "",
            "  ",
            "/no/such/restrict.json",
        ] {
            let err = settings(&[("RRSTITCH_RESTRICT", bad)]).unwrap_err();
            assert_eq!(err.var, "RRSTITCH_RESTRICT", "{bad:?}");
        }
    }

    #[test]
    fn redaction_rules_come_inline_or_from_a_file_and_bad_ones_stop_start_up() {
        assert!(settings(&[]).unwrap().options.redact.is_none());
        let inline = settings(&[("RRSTITCH_REDACT", r#"{"mask_inputs": true}"#)]).unwrap();
        assert!(inline.options.redact.unwrap().mask_inputs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.json");
        std::fs::write(&path, r#"{"drop_plugins": ["rrweb/console@1"]}"#).unwrap();
        let file = settings(&[("RRSTITCH_REDACT", path.to_str().unwrap())]).unwrap();
        assert_eq!(
            file.options.redact.unwrap().drop_plugins,
            ["rrweb/console@1"]
        );

        std::fs::write(&path, r#"{"mask_input": true}"#).unwrap();
        let err = settings(&[("RRSTITCH_REDACT", path.to_str().unwrap())]).unwrap_err();
        assert_eq!(err.var, "RRSTITCH_REDACT");
        let text = err.to_string();
        assert!(
            text.contains("rules.json") && text.contains("mask_input"),
            "{text}"
        );
        let missing = dir.path().join("nope.json");
        let err = settings(&[("RRSTITCH_REDACT", missing.to_str().unwrap())]).unwrap_err();
        assert!(err.to_string().contains("nope.json"), "{err}");
        let err =
            settings(&[("RRSTITCH_REDACT", r#"{"mask": [{"selector": "a b"}]}"#)]).unwrap_err();
        assert!(
            err.to_string().contains("inline rules") && err.to_string().contains("\"a b\""),
            "{err}"
        );
    }
}
