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

/// Sends only the head of a POST that announces a `length`-byte body and reads the answer.
///
/// A server that refuses an oversized body answers and closes before reading it; a client
/// that insists on writing the body then races that close and may see a broken pipe instead
/// of the answer. Announcing the size and sending no body makes the refusal observable.
pub fn post_announcing(url: &str, headers: &[(&str, &str)], length: usize) -> u16 {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http url");
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let mut stream =
        std::net::TcpStream::connect(host).unwrap_or_else(|e| panic!("connect {host}: {e}"));
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-length: {length}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("write head");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read answer from {host}: {e}"),
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
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
