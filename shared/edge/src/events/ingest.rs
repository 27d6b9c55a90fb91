//! What announces a new chunk object, decoded into the [`ObjectRef`] `Service::ingest` takes.
//!
//! Three deliveries, one per way a platform tells the ingest function about an object: a GCS
//! `google.cloud.storage.object.v1.finalized` CloudEvent from Eventarc (either content mode),
//! a Pub/Sub push of the bucket's `OBJECT_FINALIZE` notification (the deployed GCP path: its
//! subscription dead-letters), and an S3 notification delivered to Lambda. They live apart
//! from the finalize direction because nothing else receives them.

use http::HeaderMap;
use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use aws_lambda_events::s3::{S3Bucket, S3Object};
use rrstitch::service::ObjectRef;
use rrstitch::storage::StorageUrl;

use super::{push_message, EventError};

/// The CloudEvent type Eventarc sends for a new GCS object.
pub const GCS_FINALIZED: &str = "google.cloud.storage.object.v1.finalized";

/// The Pub/Sub `eventType` attribute of a GCS notification for a new object.
pub const PUBSUB_FINALIZE: &str = "OBJECT_FINALIZE";

/// Decodes a Pub/Sub push delivery of a GCS notification (what the dead-lettered ingest
/// subscription sends): `Ok(Some(object))` for a new object, `Ok(None)` for a notification of
/// another kind (acknowledge it: redelivery cannot change it), `Err` for a body that is not a
/// push envelope at all.
pub fn gcs_object_from_pubsub_push(body: &[u8]) -> Result<Option<ObjectRef>, EventError> {
    let attrs = push_message(body)?.attributes;
    let attr = |k: &str| attrs.get(k).filter(|v| !v.is_empty());
    match attr("eventType") {
        Some(t) if t == PUBSUB_FINALIZE => {}
        _ => return Ok(None),
    }
    let (Some(bucket), Some(name)) = (attr("bucketId"), attr("objectId")) else {
        return Err(EventError::BadData(
            "a GCS notification without bucketId or objectId".into(),
        ));
    };
    Ok(Some(ObjectRef {
        bucket: StorageUrl::Gcs {
            bucket: bucket.clone(),
        },
        name: name.clone(),
        generation: attr("objectGeneration").cloned(),
    }))
}

/// GCS's `StorageObjectData`, the fields rrstitch reads. int64 fields arrive as JSON strings.
#[derive(Deserialize)]
struct StorageObjectData {
    bucket: String,
    name: String,
    #[serde(default)]
    generation: Option<Value>,
}

/// Decodes an Eventarc delivery (either content mode) into the object it announces.
pub fn gcs_object_from_cloudevent(
    headers: &HeaderMap,
    body: Vec<u8>,
) -> Result<ObjectRef, EventError> {
    use cloudevents::AttributesReader;
    let event = cloudevents::binding::http::to_event(headers, body)
        .map_err(|e| EventError::NotACloudEvent(e.to_string()))?;
    if event.ty() != GCS_FINALIZED {
        return Err(EventError::UnsupportedType(event.ty().to_owned()));
    }
    let data: Value = match event.data() {
        Some(cloudevents::Data::Json(v)) => v.clone(),
        Some(cloudevents::Data::Binary(b)) => serde_json::from_slice(b)
            .map_err(|e| EventError::BadData(format!("data is not JSON: {e}")))?,
        Some(cloudevents::Data::String(s)) => serde_json::from_str(s)
            .map_err(|e| EventError::BadData(format!("data is not JSON: {e}")))?,
        None => return Err(EventError::BadData("the event has no data".into())),
    };
    let object: StorageObjectData =
        serde_json::from_value(data).map_err(|e| EventError::BadData(e.to_string()))?;
    if object.bucket.is_empty() || object.name.is_empty() {
        return Err(EventError::BadData("empty bucket or object name".into()));
    }
    let generation = match object.generation {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Ok(ObjectRef {
        bucket: StorageUrl::Gcs {
            bucket: object.bucket,
        },
        name: object.name,
        generation,
    })
}

/// What the ingest Lambda is invoked with, decoded once by the runtime. Every payload decodes
/// to one of these (the last takes anything), so a payload that is not a notification is
/// answered, not failed: no retry could make it one.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum S3Payload {
    /// `{"Event": "s3:TestEvent", …}`, what S3 sends when a notification is configured: there
    /// is nothing to ingest.
    Test {
        #[serde(rename = "Event", deserialize_with = "s3_test_event")]
        event: (),
    },
    /// `{"Records": [...]}`.
    Notification {
        #[serde(rename = "Records")]
        records: Vec<S3Record>,
    },
    /// Anything else.
    Other(IgnoredAny),
}

