//! The GCP Terraform module, checked against the code it deploys.
//!
//! No `google` provider can be fetched on these machines, so `terraform validate` cannot run
//! on `infra/gcp`; instead its HCL is parsed (`hcl-rs`) and held to what the binaries read and
//! query: the variables each function gets, the two routes chunk events take to ingest (the
//! chunk notification → Pub/Sub push → ingest path and its dead-letter topic, or the Eventarc
//! trigger → ingest's CloudEvents route), the Scheduler targets and their OIDC identity, the IAM roles
//! per identity (service agents included) and where each is granted, the Firestore composite
//! indexes, and that every reference in the module names something the module declares. A few
//! expressions (budgets, deadlines, validations) are evaluated with `hcl::eval` over the
//! Terraform functions they use.

use std::collections::{BTreeMap, BTreeSet};

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Block, Body, Expression, Value};

fn module() -> Body {
    let dir = rrstitch_tests::repo_root().join("infra/gcp/modules/rrstitch");
    let mut all = Body::builder();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tf") {
            let text = std::fs::read_to_string(&path).unwrap();
            let body: Body = hcl::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not valid HCL: {e}", path.display()));
            for structure in body.into_inner() {
                all = all.add_structure(structure);
            }
        }
    }
    all.build()
}

/// `resource "<kind>" "<name>"` blocks.
fn resources<'a>(body: &'a Body, kind: &str) -> BTreeMap<String, &'a Block> {
    body.blocks()
        .filter(|b| {
            b.identifier() == "resource" && b.labels().first().map(|l| l.as_str()) == Some(kind)
        })
        .map(|b| (b.labels()[1].as_str().to_owned(), b))
        .collect()
}

fn resource<'a>(body: &'a Body, kind: &str, name: &str) -> &'a Block {
    resources(body, kind)
        .remove(name)
        .unwrap_or_else(|| panic!("no resource {kind}.{name}"))
}

/// `data "<kind>" "<name>"` blocks, as `(kind, name)`.
fn data_sources(body: &Body) -> BTreeSet<(String, String)> {
    body.blocks()
        .filter(|b| b.identifier() == "data")
        .map(|b| {
            (
                b.labels()[0].as_str().to_owned(),
                b.labels()[1].as_str().to_owned(),
            )
        })
        .collect()
}

/// `variable "<name>"` blocks.
fn variables(body: &Body) -> BTreeMap<String, &Block> {
    body.blocks()
        .filter(|b| b.identifier() == "variable")
        .map(|b| (b.labels()[0].as_str().to_owned(), b))
        .collect()
}

fn variable<'a>(body: &'a Body, name: &str) -> &'a Block {
    variables(body)
        .remove(name)
        .unwrap_or_else(|| panic!("no variable {name}"))
}

/// Every `locals` entry.
fn locals(body: &Body) -> BTreeMap<String, &Expression> {
    body.blocks()
        .filter(|b| b.identifier() == "locals")
        .flat_map(|b| b.body().attributes())
        .map(|a| (a.key().to_owned(), a.expr()))
        .collect()
}

fn expr<'a>(block: &'a Block, key: &str) -> &'a Expression {
    block
        .body()
        .attributes()
        .find(|a| a.key() == key)
        .map(|a| a.expr())
        .unwrap_or_else(|| panic!("{} has no attribute {key}", block.identifier()))
}

fn has_attr(block: &Block, key: &str) -> bool {
    block.body().attributes().any(|a| a.key() == key)
}

fn text(expr: &Expression) -> String {
    hcl::format::to_string(expr).unwrap().trim().to_owned()
}

/// An attribute as HCL text (`"gs://${google_storage_bucket.chunks.name}"`, `var.x`).
fn attr(block: &Block, key: &str) -> String {
    text(expr(block, key))
}

/// Evaluates `expr` with `var` = `vars` and the Terraform functions the module's evaluated
/// expressions use (`min`, `max`, `floor`, `coalesce`, `contains`, `concat`, `toset`,
/// `upper`, `lower`).
fn eval(expr: &Expression, vars: &[(&str, Value)]) -> Value {
    eval_with(expr, vars, &[])
}

/// [`eval`] with `local` = `locals` as well.
fn eval_with(expr: &Expression, vars: &[(&str, Value)], locals: &[(&str, Value)]) -> Value {
    fn numbers(args: &FuncArgs) -> Vec<f64> {
        args.iter().map(|v| v.as_f64().unwrap()).collect()
    }
    fn object(items: &[(&str, Value)]) -> Value {
        Value::Object(
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
    }
    let mut ctx = Context::new();
    ctx.declare_var("var", object(vars));
    ctx.declare_var("local", object(locals));
    let number = || FuncDef::builder().variadic_param(ParamType::Number);
    ctx.declare_func(
        "min",
        number().build(|a| Ok(numbers(&a).into_iter().fold(f64::INFINITY, f64::min).into())),
    );
    ctx.declare_func(
        "max",
        number().build(|a| {
            Ok(numbers(&a)
                .into_iter()
                .fold(f64::NEG_INFINITY, f64::max)
                .into())
        }),
    );
    ctx.declare_func(
        "floor",
        FuncDef::builder()
            .param(ParamType::Number)
            .build(|a| Ok(a[0].as_f64().unwrap().floor().into())),
    );
    ctx.declare_func(
        "coalesce",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(|a| {
                Ok(a.iter()
                    .find(|v| !v.is_null())
                    .cloned()
                    .unwrap_or(Value::Null))
            }),
    );
    ctx.declare_func(
        "contains",
        FuncDef::builder()
            .param(ParamType::Any)
            .param(ParamType::Any)
            .build(|a| {
                let list = a[0].as_array().cloned().unwrap_or_default();
                Ok(list.contains(&a[1]).into())
            }),
    );
    ctx.declare_func(
        "concat",
        FuncDef::builder()
            .variadic_param(ParamType::Any)
            .build(|a| {
                Ok(Value::Array(
                    a.iter()
                        .flat_map(|l| l.as_array().cloned().unwrap_or_default())
                        .collect(),
                ))
            }),
    );
    // A set, as far as these checks go: the list without duplicates, in order.
    ctx.declare_func(
        "toset",
        FuncDef::builder().param(ParamType::Any).build(|a| {
            let mut out: Vec<Value> = Vec::new();
            for v in a[0].as_array().cloned().unwrap_or_default() {
                if !out.contains(&v) {
                    out.push(v);
                }
            }
            Ok(Value::Array(out))
        }),
    );
    ctx.declare_func(
        "upper",
        FuncDef::builder()
            .param(ParamType::String)
            .build(|a| Ok(a[0].as_str().unwrap().to_uppercase().into())),
    );
    ctx.declare_func(
        "lower",
        FuncDef::builder()
            .param(ParamType::String)
            .build(|a| Ok(a[0].as_str().unwrap().to_lowercase().into())),
    );
    expr.evaluate(&ctx)
        .unwrap_or_else(|e| panic!("evaluating {}: {e}", text(expr)))
}

fn eval_f64(expr: &Expression, vars: &[(&str, Value)]) -> f64 {
    let value = eval(expr, vars);
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{} is not a number: {value:?}", text(expr)))
}

/// Whether `variable "<name>"`'s validation conditions all hold for `value`.
fn valid(body: &Body, name: &str, value: Value) -> bool {
    let checks = child(variable(body, name), "validation");
    assert!(!checks.is_empty(), "variable {name} has no validation");
    checks
        .into_iter()
        .all(|v| eval(expr(v, "condition"), &[(name, value.clone())]) == Value::Bool(true))
}

fn child<'a>(block: &'a Block, name: &str) -> Vec<&'a Block> {
    block
        .body()
        .blocks()
        .filter(|b| b.identifier() == name)
        .collect()
}

