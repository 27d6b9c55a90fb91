# ---------------------------------------------------------------------------------------------
# Where

variable "project_id" {
  description = "GCP project that holds everything (buckets, Firestore, services, Pub/Sub, scheduler)."
  type        = string
}

variable "region" {
  description = "Region of the Cloud Run services, Artifact Registry repository and Cloud Scheduler job (e.g. europe-west1)."
  type        = string
}

variable "name_prefix" {
  description = "Prefix of every resource name (services, service accounts, topics, subscriptions, jobs, repository). Lowercase letters, digits and dashes, at most 16 characters."
  type        = string
  default     = "rrstitch"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,15}$", var.name_prefix))
    error_message = "name_prefix must be 1-16 characters: a lowercase letter, then lowercase letters, digits or dashes (service account ids are at most 30 characters)."
  }
}

variable "labels" {
  description = "Labels added to the resources that take labels."
  type        = map(string)
  default     = { app = "rrstitch" }
}

variable "enable_apis" {
  description = "Enable the APIs the module needs (run, firestore, cloudscheduler, artifactregistry, pubsub, storage, iam, logging, monitoring; eventarc with ingest_trigger = \"eventarc\"). They are never disabled on destroy."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Protect the Cloud Run services and the Firestore database from `terraform destroy`."
  type        = bool
  default     = true
}

# ---------------------------------------------------------------------------------------------
# Buckets

variable "chunk_bucket_name" {
  description = "Name of the chunk bucket (receives <timestamp>.json chunks; its object-finalized events drive ingest)."
  type        = string
}

variable "results_bucket_name" {
  description = "Name of the results bucket (receives <session_guid>.json)."
  type        = string
}

variable "bucket_location" {
  description = "Location of both buckets. Null: the region."
  type        = string
  default     = null
}

variable "chunk_prefix" {
  description = "Object-name prefix of chunks (RRSTITCH_CHUNK_PREFIX); with ingest_trigger = \"pubsub\" also the bucket notification's object_name_prefix. An Eventarc trigger cannot filter by prefix: every object's event reaches ingest, which ignores names outside the prefix. Empty: every object in the chunk bucket."
  type        = string
  default     = ""
}

variable "results_prefix" {
  description = "Object-name prefix of results (RRSTITCH_RESULTS_PREFIX). Empty: bucket root."
  type        = string
  default     = ""
}

variable "chunk_retention_days" {
  description = "Delete raw chunk objects this many days after creation (lifecycle rule): the stitched result holds the session, so raw chunks need not outlive late arrivals. Null: keep forever. The index's TTL follows it (RRSTITCH_INDEX_TTL_DAYS = this + 1, so a record outlives its chunk; 90 when null)."
  type        = number
  default     = 30

  validation {
    condition     = var.chunk_retention_days == null ? true : var.chunk_retention_days >= 1 && floor(var.chunk_retention_days) == var.chunk_retention_days
    error_message = "chunk_retention_days must be a whole number of days, at least 1 (or null to keep chunks)."
  }
}

variable "results_retention_days" {
  description = "Delete result objects this many days after creation (lifecycle rule). Null (the default): keep results."
  type        = number
  default     = null

  validation {
    condition     = var.results_retention_days == null ? true : var.results_retention_days >= 1 && floor(var.results_retention_days) == var.results_retention_days
    error_message = "results_retention_days must be a whole number of days, at least 1 (or null to keep results)."
  }
}

variable "results_cold_after_days" {
  description = "Move result objects (single files, segments, manifests) from STANDARD to results_cold_storage_class this many days after creation (lifecycle SetStorageClass). A colder class costs less to keep and more to read; the viewer and the catalog keep working. Null: stay in STANDARD."
  type        = number
  default     = 30

  validation {
    condition     = var.results_cold_after_days == null ? true : var.results_cold_after_days >= 1 && floor(var.results_cold_after_days) == var.results_cold_after_days
    error_message = "results_cold_after_days must be a whole number of days, at least 1 (or null to keep results in STANDARD)."
  }
}

variable "results_cold_storage_class" {
  description = "The class results move to: NEARLINE (30-day minimum storage, per-GB retrieval fee) or COLDLINE (cheaper to keep, 90-day minimum, higher retrieval fee). Both serve a read in milliseconds; ARCHIVE (365-day minimum, the highest retrieval fee) is refused."
  type        = string
  default     = "NEARLINE"

  validation {
    condition     = contains(["NEARLINE", "COLDLINE"], var.results_cold_storage_class)
    error_message = "results_cold_storage_class must be NEARLINE or COLDLINE."
  }
}

