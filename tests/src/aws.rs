//! The AWS stack the flow and queue tests run the real functions on, beside [`crate::GcpStack`]:
//! moto with a `chunks` and a `results` bucket and the DynamoDB table, S3 handles on both
//! buckets, and the environment that points the binaries at them (everything idle at once,
//! JSON logs); and what Lambda hands the functions: S3 notifications and the scheduled sweep,
//! to a binary started in its Lambda mode. Shared so the flow and queue tests set up the same
//! deployment and deliver the same events.

use aws_lambda_events::s3::{S3Event, S3EventRecord};
use bytes::Bytes;
use rrstitch::index::dynamodb::DynamoIndex;
use rrstitch::storage::s3::S3Store;
use rrstitch::storage::{ObjectStore, Precondition, StorageUrl};
use serde_json::{json, Value};

use crate::lambda::RuntimeApi;
use crate::procs::Group;
use crate::{bins, Moto};

pub struct AwsStack {
    pub moto: Moto,
    pub chunks: S3Store,
    pub results: S3Store,
    pub env: Vec<(String, String)>,
}

impl AwsStack {
    pub async fn start() -> AwsStack {
        let moto = Moto::start();
        moto.create_bucket("chunks");
        moto.create_bucket("results");
        DynamoIndex::on_emulator("rrstitch", &moto.endpoint)
            .await
            .create_table()
            .await
            .unwrap();
        let chunks = s3(&moto.endpoint, "chunks").await;
        let results = s3(&moto.endpoint, "results").await;
        let mut env = moto.env();
        env.extend(
            [
                ("RRSTITCH_INDEX", "dynamodb"),
                ("RRSTITCH_DYNAMODB_TABLE", "rrstitch"),
                ("RRSTITCH_CHUNKS", "s3://chunks"),
                ("RRSTITCH_RESULTS", "s3://results"),
                ("RRSTITCH_IDLE_SECS", "0"),
                ("RRSTITCH_LOG_FORMAT", "json"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        AwsStack {
            moto,
            chunks,
            results,
            env,
        }
    }

    /// The stack's environment plus `extra`.
    pub fn with(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// Puts an object into the chunk bucket.
    pub async fn put_chunk(&self, name: &str, body: impl Into<Bytes>) {
        self.chunks
            .put(name, body.into(), Precondition::None)
            .await
            .unwrap();
    }

    /// Puts the recorded form's chunks ([`crate::fixture`]) into the chunk bucket; returns
    /// their names in order.
    pub async fn upload_fixture(&self) -> Vec<String> {
        let names = crate::fixture::chunk_names();
        for n in &names {
            self.put_chunk(n, crate::fixture::chunk(n)).await;
        }
        names
    }

    /// The stitched session `guid` in the results bucket.
    pub async fn result(&self, guid: &str) -> Value {
        let got = self
            .results
            .get(&format!("{guid}.json"), 1 << 30)
            .await
            .unwrap();
        serde_json::from_slice(&got.body).unwrap()
    }
}

/// A handle on the S3 bucket `bucket` of the moto at `endpoint`.
pub async fn s3(endpoint: &str, bucket: &str) -> S3Store {
    S3Store::on_emulator(
        StorageUrl::S3 {
            bucket: bucket.into(),
        },
        endpoint,
    )
    .await
    .unwrap()
}

/// The function binary `name` in Lambda mode, taking its invocations from `api`.
pub fn lambda(name: &str, api: &RuntimeApi, env: &[(String, String)]) -> Group {
    let mut all = env.to_vec();
    all.extend(api.env(name));
    Group::spawn(name, bins::command(name, &all))
}

/// Both functions in Lambda mode, ingest on `ingest_env` and finalize on `finalize_env`, each
/// taking its invocations from a runtime API of its own: ingest's API, finalize's, and the two
/// processes (stopped when dropped).
pub async fn functions(
    ingest_env: &[(String, String)],
    finalize_env: &[(String, String)],
) -> (RuntimeApi, RuntimeApi, [Group; 2]) {
    let ingest_api = RuntimeApi::start().await;
    let finalize_api = RuntimeApi::start().await;
    let ingest = lambda("rrstitch-ingest", &ingest_api, ingest_env);
    let finalize = lambda("rrstitch-finalize", &finalize_api, finalize_env);
    (ingest_api, finalize_api, [ingest, finalize])
}

/// A Function URL request (payload format 2.0) posting `body` as JSON to `path`.
pub fn function_url_request(path: &str, body: &str) -> Value {
    json!({
        "version": "2.0",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": path}},
        "body": body,
        "isBase64Encoded": false
    })
}

/// S3 notifications carry keys form-URL-encoded.
fn s3_encode(key: &str) -> String {
    key.bytes()
        .map(|b| match b {
            b' ' => "+".to_owned(),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A notification of `keys` created in `bucket`, in the shape `aws_lambda_events` defines
/// (what Lambda delivers).
pub fn s3_event(bucket: &str, keys: &[String]) -> Value {
    let records = keys
        .iter()
        .map(|key| {
            let mut r = S3EventRecord::default();
            r.event_version = Some("2.1".into());
            r.event_source = Some("aws:s3".into());
            r.aws_region = Some("us-east-1".into());
            r.event_name = Some("ObjectCreated:Put".into());
            r.s3.schema_version = Some("1.0".into());
            r.s3.bucket.name = Some(bucket.into());
            r.s3.bucket.arn = Some(format!("arn:aws:s3:::{bucket}"));
            r.s3.object.key = Some(s3_encode(key));
            r.s3.object.size = Some(100);
            r.s3.object.e_tag = Some(format!("etag-{key}"));
            r
        })
        .collect();
    let mut event = S3Event::default();
    event.records = records;
    serde_json::to_value(event).unwrap()
}

/// The EventBridge schedule's event, which makes finalize sweep.
pub fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2025-05-02T12:30:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/rrstitch-sweep"],
        "detail": {}
    })
}