fn only<'a>(block: &'a Block, path: &[&str]) -> &'a Block {
    let mut b = block;
    for name in path {
        let found = child(b, name);
        assert_eq!(found.len(), 1, "one {name} block under {}", b.identifier());
        b = found[0];
    }
    b
}

/// Every variable a Cloud Run service's container sets, plain or `dynamic "env"`.
fn env_names(service: &Block) -> BTreeSet<String> {
    let container = only(service, &["template", "containers"]);
    let mut names = BTreeSet::new();
    for env in child(container, "env") {
        names.insert(attr(env, "name").trim_matches('"').to_owned());
    }
    for dynamic in child(container, "dynamic") {
        if dynamic.labels().first().map(|l| l.as_str()) == Some("env") {
            names.insert(
                attr(only(dynamic, &["content"]), "name")
                    .trim_matches('"')
                    .to_owned(),
            );
        }
    }
    names
}

fn unquote(s: &str) -> &str {
    s.trim_matches('"')
}

#[test]
fn every_variable_the_functions_need_is_set_and_exists() {
    let body = module();
    let known: BTreeSet<&str> = rrstitch_edge::config::VARIABLES
        .iter()
        .map(|v| v.0)
        .collect();
    let ingest = env_names(resource(&body, "google_cloud_run_v2_service", "ingest"));
    let finalize = env_names(resource(&body, "google_cloud_run_v2_service", "finalize"));
    for name in ingest.iter().chain(&finalize) {
        assert!(
            known.contains(name.as_str()),
            "{name} is not a variable the binaries read"
        );
    }
    // What a Firestore-indexed GCS deployment must say; the rest have working defaults.
    let index = [
        "RRSTITCH_CHUNKS",
        "RRSTITCH_INDEX",
        "RRSTITCH_FIRESTORE_PROJECT",
        "RRSTITCH_FIRESTORE_DATABASE",
        "RRSTITCH_FIRESTORE_COLLECTION",
        "RRSTITCH_CHUNK_PREFIX",
        "RRSTITCH_MAX_CHUNK_BYTES",
        "RRSTITCH_INDEX_TTL_DAYS",
        "RRSTITCH_LOG_FORMAT",
    ];
    for name in index {
        assert!(ingest.contains(name), "ingest lacks {name}: {ingest:?}");
        assert!(
            finalize.contains(name),
            "finalize lacks {name}: {finalize:?}"
        );
    }
    for name in [
        "RRSTITCH_RESULTS",
        "RRSTITCH_RESULTS_PREFIX",
        "RRSTITCH_IDLE_SECS",
        "RRSTITCH_LEASE_SECS",
        "RRSTITCH_OUTPUT_GZIP",
        "RRSTITCH_SEGMENTS",
        "RRSTITCH_SWEEP_BUDGET_SECS",
        "RRSTITCH_FINALIZE_MODE",
        "RRSTITCH_FINALIZE_TOPIC",
        // Only finalize stitches, so only it redacts.
        "RRSTITCH_REDACT",
    ] {
        assert!(
            finalize.contains(name),
            "finalize lacks {name}: {finalize:?}"
        );
        assert!(!ingest.contains(name), "ingest sets finalize's {name}");
    }
    let container = only(
        resource(&body, "google_cloud_run_v2_service", "ingest"),
        &["template", "containers"],
    );
    let index_value = child(container, "env")
        .into_iter()
        .find(|e| attr(e, "name") == "\"RRSTITCH_INDEX\"")
        .map(|e| attr(e, "value"));
    assert_eq!(index_value.as_deref(), Some("\"firestore\""));
    // Both answer Cloud Run's startup probe on the route the binaries serve.
    for name in ["ingest", "finalize"] {
        let probe = only(
            resource(&body, "google_cloud_run_v2_service", name),
            &["template", "containers", "startup_probe", "http_get"],
        );
        assert_eq!(attr(probe, "path"), "\"/healthz\"");
    }
}

#[test]
fn sweep_budget_stays_under_the_timeout_and_the_scheduler_deadline() {
    let body = module();
    let container = only(
        resource(&body, "google_cloud_run_v2_service", "finalize"),
        &["template", "containers"],
    );
    let budget = child(container, "env")
        .into_iter()
        .find(|e| attr(e, "name") == "\"RRSTITCH_SWEEP_BUDGET_SECS\"")
        .expect("finalize sets RRSTITCH_SWEEP_BUDGET_SECS");
    assert_eq!(attr(budget, "value"), "tostring(local.sweep_budget_secs)");
    let local = locals(&body)["sweep_budget_secs"];
    // The default: well under the request timeout, and under the scheduler's attempt
    // deadline (min(timeout, 1800)), which ends a sweep's HTTP call even when the timeout is
    // longer.
    for timeout in [60.0, 300.0, 900.0, 1800.0, 3600.0] {
        let got = eval_f64(
            local,
            &[
                ("finalize_timeout_secs", timeout.into()),
                ("sweep_budget_secs", Value::Null),
            ],
        );
        let deadline = f64::min(timeout, 1800.0);
        assert!(
            got > 0.0 && got <= 0.8 * deadline && got >= 0.5 * deadline,
            "budget {got} s for a {timeout} s timeout"
        );
    }
    // An explicit budget wins, and a precondition refuses one at or over the deadline.
    let explicit = eval_f64(
        local,
        &[
            ("finalize_timeout_secs", 900.into()),
            ("sweep_budget_secs", 500.into()),
        ],
    );
    assert_eq!(explicit, 500.0);
    // The binaries read a whole number of seconds.
    for (budget, ok) in [
        (Value::Null, true),
        (Value::from(300), true),
        (Value::from(0), false),
        (Value::from(299.5), false),
    ] {
        assert_eq!(
            valid(&body, "sweep_budget_secs", budget.clone()),
            ok,
            "sweep_budget_secs = {budget:?}"
        );
    }
    let finalize = resource(&body, "google_cloud_run_v2_service", "finalize");
    let condition = attr(only(finalize, &["lifecycle", "precondition"]), "condition");
    assert!(
        condition.contains("local.sweep_budget_secs <")
            && condition.contains("var.finalize_timeout_secs")
            && condition.contains("1800"),
        "{condition}"
    );
}

