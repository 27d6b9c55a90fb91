//! The one configuration surface: environment variables, the same names in every binary.
//!
//! The binaries call [`Settings::from_env`] once at start-up and pass what it built down;
//! the service never reads the environment itself. [`VARIABLES`] is the documented list: the
//! README's table is checked against it by a test, so the two cannot drift apart.
//!
//! A value that would make the process do something else than asked stops it at start-up,
//! with the variable named: an empty `RRSTITCH_REDACT` (no redaction), `sqlite:` with no path
//! (a throwaway database), a zero sweep budget, a port past 65535, a host that is not an
//! address, and any duration over [`MAX_DAYS`] (a century). Below that cap every duration is
//! used as given; where one becomes a timestamp or a deadline it saturates
//! ([`rrstitch::time`]), so nothing wraps into the past or panics.

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::telemetry::LogFormat;
use rrstitch::engine::redact::Rules;
use rrstitch::engine::{Limits, SegmentLimits};
use rrstitch::index::shard::{Shards, DEFAULT_SHARDS, MAX_SHARDS};
use rrstitch::index::IndexSpec;
use rrstitch::queue::QueueSpec;
use rrstitch::service::Options;

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
        "Largest chunk object accepted (stored size).",
    ),
    (
        "RRSTITCH_MAX_DECOMPRESSED_BYTES",
        "`268435456`",
        "Largest size a gzip chunk may expand to.",
    ),
    (
        "RRSTITCH_OUTPUT_GZIP",
        "`false`",
        "Write results gzip-compressed as `<session_guid>.json.gz`.",
    ),
    (
        "RRSTITCH_READ_PARALLELISM",
        "`8`",
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
        "Seconds a sweep or reconcile may run (1 to 3155760000); then it takes no new work and answers. Keep it under the scheduler's and the function's timeout.",
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
        "Largest segment (JSON bytes; `KiB`/`MiB` suffixes). Segments end before a checkout once they hold an eighth of it.",
    ),
    (
        "RRSTITCH_INSIGHTS",
        "`1`",
        "`0`: leave `metadata.insights` (clicks, active time, console counts, rage and dead clicks) out of results; only for measuring what they cost.",
    ),
];

/// The longest any duration variable may be, in days: a century, which is "forever" for a
/// tombstone or a lease, and keeps every deadline far inside what the index backends store.
pub const MAX_DAYS: u64 = 36_525;
/// [`MAX_DAYS`] in seconds, for the `_SECS` variables.
pub const MAX_SECS: u64 = MAX_DAYS * 86_400;

#[derive(Debug, Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// How idle sessions get finalized (`RRSTITCH_FINALIZE_MODE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinalizeMode {
    /// The sweep stitches every idle session itself: one process, no queue to run.
    Inline,
    /// The sweep publishes one message per idle session to this queue, and finalize workers
    /// (push deliveries, SQS batches) stitch them: the work spreads over as many instances as
    /// the platform starts.
    Queue(QueueSpec),
}

/// Where segments are cut: `RRSTITCH_SEGMENT_BYTES` (bytes, or with a `KiB`/`MiB` suffix)
/// or the engine's defaults.
fn segment_limits(get: &impl Fn(&str) -> Option<String>) -> Result<SegmentLimits, ConfigError> {
    const VAR: &str = "RRSTITCH_SEGMENT_BYTES";
    let Some(value) = get(VAR) else {
        return Ok(SegmentLimits::default());
    };
    let text = value.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, ""),
    };
    let unit = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 && unit > 0 => Ok(SegmentLimits::with_max_bytes(n.saturating_mul(unit))),
        _ => Err(ConfigError {
            var: VAR,
            reason: format!("{value:?}: use a positive size in bytes, KiB or MiB (e.g. 8MiB)"),
        }),
    }
}

