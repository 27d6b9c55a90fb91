//! Storage CloudEvents as Eventarc delivers them to a Cloud Run service, and a small HTTP
//! client for the functions.

use serde_json::{json, Value};

use crate::bins::HttpFunction;

pub const FINALIZED: &str = "google.cloud.storage.object.v1.finalized";

/// The `data` of a storage CloudEvent: Google's StorageObjectData, as Eventarc sends it
/// (int64 fields as strings).
pub fn object_data(bucket: &str, name: &str, size: usize) -> Value {
    json!({
        "kind": "storage#object",
        "id": format!("{bucket}/{name}/1746187850644423"),
        "selfLink": format!("https://www.googleapis.com/storage/v1/b/{bucket}/o/{name}"),
        "name": name,
        "bucket": bucket,
        "generation": "1746187850644423",
        "metageneration": "1",
        "contentType": "application/json",
        "timeCreated": "2025-05-02T12:10:50.700Z",
        "updated": "2025-05-02T12:10:50.700Z",
        "storageClass": "STANDARD",
        "timeStorageClassUpdated": "2025-05-02T12:10:50.700Z",
        "size": size.to_string(),
        "md5Hash": "mZ6xtFzHNKmqsPiwEgaiDg==",
        "mediaLink": format!("https://storage.googleapis.com/download/storage/v1/b/{bucket}/o/{name}?generation=1746187850644423&alt=media"),
        "crc32c": "+NeJyg==",
        "etag": "CMfk6MKtjo0DEAE="
    })
}

/// A function's answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
}

/// POSTs `body`; any HTTP status is an answer, only a transport failure panics.
pub fn post(url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    try_post(url, headers, body).unwrap_or_else(|e| panic!("POST {url}: {e}"))
}

pub fn try_post(url: &str, headers: &[(&str, &str)], body: &str) -> Result<Reply, String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(std::time::Duration::from_secs(120))
        .build();
    let mut req = agent.post(url);
    for (k, v) in headers {
        req = req.set(k, v);
    }
    match req.send_string(body) {
        Ok(r) => Ok(Reply {
            status: r.status(),
            body: r.into_json().unwrap_or(Value::Null),
        }),
        Err(ureq::Error::Status(status, r)) => Ok(Reply {
            status,
            body: r.into_json().unwrap_or(Value::Null),
        }),
        Err(e) => Err(e.to_string()),
    }
}

/// Binary content mode: attributes in `ce-` headers, the object data as the body.
pub fn binary_event(ingest: &HttpFunction, bucket: &str, name: &str, size: usize) -> Reply {
    let source = format!("//storage.googleapis.com/projects/_/buckets/{bucket}");
    let subject = format!("objects/{name}");
    post(
        &format!("{}/", ingest.url),
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", &format!("evt-{name}")),
            ("ce-source", &source),
            ("ce-type", FINALIZED),
            ("ce-subject", &subject),
            ("ce-time", "2025-05-02T12:10:50.700Z"),
            ("content-type", "application/json"),
        ],
        &object_data(bucket, name, size).to_string(),
    )
}

/// Structured content mode: the whole event as one JSON document.
pub fn structured_event(ingest: &HttpFunction, kind: &str, bucket: &str, name: &str) -> Reply {
    let event = json!({
        "specversion": "1.0",
        "id": format!("evt-s-{name}"),
        "source": format!("//storage.googleapis.com/projects/_/buckets/{bucket}"),
        "type": kind,
        "subject": format!("objects/{name}"),
        "time": "2025-05-02T12:10:50.700Z",
        "datacontenttype": "application/json",
        "data": object_data(bucket, name, 100),
    });
    post(
        &format!("{}/", ingest.url),
        &[(
            "content-type",
            "application/cloudevents+json; charset=utf-8",
        )],
        &event.to_string(),
    )
}

/// `POST /sweep` on a finalize function.
pub fn sweep(finalize: &HttpFunction) -> Reply {
    post(&format!("{}/sweep", finalize.url), &[], "")
}
