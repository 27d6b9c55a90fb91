//! `infra/aws` parsed and held to the DynamoDB adapter's idle index (no Terraform needed),
//! then applied for real — to moto: `terraform init` from the local provider mirror,
//! `validate`, `apply` with the real function binaries zipped as Lambda packages, a second
//! `plan` that must be empty, every resource checked through boto3, `destroy`
//! (`scripts/tf-moto-apply.sh` does the work; this test gives it a fresh moto and the zips).
//!
//! Needs Terraform and the `hashicorp/aws` provider mirror (`/opt/tf-plugins`, or
//! `TF_PLUGIN_DIR`): without them this test fails and says so, it does not skip.
//!
//! It applies with `finalize_mode = "queue"`, a superset of the inline stack: the finalize-jobs
//! queue, its dead-letter queue, the event source mapping and the role's queue actions are
//! checked too.
//!
//! The dead-letter and reconcile resources are checked on the same apply by this test's own
//! boto3 checks ([`AFTER_APPLY`], [`AFTER_DESTROY`]): the script runs each of its two check
//! steps as `$PYTHON - ARGS…` with the program on stdin, so the `PYTHON` this test hands it runs
//! that program and then ours with the same arguments. Each of ours ends with a line the test
//! requires, so a script that stopped calling them that way fails here instead of skipping them.

use std::path::{Path, PathBuf};
use std::process::Command;

use rrstitch_tests::{bins, repo_root, Moto};

/// `infra/aws/main.tf`'s `resource "<kind>" "<name>"` block.
fn resource(body: &hcl::Body, kind: &str, name: &str) -> hcl::Block {
    body.blocks()
        .find(|b| {
            b.identifier() == "resource" && b.labels().iter().map(|l| l.as_str()).eq([kind, name])
        })
        .unwrap_or_else(|| panic!("no resource {kind}.{name}"))
        .clone()
}

fn children<'a>(block: &'a hcl::Block, name: &str) -> Vec<&'a hcl::Block> {
    block
        .body()
        .blocks()
        .filter(|b| b.identifier() == name)
        .collect()
}

/// `infra/aws/variables.tf`'s `variable "<name>"` block.
fn variable(body: &hcl::Body, name: &str) -> hcl::Block {
    body.blocks()
        .find(|b| b.identifier() == "variable" && b.labels().iter().map(|l| l.as_str()).eq([name]))
        .unwrap_or_else(|| panic!("no variable {name}"))
        .clone()
}

/// An attribute as HCL text, quotes dropped.
fn attr(block: &hcl::Block, key: &str) -> String {
    let expr = block
        .body()
        .attributes()
        .find(|a| a.key() == key)
        .unwrap_or_else(|| panic!("{} has no {key}", block.identifier()))
        .expr();
    hcl::format::to_string(expr)
        .unwrap()
        .trim()
        .trim_matches('"')
        .to_owned()
}

/// `text` without its whitespace (the formatter spreads lists over lines).
fn compact(text: &str) -> String {
    text.split_whitespace().collect()
}

