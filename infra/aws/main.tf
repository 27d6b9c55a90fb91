# rrstitch on AWS: chunk bucket → (S3 notification) → ingest Lambda → DynamoDB session index;
# EventBridge schedule → finalize Lambda (sweep, or with finalize_mode = "queue" one SQS message
# per idle session → event source mapping → finalize Lambda: queue.tf) → results bucket; a
# Function URL (AWS_IAM)
# finalizes one session on demand. An ingest event Lambda gives up on lands in an SQS
# dead-letter queue, and a daily reconcile ingests every chunk object the index does not know.

data "aws_caller_identity" "current" {}

locals {
  table_name = coalesce(var.table_name, "${var.name_prefix}-sessions")

  ingest_name   = "${var.name_prefix}-ingest"
  finalize_name = "${var.name_prefix}-finalize"

  # The same variable names in every binary (shared/edge/src/config/variables.rs). Empty optional values are
  # left out: the binaries treat a missing variable and an empty one alike.
  common_env = {
    RRSTITCH_CHUNKS          = "s3://${aws_s3_bucket.chunks.bucket}"
    RRSTITCH_CHUNK_PREFIX    = var.chunk_prefix
    RRSTITCH_INDEX           = "dynamodb"
    RRSTITCH_DYNAMODB_TABLE  = aws_dynamodb_table.sessions.name
    RRSTITCH_MAX_CHUNK_BYTES = tostring(var.max_chunk_bytes)
    RRSTITCH_INDEX_TTL_DAYS  = tostring(local.index_ttl_days)
    RRSTITCH_LOG_FORMAT      = "json"
    # Both functions ingest (finalize through reconcile); empty (none) is left out below.
    RRSTITCH_RESTRICT = var.restrict_rules
    # Likewise the per-session quota; null or 0 (off) is left out below.
    RRSTITCH_SESSION_MAX_BYTES = coalesce(var.session_max_bytes, 0) == 0 ? "" : tostring(var.session_max_bytes)
  }
  # Index items expire (DynamoDB TTL on expire_at) this many days after their last activity:
  # a day past the chunk retention, so a record always outlives the chunk it describes (a
  # reconcile never finds a chunk the index forgot), and the index keeps nothing of a session
  # long after its chunks are gone. Chunks kept for ever: the binaries' default, 90 days.
  index_ttl_days = var.chunk_retention_days == null ? 90 : var.chunk_retention_days + 1
  # A sweep or reconcile stops taking new work after this many seconds, so it answers before
  # the function's timeout cuts it off: 80 % of the timeout unless set.
  sweep_budget_secs = coalesce(var.sweep_budget_secs, floor(var.finalize_timeout_secs * 0.8))
  # A tier is valid when its move comes before its bucket's expiration and, for STANDARD_IA,
  # no sooner than S3's 30 days (the lifecycle preconditions below name the variables).
  chunk_tier_ok = var.chunk_cold_after_days == null ? true : (
    (var.chunk_retention_days == null ? true : var.chunk_cold_after_days < var.chunk_retention_days)
    && (var.chunk_cold_storage_class != "STANDARD_IA" || var.chunk_cold_after_days >= 30)
  )
  results_tier_ok = var.results_cold_after_days == null ? true : (
    (var.results_retention_days == null ? true : var.results_cold_after_days < var.results_retention_days)
    && (var.results_cold_storage_class != "STANDARD_IA" || var.results_cold_after_days >= 30)
  )

  finalize_only_env = {
    RRSTITCH_RESULTS           = "s3://${aws_s3_bucket.results.bucket}"
    RRSTITCH_RESULTS_PREFIX    = var.results_prefix
    RRSTITCH_IDLE_SECS         = tostring(var.idle_secs)
    RRSTITCH_LEASE_SECS        = tostring(var.lease_secs)
    RRSTITCH_OUTPUT_GZIP       = tostring(var.output_gzip)
    RRSTITCH_SEGMENTS          = tostring(var.segments)
    RRSTITCH_SWEEP_BUDGET_SECS = tostring(local.sweep_budget_secs)
    RRSTITCH_FINALIZE_MODE     = var.finalize_mode
    RRSTITCH_FINALIZE_QUEUE    = local.queue_mode ? aws_sqs_queue.finalize_jobs[0].url : ""
    # Only the finalize function stitches; empty (no rules) is left out below.
    RRSTITCH_REDACT = var.redact_rules
  }
  ingest_env   = { for k, v in merge(local.common_env, local.metric_env, var.extra_environment) : k => v if v != "" }
  finalize_env = { for k, v in merge(local.common_env, local.metric_env, local.finalize_only_env, var.extra_environment) : k => v if v != "" }
}