/// The APIs the module enables, with `ingest_trigger` = `trigger`.
fn apis_for(body: &Body, trigger: &str) -> Vec<String> {
    let mode = trigger_locals(body, trigger);
    let apis = eval_with(locals(body)["apis"], &[], &mode);
    apis.as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// `local.pubsub_trigger` and `local.eventarc_trigger` as the module computes them for
/// `ingest_trigger` = `trigger`.
fn trigger_locals(body: &Body, trigger: &str) -> Vec<(&'static str, Value)> {
    let all = locals(body);
    ["pubsub_trigger", "eventarc_trigger"]
        .into_iter()
        .map(|name| (name, eval(all[name], &[("ingest_trigger", trigger.into())])))
        .collect()
}

/// Every resource the chunk events' route consists of, by `count`: `local.pubsub_trigger ? 1 :
/// 0` (the push route), `local.eventarc_trigger ? 1 : 0` (the Eventarc one) or none (both).
fn trigger_route_resources(body: &Body) -> BTreeMap<String, BTreeSet<String>> {
    let dir = rrstitch_tests::repo_root().join("infra/gcp/modules/rrstitch");
    let mut by_count: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in ["triggers.tf", "iam.tf"] {
        let parsed: Body =
            hcl::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        for block in parsed.blocks().filter(|b| b.identifier() == "resource") {
            let count = if has_attr(block, "count") {
                attr(block, "count")
            } else {
                "none".to_owned()
            };
            by_count.entry(count).or_default().insert(format!(
                "{}.{}",
                block.labels()[0].as_str(),
                block.labels()[1].as_str()
            ));
        }
    }
    // The same blocks as in the whole module.
    for names in by_count.values() {
        for name in names {
            let (kind, label) = name.split_once('.').unwrap();
            resource(body, kind, label);
        }
    }
    by_count
}

#[test]
fn chunk_bucket_notifications_reach_ingest_through_a_push_subscription() {
    let body = module();
    // The push route is the default, ingest_trigger = "pubsub": every one of its resources
    // exists then only, and the Eventarc API is enabled only for the other route.
    let gated = trigger_route_resources(&body);
    let push_route: BTreeSet<String> = [
        "google_storage_notification.chunk_finalized",
        "google_pubsub_topic.chunk_events",
        "google_pubsub_topic.dead_letters",
        "google_pubsub_subscription.ingest_push",
        "google_pubsub_subscription.dead_letters_hold",
        "google_pubsub_topic_iam_member.gcs_publishes_chunk_events",
        "google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters",
        "google_pubsub_subscription_iam_member.pubsub_agent_acks_ingest_push",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        gated.get("local.pubsub_trigger ? 1 : 0"),
        Some(&push_route),
        "the push route's resources, and only they, exist with ingest_trigger = \"pubsub\": {gated:?}"
    );
    assert_eq!(
        trigger_locals(&body, "pubsub"),
        [
            ("pubsub_trigger", Value::Bool(true)),
            ("eventarc_trigger", Value::Bool(false))
        ]
    );
    let apis = apis_for(&body, "pubsub");
    assert!(
        apis.contains(&"pubsub.googleapis.com".to_owned()),
        "{apis:?}"
    );
    assert!(
        !apis.iter().any(|a| a.contains("eventarc")),
        "the push route enables no Eventarc API: {apis:?}"
    );

    let notifications = resources(&body, "google_storage_notification");
    assert_eq!(notifications.len(), 1, "{:?}", notifications.keys());
    let notification = notifications["chunk_finalized"];
    assert_eq!(
        attr(notification, "bucket"),
        "google_storage_bucket.chunks.name"
    );
    assert_eq!(
        attr(notification, "topic"),
        "google_pubsub_topic.chunk_events[0].id"
    );
    assert_eq!(attr(notification, "payload_format"), "\"JSON_API_V1\"");
    assert_eq!(
        eval(expr(notification, "event_types"), &[]),
        Value::from(vec!["OBJECT_FINALIZE"])
    );
    let prefix = expr(notification, "object_name_prefix");
    for (chunk_prefix, want) in [("", Value::Null), ("chunks/", Value::from("chunks/"))] {
        assert_eq!(eval(prefix, &[("chunk_prefix", chunk_prefix.into())]), want);
    }
    assert!(
        attr(notification, "depends_on")
            .contains("google_pubsub_topic_iam_member.gcs_publishes_chunk_events"),
        "the notification is created before Cloud Storage may publish"
    );

    let subscription = resource(&body, "google_pubsub_subscription", "ingest_push");
    assert_eq!(
        attr(subscription, "topic"),
        "google_pubsub_topic.chunk_events[0].id"
    );
    let push = only(subscription, &["push_config"]);
    assert_eq!(
        attr(push, "push_endpoint"),
        "\"${google_cloud_run_v2_service.ingest.uri}/pubsub\""
    );
    // Ingest's /pubsub reads the standard envelope: the message is wrapped.
    assert!(child(push, "no_wrapper").is_empty());
    let oidc = only(push, &["oidc_token"]);
    assert_eq!(
        attr(oidc, "service_account_email"),
        "google_service_account.trigger.email"
    );
    assert_eq!(
        attr(oidc, "audience"),
        "google_cloud_run_v2_service.ingest.uri"
    );
    // Pub/Sub waits for ingest's answer at least as long as ingest may take (10..600 s).
    let ack = expr(subscription, "ack_deadline_seconds");
    for timeout in [5.0, 60.0, 300.0, 600.0, 3600.0] {
        let got = eval_f64(ack, &[("ingest_timeout_secs", timeout.into())]);
        assert!(
            (10.0..=600.0).contains(&got) && got >= f64::min(timeout, 600.0),
            "ack deadline {got} s for a {timeout} s ingest timeout"
        );
    }
    let retry = only(subscription, &["retry_policy"]);
    assert_eq!(attr(retry, "minimum_backoff"), "\"10s\"");
    assert_eq!(attr(retry, "maximum_backoff"), "\"600s\"");
    assert_eq!(
        attr(only(subscription, &["expiration_policy"]), "ttl"),
        "\"\"",
        "the push subscription must never expire"
    );
    let dead_letter = only(subscription, &["dead_letter_policy"]);
    assert_eq!(
        attr(dead_letter, "dead_letter_topic"),
        "google_pubsub_topic.dead_letters[0].id"
    );
    assert_eq!(
        attr(dead_letter, "max_delivery_attempts"),
        "var.max_delivery_attempts"
    );
    let attempts = variable(&body, "max_delivery_attempts");
    assert_eq!(attr(attempts, "default"), "10");
    for (n, ok) in [(4, false), (5, true), (10, true), (100, true), (101, false)] {
        assert_eq!(
            valid(&body, "max_delivery_attempts", n.into()),
            ok,
            "max_delivery_attempts = {n}"
        );
    }
}

/// `ingest_trigger = "eventarc"`: one Eventarc trigger on the chunk bucket's finalized objects,
/// delivering CloudEvents to the route ingest serves them on, as the trigger account; none of
/// the push route, no dead-letter alert without a hold subscription, the Eventarc API and the
/// grants Eventarc needs, and a value other than the two refused.
#[test]
fn eventarc_trigger_delivers_cloudevents_to_ingest_instead() {
    let body = module();
    let choice = variable(&body, "ingest_trigger");
    assert_eq!(attr(choice, "default"), "\"pubsub\"");
    for (value, ok) in [
        ("pubsub", true),
        ("eventarc", true),
        ("cloudevent", false),
        ("Eventarc", false),
        ("", false),
    ] {
        assert_eq!(
            valid(&body, "ingest_trigger", value.into()),
            ok,
            "ingest_trigger = {value:?}"
        );
    }
    let message = attr(only(choice, &["validation"]), "error_message");
    assert!(message.contains("ingest_trigger"), "{message}");
    assert_eq!(
        trigger_locals(&body, "eventarc"),
        [
            ("pubsub_trigger", Value::Bool(false)),
            ("eventarc_trigger", Value::Bool(true))
        ]
    );

    // What exists in which mode: the trigger and its two grants with Eventarc only; the
    // invoker grant and the Pub/Sub agent's token minting in both (Eventarc pushes through
    // Pub/Sub as the trigger account too).
    let gated = trigger_route_resources(&body);
    let eventarc_only: BTreeSet<String> = [
        "google_eventarc_trigger.chunk_finalized",
        "google_project_iam_member.trigger_receives_events",
        "google_project_iam_member.gcs_publishes_eventarc_events",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(
        gated.get("local.eventarc_trigger ? 1 : 0"),
        Some(&eventarc_only),
        "{gated:?}"
    );
    for both in [
        "google_cloud_run_v2_service_iam_member.trigger_invokes_ingest",
        "google_service_account_iam_member.pubsub_agent_mints_trigger_tokens",
    ] {
        assert!(
            gated["none"].contains(both),
            "{both} is needed by both routes"
        );
    }
    assert_eq!(
        gated.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "local.eventarc_trigger ? 1 : 0",
            "local.pubsub_trigger ? 1 : 0",
            "none"
        ],
        "every resource of triggers.tf and iam.tf exists in one route, the other or both"
    );
    let apis = apis_for(&body, "eventarc");
    for api in ["eventarc.googleapis.com", "pubsub.googleapis.com"] {
        assert!(apis.contains(&api.to_owned()), "{api}: {apis:?}");
    }

    let triggers = resources(&body, "google_eventarc_trigger");
    assert_eq!(triggers.len(), 1, "{:?}", triggers.keys());
    let trigger = triggers["chunk_finalized"];
    // Matched by event type and bucket, exactly: the type is the one ingest decodes.
    let criteria: BTreeSet<(String, String)> = child(trigger, "matching_criteria")
        .into_iter()
        .map(|m| {
            assert!(
                !has_attr(m, "operator"),
                "an exact match, not a path pattern"
            );
            (unquote(&attr(m, "attribute")).to_owned(), attr(m, "value"))
        })
        .collect();
    assert_eq!(
        criteria,
        BTreeSet::from([
            (
                "type".to_owned(),
                format!("\"{}\"", rrstitch_edge::events::GCS_FINALIZED)
            ),
            (
                "bucket".to_owned(),
                "google_storage_bucket.chunks.name".to_owned()
            ),
        ])
    );
    assert_eq!(
        attr(trigger, "event_data_content_type"),
        "\"application/json\""
    );
    assert_eq!(
        attr(trigger, "service_account"),
        "google_service_account.trigger.email"
    );
    // To ingest's CloudEvents route, a route the ingest binary serves.
    let run = only(trigger, &["destination", "cloud_run_service"]);
    assert_eq!(
        attr(run, "service"),
        "google_cloud_run_v2_service.ingest.name"
    );
    assert_eq!(
        attr(run, "region"),
        "google_cloud_run_v2_service.ingest.location"
    );
    assert_eq!(attr(run, "path"), "\"/\"");
    let main =
        std::fs::read_to_string(rrstitch_tests::repo_root().join("functions/ingest/src/main.rs"))
            .unwrap();
    assert!(
        main.contains(".route(\"/\", post(on_cloudevent))"),
        "ingest serves no CloudEvents on /"
    );
    // A Cloud Storage trigger is in its bucket's location, in Eventarc's lower-case spelling.
    let bucket_location = locals(&body)["bucket_location"];
    for (region, bucket, want) in [
        ("europe-west1", Value::Null, "europe-west1"),
        ("europe-west1", Value::from("EU"), "eu"),
        ("us-central1", Value::from("nam4"), "nam4"),
    ] {
        let located = eval(
            bucket_location,
            &[("region", region.into()), ("bucket_location", bucket)],
        );
        assert_eq!(
            eval_with(
                expr(trigger, "location"),
                &[],
                &[("bucket_location", located)]
            ),
            Value::from(want)
        );
    }
    // Created once what Eventarc checks is granted.
    let depends = attr(trigger, "depends_on");
    for needed in [
        "google_project_iam_member.trigger_receives_events",
        "google_project_iam_member.gcs_publishes_eventarc_events",
        "google_cloud_run_v2_service_iam_member.trigger_invokes_ingest",
        "google_service_account_iam_member.pubsub_agent_mints_trigger_tokens",
    ] {
        assert!(depends.contains(needed), "{needed}: {depends}");
    }

    // Eventarc cannot filter by object name, so the prefix is ingest's to apply: it reads
    // RRSTITCH_CHUNK_PREFIX (every_variable_the_functions_need_is_set_and_exists) and ignores
    // a name outside it without reading the object.
    use rrstitch::engine::{ChunkName, NameClass};
    assert!(matches!(
        ChunkName::classify("other/2025-05-02T12:10:50Z.json", "chunks/"),
        NameClass::Ignored
    ));
    assert!(matches!(
        ChunkName::classify("chunks/2025-05-02T12:10:50Z.json", "chunks/"),
        NameClass::Chunk(_)
    ));

    // No hold subscription, no dead-letter alert (a policy needs a condition): it exists with
    // the push route, or in queue mode for the finalize jobs' hold.
    let alert = resource(&body, "google_monitoring_alert_policy", "dead_letters");
    let count = expr(alert, "count");
    for (trigger, queue, want) in [
        ("pubsub", false, 1),
        ("pubsub", true, 1),
        ("eventarc", false, 0),
        ("eventarc", true, 1),
    ] {
        let mut mode = trigger_locals(&body, trigger);
        mode.push(("queue_mode", Value::Bool(queue)));
        assert_eq!(
            eval_with(count, &[], &mode),
            Value::from(want),
            "{trigger}, queue mode {queue}"
        );
    }
    let holds = text(locals(&body)["dead_letter_holds"]);
    for splat in [
        "google_pubsub_subscription.dead_letters_hold[*].name",
        "google_pubsub_subscription.finalize_dead_letters_hold[*].name",
    ] {
        assert!(holds.contains(splat), "{holds}");
    }
    let block = body
        .blocks()
        .find(|b| b.identifier() == "output" && b.labels()[0].as_str() == "eventarc_trigger")
        .expect("an eventarc_trigger output");
    assert_eq!(
        attr(block, "value"),
        "one(google_eventarc_trigger.chunk_finalized[*].name)"
    );

    // The example root module passes the choice through.
    let example = rrstitch_tests::repo_root().join("infra/gcp/example");
    let main: Body =
        hcl::from_str(&std::fs::read_to_string(example.join("main.tf")).unwrap()).unwrap();
    let call = main
        .blocks()
        .find(|b| b.identifier() == "module")
        .expect("the example calls the module");
    assert_eq!(attr(call, "ingest_trigger"), "var.ingest_trigger");
    let vars: Body =
        hcl::from_str(&std::fs::read_to_string(example.join("variables.tf")).unwrap()).unwrap();
    assert_eq!(
        attr(variable(&vars, "ingest_trigger"), "default"),
        "\"pubsub\""
    );
}

#[test]
fn dead_letters_are_held_until_someone_pulls_them() {
    let body = module();
    let topics = resources(&body, "google_pubsub_topic");
    assert_eq!(
        topics.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "chunk_events",
            "dead_letters",
            "finalize_dead_letters",
            "finalize_jobs"
        ]
    );
    let subscriptions = resources(&body, "google_pubsub_subscription");
    // A topic with no subscription drops what is published to it (queue mode's topics and
    // their subscriptions exist together, by the same count).
    for topic in topics.keys() {
        let ids = [
            format!("google_pubsub_topic.{topic}.id"),
            format!("google_pubsub_topic.{topic}[0].id"),
        ];
        assert!(
            subscriptions
                .values()
                .any(|s| ids.contains(&attr(s, "topic"))),
            "nothing subscribes to topic {topic}"
        );
    }
    let hold = subscriptions["dead_letters_hold"];
    assert_eq!(
        attr(hold, "topic"),
        "google_pubsub_topic.dead_letters[0].id"
    );
    // A pull subscription, itself without a dead-letter policy (it would loop).
    assert!(child(hold, "push_config").is_empty());
    assert!(child(hold, "dead_letter_policy").is_empty());
    assert_eq!(attr(only(hold, &["expiration_policy"]), "ttl"), "\"\"");
    assert!(
        !has_attr(hold, "retain_acked_messages") || attr(hold, "retain_acked_messages") == "false"
    );
    let retention = expr(hold, "message_retention_duration");
    assert_eq!(
        eval(retention, &[("dead_letter_retention_days", 7.into())]),
        Value::from("604800s")
    );
    assert_eq!(
        attr(variable(&body, "dead_letter_retention_days"), "default"),
        "7"
    );
    for (days, ok) in [(0, false), (1, true), (7, true), (31, true), (32, false)] {
        assert_eq!(
            valid(&body, "dead_letter_retention_days", days.into()),
            ok,
            "dead_letter_retention_days = {days}"
        );
    }
    // The push route's outputs are null with Eventarc (one() of no instance).
    for (output, value) in [
        (
            "chunk_events_topic",
            "one(google_pubsub_topic.chunk_events[*].name)",
        ),
        (
            "ingest_push_subscription",
            "one(google_pubsub_subscription.ingest_push[*].name)",
        ),
        (
            "dead_letter_topic",
            "one(google_pubsub_topic.dead_letters[*].name)",
        ),
        (
            "dead_letter_subscription",
            "one(google_pubsub_subscription.dead_letters_hold[*].name)",
        ),
        ("reconcile_job", "google_cloud_scheduler_job.reconcile.name"),
    ] {
        let block = body
            .blocks()
            .find(|b| b.identifier() == "output" && b.labels()[0].as_str() == output)
            .unwrap_or_else(|| panic!("no output {output}"));
        assert_eq!(attr(block, "value"), value);
    }
}