/// Retention is the buckets' lifecycle rules, each set by its variable: chunks expire after
/// `chunk_retention_days` (30 by default), results only when `results_retention_days` is set.
#[test]
fn buckets_expire_objects_by_their_retention_variables() {
    let dir = repo_root().join("infra/aws");
    let main: hcl::Body =
        hcl::from_str(&std::fs::read_to_string(dir.join("main.tf")).unwrap()).unwrap();
    let vars: hcl::Body =
        hcl::from_str(&std::fs::read_to_string(dir.join("variables.tf")).unwrap()).unwrap();
    for (bucket, var, default) in [
        ("chunks", "chunk_retention_days", "30"),
        ("results", "results_retention_days", "null"),
    ] {
        let lifecycle = resource(&main, "aws_s3_bucket_lifecycle_configuration", bucket);
        assert_eq!(
            attr(&lifecycle, "bucket"),
            format!("aws_s3_bucket.{bucket}.id")
        );
        let cold = format!(
            "{}_cold_after_days",
            var.trim_end_matches("_retention_days")
        );
        assert_eq!(
            compact(&attr(&lifecycle, "count")),
            format!("var.{var}==null&&var.{cold}==null?0:1"),
            "{bucket}: no rule when neither retention nor a tier is set"
        );
        let rules = children(&lifecycle, "rule");
        assert_eq!(rules.len(), 1, "{bucket}");
        assert_eq!(attr(rules[0], "status"), "Enabled");
        let dynamic = |name: &str| {
            let found: Vec<_> = children(rules[0], "dynamic")
                .into_iter()
                .filter(|d| d.labels().first().map(|l| l.as_str()) == Some(name))
                .collect();
            assert_eq!(found.len(), 1, "{bucket}: one dynamic {name}");
            found[0].clone()
        };
        let expiration = dynamic("expiration");
        assert_eq!(
            compact(&attr(&expiration, "for_each")),
            format!("var.{var}==null?[]:[var.{var}]"),
            "{bucket}"
        );
        let transition = dynamic("transition");
        assert_eq!(
            compact(&attr(&transition, "for_each")),
            format!("var.{cold}==null?[]:[var.{cold}]"),
            "{bucket}"
        );
        assert_eq!(attr(&variable(&vars, var), "default"), default, "{var}");
    }
}

/// Storage tiers and retention, planned by `terraform test` with a mocked provider
/// (`infra/aws/tests/plan.tftest.hcl`): the defaults (results to STANDARD_IA after 30 days,
/// chunks kept in STANDARD until they expire), a cold tier for chunks before their deletion,
/// no rule when nothing is set, and three negative controls that must fail the plan (a
/// STANDARD_IA move before S3's 30 days, a move after the deletion, a class that needs a
/// restore); and `restrict_rules` reaching both functions as `RRSTITCH_RESTRICT` (finalize's
/// reconcile ingests too), left out when empty, refused when not JSON; and the metrics: both
/// functions write EMF into `metrics_namespace`, the alarms' thresholds and dimensions follow
/// the variables, a bad namespace is refused. The moto apply below checks the lifecycle rules
/// as S3 stores them.
#[test]
fn lifecycle_tiers_and_restrictions_plan_and_bad_values_fail_the_plan() {
    let plugins = std::env::var("TF_PLUGIN_DIR").unwrap_or_else(|_| "/opt/tf-plugins".into());
    let dir = tempfile::tempdir().unwrap();
    let copy = Command::new("cp")
        .arg("-R")
        .arg(repo_root().join("infra/aws/."))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(copy.success());
    for state in [".terraform", ".terraform.lock.hcl", "terraform.tfstate"] {
        let _ = std::fs::remove_dir_all(dir.path().join(state));
        let _ = std::fs::remove_file(dir.path().join(state));
    }
    let terraform = |args: &[&str]| {
        let out = Command::new("terraform")
            .args(args)
            .current_dir(dir.path())
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_IN_AUTOMATION", "1")
            .output()
            .expect("terraform runs (install Terraform >= 1.7)");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "terraform {args:?}:\n{text}");
        text
    };
    terraform(&[
        "init",
        &format!("-plugin-dir={plugins}"),
        "-input=false",
        "-no-color",
    ]);
    let test = terraform(&["test", "-no-color"]);
    for run in [
        "defaults",
        "cold_chunks_before_their_deletion",
        "no_tiers_no_retention_no_rule",
        "standard_ia_before_30_days_is_refused",
        "a_move_after_the_deletion_is_refused",
        "a_class_that_needs_a_restore_is_refused",
        "restriction_rules_reach_both_functions",
        "no_restriction_rules_no_variable",
        "restriction_rules_must_be_json",
        "a_session_quota_reaches_both_functions",
        "no_session_quota_no_variable",
        "a_session_quota_must_be_whole_bytes",
        "metrics_are_emf_in_the_alarms_namespace",
        "the_objective_is_a_variable",
        "a_bad_namespace_is_refused",
    ] {
        assert!(
            test.contains(&format!("run \"{run}\"... pass")),
            "{run}:\n{test}"
        );
    }
    assert!(test.contains("Success! 15 passed, 0 failed."), "{test}");
}

