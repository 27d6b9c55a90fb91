# `terraform test` (plan only, a mocked provider: no AWS, no moto): the buckets' lifecycle
# rules (retention and storage tiers) and where the restriction rules go.
# tests/tests/infra_aws.rs runs it; the moto apply there checks the rules as S3 stores them.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { name = "us-east-1" }
  }
  # Roles and policies take JSON documents; a mocked one would be a random string.
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

variables {
  chunk_bucket_name   = "tiers-chunks"
  results_bucket_name = "tiers-results"
  ingest_zip          = "tests/empty.zip"
  finalize_zip        = "tests/empty.zip"
}

# The defaults: chunks expire after 30 days and stay in STANDARD; results move to
# STANDARD_IA after 30 days and are kept.
run "defaults" {
  command = plan

  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.chunks[0].rule[0].transition) == 0
    error_message = "chunks stay in STANDARD by default"
  }
  assert {
    condition     = aws_s3_bucket_lifecycle_configuration.chunks[0].rule[0].expiration[0].days == 30
    error_message = "chunks expire after chunk_retention_days (30)"
  }
  assert {
    condition = (
      one(aws_s3_bucket_lifecycle_configuration.results[0].rule[0].transition).days == 30
      && one(aws_s3_bucket_lifecycle_configuration.results[0].rule[0].transition).storage_class == "STANDARD_IA"
    )
    error_message = "results move to STANDARD_IA after 30 days"
  }
  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.results[0].rule[0].expiration) == 0
    error_message = "results are kept (results_retention_days = null)"
  }
}

run "cold_chunks_before_their_deletion" {
  command = plan

  variables {
    chunk_cold_after_days      = 7
    chunk_cold_storage_class   = "GLACIER_IR"
    results_retention_days     = 365
    results_cold_storage_class = "GLACIER_IR"
    results_cold_after_days    = 90
  }

  assert {
    condition = (
      one(aws_s3_bucket_lifecycle_configuration.chunks[0].rule[0].transition).days == 7
      && one(aws_s3_bucket_lifecycle_configuration.chunks[0].rule[0].transition).storage_class == "GLACIER_IR"
      && aws_s3_bucket_lifecycle_configuration.chunks[0].rule[0].expiration[0].days == 30
    )
    error_message = "chunks move to GLACIER_IR after 7 days, then expire at 30"
  }
  assert {
    condition = (
      one(aws_s3_bucket_lifecycle_configuration.results[0].rule[0].transition).storage_class == "GLACIER_IR"
      && aws_s3_bucket_lifecycle_configuration.results[0].rule[0].expiration[0].days == 365
    )
    error_message = "results move to GLACIER_IR after 90 days, then expire at 365"
  }
}

run "no_tiers_no_retention_no_rule" {
  command = plan

  variables {
    chunk_retention_days    = null
    results_cold_after_days = null
  }

  assert {
    condition     = length(aws_s3_bucket_lifecycle_configuration.chunks) == 0 && length(aws_s3_bucket_lifecycle_configuration.results) == 0
    error_message = "no lifecycle configuration when neither retention nor a tier is set"
  }
}

# Negative controls: configurations S3 would refuse at apply time fail the plan instead.
run "standard_ia_before_30_days_is_refused" {
  command = plan

  variables {
    results_cold_after_days = 10
  }

  expect_failures = [aws_s3_bucket_lifecycle_configuration.results]
}

run "a_move_after_the_deletion_is_refused" {
  command = plan

  variables {
    chunk_cold_after_days    = 30
    chunk_cold_storage_class = "GLACIER_IR"
  }

  expect_failures = [aws_s3_bucket_lifecycle_configuration.chunks]
}

run "a_class_that_needs_a_restore_is_refused" {
  command = plan

  variables {
    results_cold_storage_class = "GLACIER"
  }

  expect_failures = [var.results_cold_storage_class]
}

