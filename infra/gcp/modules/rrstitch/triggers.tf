# Chunk bucket object finalized → ingest. Eventarc requires the trigger in the bucket's
# location; it delivers CloudEvents (HTTP POST /) with an OIDC token of the trigger account.
resource "google_eventarc_trigger" "chunk_finalized" {
  project         = var.project_id
  name            = "${var.name_prefix}-chunk-finalized"
  location        = lower(local.bucket_location)
  service_account = google_service_account.trigger.email
  labels          = var.labels

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
    }
  }

  depends_on = [
    google_project_iam_member.gcs_pubsub_publisher,
    google_project_iam_member.trigger_event_receiver,
    google_cloud_run_v2_service_iam_member.trigger_invokes_ingest,
  ]
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
