# The objective, the alerts and the dashboard, over the log-based metrics of metrics.tf and
# the platform's own metrics. The README's "Operating" section says what each alert means and
# what to do about it. Notifications go to alert_notification_channels (none: the incidents
# only show in Cloud Monitoring).

locals {
  # The objective: 95 % of sessions are written within this many seconds of their last
  # chunk's upload (by default the idle wait plus five minutes for the sweep and the stitch).
  freshness_objective_secs = coalesce(var.freshness_objective_secs, var.idle_secs + 300)

  user_metric = { for k, m in google_logging_metric.rrstitch : k => "metric.type=\"logging.googleapis.com/user/${m.name}\"" }

  # Where dead letters wait: the chunk events' hold subscription (ingest_trigger = "pubsub"),
  # and in queue mode the finalize jobs' one. Eventarc's subscription has no dead-letter topic,
  # so with eventarc inline there is none, and no dead-letter alert (a policy needs a
  # condition): a chunk event Eventarc drops is seen by reconcile (reconcile_recovered).
  dead_letter_holds = concat(
    google_pubsub_subscription.dead_letters_hold[*].name,
    google_pubsub_subscription.finalize_dead_letters_hold[*].name,
  )
}

resource "google_monitoring_alert_policy" "freshness" {
  project      = var.project_id
  display_name = "${var.name_prefix}: sessions late (freshness p95 over ${local.freshness_objective_secs} s)"
  combiner     = "OR"

  conditions {
    display_name = "p95 of result written minus last chunk uploaded"
    condition_threshold {
      filter          = "${local.user_metric["freshness_seconds"]} AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = local.freshness_objective_secs
      duration        = "600s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }
    }
  }

  notification_channels = var.alert_notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "Sessions reach the results bucket later than the objective (p95 ${local.freshness_objective_secs} s after their last chunk). Look at the dashboard's sweep deferrals, stitch seconds and queue outcomes; see the README, Operating."
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "dead_letters" {
  count = local.pubsub_trigger || local.queue_mode ? 1 : 0

  project      = var.project_id
  display_name = "${var.name_prefix}: dead letters waiting"
  combiner     = "OR"

  dynamic "conditions" {
    for_each = toset(local.dead_letter_holds)
    content {
      display_name = "messages in ${conditions.value}"
      condition_threshold {
        filter          = "metric.type=\"pubsub.googleapis.com/subscription/num_undelivered_messages\" AND resource.type=\"pubsub_subscription\" AND resource.labels.subscription_id=\"${conditions.value}\""
        comparison      = "COMPARISON_GT"
        threshold_value = 0
        duration        = "0s"
        aggregations {
          alignment_period   = "300s"
          per_series_aligner = "ALIGN_MAX"
        }
      }
    }
  }

  notification_channels = var.alert_notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "Pub/Sub gave up delivering chunk events (or, in queue mode, finalize jobs) and holds them in a dead-letter subscription. Pull them to see why; the daily reconcile records any chunk they named (README, Operating; DEPLOY.md, dead letters)."
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "errors" {
  project      = var.project_id
  display_name = "${var.name_prefix}: functions answering 5xx"
  combiner     = "OR"

  conditions {
    display_name = "5xx answers per second, ingest and finalize"
    condition_threshold {
      filter          = "metric.type=\"run.googleapis.com/request_count\" AND resource.type=\"cloud_run_revision\" AND metric.labels.response_code_class=\"5xx\" AND resource.labels.service_name=(\"${google_cloud_run_v2_service.ingest.name}\" OR \"${google_cloud_run_v2_service.finalize.name}\")"
      comparison      = "COMPARISON_GT"
      threshold_value = var.alert_error_rate
      duration        = "600s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_RATE"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["resource.labels.service_name"]
      }
    }
  }

  notification_channels = var.alert_notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "A function keeps failing requests: a transient failure (index or storage unavailable) is retried by the platform, so a lasting rate means a dependency is down or a setting is wrong. Read the function's ERROR lines (README, Operating)."
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "sweep_deferring" {
  project      = var.project_id
  display_name = "${var.name_prefix}: sweeps leaving idle sessions behind"
  combiner     = "OR"

  conditions {
    display_name = "every sweep for ${var.alert_sweep_deferring_secs} s deferred sessions"
    condition_threshold {
      filter          = "${local.user_metric["sweep_deferred"]} AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "${var.alert_sweep_deferring_secs}s"
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_05"
      }
    }
  }

  notification_channels = var.alert_notification_channels
  documentation {
    mime_type = "text/markdown"
    content   = "Sweeps (or dispatches) keep running out of budget or index before the idle sessions are done: the backlog grows. Raise finalize_max_instances or switch to finalize_mode = \"queue\" (README, Operating)."
  }

  depends_on = [google_project_service.apis]
}

resource "google_monitoring_dashboard" "rrstitch" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "rrstitch (${var.name_prefix})"
    mosaicLayout = {
      columns = 12
      tiles = [for i, w in [
        { title = "Chunks by outcome", metric = "chunks", reducer = "REDUCE_SUM", aligner = "ALIGN_RATE", by = ["metric.label.outcome"] },
        { title = "Rejected chunks by reason", metric = "chunks", reducer = "REDUCE_SUM", aligner = "ALIGN_RATE", by = ["metric.label.reason"] },
        { title = "Sessions by outcome", metric = "sessions", reducer = "REDUCE_SUM", aligner = "ALIGN_RATE", by = ["metric.label.outcome"] },
        { title = "Freshness p95 (objective ${local.freshness_objective_secs} s)", metric = "freshness_seconds", reducer = "REDUCE_PERCENTILE_95", aligner = "ALIGN_DELTA", by = [] },
        { title = "Stitch seconds p95", metric = "stitch_seconds", reducer = "REDUCE_PERCENTILE_95", aligner = "ALIGN_DELTA", by = [] },
        { title = "Result bytes p95", metric = "stitch_bytes", reducer = "REDUCE_PERCENTILE_95", aligner = "ALIGN_DELTA", by = [] },
        { title = "Queue messages by outcome", metric = "queue_messages", reducer = "REDUCE_SUM", aligner = "ALIGN_RATE", by = ["metric.label.job", "metric.label.outcome"] },
        { title = "Sweep seconds p95", metric = "sweep_seconds", reducer = "REDUCE_PERCENTILE_95", aligner = "ALIGN_DELTA", by = ["metric.label.mode"] },
        { title = "Sessions deferred per sweep (p50)", metric = "sweep_deferred", reducer = "REDUCE_PERCENTILE_50", aligner = "ALIGN_DELTA", by = [] },
        { title = "Chunks recovered by reconcile (p95 per pass)", metric = "reconcile_recovered", reducer = "REDUCE_PERCENTILE_95", aligner = "ALIGN_DELTA", by = [] },
        ] : {
        xPos   = (i % 2) * 6
        yPos   = floor(i / 2) * 4
        width  = 6
        height = 4
        widget = {
          title = w.title
          xyChart = {
            dataSets = [{
              plotType = "LINE"
              timeSeriesQuery = {
                timeSeriesFilter = {
                  filter = "${local.user_metric[w.metric]} AND resource.type=\"cloud_run_revision\""
                  aggregation = {
                    alignmentPeriod    = "300s"
                    perSeriesAligner   = w.aligner
                    crossSeriesReducer = w.reducer
                    groupByFields      = w.by
                  }
                }
              }
            }]
          }
        }
      }]
    }
  })

  depends_on = [google_project_service.apis]
}