/// Reads `RRSTITCH_FINALIZE_MODE` and, in queue mode, the one queue it needs.
fn finalize_mode(get: &impl Fn(&str) -> Option<String>) -> Result<FinalizeMode, ConfigError> {
    match get("RRSTITCH_FINALIZE_MODE").as_deref() {
        None | Some("inline") => return Ok(FinalizeMode::Inline),
        Some("queue") => {}
        Some(other) => {
            return Err(ConfigError {
                var: "RRSTITCH_FINALIZE_MODE",
                reason: format!("{other:?}: use inline or queue"),
            })
        }
    }
    match (get("RRSTITCH_FINALIZE_TOPIC"), get("RRSTITCH_FINALIZE_QUEUE")) {
        (Some(_), Some(_)) => Err(ConfigError {
            var: "RRSTITCH_FINALIZE_QUEUE",
            reason: "set RRSTITCH_FINALIZE_TOPIC (Pub/Sub) or RRSTITCH_FINALIZE_QUEUE (SQS), not both"
                .into(),
        }),
        (Some(topic), None) => {
            let parts: Vec<&str> = topic.split('/').collect();
            match parts.as_slice() {
                ["projects", p, "topics", t] if !p.is_empty() && !t.is_empty() => {
                    Ok(FinalizeMode::Queue(QueueSpec::PubSub { topic }))
                }
                _ => Err(ConfigError {
                    var: "RRSTITCH_FINALIZE_TOPIC",
                    reason: format!("{topic:?} is not projects/PROJECT/topics/TOPIC"),
                }),
            }
        }
        (None, Some(url)) if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(FinalizeMode::Queue(QueueSpec::Sqs { url }))
        }
        (None, Some(url)) => Err(ConfigError {
            var: "RRSTITCH_FINALIZE_QUEUE",
            reason: format!("{url:?} is not an SQS queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)"),
        }),
        (None, None) => Err(ConfigError {
            var: "RRSTITCH_FINALIZE_MODE",
            reason: "queue mode needs RRSTITCH_FINALIZE_TOPIC (Pub/Sub) or RRSTITCH_FINALIZE_QUEUE (SQS)"
                .into(),
        }),
    }
}

