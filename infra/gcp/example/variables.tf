variable "project_id" {
  description = "GCP project to deploy into."
  type        = string
}

variable "region" {
  description = "Region of the services, repository, scheduler job and (by default) buckets and Firestore."
  type        = string
  default     = "europe-west1"
}

variable "name_prefix" {
  description = "Prefix of every resource name."
  type        = string
  default     = "rrstitch"
}

variable "chunk_bucket_name" {
  description = "Globally unique name of the chunk bucket."
  type        = string
}

variable "results_bucket_name" {
  description = "Globally unique name of the results bucket."
  type        = string
}

variable "ingest_image" {
  description = "Ingest image, e.g. europe-west1-docker.pkg.dev/PROJECT/rrstitch/rrstitch-ingest:TAG."
  type        = string
}

variable "finalize_image" {
  description = "Finalize image, e.g. europe-west1-docker.pkg.dev/PROJECT/rrstitch/rrstitch-finalize:TAG."
  type        = string
}

variable "firestore_location" {
  description = "Firestore location (region or multi-region such as eur3). Null: the region."
  type        = string
  default     = null
}

variable "sweep_schedule" {
  description = "Cron schedule of the sweep."
  type        = string
  default     = "*/5 * * * *"
}

variable "reconcile_schedule" {
  description = "Cron schedule of the reconcile (ingests every chunk object the index does not know)."
  type        = string
  default     = "17 3 * * *"
}

variable "ingest_trigger" {
  description = "How chunk events reach ingest: pubsub (a push subscription with a dead-letter topic) or eventarc (an Eventarc trigger, CloudEvents; no dead-letter topic, the daily reconcile is the safety net). The module's README, Pub/Sub or Eventarc."
  type        = string
  default     = "pubsub"
}

variable "max_delivery_attempts" {
  description = "ingest_trigger = \"pubsub\": deliveries of a chunk event to ingest before it goes to the dead-letter topic (5 to 100)."
  type        = number
  default     = 10
}

variable "finalize_mode" {
  description = "inline: the sweep stitches idle sessions itself; queue: it publishes one Pub/Sub message per idle session for finalize instances to take (README, Inline or queue)."
  type        = string
  default     = "inline"
}

variable "idle_secs" {
  description = "Seconds without a new chunk before a session is finalized."
  type        = number
  default     = 300
}

variable "segments" {
  description = "Also write gzip'd segments and a manifest for progressive playback."
  type        = bool
  default     = true
}

variable "output_gzip" {
  description = "Write results gzip-compressed."
  type        = bool
  default     = false
}

variable "restrict_rules" {
  description = "Ingestion restrictions (drop environments or guid patterns, sample per environment), as JSON; empty: none."
  type        = string
  default     = ""
}

variable "session_max_bytes" {
  description = "Per-session quota in bytes: later chunks of a session past it are refused as over_quota; null or 0: none."
  type        = number
  default     = null
}

variable "redact_rules" {
  description = "Redaction rules applied while stitching, as JSON (e.g. file(\"redact.json\")); empty: none."
  type        = string
  default     = ""
}

variable "manual_finalize_invokers" {
  description = "Members allowed to POST /finalize by hand (user:, group:, serviceAccount:)."
  type        = list(string)
  default     = []
}

variable "deletion_protection" {
  description = "Protect the services and the Firestore database from destroy."
  type        = bool
  default     = true
}

variable "force_destroy" {
  description = "Let destroy delete non-empty buckets."
  type        = bool
  default     = false
}