#[test]
fn scheduler_posts_sweep_and_reconcile_to_finalize_with_oidc() {
    let body = module();
    let jobs = resources(&body, "google_cloud_scheduler_job");
    assert_eq!(
        jobs.keys().map(String::as_str).collect::<Vec<_>>(),
        ["reconcile", "sweep"]
    );
    for (name, route) in [("sweep", "/sweep"), ("reconcile", "/reconcile")] {
        let job = jobs[name];
        assert_eq!(attr(job, "schedule"), format!("var.{name}_schedule"));
        let target = only(job, &["http_target"]);
        assert_eq!(attr(target, "http_method"), "\"POST\"");
        assert_eq!(
            attr(target, "uri"),
            format!("\"${{google_cloud_run_v2_service.finalize.uri}}{route}\"")
        );
        let oidc = only(target, &["oidc_token"]);
        assert_eq!(
            attr(oidc, "service_account_email"),
            "google_service_account.scheduler.email"
        );
        assert_eq!(
            attr(oidc, "audience"),
            "google_cloud_run_v2_service.finalize.uri"
        );
        assert!(child(target, "oauth_token").is_empty());
        let deadline = eval(
            expr(job, "attempt_deadline"),
            &[("finalize_timeout_secs", 900.into())],
        );
        assert_eq!(deadline, Value::from("900s"), "{name}");
    }
    // Reconcile runs once a day by default: a fixed minute and hour, every day.
    let schedule = attr(variable(&body, "reconcile_schedule"), "default");
    let fields: Vec<&str> = unquote(&schedule).split_whitespace().collect();
    assert_eq!(fields.len(), 5, "{schedule}");
    assert!(
        fields[0].parse::<u8>().is_ok()
            && fields[1].parse::<u8>().is_ok()
            && fields[2..] == ["*", "*", "*"],
        "reconcile_schedule default {schedule} is not daily"
    );
}

