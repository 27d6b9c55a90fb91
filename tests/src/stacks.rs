//! The GCP stack the flow and fault tests run the real functions on: fake-gcs-server with a
//! `chunks` and a `results` bucket, the Firestore emulator, and the environment that points
//! the binaries at them (everything idle at once, JSON logs).

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
}