# Restrictions reach both functions (finalize's reconcile ingests too); none by default.
run "restriction_rules_reach_both_functions" {
  command = plan

  variables {
    restrict_rules = "{\"drop_guids\": [\"bot-*\"]}"
  }

  assert {
    condition = (
      aws_lambda_function.ingest.environment[0].variables["RRSTITCH_RESTRICT"] == "{\"drop_guids\": [\"bot-*\"]}"
      && aws_lambda_function.finalize.environment[0].variables["RRSTITCH_RESTRICT"] == "{\"drop_guids\": [\"bot-*\"]}"
    )
    error_message = "restrict_rules reaches both functions as RRSTITCH_RESTRICT"
  }
}

run "no_restriction_rules_no_variable" {
  command = plan

  assert {
    condition     = !contains(keys(aws_lambda_function.ingest.environment[0].variables), "RRSTITCH_RESTRICT")
    error_message = "without restrict_rules the variable is left out"
  }
}

run "restriction_rules_must_be_json" {
  command = plan

  variables {
    restrict_rules = "drop staging"
  }

  expect_failures = [var.restrict_rules]
}

run "a_session_quota_reaches_both_functions" {
  command = plan

  variables {
    session_max_bytes = 536870912
  }

  assert {
    condition = (
      aws_lambda_function.ingest.environment[0].variables["RRSTITCH_SESSION_MAX_BYTES"] == "536870912"
      && aws_lambda_function.finalize.environment[0].variables["RRSTITCH_SESSION_MAX_BYTES"] == "536870912"
    )
    error_message = "session_max_bytes reaches both functions as RRSTITCH_SESSION_MAX_BYTES"
  }
}

run "no_session_quota_no_variable" {
  command = plan

  variables {
    session_max_bytes = 0
  }

  assert {
    condition = (
      !contains(keys(aws_lambda_function.ingest.environment[0].variables), "RRSTITCH_SESSION_MAX_BYTES")
      && !contains(keys(aws_lambda_function.finalize.environment[0].variables), "RRSTITCH_SESSION_MAX_BYTES")
    )
    error_message = "without a quota (0, like the default null) the variable is left out"
  }
}

run "a_session_quota_must_be_whole_bytes" {
  command = plan

  variables {
    session_max_bytes = 1.5
  }

  expect_failures = [var.session_max_bytes]
}

# Both functions write EMF metric lines into the namespace the alarms and the dashboard read;
# the freshness objective defaults to the idle wait plus five minutes.
run "metrics_are_emf_in_the_alarms_namespace" {
  command = plan

  variables {
    metrics_namespace = "team-rrstitch"
  }

  assert {
    condition = alltrue([for env in [aws_lambda_function.ingest.environment[0].variables, aws_lambda_function.finalize.environment[0].variables] :
    env["RRSTITCH_METRICS"] == "emf" && env["RRSTITCH_METRICS_NAMESPACE"] == "team-rrstitch" && env["RRSTITCH_LOG_FORMAT"] == "json"])
    error_message = "both functions write EMF lines (JSON) into metrics_namespace"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.freshness.namespace == "team-rrstitch" && aws_cloudwatch_metric_alarm.freshness.threshold == 600 && aws_cloudwatch_metric_alarm.freshness.extended_statistic == "p95"
    error_message = "the freshness alarm watches p95 of freshness_seconds against idle_secs + 300"
  }
  assert {
    condition     = aws_cloudwatch_metric_alarm.sweep_deferring.dimensions["mode"] == "inline" && aws_cloudwatch_metric_alarm.sweep_deferring.evaluation_periods == 3
    error_message = "the sweep-deferring alarm watches the configured mode's sweeps, three periods in a row"
  }
  assert {
    condition     = length(aws_cloudwatch_metric_alarm.errors) == 2
    error_message = "each function has an errors alarm"
  }
}

run "the_objective_is_a_variable" {
  command = plan

  variables {
    freshness_objective_secs = 120
    finalize_mode            = "queue"
  }

  assert {
    condition     = aws_cloudwatch_metric_alarm.freshness.threshold == 120 && aws_cloudwatch_metric_alarm.sweep_deferring.dimensions["mode"] == "queue"
    error_message = "freshness_objective_secs sets the threshold; queue mode watches the dispatch's lines"
  }
}

run "a_bad_namespace_is_refused" {
  command = plan

  variables {
    metrics_namespace = "has space"
  }

  expect_failures = [var.metrics_namespace]
}