#[test]
fn queue_mode_pushes_each_finalize_message_to_the_worker_route() {
    let body = module();
    let mode = variable(&body, "finalize_mode");
    assert_eq!(attr(mode, "default"), "\"inline\"");
    for (value, ok) in [("inline", true), ("queue", true), ("fanout", false)] {
        assert_eq!(
            valid(&body, "finalize_mode", value.into()),
            ok,
            "finalize_mode = {value}"
        );
    }
    assert_eq!(
        text(locals(&body)["queue_mode"]),
        "var.finalize_mode == \"queue\""
    );
    // Every queue-mode resource exists in queue mode only.
    let queue_tf: Body = hcl::from_str(
        &std::fs::read_to_string(
            rrstitch_tests::repo_root().join("infra/gcp/modules/rrstitch/queue.tf"),
        )
        .unwrap(),
    )
    .unwrap();
    let gated: Vec<&Block> = queue_tf
        .blocks()
        .filter(|b| b.identifier() == "resource")
        .collect();
    assert!(gated.len() >= 10, "{} resources in queue.tf", gated.len());
    for block in &gated {
        assert_eq!(
            attr(block, "count"),
            "local.queue_mode ? 1 : 0",
            "{:?}",
            block.labels()
        );
    }

    let push = resource(&body, "google_pubsub_subscription", "finalize_push");
    assert_eq!(
        attr(push, "topic"),
        "google_pubsub_topic.finalize_jobs[0].id"
    );
    let config = only(push, &["push_config"]);
    assert_eq!(
        attr(config, "push_endpoint"),
        "\"${google_cloud_run_v2_service.finalize.uri}/pubsub/finalize\""
    );
    // The route the push goes to is one the finalize binary serves, and it reads the wrapped
    // envelope.
    let main =
        std::fs::read_to_string(rrstitch_tests::repo_root().join("functions/finalize/src/main.rs"))
            .unwrap();
    assert!(
        main.contains(".route(\"/pubsub/finalize\""),
        "finalize serves no /pubsub/finalize"
    );
    assert!(child(config, "no_wrapper").is_empty());
    let oidc = only(config, &["oidc_token"]);
    assert_eq!(
        attr(oidc, "service_account_email"),
        "google_service_account.queue_push[0].email"
    );
    assert_eq!(
        attr(oidc, "audience"),
        "google_cloud_run_v2_service.finalize.uri"
    );
    // Pub/Sub waits one stitch (finalize's request timeout), within its 10..600 s.
    let ack = expr(push, "ack_deadline_seconds");
    for timeout in [5.0, 60.0, 300.0, 900.0, 3600.0] {
        let got = eval_f64(ack, &[("finalize_timeout_secs", timeout.into())]);
        assert!(
            (10.0..=600.0).contains(&got) && got >= f64::min(timeout, 600.0),
            "ack deadline {got} s for a {timeout} s finalize timeout"
        );
    }
    let dead_letter = only(push, &["dead_letter_policy"]);
    assert_eq!(
        attr(dead_letter, "dead_letter_topic"),
        "google_pubsub_topic.finalize_dead_letters[0].id"
    );
    assert_eq!(
        attr(dead_letter, "max_delivery_attempts"),
        "var.finalize_max_delivery_attempts"
    );
    for (n, ok) in [(4, false), (5, true), (100, true), (101, false)] {
        assert_eq!(
            valid(&body, "finalize_max_delivery_attempts", n.into()),
            ok,
            "finalize_max_delivery_attempts = {n}"
        );
    }
    let hold = resource(
        &body,
        "google_pubsub_subscription",
        "finalize_dead_letters_hold",
    );
    assert_eq!(
        attr(hold, "topic"),
        "google_pubsub_topic.finalize_dead_letters[0].id"
    );
    assert!(child(hold, "push_config").is_empty() && child(hold, "dead_letter_policy").is_empty());

    // Finalize is told the mode always, and the topic (its id, projects/P/topics/T) in queue
    // mode; each queued request stitches one session, so they are bounded per instance.
    let finalize = resource(&body, "google_cloud_run_v2_service", "finalize");
    let container = only(finalize, &["template", "containers"]);
    let mode_env = child(container, "env")
        .into_iter()
        .find(|e| attr(e, "name") == "\"RRSTITCH_FINALIZE_MODE\"")
        .expect("finalize sets RRSTITCH_FINALIZE_MODE");
    assert_eq!(attr(mode_env, "value"), "var.finalize_mode");
    let topic_env = child(container, "dynamic")
        .into_iter()
        .find(|d| attr(only(d, &["content"]), "name") == "\"RRSTITCH_FINALIZE_TOPIC\"")
        .expect("finalize sets RRSTITCH_FINALIZE_TOPIC in queue mode");
    assert_eq!(
        attr(topic_env, "for_each"),
        "google_pubsub_topic.finalize_jobs[*].id"
    );
    assert_eq!(
        attr(
            only(finalize, &["template"]),
            "max_instance_request_concurrency"
        ),
        "local.queue_mode ? var.finalize_queue_concurrency : null"
    );
    for (output, value) in [
        (
            "finalize_jobs_topic",
            "one(google_pubsub_topic.finalize_jobs[*].name)",
        ),
        (
            "finalize_dead_letter_subscription",
            "one(google_pubsub_subscription.finalize_dead_letters_hold[*].name)",
        ),
    ] {
        let block = body
            .blocks()
            .find(|b| b.identifier() == "output" && b.labels()[0].as_str() == output)
            .unwrap_or_else(|| panic!("no output {output}"));
        assert_eq!(attr(block, "value"), value);
    }
}

