variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions, roles, table, rule, log groups)."
  type        = string
  default     = "rrstitch"
}

variable "chunk_bucket_name" {
  description = "Name of the S3 bucket that receives the chunk objects (<timestamp>.json)."
  type        = string
}

variable "results_bucket_name" {
  description = "Name of the S3 bucket that receives the stitched <session_guid>.json results."
  type        = string
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets (tests, throw-away stacks)."
  type        = bool
  default     = false
}

variable "chunk_prefix" {
  description = "Object-name prefix of chunks (RRSTITCH_CHUNK_PREFIX); also the S3 notification's filter_prefix. Empty: every object."
  type        = string
  default     = ""
}

variable "results_prefix" {
  description = "Object-name prefix of results (RRSTITCH_RESULTS_PREFIX). Empty: bucket root."
  type        = string
  default     = ""
}

variable "table_name" {
  description = "DynamoDB session-index table name. Null: \"<name_prefix>-sessions\"."
  type        = string
  default     = null
}

variable "ingest_zip" {
  description = "Path of the ingest Lambda zip (cargo lambda build --release --bin rrstitch-ingest --output-format zip → target/lambda/rrstitch-ingest/bootstrap.zip)."
  type        = string
}

variable "finalize_zip" {
  description = "Path of the finalize Lambda zip (target/lambda/rrstitch-finalize/bootstrap.zip)."
  type        = string
}

