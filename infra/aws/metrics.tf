# Metrics without an API call on the request path: both functions write their metric lines
# (shared/src/metrics.rs) with a CloudWatch Embedded Metric Format directive
# (RRSTITCH_METRICS=emf), and CloudWatch Logs turns them into metrics in metrics_namespace as
# they arrive. On those, and on Lambda's own metrics: the freshness objective, alarms and a
# dashboard. The dead-letter alarms are beside their queues (main.tf, queue.tf). The README's
# "Operating" section says what each alarm means and what to do about it.
#
# tests/src/metrics.rs reads `emf_metrics` below and holds it to the EMF lines the real
# functions write on the emulators (tests/tests/queue_aws.rs): a metric or dimension renamed
# in code, or misspelt here, fails the build.

locals {
  # The EMF metrics the alarms and the dashboard read: the metric's name and its dimensions
  # exactly as the lines carry them (CloudWatch keys a metric by its whole dimension set). A
  # dimension given as null is any value: the dashboard searches those.
  emf_metrics = {
    freshness           = { name = "freshness_seconds", dimensions = { outcome = "written" } }
    stitch_seconds      = { name = "stitch_seconds", dimensions = { outcome = "written" } }
    sessions            = { name = "sessions", dimensions = { outcome = null } }
    chunks              = { name = "chunks", dimensions = { outcome = null, reason = null } }
    queue_messages      = { name = "messages", dimensions = { job = null, outcome = null } }
    sweep_deferred      = { name = "sweep_deferred", dimensions = { mode = var.finalize_mode } }
    sweep_seconds       = { name = "sweep_seconds", dimensions = { mode = var.finalize_mode } }
    reconcile_recovered = { name = "reconcile_recovered", dimensions = {} }
  }

  # The objective: 95 % of sessions are written within this many seconds of their last
  # chunk's upload (by default the idle wait plus five minutes for the sweep and the stitch).
  freshness_objective_secs = coalesce(var.freshness_objective_secs, var.idle_secs + 300)

  metric_env = {
    RRSTITCH_METRICS           = "emf"
    RRSTITCH_METRICS_NAMESPACE = var.metrics_namespace
  }
}

resource "aws_cloudwatch_metric_alarm" "freshness" {
  alarm_name          = "${var.name_prefix}-freshness"
  alarm_description   = "rrstitch: sessions reach the results bucket later than the objective (p95 ${local.freshness_objective_secs} s after their last chunk). See the README, Operating."
  namespace           = var.metrics_namespace
  metric_name         = local.emf_metrics.freshness.name
  dimensions          = local.emf_metrics.freshness.dimensions
  extended_statistic  = "p95"
  period              = 300
  evaluation_periods  = 2
  threshold           = local.freshness_objective_secs
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

resource "aws_cloudwatch_metric_alarm" "sweep_deferring" {
  alarm_name          = "${var.name_prefix}-sweep-deferring"
  alarm_description   = "rrstitch: every ${var.finalize_mode} sweep for ${var.alert_sweep_deferring_periods} periods of 5 minutes left idle sessions for the next one; the backlog grows. See the README, Operating."
  namespace           = var.metrics_namespace
  metric_name         = local.emf_metrics.sweep_deferred.name
  dimensions          = local.emf_metrics.sweep_deferred.dimensions
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = var.alert_sweep_deferring_periods
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# Errors over invocations, per function: a transient failure is retried by the platform, so a
# lasting rate means a dependency is down or a setting is wrong.
resource "aws_cloudwatch_metric_alarm" "errors" {
  for_each = {
    ingest   = aws_lambda_function.ingest.function_name
    finalize = aws_lambda_function.finalize.function_name
  }

  alarm_name          = "${each.value}-errors"
  alarm_description   = "rrstitch: ${each.key} fails more than ${var.alert_error_ratio * 100} % of its invocations. Read its ERROR lines; see the README, Operating."
  evaluation_periods  = 2
  threshold           = var.alert_error_ratio
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions

  metric_query {
    id          = "ratio"
    expression  = "IF(invocations > 0, errors / invocations, 0)"
    label       = "errors per invocation"
    return_data = true
  }
  metric_query {
    id = "errors"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Errors"
      dimensions  = { FunctionName = each.value }
      stat        = "Sum"
      period      = 300
    }
  }
  metric_query {
    id = "invocations"
    metric {
      namespace   = "AWS/Lambda"
      metric_name = "Invocations"
      dimensions  = { FunctionName = each.value }
      stat        = "Sum"
      period      = 300
    }
  }
}

resource "aws_cloudwatch_dashboard" "rrstitch" {
  dashboard_name = "${var.name_prefix}-rrstitch"
  dashboard_body = jsonencode({
    widgets = [for i, w in [
      { title = "Chunks by outcome and reason", metric = "chunks", stat = "Sum" },
      { title = "Sessions by outcome", metric = "sessions", stat = "Sum" },
      { title = "Freshness p95 (objective ${local.freshness_objective_secs} s)", metric = "freshness", stat = "p95" },
      { title = "Stitch seconds p95", metric = "stitch_seconds", stat = "p95" },
      { title = "Queue messages by job and outcome", metric = "queue_messages", stat = "Sum" },
      { title = "Sessions deferred per sweep", metric = "sweep_deferred", stat = "Minimum" },
      { title = "Sweep seconds", metric = "sweep_seconds", stat = "Maximum" },
      { title = "Chunks recovered by reconcile", metric = "reconcile_recovered", stat = "Sum" },
      ] : {
      type   = "metric"
      x      = (i % 2) * 12
      y      = floor(i / 2) * 6
      width  = 12
      height = 6
      properties = {
        title  = w.title
        region = var.region
        stat   = w.stat
        period = 300
        # A dimension of any value is searched; fixed ones are named.
        metrics = jsondecode(anytrue([for v in values(local.emf_metrics[w.metric].dimensions) : v == null]) ? jsonencode([[{
          expression = "SEARCH('{${join(",", concat([var.metrics_namespace], keys(local.emf_metrics[w.metric].dimensions)))}} MetricName=\"${local.emf_metrics[w.metric].name}\"', '${w.stat}', 300)"
          id         = "e${i}"
          }]]) : jsonencode([concat(
          [var.metrics_namespace, local.emf_metrics[w.metric].name],
          flatten([for k, v in local.emf_metrics[w.metric].dimensions : [k, v]]),
        )]))
      }
    }]
  })
}
