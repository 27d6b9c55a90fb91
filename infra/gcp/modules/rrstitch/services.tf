# The two functions as Cloud Run services. Both are internal-only by default: Pub/Sub push and
# Cloud Scheduler in the same project count as internal callers, and IAM (run.invoker) is
# enforced on top. Cloud Run sets PORT itself; every other setting is an RRSTITCH_*
# variable (shared/edge/src/config/variables.rs). Optional prefixes are set only when non-empty: the
# binaries treat a missing variable and an empty one alike.

resource "google_cloud_run_v2_service" "ingest" {
  project             = var.project_id
  name                = "${var.name_prefix}-ingest"
  location            = var.region
  description         = "rrstitch ingest: one chunk-object event in (POST /pubsub from the push subscription), one session-index record out"
  ingress             = "INGRESS_TRAFFIC_INTERNAL_ONLY"
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account                  = google_service_account.ingest.email
    timeout                          = "${var.ingest_timeout_secs}s"
    max_instance_request_concurrency = var.ingest_concurrency

    scaling {
      min_instance_count = 0
      max_instance_count = var.ingest_max_instances
    }

    containers {
      image = var.ingest_image

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.ingest_memory
        }
      }

      env {
        name  = "RRSTITCH_CHUNKS"
        value = "gs://${google_storage_bucket.chunks.name}"
      }
      dynamic "env" {
        for_each = var.chunk_prefix == "" ? [] : [var.chunk_prefix]
        content {
          name  = "RRSTITCH_CHUNK_PREFIX"
          value = env.value
        }
      }
      env {
        name  = "RRSTITCH_INDEX"
        value = "firestore"
      }
      env {
        name  = "RRSTITCH_FIRESTORE_PROJECT"
        value = var.project_id
      }
      env {
        name  = "RRSTITCH_FIRESTORE_DATABASE"
        value = local.firestore_database
      }
      env {
        name  = "RRSTITCH_FIRESTORE_COLLECTION"
        value = var.firestore_collection
      }
      env {
        name  = "RRSTITCH_MAX_CHUNK_BYTES"
        value = tostring(var.max_chunk_bytes)
      }
      env {
        name  = "RRSTITCH_INDEX_TTL_DAYS"
        value = tostring(local.index_ttl_days)
      }
      # Both services ingest (finalize through reconcile); no rules, no variable.
      dynamic "env" {
        for_each = var.restrict_rules == "" ? [] : [var.restrict_rules]
        content {
          name  = "RRSTITCH_RESTRICT"
          value = env.value
        }
      }
      # Likewise the per-session quota; none (null or 0), no variable.
      dynamic "env" {
        for_each = coalesce(var.session_max_bytes, 0) == 0 ? [] : [tostring(var.session_max_bytes)]
        content {
          name  = "RRSTITCH_SESSION_MAX_BYTES"
          value = env.value
        }
      }
      env {
        name  = "RRSTITCH_LOG_FORMAT"
        value = "json"
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_storage_bucket_iam_member.ingest_chunks_viewer,
    google_project_iam_member.ingest_datastore_user,
  ]
}

