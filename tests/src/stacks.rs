//! The GCP stack the flow and fault tests run the real functions on: fake-gcs-server with a
//! `chunks` and a `results` bucket, the Firestore emulator, and the environment that points
//! the binaries at them (everything idle at once, JSON logs); with the steps every GCP test
//! takes on it (a chunk uploaded and announced to ingest, a result read back).

use serde_json::Value;

use crate::bins::HttpFunction;
use crate::cloudevents::binary_event;
use crate::{FakeGcs, Firestore};

pub struct GcpStack {
    pub gcs: FakeGcs,
    pub firestore: Firestore,
    pub env: Vec<(String, String)>,
}

impl GcpStack {
    pub fn start() -> GcpStack {
        let gcs = FakeGcs::start();
        gcs.create_bucket("chunks");
        gcs.create_bucket("results");
        let firestore = Firestore::start();
        let mut env = gcs.env();
        env.extend(firestore.env());
        env.extend(
            [
                ("RRSTITCH_INDEX", "firestore"),
                ("RRSTITCH_CHUNKS", "gs://chunks"),
                ("RRSTITCH_RESULTS", "gs://results"),
                ("RRSTITCH_IDLE_SECS", "0"),
                ("RRSTITCH_LOG_FORMAT", "json"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        GcpStack {
            gcs,
            firestore,
            env,
        }
    }

    /// The stack's environment plus `extra`.
    pub fn with(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// Uploads a chunk to the chunk bucket and tells `ingest` about it (a binary-mode
    /// CloudEvent), which must record it.
    pub fn ingest_chunk(&self, ingest: &HttpFunction, name: &str, body: &[u8]) {
        self.gcs.upload("chunks", name, body);
        let reply = binary_event(ingest, "chunks", name, body.len());
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        assert_eq!(reply.body["outcome"], "recorded", "{name}: {}", reply.body);
    }

    /// The stitched session `guid` in the results bucket.
    pub fn result(&self, guid: &str) -> Value {
        let body = self
            .gcs
            .download("results", &format!("{guid}.json"))
            .unwrap_or_else(|| panic!("the result of {guid} exists"));
        serde_json::from_slice(&body).unwrap()
    }
}
