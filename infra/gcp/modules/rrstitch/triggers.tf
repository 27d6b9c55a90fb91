# Chunk bucket object finalized → ingest, by one of two routes (ingest_trigger; README, Pub/Sub
# or Eventarc).
#
# pubsub (the default): Cloud Storage publishes an OBJECT_FINALIZE notification (the object
# resource, JSON_API_V1) to the chunk-events topic; a push subscription POSTs each message to
# ingest's /pubsub route with an OIDC token of the trigger account. A 2xx acknowledges it
# (done, or refused for good); anything else is retried with backoff, and after
# max_delivery_attempts the Pub/Sub service agent moves the message to the dead-letter topic,
# where a pull subscription holds it for an operator and the daily reconcile re-ingests
# whatever chunk the index still lacks. The module owns that subscription, which is why this
# route is the default: it is the one with a dead-letter policy.
#
# eventarc: an Eventarc trigger on google.cloud.storage.object.v1.finalized for the chunk
# bucket POSTs each event as a CloudEvent to ingest's / route, as the trigger account. Eventarc
# creates and owns the Pub/Sub topic and subscription underneath, and its subscription has no
# dead-letter policy: an event ingest keeps failing is retried for the subscription's 24 h
# retention and then dropped. The daily reconcile is then the only safety net: it ingests any
# chunk the index lacks, dropped event or not. None of the pubsub route's resources exist in
# this mode, and the trigger does not exist in the other.

locals {
  # Exactly one is true (the variable's validation).
  pubsub_trigger   = var.ingest_trigger == "pubsub"
  eventarc_trigger = var.ingest_trigger == "eventarc"

  # The Pub/Sub service agent: mints the OIDC tokens of every push as the trigger account
  # (the module's push subscription, or Eventarc's) and forwards undeliverable messages to the
  # dead-letter topic.
  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

data "google_project" "this" {
  project_id = var.project_id
}

# Cloud Storage publishes as its service agent (created, if need be, by reading it here), to the
# chunk-events topic or to Eventarc's.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

# --- pubsub

resource "google_pubsub_topic" "chunk_events" {
  count = local.pubsub_trigger ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-chunk-events"
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_storage_notification" "chunk_finalized" {
  count = local.pubsub_trigger ? 1 : 0

  bucket             = google_storage_bucket.chunks.name
  topic              = google_pubsub_topic.chunk_events[0].id
  payload_format     = "JSON_API_V1"
  event_types        = ["OBJECT_FINALIZE"]
  object_name_prefix = var.chunk_prefix == "" ? null : var.chunk_prefix

  # Cloud Storage checks that it may publish when the notification is created.
  depends_on = [google_pubsub_topic_iam_member.gcs_publishes_chunk_events]
}

resource "google_pubsub_topic" "dead_letters" {
  count = local.pubsub_trigger ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-chunk-events-dead-letter"
  labels  = var.labels

  depends_on = [google_project_service.apis]
}

resource "google_pubsub_subscription" "ingest_push" {
  count = local.pubsub_trigger ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-ingest-push"
  topic   = google_pubsub_topic.chunk_events[0].id
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
    dead_letter_topic     = google_pubsub_topic.dead_letters[0].id
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
  count = local.pubsub_trigger ? 1 : 0

  project = var.project_id
  name    = "${var.name_prefix}-chunk-events-dead-letter-hold"
  topic   = google_pubsub_topic.dead_letters[0].id
  labels  = var.labels

  ack_deadline_seconds       = 60
  message_retention_duration = "${var.dead_letter_retention_days * 86400}s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

# --- eventarc

# A Cloud Storage trigger must be in its bucket's location: the region by default, or the
# bucket_location (Eventarc spells multi- and dual-regions in lower case: "eu", "nam4"). The
# destination is ingest in its own region. Eventarc filters Cloud Storage events by type and
# bucket only, not by object name, so every object written to the chunk bucket reaches ingest;
# ingest ignores a name outside chunk_prefix without reading it (answered 200).
resource "google_eventarc_trigger" "chunk_finalized" {
  count = local.eventarc_trigger ? 1 : 0

  project         = var.project_id
  name            = "${var.name_prefix}-chunk-finalized"
  location        = lower(local.bucket_location)
  labels          = var.labels
  service_account = google_service_account.trigger.email
  # The StorageObjectData as JSON, which is what ingest's / route decodes.
  event_data_content_type = "application/json"

  matching_criteria {
    attribute = "type"
    value     = "google.cloud.storage.object.v1.finalized"
  }

  matching_criteria {
    attribute = "bucket"
    value     = google_storage_bucket.chunks.name
  }

  destination {
    cloud_run_service {
      service = google_cloud_run_v2_service.ingest.name
      region  = google_cloud_run_v2_service.ingest.location
      path    = "/"
    }
  }

  # Eventarc checks the trigger account and the Cloud Storage service agent's grants when the
  # trigger is created, and the first event needs the invoker grant and the minted token.
  depends_on = [
    google_project_service.apis,
    google_project_iam_member.trigger_receives_events,
    google_project_iam_member.gcs_publishes_eventarc_events,
    google_cloud_run_v2_service_iam_member.trigger_invokes_ingest,
    google_service_account_iam_member.pubsub_agent_mints_trigger_tokens,
  ]
}

# --- both

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
# know: the repair path for events that were dead-lettered (pubsub), dropped after Eventarc's
# retries (eventarc), or never sent. A failed run is retried twice, ten minutes apart
# (ingesting a known chunk again changes nothing).
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
