# rrstitch on GCP: chunk bucket → (notification, OBJECT_FINALIZE) → Pub/Sub topic → push
# subscription → POST /pubsub on ingest (Cloud Run) → Firestore session index; undeliverable
# events go to a dead-letter topic (or, with ingest_trigger = "eventarc", chunk bucket →
# Eventarc trigger → CloudEvent POST / on ingest: triggers.tf). Cloud Scheduler → POST /sweep
# on finalize (Cloud Run) → results bucket (or, with finalize_mode = "queue", → one Pub/Sub
# message per idle session → push → POST /pubsub/finalize: queue.tf), and daily POST
# /reconcile, which ingests every chunk the index lacks. Every identity is a dedicated service
# account with the least it needs; no service admits unauthenticated callers.

locals {
  bucket_location    = upper(coalesce(var.bucket_location, var.region))
  firestore_location = coalesce(var.firestore_location, var.region)
  # The database id the services use: the one created here, or an existing one.
  firestore_database = var.create_firestore_database ? google_firestore_database.index[0].name : var.firestore_database
  # A sweep or reconcile stops taking new work after this many seconds, so it answers before
  # the request timeout (or the scheduler's attempt deadline, at most 1800 s) cuts it off:
  # 80 % of the shorter of the two unless set.
  sweep_budget_secs = coalesce(var.sweep_budget_secs, floor(min(var.finalize_timeout_secs, 1800) * 0.8))
  # Index documents expire (Firestore TTL on expire_at) this many days after their last
  # activity: a day past the chunk retention, so a record always outlives the chunk it
  # describes (a reconcile never finds a chunk the index forgot), and the index keeps nothing
  # of a session long after its chunks are gone. Chunks kept for ever: the binaries' default.
  index_ttl_days = var.chunk_retention_days == null ? 90 : var.chunk_retention_days + 1

  # Pub/Sub in either trigger mode: Eventarc delivers through it too. Eventarc only when
  # chosen, so a pubsub deployment enables nothing it does not use.
  apis = toset(concat([
    "artifactregistry.googleapis.com",
    "cloudscheduler.googleapis.com",
    "firestore.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ], local.eventarc_trigger ? ["eventarc.googleapis.com"] : []))
}

resource "google_project_service" "apis" {
  for_each = var.enable_apis ? local.apis : toset([])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# ---------------------------------------------------------------------------------------------
# Buckets: uniform bucket-level access, no public access, no versioning.

resource "google_storage_bucket" "chunks" {
  project                     = var.project_id
  name                        = var.chunk_bucket_name
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = false
  }

  dynamic "lifecycle_rule" {
    for_each = var.chunk_retention_days == null ? [] : [var.chunk_retention_days]
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # The cold tier: STANDARD objects move to chunk_cold_storage_class at that age (only
  # STANDARD ones, so the rule acts once per object). Both classes serve a read at once.
  dynamic "lifecycle_rule" {
    for_each = var.chunk_cold_after_days == null ? [] : [var.chunk_cold_after_days]
    content {
      condition {
        age                   = lifecycle_rule.value
        matches_storage_class = ["STANDARD"]
      }
      action {
        type          = "SetStorageClass"
        storage_class = var.chunk_cold_storage_class
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.chunk_cold_after_days == null || var.chunk_retention_days == null ? true : var.chunk_cold_after_days < var.chunk_retention_days
      error_message = "chunk_cold_after_days must be below chunk_retention_days: an object deleted before it moves only pays the colder class's early-deletion fee."
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_storage_bucket" "results" {
  project                     = var.project_id
  name                        = var.results_bucket_name
  location                    = local.bucket_location
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = var.force_destroy
  labels                      = var.labels

  versioning {
    enabled = false
  }

  dynamic "lifecycle_rule" {
    for_each = var.results_retention_days == null ? [] : [var.results_retention_days]
    content {
      condition {
        age = lifecycle_rule.value
      }
      action {
        type = "Delete"
      }
    }
  }

  # The cold tier: STANDARD objects move to results_cold_storage_class at that age (only
  # STANDARD ones, so the rule acts once per object). Both classes serve a read at once.
  dynamic "lifecycle_rule" {
    for_each = var.results_cold_after_days == null ? [] : [var.results_cold_after_days]
    content {
      condition {
        age                   = lifecycle_rule.value
        matches_storage_class = ["STANDARD"]
      }
      action {
        type          = "SetStorageClass"
        storage_class = var.results_cold_storage_class
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.results_cold_after_days == null || var.results_retention_days == null ? true : var.results_cold_after_days < var.results_retention_days
      error_message = "results_cold_after_days must be below results_retention_days: an object deleted before it moves only pays the colder class's early-deletion fee."
    }
  }

  depends_on = [google_project_service.apis]
}

# ---------------------------------------------------------------------------------------------
# Container images (infra/docker/Dockerfile) are pushed here.

resource "google_artifact_registry_repository" "images" {
  project       = var.project_id
  location      = var.region
  repository_id = var.name_prefix
  format        = "DOCKER"
  description   = "rrstitch ingest and finalize images"
  labels        = var.labels

  depends_on = [google_project_service.apis]
}
