# Metrics without an API call on the request path: the functions write one JSON log line per
# chunk, session, queue message, sweep and reconcile (shared/src/metrics.rs, target
# rrstitch::metrics), and Cloud Logging turns those lines into these log-based metrics. The
# alerts and the dashboard built on them are in monitoring.tf.
#
# tests/src/metrics.rs reads `log_metrics` and `metric_target` below and holds them to the
# lines the real functions write on the emulators (tests/tests/queue_gcp.rs): a field renamed
# in code, or misspelt here, fails the build.

locals {
  # The `target` field of every metric line.
  metric_target = "rrstitch::metrics"

  # One log-based metric per entry, over the lines whose `metric` field is `metric`:
  # a counter counts them; a distribution records the number in their `value` field. Each
  # label is extracted from the line's field of that name.
  log_metrics = {
    chunks = {
      description = "Object events ingested, by outcome (recorded, duplicate, rejected, ignored, failed) and reason (the reject's kind)."
      metric      = "chunk"
      kind        = "counter"
      value       = null
      unit        = "1"
      labels      = ["outcome", "reason"]
    }
    sessions = {
      description = "Finalize attempts, by outcome (written, reopened, unchanged, lost_claim, deleted, failed)."
      metric      = "session"
      kind        = "counter"
      value       = null
      unit        = "1"
      labels      = ["outcome"]
    }
    stitch_seconds = {
      description = "Seconds from claim to completion of each session written."
      metric      = "session"
      kind        = "distribution"
      value       = "stitch_seconds"
      unit        = "s"
      labels      = ["outcome"]
    }
    stitch_bytes = {
      description = "Bytes of each session result written."
      metric      = "session"
      kind        = "distribution"
      value       = "stitch_bytes"
      unit        = "By"
      labels      = []
    }
    freshness_seconds = {
      description = "Seconds from a session's last chunk upload to its result written: what a user waiting for a recording feels (the objective)."
      metric      = "session"
      kind        = "distribution"
      value       = "freshness_seconds"
      unit        = "s"
      labels      = []
    }
    queue_messages = {
      description = "Queue messages handled by finalize workers, by job (finalize, reconcile, unknown) and outcome (done, skipped, refused, retried, failed)."
      metric      = "queue_message"
      kind        = "counter"
      value       = null
      unit        = "1"
      labels      = ["job", "outcome"]
    }
    sweep_seconds = {
      description = "Seconds each sweep (mode inline) or dispatch (mode queue) took."
      metric      = "sweep"
      kind        = "distribution"
      value       = "sweep_seconds"
      unit        = "s"
      labels      = ["mode"]
    }
    sweep_deferred = {
      description = "Idle sessions each sweep or dispatch left for the next tick (budget or index)."
      metric      = "sweep"
      kind        = "distribution"
      value       = "sweep_deferred"
      unit        = "1"
      labels      = ["mode"]
    }
    reconcile_recovered = {
      description = "Chunks each reconcile pass or range found that no event had recorded."
      metric      = "reconcile"
      kind        = "distribution"
      value       = "reconcile_recovered"
      unit        = "1"
      labels      = []
    }
  }

  # The functions' own log entries, nothing else in the project.
  metric_lines = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=(\"${google_cloud_run_v2_service.ingest.name}\" OR \"${google_cloud_run_v2_service.finalize.name}\")",
    "jsonPayload.target=\"${local.metric_target}\"",
  ])
}

resource "google_logging_metric" "rrstitch" {
  for_each = local.log_metrics

  project     = var.project_id
  name        = "${var.name_prefix}/${each.key}"
  description = each.value.description
  # A distribution takes only the lines that carry its value (a session not stitched has no
  # stitch time): `:*` is Cloud Logging's "has this field".
  filter = join(" AND ", compact([
    local.metric_lines,
    "jsonPayload.metric=\"${each.value.metric}\"",
    each.value.value == null ? "" : "jsonPayload.${each.value.value}:*",
  ]))

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = each.value.kind == "counter" ? "INT64" : "DISTRIBUTION"
    unit        = each.value.unit

    dynamic "labels" {
      for_each = toset(each.value.labels)
      content {
        key        = labels.value
        value_type = "STRING"
      }
    }
  }

  label_extractors = { for label in each.value.labels : label => "EXTRACT(jsonPayload.${label})" }
  value_extractor  = each.value.value == null ? null : "EXTRACT(jsonPayload.${each.value.value})"

  # From 10 ms (or 1 byte, 1 chunk) up by doubling: 40 buckets reach past 10^11, so one set
  # fits seconds, bytes and counts alike.
  dynamic "bucket_options" {
    for_each = each.value.kind == "distribution" ? [1] : []
    content {
      exponential_buckets {
        num_finite_buckets = 40
        growth_factor      = 2
        scale              = each.value.unit == "s" ? 0.01 : 1
      }
    }
  }

  depends_on = [google_project_service.apis]
}