/// The idle index has no hot partition: a GSI partition takes ~1,000 WCU/s and every chunk
/// write rewrites its session's entry, so the index's hash key must be the shard attribute
/// (`<status>#<shard>`), not a low-cardinality one such as `status`, and its range key the
/// time the sweep ranges over. It is the only GSI, and finalize may query exactly it.
/// The roles allow every DynamoDB call the adapter makes: each SDK operation in
/// `shared/src/index/dynamodb/` is in `dynamodb_item_actions`. Moto does not enforce IAM, so
/// only this catches a missing action (erasure's `DeleteItem` was one). `create_table` is for
/// tests and emulators, `scan` for the operator's listings (`rrstitch sessions`, `rejected`,
/// `prune`, which runs locally), not for the functions.
#[test]
fn the_roles_allow_every_dynamodb_call_the_adapter_makes() {
    let main = std::fs::read_to_string(repo_root().join("infra/aws/main.tf")).unwrap();
    let start = main
        .find("dynamodb_item_actions = [")
        .expect("the action list");
    let list = &main[start..start + main[start..].find(']').unwrap()];
    let dir = repo_root().join("shared/src/index/dynamodb");
    let mut calls = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let code = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for op in [
            "get_item",
            "put_item",
            "update_item",
            "delete_item",
            "query",
            "scan",
            "transact_write_items",
            "transact_get_items",
            "batch_write_item",
            "batch_get_item",
            "create_table",
        ] {
            if code.contains(&format!(".{op}()")) {
                calls.insert(op);
            }
        }
    }
    assert!(calls.contains("delete_item"), "the scan found {calls:?}");
    for op in calls {
        if op == "create_table" || op == "scan" {
            continue;
        }
        // get_item -> GetItem, transact_write_items -> TransactWriteItems.
        let action: String = op
            .split('_')
            .map(|w| w[..1].to_uppercase() + &w[1..])
            .collect();
        assert!(
            list.contains(&format!("\"dynamodb:{action}\"")),
            "the adapter calls {op} but the roles lack dynamodb:{action}: {list}"
        );
    }
}

#[test]
fn the_idle_index_is_keyed_by_shard() {
    use rrstitch::index::dynamodb::{IDLE_INDEX, IDLE_PK, IDLE_SK};
    let text = std::fs::read_to_string(repo_root().join("infra/aws/main.tf")).unwrap();
    let body: hcl::Body = hcl::from_str(&text).expect("infra/aws/main.tf is valid HCL");
    let table = resource(&body, "aws_dynamodb_table", "sessions");
    let gsis = children(&table, "global_secondary_index");
    assert_eq!(gsis.len(), 1, "one GSI: the idle index");
    let gsi = gsis[0];
    assert_eq!(attr(gsi, "name"), IDLE_INDEX);
    assert_eq!(
        attr(gsi, "hash_key"),
        IDLE_PK,
        "the idle index's hash key must be the shard attribute"
    );
    assert_eq!(attr(gsi, "range_key"), IDLE_SK);
    let types: std::collections::BTreeMap<String, String> = children(&table, "attribute")
        .into_iter()
        .map(|a| (attr(a, "name"), attr(a, "type")))
        .collect();
    assert_eq!(
        types.get(IDLE_PK).map(String::as_str),
        Some("S"),
        "{types:?}"
    );
    assert_eq!(
        types.get(IDLE_SK).map(String::as_str),
        Some("N"),
        "{types:?}"
    );
    assert!(
        !types.contains_key("status"),
        "status (three values) is a key attribute again: {types:?}"
    );
    let finalize = body
        .blocks()
        .find(|b| {
            b.identifier() == "data"
                && b.labels()
                    .iter()
                    .map(|l| l.as_str())
                    .eq(["aws_iam_policy_document", "finalize"])
        })
        .expect("the finalize policy document");
    let queries: Vec<String> = children(finalize, "statement")
        .into_iter()
        .filter(|st| compact(&attr(st, "actions")) == "[\"dynamodb:Query\"]")
        .map(|st| compact(&attr(st, "resources")))
        .collect();
    assert_eq!(
        queries,
        vec![format!(
            "[\"${{aws_dynamodb_table.sessions.arn}}/index/{IDLE_INDEX}\"]"
        )],
        "finalize queries the idle index"
    );
}