fn s3_test_event<'de, D: Deserializer<'de>>(d: D) -> Result<(), D::Error> {
    match String::deserialize(d)?.as_str() {
        "s3:TestEvent" => Ok(()),
        other => Err(serde::de::Error::custom(format!(
            "{other:?} is not s3:TestEvent"
        ))),
    }
}

/// One record of an S3 notification. Each decodes on its own, so a malformed record is
/// reported by itself and does not hide the good ones.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum S3Record {
    Record(Box<S3RecordFields>),
    Malformed(IgnoredAny),
}

/// The fields of an S3 event record (`aws_lambda_events::s3::S3EventRecord`) that rrstitch
/// reads, with every one optional: that type also requires `eventTime`, `userIdentity`,
/// `requestParameters`, `s3.bucket` and `s3.object`, and a record is judged by what ingest
/// needs from it (a bucket and a key), each missing one named in the record's error.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3RecordFields {
    #[serde(default)]
    event_name: Option<String>,
    #[serde(default)]
    s3: Option<S3Entity>,
}

/// `s3` of an S3 event record: the bucket and object in `aws_lambda_events`' types.
#[derive(Debug, Deserialize)]
pub struct S3Entity {
    #[serde(default)]
    bucket: Option<S3Bucket>,
    #[serde(default)]
    object: Option<S3Object>,
}

/// The objects of an S3 Lambda payload, one result per record: a bad record does not hide
/// the good ones. Only `ObjectCreated:*` records count; others (and S3's `s3:TestEvent`)
/// yield nothing. A payload that is not a notification is an error.
pub fn s3_objects(payload: &S3Payload) -> Result<Vec<Result<ObjectRef, EventError>>, EventError> {
    let records = match payload {
        S3Payload::Test { .. } => return Ok(Vec::new()),
        S3Payload::Notification { records } => records,
        S3Payload::Other(_) => return Err(EventError::NotS3("no Records array".into())),
    };
    Ok(records
        .iter()
        .enumerate()
        .filter(|(_, r)| match r {
            S3Record::Record(r) => r
                .event_name
                .as_deref()
                .is_none_or(|n| n.starts_with("ObjectCreated")),
            S3Record::Malformed(_) => true,
        })
        .map(|(index, record)| s3_record(index, record))
        .collect())
}

fn s3_record(index: usize, record: &S3Record) -> Result<ObjectRef, EventError> {
    let bad = |reason: &str| EventError::BadRecord {
        index,
        reason: reason.to_owned(),
    };
    let S3Record::Record(record) = record else {
        return Err(bad("not an S3 event record"));
    };
    let s3 = record.s3.as_ref().ok_or_else(|| bad("no s3 field"))?;
    let bucket = s3
        .bucket
        .as_ref()
        .and_then(|b| b.name.as_deref())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| bad("no bucket name"))?;
    let object = s3.object.as_ref();
    let raw_key = object
        .and_then(|o| o.key.as_deref())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| bad("no object key"))?;
    let name = decode_s3_key(raw_key).map_err(|e| bad(&e))?;
    // Versioned buckets give a versionId; otherwise the ETag tells uploads apart.
    let generation = object
        .into_iter()
        .flat_map(|o| [&o.version_id, &o.e_tag, &o.sequencer])
        .find_map(|s| s.as_deref().filter(|s| !s.is_empty()))
        .map(str::to_owned);
    Ok(ObjectRef {
        bucket: StorageUrl::S3 {
            bucket: bucket.to_owned(),
        },
        name,
        generation,
    })
}