/// Everything the environment configures.
#[derive(Debug, Clone)]
pub struct Settings {
    pub chunks: Option<String>,
    pub results: String,
    pub index: IndexSpec,
    /// How many idle-index shards this process stamps sessions with
    /// ([`rrstitch::index::shard`]); the default is sized in [`DEFAULT_SHARDS`]'s documentation.
    pub index_shards: Shards,
    /// How long cloud index records live after their last activity (`RRSTITCH_INDEX_TTL_DAYS`).
    pub index_ttl: Duration,
    pub log_format: LogFormat,
    /// `host:port` the HTTP functions listen on.
    pub http_addr: String,
    /// Whether a sweep stitches idle sessions itself or queues them for workers.
    pub finalize: FinalizeMode,
    pub options: Options,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds settings from any variable source (tests pass a map). An empty variable counts
    /// as unset, but for the rules documents (`RRSTITCH_REDACT`, `RRSTITCH_RESTRICT`), where
    /// it would silently mean "no redaction" or "no restriction".
    pub fn from_lookup(raw: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |k: &str| raw(k).filter(|v| !v.is_empty());
        let defaults = Options::default();
        let number = |var: &'static str, default: u64| -> Result<u64, ConfigError> {
            match get(var) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| ConfigError {
                    var,
                    reason: format!("{v:?} is not a whole number"),
                }),
            }
        };
        // A whole number in `min..=max`, or an error saying which range.
        let bounded = |var: &'static str, default: u64, min: u64, max: u64| {
            let n = number(var, default)?;
            if (min..=max).contains(&n) {
                return Ok(n);
            }
            let (bound, limit) = if n < min {
                ("at least", min)
            } else {
                ("at most", max)
            };
            Err(ConfigError {
                var,
                reason: format!("{n}: use {bound} {limit}"),
            })
        };
        // Seconds, at most a century; `min` 1 where zero would mean "already over".
        let seconds = |var: &'static str, default: Duration, min: u64| {
            bounded(var, default.as_secs(), min, MAX_SECS).map(Duration::from_secs)
        };
        // Whole days, at least one (a zero TTL would expire records as written), at most a
        // century.
        let days = |var: &'static str, default: Duration| {
            bounded(var, default.as_secs() / 86_400, 1, MAX_DAYS)
                .map(|d| Duration::from_secs(d * 86_400))
        };
        let flag = |var: &'static str| -> Result<bool, ConfigError> {
            match get(var).as_deref().map(str::to_ascii_lowercase).as_deref() {
                None | Some("0" | "false" | "no" | "off") => Ok(false),
                Some("1" | "true" | "yes" | "on") => Ok(true),
                Some(other) => Err(ConfigError {
                    var,
                    reason: format!("{other:?} is not true/false"),
                }),
            }
        };
        let index = match get("RRSTITCH_INDEX").as_deref() {
            None => IndexSpec::Sqlite(".rrstitch/index.sqlite".into()),
            // SQLite opens a private temporary database for an empty path or `:memory:`:
            // sessions recorded there are gone when the process exits.
            Some(s) if s.starts_with("sqlite:") => match s["sqlite:".len()..].trim() {
                "" | ":memory:" => {
                    return Err(ConfigError {
                        var: "RRSTITCH_INDEX",
                        reason: format!(
                            "{s:?} names no file, so SQLite would use a throwaway database: \
                             use sqlite:PATH (e.g. sqlite:.rrstitch/index.sqlite)"
                        ),
                    })
                }
                _ => IndexSpec::Sqlite(s["sqlite:".len()..].into()),
            },
            Some("firestore") => IndexSpec::Firestore {
                project: get("RRSTITCH_FIRESTORE_PROJECT")
                    .or_else(|| get("GOOGLE_CLOUD_PROJECT"))
                    .ok_or(ConfigError {
                        var: "RRSTITCH_FIRESTORE_PROJECT",
                        reason: "required with RRSTITCH_INDEX=firestore".into(),
                    })?,
                database: get("RRSTITCH_FIRESTORE_DATABASE").unwrap_or_else(|| "(default)".into()),
                collection: get("RRSTITCH_FIRESTORE_COLLECTION")
                    .unwrap_or_else(|| "rrstitch_sessions".into()),
            },
            Some("dynamodb") => IndexSpec::DynamoDb {
                table: get("RRSTITCH_DYNAMODB_TABLE").unwrap_or_else(|| "rrstitch".into()),
            },
            Some(other) => {
                return Err(ConfigError {
                    var: "RRSTITCH_INDEX",
                    reason: format!("{other:?}: use sqlite:PATH, firestore or dynamodb"),
                })
            }
        };
        let shards = number("RRSTITCH_INDEX_SHARDS", u64::from(DEFAULT_SHARDS))?;
        if !(1..=u64::from(MAX_SHARDS)).contains(&shards) {
            return Err(ConfigError {
                var: "RRSTITCH_INDEX_SHARDS",
                reason: format!("{shards}: use 1 to {MAX_SHARDS}"),
            });
        }
        let index_shards = Shards::new(shards as u32);
        let log_format = match get("RRSTITCH_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    var: "RRSTITCH_LOG_FORMAT",
                    reason: format!("{other:?}: use text or json"),
                })
            }
        };
        let max_chunk_bytes = number("RRSTITCH_MAX_CHUNK_BYTES", defaults.limits.max_chunk_bytes)?;
        let options = Options {
            chunk_prefix: get("RRSTITCH_CHUNK_PREFIX").unwrap_or_default(),
            results_prefix: get("RRSTITCH_RESULTS_PREFIX").unwrap_or_default(),
            limits: Limits {
                max_chunk_bytes,
                max_decompressed_bytes: number(
                    "RRSTITCH_MAX_DECOMPRESSED_BYTES",
                    defaults.limits.max_decompressed_bytes,
                )?,
            },
            idle: seconds("RRSTITCH_IDLE_SECS", defaults.idle, 0)?,
            lease: seconds("RRSTITCH_LEASE_SECS", defaults.lease, 0)?,
            read_parallelism: number(
                "RRSTITCH_READ_PARALLELISM",
                defaults.read_parallelism as u64,
            )? as usize,
            session_parallelism: number(
                "RRSTITCH_SESSION_PARALLELISM",
                defaults.session_parallelism as u64,
            )? as usize,
            sweep_limit: number("RRSTITCH_SWEEP_LIMIT", defaults.sweep_limit as u64)? as usize,
            output_gzip: flag("RRSTITCH_OUTPUT_GZIP")?,
            segments: match flag("RRSTITCH_SEGMENTS")? {
                true => Some(segment_limits(&get)?),
                false => None,
            },
            part_size: defaults.part_size,
            // Zero would time out the first index query and blame the index.
            sweep_budget: seconds("RRSTITCH_SWEEP_BUDGET_SECS", defaults.sweep_budget, 1)?,
            // Set by setup from RRSTITCH_CHUNKS once the bucket is open.
            chunk_bucket: None,
            tombstone_ttl: days("RRSTITCH_TOMBSTONE_TTL_DAYS", defaults.tombstone_ttl)?,
            keep_chunks_of_deleted: flag("RRSTITCH_KEEP_CHUNKS_OF_DELETED")?,
            redact: redact_rules(&raw)?.map(Arc::new),
            restrict: restrictions(&raw)?.map(Arc::new),
            insights: get("RRSTITCH_INSIGHTS").is_none() || flag("RRSTITCH_INSIGHTS")?,
        };
        Ok(Settings {
            chunks: get("RRSTITCH_CHUNKS"),
            results: get("RRSTITCH_RESULTS").unwrap_or_else(|| ".rrstitch/results".into()),
            index,
            index_shards,
            index_ttl: days("RRSTITCH_INDEX_TTL_DAYS", rrstitch::index::RECORD_TTL)?,
            log_format,
            http_addr: http_addr(&get, bounded("PORT", 8080, 0, u64::from(u16::MAX))? as u16)?,
            finalize: finalize_mode(&get)?,
            options,
        })
    }
}

