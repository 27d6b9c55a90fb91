//! The AWS deployment end to end, on moto: chunks land in S3, S3 notifications invoke the
//! real `rrstitch-ingest` binary in Lambda mode, a scheduled event invokes the real
//! `rrstitch-finalize`, and the stitched session appears in the results bucket, indexed in
//! DynamoDB.

use rrstitch::storage::ObjectStore;
use rrstitch_tests::aws::{
    function_url_request, functions, lambda, s3_event, scheduled_event, AwsStack,
};
use rrstitch_tests::bins::HttpFunction;
use rrstitch_tests::fixture::{self, full_events, GUID};
use rrstitch_tests::form::{assert_form_redacted, FORM_RULES};
use rrstitch_tests::lambda::RuntimeApi;
use rrstitch_tests::segments::{assert_only_generation, assert_segments_match};
use rrstitch_tests::{quota, restrict};
use serde_json::{json, Value};

/// The session's manifest and segments in the results bucket, checked against its single
/// file; returns the manifest's generation.
async fn segments_match(stack: &AwsStack, single: &Value) -> String {
    let manifest = stack
        .results
        .get(&format!("{GUID}/manifest.json"), 1 << 30)
        .await
        .expect("the manifest exists");
    let manifest: Value = serde_json::from_slice(&manifest.body).unwrap();
    let mut stored = Vec::new();
    for segment in manifest["segments"].as_array().unwrap() {
        let path = segment["path"].as_str().unwrap().to_owned();
        let got = stack.results.get(&format!("{GUID}/{path}"), 1 << 30).await;
        stored.push((path, got.unwrap().body.to_vec()));
    }
    assert_segments_match(single, &manifest, |path| {
        let (_, body) = stored.iter().find(|(p, _)| p == path).unwrap();
        body.clone()
    })
}