variable "chunk_cold_after_days" {
  description = "Move raw chunk objects from STANDARD to chunk_cold_storage_class this many days after creation, before chunk_retention_days deletes them. Null (the default): chunks stay in STANDARD, which is cheaper when they are deleted within the colder class's minimum storage duration anyway."
  type        = number
  default     = null

  validation {
    condition     = var.chunk_cold_after_days == null ? true : var.chunk_cold_after_days >= 1 && floor(var.chunk_cold_after_days) == var.chunk_cold_after_days
    error_message = "chunk_cold_after_days must be a whole number of days, at least 1 (or null to keep chunks in STANDARD)."
  }
}

variable "chunk_cold_storage_class" {
  description = "The class chunks move to: NEARLINE or COLDLINE (see results_cold_storage_class)."
  type        = string
  default     = "NEARLINE"

  validation {
    condition     = contains(["NEARLINE", "COLDLINE"], var.chunk_cold_storage_class)
    error_message = "chunk_cold_storage_class must be NEARLINE or COLDLINE."
  }
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete non-empty buckets."
  type        = bool
  default     = false
}

# ---------------------------------------------------------------------------------------------
# Firestore (session index)

variable "create_firestore_database" {
  description = "Create the Firestore database. False: use an existing Native-mode database named firestore_database."
  type        = bool
  default     = true
}

variable "firestore_database" {
  description = "Firestore database id (RRSTITCH_FIRESTORE_DATABASE)."
  type        = string
  default     = "(default)"
}

variable "firestore_location" {
  description = "Firestore location id (a region such as europe-west1, or a multi-region such as eur3/nam5). Null: the region."
  type        = string
  default     = null
}

variable "firestore_collection" {
  description = "Collection of session documents (RRSTITCH_FIRESTORE_COLLECTION); the composite indexes and the TTL policy are declared on it."
  type        = string
  default     = "rrstitch_sessions"
}

# ---------------------------------------------------------------------------------------------
# Functions

variable "ingest_image" {
  description = "Container image of the ingest service (infra/docker/Dockerfile with BIN=rrstitch-ingest), e.g. REGION-docker.pkg.dev/PROJECT/rrstitch/ingest:TAG."
  type        = string
}

variable "finalize_image" {
  description = "Container image of the finalize service (infra/docker/Dockerfile with BIN=rrstitch-finalize)."
  type        = string
}

variable "ingest_max_instances" {
  description = "Most ingest instances Cloud Run may run at once."
  type        = number
  default     = 20
}

variable "finalize_max_instances" {
  description = "Most finalize instances Cloud Run may run at once."
  type        = number
  default     = 3
}

variable "ingest_concurrency" {
  description = "Concurrent requests (chunk events) per ingest instance."
  type        = number
  default     = 80
}

variable "ingest_memory" {
  description = "Memory limit of an ingest instance."
  type        = string
  default     = "512Mi"
}

variable "finalize_memory" {
  description = "Memory limit of a finalize instance. Stitching streams, so this bounds read parallelism × largest chunk, not session size."
  type        = string
  default     = "2Gi"
}

variable "cpu" {
  description = "CPU limit of an instance of either service."
  type        = string
  default     = "1"
}

variable "ingest_timeout_secs" {
  description = "Request timeout of ingest, seconds (with ingest_trigger = \"pubsub\" also the push subscription's ack deadline, capped at 600)."
  type        = number
  default     = 60
}

variable "finalize_timeout_secs" {
  description = "Request timeout of finalize, seconds (also the scheduler's attempt deadline, capped at 1800)."
  type        = number
  default     = 900
}

variable "finalize_ingress" {
  description = "Ingress of the finalize service. INGRESS_TRAFFIC_INTERNAL_ONLY admits Cloud Scheduler and callers inside the project's VPC; INGRESS_TRAFFIC_ALL lets IAM-authorized callers reach POST /finalize from anywhere (IAM is enforced either way)."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"

  validation {
    condition     = contains(["INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_ALL"], var.finalize_ingress)
    error_message = "finalize_ingress must be INGRESS_TRAFFIC_INTERNAL_ONLY, INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER or INGRESS_TRAFFIC_ALL."
  }
}

