//! `infra/gcp` against the real `hashicorp/google` provider schema: `terraform init`,
//! `validate`, `terraform test` (plan-only runs in `infra/gcp/example/tests/`) and plans of
//! the example (the default, queue mode, and `ingest_trigger = "eventarc"`), with a stand-in
//! provider that serves hashicorp/google 6.50.0's schema (`scripts/install-tf-standin.sh`,
//! `scripts/tf-google-standin/`), plus negative controls that must fail: a misspelt argument,
//! a missing required argument, a value outside a documented enum, and an `ingest_trigger`
//! that is neither route.
//!
//! This proves the configuration matches the provider's schema and plans; it proves nothing
//! about what the GCP APIs would answer (see `infra/gcp/modules/rrstitch/README.md`).
//!
//! Needs Terraform and what the install script installs (it runs here, and is a no-op once
//! done; the first run downloads the schema's source from PyPI): without them this test
//! fails and says so, it does not skip.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Instant;

use rrstitch_tests::repo_root;

/// The module's variables for a plan of the example.
const PLAN_VARS: [&str; 5] = [
    "project_id=test-project",
    "chunk_bucket_name=test-project-rrstitch-chunks",
    "results_bucket_name=test-project-rrstitch-results",
    "ingest_image=europe-west1-docker.pkg.dev/test-project/rrstitch/rrstitch-ingest:test",
    "finalize_image=europe-west1-docker.pkg.dev/test-project/rrstitch/rrstitch-finalize:test",
];

/// Runs `scripts/install-tf-standin.sh`; returns the Terraform CLI configuration it wrote.
fn install_standin() -> PathBuf {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/install-tf-standin.sh"))
        .output()
        .expect("bash runs scripts/install-tf-standin.sh");
    assert!(
        out.status.success(),
        "scripts/install-tf-standin.sh failed: the hashicorp/google stand-in is not installed, \
         so infra/gcp cannot be checked against the provider schema\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rc = repo_root().join(".build/tf-standin/terraformrc");
    assert!(rc.is_file(), "the install script wrote no {}", rc.display());
    rc
}

/// `infra/gcp` copied into `dst`, without anything a local init or plan left behind.
fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    for entry in std::fs::read_dir(src).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == ".terraform"
            || name == ".terraform.lock.hcl"
            || name.starts_with("terraform.tfstate")
            || name == "terraform.tfvars"
            || name.ends_with(".tfplan")
        {
            continue;
        }
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&path, &dst.join(&name));
        } else {
            std::fs::copy(&path, dst.join(&name)).unwrap();
        }
    }
}

