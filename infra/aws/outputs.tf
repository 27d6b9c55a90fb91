output "chunk_bucket" {
  description = "Name of the chunk bucket (upload <timestamp>.json chunks here)."
  value       = aws_s3_bucket.chunks.bucket
}

output "results_bucket" {
  description = "Name of the results bucket (<session_guid>.json)."
  value       = aws_s3_bucket.results.bucket
}

output "table_name" {
  description = "DynamoDB session-index table."
  value       = aws_dynamodb_table.sessions.name
}

output "ingest_function" {
  description = "Name of the ingest Lambda."
  value       = aws_lambda_function.ingest.function_name
}

output "ingest_function_arn" {
  description = "ARN of the ingest Lambda."
  value       = aws_lambda_function.ingest.arn
}

output "finalize_function" {
  description = "Name of the finalize Lambda."
  value       = aws_lambda_function.finalize.function_name
}

output "finalize_function_arn" {
  description = "ARN of the finalize Lambda."
  value       = aws_lambda_function.finalize.arn
}

output "finalize_url" {
  description = "Function URL of finalize (AWS_IAM auth): POST {\"session_guid\": \"...\"} signed with SigV4."
  value       = aws_lambda_function_url.finalize.function_url
}

output "sweep_rule" {
  description = "EventBridge rule that runs the sweep."
  value       = aws_cloudwatch_event_rule.sweep.name
}

output "reconcile_rule" {
  description = "EventBridge rule that runs the reconcile ({\"reconcile\": true} to finalize)."
  value       = aws_cloudwatch_event_rule.reconcile.name
}

output "ingest_dlq_url" {
  description = "URL of the SQS queue that holds the S3 events ingest gave up on."
  value       = aws_sqs_queue.ingest_dlq.url
}

output "ingest_dlq_arn" {
  description = "ARN of the ingest dead-letter queue (the ingest Lambda's on-failure destination)."
  value       = aws_sqs_queue.ingest_dlq.arn
}

output "ingest_dlq_alarm" {
  description = "CloudWatch alarm raised while the ingest dead-letter queue holds a message."
  value       = aws_cloudwatch_metric_alarm.ingest_dlq_not_empty.alarm_name
}

output "ingest_role_arn" {
  description = "IAM role of the ingest Lambda."
  value       = aws_iam_role.ingest.arn
}

output "finalize_role_arn" {
  description = "IAM role of the finalize Lambda."
  value       = aws_iam_role.finalize.arn
}

output "finalize_queue_url" {
  description = "Queue mode: URL of the SQS queue the sweep sends one message per idle session to (null inline)."
  value       = one(aws_sqs_queue.finalize_jobs[*].url)
}

output "finalize_queue_arn" {
  description = "Queue mode: ARN of the finalize-jobs queue (the event source of the finalize Lambda; null inline)."
  value       = one(aws_sqs_queue.finalize_jobs[*].arn)
}

output "finalize_dlq_url" {
  description = "Queue mode: URL of the SQS queue holding finalize messages that kept failing (null inline)."
  value       = one(aws_sqs_queue.finalize_dlq[*].url)
}

output "finalize_event_source_mapping" {
  description = "Queue mode: UUID of the event source mapping from the finalize-jobs queue to the finalize Lambda (null inline)."
  value       = one(aws_lambda_event_source_mapping.finalize_jobs[*].uuid)
}
