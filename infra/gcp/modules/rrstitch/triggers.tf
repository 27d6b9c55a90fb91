# Chunk bucket object finalized → Pub/Sub → ingest, with a dead-letter topic.
#
# Cloud Storage publishes an OBJECT_FINALIZE notification (the object resource, JSON_API_V1)
# to the chunk-events topic; a push subscription POSTs each message to ingest's /pubsub route
# with an OIDC token of the trigger account. A 2xx acknowledges it (done, or refused for good);
# anything else is retried with backoff, and after max_delivery_attempts the Pub/Sub service
# agent moves the message to the dead-letter topic, where a pull subscription holds it for an
# operator and the daily reconcile re-ingests whatever chunk the index still lacks. (An
# Eventarc trigger would deliver the same events, but its managed subscription takes no
# dead-letter policy: after its retries an event would be dropped.)

locals {
  # The Pub/Sub service agent: forwards undeliverable messages to the dead-letter topic and
  # mints the push subscription's OIDC tokens.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.project_id
}

# Cloud Storage publishes as its service agent (created, if need be, by reading it here).
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_pubsub_topic" "chunk_events" {
  project = var.project_id
  name    = "${var.name_prefix}-chunk-events"
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_storage_notification" "chunk_finalized" {
  bucket             = google_storage_bucket.chunks.name
  topic              = google_pubsub_topic.chunk_events.id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = var.chunk_prefix == "" ? null : var.chunk_prefix

  # Cloud Storage checks that it may publish when the notification is created.
  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_chunk_events]
}

resource "google_pubsub_topic" "dead_letters" {
  project = var.project_id
  name    = "${var.name_prefix}-chunk-events-dead-letter"
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "ingest_push" {
  project = var.project_id
  name    = "${var.name_prefix}-ingest-push"
  topic   = google_pubsub_topic.chunk_events.id
  labels  = var.labels

  # For a push subscription this is how long Pub/Sub waits for ingest's answer: at least the
  # request timeout (Pub/Sub allows 10 to 600 s), so a slow success is not delivered twice.
  ack_deadline_seconds = min(max(var.ingest_timeout_secs, 10), 600)

  # How long an undelivered message is kept while it is retried.
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.ingest.uri}/pubsub"

    oidc_token {
      service_account_email = google_service_account.trigger.email
      audience              = google_cloud_run_v2_service.ingest.uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letters.id
    max_delivery_attempts = var.max_delivery_attempts
  }

  # Never deleted for inactivity (the default is 31 days without a delivery).
  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.trigger_invokes_ingest,
    google_service_account_iam_member.pubsub_agent_mints_trigger_tokens,
    google_pubsub_topic_iam_member.pubsub_agent_publishes_dead_letters,
  ]
}

# A topic with no subscription drops what is published to it: this one keeps the dead letters
# for dead_letter_retention_days, to be pulled (inspected, acknowledged) by an operator.
resource "google_pubsub_subscription" "dead_letters_hold" {
  project = var.project_id
  name    = "${var.name_prefix}-chunk-events-dead-letter-hold"
  topic   = google_pubsub_topic.dead_letters.id
  labels  = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# Every sweep_schedule: POST <finalize>/sweep as the scheduler account (OIDC, audience = the
# service URL). No retries: the next tick is the retry, and leases keep sweeps from colliding.
resource "google_cloud_scheduler_job" "sweep" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-sweep"
  description      = "rrstitch: finalize idle sessions"
  schedule         = var.sweep_schedule
  time_zone        = var.sweep_time_zone
  attempt_deadline = "${min(var.finalize_timeout_secs, 1800)}s"

  retry_config {
    retry_count = 0
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.finalize.uri}/sweep"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloud_run_v2_service.finalize.uri
    }
  }

  depends_on = [
    google_project_service.apis,
    google_cloud_run_v2_service_iam_member.scheduler_invokes_finalize,
  ]
}

# Every reconcile_schedule (daily by default): POST <finalize>/reconcile as the scheduler
# account. Finalize lists the chunk bucket and ingests every chunk object the index does not
# know: the repair path for events that were dead-lettered, or never sent. A failed run is
# retried twice, ten minutes apart (ingesting a known chunk again changes nothing).
resource "google_cloud_scheduler_job" "reconcile" {
  project          = var.project_id
  region           = var.region
  name             = "${var.name_prefix}-reconcile"
  description      = "rrstitch: ingest chunk objects the session index does not know"
  schedule         = var.reconcile_schedule
  time_zone        = var.sweep_time_zone
  attempt_deadline = "${min(var.finalize_timeout_secs, 1800)}s"

  retry_config {
    retry_count          = 2
    min_backoff_duration = "600s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = "${google_cloud_run_v2_service.finalize.uri}/reconcile"

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = google_cloud_run_v2_service.finalize.uri
    }
  }

  depends_on = [
    google_project_service.apis,
    google_cloud_run_v2_service_iam_member.scheduler_invokes_finalize,
  ]
}
