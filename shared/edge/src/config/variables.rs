//! The documented list of variables: [`VARIABLES`], which the README's configuration table
//! repeats. It lives apart from the parsing so the list reads as documentation; the tests
//! below keep it, the README and what a full parse actually reads ([`super::Env::names_read`])
//! in step.

/// Every variable rrstitch reads: name, default, meaning.
pub const VARIABLES: &[(&str, &str, &str)] = &[
    (
        "RRSTITCH_CHUNKS",
        "(none)",
        "Chunk bucket: a directory, `gs://BUCKET[/prefix]` or `s3://BUCKET[/prefix]`.",
    ),
    (
        "RRSTITCH_CHUNK_PREFIX",
        "(empty)",
        "Only objects under this prefix are chunks.",
    ),
    (
        "RRSTITCH_RESULTS",
        "`.rrstitch/results`",
        "Results bucket or directory for `<session_guid>.json`.",
    ),
    (
        "RRSTITCH_RESULTS_PREFIX",
        "(empty)",
        "Prefix for result objects.",
    ),
    (
        "RRSTITCH_INDEX",
        "`sqlite:.rrstitch/index.sqlite`",
        "Session index: `sqlite:PATH` (a file; no empty path or `:memory:`), `firestore` or `dynamodb`.",
    ),
    (
        "RRSTITCH_FIRESTORE_PROJECT",
        "`GOOGLE_CLOUD_PROJECT`",
        "Firestore project id.",
    ),
    (
        "RRSTITCH_FIRESTORE_DATABASE",
        "`(default)`",
        "Firestore database id.",
    ),
    (
        "RRSTITCH_FIRESTORE_COLLECTION",
        "`rrstitch_sessions`",
        "Firestore collection of session documents.",
    ),
    (
        "RRSTITCH_DYNAMODB_TABLE",
        "`rrstitch`",
        "DynamoDB table of the session index.",
    ),
    (
        "RRSTITCH_INDEX_SHARDS",
        "`64`",
        "Shards the session index splits its idle index into, spreading its writes over as many ranges (Firestore, DynamoDB). Change it freely: sessions written under another count are still swept.",
    ),
    (
        "RRSTITCH_IDLE_SECS",
        "`300`",
        "Seconds without a new chunk before a sweep finalizes a session (at most 3155760000, a century).",
    ),
    (
        "RRSTITCH_LEASE_SECS",
        "`600`",
        "Seconds a finalizer's claim holds before another may take over (at most 3155760000, a century).",
    ),
    (
        "RRSTITCH_MAX_CHUNK_BYTES",
        "`67108864`",
        "Largest chunk object accepted (stored size; a size, see below).",
    ),
    (
        "RRSTITCH_MAX_DECOMPRESSED_BYTES",
        "`268435456`",
        "Largest size a gzip chunk may expand to (a size, see below).",
    ),
    (
        "RRSTITCH_OUTPUT_GZIP",
        "`false`",
        "Write results gzip-compressed as `<session_guid>.json.gz`.",
    ),
    (
        "RRSTITCH_READ_PARALLELISM",
        "`16`",
        "Chunk reads in flight per session.",
    ),
    (
        "RRSTITCH_SESSION_PARALLELISM",
        "CPU count",
        "Sessions stitched at once by a sweep or backfill.",
    ),
    (
        "RRSTITCH_SWEEP_LIMIT",
        "`500`",
        "Most sessions one sweep finalizes.",
    ),
    (
        "RRSTITCH_SWEEP_BUDGET_SECS",
        "`240`",
        "Seconds a sweep, reconcile or re-stitch may run (1 to 3155760000); then it takes no new work and answers. Keep it under the scheduler's and the function's timeout.",
    ),
    (
        "RRSTITCH_FINALIZE_MODE",
        "`inline`",
        "`inline`: a sweep stitches the idle sessions itself. `queue`: a sweep only dispatches, one message per idle session to `RRSTITCH_FINALIZE_TOPIC` or `RRSTITCH_FINALIZE_QUEUE`, and finalize workers stitch one session per message.",
    ),
    (
        "RRSTITCH_FINALIZE_TOPIC",
        "(none)",
        "Pub/Sub topic of the finalize queue, `projects/PROJECT/topics/TOPIC` (GCP, queue mode).",
    ),
    (
        "RRSTITCH_FINALIZE_QUEUE",
        "(none)",
        "SQS queue URL of the finalize queue (AWS, queue mode).",
    ),
    (
        "RRSTITCH_HTTP_HEADER_TIMEOUT_SECS",
        "`10`",
        "Seconds a connection may take to send a complete request head; then it is closed.",
    ),
    (
        "RRSTITCH_HTTP_BODY_TIMEOUT_SECS",
        "`30`",
        "Seconds a request may take to send its whole body after its head; then it is answered 408 and closed.",
    ),
    (
        "RRSTITCH_HTTP_MAX_CONNECTIONS",
        "`1024`",
        "Most connections an HTTP function keeps open; at the cap a new one displaces the longest-idle one, or waits.",
    ),
    (
        "RRSTITCH_HTTP_HOST",
        "`0.0.0.0`",
        "Address the functions listen on (`127.0.0.1` for local runs): an IPv4 or IPv6 address, or `localhost`.",
    ),
    (
        "RRSTITCH_LOG_FORMAT",
        "`text`",
        "`text`, or `json` (with `severity`, for Cloud Logging and CloudWatch).",
    ),
    (
        "RRSTITCH_METRICS",
        "`log` (functions), `off` (CLI)",
        "Metric lines (chunks, sessions, freshness, queue messages, sweeps, reconciles): `log` writes them as log lines (GCP's log-based metrics read them), `emf` adds CloudWatch's Embedded Metric Format (needs `RRSTITCH_LOG_FORMAT=json`), `off`.",
    ),
    (
        "RRSTITCH_METRICS_NAMESPACE",
        "`rrstitch`",
        "CloudWatch namespace of the `emf` metrics.",
    ),
    (
        "RUST_LOG",
        "`info`",
        "Log filter (tracing-subscriber syntax).",
    ),
    (
        "PORT",
        "`8080`",
        "HTTP port of the ingest and finalize functions (set by Cloud Run), 0 to 65535.",
    ),
    (
        "STORAGE_EMULATOR_HOST",
        "(none)",
        "GCS endpoint override, e.g. a fake-gcs-server.",
    ),
    (
        "AWS_ENDPOINT_URL",
        "(none)",
        "S3/DynamoDB/SQS endpoint override, e.g. a moto server.",
    ),
    (
        "PUBSUB_EMULATOR_HOST",
        "(none)",
        "Pub/Sub emulator `host:port` the finalize queue publishes to.",
    ),
    (
        "FIRESTORE_EMULATOR_HOST",
        "(none)",
        "Firestore emulator `host:port`.",
    ),
    (
        "RRSTITCH_INDEX_TTL_DAYS",
        "`90`",
        "Days cloud index records (sessions, chunks, rejects) live after their last activity (1 to 36525); Terraform sets it from `chunk_retention_days`.",
    ),
    (
        "RRSTITCH_TOMBSTONE_TTL_DAYS",
        "`400`",
        "Days a deleted session's tombstone refuses its chunks (longer than any late arrival; 1 to 36525, a century, for \"forever\").",
    ),
    (
        "RRSTITCH_REDACT",
        "(none)",
        "Redaction rules applied while stitching: a path to a JSON rules file, or the JSON itself when the value starts with `{` (see Privacy). Set but empty is refused, not taken as no rules.",
    ),
    (
        "RRSTITCH_RESTRICT",
        "(none)",
        "Ingestion restrictions: chunks refused by `drop_environments`, `drop_guids` (prefix or glob) or a per-environment `sample` rate; a path to a JSON file, or the JSON itself when the value starts with `{` (see Controls and cost) Set but empty is refused.",
    ),
    (
        "RRSTITCH_SESSION_MAX_BYTES",
        "(none: off)",
        "Per-session quota, a size (see below): once a session's recorded chunks would pass it, later chunks are refused as `over_quota` (recorded, kept in the bucket) and the result's `metadata.warnings` says how many bytes (see Controls and cost). Zero is refused.",
    ),
    (
        "RRSTITCH_KEEP_CHUNKS_OF_DELETED",
        "`0`",
        "`1`: leave a refused chunk of a deleted session in the bucket instead of deleting it.",
    ),
    (
        "RRSTITCH_SEGMENTS",
        "`0` (Terraform: `1`)",
        "`1`: also write `<guid>/manifest.json` and gzip'd segments `<guid>/<generation>/NNNNN.json.gz`, for progressive playback.",
    ),
    (
        "RRSTITCH_SEGMENT_BYTES",
        "`8MiB`",
        "Largest segment, a size (see below) of at most 256 MiB, what a browser loads as one document. Segments end before a checkout once they hold an eighth of it.",
    ),
    (
        "RRSTITCH_INSIGHTS",
        "`1`",
        "`0`: leave `metadata.insights` (clicks, active time, console counts, rage and dead clicks) out of results; only for measuring what they cost.",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Env, Settings};

    const README: &str = include_str!("../../../../README.md");

    /// The names in the first column of the README's configuration table.
    fn readme_table() -> Vec<&'static str> {
        let section = &README[README.find("## Configuration").unwrap()..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        section
            .lines()
            .filter_map(|line| line.strip_prefix("| `"))
            .filter_map(|rest| rest.split_once('`'))
            .map(|(name, _)| name)
            .collect()
    }

    /// Every name a full parse reads: settings that between them take every branch (each
    /// index backend, segments on, queue mode), all of which must parse.
    fn names_read_by_a_full_parse() -> Vec<&'static str> {
        let configurations: [&[(&str, &str)]; 3] = [
            &[],
            &[
                ("RRSTITCH_INDEX", "firestore"),
                ("GOOGLE_CLOUD_PROJECT", "p"),
            ],
            &[
                ("RRSTITCH_INDEX", "dynamodb"),
                ("RRSTITCH_SEGMENTS", "1"),
                ("RRSTITCH_SEGMENT_BYTES", "1MB"),
                ("RRSTITCH_FINALIZE_MODE", "queue"),
                ("RRSTITCH_FINALIZE_TOPIC", "projects/p/topics/t"),
            ],
        ];
        let mut read = Vec::new();
        for vars in configurations {
            let env = Env::new(|k| {
                vars.iter()
                    .find(|(name, _)| *name == k)
                    .map(|(_, v)| v.to_string())
            });
            Settings::from_reader(&env).unwrap_or_else(|e| panic!("{vars:?}: {e}"));
            read.extend(env.names_read());
        }
        read.sort_unstable();
        read.dedup();
        read
    }

    #[test]
    fn every_variable_read_is_in_the_table() {
        let table: Vec<&str> = VARIABLES.iter().map(|(name, _, _)| *name).collect();
        // A fallback documented as another variable's default (`GOOGLE_CLOUD_PROJECT`).
        let fallback = |name: &str| {
            VARIABLES
                .iter()
                .any(|(_, default, _)| *default == format!("`{name}`"))
        };
        let readme = readme_table();
        let read = names_read_by_a_full_parse();
        assert!(read.len() >= 35, "{read:?}");
        for name in &read {
            assert!(
                table.contains(name) || fallback(name),
                "{name} is read but not in VARIABLES"
            );
            assert!(
                readme.contains(name) || fallback(name),
                "{name} is read but not in the README's configuration table"
            );
        }
        // And the other way: every RRSTITCH_ variable documented is one the parse reads.
        for name in table.iter().filter(|n| n.starts_with("RRSTITCH_")) {
            assert!(read.contains(name), "{name} is in VARIABLES but never read");
        }
    }

    #[test]
    fn the_readme_documents_every_variable() {
        let readme = include_str!("../../../../README.md");
        for (name, _, _) in VARIABLES {
            assert!(readme.contains(&format!("`{name}`")), "README lacks {name}");
        }
        assert_eq!(
            readme_table().len(),
            VARIABLES.len(),
            "the README's table and VARIABLES list different variables"
        );
    }
}
