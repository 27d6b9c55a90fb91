//! Any bytes as a platform event: a structured or binary CloudEvent, an S3 notification, an
//! S3 key, a manual finalize request, a Pub/Sub push, an SQS batch, a finalize message. Decoding never panics; what decodes is well-formed.
#![no_main]

use http::HeaderMap;
use libfuzzer_sys::fuzz_target;
use rrstitch_edge::events;

fuzz_target!(|data: &[u8]| {
    let mut structured = HeaderMap::new();
    structured.insert("content-type", "application/cloudevents+json".parse().unwrap());
    if let Ok(object) = events::gcs_object_from_cloudevent(&structured, data.to_vec()) {
        assert!(!object.name.is_empty());
    }
    let mut binary = HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "1"),
        ("ce-source", "//storage.googleapis.com/projects/_/buckets/b"),
        ("ce-type", events::GCS_FINALIZED),
        ("content-type", "application/json"),
    ] {
        binary.insert(k, v.parse().unwrap());
    }
    let _ = events::gcs_object_from_cloudevent(&binary, data.to_vec());
    if let Ok(payload) = serde_json::from_slice::<events::S3Payload>(data) {
        if let Ok(records) = events::s3_objects(&payload) {
            for object in records.into_iter().flatten() {
                assert!(!object.name.is_empty());
            }
        }
    }
    if let Ok(events::FinalizeEvent::Queued(batch)) = serde_json::from_slice::<events::FinalizeEvent>(data) {
        assert!(events::is_sqs_event(&batch.0));
        if let Ok(messages) = events::sqs_messages(batch) {
            assert!(!messages.is_empty());
        }
    }
    if let Ok(payload) = events::pubsub_push_data(data) {
        let _ = rrstitch::queue::parse_message(&payload);
    }
    let _ = rrstitch::queue::parse_message(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = events::decode_s3_key(text);
    }
    let _ = events::finalize_request(data);
});
