//! The GCP deployment end to end, on the emulators: chunks land in fake-gcs-server,
//! Eventarc-shaped CloudEvents (binary and structured content modes) are POSTed to the real
//! `rrstitch-ingest` HTTP function, which indexes them in the Cloud Firestore emulator; the
//! real `rrstitch-finalize` sweeps (as Cloud Scheduler would) and the stitched session appears
//! in the results bucket, with its segments and manifest (as Terraform configures it).

use rrstitch_tests::bins::HttpFunction;
use rrstitch_tests::cloudevents::{
    binary_event, post, post_announcing, structured_event, FINALIZED,
};
use rrstitch_tests::emulators::percent;
use rrstitch_tests::fixture::{self, chunk_names, full_events, GUID};
use rrstitch_tests::form::{assert_form_redacted, FORM_RULES};
use rrstitch_tests::segments::{assert_only_generation, assert_segments_match};
use rrstitch_tests::{quota, restrict, GcpStack};
use serde_json::{json, Value};

#[test]
fn cloudevents_through_the_functions_to_a_stitched_session() {
    let stack = GcpStack::start();
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    // Small segments, so the form recording makes several.
    let finalize = HttpFunction::start(
        "rrstitch-finalize",
        &stack.with(&[
            ("RRSTITCH_SEGMENTS", "1"),
            ("RRSTITCH_SEGMENT_BYTES", "16KiB"),
        ]),
    );
    let names = chunk_names();
    for (i, n) in names.iter().enumerate() {
        let body = fixture::chunk(n);
        stack.gcs.upload("chunks", n, &body);
        // Alternate the two content modes Eventarc may use.
        let reply = if i % 2 == 0 {
            binary_event(&ingest, "chunks", n, body.len())
        } else {
            structured_event(&ingest, FINALIZED, "chunks", n)
        };
        assert_eq!(reply.status, 200, "{n}: {}", reply.body);
        assert_eq!(reply.body["outcome"], "recorded", "{n}: {}", reply.body);
    }

    // A redelivered event changes nothing.
    let again = binary_event(&ingest, "chunks", &names[0], 10);
    assert_eq!(again.status, 200);
    assert_eq!(again.body["outcome"], "already_known", "{}", again.body);

    // Cloud Scheduler's sweep stitches the session into the results bucket.
    let swept = post(&format!("{}/sweep", finalize.url), &[], "");
    assert_eq!(swept.status, 200, "{}", swept.body);
    assert_eq!(
        swept.body["finalized"][0]["session_guid"], GUID,
        "{}",
        swept.body
    );
    let v = stack.result(GUID);
    assert_eq!(v["session_guid"], GUID);
    assert_eq!(v["rrweb_data"], full_events());
    assert_eq!(v["metadata"]["timestamp_list"].as_array().unwrap().len(), 6);
    let first_generation = segments_match(&stack, &v);

    // A late chunk re-opens the session; the next sweep stitches it in.
    let (late, body) = fixture::late_chunk();
    stack.gcs.upload("chunks", &late, body.as_bytes());
    let reply = binary_event(&ingest, "chunks", &late, body.len());
    assert_eq!(reply.body["reopened"], true, "{}", reply.body);
    let swept = post(&format!("{}/sweep", finalize.url), &[], "");
    assert_eq!(
        swept.body["finalized"].as_array().unwrap().len(),
        1,
        "{}",
        swept.body
    );
    let v = stack.result(GUID);
    assert_eq!(v["rrweb_data"].as_array().unwrap().len(), 244);
    assert_eq!(v["metadata"]["timestamp_list"].as_array().unwrap().len(), 7);
    // The re-stitch published a new generation and deleted the old one.
    let generation = segments_match(&stack, &v);
    assert_ne!(generation, first_generation);
    let listing: Value = ureq::get(&format!("{}/storage/v1/b/results/o", stack.gcs.endpoint))
        .query("prefix", &format!("{GUID}/"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let items = listing["items"].as_array().unwrap();
    assert_only_generation(
        &format!("{GUID}/"),
        &generation,
        items.iter().map(|i| i["name"].as_str().unwrap()),
    );

    // Manual finalize: now, idle or not; unknown sessions are 404.
    let manual = post(
        &format!("{}/finalize", finalize.url),
        &[("content-type", "application/json")],
        &json!({"session_guid": GUID}).to_string(),
    );
    assert_eq!(manual.status, 200, "{}", manual.body);
    let unknown = post(
        &format!("{}/finalize", finalize.url),
        &[("content-type", "application/json")],
        r#"{"session_guid":"no-such-session"}"#,
    );
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

/// Checks the session's manifest and segments in the results bucket against its single file
/// (each segment stored gzip-encoded); returns the manifest's generation.
fn segments_match(stack: &GcpStack, single: &Value) -> String {
    let manifest: Value = serde_json::from_slice(
        &stack
            .gcs
            .download("results", &format!("{GUID}/manifest.json"))
            .expect("the manifest exists"),
    )
    .unwrap();
    assert_segments_match(single, &manifest, |path| {
        let name = format!("{GUID}/{path}");
        let url = format!(
            "{}/storage/v1/b/results/o/{}",
            stack.gcs.endpoint,
            percent(&name)
        );
        let meta: Value = ureq::get(&url).call().unwrap().into_json().unwrap();
        assert_eq!(meta["contentEncoding"], "gzip", "{meta}");
        stack.gcs.download("results", &name).unwrap()
    })
}

/// Binary-mode headers of a finalized event from the `chunks` bucket; the body is the caller's.
fn finalized_headers(id: &str) -> [(&str, &str); 5] {
    [
        ("ce-specversion", "1.0"),
        ("ce-id", id),
        (
            "ce-source",
            "//storage.googleapis.com/projects/_/buckets/chunks",
        ),
        ("ce-type", FINALIZED),
        ("content-type", "application/json"),
    ]
}

#[test]
fn bad_events_and_objects_are_answered_and_recorded() {
    let stack = GcpStack::start();
    let max_bytes = quota::max_bytes();
    let controls = stack.with(&[
        ("RRSTITCH_RESTRICT", restrict::RULES),
        ("RRSTITCH_SESSION_MAX_BYTES", &max_bytes),
    ]);
    let ingest = HttpFunction::start("rrstitch-ingest", &controls);

    // Another event type: a clear 4xx, nothing recorded.
    let wrong = structured_event(
        &ingest,
        "google.cloud.storage.object.v1.deleted",
        "chunks",
        "2025-05-02T12:10:50.644191+0000.json",
    );
    assert!((400..500).contains(&wrong.status), "{}", wrong.body);
    assert!(
        wrong.body["error"]
            .as_str()
            .unwrap_or("")
            .contains("deleted"),
        "{}",
        wrong.body
    );
    // A CloudEvent without the object's name: 4xx.
    let nameless = post(
        &format!("{}/", ingest.url),
        &finalized_headers("nameless"),
        r#"{"bucket":"chunks","generation":"1"}"#,
    );
    assert!((400..500).contains(&nameless.status), "{}", nameless.body);
    // A huge body is refused before it is read: the head announcing it is enough.
    let huge = post_announcing(
        &format!("{}/", ingest.url),
        &finalized_headers("huge"),
        1 << 20,
    );
    assert_eq!(huge, 413);
    // Not a CloudEvent at all.
    let junk = post(
        &format!("{}/", ingest.url),
        &[("content-type", "application/json")],
        "{}",
    );
    assert!((400..500).contains(&junk.status), "{}", junk.body);

    // A malformed chunk: acknowledged (2xx, so Eventarc does not retry), recorded, kept.
    let name = "2025-05-02T12:11:00.000000+0000.json";
    stack.gcs.upload(
        "chunks",
        name,
        b"{\"session_guid\": \"x\", \"session_data\": [",
    );
    let bad = binary_event(&ingest, "chunks", name, 40);
    assert_eq!(bad.status, 200, "{}", bad.body);
    assert_eq!(bad.body["outcome"], "rejected", "{}", bad.body);
    assert!(
        stack.gcs.download("chunks", name).is_some(),
        "a rejected chunk is never deleted"
    );

    // Chunks the restrictions refuse: acknowledged, recorded in Firestore with their kind
    // (read back by the real CLI), kept in the bucket.
    for (name, body, kind) in restrict::refused_chunks() {
        stack.gcs.upload("chunks", &name, &body);
        let reply = binary_event(&ingest, "chunks", &name, body.len());
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["outcome"], "rejected", "{name}: {}", reply.body);
        assert_eq!(reply.body["kind"], kind, "{name}: {}", reply.body);
        assert!(stack.gcs.download("chunks", &name).is_some());
    }
    assert_eq!(restrict::assert_refusals_recorded(&stack.env), 3);
    restrict::assert_status_counts_refusals(&stack.env);

    // Past the session's quota: the third chunk is refused (Firestore's transaction decides),
    // recorded with its session and size, kept; the result says what was refused.
    for ((name, body), outcome) in quota::chunks().iter().zip(quota::OUTCOMES) {
        stack.gcs.upload("chunks", name, body);
        let reply = binary_event(&ingest, "chunks", name, body.len());
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["outcome"], outcome, "{name}: {}", reply.body);
        assert!(stack.gcs.download("chunks", name).is_some());
    }
    let (name, body) = &quota::chunks()[2];
    let again = binary_event(&ingest, "chunks", name, body.len());
    assert_eq!(again.body["kind"], "over_quota", "{}", again.body);
    quota::assert_refusal_recorded(&stack.env);
    let finalize = HttpFunction::start("rrstitch-finalize", &controls);
    let manual = post(
        &format!("{}/finalize", finalize.url),
        &[("content-type", "application/json")],
        &json!({ "session_guid": quota::GUID }).to_string(),
    );
    assert_eq!(manual.status, 200, "{}", manual.body);
    quota::assert_result_says_so(&stack.result(quota::GUID));
    drop(finalize);

    // An event for an object that is already gone is acknowledged.
    let gone = binary_event(
        &ingest,
        "chunks",
        "2025-05-02T12:12:00.000000+0000.json",
        10,
    );
    assert_eq!(gone.status, 200, "{}", gone.body);
    assert_eq!(gone.body["outcome"], "vanished", "{}", gone.body);

    // With Firestore down, ingest cannot record: 5xx, so Eventarc retries.
    let ok = "2025-05-02T12:10:50.644191+0000.json";
    let body = fixture::chunk(ok);
    stack.gcs.upload("chunks", ok, &body);
    let GcpStack {
        gcs,
        mut firestore,
        env,
    } = stack;
    firestore.group.stop();
    let down = binary_event(&ingest, "chunks", ok, body.len());
    assert!(
        (500..600).contains(&down.status),
        "{} {}",
        down.status,
        down.body
    );
    drop((gcs, env));
}

/// The resident set of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

#[test]
fn events_for_other_buckets_are_acknowledged_and_never_read() {
    let stack = GcpStack::start();
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let name = &chunk_names()[0];
    let body = fixture::chunk(name);
    // A real chunk in a real bucket that is not the configured one, and a bucket that does
    // not exist: both acknowledged, neither read nor recorded.
    stack.gcs.create_bucket("other");
    stack.gcs.upload("other", name, &body);
    for bucket in ["other", "no-such-bucket"] {
        let reply = binary_event(&ingest, bucket, name, body.len());
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["outcome"], "not_chunk_bucket", "{}", reply.body);
    }
    let index = rrstitch::index::firestore::FirestoreIndex::on_emulator(
        &stack.firestore.host,
        &stack.firestore.project,
        "rrstitch_sessions",
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    use rrstitch::index::SessionIndex;
    assert!(rt.block_on(index.sessions(10)).unwrap().is_empty());
    assert!(rt.block_on(index.rejected(10)).unwrap().is_empty());

    // Memory does not grow with the number of distinct bucket names seen.
    let warm = rss_kib(ingest.group.pid());
    let events = 3_000;
    for i in 0..events {
        let reply = binary_event(&ingest, &format!("bucket-{i}"), name, body.len());
        assert_eq!(reply.body["outcome"], "not_chunk_bucket", "{}", reply.body);
    }
    let after = rss_kib(ingest.group.pid());
    println!("FIGURE foreign_buckets.events: {events}");
    println!("FIGURE foreign_buckets.rss_kib: {warm} -> {after}");
    assert!(
        after < warm + 8 * 1024,
        "ingest grew from {warm} KiB to {after} KiB over {events} foreign buckets"
    );

    // The configured bucket still works.
    stack.gcs.upload("chunks", name, &body);
    let ours = binary_event(&ingest, "chunks", name, body.len());
    assert_eq!(ours.body["outcome"], "recorded", "{}", ours.body);
}

/// A Pub/Sub push of a GCS `OBJECT_FINALIZE` notification, as the ingest subscription sends it.
fn pubsub_push(
    ingest: &HttpFunction,
    bucket: &str,
    name: &str,
) -> rrstitch_tests::cloudevents::Reply {
    let envelope = json!({
        "message": {
            "attributes": {
                "bucketId": bucket,
                "objectId": name,
                "objectGeneration": "1",
                "eventType": "OBJECT_FINALIZE",
                "payloadFormat": "JSON_API_V1"
            },
            "data": "e30=",
            "messageId": format!("m-{name}")
        },
        "subscription": "projects/demo/subscriptions/rrstitch-ingest"
    });
    post(
        &format!("{}/pubsub", ingest.url),
        &[("content-type", "application/json")],
        &envelope.to_string(),
    )
}

#[test]
fn lost_events_are_recovered_by_reconcile() {
    let stack = GcpStack::start();
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let finalize = HttpFunction::start("rrstitch-finalize", &stack.env);
    let names = chunk_names();
    for n in &names {
        let body = fixture::chunk(n);
        stack.gcs.upload("chunks", n, &body);
    }
    // Every other event arrives (as Pub/Sub pushes); the rest are lost.
    for n in names.iter().step_by(2) {
        let reply = pubsub_push(&ingest, "chunks", n);
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["outcome"], "recorded", "{}", reply.body);
    }
    // A notification of another kind is acknowledged, so Pub/Sub does not redeliver it.
    let deleted = post(
        &format!("{}/pubsub", ingest.url),
        &[("content-type", "application/json")],
        &json!({"message": {"attributes": {"eventType": "OBJECT_DELETE", "bucketId": "chunks", "objectId": names[0]}}}).to_string(),
    );
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let delivered = names.len().div_ceil(2);

    let reconcile = |body: &str| {
        post(
            &format!("{}/reconcile", finalize.url),
            &[("content-type", "application/json")],
            body,
        )
    };
    let first = reconcile("");
    assert_eq!(first.status, 200, "{}", first.body);
    println!(
        "FIGURE reconcile.gcs.recovered: {}",
        first.body["recovered"]
    );
    assert_eq!(
        first.body["recovered"],
        names.len() - delivered,
        "{}",
        first.body
    );
    assert_eq!(first.body["known"], delivered, "{}", first.body);
    // Idempotent, and `since_secs` bounds it by the names' upload times (2025: long ago).
    let again = reconcile("{}");
    assert_eq!(again.body["recovered"], 0, "{}", again.body);
    assert_eq!(again.body["known"], names.len(), "{}", again.body);
    let recent = reconcile(r#"{"since_secs": 3600}"#);
    assert_eq!(recent.body["candidates"], 0, "{}", recent.body);

    let swept = rrstitch_tests::cloudevents::sweep(&finalize);
    assert_eq!(swept.status, 200, "{}", swept.body);
    assert_eq!(stack.result(GUID)["rrweb_data"], full_events());
}

#[test]
fn a_missing_results_bucket_is_named_at_startup_and_at_write() {
    let stack = GcpStack::start();
    // At startup: the function refuses to start and says which bucket is missing.
    let mut env = stack.env.clone();
    env.push(("RRSTITCH_RESULTS".into(), "gs://no-results-here".into()));
    let mut finalize = rrstitch_tests::procs::Group::spawn(
        "rrstitch-finalize-no-bucket",
        rrstitch_tests::bins::command("rrstitch-finalize", &env),
    );
    let started = std::time::Instant::now();
    while !finalize.exited() {
        assert!(
            started.elapsed().as_secs() < 30,
            "it started: {}",
            finalize.tail()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let log = std::fs::read_to_string(&finalize.log).unwrap();
    assert!(
        log.contains(r#"results bucket "gs://no-results-here" does not exist"#),
        "{log}"
    );

    // At write: the bucket went away after the start.
    stack.gcs.create_bucket("results-gone");
    let mut env = stack.env.clone();
    env.push(("RRSTITCH_RESULTS".into(), "gs://results-gone".into()));
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let finalize = HttpFunction::start("rrstitch-finalize", &env);
    let name = &chunk_names()[0];
    let body = fixture::chunk(name);
    stack.gcs.upload("chunks", name, &body);
    assert_eq!(
        binary_event(&ingest, "chunks", name, body.len()).body["outcome"],
        "recorded"
    );
    ureq::delete(&format!("{}/storage/v1/b/results-gone", stack.gcs.endpoint))
        .call()
        .expect("deleting the bucket");
    let swept = rrstitch_tests::cloudevents::sweep(&finalize);
    let error = swept.body["failed"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        error.contains(r#"results bucket "gs://results-gone" does not exist"#),
        "{}",
        swept.body
    );
}

/// Re-stitch, then erasure, end to end on GCS and Firestore: a session stitched by a
/// finalize from before insights (off) is stitched again by today's through `POST /restitch`
/// and gains them; `POST /delete` removes the result, the chunks and the index records; a
/// chunk uploaded again afterwards is refused as `deleted_session` and deleted; the session
/// cannot be finalized or re-stitched again; a second delete finds nothing.
#[test]
fn restitch_then_delete_and_the_tombstone_refuses_late_chunks() {
    let stack = GcpStack::start();
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let before = HttpFunction::start(
        "rrstitch-finalize",
        &stack.with(&[("RRSTITCH_INSIGHTS", "0")]),
    );
    let finalize = HttpFunction::start("rrstitch-finalize", &stack.env);
    let names = chunk_names();
    for n in &names {
        stack.ingest_chunk(&ingest, n, &fixture::chunk(n));
    }
    let swept = rrstitch_tests::cloudevents::sweep(&before);
    assert_eq!(swept.status, 200, "{}", swept.body);
    assert_eq!(stack.result(GUID)["rrweb_data"], full_events());
    assert!(stack.result(GUID)["metadata"].get("insights").is_none());

    let restitch = |body: &Value| {
        post(
            &format!("{}/restitch", finalize.url),
            &[("content-type", "application/json")],
            &body.to_string(),
        )
    };
    let again = restitch(&json!({"all": true}));
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["mode"], "inline", "{}", again.body);
    assert_eq!(again.body["restitched"], 1, "{}", again.body);
    assert_eq!(again.body["cursor"], Value::Null, "{}", again.body);
    let v = stack.result(GUID);
    assert_eq!(
        v["rrweb_data"],
        full_events(),
        "the same events, stitched again"
    );
    assert_eq!(
        v["metadata"]["insights"]["click_count"], 15,
        "{}",
        v["metadata"]
    );
    let typo = restitch(&json!({"since": "2d"}));
    assert_eq!(typo.status, 400, "{}", typo.body);

    let delete = |body: &str| {
        post(
            &format!("{}/delete", finalize.url),
            &[("content-type", "application/json")],
            body,
        )
    };
    let erased = delete(&json!({"session_guids": [GUID], "keep_chunks": false}).to_string());
    assert_eq!(erased.status, 200, "{}", erased.body);
    let s = &erased.body["erased"][0];
    assert_eq!(s["session_guid"], GUID, "{}", erased.body);
    assert_eq!(s["results"], 1, "{}", erased.body);
    assert_eq!(s["chunks"], names.len(), "{}", erased.body);
    assert_eq!(s["index_records"], names.len() + 1, "{}", erased.body);
    assert!(
        stack
            .gcs
            .download("results", &format!("{GUID}.json"))
            .is_none(),
        "the result is gone"
    );
    for n in &names {
        assert!(stack.gcs.download("chunks", n).is_none(), "{n} is gone");
    }

    // A late (or re-uploaded) chunk is refused and deleted, not recorded.
    let body = fixture::chunk(&names[0]);
    stack.gcs.upload("chunks", &names[0], &body);
    let late = binary_event(&ingest, "chunks", &names[0], body.len());
    assert_eq!(late.status, 200, "{}", late.body);
    assert_eq!(late.body["outcome"], "deleted_session", "{}", late.body);
    assert_eq!(late.body["chunk_deleted"], true, "{}", late.body);
    assert!(stack.gcs.download("chunks", &names[0]).is_none());
    let manual = post(
        &format!("{}/finalize", finalize.url),
        &[("content-type", "application/json")],
        &json!({"session_guid": GUID}).to_string(),
    );
    assert_eq!(manual.status, 404, "nothing to finalize: {}", manual.body);

    let again = delete(&json!({"session_guids": [GUID]}).to_string());
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(
        again.body["erased"][0]["already_gone"], true,
        "{}",
        again.body
    );
    let bad = delete(r#"{"session_guids": []}"#);
    assert_eq!(bad.status, 400, "{}", bad.body);
    // A tombstone is never re-stitched, by the walk or by name.
    for body in [json!({"all": true}), json!({"session_guids": [GUID]})] {
        let after = restitch(&body);
        assert_eq!(after.status, 200, "{}", after.body);
        assert_eq!(after.body["tombstoned"], 1, "{}", after.body);
        assert_eq!(after.body["restitched"], 0, "{}", after.body);
    }
    assert!(stack
        .gcs
        .download("results", &format!("{GUID}.json"))
        .is_none());

    // `GET /status` on the finalize service: the tombstone, nothing open, the sweep that ran.
    let status: Value = ureq::get(&format!("{}/status", finalize.url))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    rrstitch_tests::status::assert_after_erasure(&status, 1);
}

/// `RRSTITCH_REDACT` as a Cloud Run variable carries it, inline JSON: the session stored in
/// GCS holds none of the values typed into the recorded form (the chunks do: the control),
/// every event is still there, and the metadata counts what was masked.
#[test]
fn inline_redaction_rules_mask_the_session_stored_in_gcs() {
    let mut stack = GcpStack::start();
    stack
        .env
        .push(("RRSTITCH_REDACT".into(), FORM_RULES.into()));
    let ingest = HttpFunction::start("rrstitch-ingest", &stack.env);
    let finalize = HttpFunction::start("rrstitch-finalize", &stack.env);
    for n in chunk_names() {
        stack.ingest_chunk(&ingest, &n, &fixture::chunk(&n));
    }
    let swept = post(&format!("{}/sweep", finalize.url), &[], "");
    assert_eq!(
        swept.body["finalized"][0]["session_guid"], GUID,
        "{}",
        swept.body
    );
    let stored = stack
        .gcs
        .download("results", &format!("{GUID}.json"))
        .expect("the result exists");
    let stored = String::from_utf8(stored).unwrap();
    assert_form_redacted(&json!({ "rrweb_data": full_events() }), &stored);
}