/// A Lambda package: the binary as `bootstrap` (what provided.al2023 runs), zipped.
fn lambda_zip(binary: &str, dir: &Path) -> PathBuf {
    let zip = dir.join(format!("{binary}.zip"));
    let status = Command::new("python3")
        .args([
            "-c",
            "import sys, zipfile\n\
             with zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z:\n\
             \x20   info = zipfile.ZipInfo('bootstrap')\n\
             \x20   info.external_attr = 0o755 << 16\n\
             \x20   z.writestr(info, open(sys.argv[1], 'rb').read())",
        ])
        .arg(bins::path(binary))
        .arg(&zip)
        .status()
        .unwrap();
    assert!(status.success(), "zipping {binary}");
    zip
}

/// After the apply (argv: chunk bucket, results bucket, name prefix, outputs.json): the
/// ingest dead-letter queue, ingest's asynchronous-invocation config and its on-failure
/// destination, least privilege for the queue, the alarm, the reconcile schedule and the
/// sweep budget.
const AFTER_APPLY: &str = r#"import json, os, sys
import boto3

chunks, results, prefix, outputs_path = sys.argv[1:5]
endpoint = os.environ["MOTO_ENDPOINT"]
out = {k: v["value"] for k, v in json.load(open(outputs_path)).items()}

def client(name):
    return boto3.client(name, endpoint_url=endpoint, region_name="us-east-1")

lam, sqs, iam, events, cw = (client(n) for n in ("lambda", "sqs", "iam", "events", "cloudwatch"))
failures = []

def check(label, ok, detail=""):
    print(("PASS  " if ok else "FAIL  ") + label + (f"  ({detail})" if detail else ""))
    if not ok:
        failures.append(label)

def policy_statements(role_arn):
    name = role_arn.split("/")[-1]
    (policy,) = iam.list_role_policies(RoleName=name)["PolicyNames"]
    doc = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    listed = lambda v: [v] if isinstance(v, str) else v
    return [(set(listed(s["Action"])), listed(s["Resource"])) for s in doc["Statement"]]

# The dead-letter queue
dlq_arn, dlq_url = out["ingest_dlq_arn"], out["ingest_dlq_url"]
attrs = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
check("dead-letter queue exists at the output URL with the output ARN", attrs.get("QueueArn") == dlq_arn, attrs.get("QueueArn"))
check("dead-letter queue keeps messages 14 days", attrs.get("MessageRetentionPeriod") == "1209600", attrs.get("MessageRetentionPeriod"))
check("dead-letter queue encrypted (SQS-managed SSE)", attrs.get("SqsManagedSseEnabled") == "true", attrs.get("SqsManagedSseEnabled"))
check("dead-letter queue has no resource policy (Lambda sends with the ingest role)", "Policy" not in attrs, attrs.get("Policy"))

# Ingest's asynchronous invocations: two retries, then the queue
cfg = lam.get_function_event_invoke_config(FunctionName=out["ingest_function"])
check("ingest event invoke config: MaximumRetryAttempts 2", cfg.get("MaximumRetryAttempts") == 2, cfg.get("MaximumRetryAttempts"))
check("ingest event invoke config: MaximumEventAgeInSeconds 21600", cfg.get("MaximumEventAgeInSeconds") == 21600, cfg.get("MaximumEventAgeInSeconds"))
dest = cfg.get("DestinationConfig", {})
check("ingest on-failure destination is the dead-letter queue", dest.get("OnFailure", {}).get("Destination") == dlq_arn, dest)
check("ingest has no on-success destination", not dest.get("OnSuccess", {}).get("Destination"), dest)