/// `RRSTITCH_HTTP_HOST` and `port` as the `host:port` the functions bind: the host must be an
/// IP address (or `localhost`), checked here so a typo is named rather than failing the bind
/// with a resolver error that names nothing.
fn http_addr(get: &impl Fn(&str) -> Option<String>, port: u16) -> Result<String, ConfigError> {
    const VAR: &str = "RRSTITCH_HTTP_HOST";
    let host = get(VAR).unwrap_or_else(|| "0.0.0.0".into());
    let text = host.trim();
    let unbracketed = text
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(text);
    let ip = match unbracketed.parse::<std::net::IpAddr>() {
        Ok(ip) => ip,
        Err(_) if text.eq_ignore_ascii_case("localhost") => std::net::Ipv4Addr::LOCALHOST.into(),
        Err(_) => {
            return Err(ConfigError {
                var: VAR,
                reason: format!(
                    "{host:?} is not an IP address: use e.g. 0.0.0.0, 127.0.0.1, :: or localhost \
                     (the port is PORT)"
                ),
            })
        }
    };
    Ok(std::net::SocketAddr::new(ip, port).to_string())
}

/// Reads `RRSTITCH_REDACT` once at start-up ([`json_document`]): a missing file or a bad rule
/// stops the process rather than stitching unmasked sessions.
fn redact_rules(raw: &impl Fn(&str) -> Option<String>) -> Result<Option<Rules>, ConfigError> {
    const VAR: &str = "RRSTITCH_REDACT";
    let Some((origin, text)) = json_document(raw, VAR)? else {
        return Ok(None);
    };
    Rules::from_json(&text).map(Some).map_err(|e| ConfigError {
        var: VAR,
        reason: format!("{origin}: {e}"),
    })
}