/// Who a grant's member is: a module service account by resource name, or a service agent.
fn grantee(member: &str) -> String {
    if let Some(rest) = member.split("google_service_account.").nth(1) {
        let name = rest.split('.').next().unwrap();
        // A queue-mode account is `google_service_account.queue_push[0]`.
        return name.trim_end_matches("[0]").to_owned();
    }
    if member.contains("data.google_storage_project_service_account.gcs.email_address") {
        return "gcs-agent".into();
    }
    if member == "local.pubsub_service_agent" {
        return "pubsub-agent".into();
    }
    "other".into()
}

#[test]
fn each_identity_has_exactly_its_roles_on_one_resource_and_nothing_is_public() {
    let body = module();
    // Where each kind of grant says what it is on.
    let kinds = [
        ("google_project_iam_member", "project"),
        ("google_storage_bucket_iam_member", "bucket"),
        ("google_cloud_run_v2_service_iam_member", "name"),
        ("google_pubsub_topic_iam_member", "topic"),
        ("google_pubsub_subscription_iam_member", "subscription"),
        ("google_service_account_iam_member", "service_account_id"),
    ];
    // No IAM resource of another kind, and none authoritative (_binding, _policy would
    // replace grants made outside the module).
    for block in body.blocks().filter(|b| b.identifier() == "resource") {
        let kind = block.labels()[0].as_str();
        if kind.contains("_iam_") {
            assert!(
                kinds.iter().any(|(k, _)| *k == kind),
                "{kind} is not a grant kind this test knows"
            );
        }
    }
    // The Pub/Sub service agent is the project's.
    let agent = text(locals(&body)["pubsub_service_agent"]);
    assert_eq!(
        agent,
        "\"serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com\""
    );
    // (grantee, role, where) for every IAM grant in the module.
    let mut grants: BTreeSet<(String, String, String)> = BTreeSet::new();
    for (kind, on) in kinds {
        for block in resources(&body, kind).values() {
            let member = attr(block, "member");
            assert!(
                !member.contains("allUsers") && !member.contains("allAuthenticatedUsers"),
                "{kind}: public member {member}"
            );
            let place = if on == "project" {
                "project".into()
            } else {
                attr(block, on)
            };
            grants.insert((
                grantee(&member),
                unquote(&attr(block, "role")).to_owned(),
                place,
            ));
        }
    }
    let of = |who: &str| -> BTreeSet<(String, String)> {
        grants
            .iter()
            .filter(|g| g.0 == who)
            .map(|g| (g.1.clone(), g.2.clone()))
            .collect()
    };
    let set = |items: &[(&str, &str)]| -> BTreeSet<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    };
    assert_eq!(
        of("ingest"),
        set(&[
            (
                "roles/storage.objectUser",
                "google_storage_bucket.chunks.name"
            ),
            ("roles/datastore.user", "project"),
        ])
    );
    // objectUser on the chunk bucket: get and list (stitching, reconcile) and delete
    // (erasure); ingest deletes refused chunks of erased sessions.
    assert_eq!(
        of("finalize"),
        set(&[
            (
                "roles/storage.objectUser",
                "google_storage_bucket.chunks.name"
            ),
            (
                "roles/storage.objectUser",
                "google_storage_bucket.results.name"
            ),
            ("roles/datastore.user", "project"),
            // Queue mode: the dispatcher publishes to the jobs topic.
            (
                "roles/pubsub.publisher",
                "google_pubsub_topic.finalize_jobs[0].name"
            ),
        ])
    );
    assert_eq!(
        of("queue_push"),
        set(&[(
            "roles/run.invoker",
            "google_cloud_run_v2_service.finalize.name"
        )])
    );
    // Eventarc (ingest_trigger = "eventarc") delivers only as an account that may receive
    // events: a project-level role.
    assert_eq!(
        of("trigger"),
        set(&[
            (
                "roles/run.invoker",
                "google_cloud_run_v2_service.ingest.name"
            ),
            ("roles/eventarc.eventReceiver", "project"),
        ])
    );
    assert_eq!(
        of("scheduler"),
        set(&[(
            "roles/run.invoker",
            "google_cloud_run_v2_service.finalize.name"
        )])
    );
    // The push route's topic; with Eventarc, the project (Eventarc creates its topic with the
    // trigger, and documents the grant at project level for Cloud Storage events).
    assert_eq!(
        of("gcs-agent"),
        set(&[
            (
                "roles/pubsub.publisher",
                "google_pubsub_topic.chunk_events[0].name"
            ),
            ("roles/pubsub.publisher", "project"),
        ])
    );
    assert_eq!(
        of("pubsub-agent"),
        set(&[
            (
                "roles/iam.serviceAccountTokenCreator",
                "google_service_account.trigger.name"
            ),
            (
                "roles/pubsub.publisher",
                "google_pubsub_topic.dead_letters[0].name"
            ),
            (
                "roles/pubsub.subscriber",
                "google_pubsub_subscription.ingest_push[0].name"
            ),
            (
                "roles/iam.serviceAccountTokenCreator",
                "google_service_account.queue_push[0].name"
            ),
            (
                "roles/pubsub.publisher",
                "google_pubsub_topic.finalize_dead_letters[0].name"
            ),
            (
                "roles/pubsub.subscriber",
                "google_pubsub_subscription.finalize_push[0].name"
            ),
        ])
    );
    // The rest: manual_finalize_invokers, on the finalize service only.
    assert_eq!(
        of("other"),
        set(&[(
            "roles/run.invoker",
            "google_cloud_run_v2_service.finalize.name"
        )])
    );
    // Project-wide only where Firestore leaves no narrower place, and the two grants Eventarc
    // documents at project level (both only with ingest_trigger = "eventarc": the Eventarc
    // test checks their count).
    let eventarc_project_wide = [
        ("trigger", "roles/eventarc.eventReceiver"),
        ("gcs-agent", "roles/pubsub.publisher"),
    ];
    for (who, role, place) in &grants {
        assert!(
            place != "project"
                || role == "roles/datastore.user"
                || eventarc_project_wide.contains(&(who.as_str(), role.as_str())),
            "{who}: {role} on the whole project"
        );
    }
    // No service opens itself to unauthenticated callers.
    for service in resources(&body, "google_cloud_run_v2_service").values() {
        let text = hcl::to_string(service.body()).unwrap();
        assert!(!text.contains("allUsers"), "{text}");
    }
}