#[tokio::test]
async fn s3_events_through_lambda_to_a_stitched_session() {
    let stack = AwsStack::start().await;
    let names = stack.upload_fixture().await;
    // Segments on, as Terraform sets them; small, so the form recording makes several.
    let env = stack.with(&[
        ("RRSTITCH_SEGMENTS", "true"),
        ("RRSTITCH_SEGMENT_BYTES", "16KiB"),
    ]);
    let (ingest_api, finalize_api, _functions) = functions(&stack.env, &env).await;

    // One notification, six records (keys URL-encoded: ':' and '+' escaped).
    let reply = ingest_api
        .invoke(s3_event("chunks", &names))
        .await
        .expect("ingest succeeds");
    let outcomes = reply["objects"].as_array().unwrap();
    assert_eq!(outcomes.len(), 6, "{reply}");
    assert!(
        outcomes.iter().all(|o| o["outcome"] == "recorded"),
        "{reply}"
    );

    // A redelivered notification changes nothing.
    let again = ingest_api
        .invoke(s3_event("chunks", &names[..1]))
        .await
        .unwrap();
    assert_eq!(again["objects"][0]["outcome"], "already_known", "{again}");

    // The scheduled sweep stitches it into the results bucket.
    let swept = finalize_api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(swept["status"], 200, "{swept}");
    assert_eq!(
        swept["result"]["finalized"][0]["session_guid"], GUID,
        "{swept}"
    );
    let v = stack.result(GUID).await;
    assert_eq!(v["rrweb_data"], full_events());
    assert_eq!(v["metadata"]["timestamp_list"].as_array().unwrap().len(), 6);
    let first_generation = segments_match(&stack, &v).await;

    // A late chunk re-opens the session and the next sweep includes it.
    let (late, body) = fixture::late_chunk();
    stack.put_chunk(&late, body).await;
    let reply = ingest_api
        .invoke(s3_event("chunks", &[late]))
        .await
        .unwrap();
    assert_eq!(reply["objects"][0]["reopened"], true, "{reply}");
    let swept = finalize_api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(
        swept["result"]["finalized"].as_array().unwrap().len(),
        1,
        "{swept}"
    );
    let v = stack.result(GUID).await;
    assert_eq!(v["rrweb_data"].as_array().unwrap().len(), 244);
    let generation = segments_match(&stack, &v).await;
    assert_ne!(generation, first_generation);
    let folder = stack.results.list(&format!("{GUID}/")).await.unwrap();
    assert_only_generation(
        &format!("{GUID}/"),
        &generation,
        folder.iter().map(|o| o.name.as_str()),
    );
    // A sweep with nothing new stitches nothing.
    let idle = finalize_api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(idle["result"]["considered"], 0, "{idle}");

    // Manual finalize: direct payload and Function URL; unknown sessions are 404.
    let manual = finalize_api
        .invoke(json!({"session_guid": GUID}))
        .await
        .unwrap();
    assert_eq!(manual["status"], 200, "{manual}");
    let unknown = finalize_api
        .invoke(json!({"session_guid": "no-such-session"}))
        .await
        .unwrap();
    assert_eq!(unknown["status"], 404, "{unknown}");
    let url_request = function_url_request("/finalize", r#"{"session_guid":"no-such-session"}"#);
    let url_reply = finalize_api.invoke(url_request).await.unwrap();
    assert_eq!(url_reply["statusCode"], 404, "{url_reply}");
}

#[tokio::test]
async fn bad_records_are_skipped_and_a_dead_index_fails_the_invocation() {
    let stack = AwsStack::start().await;
    let api = RuntimeApi::start().await;
    let max_bytes = quota::max_bytes();
    let controls = stack.with(&[
        ("RRSTITCH_RESTRICT", restrict::RULES),
        ("RRSTITCH_SESSION_MAX_BYTES", &max_bytes),
    ]);
    let _ingest = lambda("rrstitch-ingest", &api, &controls);
    let name = "2025-05-02T12:10:50.644191+0000.json".to_owned();
    stack.put_chunk(&name, fixture::chunk(&name)).await;

    let mut event = s3_event("chunks", std::slice::from_ref(&name));
    let mut broken = event["Records"][0].clone();
    broken["s3"]["object"]["key"] = json!("bad%zzkey");
    let mut foreign = event["Records"][0].clone();
    foreign["s3"]["bucket"]["name"] = json!("someone-elses");
    event["Records"].as_array_mut().unwrap().push(broken);
    event["Records"].as_array_mut().unwrap().push(foreign);
    let reply = api
        .invoke(event)
        .await
        .expect("a bad record does not fail the good one");
    assert_eq!(reply["objects"][0]["outcome"], "recorded", "{reply}");
    assert_eq!(reply["objects"][1]["outcome"], "bad_record", "{reply}");
    assert_eq!(
        reply["objects"][2]["outcome"], "not_chunk_bucket",
        "a record naming another bucket is acknowledged, never read: {reply}"
    );

    // Chunks the restrictions refuse: acknowledged in one invocation, recorded in DynamoDB
    // with their kind (read back by the real CLI), kept in the bucket.
    let refused = restrict::refused_chunks();
    for (name, body, _) in &refused {
        stack.put_chunk(name, body.clone()).await;
    }
    let names: Vec<String> = refused.iter().map(|(n, _, _)| n.clone()).collect();
    let reply = api.invoke(s3_event("chunks", &names)).await.unwrap();
    for (i, (name, _, kind)) in refused.iter().enumerate() {
        assert_eq!(
            reply["objects"][i]["outcome"], "rejected",
            "{name}: {reply}"
        );
        assert_eq!(reply["objects"][i]["kind"], *kind, "{name}: {reply}");
    }
    assert_eq!(restrict::assert_refusals_recorded(&stack.env), 3);
    restrict::assert_status_counts_refusals(&stack.env);

    // Past the session's quota: the third chunk is refused (DynamoDB's conditional write on
    // the session's revision decides), recorded with its session and size, kept; the result
    // says what was refused. One invocation each, so which chunk is third is fixed.
    for ((name, body), outcome) in quota::chunks().iter().zip(quota::OUTCOMES) {
        stack.put_chunk(name, body.clone()).await;
        let reply = api
            .invoke(s3_event("chunks", std::slice::from_ref(name)))
            .await
            .unwrap();
        assert_eq!(reply["objects"][0]["outcome"], outcome, "{name}: {reply}");
    }
    let third = quota::chunks()[2].0.clone();
    let again = api.invoke(s3_event("chunks", &[third])).await.unwrap();
    assert_eq!(again["objects"][0]["kind"], "over_quota", "{again}");
    quota::assert_refusal_recorded(&stack.env);
    let finalize = HttpFunction::start("rrstitch-finalize", &controls);
    let body = json!({ "session_guid": quota::GUID }).to_string();
    let (status, v) = ureq_post(&format!("{}/finalize", finalize.url), &body).unwrap();
    assert_eq!(status, 200, "{v}");
    quota::assert_result_says_so(&stack.result(quota::GUID).await);
    drop(finalize);

    // With moto gone, ingest cannot record: the invocation fails so Lambda retries.
    let AwsStack { moto, env, .. } = stack;
    drop(moto);
    let err = api
        .invoke(s3_event("chunks", &[name]))
        .await
        .expect_err("a transient failure fails the invocation");
    assert!(err.to_string().contains("transient"), "{err}");
    assert_eq!(err["errorType"], "TransientIngestFailure", "{err}");
    drop(env);
}

#[tokio::test]
async fn finalize_over_http_maps_outcomes_to_status_codes() {
    let stack = AwsStack::start().await;
    let finalize = HttpFunction::start("rrstitch-finalize", &stack.env);
    let post = |path: &str, body: &str| match ureq_post(&format!("{}{path}", finalize.url), body) {
        Ok((status, v)) => (status, v),
        Err(e) => panic!("{e}"),
    };
    let (status, v) = post("/finalize", r#"{"session_guid":"no-such-session"}"#);
    assert_eq!(status, 404, "{v}");
    let (status, v) = post("/finalize", r#"{"session_guid":"../../etc"}"#);
    assert_eq!(status, 400, "{v}");
    let (status, v) = post("/finalize", "not json");
    assert_eq!(status, 400, "{v}");
    let (status, v) = post("/sweep", "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["considered"], 0);
    drop(stack);
}

fn ureq_post(url: &str, body: &str) -> Result<(u16, Value), String> {
    let agent = ureq_agent();
    match agent
        .post(url)
        .set("content-type", "application/json")
        .send_string(body)
    {
        Ok(r) => Ok((r.status(), r.into_json().unwrap_or(Value::Null))),
        Err(ureq::Error::Status(code, r)) => Ok((code, r.into_json().unwrap_or(Value::Null))),
        Err(e) => Err(e.to_string()),
    }
}

fn ureq_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(60))
        .build()
}

#[tokio::test]
async fn lost_events_are_recovered_by_reconcile_and_junk_payloads_acknowledged() {
    let stack = AwsStack::start().await;
    let names = stack.upload_fixture().await;
    let (ingest_api, finalize_api, _functions) = functions(&stack.env, &stack.env).await;

    // Payloads that can never succeed are acknowledged, not failed (so never retried).
    let junk = ingest_api
        .invoke(json!({"hello": "world"}))
        .await
        .expect("a junk payload does not fail the invocation");
    assert_eq!(junk["outcome"], "ignored", "{junk}");
    let junk = finalize_api
        .invoke(json!({"hello": "world"}))
        .await
        .expect("a junk payload does not fail the invocation");
    assert_eq!(junk["status"], 400, "{junk}");

    // Every other event is lost.
    let delivered: Vec<String> = names.iter().step_by(2).cloned().collect();
    let reply = ingest_api
        .invoke(s3_event("chunks", &delivered))
        .await
        .unwrap();
    assert_eq!(reply["objects"].as_array().unwrap().len(), delivered.len());

    let reconciled = finalize_api
        .invoke(json!({"reconcile": true}))
        .await
        .unwrap();
    assert_eq!(reconciled["status"], 200, "{reconciled}");
    let r = &reconciled["result"];
    println!("FIGURE reconcile.s3.recovered: {}", r["recovered"]);
    assert_eq!(r["recovered"], names.len() - delivered.len(), "{r}");
    assert_eq!(r["known"], delivered.len(), "{r}");
    let again = finalize_api
        .invoke(json!({"reconcile": true}))
        .await
        .unwrap();
    assert_eq!(again["result"]["recovered"], 0, "{again}");
    assert_eq!(again["result"]["known"], names.len(), "{again}");

    let swept = finalize_api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(swept["status"], 200, "{swept}");
    let v = stack.result(GUID).await;
    assert_eq!(v["rrweb_data"], full_events());
}

/// Re-stitch, then erasure, on S3 + DynamoDB through the Lambdas: a session stitched by a
/// finalize from before insights (off) is stitched again by today's on the `{"restitch": …}`
/// event and gains them; the `{"delete": …}` event removes result, chunks and index records;
/// a late chunk's notification is refused as `deleted_session` and the object deleted; the
/// Function URL's `/delete` route answers a second delete with nothing left, and its
/// `/restitch` route leaves the tombstone alone.
#[tokio::test]
async fn restitch_then_the_delete_event_and_late_chunks_stay_out() {
    let stack = AwsStack::start().await;
    let names = stack.upload_fixture().await;
    let before = stack.with(&[("RRSTITCH_INSIGHTS", "0")]);
    let (ingest_api, before_api, _functions) = functions(&stack.env, &before).await;
    let finalize_api = RuntimeApi::start().await;
    let _finalize = lambda("rrstitch-finalize", &finalize_api, &stack.env);
    ingest_api
        .invoke(s3_event("chunks", &names))
        .await
        .expect("ingest succeeds");
    let swept = before_api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(swept["status"], 200, "{swept}");
    assert_eq!(stack.result(GUID).await["rrweb_data"], full_events());
    assert!(stack.result(GUID).await["metadata"]
        .get("insights")
        .is_none());

    let again = finalize_api
        .invoke(json!({"restitch": {"all": true}}))
        .await
        .unwrap();
    assert_eq!(again["status"], 200, "{again}");
    assert_eq!(again["result"]["mode"], "inline", "{again}");
    assert_eq!(again["result"]["restitched"], 1, "{again}");
    assert_eq!(again["result"]["cursor"], Value::Null, "{again}");
    let v = stack.result(GUID).await;
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
    let typo = finalize_api
        .invoke(json!({"restitch": {"everything": true}}))
        .await
        .unwrap();
    assert_eq!(typo["status"], 400, "{typo}");

    let erased = finalize_api
        .invoke(json!({"delete": {"session_guids": [GUID]}}))
        .await
        .unwrap();
    assert_eq!(erased["status"], 200, "{erased}");
    let s = &erased["result"]["erased"][0];
    assert_eq!(s["results"], 1, "{erased}");
    assert_eq!(s["chunks"], names.len(), "{erased}");
    assert_eq!(s["index_records"], names.len() + 1, "{erased}");
    assert!(stack.results.list("").await.unwrap().is_empty());
    assert!(stack.chunks.list("").await.unwrap().is_empty());

    stack.put_chunk(&names[0], fixture::chunk(&names[0])).await;
    let late = ingest_api
        .invoke(s3_event("chunks", &names[..1]))
        .await
        .unwrap();
    assert_eq!(late["objects"][0]["outcome"], "deleted_session", "{late}");
    assert!(stack.chunks.list("").await.unwrap().is_empty(), "deleted");
    let swept = finalize_api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(swept["result"]["considered"], 0, "{swept}");

    let url_request =
        function_url_request("/delete", &format!("{{\"session_guids\":[\"{GUID}\"]}}"));
    let again = finalize_api.invoke(url_request).await.unwrap();
    assert_eq!(again["statusCode"], 200, "{again}");
    let body: Value = serde_json::from_str(again["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["erased"][0]["already_gone"], true, "{body}");
    // A tombstone is never re-stitched.
    let after = finalize_api
        .invoke(function_url_request("/restitch", r#"{"all": true}"#))
        .await
        .unwrap();
    assert_eq!(after["statusCode"], 200, "{after}");
    let body: Value = serde_json::from_str(after["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["tombstoned"], 1, "{body}");
    assert_eq!(body["restitched"], 0, "{body}");
    assert!(stack.results.list("").await.unwrap().is_empty());

    // `/status` through the Function URL: the tombstone (in DynamoDB's index by its expiry),
    // nothing open, and the last sweep: the one after the erasure, which found nothing.
    let reply = finalize_api
        .invoke(function_url_request("/status", ""))
        .await
        .unwrap();
    assert_eq!(reply["statusCode"], 200, "{reply}");
    let status: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    rrstitch_tests::status::assert_after_erasure(&status, 0);
}

/// `RRSTITCH_REDACT` as a Lambda carries it, inline JSON: the session stored in S3 holds none
/// of the values typed into the recorded form (the chunks do: the control), every event is
/// still there, and the metadata counts what was masked.
#[tokio::test]
async fn inline_redaction_rules_mask_the_session_stored_in_s3() {
    let stack = AwsStack::start().await;
    let names = stack.upload_fixture().await;
    let env = stack.with(&[("RRSTITCH_REDACT", FORM_RULES)]);
    let (ingest_api, finalize_api, _functions) = functions(&env, &env).await;
    ingest_api
        .invoke(s3_event("chunks", &names))
        .await
        .expect("ingest succeeds");
    let swept = finalize_api.invoke(scheduled_event()).await.unwrap();
    assert_eq!(
        swept["result"]["finalized"][0]["session_guid"], GUID,
        "{swept}"
    );
    let stored = stack
        .results
        .get(&format!("{GUID}.json"), 1 << 30)
        .await
        .unwrap()
        .body;
    let stored = String::from_utf8(stored.to_vec()).unwrap();
    assert_form_redacted(&json!({ "rrweb_data": full_events() }), &stored);
}