/// Reads a JSON rules document from `var` (`raw`: the environment *without* empty values
/// dropped): inline when the value starts with `{` (so a Cloud Run or Lambda variable can
/// carry it), else the path of a file. Returns where it came from, for messages, and its text.
/// A variable set but empty is refused: a template that lost its value would otherwise read
/// as "no rules", like every other empty variable — silently no redaction, no restriction.
fn json_document(
    raw: &impl Fn(&str) -> Option<String>,
    var: &'static str,
) -> Result<Option<(String, String)>, ConfigError> {
    let Some(value) = raw(var) else {
        return Ok(None);
    };
    if value.trim().is_empty() {
        return Err(ConfigError {
            var,
            reason: "set but empty: give a JSON document or a file path, or unset it for none"
                .into(),
        });
    }
    if value.trim_start().starts_with('{') {
        return Ok(Some(("inline rules".to_owned(), value)));
    }
    let text = std::fs::read_to_string(&value).map_err(|e| ConfigError {
        var,
        reason: format!("rules file {value}: {e}"),
    })?;
    Ok(Some((format!("rules file {value}"), text)))
}

/// Reads `RRSTITCH_RESTRICT` once at start-up: a bad document stops the process rather than
/// recording chunks its operator meant to drop.
fn restrictions(
    raw: &impl Fn(&str) -> Option<String>,
) -> Result<Option<rrstitch::engine::restrict::Restrictions>, ConfigError> {
    const VAR: &str = "RRSTITCH_RESTRICT";
    let Some((origin, text)) = json_document(raw, VAR)? else {
        return Ok(None);
    };
    rrstitch::engine::restrict::Restrictions::from_json(&text)
        .map(Some)
        .map_err(|e| ConfigError {
            var: VAR,
            reason: format!("{origin}: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn restrictions_come_inline_or_from_a_file_and_bad_ones_stop_start_up() {
        assert!(settings(&[]).unwrap().options.restrict.is_none());
        let inline = settings(&[(
            "RRSTITCH_RESTRICT",
            r#"{"drop_environments": ["staging"], "sample": {"production": 0.25}}"#,
        )])
        .unwrap();
        let rules = inline.options.restrict.unwrap();
        assert_eq!(rules.drop_environments, ["staging"]);
        assert_eq!(rules.sample.get("production"), Some(&0.25));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("restrict.json");
        std::fs::write(&path, r#"{"drop_guids": ["bot-*"]}"#).unwrap();
        let file = settings(&[("RRSTITCH_RESTRICT", path.to_str().unwrap())]).unwrap();
        assert_eq!(file.options.restrict.unwrap().drop_guids.len(), 1);
        for bad in [
            r#"{"sample": {"production": 2}}"#,
            r#"{"drop_guid": ["x"]}"#,
            "",
            "  ",
            "/no/such/restrict.json",
        ] {
            let err = settings(&[("RRSTITCH_RESTRICT", bad)]).unwrap_err();
            assert_eq!(err.var, "RRSTITCH_RESTRICT", "{bad:?}");
        }
    }

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_the_embedded_local_mode() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.index, IndexSpec::Sqlite(".rrstitch/index.sqlite".into()));
        assert_eq!(s.results, ".rrstitch/results");
        assert_eq!(s.options.idle, Duration::from_secs(300));
        assert_eq!(s.options.limits.max_chunk_bytes, 64 * 1024 * 1024);
        assert_eq!(s.log_format, LogFormat::Text);
        assert!(!s.options.output_gzip);
        assert_eq!(s.index_shards, Shards::new(DEFAULT_SHARDS));
        assert_eq!(s.index_shards.count(), 64);
    }

    #[test]
    fn segments_are_off_unless_asked_for_and_sized_in_bytes() {
        assert_eq!(settings(&[]).unwrap().options.segments, None);
        let on = settings(&[("RRSTITCH_SEGMENTS", "1")]).unwrap();
        assert_eq!(on.options.segments, Some(SegmentLimits::default()));
        let small = settings(&[
            ("RRSTITCH_SEGMENTS", "on"),
            ("RRSTITCH_SEGMENT_BYTES", "2MiB"),
        ])
        .unwrap();
        assert_eq!(small.options.segments.unwrap().max_bytes, 2 << 20);
        assert_eq!(small.options.segments.unwrap().checkout_bytes, 256 << 10);
        let plain = settings(&[
            ("RRSTITCH_SEGMENTS", "1"),
            ("RRSTITCH_SEGMENT_BYTES", "4096"),
        ])
        .unwrap();
        assert_eq!(plain.options.segments.unwrap().max_bytes, 4096);
        for bad in ["0", "8GB", "MiB", "-1"] {
            let err = settings(&[("RRSTITCH_SEGMENTS", "1"), ("RRSTITCH_SEGMENT_BYTES", bad)])
                .unwrap_err();
            assert_eq!(err.var, "RRSTITCH_SEGMENT_BYTES", "{bad}");
        }
    }

    #[test]
    fn insights_are_on_unless_turned_off() {
        assert!(settings(&[]).unwrap().options.insights);
        assert!(
            settings(&[("RRSTITCH_INSIGHTS", "1")])
                .unwrap()
                .options
                .insights
        );
        assert!(
            !settings(&[("RRSTITCH_INSIGHTS", "0")])
                .unwrap()
                .options
                .insights
        );
        assert!(
            !settings(&[("RRSTITCH_INSIGHTS", "off")])
                .unwrap()
                .options
                .insights
        );
        let err = settings(&[("RRSTITCH_INSIGHTS", "sometimes")]).unwrap_err();
        assert_eq!(err.var, "RRSTITCH_INSIGHTS");
    }

    #[test]
    fn the_index_ttl_is_whole_days_and_never_zero() {
        assert_eq!(
            settings(&[]).unwrap().index_ttl,
            Duration::from_secs(90 * 86_400)
        );
        let s = settings(&[("RRSTITCH_INDEX_TTL_DAYS", "31")]).unwrap();
        assert_eq!(s.index_ttl, Duration::from_secs(31 * 86_400));
        let zero = settings(&[("RRSTITCH_INDEX_TTL_DAYS", "0")]).unwrap_err();
        assert_eq!(zero.var, "RRSTITCH_INDEX_TTL_DAYS");
        assert!(settings(&[("RRSTITCH_INDEX_TTL_DAYS", "1.5")]).is_err());
    }

    #[test]
    fn reads_every_knob() {
        let s = settings(&[
            ("RRSTITCH_INDEX", "firestore"),
            ("GOOGLE_CLOUD_PROJECT", "p"),
            ("RRSTITCH_IDLE_SECS", "60"),
            ("RRSTITCH_OUTPUT_GZIP", "true"),
            ("RRSTITCH_CHUNK_PREFIX", "in/"),
            ("RRSTITCH_LOG_FORMAT", "json"),
            ("RRSTITCH_INDEX_SHARDS", "64"),
        ])
        .unwrap();
        assert_eq!(s.index_shards.count(), 64);
        assert_eq!(
            s.index,
            IndexSpec::Firestore {
                project: "p".into(),
                database: "(default)".into(),
                collection: "rrstitch_sessions".into()
            }
        );
        assert_eq!(s.options.idle, Duration::from_secs(60));
        assert!(s.options.output_gzip);
        assert_eq!(s.options.chunk_prefix, "in/");
        assert_eq!(s.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_values_name_the_variable() {
        let e = settings(&[("RRSTITCH_IDLE_SECS", "5m")]).unwrap_err();
        assert_eq!(e.var, "RRSTITCH_IDLE_SECS");
        assert_eq!(
            settings(&[("RRSTITCH_INDEX", "redis")]).unwrap_err().var,
            "RRSTITCH_INDEX"
        );
        assert_eq!(
            settings(&[("RRSTITCH_INDEX", "firestore")])
                .unwrap_err()
                .var,
            "RRSTITCH_FIRESTORE_PROJECT"
        );
        for shards in ["0", "5000", "many"] {
            assert_eq!(
                settings(&[("RRSTITCH_INDEX_SHARDS", shards)])
                    .unwrap_err()
                    .var,
                "RRSTITCH_INDEX_SHARDS"
            );
        }
        assert_eq!(
            settings(&[("RRSTITCH_OUTPUT_GZIP", "maybe")])
                .unwrap_err()
                .var,
            "RRSTITCH_OUTPUT_GZIP"
        );
    }

    #[test]
    fn finalize_mode_names_its_queue() {
        assert_eq!(settings(&[]).unwrap().finalize, FinalizeMode::Inline);
        // A queue named without queue mode is not used.
        let inline = settings(&[("RRSTITCH_FINALIZE_TOPIC", "projects/p/topics/t")]).unwrap();
        assert_eq!(inline.finalize, FinalizeMode::Inline);
        let pubsub = settings(&[
            ("RRSTITCH_FINALIZE_MODE", "queue"),
            ("RRSTITCH_FINALIZE_TOPIC", "projects/p/topics/finalize"),
        ])
        .unwrap();
        assert_eq!(
            pubsub.finalize,
            FinalizeMode::Queue(QueueSpec::PubSub {
                topic: "projects/p/topics/finalize".into()
            })
        );
        let url = "https://sqs.us-east-1.amazonaws.com/123456789012/rrstitch-finalize";
        let sqs = settings(&[
            ("RRSTITCH_FINALIZE_MODE", "queue"),
            ("RRSTITCH_FINALIZE_QUEUE", url),
        ])
        .unwrap();
        assert_eq!(
            sqs.finalize,
            FinalizeMode::Queue(QueueSpec::Sqs { url: url.into() })
        );
        for (vars, var) in [
            (
                vec![("RRSTITCH_FINALIZE_MODE", "queue")],
                "RRSTITCH_FINALIZE_MODE",
            ),
            (
                vec![("RRSTITCH_FINALIZE_MODE", "fanout")],
                "RRSTITCH_FINALIZE_MODE",
            ),
            (
                vec![
                    ("RRSTITCH_FINALIZE_MODE", "queue"),
                    ("RRSTITCH_FINALIZE_TOPIC", "finalize"),
                ],
                "RRSTITCH_FINALIZE_TOPIC",
            ),
            (
                vec![
                    ("RRSTITCH_FINALIZE_MODE", "queue"),
                    ("RRSTITCH_FINALIZE_QUEUE", "rrstitch-finalize"),
                ],
                "RRSTITCH_FINALIZE_QUEUE",
            ),
            (
                vec![
                    ("RRSTITCH_FINALIZE_MODE", "queue"),
                    ("RRSTITCH_FINALIZE_TOPIC", "projects/p/topics/t"),
                    ("RRSTITCH_FINALIZE_QUEUE", url),
                ],
                "RRSTITCH_FINALIZE_QUEUE",
            ),
        ] {
            assert_eq!(settings(&vars).unwrap_err().var, var, "{vars:?}");
        }
    }

    #[test]
    fn redaction_rules_come_inline_or_from_a_file_and_bad_ones_stop_start_up() {
        assert!(settings(&[]).unwrap().options.redact.is_none());
        let inline = settings(&[("RRSTITCH_REDACT", r#"{"mask_inputs": true}"#)]).unwrap();
        assert!(inline.options.redact.unwrap().mask_inputs);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rules.json");
        std::fs::write(&path, r#"{"drop_plugins": ["rrweb/console@1"]}"#).unwrap();
        let file = settings(&[("RRSTITCH_REDACT", path.to_str().unwrap())]).unwrap();
        assert_eq!(
            file.options.redact.unwrap().drop_plugins,
            ["rrweb/console@1"]
        );

        std::fs::write(&path, r#"{"mask_input": true}"#).unwrap();
        let err = settings(&[("RRSTITCH_REDACT", path.to_str().unwrap())]).unwrap_err();
        assert_eq!(err.var, "RRSTITCH_REDACT");
        let text = err.to_string();
        assert!(
            text.contains("rules.json") && text.contains("mask_input"),
            "{text}"
        );
        let missing = dir.path().join("nope.json");
        let err = settings(&[("RRSTITCH_REDACT", missing.to_str().unwrap())]).unwrap_err();
        assert!(err.to_string().contains("nope.json"), "{err}");
        let err =
            settings(&[("RRSTITCH_REDACT", r#"{"mask": [{"selector": "a b"}]}"#)]).unwrap_err();
        assert!(
            err.to_string().contains("inline rules") && err.to_string().contains("\"a b\""),
            "{err}"
        );
    }

    #[test]
    fn durations_past_what_a_deadline_can_hold_are_refused_naming_the_variable() {
        for var in [
            "RRSTITCH_IDLE_SECS",
            "RRSTITCH_LEASE_SECS",
            "RRSTITCH_SWEEP_BUDGET_SECS",
            "RRSTITCH_TOMBSTONE_TTL_DAYS",
            "RRSTITCH_INDEX_TTL_DAYS",
        ] {
            let err = settings(&[(var, "999999999999")]).unwrap_err();
            assert_eq!(err.var, var, "{err}");
            assert!(err.to_string().contains("at most"), "{err}");
        }
        // The largest accepted values are taken as given: a century is "forever" here.
        let s = settings(&[
            ("RRSTITCH_TOMBSTONE_TTL_DAYS", "36525"),
            ("RRSTITCH_LEASE_SECS", "3155760000"),
            ("RRSTITCH_IDLE_SECS", "3155760000"),
            ("RRSTITCH_SWEEP_BUDGET_SECS", "3155760000"),
        ])
        .unwrap();
        assert_eq!(
            s.options.tombstone_ttl,
            Duration::from_secs(36_525 * 86_400)
        );
        assert_eq!(s.options.lease, Duration::from_secs(3_155_760_000));
    }

    #[test]
    fn settings_that_would_silently_do_something_else_stop_start_up() {
        for (var, value) in [
            // Empty rules would mean "no redaction": fail closed.
            ("RRSTITCH_REDACT", ""),
            ("RRSTITCH_REDACT", "   "),
            // An empty SQLite path is a throwaway temporary database.
            ("RRSTITCH_INDEX", "sqlite:"),
            ("RRSTITCH_INDEX", "sqlite: "),
            ("RRSTITCH_INDEX", "sqlite::memory:"),
            // A zero budget would report the index as down.
            ("RRSTITCH_SWEEP_BUDGET_SECS", "0"),
            ("PORT", "70000"),
            ("PORT", "0x50"),
            ("RRSTITCH_HTTP_HOST", "not-a-host"),
            ("RRSTITCH_HTTP_HOST", "127.0.0.1:80"),
        ] {
            match settings(&[(var, value)]) {
                Err(err) => assert_eq!(err.var, var, "{var}={value:?}: {err}"),
                Ok(_) => panic!("{var}={value:?} was accepted"),
            }
        }
        // Other empty variables still count as unset.
        assert_eq!(
            settings(&[("RRSTITCH_IDLE_SECS", "")])
                .unwrap()
                .options
                .idle,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn the_http_address_is_an_ip_and_a_port() {
        assert_eq!(settings(&[]).unwrap().http_addr, "0.0.0.0:8080");
        let s = settings(&[("RRSTITCH_HTTP_HOST", "127.0.0.1"), ("PORT", "9000")]).unwrap();
        assert_eq!(s.http_addr, "127.0.0.1:9000");
        let v6 = settings(&[("RRSTITCH_HTTP_HOST", "::1")]).unwrap();
        assert_eq!(v6.http_addr, "[::1]:8080");
        let named = settings(&[("RRSTITCH_HTTP_HOST", "localhost")]).unwrap();
        assert_eq!(named.http_addr, "127.0.0.1:8080");
    }

    #[test]
    fn every_variable_read_is_in_the_table() {
        let source = include_str!("config.rs");
        let table: Vec<&str> = VARIABLES.iter().map(|(name, _, _)| *name).collect();
        let body = &source[..source.find("#[cfg(test)]").unwrap()];
        for quoted in body.split('"').skip(1).step_by(2) {
            let read = quoted.starts_with("RRSTITCH_")
                && quoted.bytes().all(|b| b.is_ascii_uppercase() || b == b'_');
            if read {
                assert!(
                    table.contains(&quoted),
                    "{quoted} is read but not in VARIABLES"
                );
            }
        }
    }

    #[test]
    fn the_readme_documents_every_variable() {
        let readme = include_str!("../../../README.md");
        for (name, _, _) in VARIABLES {
            assert!(readme.contains(&format!("`{name}`")), "README lacks {name}");
        }
    }
}