/// Terraform cannot validate this module here, so a reference to something the module does
/// not declare (a renamed resource, a typo) would only show at the first real plan: every
/// `google_*.NAME`, `data.google_*.NAME`, `var.NAME` and `local.NAME` must resolve.
#[test]
fn every_reference_resolves() {
    let body = module();
    let mut declared: BTreeSet<(String, String)> = body
        .blocks()
        .filter(|b| b.identifier() == "resource")
        .map(|b| {
            (
                b.labels()[0].as_str().to_owned(),
                b.labels()[1].as_str().to_owned(),
            )
        })
        .collect();
    for (kind, name) in data_sources(&body) {
        declared.insert((format!("data.{kind}"), name));
    }
    for name in variables(&body).keys() {
        declared.insert(("var".into(), name.clone()));
    }
    for name in locals(&body).keys() {
        declared.insert(("local".into(), name.clone()));
    }
    let dir = rrstitch_tests::repo_root().join("infra/gcp/modules/rrstitch");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "tf") {
            continue;
        }
        let code: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        for token in code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.')) {
            let parts: Vec<&str> = token.split('.').collect();
            let reference = match parts.as_slice() {
                ["data", kind, name, ..] if kind.starts_with("google_") => {
                    (format!("data.{kind}"), name.to_string())
                }
                [kind, name, ..] if kind.starts_with("google_") => {
                    (kind.to_string(), name.to_string())
                }
                ["var" | "local", name, ..] => (parts[0].to_owned(), name.to_string()),
                _ => continue,
            };
            assert!(
                declared.contains(&reference),
                "{}: {token} refers to nothing the module declares",
                path.display()
            );
            checked += 1;
        }
    }
    assert!(checked > 100, "only {checked} references found");
}

/// The sessions' composite indexes as (field, order) lists, in index order.
fn composite_indexes(body: &Body) -> BTreeSet<Vec<(String, String)>> {
    resources(body, "google_firestore_index")
        .values()
        .map(|index| {
            assert_eq!(attr(index, "collection"), "var.firestore_collection");
            child(index, "fields")
                .into_iter()
                .map(|f| {
                    (
                        unquote(&attr(f, "field_path")).to_owned(),
                        unquote(&attr(f, "order")).to_owned(),
                    )
                })
                .collect()
        })
        .collect()
}