resource "google_cloud_run_v2_service" "finalize" {
  project             = var.project_id
  name                = "${var.name_prefix}-finalize"
  location            = var.region
  description         = "rrstitch finalize: POST /sweep (scheduler) finalizes or dispatches idle sessions, POST /pubsub/finalize (queue mode) one dispatched session, POST /reconcile (scheduler) ingests unindexed chunks, POST /finalize one session"
  ingress             = var.finalize_ingress
  deletion_protection = var.deletion_protection
  labels              = var.labels

  template {
    service_account = google_service_account.finalize.email
    timeout         = "${var.finalize_timeout_secs}s"
    # Queue mode: each request stitches one session; bound them per instance. Inline: the
    # platform default (a sweep is one request).
    max_instance_request_concurrency = local.queue_mode ? var.finalize_queue_concurrency : null

    scaling {
      min_instance_count = 0
      max_instance_count = var.finalize_max_instances
    }

    containers {
      image = var.finalize_image

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.finalize_memory
        }
      }

      env {
        name  = "RRSTITCH_CHUNKS"
        value = "gs://${google_storage_bucket.chunks.name}"
      }
      dynamic "env" {
        for_each = var.chunk_prefix == "" ? [] : [var.chunk_prefix]
        content {
          name  = "RRSTITCH_CHUNK_PREFIX"
          value = env.value
        }
      }
      env {
        name  = "RRSTITCH_RESULTS"
        value = "gs://${google_storage_bucket.results.name}"
      }
      dynamic "env" {
        for_each = var.results_prefix == "" ? [] : [var.results_prefix]
        content {
          name  = "RRSTITCH_RESULTS_PREFIX"
          value = env.value
        }
      }
      env {
        name  = "RRSTITCH_INDEX"
        value = "firestore"
      }
      env {
        name  = "RRSTITCH_FIRESTORE_PROJECT"
        value = var.project_id
      }
      env {
        name  = "RRSTITCH_FIRESTORE_DATABASE"
        value = local.firestore_database
      }
      env {
        name  = "RRSTITCH_FIRESTORE_COLLECTION"
        value = var.firestore_collection
      }
      env {
        name  = "RRSTITCH_IDLE_SECS"
        value = tostring(var.idle_secs)
      }
      env {
        name  = "RRSTITCH_LEASE_SECS"
        value = tostring(var.lease_secs)
      }
      env {
        name  = "RRSTITCH_MAX_CHUNK_BYTES"
        value = tostring(var.max_chunk_bytes)
      }
      env {
        name  = "RRSTITCH_OUTPUT_GZIP"
        value = tostring(var.output_gzip)
      }
      env {
        name  = "RRSTITCH_SEGMENTS"
        value = tostring(var.segments)
      }
      env {
        name  = "RRSTITCH_SWEEP_BUDGET_SECS"
        value = tostring(local.sweep_budget_secs)
      }
      env {
        name  = "RRSTITCH_FINALIZE_MODE"
        value = var.finalize_mode
      }
      # Only finalize stitches; no rules, no variable.
      dynamic "env" {
        for_each = var.redact_rules == "" ? [] : [var.redact_rules]
        content {
          name  = "RRSTITCH_REDACT"
          value = env.value
        }
      }
      dynamic "env" {
        for_each = google_pubsub_topic.finalize_jobs[*].id
        content {
          name  = "RRSTITCH_FINALIZE_TOPIC"
          value = env.value
        }
      }
      env {
        name  = "RRSTITCH_INDEX_TTL_DAYS"
        value = tostring(local.index_ttl_days)
      }
      # Both services ingest (finalize through reconcile); no rules, no variable.
      dynamic "env" {
        for_each = var.restrict_rules == "" ? [] : [var.restrict_rules]
        content {
          name  = "RRSTITCH_RESTRICT"
          value = env.value
        }
      }
      # Likewise the per-session quota; none (null or 0), no variable.
      dynamic "env" {
        for_each = coalesce(var.session_max_bytes, 0) == 0 ? [] : [tostring(var.session_max_bytes)]
        content {
          name  = "RRSTITCH_SESSION_MAX_BYTES"
          value = env.value
        }
      }
      env {
        name  = "RRSTITCH_LOG_FORMAT"
        value = "json"
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
      }
    }
  }

  depends_on = [
    google_project_service.apis,
    google_storage_bucket_iam_member.finalize_chunks_viewer,
    google_storage_bucket_iam_member.finalize_results_user,
    google_project_iam_member.finalize_datastore_user,
  ]

  lifecycle {
    precondition {
      condition     = local.sweep_budget_secs > 0 && local.sweep_budget_secs < min(var.finalize_timeout_secs, 1800)
      error_message = "sweep_budget_secs must be positive and below both finalize_timeout_secs and the scheduler's 1800 s attempt deadline, or a sweep or reconcile is cut off before it answers."
    }
  }
}
