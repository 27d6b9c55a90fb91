# Queue mode (finalize_mode = "queue"): the sweep only dispatches. Finalize publishes one
# message per idle session ({"session_guid": ...}) to the finalize-jobs topic; a push
# subscription POSTs each to finalize's /pubsub/finalize with an OIDC token of the queue-push
# account, and the instance that takes it claims, stitches and completes that one session.
#
# Mirrors the ingest path (triggers.tf): a 2xx acknowledges (finalized, or nothing to do: a
# duplicate, late or stale message, or an unknown session), anything else is redelivered with
# backoff, and after finalize_max_delivery_attempts the Pub/Sub service agent moves the message
# to a dead-letter topic, where a pull subscription keeps it. A dead-lettered session is not
# lost: it stays idle in the index, and the next dispatch publishes it again.
#
# Nothing here exists in inline mode (the default), where the sweep stitches in-process.

locals {
  queue_mode = var.finalize_mode == "queue"
}

resource "google_pubsub_topic" "finalize_jobs" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-finalize-jobs"
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_topic" "finalize_dead_letters" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-finalize-jobs-dead-letter"
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

# The push subscription's identity: invokes finalize, and nothing else.
resource "google_service_account" "queue_push" {
  count = local.queue_mode ? 1 : 0

  project      = var.project_id
  account_id   = "${var.name_prefix}-queue-push"
  display_name = "rrstitch Pub/Sub push of finalize jobs (invokes finalize)"
}

resource "google_pubsub_subscription" "finalize_push" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-finalize-push"
  topic   = google_pubsub_topic.finalize_jobs[0].id
  labels  = var.labels

  # How long Pub/Sub waits for finalize's answer: one stitch, the request timeout, within
  # Pub/Sub's 10 to 600 s. A stitch that outlasts 600 s is delivered again meanwhile; that
  # second delivery finds the session claimed and is acknowledged at once.
  ack_deadline_seconds = min(max(var.finalize_timeout_secs, 10), 600)

  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${google_cloud_run_v2_service.finalize.uri}/pubsub/finalize"

    oidc_token {
      service_account_email = google_service_account.queue_push[0].email
      audience              = google_cloud_run_v2_service.finalize.uri
    }
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.finalize_dead_letters[0].id
    max_delivery_attempts = var.finalize_max_delivery_attempts
  }

  expiration_policy {
    ttl = ""
  }

  depends_on = [
    google_cloud_run_v2_service_iam_member.queue_push_invokes_finalize,
    google_service_account_iam_member.pubsub_agent_mints_queue_push_tokens,
    google_pubsub_topic_iam_member.pubsub_agent_publishes_finalize_dead_letters,
  ]
}

# Keeps the finalize dead letters for dead_letter_retention_days, to be pulled by an operator.
resource "google_pubsub_subscription" "finalize_dead_letters_hold" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-finalize-jobs-dead-letter-hold"
  topic   = google_pubsub_topic.finalize_dead_letters[0].id
  labels  = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# --- grants, each on its one resource

# The dispatcher publishes to the finalize-jobs topic, nowhere else.
resource "google_pubsub_topic_iam_member" "finalize_publishes_jobs" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.finalize_jobs[0].name
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${google_service_account.finalize.email}"
}

resource "google_cloud_run_v2_service_iam_member" "queue_push_invokes_finalize" {
  count = local.queue_mode ? 1 : 0

  project  = var.project_id
  location = google_cloud_run_v2_service.finalize.location
  name     = google_cloud_run_v2_service.finalize.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.queue_push[0].email}"
}

resource "google_service_account_iam_member" "pubsub_agent_mints_queue_push_tokens" {
  count = local.queue_mode ? 1 : 0

  service_account_id = google_service_account.queue_push[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_service_agent
}

resource "google_pubsub_topic_iam_member" "pubsub_agent_publishes_finalize_dead_letters" {
  count = local.queue_mode ? 1 : 0

  project = var.project_id
  topic   = google_pubsub_topic.finalize_dead_letters[0].name
  role    = "roles/pubsub.publisher"
  member  = local.pubsub_service_agent
}

resource "google_pubsub_subscription_iam_member" "pubsub_agent_acks_finalize_push" {
  count = local.queue_mode ? 1 : 0

  project      = var.project_id
  subscription = google_pubsub_subscription.finalize_push[0].name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_service_agent
}