# Least privilege for the queue: only ingest may send, only to this queue
ingest_st = policy_statements(out["ingest_role_arn"])
sqs_st = [(a, r) for a, r in ingest_st if any(x.startswith("sqs:") for x in a)]
check("ingest role: sqs:SendMessage on the dead-letter queue only",
      sqs_st == [({"sqs:SendMessage"}, [dlq_arn])], sqs_st)
finalize_st = policy_statements(out["finalize_role_arn"])
finalize_sqs = [(a, r) for a, r in finalize_st if any(x.startswith("sqs:") for x in a)]
if os.environ.get("FINALIZE_MODE") == "queue":
    check("finalize role: send, receive, delete, attributes on the finalize-jobs queue only",
          finalize_sqs == [({"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
                            [out["finalize_queue_arn"]])], finalize_sqs)
else:
    check("finalize role has no sqs actions", not finalize_sqs, finalize_sqs)
reads = [r for a, r in finalize_st if "s3:GetObject" in a]
lists = [r for a, r in finalize_st if "s3:ListBucket" in a]
check("finalize role (reconcile) reads chunk objects and lists the chunk bucket",
      any(res == [f"arn:aws:s3:::{chunks}/{os.environ.get('CHUNK_PREFIX', '')}*"] for res in reads)
      and [f"arn:aws:s3:::{chunks}"] in lists, (reads, lists))

# The alarm on the queue
alarms = cw.describe_alarms(AlarmNames=[out["ingest_dlq_alarm"]])["MetricAlarms"]
a = alarms[0] if alarms else {}
check("alarm on the dead-letter queue's visible messages > 0",
      a.get("Namespace") == "AWS/SQS" and a.get("MetricName") == "ApproximateNumberOfMessagesVisible"
      and a.get("Dimensions") == [{"Name": "QueueName", "Value": dlq_url.rsplit("/", 1)[-1]}]
      and a.get("Threshold") == 0 and a.get("ComparisonOperator") == "GreaterThanThreshold",
      {k: a.get(k) for k in ("Namespace", "MetricName", "Dimensions", "Threshold", "ComparisonOperator")})

# The reconcile schedule
finalize_arn = out["finalize_function_arn"]
rule = events.describe_rule(Name=out["reconcile_rule"])
check("reconcile rule schedule rate(1 day), enabled",
      rule.get("ScheduleExpression") == "rate(1 day)" and rule.get("State") == "ENABLED", rule.get("ScheduleExpression"))
targets = events.list_targets_by_rule(Rule=out["reconcile_rule"])["Targets"]
check("reconcile rule targets the finalize function with input {\"reconcile\":true}",
      len(targets) == 1 and targets[0]["Arn"] == finalize_arn and json.loads(targets[0].get("Input", "null")) == {"reconcile": True},
      targets)
sweep_targets = events.list_targets_by_rule(Rule=out["sweep_rule"])["Targets"]
check("sweep target passes the scheduled event itself (no input)", all("Input" not in t for t in sweep_targets), sweep_targets)
statements = json.loads(lam.get_policy(FunctionName=out["finalize_function"])["Policy"])["Statement"]
check("finalize permission for events.amazonaws.com from the reconcile rule",
      any(s["Principal"].get("Service") == "events.amazonaws.com" and rule["Arn"] in json.dumps(s.get("Condition", {})) for s in statements))

# The sweep budget
fenv = lam.get_function(FunctionName=out["finalize_function"])["Configuration"]
ienv = lam.get_function(FunctionName=out["ingest_function"])["Configuration"]["Environment"]["Variables"]
budget = fenv["Environment"]["Variables"].get("RRSTITCH_SWEEP_BUDGET_SECS")
check("finalize RRSTITCH_SWEEP_BUDGET_SECS is 80 % of its timeout",
      budget == str(int(fenv["Timeout"] * 0.8)), f"{budget} of {fenv['Timeout']} s")
check("ingest has no RRSTITCH_SWEEP_BUDGET_SECS", "RRSTITCH_SWEEP_BUDGET_SECS" not in ienv)

# Retention: chunk_retention_days (default 30) on the chunk bucket; results kept by default
s3 = client("s3")
rules = s3.get_bucket_lifecycle_configuration(Bucket=chunks).get("Rules", [])
check("chunk bucket lifecycle: every object expires after 30 days (chunk_retention_days)",
      len(rules) == 1 and rules[0].get("Status") == "Enabled" and rules[0].get("Expiration", {}).get("Days") == 30,
      rules)
check("chunk bucket lifecycle: chunks stay in STANDARD by default (chunk_cold_after_days = null)",
      len(rules) == 1 and not rules[0].get("Transitions"), rules)
kept = s3.get_bucket_lifecycle_configuration(Bucket=results).get("Rules", [])
check("results bucket lifecycle: results move to STANDARD_IA after 30 days (results_cold_after_days)",
      len(kept) == 1 and kept[0].get("Status") == "Enabled"
      and kept[0].get("Transitions") == [{"Days": 30, "StorageClass": "STANDARD_IA"}], kept)
check("results bucket lifecycle: results are never deleted by default (results_retention_days = null)",
      len(kept) == 1 and "Expiration" not in kept[0], kept)
# The index's TTL follows the chunk retention: a day past it, on both functions
for fn, env in (("ingest", ienv), ("finalize", fenv["Environment"]["Variables"])):
    check(f"{fn} RRSTITCH_INDEX_TTL_DAYS is chunk_retention_days + 1 (31)",
          env.get("RRSTITCH_INDEX_TTL_DAYS") == "31", env.get("RRSTITCH_INDEX_TTL_DAYS"))
# Segments are on by default: the finalize function writes them, ingest has no use for it
check("finalize writes segments (RRSTITCH_SEGMENTS = true by default)",
      fenv["Environment"]["Variables"].get("RRSTITCH_SEGMENTS") == "true"
      and "RRSTITCH_SEGMENTS" not in ienv, fenv["Environment"]["Variables"].get("RRSTITCH_SEGMENTS"))
# Queue mode: the finalize-jobs queue, its dead-letter queue, the event source mapping
if os.environ.get("FINALIZE_MODE") == "queue":
    fcfg = lam.get_function(FunctionName=out["finalize_function"])["Configuration"]
    fvars = fcfg["Environment"]["Variables"]
    jobs_url, jobs_arn, fdlq_url = out["finalize_queue_url"], out["finalize_queue_arn"], out["finalize_dlq_url"]
    check("finalize env: RRSTITCH_FINALIZE_MODE=queue, RRSTITCH_FINALIZE_QUEUE = the jobs queue URL",
          fvars.get("RRSTITCH_FINALIZE_MODE") == "queue" and fvars.get("RRSTITCH_FINALIZE_QUEUE") == jobs_url,
          {k: fvars.get(k) for k in ("RRSTITCH_FINALIZE_MODE", "RRSTITCH_FINALIZE_QUEUE")})
    check("ingest env has no RRSTITCH_FINALIZE_* variables", not any(k.startswith("RRSTITCH_FINALIZE_") for k in ienv))
    jobs = sqs.get_queue_attributes(QueueUrl=jobs_url, AttributeNames=["All"])["Attributes"]
    fdlq = sqs.get_queue_attributes(QueueUrl=fdlq_url, AttributeNames=["All"])["Attributes"]
    check("finalize-jobs queue at the output URL with the output ARN", jobs.get("QueueArn") == jobs_arn, jobs.get("QueueArn"))
    check("finalize-jobs visibility timeout is 6x the finalize timeout",
          jobs.get("VisibilityTimeout") == str(6 * fcfg["Timeout"]), f"{jobs.get('VisibilityTimeout')} for {fcfg['Timeout']} s")
    check("finalize-jobs long-polls (20 s) and is encrypted",
          jobs.get("ReceiveMessageWaitTimeSeconds") == "20" and jobs.get("SqsManagedSseEnabled") == "true")
    redrive = json.loads(jobs.get("RedrivePolicy", "{}"))
    check("finalize-jobs redrives to its dead-letter queue after 5 receives",
          redrive.get("deadLetterTargetArn") == fdlq.get("QueueArn") and int(redrive.get("maxReceiveCount", 0)) == 5, redrive)
    check("finalize dead-letter queue keeps messages 14 days, encrypted, redrives nowhere",
          fdlq.get("MessageRetentionPeriod") == "1209600" and fdlq.get("SqsManagedSseEnabled") == "true" and "RedrivePolicy" not in fdlq,
          {k: fdlq.get(k) for k in ("MessageRetentionPeriod", "SqsManagedSseEnabled", "RedrivePolicy")})
    # (moto's list ignores the FunctionName filter's short form: filter here)
    esms = [e for e in lam.list_event_source_mappings()["EventSourceMappings"] if e["FunctionArn"] == finalize_arn]
    check("one event source mapping: the finalize-jobs queue → finalize",
          len(esms) == 1 and esms[0]["EventSourceArn"] == jobs_arn
          and esms[0]["UUID"] == out["finalize_event_source_mapping"], esms)
    esm = esms[0] if esms else {}
    check("event source mapping reports batch item failures, batches of 4",
          esm.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] and esm.get("BatchSize") == 4,
          {k: esm.get(k) for k in ("FunctionResponseTypes", "BatchSize")})
    check("the ingest dead-letter queue is not an event source", not any(e["EventSourceArn"] == dlq_arn for e in esms))
    alarms = cw.describe_alarms(AlarmNamePrefix=f"{prefix}-finalize-dead-letters")["MetricAlarms"]
    check("alarm on the finalize dead-letter queue",
          len(alarms) == 1 and alarms[0].get("Dimensions") == [{"Name": "QueueName", "Value": fdlq_url.rsplit("/", 1)[-1]}],
          [a.get("Dimensions") for a in alarms])
    if not failures:
        print("queue checks passed")
