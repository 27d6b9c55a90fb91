//! The metrics the Terraform declares, held to the metric lines the real functions write.
//!
//! Both clouds turn the functions' log lines into metrics without an API call
//! (`shared/src/metrics.rs`): GCP through log-based metrics over the lines' JSON fields
//! (`infra/gcp/modules/rrstitch/metrics.tf`, `local.log_metrics`), AWS through the Embedded
//! Metric Format directive on each line (`infra/aws/metrics.tf`, `local.emf_metrics`, which
//! the alarms and the dashboard read). Nothing but a test ties the two sides together, so the
//! queue tests collect every line their functions wrote and check here that each declared
//! metric is in them, with its fields of the right type: a renamed field or dimension in the
//! code, or a misspelt one in the Terraform, fails the build instead of an empty chart.

use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value};

use crate::repo_root;

/// The `target` of a metric line.
pub const TARGET: &str = "rrstitch::metrics";

/// The metric lines (`target` = [`TARGET`]) among the JSON log lines of `logs`.
pub fn lines_of(logs: &[&Path]) -> Vec<Map<String, Value>> {
    logs.iter()
        .flat_map(|path| {
            std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                .lines()
                .filter_map(|l| serde_json::from_str::<Map<String, Value>>(l).ok())
                .filter(|l| l.get("target").and_then(Value::as_str) == Some(TARGET))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Evaluates `local.<name>` of the Terraform files in `dir` (relative to the repository),
/// with `var.finalize_mode` = `finalize_mode`, as JSON.
fn local(dir: &str, file: &str, name: &str, finalize_mode: &str) -> Value {
    use hcl::eval::{Context, Evaluate};
    let path = repo_root().join(dir).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let body: hcl::Body =
        hcl::from_str(&text).unwrap_or_else(|e| panic!("{}: not HCL: {e}", path.display()));
    let expr = body
        .blocks()
        .filter(|b| b.identifier() == "locals")
        .flat_map(|b| b.body().attributes())
        .find(|a| a.key() == name)
        .unwrap_or_else(|| panic!("{}: no local {name}", path.display()))
        .expr()
        .clone();
    let mut ctx = Context::new();
    let mut var = hcl::Map::new();
    var.insert("finalize_mode".to_owned(), hcl::Value::from(finalize_mode));
    ctx.declare_var("var", hcl::Value::Object(var));
    let value = expr
        .evaluate(&ctx)
        .unwrap_or_else(|e| panic!("{}: local.{name}: {e}", path.display()));
    serde_json::to_value(value).unwrap()
}

/// `local.metric_target` and `local.log_metrics` of the GCP module.
pub fn gcp_declared() -> (String, Value) {
    let dir = "infra/gcp/modules/rrstitch";
    let target = local(dir, "metrics.tf", "metric_target", "inline");
    (
        target.as_str().unwrap().to_owned(),
        local(dir, "metrics.tf", "log_metrics", "inline"),
    )
}

/// `local.emf_metrics` of the AWS stack, for that `finalize_mode`.
pub fn aws_declared(finalize_mode: &str) -> Value {
    local("infra/aws", "metrics.tf", "emf_metrics", finalize_mode)
}

/// Checks every log-based metric of `declared` (`local.log_metrics`) against `lines`: lines of
/// its `metric` exist, under `target`; each carries every label as a non-empty string; a
/// distribution's value field is a number wherever it is present, and present in one line
/// at least. Answers how many metrics it checked, or every mismatch.
pub fn check_log_metrics(
    lines: &[Map<String, Value>],
    target: &str,
    declared: &Value,
) -> Result<usize, Vec<String>> {
    let mut wrong = Vec::new();
    let declared = declared.as_object().expect("log_metrics is a map");
    for (name, m) in declared {
        let metric = m["metric"].as_str().unwrap_or_default();
        let of_kind: Vec<_> = lines
            .iter()
            .filter(|l| l.get("target").and_then(Value::as_str) == Some(target))
            .filter(|l| l.get("metric").and_then(Value::as_str) == Some(metric))
            .collect();
        if of_kind.is_empty() {
            wrong.push(format!(
                "{name}: no line has target={target:?} and metric={metric:?}"
            ));
            continue;
        }
        for label in m["labels"].as_array().into_iter().flatten() {
            let label = label.as_str().unwrap_or_default();
            if let Some(bad) = of_kind.iter().find(|l| {
                l.get(label)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            }) {
                wrong.push(format!(
                    "{name}: label {label:?} is not a non-empty string in {}",
                    Value::Object((*bad).clone())
                ));
            }
        }
        match (m["kind"].as_str(), m["value"].as_str()) {
            (Some("counter"), None) => {}
            (Some("distribution"), Some(value)) => {
                if let Some(bad) = of_kind
                    .iter()
                    .find(|l| l.get(value).is_some_and(|v| !v.is_number()))
                {
                    wrong.push(format!(
                        "{name}: value {value:?} is not a number in {}",
                        Value::Object((*bad).clone())
                    ));
                }
                if !of_kind.iter().any(|l| l.get(value).is_some()) {
                    wrong.push(format!(
                        "{name}: no {metric:?} line carries the value {value:?}"
                    ));
                }
            }
            other => wrong.push(format!(
                "{name}: kind and value {other:?}: a counter has no value, a distribution one"
            )),
        }
    }
    if wrong.is_empty() {
        Ok(declared.len())
    } else {
        Err(wrong)
    }
}

/// Checks every metric of `declared` (`local.emf_metrics`) against the EMF directives of
/// `lines`: one line at least declares, in `namespace`, a metric of that name over exactly
/// that dimension set, carries its value as a number and, for each dimension given a value,
/// that value. Answers how many metrics it checked, or every mismatch.
pub fn check_emf(
    lines: &[Map<String, Value>],
    namespace: &str,
    declared: &Value,
) -> Result<usize, Vec<String>> {
    let mut wrong = Vec::new();
    let declared = declared.as_object().expect("emf_metrics is a map");
    for (key, m) in declared {
        let name = m["name"].as_str().unwrap_or_default();
        let dimensions = m["dimensions"].as_object().cloned().unwrap_or_default();
        let mut wanted: Vec<&str> = dimensions.keys().map(String::as_str).collect();
        wanted.sort_unstable();
        let found = lines.iter().any(|line| {
            let directives = line
                .get("_aws")
                .and_then(|a| a.get("CloudWatchMetrics"))
                .and_then(Value::as_array);
            directives.into_iter().flatten().any(|d| {
                let named = d["Metrics"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|x| x["Name"] == name);
                let over = d["Dimensions"].as_array().into_iter().flatten().any(|set| {
                    let mut set: Vec<&str> = set
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    set.sort_unstable();
                    set == wanted
                });
                d["Namespace"] == namespace && named && over
            }) && line.get(name).is_some_and(Value::is_number)
                && dimensions
                    .iter()
                    .all(|(k, v)| v.is_null() || line.get(k) == Some(v))
        });
        if !found {
            wrong.push(format!(
                "{key}: no line declares {namespace}/{name} over {dimensions:?} with its value"
            ));
        }
    }
    if wrong.is_empty() {
        Ok(declared.len())
    } else {
        Err(wrong)
    }
}

/// Validates every line that has an `_aws` member against the published EMF JSON schema
/// (`tests/data/emf.schema.json`, from the CloudWatch EMF specification), with Python's
/// `jsonschema` from the project's venv (`scripts/install-emulators.sh` installs it).
/// Answers how many lines it validated.
pub fn validate_emf_schema(lines: &[Map<String, Value>]) -> usize {
    let emf: Vec<&Map<String, Value>> = lines.iter().filter(|l| l.contains_key("_aws")).collect();
    let dir = tempdir();
    let file = dir.join("lines.jsonl");
    let text: String = emf
        .iter()
        .map(|l| format!("{}\n", Value::Object((*l).clone())))
        .collect();
    std::fs::write(&file, text).unwrap();
    let python = repo_root().join(".build/venv/bin/python");
    let schema = repo_root().join("tests/data/emf.schema.json");
    let out = Command::new(&python)
        .arg("-c")
        .arg(
            "import json, sys, jsonschema\n\
             schema = json.load(open(sys.argv[1]))\n\
             jsonschema.Draft7Validator.check_schema(schema)\n\
             v = jsonschema.Draft7Validator(schema)\n\
             bad = 0\n\
             for n, line in enumerate(open(sys.argv[2])):\n\
             \x20   for e in v.iter_errors(json.loads(line)):\n\
             \x20       bad += 1\n\
             \x20       print(f'line {n}: {e.message} at {list(e.path)}')\n\
             sys.exit(1 if bad else 0)\n",
        )
        .arg(&schema)
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("{} (jsonschema): {e}", python.display()));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "EMF lines fail the schema:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    emf.len()
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "rrstitch-emf-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    fn session_line() -> Map<String, Value> {
        line(json!({
            "target": TARGET, "metric": "session", "outcome": "written", "sessions": 1,
            "freshness_seconds": 12.5,
            "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{
                "Namespace": "rrstitch", "Dimensions": [["outcome"]],
                "Metrics": [{"Name": "sessions", "Unit": "Count"}, {"Name": "freshness_seconds", "Unit": "Seconds"}]
            }]}
        }))
    }

    /// The negative controls: the module's own declarations pass on a right line, and each
    /// kind of misspelling fails.
    #[test]
    fn the_gcp_declarations_and_a_misspelt_field() {
        let (target, declared) = gcp_declared();
        assert_eq!(target, TARGET);
        let freshness = json!({"freshness_seconds": declared["freshness_seconds"].clone()});
        assert_eq!(
            check_log_metrics(&[session_line()], &target, &freshness),
            Ok(1)
        );
        let mut misspelt = freshness.clone();
        misspelt["freshness_seconds"]["value"] = json!("freshness_secs");
        let err = check_log_metrics(&[session_line()], &target, &misspelt).unwrap_err();
        assert!(err[0].contains("freshness_secs"), "{err:?}");
        let mut label = freshness.clone();
        label["freshness_seconds"]["labels"] = json!(["outcomes"]);
        assert!(check_log_metrics(&[session_line()], &target, &label).is_err());
        let mut kind = freshness.clone();
        kind["freshness_seconds"]["metric"] = json!("sessions");
        assert!(check_log_metrics(&[session_line()], &target, &kind).is_err());
        let mut text = session_line();
        text.insert("freshness_seconds".into(), json!("12.5"));
        assert!(check_log_metrics(&[text], &target, &freshness).is_err());
        assert!(check_log_metrics(&[session_line()], "rrstitch::metric", &freshness).is_err());
    }

    #[test]
    fn the_aws_declarations_and_a_misspelt_dimension() {
        let declared = aws_declared("inline");
        assert_eq!(declared["sweep_deferred"]["dimensions"]["mode"], "inline");
        let freshness = json!({"freshness": declared["freshness"].clone()});
        assert_eq!(check_emf(&[session_line()], "rrstitch", &freshness), Ok(1));
        assert!(check_emf(&[session_line()], "other", &freshness).is_err());
        let mut name = freshness.clone();
        name["freshness"]["name"] = json!("freshness");
        assert!(check_emf(&[session_line()], "rrstitch", &name).is_err());
        let mut dim = freshness.clone();
        dim["freshness"]["dimensions"] = json!({"outcome": "written", "mode": null});
        assert!(check_emf(&[session_line()], "rrstitch", &dim).is_err());
        let mut value = freshness.clone();
        value["freshness"]["dimensions"] = json!({"outcome": "wrote"});
        assert!(check_emf(&[session_line()], "rrstitch", &value).is_err());
    }

    #[test]
    fn the_schema_refuses_a_broken_directive() {
        assert_eq!(validate_emf_schema(&[session_line()]), 1);
        let mut broken = session_line();
        broken["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Sessions");
        let refused = std::panic::catch_unwind(|| validate_emf_schema(&[broken]));
        assert!(
            refused.is_err(),
            "a unit CloudWatch does not know passed the schema"
        );
    }
}