variable "manual_finalize_invokers" {
  description = "IAM members (user:, group:, serviceAccount:) granted roles/run.invoker on the finalize service for manual POST /finalize. allUsers and allAuthenticatedUsers are refused."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for m in var.manual_finalize_invokers : !contains(["allusers", "allauthenticatedusers"], lower(m))])
    error_message = "manual_finalize_invokers must not contain allUsers or allAuthenticatedUsers: finalize has no unauthenticated path."
  }
}

# ---------------------------------------------------------------------------------------------
# Behaviour

variable "sweep_schedule" {
  description = "Cron schedule of the Cloud Scheduler job that POSTs /sweep to finalize."
  type        = string
  default     = "*/5 * * * *"
}

variable "reconcile_schedule" {
  description = "Cron schedule of the Cloud Scheduler job that POSTs /reconcile to finalize: ingest every chunk object the session index does not know (the repair path for dead-lettered or lost events)."
  type        = string
  default     = "17 3 * * *"
}

variable "sweep_time_zone" {
  description = "Time zone of sweep_schedule and reconcile_schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "sweep_budget_secs" {
  description = "Seconds a sweep or reconcile may run before it stops taking new work (RRSTITCH_SWEEP_BUDGET_SECS); below finalize_timeout_secs and 1800. Null: 80 % of the smaller of the two."
  type        = number
  default     = null

  validation {
    condition     = var.sweep_budget_secs == null ? true : var.sweep_budget_secs >= 1 && floor(var.sweep_budget_secs) == var.sweep_budget_secs
    error_message = "sweep_budget_secs must be null or a whole number of seconds, at least 1."
  }
}

variable "idle_secs" {
  description = "Seconds without a new chunk before a session is finalized (RRSTITCH_IDLE_SECS)."
  type        = number
  default     = 300
}