else:
    check("inline mode: no finalize queue", out.get("finalize_queue_url") is None, out.get("finalize_queue_url"))

print()
if failures:
    print(f"{len(failures)} reliability check(s) failed: {failures}")
    sys.exit(1)
print("reliability checks passed")
"#;

/// After the destroy (argv: chunk bucket, results bucket, name prefix): the queue, the rules
/// and the alarm are gone too.
const AFTER_DESTROY: &str = r#"import os, sys
import boto3

chunks, results, prefix = sys.argv[1:4]
endpoint = os.environ["MOTO_ENDPOINT"]
sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
events = boto3.client("events", endpoint_url=endpoint, region_name="us-east-1")
cw = boto3.client("cloudwatch", endpoint_url=endpoint, region_name="us-east-1")
lam = boto3.client("lambda", endpoint_url=endpoint, region_name="us-east-1")
bad = 0
for label, ok in (
    (f"dead-letter queue {prefix}-ingest-dlq gone", not sqs.list_queues(QueueNamePrefix=f"{prefix}-").get("QueueUrls")),
    (f"rules {prefix}-* gone", not events.list_rules(NamePrefix=f"{prefix}-")["Rules"]),
    (f"alarms {prefix}-* gone", not cw.describe_alarms(AlarmNamePrefix=f"{prefix}-")["MetricAlarms"]),
    ("event source mappings gone", not lam.list_event_source_mappings()["EventSourceMappings"]),
):
    print(("PASS  " if ok else "FAIL  ") + label)
    bad += not ok