variable "architecture" {
  description = "Lambda architecture the zips were built for: x86_64 or arm64."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "ingest_memory_mb" {
  description = "Memory of the ingest Lambda, MB."
  type        = number
  default     = 256
}

variable "ingest_timeout_secs" {
  description = "Timeout of the ingest Lambda, seconds."
  type        = number
  default     = 60
}

variable "finalize_memory_mb" {
  description = "Memory of the finalize Lambda, MB. Stitching streams: this bounds read parallelism × largest chunk, not session size."
  type        = number
  default     = 1024
}

variable "finalize_timeout_secs" {
  description = "Timeout of the finalize Lambda, seconds (at most 900)."
  type        = number
  default     = 900
}

variable "sweep_schedule" {
  description = "EventBridge schedule expression of the sweep."
  type        = string
  default     = "rate(5 minutes)"
}

variable "sweep_budget_secs" {
  description = "Seconds a sweep or reconcile may run before it stops taking new work (RRSTITCH_SWEEP_BUDGET_SECS); below finalize_timeout_secs. Null: 80 % of finalize_timeout_secs."
  type        = number
  default     = null

  validation {
    condition     = var.sweep_budget_secs == null ? true : var.sweep_budget_secs >= 1 && floor(var.sweep_budget_secs) == var.sweep_budget_secs
    error_message = "sweep_budget_secs must be null or a whole number of seconds, at least 1."
  }
}

variable "reconcile_schedule" {
  description = "EventBridge schedule expression of the reconcile: the finalize function ingests every chunk object the index does not know."
  type        = string
  default     = "rate(1 day)"
}

variable "ingest_max_event_age_secs" {
  description = "Longest an S3 event may wait in Lambda's asynchronous queue (throttling, retries) before it goes to the dead-letter queue, seconds (60 to 21600)."
  type        = number
  default     = 21600

  validation {
    condition     = var.ingest_max_event_age_secs >= 60 && var.ingest_max_event_age_secs <= 21600
    error_message = "ingest_max_event_age_secs must be between 60 and 21600 (Lambda's limits)."
  }
}

variable "dead_letter_retention_secs" {
  description = "How long the ingest dead-letter queue keeps a message, seconds (at most 1209600, 14 days)."
  type        = number
  default     = 1209600

  validation {
    condition     = var.dead_letter_retention_secs >= 60 && var.dead_letter_retention_secs <= 1209600
    error_message = "dead_letter_retention_secs must be between 60 and 1209600 (SQS's limits)."
  }
}

variable "alarm_actions" {
  description = "ARNs (e.g. an SNS topic) every alarm notifies when it fires and again when it clears: dead letters, freshness, errors, sweeps deferring. Empty: the alarms only show in CloudWatch."
  type        = list(string)
  default     = []
}

variable "finalize_mode" {
  description = "inline: the scheduled sweep stitches idle sessions itself. queue: it sends one SQS message per idle session, and an event source mapping hands them to finalize in batches (RRSTITCH_FINALIZE_MODE; README, Inline or queue)."
  type        = string
  default     = "inline"

  validation {
    condition     = contains(["inline", "queue"], var.finalize_mode)
    error_message = "finalize_mode must be inline or queue."
  }
}

variable "finalize_batch_size" {
  description = "Queue mode: finalize messages per invocation (1 to 10); one invocation stitches them RRSTITCH_SESSION_PARALLELISM at a time, all within finalize_timeout_secs."
  type        = number
  default     = 4

  validation {
    condition     = var.finalize_batch_size >= 1 && var.finalize_batch_size <= 10
    error_message = "finalize_batch_size must be between 1 and 10 (SQS's batch limit without a batching window)."
  }
}

variable "finalize_max_concurrency" {
  description = "Queue mode: most finalize invocations the event source mapping runs at once (2 to 1000). Null: as many as Lambda allows."
  type        = number
  default     = null

  validation {
    condition     = var.finalize_max_concurrency == null ? true : var.finalize_max_concurrency >= 2 && var.finalize_max_concurrency <= 1000
    error_message = "finalize_max_concurrency must be null or between 2 and 1000 (Lambda's limits)."
  }
}

variable "finalize_max_receive_count" {
  description = "Queue mode: receives of a finalize message (each a transient failure) before SQS moves it to the finalize dead-letter queue."
  type        = number
  default     = 5

  validation {
    condition     = var.finalize_max_receive_count >= 1 && var.finalize_max_receive_count <= 1000
    error_message = "finalize_max_receive_count must be between 1 and 1000 (SQS's limits)."
  }
}

variable "finalize_queue_retention_secs" {
  description = "Queue mode: how long the finalize-jobs queue keeps an unfinished message, seconds (60 to 1209600). A session whose message expires is still idle and is sent again by the next sweep."
  type        = number
  default     = 345600

  validation {
    condition     = var.finalize_queue_retention_secs >= 60 && var.finalize_queue_retention_secs <= 1209600
    error_message = "finalize_queue_retention_secs must be between 60 and 1209600 (SQS's limits)."
  }
}

variable "idle_secs" {
  description = "Seconds without a new chunk before a session is finalized (RRSTITCH_IDLE_SECS)."
  type        = number
  default     = 300
}

variable "lease_secs" {
  description = "Finalize lease, seconds (RRSTITCH_LEASE_SECS)."
  type        = number
  default     = 600
}

variable "max_chunk_bytes" {
  description = "Largest chunk object read, bytes (RRSTITCH_MAX_CHUNK_BYTES)."
  type        = number
  default     = 67108864
}

variable "segments" {
  description = "Also write each session as gzip'd segments with a manifest (<guid>/manifest.json, <guid>/<generation>/NNNNN.json.gz; RRSTITCH_SEGMENTS), so a player can load a large session progressively and seek."
  type        = bool
  default     = true
}

variable "output_gzip" {
  description = "Write results gzip-compressed (RRSTITCH_OUTPUT_GZIP)."
  type        = bool
  default     = false
}

variable "redact_rules" {
  description = "Redaction rules applied while stitching (RRSTITCH_REDACT on the finalize function): the rules JSON itself, e.g. file(\"redact.json\"); see the README, Privacy, and docs/redact.example.json. Empty (the default): no redaction."
  type        = string
  default     = ""

  validation {
    condition     = var.redact_rules == "" || can(jsondecode(var.redact_rules))
    error_message = "redact_rules must be empty or a JSON rules document (the finalize function checks the rules themselves at start-up)."
  }
}

variable "restrict_rules" {
  description = "Ingestion restrictions (RRSTITCH_RESTRICT on both functions: ingest, and finalize's reconcile): the JSON itself, e.g. {\"drop_environments\": [\"staging\"], \"sample\": {\"production\": 0.25}}; see the README, Controls and cost. Empty (the default): every chunk is taken."
  type        = string
  default     = ""

  validation {
    condition     = var.restrict_rules == "" || can(jsondecode(var.restrict_rules))
    error_message = "restrict_rules must be empty or a JSON document (the functions check the rules themselves at start-up)."
  }
}

variable "session_max_bytes" {
  description = "Per-session quota in bytes (RRSTITCH_SESSION_MAX_BYTES on both functions: ingest, and finalize's reconcile and results): once a session's recorded chunks would pass it, later chunks are refused as over_quota, kept in the bucket, and the result's metadata.warnings says how many bytes; see the README, Controls and cost. null or 0 (the default): no quota."
  type        = number
  default     = null

  validation {
    condition     = var.session_max_bytes == null || (try(var.session_max_bytes >= 0 && floor(var.session_max_bytes) == var.session_max_bytes, false))
    error_message = "session_max_bytes must be null, 0 (no quota) or a whole number of bytes."
  }
}

variable "log_retention_days" {
  description = "CloudWatch log retention of both functions, days."
  type        = number
  default     = 30
}

variable "extra_environment" {
  description = "Extra environment variables for both Lambdas (e.g. AWS_ENDPOINT_URL for an emulator)."
  type        = map(string)
  default     = {}
}

variable "endpoint_url" {
  description = "Send every AWS API call to this endpoint (an emulator such as moto, e.g. http://127.0.0.1:5000). Null: real AWS."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = { app = "rrstitch" }
}

# ---------------------------------------------------------------------------------------------
# Retention (lifecycle rules; `rrstitch prune` does the same for local mode)

variable "chunk_retention_days" {
  description = "Delete raw chunk objects this many days after creation (S3 lifecycle rule): the stitched result holds the session, so raw chunks need not outlive late arrivals. Null: keep forever. The index's TTL follows it (RRSTITCH_INDEX_TTL_DAYS = this + 1, so a record outlives its chunk; 90 when null)."
  type        = number
  default     = 30

  validation {
    condition     = var.chunk_retention_days == null ? true : var.chunk_retention_days >= 1 && floor(var.chunk_retention_days) == var.chunk_retention_days
    error_message = "chunk_retention_days must be a whole number of days, at least 1 (or null to keep chunks)."
  }
}

variable "results_retention_days" {
  description = "Delete result objects this many days after creation (S3 lifecycle rule). Null (the default): keep results."
  type        = number
  default     = null

  validation {
    condition     = var.results_retention_days == null ? true : var.results_retention_days >= 1 && floor(var.results_retention_days) == var.results_retention_days
    error_message = "results_retention_days must be a whole number of days, at least 1 (or null to keep results)."
  }
}

# ---------------------------------------------------------------------------------------------
# Storage tiers (lifecycle transitions to a colder class that still serves a GET at once)

variable "results_cold_after_days" {
  description = "Move result objects (single files, segments, manifests) to results_cold_storage_class this many days after creation (S3 lifecycle transition). A colder class costs less to keep and more to read; the viewer and the catalog keep working. Null: stay in STANDARD. S3 never transitions objects under 128 KB (its default minimum), so small results stay in STANDARD."
  type        = number
  default     = 30

  validation {
    condition     = var.results_cold_after_days == null ? true : var.results_cold_after_days >= 1 && floor(var.results_cold_after_days) == var.results_cold_after_days
    error_message = "results_cold_after_days must be a whole number of days, at least 1 (or null to keep results in STANDARD)."
  }
}

variable "results_cold_storage_class" {
  description = "The class results move to: STANDARD_IA (30-day minimum before the move and 30-day minimum storage, per-GB retrieval fee) or GLACIER_IR (cheaper to keep, 90-day minimum storage, higher retrieval fee). Both serve a GET in milliseconds; the Glacier classes that need a restore are refused."
  type        = string
  default     = "STANDARD_IA"

  validation {
    condition     = contains(["STANDARD_IA", "GLACIER_IR"], var.results_cold_storage_class)
    error_message = "results_cold_storage_class must be STANDARD_IA or GLACIER_IR (classes that serve a GET without a restore)."
  }
}

variable "chunk_cold_after_days" {
  description = "Move raw chunk objects to chunk_cold_storage_class this many days after creation, before chunk_retention_days deletes them. Null (the default): chunks stay in STANDARD, which is cheaper when they are deleted within the cold class's minimum storage duration anyway."
  type        = number
  default     = null

  validation {
    condition     = var.chunk_cold_after_days == null ? true : var.chunk_cold_after_days >= 1 && floor(var.chunk_cold_after_days) == var.chunk_cold_after_days
    error_message = "chunk_cold_after_days must be a whole number of days, at least 1 (or null to keep chunks in STANDARD)."
  }
}

variable "chunk_cold_storage_class" {
  description = "The class chunks move to: STANDARD_IA or GLACIER_IR (see results_cold_storage_class)."
  type        = string
  default     = "STANDARD_IA"

  validation {
    condition     = contains(["STANDARD_IA", "GLACIER_IR"], var.chunk_cold_storage_class)
    error_message = "chunk_cold_storage_class must be STANDARD_IA or GLACIER_IR (classes that serve a GET without a restore)."
  }
}

# ---------------------------------------------------------------------------------------------
# Operating: metrics, the objective and alarms (metrics.tf)

variable "metrics_namespace" {
  description = "CloudWatch namespace of the functions' Embedded Metric Format metrics (RRSTITCH_METRICS_NAMESPACE)."
  type        = string
  default     = "rrstitch"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#-][A-Za-z0-9._/#:-]{0,254}$", var.metrics_namespace))
    error_message = "metrics_namespace must be 1 to 255 letters, digits or . _ - / # : and not start with a colon."
  }
}

variable "freshness_objective_secs" {
  description = "The objective: 95 % of sessions are written within this many seconds of their last chunk's upload; the freshness alarm fires above it. Null: idle_secs + 300."
  type        = number
  default     = null

  validation {
    condition     = var.freshness_objective_secs == null ? true : var.freshness_objective_secs > 0
    error_message = "freshness_objective_secs must be null or a positive number of seconds."
  }
}

variable "alert_error_ratio" {
  description = "Errors per invocation (each function, over 5 minutes, twice in a row) above which the errors alarm fires."
  type        = number
  default     = 0.05

  validation {
    condition     = var.alert_error_ratio >= 0 && var.alert_error_ratio <= 1
    error_message = "alert_error_ratio must be a ratio from 0 to 1."
  }
}

variable "alert_sweep_deferring_periods" {
  description = "The sweep-deferring alarm fires when every sweep for this many 5-minute periods in a row left idle sessions for the next one."
  type        = number
  default     = 3

  validation {
    condition     = var.alert_sweep_deferring_periods >= 1 && floor(var.alert_sweep_deferring_periods) == var.alert_sweep_deferring_periods
    error_message = "alert_sweep_deferring_periods must be a whole number, at least 1."
  }
}
