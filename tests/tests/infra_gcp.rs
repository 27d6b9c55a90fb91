//! The GCP Terraform module, checked against the code it deploys.
//!
//! No `google` provider can be fetched on these machines, so `terraform validate` cannot run
//! on `infra/gcp`; instead its HCL is parsed (`hcl-rs`) and held to what the binaries read and
//! query: the variables each function gets, the Eventarc filter, the Scheduler target and its
//! OIDC identity, the IAM roles per service account, and the Firestore composite indexes.

use std::collections::{BTreeMap, BTreeSet};

use hcl::{Block, Body, Expression};

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

/// An attribute as HCL text (`"gs://${google_storage_bucket.chunks.name}"`, `var.x`).
fn attr(block: &Block, key: &str) -> String {
    let expr: &Expression = block
        .body()
        .attributes()
        .find(|a| a.key() == key)
        .map(|a| a.expr())
        .unwrap_or_else(|| panic!("{} has no attribute {key}", block.identifier()));
    hcl::format::to_string(expr).unwrap().trim().to_owned()
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
    let known: BTreeSet<&str> = rrstitch::config::VARIABLES.iter().map(|v| v.0).collect();
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
    ] {
        assert!(
            finalize.contains(name),
            "finalize lacks {name}: {finalize:?}"
        );
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
fn eventarc_sends_chunk_bucket_finalize_events_to_ingest() {
    let body = module();
    let trigger = resource(&body, "google_eventarc_trigger", "chunk_finalized");
    let criteria: BTreeMap<String, String> = child(trigger, "matching_criteria")
        .into_iter()
        .map(|c| (unquote(&attr(c, "attribute")).to_owned(), attr(c, "value")))
        .collect();
    assert_eq!(criteria.len(), 2, "{criteria:?}");
    assert_eq!(unquote(&criteria["type"]), rrstitch::events::GCS_FINALIZED);
    assert_eq!(criteria["bucket"], "google_storage_bucket.chunks.name");
    let dest = only(trigger, &["destination", "cloud_run_service"]);
    assert_eq!(
        attr(dest, "service"),
        "google_cloud_run_v2_service.ingest.name"
    );
    assert_eq!(
        attr(trigger, "service_account"),
        "google_service_account.trigger.email"
    );
}

#[test]
fn scheduler_posts_sweep_to_finalize_with_oidc() {
    let body = module();
    let job = resource(&body, "google_cloud_scheduler_job", "sweep");
    let target = only(job, &["http_target"]);
    assert_eq!(attr(target, "http_method"), "\"POST\"");
    assert_eq!(
        attr(target, "uri"),
        "\"${google_cloud_run_v2_service.finalize.uri}/sweep\""
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
}

#[test]
fn each_identity_has_exactly_its_roles_and_nothing_is_public() {
    let body = module();
    // (member's service account, role, where) for every IAM grant in the module.
    let mut grants: BTreeSet<(String, String, String)> = BTreeSet::new();
    for kind in [
        "google_project_iam_member",
        "google_storage_bucket_iam_member",
        "google_cloud_run_v2_service_iam_member",
    ] {
        for block in resources(&body, kind).values() {
            let member = attr(block, "member");
            assert!(
                !member.contains("allUsers") && !member.contains("allAuthenticatedUsers"),
                "{kind}: public member {member}"
            );
            let account = member
                .split("google_service_account.")
                .nth(1)
                .and_then(|rest| rest.split('.').next())
                .unwrap_or("other")
                .to_owned();
            let place = match kind {
                "google_storage_bucket_iam_member" => attr(block, "bucket"),
                "google_cloud_run_v2_service_iam_member" => attr(block, "name"),
                _ => "project".into(),
            };
            grants.insert((account, unquote(&attr(block, "role")).to_owned(), place));
        }
    }
    let of = |account: &str| -> BTreeSet<(String, String)> {
        grants
            .iter()
            .filter(|g| g.0 == account)
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
                "roles/storage.objectViewer",
                "google_storage_bucket.chunks.name"
            ),
            ("roles/datastore.user", "project"),
        ])
    );
    assert_eq!(
        of("finalize"),
        set(&[
            (
                "roles/storage.objectViewer",
                "google_storage_bucket.chunks.name"
            ),
            (
                "roles/storage.objectUser",
                "google_storage_bucket.results.name"
            ),
            ("roles/datastore.user", "project"),
        ])
    );
    assert_eq!(
        of("trigger"),
        set(&[
            ("roles/eventarc.eventReceiver", "project"),
            (
                "roles/run.invoker",
                "google_cloud_run_v2_service.ingest.name"
            ),
        ])
    );
    assert_eq!(
        of("scheduler"),
        set(&[(
            "roles/run.invoker",
            "google_cloud_run_v2_service.finalize.name"
        )])
    );
    // No service opens itself to unauthenticated callers.
    for service in resources(&body, "google_cloud_run_v2_service").values() {
        let text = hcl::to_string(service.body()).unwrap();
        assert!(!text.contains("allUsers"), "{text}");
    }
}

#[test]
fn firestore_indexes_match_the_queries() {
    let body = module();
    let mut declared = BTreeSet::new();
    for index in resources(&body, "google_firestore_index").values() {
        assert_eq!(attr(index, "collection"), "var.firestore_collection");
        let fields: Vec<String> = child(index, "fields")
            .into_iter()
            .map(|f| unquote(&attr(f, "field_path")).to_owned())
            .collect();
        declared.insert(fields);
    }
    let wanted: BTreeSet<Vec<String>> = rrstitch::index::firestore::COMPOSITE_INDEXES
        .iter()
        .map(|(a, b)| vec![a.to_string(), b.to_string()])
        .collect();
    assert_eq!(declared, wanted);
    // TTL on expire_at for sessions, their chunks and the rejected objects.
    let ttl: BTreeSet<String> = resources(&body, "google_firestore_field")
        .values()
        .filter(|f| unquote(&attr(f, "field")) == "expire_at" && !child(f, "ttl_config").is_empty())
        .map(|f| attr(f, "collection"))
        .collect();
    let rejected = format!(
        "\"${{var.firestore_collection}}{}\"",
        rrstitch::index::firestore::REJECTED_SUFFIX
    );
    let chunks = format!("\"{}\"", rrstitch::index::firestore::CHUNKS_COLLECTION);
    for collection in [
        "var.firestore_collection",
        chunks.as_str(),
        rejected.as_str(),
    ] {
        assert!(ttl.contains(collection), "no TTL on {collection}: {ttl:?}");
    }
}