if bad:
    sys.exit(1)
print("reliability checks after destroy passed")
"#;

/// The `PYTHON` handed to `scripts/tf-moto-apply.sh`: `$REAL_PYTHON` for everything, and
/// after each of the script's two stdin check programs (`- CHUNKS RESULTS PREFIX outputs.json`
/// after the apply, `- CHUNKS RESULTS PREFIX` after the destroy) one of ours from `$CHECKS`
/// with the same arguments.
const PYTHON_WITH_CHECKS: &str = r#"#!/bin/sh
if [ "$1" = - ] && [ "$#" -eq 5 ]; then
  "$REAL_PYTHON" "$@" || exit $?
  exec "$REAL_PYTHON" "$CHECKS/after_apply.py" "$2" "$3" "$4" "$5"
fi
if [ "$1" = - ] && [ "$#" -eq 4 ]; then
  "$REAL_PYTHON" "$@" || exit $?
  exec "$REAL_PYTHON" "$CHECKS/after_destroy.py" "$2" "$3" "$4"
fi
exec "$REAL_PYTHON" "$@"
"#;

/// Writes [`PYTHON_WITH_CHECKS`] and the check programs into `dir`; returns the wrapper.
fn python_with_checks(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(dir.join("after_apply.py"), AFTER_APPLY).unwrap();
    std::fs::write(dir.join("after_destroy.py"), AFTER_DESTROY).unwrap();
    let wrapper = dir.join("python");
    std::fs::write(&wrapper, PYTHON_WITH_CHECKS).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    wrapper
}

