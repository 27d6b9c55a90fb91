//! The one configuration surface: environment variables, the same names in every binary.
//!
//! The binaries call [`Settings::from_env`] once at start-up and pass what it built down;
//! nothing else reads the environment — not the core, which takes its configuration as
//! values, and not the HTTP server, which takes its [`ServeLimits`] from [`Settings::serve`].
//! Every variable goes through one typed reader, [`Env`], which records the names it was
//! asked for, so a test parses a full configuration and checks each name read against
//! [`VARIABLES`], the documented list, and the README's table.
//!
//! A value that would make the process do something else than asked stops it at start-up,
//! with the variable named: an empty `RRSTITCH_REDACT` (no redaction), `sqlite:` with no path
//! (a throwaway database), a zero sweep budget or size, a port past 65535, a host that is not
//! an address, and any duration over [`MAX_DAYS`] (a century). Below that cap every duration
//! is used as given; where one becomes a timestamp or a deadline it saturates
//! ([`rrstitch::time`]), so nothing wraps into the past or panics.
//!
//! By concept: [`env`](mod@env) (the reader, durations), [`size`] (the byte-size grammar every size
//! the project takes is written in), `index` (backend, shards, TTL), `finalize` (inline or
//! queue), `documents` (redaction rules, restrictions), `serve` (address and limits of
//! the HTTP functions), `variables` (the documented list).

mod documents;
pub mod env;
mod finalize;
mod index;
mod serve;
pub mod size;
mod variables;

use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::http::ServeLimits;
use crate::telemetry::{LogFormat, Metrics};
use rrstitch::index::shard::Shards;
use rrstitch::index::IndexSpec;
use rrstitch::service::Options;

pub use env::{Env, MAX_DAYS, MAX_SECS};
pub use finalize::FinalizeMode;
pub use index::parse_index;
pub use size::{parse_bytes, SizeError};
pub use variables::VARIABLES;

#[derive(Debug, Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

/// Everything the environment configures.
#[derive(Debug, Clone)]
pub struct Settings {
    pub chunks: Option<String>,
    pub results: String,
    pub index: IndexSpec,
    /// How many idle-index shards this process stamps sessions with
    /// ([`rrstitch::index::shard`]); the default is sized in
    /// [`DEFAULT_SHARDS`](rrstitch::index::shard::DEFAULT_SHARDS)'s documentation.
    pub index_shards: Shards,
    /// How long cloud index records live after their last activity (`RRSTITCH_INDEX_TTL_DAYS`).
    pub index_ttl: Duration,
    pub log_format: LogFormat,
    /// `RRSTITCH_METRICS`, when set: functions write metric lines unless it says `off`; the
    /// CLI only when it is set.
    pub metrics: Option<Metrics>,
    /// `host:port` the HTTP functions listen on.
    pub http_addr: String,
    /// How long slow clients may hold the HTTP functions' connections, and how many may be
    /// open ([`crate::http::serve`]).
    pub serve: ServeLimits,
    /// Whether a sweep stitches idle sessions itself or queues them for workers.
    pub finalize: FinalizeMode,
    pub options: Options,
}

