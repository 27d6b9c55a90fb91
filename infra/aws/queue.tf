# Queue mode (finalize_mode = "queue"): the scheduled sweep only dispatches. Finalize sends one
# message per idle session ({"session_guid": ...}) to the finalize-jobs queue; an event source
# mapping hands them to the finalize Lambda in batches, and the function answers
# {"batchItemFailures": [...]} naming only the messages that failed transiently. Lambda
# deletes the others; the failed ones come back after the visibility timeout, and after
# finalize_max_receive_count receives SQS moves a message to the dead-letter queue. A
# dead-lettered session is not lost: it stays idle in the index, and the next dispatch sends it
# again.
#
# Nothing here exists in inline mode (the default), where the sweep stitches in-process.

locals {
  queue_mode = var.finalize_mode == "queue"
}

resource "aws_sqs_queue" "finalize_dlq" {
  count = local.queue_mode ? 1 : 0

  name                      = "${local.finalize_name}-jobs-dlq"
  message_retention_seconds = var.dead_letter_retention_secs
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "finalize_jobs" {
  count = local.queue_mode ? 1 : 0

  name = "${local.finalize_name}-jobs"
  # A received message stays hidden this long: six times the function timeout, as AWS
  # advises for an event source, so a batch still being stitched (or retried by Lambda after a
  # throttle) is never handed to a second worker meanwhile.
  visibility_timeout_seconds = min(6 * var.finalize_timeout_secs, 43200)
  message_retention_seconds  = var.finalize_queue_retention_secs
  receive_wait_time_seconds  = 20
  sqs_managed_sse_enabled    = true

  # The redrive policy is aws_sqs_queue_redrive_policy's (below); this attribute only mirrors
  # it, and compares the service's JSON as text (moto returns it reformatted).
  lifecycle {
    ignore_changes = [redrive_policy]
  }
}

# After finalize_max_receive_count receives (each a transient failure) a message moves to the
# dead-letter queue.
resource "aws_sqs_queue_redrive_policy" "finalize_jobs" {
  count = local.queue_mode ? 1 : 0

  queue_url = aws_sqs_queue.finalize_jobs[0].id
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.finalize_dlq[0].arn
    maxReceiveCount     = var.finalize_max_receive_count
  })
}

resource "aws_lambda_event_source_mapping" "finalize_jobs" {
  count = local.queue_mode ? 1 : 0

  event_source_arn        = aws_sqs_queue.finalize_jobs[0].arn
  function_name           = aws_lambda_function.finalize.arn
  batch_size              = var.finalize_batch_size
  function_response_types = ["ReportBatchItemFailures"]

  dynamic "scaling_config" {
    for_each = var.finalize_max_concurrency == null ? [] : [var.finalize_max_concurrency]
    content {
      maximum_concurrency = scaling_config.value
    }
  }

  # Lambda checks it may read the queue when the mapping is created.
  depends_on = [aws_iam_role_policy.finalize]
}

# A finalize message that kept failing is a session no worker could stitch: alarm on the first.
resource "aws_cloudwatch_metric_alarm" "finalize_dlq_not_empty" {
  count = local.queue_mode ? 1 : 0

  alarm_name          = "${local.finalize_name}-dead-letters"
  alarm_description   = "rrstitch: finalize messages kept failing; they wait in ${aws_sqs_queue.finalize_dlq[0].name} (see docs/DEPLOY.md, queue mode)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.finalize_dlq[0].name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}