/// `terraform ARGS` in `dir` with the stand-in's CLI configuration and nothing of the caller's
/// Terraform environment (a plugin cache would keep the stand-in as hashicorp/google).
fn terraform(dir: &Path, rc: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new("terraform");
    cmd.args(args)
        .current_dir(dir)
        .env("TF_CLI_CONFIG_FILE", rc)
        .env("TF_IN_AUTOMATION", "1")
        .env("TF_INPUT", "0")
        .env("CHECKPOINT_DISABLE", "1");
    for (key, _) in std::env::vars() {
        if key.starts_with("TF_CLI_ARGS")
            || key.starts_with("TF_VAR_")
            || [
                "TF_PLUGIN_CACHE_DIR",
                "TF_DATA_DIR",
                "TF_WORKSPACE",
                "TF_REATTACH_PROVIDERS",
            ]
            .contains(&key.as_str())
        {
            cmd.env_remove(key);
        }
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("terraform {args:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Terraform's output, indented (so none of its lines reads as this test's own summary).
fn indented(s: &str) -> String {
    s.lines().map(|l| format!("    | {l}\n")).collect()
}

fn must(out: Output, what: &str) -> String {
    let all = text(&out);
    assert!(out.status.success(), "{what} failed:\n{}", indented(&all));
    all
}

/// The copy's `example` directory, initialized from the stand-in mirror.
fn init(gcp: &Path, rc: &Path) -> PathBuf {
    let example = gcp.join("example");
    let out = must(
        terraform(&example, rc, &["init", "-input=false", "-no-color"]),
        "terraform init",
    );
    for provider in ["hashicorp/google v6.50.0", "hashicorp/google-beta v6.50.0"] {
        assert!(
            out.contains(&format!("Installed {provider}")),
            "init did not install {provider} from the stand-in mirror:\n{}",
            indented(&out)
        );
    }
    example
}

/// A copy of `infra/gcp` with `from` replaced by `to` (once) in `file` of the module fails
/// `terraform validate` with a diagnostic containing every one of `wanted`.
fn negative_control(rc: &Path, label: &str, file: &str, from: &str, to: &str, wanted: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let gcp = dir.path().join("gcp");
    copy_tree(&repo_root().join("infra/gcp"), &gcp);
    let path = gcp.join("modules/rrstitch").join(file);
    let source = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        source.matches(from).count(),
        1,
        "negative control '{label}': {file} no longer holds {from:?} exactly once; update the control"
    );
    std::fs::write(&path, source.replacen(from, to, 1)).unwrap();
    let example = init(&gcp, rc);
    let out = terraform(&example, rc, &["validate", "-json", "-no-color"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("validate -json: {e}\n{}", indented(&text(&out))));
    assert!(
        !out.status.success() && report["valid"] == false,
        "negative control '{label}': validate accepted the mutated module:\n{}",
        indented(&text(&out))
    );
    let messages: Vec<String> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["severity"] == "error")
        .map(|d| {
            format!(
                "{} {} {}",
                d["summary"].as_str().unwrap_or(""),
                d["detail"].as_str().unwrap_or(""),
                d["range"]["filename"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| wanted.iter().all(|w| m.contains(w))),
        "negative control '{label}': no error names {wanted:?}; the errors were:\n{}",
        indented(&messages.join("\n"))
    );
    println!(
        "negative control '{label}': refused: {}",
        messages
            .iter()
            .find(|m| wanted.iter().all(|w| m.contains(w)))
            .unwrap()
    );
}

/// `terraform plan` of the example with [`PLAN_VARS`] and `extra` (`name=value`), saved as
/// `out` and shown as JSON.
fn plan_json(example: &Path, rc: &Path, extra: &[&str], out: &str) -> serde_json::Value {
    let out_arg = format!("-out={out}");
    let mut args = vec!["plan", "-input=false", "-no-color", out_arg.as_str()];
    for v in PLAN_VARS.iter().chain(extra) {
        args.extend(["-var", v]);
    }
    must(
        terraform(example, rc, &args),
        &format!("terraform plan {extra:?}"),
    );
    let shown = terraform(example, rc, &["show", "-json", out]);
    serde_json::from_slice(&shown.stdout)
        .unwrap_or_else(|e| panic!("show -json: {e}\n{}", indented(&text(&shown))))
}

/// The addresses a plan creates.
fn created(plan: &serde_json::Value) -> Vec<&str> {
    plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] == serde_json::json!(["create"]))
        .map(|c| c["address"].as_str().unwrap())
        .collect()
}

/// A planned resource's address inside the module, without the module and an index:
/// `module.rrstitch.google_x.y["k"]` → `google_x.y`, as the tests' assertions name it.
fn module_local(address: &str) -> &str {
    address
        .trim_start_matches("module.rrstitch.")
        .split('[')
        .next()
        .unwrap()
}

#[test]
fn gcp_stack_validates_and_plans_against_the_google_provider_schema() {
    let start = Instant::now();
    let mut lap = Instant::now();
    let mut step = |name: &str| {
        println!("  {name}: {:.2} s", lap.elapsed().as_secs_f64());
        lap = Instant::now();
    };
    assert!(
        Command::new("terraform")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "terraform is not installed: infra/gcp cannot be checked (install Terraform >= 1.5)"
    );
    let rc = install_standin();
    step("install-tf-standin.sh");

    let dir = tempfile::tempdir().unwrap();
    let gcp = dir.path().join("gcp");
    copy_tree(&repo_root().join("infra/gcp"), &gcp);
    let example = init(&gcp, &rc);
    step("terraform init");

    // The lock file init wrote holds the stand-in's hash: it must never be the repository's.
    let lock = std::fs::read_to_string(example.join(".terraform.lock.hcl")).unwrap();
    let standin_hashes: Vec<&str> = lock.split('"').filter(|s| s.starts_with("h1:")).collect();
    assert!(
        !standin_hashes.is_empty(),
        "no h1: hash in the lock file:\n{lock}"
    );
    for sub in ["example", "modules/rrstitch"] {
        let committed = repo_root()
            .join("infra/gcp")
            .join(sub)
            .join(".terraform.lock.hcl");
        if let Ok(committed) = std::fs::read_to_string(&committed) {
            for h in &standin_hashes {
                assert!(
                    !committed.contains(h),
                    "infra/gcp/{sub}/.terraform.lock.hcl holds the stand-in provider's hash {h}: \
                     delete it (it was written with .build/tf-standin/terraformrc)"
                );
            }
        }
    }

    let out = must(
        terraform(&example, &rc, &["validate", "-no-color"]),
        "terraform validate",
    );
    assert!(out.contains("The configuration is valid"), "{out}");
    step("terraform validate");

    // The plan-only runs of infra/gcp/example/tests/*.tftest.hcl.
    let out = must(
        terraform(&example, &rc, &["test", "-no-color"]),
        "terraform test",
    );
    print!("{}", indented(&out));
    let passed: Vec<&str> = out
        .lines()
        .filter(|l| l.trim_start().starts_with("run \"") && l.ends_with("... pass"))
        .collect();
    for run in [
        "example_plans",
        "ingest_path_identities_schedules_indexes_env",
        "chunk_prefix_and_manual_invoker",
        "public_invoker_refused",
        "finalize_queue_mode",
        "storage_tiers_default",
        "storage_tiers_cold_chunks_before_their_deletion",
        "storage_tier_after_deletion_refused",
        "storage_tier_archive_refused",
        "restriction_rules_reach_both_services",
        "restriction_rules_must_be_json",
        "a_session_quota_reaches_both_services",
        "no_session_quota_no_variable",
        "a_session_quota_must_be_whole_bytes",
        "example_plans_with_eventarc",
        "ingest_through_eventarc",
        "eventarc_with_queue_mode_a_prefix_and_a_multi_region_bucket",
        "ingest_trigger_must_be_pubsub_or_eventarc",
    ] {
        assert!(
            passed.iter().any(|l| l.contains(&format!("run \"{run}\""))),
            "terraform test did not pass run \"{run}\":\n{}",
            indented(&out)
        );
    }
    assert!(
        !out.lines().any(|l| l.ends_with("... fail")),
        "{}",
        indented(&out)
    );
    step("terraform test");

    // What the test files assert is tied to the code: every variable they expect a function to
    // get is one the binaries read, and the indexes they expect are the ones the index queries.
    let tests_text = std::fs::read_to_string(example.join("tests/rrstitch.tftest.hcl")).unwrap();
    let known: BTreeSet<&str> = rrstitch_edge::config::VARIABLES
        .iter()
        .map(|v| v.0)
        .collect();
    let expected_vars: BTreeSet<&str> = tests_text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("RRSTITCH_"))
        .collect();
    assert!(expected_vars.len() >= 12, "{expected_vars:?}");
    for var in &expected_vars {
        assert!(
            known.contains(var),
            "the tests expect {var}, which no binary reads (shared/edge/src/config/variables.rs)"
        );
    }
    for fields in rrstitch::index::firestore::COMPOSITE_INDEXES {
        let joined: Vec<String> = fields.iter().map(|(f, o)| format!("{f}:{o}")).collect();
        let index = format!("\"{}\"", joined.join(","));
        assert!(
            tests_text.contains(&index),
            "the tests do not expect the composite index {index} the Firestore index queries"
        );
    }

    // A plan of the example in queue mode: the queue's resources plan against the schema with
    // nothing overridden, and each of its grants is one the tests name.
    let mut args = vec!["plan", "-input=false", "-no-color", "-out=queue.tfplan"];
    for v in &PLAN_VARS {
        args.extend(["-var", v]);
    }
    args.extend(["-var", "finalize_mode=queue"]);
    must(
        terraform(&example, &rc, &args),
        "terraform plan (queue mode)",
    );
    let out = terraform(&example, &rc, &["show", "-json", "queue.tfplan"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("show -json: {e}\n{}", indented(&text(&out))));
    let queued: Vec<&str> = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["change"]["actions"] == serde_json::json!(["create"]))
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    for address in [
        "module.rrstitch.google_pubsub_topic.finalize_jobs[0]",
        "module.rrstitch.google_pubsub_topic.finalize_dead_letters[0]",
        "module.rrstitch.google_pubsub_subscription.finalize_push[0]",
        "module.rrstitch.google_pubsub_subscription.finalize_dead_letters_hold[0]",
        "module.rrstitch.google_service_account.queue_push[0]",
    ] {
        assert!(
            queued.contains(&address),
            "queue mode plans no {address}: {queued:?}"
        );
    }
    // Operating (metrics.tf, monitoring.tf): a log-based metric per declared metric, four
    // alert policies and a dashboard; in queue mode the dead-letter alert watches both hold
    // subscriptions, the chunk events' and the finalize jobs'.
    let planned_count = |prefix: &str| queued.iter().filter(|a| a.starts_with(prefix)).count();
    let (_, declared) = rrstitch_tests::metrics::gcp_declared();
    assert_eq!(
        planned_count("module.rrstitch.google_logging_metric.rrstitch["),
        declared.as_object().unwrap().len()
    );
    assert_eq!(
        planned_count("module.rrstitch.google_monitoring_alert_policy."),
        4
    );
    assert_eq!(
        planned_count("module.rrstitch.google_monitoring_dashboard."),
        1
    );
    let dead_letter_alert = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "module.rrstitch.google_monitoring_alert_policy.dead_letters[0]")
        .expect("a dead-letter alert");
    let watched: Vec<String> = dead_letter_alert["change"]["after"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["condition_threshold"][0]["filter"].to_string())
        .collect();
    assert_eq!(watched.len(), 2, "{watched:?}");
    assert!(
        watched
            .iter()
            .any(|f| f.contains("finalize-jobs-dead-letter-hold")),
        "{watched:?}"
    );
    let queue_grants: Vec<&str> = queued
        .iter()
        .copied()
        .filter(|a| a.contains("_iam_"))
        .collect();
    assert!(queue_grants.len() >= 16, "{queue_grants:?}");
    for address in &queue_grants {
        let local = module_local(address);
        assert!(
            tests_text.contains(local),
            "{address} is a queue-mode grant the tests' assertions do not name"
        );
    }
    step("terraform plan (queue mode)");

    // A plan of the example with ingest_trigger = "eventarc": the trigger to ingest's / and
    // its grants plan against the schema with nothing overridden, none of the push route is
    // planned, no dead-letter alert (nothing to watch), and every grant is one the tests name.
    let plan = plan_json(
        &example,
        &rc,
        &["ingest_trigger=eventarc"],
        "eventarc.tfplan",
    );
    let planned = created(&plan);
    let count = |prefix: &str| planned.iter().filter(|a| a.starts_with(prefix)).count();
    for (prefix, want) in [
        ("module.rrstitch.google_eventarc_trigger.", 1),
        ("module.rrstitch.google_storage_notification.", 0),
        ("module.rrstitch.google_pubsub_topic.chunk_events", 0),
        ("module.rrstitch.google_pubsub_topic.dead_letters", 0),
        ("module.rrstitch.google_pubsub_subscription.ingest_push", 0),
        (
            "module.rrstitch.google_pubsub_subscription.dead_letters_hold",
            0,
        ),
        ("module.rrstitch.google_pubsub_", 0),
        ("module.rrstitch.google_monitoring_alert_policy.", 3),
        (
            "module.rrstitch.google_monitoring_alert_policy.dead_letters",
            0,
        ),
        (
            "module.rrstitch.google_project_service.apis[\"eventarc.googleapis.com\"]",
            1,
        ),
        (
            "module.rrstitch.google_project_service.apis[\"pubsub.googleapis.com\"]",
            1,
        ),
        (
            "module.rrstitch.google_project_iam_member.trigger_receives_events[0]",
            1,
        ),
        (
            "module.rrstitch.google_project_iam_member.gcs_publishes_eventarc_events[0]",
            1,
        ),
        (
            "module.rrstitch.google_cloud_run_v2_service_iam_member.trigger_invokes_ingest",
            1,
        ),
        (
            "module.rrstitch.google_service_account_iam_member.pubsub_agent_mints_trigger_tokens",
            1,
        ),
    ] {
        assert_eq!(
            count(prefix),
            want,
            "eventarc plan: {prefix} planned {} times, not {want}: {planned:?}",
            count(prefix)
        );
    }
    let trigger = plan["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["address"] == "module.rrstitch.google_eventarc_trigger.chunk_finalized[0]")
        .expect("an Eventarc trigger")["change"]["after"]
        .clone();
    let criteria: BTreeSet<String> = trigger["matching_criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}={}",
                m["attribute"].as_str().unwrap(),
                m["value"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        criteria,
        BTreeSet::from([
            format!("type={}", rrstitch_edge::events::GCS_FINALIZED),
            "bucket=test-project-rrstitch-chunks".to_owned(),
        ])
    );
    let run = &trigger["destination"][0]["cloud_run_service"][0];
    assert_eq!(
        (
            &run["service"],
            &run["region"],
            &run["path"],
            &trigger["location"]
        ),
        (
            &serde_json::json!("rrstitch-ingest"),
            &serde_json::json!("europe-west1"),
            &serde_json::json!("/"),
            &serde_json::json!("europe-west1")
        ),
        "{trigger}"
    );
    for address in planned.iter().filter(|a| a.contains("_iam_")) {
        let local = module_local(address);
        assert!(
            tests_text.contains(local),
            "{address} is an eventarc-mode grant the tests' assertions do not name"
        );
    }
    step("terraform plan (eventarc)");

    // A plan of the example, as JSON: only creates, every grant is one the exact-set assertion
    // of the tests names (a new grant must be added there), none is authoritative (binding or
    // policy) and none is public.
    let mut args = vec!["plan", "-input=false", "-no-color", "-out=plan.tfplan"];
    for v in &PLAN_VARS {
        args.extend(["-var", v]);
    }
    must(terraform(&example, &rc, &args), "terraform plan");
    let out = terraform(&example, &rc, &["show", "-json", "plan.tfplan"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("show -json: {e}\n{}", indented(&text(&out))));
    let changes = plan["resource_changes"].as_array().unwrap();
    assert!(changes.len() >= 40, "{} resource changes", changes.len());
    let mut grants = 0;
    for change in changes {
        let address = change["address"].as_str().unwrap();
        let kind = change["type"].as_str().unwrap();
        if change["mode"] == "data" {
            continue;
        }
        assert_eq!(
            change["change"]["actions"],
            serde_json::json!(["create"]),
            "{address}"
        );
        if kind.contains("_iam_") {
            grants += 1;
            assert!(
                kind.ends_with("_iam_member"),
                "{address}: only additive *_iam_member grants, never authoritative bindings or policies"
            );
            let local = module_local(address);
            assert!(
                tests_text.contains(local),
                "{address} is a grant the tests' least-privilege assertion does not name \
                 (infra/gcp/example/tests/rrstitch.tftest.hcl)"
            );
        }
    }
    assert!(grants >= 11, "{grants} grants");
    let planned_default = created(&plan);
    for (prefix, want) in [
        ("module.rrstitch.google_eventarc_trigger.", 0),
        (
            "module.rrstitch.google_storage_notification.chunk_finalized[0]",
            1,
        ),
        (
            "module.rrstitch.google_pubsub_subscription.ingest_push[0]",
            1,
        ),
        (
            "module.rrstitch.google_pubsub_subscription.dead_letters_hold[0]",
            1,
        ),
        (
            "module.rrstitch.google_monitoring_alert_policy.dead_letters[0]",
            1,
        ),
        (
            "module.rrstitch.google_project_service.apis[\"eventarc.googleapis.com\"]",
            0,
        ),
    ] {
        let n = planned_default
            .iter()
            .filter(|a| a.starts_with(prefix))
            .count();
        assert_eq!(
            n, want,
            "default plan: {prefix} planned {n} times, not {want}"
        );
    }
    let planned = plan["planned_values"].to_string().to_lowercase();
    for public in ["allusers", "allauthenticatedusers"] {
        assert!(
            !planned.contains(public),
            "the plan grants something to {public}"
        );
    }
    step("terraform plan + show -json");

    // The stand-in never creates anything: an apply is refused and records no resource (only
    // the data sources' placeholders, which plan read).
    let out = terraform(
        &example,
        &rc,
        &["apply", "-input=false", "-no-color", "plan.tfplan"],
    );
    assert!(
        !out.status.success() && text(&out).contains("stand-in does not apply"),
        "{}",
        indented(&text(&out))
    );
    let state = terraform(&example, &rc, &["state", "list"]);
    let created: Vec<String> = String::from_utf8_lossy(&state.stdout)
        .lines()
        .filter(|l| !l.contains(".data.") && !l.starts_with("data."))
        .map(str::to_owned)
        .collect();
    assert!(
        created.is_empty(),
        "an apply through the stand-in recorded resources: {created:?}"
    );
    step("terraform apply refused");

    negative_control(
        &rc,
        "misspelt argument",
        "triggers.tf",
        "  ack_deadline_seconds = ",
        "  ack_deadline_secs = ",
        &[
            "Unsupported argument",
            "\"ack_deadline_secs\"",
            "triggers.tf",
        ],
    );
    negative_control(
        &rc,
        "missing required argument",
        "triggers.tf",
        "  topic              = google_pubsub_topic.chunk_events[0].id\n",
        "",
        &[
            "Missing required argument",
            "\"topic\" is required",
            "triggers.tf",
        ],
    );
    negative_control(
        &rc,
        "invalid enum value",
        "firestore.tf",
        "  fields {\n    field_path = \"status\"\n    order      = \"ASCENDING\"\n  }\n\n  fields {\n    field_path = \"last_chunk_at\"",
        "  fields {\n    field_path = \"status\"\n    order      = \"ASC\"\n  }\n\n  fields {\n    field_path = \"last_chunk_at\"",
        &[
            "expected order to be one of [\"ASCENDING\" \"DESCENDING\" \"\"], got ASC",
            "firestore.tf",
        ],
    );
    // An ingest_trigger that is neither route is refused, and the error names the variable.
    let mut args = vec!["plan", "-input=false", "-no-color"];
    for v in PLAN_VARS.iter().chain(&["ingest_trigger=cloudevent"]) {
        args.extend(["-var", v]);
    }
    let out = terraform(&example, &rc, &args);
    let said = text(&out);
    assert!(
        !out.status.success()
            && said.contains("Invalid value for variable")
            && said.contains("ingest_trigger must be pubsub or eventarc."),
        "negative control 'ingest_trigger = cloudevent': not refused by the variable's validation:\n{}",
        indented(&said)
    );
    println!("negative control 'ingest_trigger = cloudevent': refused: ingest_trigger must be pubsub or eventarc.");
    step("negative controls");

    let secs = start.elapsed().as_secs_f64();
    println!("infra_gcp_plan: whole test {secs:.1} s");
    println!("FIGURE infra.gcp_plan_test_secs: {secs:.1}");
    println!("FIGURE infra.gcp_plan_runs_passed: {}", passed.len());
}