/// The collection expression Terraform names a document group by.
fn collection_of(group: rrstitch::index::firestore::Group) -> String {
    use rrstitch::index::firestore::{Group, CHUNKS_COLLECTION, REJECTED_SUFFIX};
    match group {
        Group::Sessions => "var.firestore_collection".to_owned(),
        Group::Chunks => format!("\"{CHUNKS_COLLECTION}\""),
        Group::Rejected => format!("\"${{var.firestore_collection}}{REJECTED_SUFFIX}\""),
    }
}

#[test]
fn firestore_indexes_match_the_queries() {
    let body = module();
    let wanted: BTreeSet<Vec<(String, String)>> = rrstitch::index::firestore::COMPOSITE_INDEXES
        .iter()
        .map(|fields| {
            fields
                .iter()
                .map(|(f, o)| (f.to_string(), o.to_string()))
                .collect()
        })
        .collect();
    assert_eq!(composite_indexes(&body), wanted);
    // TTL on expire_at for sessions, their chunks and the rejected objects.
    let ttl: BTreeSet<String> = resources(&body, "google_firestore_field")
        .values()
        .filter(|f| unquote(&attr(f, "field")) == "expire_at" && !child(f, "ttl_config").is_empty())
        .map(|f| attr(f, "collection"))
        .collect();
    use rrstitch::index::firestore::Group;
    for group in [Group::Sessions, Group::Chunks, Group::Rejected] {
        let collection = collection_of(group);
        assert!(ttl.contains(&collection), "no TTL on {collection}: {ttl:?}");
    }
}

/// The idle index has no hot range: Firestore sustains ~500 writes/s into one sequential index
/// range, and every chunk write moves its session's timestamps to "now". So every composite
/// index leads with the shard (not a low-cardinality field such as status, nor a timestamp),
/// and every field that rises with time on the write-heavy documents has its automatic
/// single-field indexes exempted (an `index_config` with no indexes).
#[test]
fn the_idle_index_has_no_low_cardinality_or_sequential_hot_range() {
    use rrstitch::index::firestore::{Group, SEQUENTIAL_FIELDS, SHARD_FIELD};
    let body = module();
    let composites = composite_indexes(&body);
    assert!(composites.len() >= 2, "{composites:?}");
    for fields in &composites {
        assert_eq!(
            fields.first().map(|(f, _)| f.as_str()),
            Some(SHARD_FIELD),
            "composite index {fields:?} does not lead with the shard"
        );
    }
    let idle: Vec<_> = composites
        .iter()
        .filter(|f| f.iter().any(|(name, _)| name == "status"))
        .collect();
    assert_eq!(
        idle.len(),
        2,
        "the open and the expired-lease queries: {composites:?}"
    );

    let exempt: BTreeSet<(String, String)> = resources(&body, "google_firestore_field")
        .values()
        .filter(|f| {
            let configs = child(f, "index_config");
            configs.len() == 1 && child(configs[0], "indexes").is_empty()
        })
        .map(|f| (attr(f, "collection"), unquote(&attr(f, "field")).to_owned()))
        .collect();
    // What must be exempt whatever the code's list says: the timestamps the sweep ranges over
    // and the TTL fields, on the sessions and on their chunks.
    let must = [
        (Group::Sessions, "last_chunk_at"),
        (Group::Sessions, "lease_until"),
        (Group::Sessions, "finalized_at"),
        (Group::Sessions, "expire_at"),
        (Group::Chunks, "recorded_at"),
        (Group::Chunks, "expire_at"),
    ];
    let mut checked = 0;
    for (group, field) in must.iter().chain(SEQUENTIAL_FIELDS) {
        let key = (collection_of(*group), field.to_string());
        assert!(
            exempt.contains(&key),
            "{} keeps its single-field index on the sequential field {field}: {exempt:?}",
            key.0
        );
        checked += 1;
    }
    assert!(checked >= 12, "{checked}");
    // The shard itself is what spreads the writes; it must stay indexable.
    assert!(!exempt.iter().any(|(_, f)| f == SHARD_FIELD), "{exempt:?}");
}

/// Retention is the buckets' lifecycle rules: chunks are deleted `chunk_retention_days`
/// (30 by default) after creation, results only when `results_retention_days` is set (it is
/// null by default); a null variable means no rule at all, and each takes whole days only.
#[test]
fn buckets_delete_objects_by_their_retention_variables() {
    let body = module();
    for (bucket, var, default) in [
        ("chunks", "chunk_retention_days", "30"),
        ("results", "results_retention_days", "null"),
    ] {
        let b = resource(&body, "google_storage_bucket", bucket);
        let rules: Vec<&Block> = child(b, "dynamic")
            .into_iter()
            .filter(|d| d.labels().first().map(|l| l.as_str()) == Some("lifecycle_rule"))
            .collect();
        assert_eq!(
            rules.len(),
            2,
            "{bucket}: two dynamic lifecycle_rules, retention and tier"
        );
        let action = |r: &Block| attr(only(only(r, &["content"]), &["action"]), "type");
        let rule = *rules
            .iter()
            .find(|r| action(r) == "\"Delete\"")
            .expect("a Delete rule");
        let tier = *rules
            .iter()
            .find(|r| action(r) == "\"SetStorageClass\"")
            .expect("a SetStorageClass rule");
        let cold = format!(
            "{}_cold_after_days",
            var.trim_end_matches("_retention_days")
        );
        assert_eq!(
            eval(expr(tier, "for_each"), &[(cold.as_str(), Value::Null)]),
            Value::Array(vec![]),
            "{bucket}: no tier when {cold} is null"
        );
        let tier_condition = only(tier, &["content", "condition"]);
        assert_eq!(attr(tier_condition, "age"), "lifecycle_rule.value");
        assert_eq!(
            attr(tier_condition, "matches_storage_class")
                .split_whitespace()
                .collect::<String>(),
            "[\"STANDARD\"]",
            "{bucket}: the tier moves each object once"
        );
        let for_each = expr(rule, "for_each");
        assert_eq!(
            eval(for_each, &[(var, Value::Null)]),
            Value::Array(vec![]),
            "{bucket}: no rule when {var} is null"
        );
        assert_eq!(
            eval(for_each, &[(var, 7.into())]),
            Value::Array(vec![7.into()]),
            "{bucket}: one rule of {var} days"
        );
        let content = only(rule, &["content"]);
        assert_eq!(
            attr(only(content, &["condition"]), "age"),
            "lifecycle_rule.value"
        );
        assert_eq!(attr(only(content, &["action"]), "type"), "\"Delete\"");
        assert_eq!(attr(variable(&body, var), "default"), default, "{var}");
        for (days, ok) in [
            (Value::Null, true),
            (1.into(), true),
            (30.into(), true),
            (0.into(), false),
            (1.5.into(), false),
        ] {
            assert_eq!(valid(&body, var, days.clone()), ok, "{var} = {days:?}");
        }
    }
}
