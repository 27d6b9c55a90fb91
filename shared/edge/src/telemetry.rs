//! Logging set-up shared by every binary: human text on a terminal, or one JSON object per
//! line with a `severity` field, which is what Cloud Logging (and CloudWatch Insights) parse.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use rrstitch::metrics;
use rrstitch::time::Millis;

/// How log lines look: `Text` for a terminal, `Json` for Cloud Logging and CloudWatch
/// (`RRSTITCH_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What becomes of the library's metric lines ([`rrstitch::metrics`]), `RRSTITCH_METRICS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Metrics {
    /// Not written.
    Off,
    /// Written as log lines with their fields (Cloud Logging's log-based metrics read them).
    Log,
    /// Written with a CloudWatch Embedded Metric Format directive in this namespace, which
    /// CloudWatch Logs turns into metrics as the line arrives (JSON log lines only).
    Emf { namespace: String },
}

/// Installs the global subscriber; logs go to stderr. `RUST_LOG` filters, else
/// `default_filter` (functions log every event at `info`; the CLI prints its own summaries
/// and logs only warnings). Metric lines are written at `info` whatever the filter says,
/// unless `metrics` is [`Metrics::Off`]. Calling it twice is harmless (the second call does
/// nothing).
pub fn init(format: LogFormat, default_filter: &str, metrics: Metrics) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let level = if metrics == Metrics::Off {
        "off"
    } else {
        "info"
    };
    let filter = filter.add_directive(
        format!("{}={level}", metrics::TARGET)
            .parse()
            .expect("a valid directive"),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let emf = match metrics {
        Metrics::Emf { namespace } => Some(namespace),
        _ => None,
    };
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.event_format(CloudJson { emf }).try_init(),
    };
}

/// [`init`] for a deployed function: `info` by default, and metric lines unless
/// `RRSTITCH_METRICS` turns them off.
pub fn init_function(settings: &crate::config::Settings) {
    init(
        settings.log_format,
        "info",
        settings.metrics.clone().unwrap_or(Metrics::Log),
    );
}

/// The Embedded Metric Format directive for a metric line's fields `line` (see
/// <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>):
/// the line's dimensions and the values it carries, by its kind's [`metrics::Spec`]. `None`
/// for a line that is no metric the library declares.
pub fn emf_directive(line: &Map<String, Value>, namespace: &str, at: Millis) -> Option<Value> {
    let spec = metrics::spec(line.get("metric")?.as_str()?)?;
    let dimensions: Vec<&str> = spec
        .dimensions
        .iter()
        .copied()
        .filter(|d| {
            line.get(*d)
                .and_then(Value::as_str)
                .is_some_and(|v| !v.is_empty())
        })
        .collect();
    let values: Vec<Value> = spec
        .values
        .iter()
        .filter(|(name, _)| line.get(*name).is_some_and(Value::is_number))
        .map(|(name, unit)| serde_json::json!({"Name": name, "Unit": unit.cloudwatch()}))
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(serde_json::json!({
        "Timestamp": at.0,
        "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [dimensions],
            "Metrics": values,
        }],
    }))
}

/// One JSON object per event: `severity`, `message`, `time`, `target`, the event's fields,
/// and the enclosing spans (with their fields) under `spans`; on a metric line, with
/// `emf` set, the Embedded Metric Format directive `_aws` for that namespace.
#[derive(Debug, Clone, Default)]
pub struct CloudJson {
    pub emf: Option<String>,
}

impl<S, N> FormatEvent<S, N> for CloudJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = FieldMap(Map::new());
        event.record(&mut fields);
        let mut line = Map::new();
        line.insert(
            "severity".into(),
            severity(*event.metadata().level()).into(),
        );
        line.insert(
            "message".into(),
            fields
                .0
                .remove("message")
                .unwrap_or(Value::String(String::new())),
        );
        let now = Millis::now();
        line.insert("time".into(), now.to_rfc3339().into());
        line.insert("target".into(), event.metadata().target().into());
        line.extend(fields.0);
        if let (Some(namespace), metrics::TARGET) = (&self.emf, event.metadata().target()) {
            if let Some(directive) = emf_directive(&line, namespace, now) {
                line.insert("_aws".into(), directive);
            }
        }
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let ext = span.extensions();
                    let formatted = ext
                        .get::<FormattedFields<N>>()
                        .map(|f| f.fields.as_str().to_owned())
                        .unwrap_or_default();
                    Value::String(format!("{}{{{formatted}}}", span.name()))
                })
                .collect();
            if !spans.is_empty() {
                line.insert("spans".into(), Value::Array(spans));
            }
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

fn severity(level: Level) -> &'static str {
    match level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

struct FieldMap(Map<String, Value>);

impl Visit for FieldMap {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn json_lines_carry_severity_message_and_fields() {
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(CloudJson::default())
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("finalize", session_guid = "g1");
            let _e = span.enter();
            tracing::warn!(object = "a.json", count = 3u64, "chunk rejected");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(line["severity"], "WARNING");
        assert_eq!(line["message"], "chunk rejected");
        assert_eq!(line["object"], "a.json");
        assert_eq!(line["count"], 3);
        assert!(line["spans"][0].as_str().unwrap().contains("g1"), "{line}");
    }

    #[test]
    fn metric_lines_carry_an_emf_directive_for_their_spec() {
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(CloudJson {
                emf: Some("rrstitch-test".into()),
            })
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            metrics::chunk(metrics::ChunkOutcome::Rejected, "not_json");
            metrics::session(metrics::SessionOutcome::LostClaim, None);
            tracing::info!(metric = "chunk", "not on the metrics target");
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{out}");
        let chunk = &lines[0];
        assert_eq!(chunk["outcome"], "rejected");
        assert_eq!(chunk["chunks"], 1);
        let directive = &chunk["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "rrstitch-test");
        assert_eq!(
            directive["Dimensions"],
            serde_json::json!([["outcome", "reason"]])
        );
        assert_eq!(
            directive["Metrics"],
            serde_json::json!([{"Name": "chunks", "Unit": "Count"}])
        );
        assert!(chunk["_aws"]["Timestamp"].as_i64().unwrap() > 1_700_000_000_000);
        // Values a line does not carry are not declared: CloudWatch would drop the document.
        let session = &lines[1]["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(
            session["Metrics"],
            serde_json::json!([{"Name": "sessions", "Unit": "Count"}])
        );
        assert!(lines[2].get("_aws").is_none(), "{}", lines[2]);
    }

    #[test]
    fn a_line_of_no_declared_metric_gets_no_directive() {
        let mut line = Map::new();
        line.insert("metric".into(), "chunks_typo".into());
        line.insert("chunks".into(), 1.into());
        assert!(emf_directive(&line, "ns", Millis(1)).is_none());
        line.insert("metric".into(), "chunk".into());
        assert!(emf_directive(&line, "ns", Millis(1)).is_some());
        line.remove("chunks");
        assert!(emf_directive(&line, "ns", Millis(1)).is_none());
    }
}