#[test]
fn aws_stack_applies_to_moto_checks_out_and_destroys() {
    let plugins = std::env::var("TF_PLUGIN_DIR").unwrap_or_else(|_| "/opt/tf-plugins".into());
    assert!(
        Command::new("terraform")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "terraform is not installed: infra/aws cannot be proven here (install Terraform >= 1.5)"
    );
    assert!(
        Path::new(&plugins)
            .join("registry.terraform.io/hashicorp/aws")
            .is_dir(),
        "no hashicorp/aws provider mirror under {plugins}: set TF_PLUGIN_DIR"
    );
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    // The packages `make package` builds (cargo lambda) when they are there, else the
    // workspace's own binaries zipped the same way (a cold cargo-lambda build is minutes).
    let package = |bin: &str| {
        let built = repo_root().join(format!("target/lambda/{bin}/bootstrap.zip"));
        if built.is_file() {
            println!("using {}", built.display());
            built
        } else {
            lambda_zip(bin, dir.path())
        }
    };
    let ingest = package("rrstitch-ingest");
    let finalize = package("rrstitch-finalize");
    let python = repo_root().join(".build/venv/bin/python");
    let check_dir = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/tf-moto-apply.sh"))
        .env("MOTO_ENDPOINT", &moto.endpoint)
        .env("INGEST_ZIP", &ingest)
        .env("FINALIZE_ZIP", &finalize)
        .env("TF_PLUGIN_DIR", &plugins)
        .env("PYTHON", python_with_checks(check_dir.path()))
        .env("REAL_PYTHON", &python)
        .env("CHECKS", check_dir.path())
        // The queue-mode stack is a superset of the inline one: everything is checked on it.
        .env("FINALIZE_MODE", "queue")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("all checks passed"), "{stdout}");
    assert!(stdout.contains("reliability checks passed"), "{stdout}");
    assert!(
        stdout.contains("reliability checks after destroy passed"),
        "{stdout}"
    );
    assert!(stdout.contains("queue checks passed"), "{stdout}");
    assert!(!stdout.contains("FAIL "), "{stdout}");
    let checks = stdout.lines().filter(|l| l.starts_with("PASS ")).count();
    println!("FIGURE infra.aws_checks_passed: {checks}");
    assert!(checks >= 60, "{stdout}");
}
