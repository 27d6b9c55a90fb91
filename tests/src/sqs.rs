//! moto's SQS, spoken to over the SQS JSON protocol, and the part of a Lambda event source
//! mapping the tests play: receive a batch, hand it to the function as an SQS event, delete
//! the messages the answer does not list in `batchItemFailures` (the rest reappear after the
//! visibility timeout, as on AWS). moto's own Lambda cannot run the repository's binaries, so
//! the tests drive the real finalize binary through `crate::lambda::RuntimeApi` with the
//! events built here.

use std::time::Duration;

use serde_json::{json, Value};

use crate::lambda::RuntimeApi;
use crate::Moto;

/// One SQS call; moto tells services apart by the credential scope of the signature, which
/// it does not check.
pub fn call(moto: &Moto, action: &str, body: Value) -> Value {
    ureq::post(&format!("{}/", moto.endpoint))
        .timeout(Duration::from_secs(30))
        .set("content-type", "application/x-amz-json-1.0")
        .set("x-amz-target", &format!("AmazonSQS.{action}"))
        .set(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20250101/us-east-1/sqs/aws4_request, SignedHeaders=host, Signature=0",
        )
        .send_string(&body.to_string())
        .unwrap_or_else(|e| panic!("SQS {action}: {e}"))
        .into_json()
        .unwrap_or_else(|e| panic!("SQS {action}: {e}"))
}

/// Creates a queue hiding a received message for `visibility_secs`; returns its URL.
pub fn create_queue(moto: &Moto, name: &str, visibility_secs: u32) -> String {
    let out = call(
        moto,
        "CreateQueue",
        json!({"QueueName": name, "Attributes": {"VisibilityTimeout": visibility_secs.to_string()}}),
    );
    out["QueueUrl"].as_str().expect("a queue URL").to_owned()
}

/// Up to ten visible messages (waiting up to `wait_secs` for the first).
pub fn receive(moto: &Moto, queue: &str, wait_secs: u32) -> Vec<Value> {
    let out = call(
        moto,
        "ReceiveMessage",
        json!({
            "QueueUrl": queue,
            "MaxNumberOfMessages": 10,
            "WaitTimeSeconds": wait_secs,
            "MessageSystemAttributeNames": ["All"],
        }),
    );
    out["Messages"].as_array().cloned().unwrap_or_default()
}

pub fn delete(moto: &Moto, queue: &str, receipt_handle: &str) {
    call(
        moto,
        "DeleteMessage",
        json!({"QueueUrl": queue, "ReceiptHandle": receipt_handle}),
    );
}

pub fn send(moto: &Moto, queue: &str, body: &str) {
    call(
        moto,
        "SendMessage",
        json!({"QueueUrl": queue, "MessageBody": body}),
    );
}

/// The event Lambda builds from received messages (`aws:sqs` records).
pub fn event(queue: &str, messages: &[Value]) -> Value {
    let name = queue.rsplit('/').next().unwrap_or("queue");
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            json!({
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m["Attributes"],
                "messageAttributes": {},
                "md5OfBody": m["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:123456789012:{name}"),
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// What one poll of the event source mapping did.
#[derive(Debug, Default)]
pub struct Poll {
    /// Messages handed to the function.
    pub delivered: usize,
    /// Their ids that the function listed in `batchItemFailures` (left on the queue).
    pub failed: Vec<String>,
    pub bodies: Vec<String>,
}

/// Receives one batch, invokes the function with it and deletes what succeeded, as the
/// event source mapping does. A failed invocation (an error, not an answer) leaves the whole
/// batch on the queue and panics: the function must always answer an SQS batch.
pub async fn poll_once(moto: &Moto, queue: &str, api: &RuntimeApi, wait_secs: u32) -> Poll {
    let messages = receive(moto, queue, wait_secs);
    if messages.is_empty() {
        return Poll::default();
    }
    let reply = api
        .invoke(event(queue, &messages))
        .await
        .unwrap_or_else(|e| panic!("the function failed the SQS batch instead of answering: {e}"));
    let failed: Vec<String> = reply["batchItemFailures"]
        .as_array()
        .unwrap_or_else(|| panic!("no batchItemFailures in {reply}"))
        .iter()
        .map(|f| {
            f["itemIdentifier"]
                .as_str()
                .expect("an itemIdentifier")
                .to_owned()
        })
        .collect();
    assert!(
        failed
            .iter()
            .all(|f| messages.iter().any(|m| m["MessageId"] == f.as_str())),
        "batchItemFailures names a message not in the batch: {reply}"
    );
    for m in &messages {
        let id = m["MessageId"].as_str().unwrap();
        if !failed.iter().any(|f| f == id) {
            delete(moto, queue, m["ReceiptHandle"].as_str().unwrap());
        }
    }
    Poll {
        delivered: messages.len(),
        bodies: messages
            .iter()
            .map(|m| m["Body"].as_str().unwrap_or_default().to_owned())
            .collect(),
        failed,
    }
}