impl Settings {
    /// The process environment, parsed once.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_reader(&Env::process())
    }

    /// Builds settings from any variable source (tests pass a map). An empty variable counts
    /// as unset, but for the rules documents (`RRSTITCH_REDACT`, `RRSTITCH_RESTRICT`), where
    /// it would silently mean "no redaction" or "no restriction".
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        Self::from_reader(&Env::new(lookup))
    }

    /// Builds settings through `env`, which records every name read.
    pub fn from_reader(env: &Env) -> Result<Self, ConfigError> {
        let defaults = Options::default();
        let index = index::index_spec(env)?;
        let index_shards = index::shards(env)?;
        let log_format = match env.string("RRSTITCH_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => {
                return Err(ConfigError {
                    var: "RRSTITCH_LOG_FORMAT",
                    reason: format!("{other:?}: use text or json"),
                })
            }
        };
        let metrics = metrics_format(env, log_format)?;
        let options = Options {
            chunk_prefix: env.string("RRSTITCH_CHUNK_PREFIX").unwrap_or_default(),
            results_prefix: env.string("RRSTITCH_RESULTS_PREFIX").unwrap_or_default(),
            limits: size::limits(env)?,
            idle: env.seconds("RRSTITCH_IDLE_SECS", defaults.idle, 0, MAX_SECS)?,
            lease: env.seconds("RRSTITCH_LEASE_SECS", defaults.lease, 0, MAX_SECS)?,
            read_parallelism: env.number(
                "RRSTITCH_READ_PARALLELISM",
                defaults.read_parallelism as u64,
            )? as usize,
            session_parallelism: env.number(
                "RRSTITCH_SESSION_PARALLELISM",
                defaults.session_parallelism as u64,
            )? as usize,
            sweep_limit: env.number("RRSTITCH_SWEEP_LIMIT", defaults.sweep_limit as u64)? as usize,
            output_gzip: env.flag("RRSTITCH_OUTPUT_GZIP", false)?,
            segments: size::segments(env)?,
            part_size: defaults.part_size,
            // Zero would time out the first index query and blame the index.
            sweep_budget: env.seconds(
                "RRSTITCH_SWEEP_BUDGET_SECS",
                defaults.sweep_budget,
                1,
                MAX_SECS,
            )?,
            // Set by setup from RRSTITCH_CHUNKS once the bucket is open.
            chunk_bucket: None,
            tombstone_ttl: env.days("RRSTITCH_TOMBSTONE_TTL_DAYS", defaults.tombstone_ttl)?,
            keep_chunks_of_deleted: env.flag("RRSTITCH_KEEP_CHUNKS_OF_DELETED", false)?,
            redact: documents::redact_rules(env)?.map(Arc::new),
            restrict: documents::restrictions(env)?.map(Arc::new),
            session_max_bytes: size::session_max_bytes(env)?,
            insights: env.flag("RRSTITCH_INSIGHTS", true)?,
        };
        Ok(Settings {
            chunks: env.string("RRSTITCH_CHUNKS"),
            results: env
                .string("RRSTITCH_RESULTS")
                .unwrap_or_else(|| ".rrstitch/results".into()),
            index,
            index_shards,
            index_ttl: index::ttl(env)?,
            log_format,
            metrics,
            http_addr: serve::http_addr(env)?,
            serve: serve::serve_limits(env)?,
            finalize: finalize::finalize_mode(env)?,
            options,
        })
    }
}

/// `RRSTITCH_METRICS` (`log`, `emf` or `off`) and, for `emf`, `RRSTITCH_METRICS_NAMESPACE`.
/// The Embedded Metric Format is a JSON document, so it needs JSON log lines.
fn metrics_format(env: &Env, log_format: LogFormat) -> Result<Option<Metrics>, ConfigError> {
    let namespace = env.string("RRSTITCH_METRICS_NAMESPACE");
    let metrics = match env.string("RRSTITCH_METRICS").as_deref() {
        None => None,
        Some("off") => Some(Metrics::Off),
        Some("log") => Some(Metrics::Log),
        Some("emf") if log_format != LogFormat::Json => {
            return Err(ConfigError {
                var: "RRSTITCH_METRICS",
                reason: "emf lines are JSON: set RRSTITCH_LOG_FORMAT=json too".into(),
            })
        }
        Some("emf") => Some(Metrics::Emf {
            namespace: namespace.clone().unwrap_or_else(|| "rrstitch".into()),
        }),
        Some(other) => {
            return Err(ConfigError {
                var: "RRSTITCH_METRICS",
                reason: format!("{other:?}: use log, emf or off"),
            })
        }
    };
    if let Some(ns) = &namespace {
        // CloudWatch's rule for a namespace: 1–255 of these characters, not starting with `:`.
        let valid = !ns.is_empty()
            && ns.len() <= 255
            && !ns.starts_with(':')
            && ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/#:".contains(c));
        if !valid {
            return Err(ConfigError {
                var: "RRSTITCH_METRICS_NAMESPACE",
                reason: format!("{ns:?}: 1-255 of letters, digits and . _ - / # :"),
            });
        }
    }
    Ok(metrics)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rrstitch::index::shard::DEFAULT_SHARDS;
    use std::collections::HashMap;

    /// Settings from these variables alone.
    pub(crate) fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
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
    fn metrics_are_read_and_checked() {
        assert_eq!(settings(&[]).unwrap().metrics, None);
        assert_eq!(
            settings(&[("RRSTITCH_METRICS", "off")]).unwrap().metrics,
            Some(Metrics::Off)
        );
        let emf =
            settings(&[("RRSTITCH_METRICS", "emf"), ("RRSTITCH_LOG_FORMAT", "json")]).unwrap();
        assert_eq!(
            emf.metrics,
            Some(Metrics::Emf {
                namespace: "rrstitch".into()
            })
        );
        let err = settings(&[("RRSTITCH_METRICS", "emf")]).unwrap_err();
        assert_eq!(err.var, "RRSTITCH_METRICS");
        assert!(err.reason.contains("RRSTITCH_LOG_FORMAT=json"), "{err}");
        let err = settings(&[("RRSTITCH_METRICS", "statsd")]).unwrap_err();
        assert_eq!(err.var, "RRSTITCH_METRICS");
        let err = settings(&[("RRSTITCH_METRICS_NAMESPACE", "has space")]).unwrap_err();
        assert_eq!(err.var, "RRSTITCH_METRICS_NAMESPACE");
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
}