/// S3 notifications URL-encode keys form-style: `+` is a space, `%XX` a byte.
pub fn decode_s3_key(raw: &str) -> Result<String, String> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in key {raw:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("key {raw:?} does not decode to UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The object every GCS fixture below announces.
    fn assert_fixture_object(object: &ObjectRef) {
        assert_eq!(
            object.bucket,
            StorageUrl::Gcs {
                bucket: "chunks".into()
            }
        );
        assert_eq!(object.name, "2025-05-02T12:10:50.644423+0000.json");
        assert_eq!(object.generation.as_deref(), Some("1746187851000000"));
    }

    #[test]
    fn pubsub_push_of_a_gcs_notification() {
        let body = json!({
            "message": {
                "attributes": {
                    "bucketId": "chunks",
                    "objectId": "2025-05-02T12:10:50.644423+0000.json",
                    "objectGeneration": "1746187851000000",
                    "eventType": "OBJECT_FINALIZE",
                    "payloadFormat": "JSON_API_V1",
                    "notificationConfig": "projects/_/buckets/chunks/notificationConfigs/1"
                },
                "data": "e30=",
                "messageId": "1",
                "publishTime": "2025-05-02T12:10:51Z"
            },
            "subscription": "projects/p/subscriptions/ingest"
        });
        let object = gcs_object_from_pubsub_push(body.to_string().as_bytes())
            .unwrap()
            .unwrap();
        assert_fixture_object(&object);
        let mut deleted = body.clone();
        deleted["message"]["attributes"]["eventType"] = json!("OBJECT_DELETE");
        assert_eq!(
            gcs_object_from_pubsub_push(deleted.to_string().as_bytes()).unwrap(),
            None
        );
        let mut nameless = body.clone();
        nameless["message"]["attributes"]
            .as_object_mut()
            .unwrap()
            .remove("objectId");
        assert!(gcs_object_from_pubsub_push(nameless.to_string().as_bytes()).is_err());
        assert!(matches!(
            gcs_object_from_pubsub_push(b"{}"),
            Err(EventError::NotPubSub(_))
        ));
    }

    fn storage_data() -> Value {
        // The shape of Google's documented StorageObjectData (int64 fields as strings).
        json!({
            "kind": "storage#object",
            "id": "chunks/2025-05-02T12:10:50.644423+0000.json/1746187851000000",
            "selfLink": "https://www.googleapis.com/storage/v1/b/chunks/o/x",
            "name": "2025-05-02T12:10:50.644423+0000.json",
            "bucket": "chunks",
            "generation": "1746187851000000",
            "metageneration": "1",
            "contentType": "application/json",
            "timeCreated": "2025-05-02T12:10:51.000Z",
            "updated": "2025-05-02T12:10:51.000Z",
            "storageClass": "STANDARD",
            "size": "14571",
            "md5Hash": "x",
            "crc32c": "y",
            "etag": "z"
        })
    }

    fn binary_headers(ty: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("ce-specversion", "1.0".parse().unwrap());
        h.insert("ce-id", "1234".parse().unwrap());
        h.insert(
            "ce-source",
            "//storage.googleapis.com/projects/_/buckets/chunks"
                .parse()
                .unwrap(),
        );
        h.insert("ce-type", ty.parse().unwrap());
        h.insert(
            "ce-subject",
            "objects/2025-05-02T12:10:50.644423+0000.json"
                .parse()
                .unwrap(),
        );
        h.insert("ce-time", "2025-05-02T12:10:51.000Z".parse().unwrap());
        h.insert("content-type", "application/json".parse().unwrap());
        h
    }

    #[test]
    fn binary_mode_gcs_event() {
        let body = serde_json::to_vec(&storage_data()).unwrap();
        let object = gcs_object_from_cloudevent(&binary_headers(GCS_FINALIZED), body).unwrap();
        assert_fixture_object(&object);
    }

    #[test]
    fn structured_mode_gcs_event() {
        let mut h = HeaderMap::new();
        h.insert(
            "content-type",
            "application/cloudevents+json".parse().unwrap(),
        );
        let body = serde_json::to_vec(&json!({
            "specversion": "1.0",
            "id": "1234",
            "source": "//storage.googleapis.com/projects/_/buckets/chunks",
            "type": GCS_FINALIZED,
            "datacontenttype": "application/json",
            "data": storage_data()
        }))
        .unwrap();
        let object = gcs_object_from_cloudevent(&h, body).unwrap();
        assert_eq!(object.name, "2025-05-02T12:10:50.644423+0000.json");
    }

    #[test]
    fn wrong_type_missing_fields_and_garbage_are_errors() {
        let body = serde_json::to_vec(&storage_data()).unwrap();
        assert!(matches!(
            gcs_object_from_cloudevent(
                &binary_headers("google.cloud.storage.object.v1.deleted"),
                body
            ),
            Err(EventError::UnsupportedType(_))
        ));
        let body = serde_json::to_vec(&json!({"bucket": "b"})).unwrap();
        assert!(matches!(
            gcs_object_from_cloudevent(&binary_headers(GCS_FINALIZED), body),
            Err(EventError::BadData(_))
        ));
        assert!(matches!(
            gcs_object_from_cloudevent(&HeaderMap::new(), b"hello".to_vec()),
            Err(EventError::NotACloudEvent(_))
        ));
        let mut h = binary_headers(GCS_FINALIZED);
        h.remove("ce-id");
        assert!(gcs_object_from_cloudevent(&h, b"{}".to_vec()).is_err());
    }

    #[test]
    fn s3_keys_are_url_decoded() {
        assert_eq!(decode_s3_key("a+b%2Bc%20d.json").unwrap(), "a b+c d.json");
        assert_eq!(
            decode_s3_key("2025-05-02T12%3A10%3A50.644423%2B0000.json").unwrap(),
            "2025-05-02T12:10:50.644423+0000.json"
        );
        assert_eq!(decode_s3_key("%C3%BC.json").unwrap(), "ü.json");
        assert!(decode_s3_key("bad%zz").is_err());
        assert!(decode_s3_key("cut%2").is_err());
        assert!(decode_s3_key("%FF").is_err());
    }

    /// An S3 Lambda payload as the runtime decodes it.
    fn s3_payload(event: Value) -> S3Payload {
        serde_json::from_value(event).expect("every JSON value is an S3Payload")
    }

    #[test]
    fn s3_records_each_decode_on_their_own() {
        let event = s3_payload(json!({"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "chunks"}, "object": {"key": "2025-05-02T12%3A10%3A50Z.json", "eTag": "abc"}}},
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "chunks"}}},
            {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "chunks"}, "object": {"key": "x.json"}}}
        ]}));
        let objects = s3_objects(&event).unwrap();
        assert_eq!(objects.len(), 2, "removals are not ingested");
        let first = objects[0].as_ref().unwrap();
        assert_eq!(first.name, "2025-05-02T12:10:50Z.json");
        assert_eq!(
            first.bucket,
            StorageUrl::S3 {
                bucket: "chunks".into()
            }
        );
        assert_eq!(first.generation.as_deref(), Some("abc"));
        assert!(matches!(
            objects[1],
            Err(EventError::BadRecord { index: 1, .. })
        ));
        assert!(s3_objects(&s3_payload(json!({"Event": "s3:TestEvent"})))
            .unwrap()
            .is_empty());
        assert!(s3_objects(&s3_payload(json!({"nope": 1}))).is_err());
    }

    /// A record whose fields have the wrong types is reported by itself, as a record without
    /// its fields is; a payload that is not a notification at all is one error.
    #[test]
    fn a_record_of_the_wrong_shape_is_reported_on_its_own() {
        let event = s3_payload(json!({"Records": [
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": 5}}},
            {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "chunks"}, "object": {"key": "a.json"}}}
        ]}));
        let objects = s3_objects(&event).unwrap();
        assert!(matches!(
            objects[0],
            Err(EventError::BadRecord { index: 0, .. })
        ));
        assert_eq!(objects[1].as_ref().unwrap().name, "a.json");
        for junk in [json!({"Records": 5}), json!("x"), json!({"Event": "other"})] {
            assert!(matches!(
                s3_objects(&s3_payload(junk)),
                Err(EventError::NotS3(_))
            ));
        }
    }

    /// What Lambda delivers, in `aws_lambda_events`' own shape.
    #[test]
    fn an_aws_lambda_events_notification_decodes() {
        use aws_lambda_events::s3::{S3Event, S3EventRecord};
        let mut record = S3EventRecord::default();
        record.event_name = Some("ObjectCreated:Put".into());
        record.s3.bucket.name = Some("chunks".into());
        record.s3.object.key = Some("a+b.json".into());
        record.s3.object.version_id = Some("v1".into());
        record.s3.object.e_tag = Some("etag".into());
        let mut event = S3Event::default();
        event.records = vec![record];
        let objects = s3_objects(&s3_payload(serde_json::to_value(event).unwrap())).unwrap();
        let object = objects[0].as_ref().unwrap();
        assert_eq!(object.name, "a b.json");
        assert_eq!(object.generation.as_deref(), Some("v1"));
    }
}