variable "lease_secs" {
  description = "Finalize lease, seconds (RRSTITCH_LEASE_SECS); a finalizer that dies loses its claim after this."
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

variable "restrict_rules" {
  description = "Ingestion restrictions (RRSTITCH_RESTRICT on both services: ingest, and finalize's reconcile): the JSON itself; see the README, Controls and cost. Empty (the default): every chunk is taken."
  type        = string
  default     = ""

  validation {
    condition     = var.restrict_rules == "" || can(jsondecode(var.restrict_rules))
    error_message = "restrict_rules must be empty or a JSON document (the services check the rules themselves at start-up)."
  }
}

variable "session_max_bytes" {
  description = "Per-session quota in bytes (RRSTITCH_SESSION_MAX_BYTES on both services: ingest, and finalize's reconcile and results): once a session's recorded chunks would pass it, later chunks are refused as over_quota, kept in the bucket, and the result's metadata.warnings says how many bytes; see the README, Controls and cost. null or 0 (the default): no quota."
  type        = number
  default     = null

  validation {
    condition     = var.session_max_bytes == null || (try(var.session_max_bytes >= 0 && floor(var.session_max_bytes) == var.session_max_bytes, false))
    error_message = "session_max_bytes must be null, 0 (no quota) or a whole number of bytes."
  }
}

variable "redact_rules" {
  description = "Redaction rules applied while stitching (RRSTITCH_REDACT on the finalize service): the rules JSON itself, e.g. file(\"redact.json\"); see the README, Privacy, and docs/redact.example.json. Empty (the default): no redaction."
  type        = string
  default     = ""

  validation {
    condition     = var.redact_rules == "" || can(jsondecode(var.redact_rules))
    error_message = "redact_rules must be empty or a JSON rules document (the finalize service checks the rules themselves at start-up)."
  }
}

# ---------------------------------------------------------------------------------------------
# How chunk events reach ingest (triggers.tf)

variable "ingest_trigger" {
  description = "pubsub: a bucket notification to a Pub/Sub topic whose push subscription POSTs to ingest's /pubsub, with a dead-letter topic (max_delivery_attempts, dead_letter_retention_days). eventarc: an Eventarc trigger on google.cloud.storage.object.v1.finalized POSTs CloudEvents to ingest's /, with no dead-letter topic: an event still failing after Eventarc's 24 h of retries is dropped and the daily reconcile ingests its chunk (README, Pub/Sub or Eventarc)."
  type        = string
  default     = "pubsub"

  validation {
    condition     = contains(["pubsub", "eventarc"], var.ingest_trigger)
    error_message = "ingest_trigger must be pubsub or eventarc."
  }
}

# ---------------------------------------------------------------------------------------------
# Dead letters (ingest_trigger = "pubsub", and queue mode)

variable "max_delivery_attempts" {
  description = "ingest_trigger = \"pubsub\": deliveries of a chunk event to ingest (with retry backoff from 10 s to 600 s) before Pub/Sub moves it to the dead-letter topic (5 to 100)."
  type        = number
  default     = 10

  validation {
    condition     = var.max_delivery_attempts >= 5 && var.max_delivery_attempts <= 100
    error_message = "max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

variable "dead_letter_retention_days" {
  description = "Days the dead-letter hold subscriptions (chunk events with ingest_trigger = \"pubsub\", finalize jobs in queue mode) keep an unacknowledged dead letter (1 to 31)."
  type        = number
  default     = 7

  validation {
    condition     = var.dead_letter_retention_days >= 1 && var.dead_letter_retention_days <= 31 && floor(var.dead_letter_retention_days) == var.dead_letter_retention_days
    error_message = "dead_letter_retention_days must be a whole number from 1 to 31 (Pub/Sub keeps messages at most 31 days)."
  }
}

# ---------------------------------------------------------------------------------------------
# Finalize mode (queue.tf)

variable "finalize_mode" {
  description = "inline: the sweep stitches idle sessions in one finalize request. queue: the sweep publishes one Pub/Sub message per idle session and a push subscription hands each to a finalize instance (RRSTITCH_FINALIZE_MODE; README, Inline or queue)."
  type        = string
  default     = "inline"

  validation {
    condition     = contains(["inline", "queue"], var.finalize_mode)
    error_message = "finalize_mode must be inline or queue."
  }
}

variable "finalize_queue_concurrency" {
  description = "Queue mode: concurrent requests (sessions being stitched) per finalize instance. Each holds read parallelism × chunk size in memory; Cloud Run starts more instances, up to finalize_max_instances, for a longer queue."
  type        = number
  default     = 4

  validation {
    condition     = var.finalize_queue_concurrency >= 1 && var.finalize_queue_concurrency <= 1000 && floor(var.finalize_queue_concurrency) == var.finalize_queue_concurrency
    error_message = "finalize_queue_concurrency must be a whole number from 1 to 1000 (Cloud Run's limits)."
  }
}

variable "finalize_max_delivery_attempts" {
  description = "Queue mode: deliveries of a finalize message (retry backoff 10 s to 600 s) before Pub/Sub moves it to the finalize dead-letter topic (5 to 100). Only transient failures are redelivered."
  type        = number
  default     = 5

  validation {
    condition     = var.finalize_max_delivery_attempts >= 5 && var.finalize_max_delivery_attempts <= 100
    error_message = "finalize_max_delivery_attempts must be between 5 and 100 (Pub/Sub's limits)."
  }
}

# ---------------------------------------------------------------------------------------------
# Operating: the objective and alerts (monitoring.tf)

variable "alert_notification_channels" {
  description = "Cloud Monitoring notification channel ids (projects/<p>/notificationChannels/<id>) the alerts notify. Empty: incidents only show in Cloud Monitoring."
  type        = list(string)
  default     = []
}

variable "freshness_objective_secs" {
  description = "The objective: 95 % of sessions are written within this many seconds of their last chunk's upload; the freshness alert fires above it. Null: idle_secs + 300."
  type        = number
  default     = null

  validation {
    condition     = var.freshness_objective_secs == null ? true : var.freshness_objective_secs > 0
    error_message = "freshness_objective_secs must be null or a positive number of seconds."
  }
}

variable "alert_error_rate" {
  description = "5xx answers per second (ingest and finalize, each) above which, for 10 minutes, the errors alert fires."
  type        = number
  default     = 0.05

  validation {
    condition     = var.alert_error_rate >= 0
    error_message = "alert_error_rate must be a rate, 0 or more answers per second."
  }
}

variable "alert_sweep_deferring_secs" {
  description = "The sweep-deferring alert fires when every sweep (or dispatch) for this many seconds left idle sessions for the next tick: three ticks of the default sweep_schedule. A multiple of 60, at least 300."
  type        = number
  default     = 900

  validation {
    condition     = var.alert_sweep_deferring_secs >= 300 && var.alert_sweep_deferring_secs % 60 == 0
    error_message = "alert_sweep_deferring_secs must be a whole number of minutes, at least 300 seconds."
  }
}
