# One service account per identity, each with only what it needs:
#   ingest    reads chunk objects, reads/writes the session index
#   finalize  reads chunk objects, writes results, reads/writes the session index
#   trigger   Eventarc's identity: receives events, invokes ingest (and nothing else)
#   scheduler Cloud Scheduler's identity: invokes finalize (and nothing else)
# Nothing is granted to allUsers or allAuthenticatedUsers.

resource "google_service_account" "ingest" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-ingest"
  display_name = "rrstitch ingest (Cloud Run)"
}

resource "google_service_account" "finalize" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-finalize"
  display_name = "rrstitch finalize (Cloud Run)"
}

resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-trigger"
  display_name = "rrstitch Eventarc trigger (invokes ingest)"
}

resource "google_service_account" "scheduler" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-scheduler"
  display_name = "rrstitch Cloud Scheduler sweep (invokes finalize)"
}

# --- ingest

resource "google_storage_bucket_iam_member" "ingest_chunks_viewer" {
  bucket = google_storage_bucket.chunks.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.ingest.email}"
}

resource "google_project_iam_member" "ingest_datastore_user" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.ingest.email}"
}

# --- finalize

resource "google_storage_bucket_iam_member" "finalize_chunks_viewer" {
  bucket = google_storage_bucket.chunks.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.finalize.email}"
}

# objectUser: create, read and overwrite/delete objects — a re-stitch overwrites its result.
resource "google_storage_bucket_iam_member" "finalize_results_user" {
  bucket = google_storage_bucket.results.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.finalize.email}"
}

resource "google_project_iam_member" "finalize_datastore_user" {
  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.finalize.email}"
}

# --- Eventarc trigger

resource "google_project_iam_member" "trigger_event_receiver" {
  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.trigger.email}"
}

resource "google_cloud_run_v2_service_iam_member" "trigger_invokes_ingest" {
  project  = var.project_id
  location = google_cloud_run_v2_service.ingest.location
  name     = google_cloud_run_v2_service.ingest.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.trigger.email}"
}

# Cloud Storage publishes its object events to Pub/Sub for Eventarc as its service agent.
data "google_storage_project_service_account" "gcs" {
  project = var.project_id
}

resource "google_project_iam_member" "gcs_pubsub_publisher" {
  project = var.project_id
  role    = "roles/pubsub.publisher"
  member  = "serviceAccount:${data.google_storage_project_service_account.gcs.email_address}"
}

# Projects created before 8 April 2021 only: the Pub/Sub service agent mints the trigger's
# OIDC tokens.
data "google_project" "this" {
  count      = var.grant_pubsub_token_creator ? 1 : 0
  project_id = var.project_id
}

resource "google_service_account_iam_member" "pubsub_token_creator" {
  count = var.grant_pubsub_token_creator ? 1 : 0

  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.this[0].number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

# --- Cloud Scheduler

resource "google_cloud_run_v2_service_iam_member" "scheduler_invokes_finalize" {
  project  = var.project_id
  location = google_cloud_run_v2_service.finalize.location
  name     = google_cloud_run_v2_service.finalize.name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

# --- people or automation allowed to POST /finalize by hand (none by default)

resource "google_cloud_run_v2_service_iam_member" "manual_finalize" {
  for_each = toset(var.manual_finalize_invokers)

  project  = var.project_id
  location = google_cloud_run_v2_service.finalize.location
  name     = google_cloud_run_v2_service.finalize.name
  role     = "roles/run.invoker"
  member   = each.value
}