# ---------------------------------------------------------------------------------------------
# Buckets

resource "aws_s3_bucket" "chunks" {
  bucket        = var.chunk_bucket_name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket" "results" {
  bucket        = var.results_bucket_name
  force_destroy = var.force_destroy
}

# Retention: the buckets delete by age, rrstitch never sees it (`rrstitch prune` is the same
# for local mode). Index records of expired chunks leave by their own TTL (expire_at).
# Retention and tiers: one lifecycle configuration per bucket (S3 takes one), with a rule
# when either its retention or its cold tier is set. A transition must come before the
# expiration (S3 refuses the configuration otherwise), and STANDARD_IA takes objects only
# 30 days after creation: both are checked at plan time, naming the variables.
resource "aws_s3_bucket_lifecycle_configuration" "chunks" {
  count  = var.chunk_retention_days == null && var.chunk_cold_after_days == null ? 0 : 1
  bucket = aws_s3_bucket.chunks.id

  rule {
    id     = "chunk-retention"
    status = "Enabled"
    filter {}
    dynamic "transition" {
      for_each = var.chunk_cold_after_days == null ? [] : [var.chunk_cold_after_days]
      content {
        days          = transition.value
        storage_class = var.chunk_cold_storage_class
      }
    }
    dynamic "expiration" {
      for_each = var.chunk_retention_days == null ? [] : [var.chunk_retention_days]
      content {
        days = expiration.value
      }
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  lifecycle {
    precondition {
      condition     = local.chunk_tier_ok
      error_message = "chunk_cold_after_days must be below chunk_retention_days, and at least 30 for STANDARD_IA (S3's minimum before that transition)."
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "results" {
  count  = var.results_retention_days == null && var.results_cold_after_days == null ? 0 : 1
  bucket = aws_s3_bucket.results.id

  rule {
    id     = "results-retention"
    status = "Enabled"
    filter {}
    dynamic "transition" {
      for_each = var.results_cold_after_days == null ? [] : [var.results_cold_after_days]
      content {
        days          = transition.value
        storage_class = var.results_cold_storage_class
      }
    }
    dynamic "expiration" {
      for_each = var.results_retention_days == null ? [] : [var.results_retention_days]
      content {
        days = expiration.value
      }
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  lifecycle {
    precondition {
      condition     = local.results_tier_ok
      error_message = "results_cold_after_days must be below results_retention_days, and at least 30 for STANDARD_IA (S3's minimum before that transition)."
    }
  }
}

resource "aws_s3_bucket_public_access_block" "chunks" {
  bucket                  = aws_s3_bucket.chunks.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_public_access_block" "results" {
  bucket                  = aws_s3_bucket.results.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ---------------------------------------------------------------------------------------------
# Session index: one table; sessions under sk = SESSION, chunks under sk = C#<hash>, rejects
# under pk = R#<hash>, the shard high-water mark under pk = META. Items carry expire_at (epoch
# seconds) for TTL.
#
# The sparse GSI idle_by_shard answers the idle and expired-lease queries. Its hash key is
# idle_pk = "<status>#<shard>" (open#7, finalizing#7; the shard a hash of the guid modulo
# RRSTITCH_INDEX_SHARDS), its range key idle_sk the time the sweep ranges over (arrival, or
# lease expiry; epoch ms). Every chunk write rewrites its session's entry, and a GSI partition
# takes ~1,000 WCU/s, so a low-cardinality hash key such as status alone would put every write
# on one partition. Open and finalizing sessions carry idle_pk, and so do tombstones
# (deleted#7, by expiry) and refused objects (rejected#0..15, by time), which `rrstitch status`
# counts; finalized sessions leave the index (shared/src/index/dynamodb/).

resource "aws_dynamodb_table" "sessions" {
  name         = local.table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "pk"
  range_key    = "sk"

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "idle_pk"
    type = "S"
  }
  attribute {
    name = "idle_sk"
    type = "N"
  }

  global_secondary_index {
    name            = "idle_by_shard"
    hash_key        = "idle_pk"
    range_key       = "idle_sk"
    projection_type = "KEYS_ONLY"
  }

  ttl {
    attribute_name = "expire_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = false
  }
}

# ---------------------------------------------------------------------------------------------
# Logs

resource "aws_cloudwatch_log_group" "ingest" {
  name              = "/aws/lambda/${local.ingest_name}"
  retention_in_days = var.log_retention_days
}

resource "aws_cloudwatch_log_group" "finalize" {
  name              = "/aws/lambda/${local.finalize_name}"
  retention_in_days = var.log_retention_days
}

# ---------------------------------------------------------------------------------------------
# IAM: one role per function, least privilege.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ingest" {
  name               = "${local.ingest_name}-role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

resource "aws_iam_role" "finalize" {
  name               = "${local.finalize_name}-role"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
}

locals {
  # Every item operation the DynamoDB adapter performs in the functions
  # (shared/src/index/dynamodb/; tests/tests/infra_aws.rs holds the two to each other).
  # DeleteItem is erasure's: a session's chunk records and its document.
  dynamodb_item_actions = [
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:ConditionCheckItem",
    "dynamodb:TransactWriteItems",
  ]
}

data "aws_iam_policy_document" "ingest" {
  statement {
    sid       = "ReadChunks"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.chunks.arn}/${var.chunk_prefix}*"]
  }
  # A chunk of an erased session is refused and deleted (unless
  # RRSTITCH_KEEP_CHUNKS_OF_DELETED=1), so an erasure is not undone by a late upload.
  statement {
    sid       = "DeleteRefusedChunks"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.chunks.arn}/${var.chunk_prefix}*"]
  }
  statement {
    sid       = "SessionIndex"
    actions   = local.dynamodb_item_actions
    resources = [aws_dynamodb_table.sessions.arn, "${aws_dynamodb_table.sessions.arn}/index/*"]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.ingest.arn}:*"]
  }
  # Lambda sends a failed asynchronous invocation to its on-failure destination with the
  # function's own role.
  statement {
    sid       = "DeadLetters"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.ingest_dlq.arn]
  }
}

data "aws_iam_policy_document" "finalize" {
  statement {
    sid       = "ReadChunks"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.chunks.arn}/${var.chunk_prefix}*"]
  }
  statement {
    sid       = "ListChunks"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.chunks.arn]
  }
  # Erasure (POST /delete, the `delete` event) deletes a session's chunks and results and
  # lists `<guid>/` under the results prefix.
  statement {
    sid       = "EraseChunks"
    actions   = ["s3:DeleteObject"]
    resources = ["${aws_s3_bucket.chunks.arn}/${var.chunk_prefix}*"]
  }
  statement {
    sid       = "WriteResults"
    actions   = ["s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"]
    resources = ["${aws_s3_bucket.results.arn}/${var.results_prefix}*"]
  }
  statement {
    sid       = "ListResults"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.results.arn]
  }
  statement {
    sid       = "SessionIndex"
    actions   = local.dynamodb_item_actions
    resources = [aws_dynamodb_table.sessions.arn]
  }
  statement {
    sid       = "IdleIndex"
    actions   = ["dynamodb:Query"]
    resources = ["${aws_dynamodb_table.sessions.arn}/index/idle_by_shard"]
  }
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.finalize.arn}:*"]
  }
  # Queue mode (queue.tf): the dispatcher sends to the jobs queue; the event source mapping
  # reads and deletes with the function's role.
  dynamic "statement" {
    for_each = aws_sqs_queue.finalize_jobs[*].arn
    content {
      sid = "FinalizeQueue"
      actions = [
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
      ]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "ingest" {
  name   = "${local.ingest_name}-policy"
  role   = aws_iam_role.ingest.id
  policy = data.aws_iam_policy_document.ingest.json
}

resource "aws_iam_role_policy" "finalize" {
  name   = "${local.finalize_name}-policy"
  role   = aws_iam_role.finalize.id
  policy = data.aws_iam_policy_document.finalize.json
}

# ---------------------------------------------------------------------------------------------
# Functions

resource "aws_lambda_function" "ingest" {
  function_name    = local.ingest_name
  description      = "rrstitch ingest: one new chunk object in, one session-index record out."
  filename         = var.ingest_zip
  source_code_hash = filebase64sha256(var.ingest_zip)
  role             = aws_iam_role.ingest.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  memory_size      = var.ingest_memory_mb
  timeout          = var.ingest_timeout_secs

  environment {
    variables = local.ingest_env
  }

  # Lambda logs to /aws/lambda/<function name>, the group declared above (with its
  # retention); depending on it makes it exist before the first invocation could create an
  # unmanaged one. No logging_config block: it would only restate those defaults.
  depends_on = [aws_iam_role_policy.ingest, aws_cloudwatch_log_group.ingest]
}

resource "aws_lambda_function" "finalize" {
  function_name    = local.finalize_name
  description      = "rrstitch finalize: sweep idle sessions (schedule) or finalize one (Function URL)."
  filename         = var.finalize_zip
  source_code_hash = filebase64sha256(var.finalize_zip)
  role             = aws_iam_role.finalize.arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.architecture]
  memory_size      = var.finalize_memory_mb
  timeout          = var.finalize_timeout_secs

  environment {
    variables = local.finalize_env
  }

  # Lambda logs to /aws/lambda/<function name>, the group declared above (with its
  # retention); depending on it makes it exist before the first invocation could create an
  # unmanaged one. No logging_config block: it would only restate those defaults.
  depends_on = [aws_iam_role_policy.finalize, aws_cloudwatch_log_group.finalize]

  lifecycle {
    precondition {
      condition     = local.sweep_budget_secs > 0 && local.sweep_budget_secs < var.finalize_timeout_secs
      error_message = "sweep_budget_secs must be positive and below finalize_timeout_secs, or a sweep is cut off by the timeout before it answers."
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Chunk bucket → ingest

resource "aws_lambda_permission" "s3_invoke_ingest" {
  statement_id   = "AllowChunkBucketInvoke"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.ingest.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = aws_s3_bucket.chunks.arn
  source_account = data.aws_caller_identity.current.account_id
}

resource "aws_s3_bucket_notification" "chunks" {
  bucket = aws_s3_bucket.chunks.id

  lambda_function {
    lambda_function_arn = aws_lambda_function.ingest.arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = var.chunk_prefix != "" ? var.chunk_prefix : null
  }

  depends_on = [aws_lambda_permission.s3_invoke_ingest]
}

# ---------------------------------------------------------------------------------------------
# Ingest dead letters. S3 invokes ingest asynchronously: Lambda retries a failed invocation
# twice, then discards the event unless there is an on-failure destination. This queue is that
# destination: each message holds the S3 event (requestPayload) and why it failed
# (responsePayload). Events still queued in Lambda (throttled) when maximum_event_age runs
# out land here too. `reconcile` re-ingests whatever they announced (docs/DEPLOY.md).

resource "aws_sqs_queue" "ingest_dlq" {
  name                      = "${local.ingest_name}-dlq"
  message_retention_seconds = var.dead_letter_retention_secs
  sqs_managed_sse_enabled   = true
}

resource "aws_lambda_function_event_invoke_config" "ingest" {
  function_name                = aws_lambda_function.ingest.function_name
  maximum_retry_attempts       = 2
  maximum_event_age_in_seconds = var.ingest_max_event_age_secs

  destination_config {
    on_failure {
      destination = aws_sqs_queue.ingest_dlq.arn
    }
  }

  # The role must be allowed to send to the queue before Lambda accepts it as a destination.
  depends_on = [aws_iam_role_policy.ingest]
}

# Anything in the dead-letter queue is an event ingest gave up on: alarm on the first one.
resource "aws_cloudwatch_metric_alarm" "ingest_dlq_not_empty" {
  alarm_name          = "${local.ingest_name}-dead-letters"
  alarm_description   = "rrstitch: ingest gave up on chunk events; they wait in ${aws_sqs_queue.ingest_dlq.name} (see docs/DEPLOY.md, dead letters)."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.ingest_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.alarm_actions
  ok_actions          = var.alarm_actions
}

# ---------------------------------------------------------------------------------------------
# Schedule → finalize (sweep)

resource "aws_cloudwatch_event_rule" "sweep" {
  name                = "${var.name_prefix}-sweep"
  description         = "rrstitch: finalize idle sessions."
  schedule_expression = var.sweep_schedule
}

resource "aws_cloudwatch_event_target" "sweep" {
  rule      = aws_cloudwatch_event_rule.sweep.name
  target_id = "finalize"
  arn       = aws_lambda_function.finalize.arn
}

resource "aws_lambda_permission" "events_invoke_finalize" {
  statement_id  = "AllowSweepScheduleInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.finalize.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep.arn
}

# ---------------------------------------------------------------------------------------------
# Schedule → finalize (reconcile): the repair path. The finalize function lists the chunk
# bucket and ingests every chunk object the index does not know, whatever event was lost.

resource "aws_cloudwatch_event_rule" "reconcile" {
  name                = "${var.name_prefix}-reconcile"
  description         = "rrstitch: ingest chunk objects the session index does not know."
  schedule_expression = var.reconcile_schedule
}

resource "aws_cloudwatch_event_target" "reconcile" {
  rule      = aws_cloudwatch_event_rule.reconcile.name
  target_id = "finalize"
  arn       = aws_lambda_function.finalize.arn
  input     = jsonencode({ reconcile = true })
}

resource "aws_lambda_permission" "events_reconcile_finalize" {
  statement_id  = "AllowReconcileScheduleInvoke"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.finalize.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.reconcile.arn
}

# ---------------------------------------------------------------------------------------------
# Manual finalize: POST {"session_guid": "..."} to the Function URL, SigV4-signed. Only
# principals granted lambda:InvokeFunctionUrl on this function (none by default) can call it.

resource "aws_lambda_function_url" "finalize" {
  function_name      = aws_lambda_function.finalize.function_name
  authorization_type = "AWS_IAM"
}
